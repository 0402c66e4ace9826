package cloudsim

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Error codes the simulator returns. Source: "Error codes for the Amazon EC2
// API" (EC2 API Reference, errors-overview), which also lists
// InsufficientInstanceCapacity, InternalError and RequestLimitExceeded among
// the server (5xx) errors.
const (
	codeThrottle             = "RequestLimitExceeded"
	codeInternal             = "InternalError"
	codeCapacity             = "InsufficientInstanceCapacity"
	codeDryRun               = "DryRunOperation"
	codeMissingParameter     = "MissingParameter"
	codeInvalidParameter     = "InvalidParameterValue"
	codeInvalidCombination   = "InvalidParameterCombination"
	codeInvalidToken         = "InvalidPaginationToken"
	codeFilterLimit          = "FilterLimitExceeded"
	codeIdempotentMismatch   = "IdempotentParameterMismatch"
	codeIncorrectState       = "IncorrectInstanceState"
	codeOperationNotPermit   = "OperationNotPermitted"
	codeTagLimit             = "TagLimitExceeded"
	codeInvalidID            = "InvalidID"
	codeInstanceNotFound     = "InvalidInstanceID.NotFound"
	codeInstanceMalformed    = "InvalidInstanceID.Malformed"
	codeAMIMalformed         = "InvalidAMIID.Malformed"
	codeSubnetNotFound       = "InvalidSubnetID.NotFound"
	codeInsufficientAddrsSub = "InsufficientFreeAddressesInSubnet"
)

// httpStatus is the HTTP status AWS answers with for code.
func httpStatus(code string) int {
	switch code {
	case codeThrottle:
		return http.StatusServiceUnavailable
	case "Throttling", "ThrottlingException":
		return http.StatusBadRequest
	case codeInternal, codeCapacity:
		return http.StatusInternalServerError
	case codeDryRun:
		return http.StatusPreconditionFailed
	}
	return http.StatusBadRequest
}

// apiError returns the error AWS would deserialize into: a
// *smithy.GenericAPIError with code, message and fault (server for 5xx).
func apiError(code, format string, args ...any) *smithy.GenericAPIError {
	f := smithy.FaultClient
	if httpStatus(code) >= 500 {
		f = smithy.FaultServer
	}
	return &smithy.GenericAPIError{Code: code, Message: fmt.Sprintf(format, args...), Fault: f}
}

// wrapError gives an API error the shape an aws-sdk-go-v2 client returns:
// *smithy.OperationError wrapping *awshttp.ResponseError (HTTP status and
// request ID) wrapping the *smithy.GenericAPIError. errors.As finds each
// layer, as with a real client. Other errors are returned unchanged.
func wrapError(serviceID, op, requestID string, err error) error {
	var ae *smithy.GenericAPIError
	if !errors.As(err, &ae) {
		return err
	}
	return &smithy.OperationError{
		ServiceID:     serviceID,
		OperationName: op,
		Err: &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{
				Response: &smithyhttp.Response{Response: &http.Response{
					StatusCode: httpStatus(ae.Code),
					Header:     http.Header{"X-Amzn-Requestid": []string{requestID}},
				}},
				Err: ae,
			},
			RequestID: requestID,
		},
	}
}

func errMissing(param string) error {
	return apiError(codeMissingParameter, "The request must contain the parameter %s", param)
}

func errInvalidValue(param string, value any, why string) error {
	return apiError(codeInvalidParameter, "Value (%v) for parameter %s is invalid. %s", value, param, why)
}

func errDryRun() error {
	return apiError(codeDryRun, "Request would have succeeded, but DryRun flag is set.")
}

func errInstancesNotFound(ids []string) error {
	if len(ids) == 1 {
		return apiError(codeInstanceNotFound, "The instance ID '%s' does not exist", ids[0])
	}
	return apiError(codeInstanceNotFound, "The instance IDs '%s' do not exist", strings.Join(ids, ", "))
}

func errMalformed(code, id, want string) error {
	return apiError(code, "Invalid id: %q (expecting %q)", id, want)
}
