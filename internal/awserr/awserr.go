// Package awserr classifies errors returned by aws-sdk-go-v2 clients (and by
// the simulator, which returns the same shapes) into the few classes the
// library acts on. It looks only at smithy.APIError codes and HTTP status
// codes, never at message text, which AWS does not promise to keep stable.
package awserr

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Class is what the library does about an error.
type Class int

const (
	// None: no error.
	None Class = iota
	// Throttle: the request was rate limited; wait and retry.
	Throttle
	// NotFound: the resource does not exist (or not yet, after a create:
	// EC2 is eventually consistent).
	NotFound
	// Capacity: AWS has no capacity or the account hit a quota; retry later,
	// elsewhere (another AZ or type), or give up.
	Capacity
	// Auth: the caller lacks permission or its credentials are bad; never
	// retried.
	Auth
	// DryRun: a DryRun request that would have succeeded.
	DryRun
	// Transient: a server-side fault (5xx, InternalError); retry.
	Transient
	// Canceled: the caller's context was canceled or its deadline passed.
	Canceled
	// Other: anything else, including validation errors; not retried.
	Other
)

var classNames = [...]string{"none", "throttle", "not-found", "capacity", "auth", "dry-run", "transient", "canceled", "other"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "unknown"
}

// Codes by class. Sources: aws-sdk-go-v2 aws/retry DefaultThrottleErrorCodes;
// "Error codes for the Amazon EC2 API" (EC2 API reference); SSM and
// CloudWatch API references for their NotFound-style codes.
var codes = map[string]Class{
	// Throttling (aws/retry/standard.go DefaultThrottleErrorCodes).
	"Throttling":                             Throttle,
	"ThrottlingException":                    Throttle,
	"ThrottledException":                     Throttle,
	"RequestThrottledException":              Throttle,
	"TooManyRequestsException":               Throttle,
	"ProvisionedThroughputExceededException": Throttle,
	"TransactionInProgressException":         Throttle,
	"RequestLimitExceeded":                   Throttle,
	"BandwidthLimitExceeded":                 Throttle,
	"LimitExceededException":                 Throttle,
	"RequestThrottled":                       Throttle,
	"SlowDown":                               Throttle,
	"PriorRequestNotComplete":                Throttle,
	"EC2ThrottledException":                  Throttle,

	// Not found (EC2, SSM, CloudWatch, ELBv2).
	"InvalidInstanceID.NotFound":                  NotFound,
	"InvalidInstanceID.Malformed":                 Other,
	"InvalidAMIID.NotFound":                       NotFound,
	"InvalidAMIID.Unavailable":                    NotFound,
	"InvalidSnapshot.NotFound":                    NotFound,
	"InvalidVolume.NotFound":                      NotFound,
	"InvalidLaunchTemplateId.NotFound":            NotFound,
	"InvalidLaunchTemplateName.NotFoundException": NotFound,
	"InvalidAllocationID.NotFound":                NotFound,
	"InvalidAssociationID.NotFound":               NotFound,
	"InvalidNetworkInterfaceID.NotFound":          NotFound,
	"InvalidGroup.NotFound":                       NotFound,
	"InvalidSubnetID.NotFound":                    NotFound,
	"InvalidKeyPair.NotFound":                     NotFound,
	"InvalidReplaceRootVolumeTaskId.NotFound":     NotFound,
	"InvalidCommandId":                            NotFound,
	"InvocationDoesNotExist":                      NotFound,
	"InvalidInstanceId":                           NotFound, // SSM: not managed or not running
	"InvalidDocument":                             NotFound,
	"ParameterNotFound":                           NotFound,
	"ResourceNotFound":                            NotFound,
	"ResourceNotFoundException":                   NotFound,
	"TargetGroupNotFound":                         NotFound,

	// Capacity and quotas (EC2).
	"InsufficientInstanceCapacity":         Capacity,
	"InsufficientHostCapacity":             Capacity,
	"InsufficientReservedInstanceCapacity": Capacity,
	"InsufficientCapacity":                 Capacity,
	"InsufficientAddressCapacity":          Capacity,
	"InstanceLimitExceeded":                Capacity,
	"VcpuLimitExceeded":                    Capacity,
	"MaxSpotInstanceCountExceeded":         Capacity,
	"SpotMaxPriceTooLow":                   Capacity,
	"Unsupported":                          Other,
	"AddressLimitExceeded":                 Capacity,
	"ResourceLimitExceeded":                Capacity,

	// Authorization and credentials.
	"UnauthorizedOperation":       Auth,
	"AccessDenied":                Auth,
	"AccessDeniedException":       Auth,
	"AuthFailure":                 Auth,
	"UnrecognizedClientException": Auth,
	"InvalidClientTokenId":        Auth,
	"ExpiredToken":                Auth,
	"ExpiredTokenException":       Auth,
	"SignatureDoesNotMatch":       Auth,
	"OptInRequired":               Auth,
	"Blocked":                     Auth,

	// Dry run: the request would have succeeded.
	"DryRunOperation": DryRun,

	// Server-side faults.
	"InternalError":           Transient,
	"InternalFailure":         Transient,
	"InternalServerError":     Transient,
	"ServiceUnavailable":      Transient,
	"Unavailable":             Transient,
	"RequestTimeout":          Transient,
	"RequestTimeoutException": Transient,
}

// Classify returns the class of err. Codes not in the table fall back on the
// HTTP status (429 throttle, 5xx transient, 403 auth) and then on the
// code's suffix ".NotFound", which EC2 uses for every missing resource type.
func Classify(err error) Class {
	if err == nil {
		return None
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Canceled
	}
	if code := Code(err); code != "" {
		if c, ok := codes[code]; ok {
			return c
		}
		if strings.HasSuffix(code, ".NotFound") {
			return NotFound
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch s := re.HTTPStatusCode(); {
		case s == 429:
			return Throttle
		case s >= 500:
			return Transient
		case s == 403:
			return Auth
		}
	}
	return Other
}

// Code returns the smithy API error code of err, or "" when err carries none.
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// IsThrottle reports whether err is a throttling error.
func IsThrottle(err error) bool { return Classify(err) == Throttle }

// IsNotFound reports whether err says the resource does not exist.
func IsNotFound(err error) bool { return Classify(err) == NotFound }

// IsCapacity reports whether err is an insufficient-capacity or quota error.
func IsCapacity(err error) bool { return Classify(err) == Capacity }

// IsAuth reports whether err is an authorization or credentials error.
func IsAuth(err error) bool { return Classify(err) == Auth }

// IsDryRunOK reports whether err is the DryRunOperation answer, which means
// the real request would have succeeded.
func IsDryRunOK(err error) bool { return Classify(err) == DryRun }

// Retryable reports whether the same request may succeed if sent again
// later: throttling and transient server faults.
func Retryable(err error) bool {
	switch Classify(err) {
	case Throttle, Transient:
		return true
	}
	return false
}
