package ec2ops

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors shared by every strategy; test with errors.Is.
var (
	// ErrInvalidInput marks bad input, reported before any mutating call.
	ErrInvalidInput = errors.New("ec2ops: invalid input")
	// ErrNotFound marks a resource the operation needs that does not exist.
	ErrNotFound = errors.New("ec2ops: not found")
	// ErrUnsupported marks a resource the strategy refuses to act on (for
	// example an instance owned by an Auto Scaling group).
	ErrUnsupported = errors.New("ec2ops: unsupported")
	// ErrTimeout marks a wait that ran past its deadline.
	ErrTimeout = errors.New("ec2ops: timed out")
	// ErrUnmanaged marks targets that Systems Manager cannot reach yet: no
	// registered or no online SSM agent. Nothing was sent to them, so the
	// call is safe to retry once the agent is online (a fresh agent can
	// take more than two minutes to register). patching's *UnmanagedError
	// matches it, so packages that only consume a command runner (ami's
	// Baker) can recognise it without importing patching.
	ErrUnmanaged = errors.New("ec2ops: not managed by Systems Manager")
)

// InputError reports one invalid field of a caller's input: which field, what
// is wrong, and how to fix it. It matches ErrInvalidInput with errors.Is.
type InputError struct {
	Field  string // the field, in Go syntax, e.g. "Options.MaxUnavailable"
	Value  string // the offending value, rendered; never a secret
	Reason string // what is wrong
	Fix    string // what to do instead
}

func (e *InputError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid %s", e.Field)
	if e.Value != "" {
		fmt.Fprintf(&b, " %q", e.Value)
	}
	fmt.Fprintf(&b, ": %s", e.Reason)
	if e.Fix != "" {
		fmt.Fprintf(&b, "; %s", e.Fix)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalidInput) true.
func (e *InputError) Is(target error) bool { return target == ErrInvalidInput }

// InvalidInput returns an *InputError.
func InvalidInput(field, value, reason, fix string) error {
	return &InputError{Field: field, Value: value, Reason: reason, Fix: fix}
}

// ProgressError is returned by a long operation that stopped part way. It
// lists what was finished, what failed and what is still pending, so a caller
// can report it and a rerun can resume. Err is the cause.
type ProgressError struct {
	Operation string
	Done      []string
	Failed    map[string]error
	Pending   []string
	Err       error
}

func (e *ProgressError) Error() string {
	return fmt.Sprintf("%s stopped: %d done, %d failed, %d pending: %v",
		e.Operation, len(e.Done), len(e.Failed), len(e.Pending), e.Err)
}

// Unwrap returns the cause.
func (e *ProgressError) Unwrap() error { return e.Err }
