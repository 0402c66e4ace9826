package cloudsim

import (
	"context"
	"errors"
	"time"

	"github.com/aws/smithy-go"
)

// service names a simulated AWS service: the prefix used for accounting and
// IAM actions ("ec2"), the SDK ServiceID that appears in errors ("EC2"), and
// the code the service answers when it throttles (EC2: RequestLimitExceeded,
// CloudWatch: Throttling, SSM: ThrottlingException).
type service struct{ prefix, id, throttleCode string }

var svcEC2 = service{prefix: "ec2", id: "EC2", throttleCode: codeThrottle}

// call is the frame of every simulated API call. In order it:
//  1. returns ctx.Err() if ctx is done (the call is not counted: it was
//     never sent);
//  2. takes the lock and applies every transition due by now;
//  3. counts the call as "prefix:Op" (throttled calls too);
//  4. takes tokens from the service's published buckets, answering
//     RequestLimitExceeded when they are short; resources (may be nil) says
//     how many resource tokens the call needs and runs with the lock held;
//  5. injects the seeded random faults (throttling, then InternalError);
//  6. runs fn with the lock held and the current time.
//
// API errors come back in the shape of an aws-sdk-go-v2 client's errors.
// Change hooks run synchronously inside steps 2 and 6, with the lock held.
func (s *Sim) call(ctx context.Context, svc service, op string, resources func() int, fn func(now time.Time) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.advance()
	key := svc.prefix + ":" + op
	s.calls[key]++
	s.total++
	err := s.admit(svc, op, resources)
	if err == nil {
		err = fn(now)
	}
	if err == nil {
		return nil
	}
	var ae *smithy.GenericAPIError
	if errors.As(err, &ae) {
		s.errs[ae.Code]++
		if ae.Code == svc.throttleCode {
			s.throttled[key]++
		}
	}
	return wrapError(svc.id, op, s.requestID(), err)
}

// admit applies the token buckets and the random faults (lock held).
func (s *Sim) admit(svc service, op string, resources func() int) error {
	if err := s.authorize(svc, op); err != nil { // policy.go: EnforcePolicy
		return err
	}
	if l := s.limiter[svc.prefix]; l != nil {
		n := 0
		if resources != nil {
			n = resources()
		}
		if !l.Allow(op, n) {
			return apiError(svc.throttleCode, "Rate exceeded")
		}
	}
	f := s.opts.Faults
	if f.ThrottleRate > 0 && s.rng.Float64() < f.ThrottleRate {
		return apiError(svc.throttleCode, "Rate exceeded")
	}
	if f.ServerErrorRate > 0 && s.rng.Float64() < f.ServerErrorRate {
		return apiError(codeInternal, "An internal error has occurred")
	}
	return nil
}

// chance draws a seeded Bernoulli trial from the shared source (lock held).
func (s *Sim) chance(p float64) bool {
	return p > 0 && s.rng.Float64() < p
}
