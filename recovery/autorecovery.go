package recovery

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awserr"
)

// AutoRecoveryOptions configures an AutoRecovery. Zero values are safe
// defaults.
type AutoRecoveryOptions struct {
	// RateShare is the share of the account's published EC2 request rates
	// to use, in (0, 1]. Zero means 1.
	RateShare float64
	// TimeScale compresses client-side pacing and retry delays for a
	// simulated cloud whose time runs compressed (cloudsim's
	// Options.TimeScale): buckets refill 1/TimeScale times faster. Leave it
	// zero (meaning 1) against AWS.
	TimeScale float64
	// MaxRetries bounds the retries of a throttled or failed call. Zero
	// means 8.
	MaxRetries int
	// Observer receives progress events; nil discards them.
	Observer ec2ops.Observer
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// AutoRecovery reports and sets simplified automatic recovery
// (MaintenanceOptions.AutoRecovery) on a fleet.
type AutoRecovery struct {
	api    MaintenanceAPI
	opts   AutoRecoveryOptions
	call   *caller
	detect *Detector
}

// NewAutoRecovery returns an AutoRecovery that works through api.
func NewAutoRecovery(api MaintenanceAPI, optFns ...func(*AutoRecoveryOptions)) *AutoRecovery {
	o := AutoRecoveryOptions{}
	for _, f := range optFns {
		f(&o)
	}
	c := newCaller(o.RateShare, o.TimeScale, o.MaxRetries, o.Logger)
	return &AutoRecovery{api: api, opts: o, call: c, detect: &Detector{api: api, call: c, types: map[string]typeInfo{}}}
}

// NewAutoRecoveryFromConfig returns an AutoRecovery with an EC2 client made
// from cfg.
func NewAutoRecoveryFromConfig(cfg aws.Config, optFns ...func(*AutoRecoveryOptions)) *AutoRecovery {
	return NewAutoRecovery(ec2.NewFromConfig(cfg), optFns...)
}

// AutoRecoveryStatus is one instance's simplified automatic recovery.
type AutoRecoveryStatus struct {
	Support
	// Effective: the setting is "default" and AWS supports recovering the
	// instance, so simplified automatic recovery protects it.
	Effective bool
}

// Report returns the AutoRecovery setting of every instance of the fleet
// and whether it is effective, sorted by instance ID.
func (a *AutoRecovery) Report(ctx context.Context, fleet Fleet) ([]AutoRecoveryStatus, error) {
	sup, err := a.detect.Detect(ctx, fleet)
	if err != nil {
		return nil, err
	}
	out := make([]AutoRecoveryStatus, 0, len(sup))
	for _, s := range sup {
		if hasReason(s, ReasonNotFound) {
			continue
		}
		eff := s.Supported && s.AutoRecovery != types.InstanceAutoRecoveryStateDisabled
		out = append(out, AutoRecoveryStatus{Support: s, Effective: eff})
	}
	return out, nil
}

func hasReason(s Support, c ReasonCode) bool {
	for _, r := range s.Reasons {
		if r.Code == c {
			return true
		}
	}
	return false
}

// AutoRecoveryPlan lists the instances whose setting Apply changes.
type AutoRecoveryPlan struct {
	ec2ops.Plan
	Want        types.InstanceAutoRecoveryState
	InstanceIDs []string
}

// Plan returns the ModifyInstanceMaintenanceOptions calls that would set
// want (default or disabled) on every instance of the fleet that does not
// have it. Setting default on an unsupported instance is allowed by EC2 and
// has no effect; Plan skips those instances.
func (a *AutoRecovery) Plan(ctx context.Context, fleet Fleet, want types.InstanceAutoRecoveryState) (*AutoRecoveryPlan, error) {
	if want != types.InstanceAutoRecoveryStateDefault && want != types.InstanceAutoRecoveryStateDisabled {
		return nil, ec2ops.InvalidInput("want", string(want), "not an AutoRecovery state", `use types.InstanceAutoRecoveryStateDefault ("default") or types.InstanceAutoRecoveryStateDisabled ("disabled")`)
	}
	rep, err := a.Report(ctx, fleet)
	if err != nil {
		return nil, err
	}
	p := &AutoRecoveryPlan{Plan: ec2ops.Plan{Operation: "auto-recovery"}, Want: want}
	for _, s := range rep {
		if s.AutoRecovery == want || (want == types.InstanceAutoRecoveryStateDefault && !s.Supported) {
			continue
		}
		p.InstanceIDs = append(p.InstanceIDs, s.InstanceID)
		p.Steps = append(p.Steps, ec2ops.Step{Action: "ec2:ModifyInstanceMaintenanceOptions", Resources: []string{s.InstanceID},
			Reason: fmt.Sprintf("AutoRecovery %s -> %s", s.AutoRecovery, want)})
	}
	return p, nil
}

// Apply makes the plan's calls, one instance a call (the API takes one),
// paced at the EC2 mutating rate. On failure it returns an
// *ec2ops.ProgressError.
func (a *AutoRecovery) Apply(ctx context.Context, plan *AutoRecoveryPlan) error {
	if plan == nil {
		return ec2ops.InvalidInput("plan", "", "nil", "pass the plan Plan returned")
	}
	perr := &ec2ops.ProgressError{Operation: "auto-recovery", Failed: map[string]error{}}
	total := len(plan.InstanceIDs)
	for k, id := range plan.InstanceIDs {
		err := a.call.do(ctx, "ec2:ModifyInstanceMaintenanceOptions", func() error {
			_, err := a.api.ModifyInstanceMaintenanceOptions(ctx, &ec2.ModifyInstanceMaintenanceOptionsInput{
				InstanceId: aws.String(id), AutoRecovery: plan.Want})
			return err
		})
		if err != nil {
			err = fmt.Errorf("set AutoRecovery %s on %s: %w", plan.Want, id, err)
			perr.Failed[id] = err
			ec2ops.Emit(a.opts.Observer, ec2ops.Event{Operation: "auto-recovery", Phase: "modify", Resource: id, Done: len(perr.Done), Total: total, Err: err})
			if ctx.Err() != nil || awserr.Classify(err) == awserr.Auth {
				perr.Pending = append(perr.Pending, plan.InstanceIDs[k+1:]...)
				perr.Err = err
				return perr
			}
			continue
		}
		perr.Done = append(perr.Done, id)
		ec2ops.Emit(a.opts.Observer, ec2ops.Event{Operation: "auto-recovery", Phase: "modify", Resource: id, Done: len(perr.Done), Total: total,
			Message: "AutoRecovery " + string(plan.Want)})
	}
	if len(perr.Failed) > 0 {
		perr.Err = fmt.Errorf("%d instance(s) failed", len(perr.Failed))
		return perr
	}
	return nil
}

// Set is Plan then Apply.
func (a *AutoRecovery) Set(ctx context.Context, fleet Fleet, want types.InstanceAutoRecoveryState) (*AutoRecoveryPlan, error) {
	p, err := a.Plan(ctx, fleet, want)
	if err != nil {
		return nil, err
	}
	return p, a.Apply(ctx, p)
}
