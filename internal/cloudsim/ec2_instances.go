package cloudsim

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// maxStateChangeIDs is the most instance IDs TerminateInstances (and, in
// the simulator, Stop/StartInstances) accept. Source: TerminateInstances
// API reference, InstanceIds: "Up to 1000 instance IDs".
const maxStateChangeIDs = 1000

// stateChange runs the common part of Terminate/Stop/StartInstances: ID
// checks, a per-instance precondition checked for every instance before
// any changes (so the call is all or nothing, as EC2's), DryRun, then act
// on each instance, returning previous and current states.
func (s *Sim) stateChange(now time.Time, ids []string, dryRun *bool,
	pre func(in *instance) error, act func(in *instance)) ([]types.InstanceStateChange, error) {
	if len(ids) == 0 {
		return nil, apiError(codeInvalidCombination, "No instances specified")
	}
	if len(ids) > maxStateChangeIDs {
		return nil, errInvalidValue("InstanceId", len(ids), "At most 1000 instance IDs can be specified.")
	}
	ins, err := s.lookupInstances(now, ids)
	if err != nil {
		return nil, err
	}
	for _, in := range ins {
		if err := pre(in); err != nil {
			return nil, err
		}
	}
	if aws.ToBool(dryRun) {
		return nil, errDryRun()
	}
	out := make([]types.InstanceStateChange, 0, len(ins))
	for _, in := range ins {
		prev := in.state
		act(in)
		out = append(out, types.InstanceStateChange{InstanceId: ptr(in.id), PreviousState: sdkState(prev), CurrentState: sdkState(in.state)})
	}
	return out, nil
}

// TerminateInstances moves instances to shutting-down, then terminated
// after Latency.ShuttingDown. Terminating a shutting-down or terminated
// instance changes nothing (idempotent). Resource bucket: one token per ID.
func (c *EC2) TerminateInstances(ctx context.Context, params *ec2.TerminateInstancesInput, optFns ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	if params == nil {
		params = &ec2.TerminateInstancesInput{}
	}
	s := c.sim
	var out *ec2.TerminateInstancesOutput
	err := s.call(ctx, svcEC2, "TerminateInstances", func() int { return len(params.InstanceIds) }, func(now time.Time) error {
		ch, err := s.stateChange(now, params.InstanceIds, params.DryRun,
			func(in *instance) error {
				if aws.ToBool(in.spec.DisableApiTermination) {
					return apiError(codeOperationNotPermit, "The instance '%s' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.", in.id)
				}
				return nil
			},
			func(in *instance) { s.terminate(now, in) })
		if err == nil {
			out = &ec2.TerminateInstancesOutput{TerminatingInstances: ch}
		}
		return err
	})
	return out, err
}

// StopInstances moves running instances to stopping, then stopped after
// Latency.Stopping; status checks reset. Stopping a stopping or stopped
// instance changes nothing; a pending, shutting-down or terminated one is
// IncorrectInstanceState.
func (c *EC2) StopInstances(ctx context.Context, params *ec2.StopInstancesInput, optFns ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error) {
	if params == nil {
		params = &ec2.StopInstancesInput{}
	}
	s := c.sim
	var out *ec2.StopInstancesOutput
	err := s.call(ctx, svcEC2, "StopInstances", func() int { return len(params.InstanceIds) }, func(now time.Time) error {
		ch, err := s.stateChange(now, params.InstanceIds, params.DryRun,
			func(in *instance) error {
				switch in.state {
				case types.InstanceStateNameRunning, types.InstanceStateNameStopping, types.InstanceStateNameStopped:
				default:
					return apiError(codeIncorrectState, "This instance '%s' is not in a state from which it can be stopped.", in.id)
				}
				if aws.ToBool(in.spec.DisableApiStop) {
					return apiError(codeOperationNotPermit, "The instance '%s' may not be stopped. Modify its 'disableApiStop' instance attribute and try again.", in.id)
				}
				return nil
			},
			func(in *instance) {
				if in.state == types.InstanceStateNameRunning {
					s.stop(now, in)
				}
			})
		if err == nil {
			out = &ec2.StopInstancesOutput{StoppingInstances: ch}
		}
		return err
	})
	return out, err
}

// StartInstances moves stopped instances to pending, then running, and
// runs the status checks again. Starting a pending or running instance
// changes nothing; a stopping, shutting-down or terminated one is
// IncorrectInstanceState. Resource bucket: one token per ID.
func (c *EC2) StartInstances(ctx context.Context, params *ec2.StartInstancesInput, optFns ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error) {
	if params == nil {
		params = &ec2.StartInstancesInput{}
	}
	s := c.sim
	var out *ec2.StartInstancesOutput
	err := s.call(ctx, svcEC2, "StartInstances", func() int { return len(params.InstanceIds) }, func(now time.Time) error {
		ch, err := s.stateChange(now, params.InstanceIds, params.DryRun,
			func(in *instance) error {
				switch in.state {
				case types.InstanceStateNameStopped, types.InstanceStateNamePending, types.InstanceStateNameRunning:
					return nil
				}
				return apiError(codeIncorrectState, "The instance '%s' is not in a state from which it can be started.", in.id)
			},
			func(in *instance) {
				if in.state == types.InstanceStateNameStopped {
					in.gen++
					s.boot(now, in)
				}
			})
		if err == nil {
			out = &ec2.StartInstancesOutput{StartingInstances: ch}
		}
		return err
	})
	return out, err
}
