package awserr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func apiErr(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: "Request limit exceeded. not found. denied."}
}

func httpErr(status int) error {
	return &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      errors.New("boom"),
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, None},
		{"ec2 throttle", apiErr("RequestLimitExceeded"), Throttle},
		{"cw throttle", apiErr("Throttling"), Throttle},
		{"ssm throttle", apiErr("ThrottlingException"), Throttle},
		{"too many", apiErr("TooManyRequestsException"), Throttle},
		{"wrapped throttle", fmt.Errorf("run: %w", apiErr("RequestLimitExceeded")), Throttle},
		{"instance not found", apiErr("InvalidInstanceID.NotFound"), NotFound},
		{"ami not found", apiErr("InvalidAMIID.NotFound"), NotFound},
		{"command not found", apiErr("InvalidCommandId"), NotFound},
		{"unknown .NotFound suffix", apiErr("InvalidPlacementGroup.NotFound"), NotFound},
		{"malformed is not not-found", apiErr("InvalidInstanceID.Malformed"), Other},
		{"capacity", apiErr("InsufficientInstanceCapacity"), Capacity},
		{"limit", apiErr("InstanceLimitExceeded"), Capacity},
		{"vcpu", apiErr("VcpuLimitExceeded"), Capacity},
		{"unauthorized", apiErr("UnauthorizedOperation"), Auth},
		{"access denied", apiErr("AccessDenied"), Auth},
		{"access denied exc", apiErr("AccessDeniedException"), Auth},
		{"dry run", apiErr("DryRunOperation"), DryRun},
		{"internal", apiErr("InternalError"), Transient},
		{"unavailable", apiErr("Unavailable"), Transient},
		{"http 503", httpErr(503), Transient},
		{"http 429", httpErr(429), Throttle},
		{"http 403", httpErr(403), Auth},
		{"http 400", httpErr(400), Other},
		{"validation", apiErr("InvalidParameterValue"), Other},
		{"plain error, message says throttle", errors.New("RequestLimitExceeded"), Other},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), Canceled},
		{"deadline", context.DeadlineExceeded, Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestPredicates(t *testing.T) {
	if !IsThrottle(apiErr("RequestLimitExceeded")) || IsThrottle(apiErr("InternalError")) {
		t.Error("IsThrottle")
	}
	if !IsNotFound(apiErr("InvalidInstanceID.NotFound")) || IsNotFound(nil) {
		t.Error("IsNotFound")
	}
	if !IsCapacity(apiErr("InsufficientInstanceCapacity")) {
		t.Error("IsCapacity")
	}
	if !IsAuth(apiErr("UnauthorizedOperation")) {
		t.Error("IsAuth")
	}
	if !IsDryRunOK(apiErr("DryRunOperation")) {
		t.Error("IsDryRunOK")
	}
	for _, e := range []error{apiErr("RequestLimitExceeded"), apiErr("InternalError"), httpErr(500)} {
		if !Retryable(e) {
			t.Errorf("Retryable(%v) = false", e)
		}
	}
	for _, e := range []error{apiErr("UnauthorizedOperation"), apiErr("InvalidParameterValue"), context.Canceled, nil} {
		if Retryable(e) {
			t.Errorf("Retryable(%v) = true", e)
		}
	}
	if Code(errors.New("x")) != "" || Code(apiErr("X")) != "X" {
		t.Error("Code")
	}
	if Throttle.String() != "throttle" || Class(99).String() != "unknown" {
		t.Error("String")
	}
}
