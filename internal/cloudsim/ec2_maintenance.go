package cloudsim

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Maintenance options and simplified automatic recovery.
//
// Every instance has MaintenanceOptions.AutoRecovery "default" unless its
// launch request or ModifyInstanceMaintenanceOptions set "disabled".
// Simplified automatic recovery (when RecoveryOptions.SimplifiedAutoRecovery
// is on) recovers an instance whose system status check has failed for
// SimplifiedDelay, if its AutoRecovery is "default", its type supports
// recovery and its tenancy is not host; it shares the daily attempt limit
// and the recovery machinery (startRecovery) with the alarm recover action,
// and a recovery in progress absorbs the other mechanism's attempt.
//
// Sources: ModifyInstanceMaintenanceOptions API reference (AutoRecovery
// disabled | default; "The default configuration will not enable
// simplified automatic recovery for an unsupported instance type");
// "Configure simplified automatic recovery" (Amazon EC2 User Guide:
// enabled by default on supported instances, acts on system status check
// failures of running instances with default or dedicated tenancy, not
// host tenancy).

// autoRecovery returns in's AutoRecovery setting (lock held).
func (s *Sim) autoRecovery(in *instance) types.InstanceAutoRecoveryState {
	if v, ok := s.cw.maint[in.id]; ok {
		return v
	}
	if m := in.spec.MaintenanceOptions; m != nil && m.AutoRecovery != "" {
		return m.AutoRecovery
	}
	return types.InstanceAutoRecoveryStateDefault
}

// maintenanceOptions describes in's maintenance options as DescribeInstances
// does (lock held).
func (s *Sim) maintenanceOptions(in *instance) *types.InstanceMaintenanceOptions {
	return &types.InstanceMaintenanceOptions{
		AutoRecovery:    s.autoRecovery(in),
		RebootMigration: types.InstanceRebootMigrationStateDefault,
	}
}

// MaintenanceOptions returns the maintenance options of instance id as
// DescribeInstances reports them, or false if it does not exist.
func (s *Sim) MaintenanceOptions(id string) (types.InstanceMaintenanceOptions, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	in := s.ec2.byID[id]
	if in == nil {
		return types.InstanceMaintenanceOptions{}, false
	}
	return *s.maintenanceOptions(in), true
}

// ModifyInstanceMaintenanceOptions sets an instance's AutoRecovery to
// default or disabled (a terminated instance is IncorrectInstanceState).
// RebootMigration is accepted and not modelled.
func (c *EC2) ModifyInstanceMaintenanceOptions(ctx context.Context, params *ec2.ModifyInstanceMaintenanceOptionsInput, optFns ...func(*ec2.Options)) (*ec2.ModifyInstanceMaintenanceOptionsOutput, error) {
	if params == nil {
		params = &ec2.ModifyInstanceMaintenanceOptionsInput{}
	}
	s := c.sim
	var out *ec2.ModifyInstanceMaintenanceOptionsOutput
	err := s.call(ctx, svcEC2, "ModifyInstanceMaintenanceOptions", nil, func(now time.Time) error {
		id := aws.ToString(params.InstanceId)
		if id == "" {
			return errMissing("InstanceId")
		}
		switch params.AutoRecovery {
		case "", types.InstanceAutoRecoveryStateDefault, types.InstanceAutoRecoveryStateDisabled:
		default:
			return errInvalidValue("AutoRecovery", params.AutoRecovery, "Valid values are default and disabled.")
		}
		ins, err := s.lookupInstances(now, []string{id})
		if err != nil {
			return err
		}
		in := ins[0]
		if in.state == types.InstanceStateNameTerminated || in.state == types.InstanceStateNameShuttingDown {
			return apiError(codeIncorrectState, "The instance '%s' is not in a state from which its maintenance options can be modified.", id)
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		if params.AutoRecovery != "" {
			s.cw.maint[id] = params.AutoRecovery
		}
		rm := params.RebootMigration
		if rm == "" {
			rm = types.InstanceRebootMigrationStateDefault
		}
		out = &ec2.ModifyInstanceMaintenanceOptionsOutput{InstanceId: ptr(id), AutoRecovery: s.autoRecovery(in), RebootMigration: rm}
		return nil
	})
	return out, err
}

// scheduleSimplified arranges for simplified automatic recovery to look at
// in after SimplifiedDelay, when its system status check has just failed
// (lock held).
func (s *Sim) scheduleSimplified(at time.Time, in *instance) {
	if !s.cw.opts.SimplifiedAutoRecovery || s.autoRecovery(in) != types.InstanceAutoRecoveryStateDefault {
		return
	}
	if ok, _ := s.recoverable(in); !ok {
		return
	}
	s.schedule(at.Add(s.draw(in.rng, s.cw.opts.SimplifiedDelay)), func(due time.Time) {
		if !in.expired && in.state == types.InstanceStateNameRunning && in.sysCheck == checkFailed &&
			s.autoRecovery(in) == types.InstanceAutoRecoveryStateDefault {
			s.startRecovery(due, in, "simplified")
		}
	})
}

// ImpairSystem fails the system status check of instance id only, as a
// loss of network connectivity or power on its host does: at once if it is
// running, otherwise when its checks next complete. Like Impair it lasts
// until the instance moves to other hardware (stop/start or a recovery); a
// reboot keeps the host, and on that host the instance check then fails
// too. It reports whether the instance exists and can still run.
func (s *Sim) ImpairSystem(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.advance()
	in := s.ec2.byID[id]
	if in == nil || in.state == types.InstanceStateNameShuttingDown || in.state == types.InstanceStateNameTerminated {
		return false
	}
	in.hostFail = true
	if in.state == types.InstanceStateNameRunning {
		inst := in.instCheck
		if inst == checkInit {
			inst = checkOK
		}
		s.setChecks(now, in, checkFailed, inst)
	}
	return true
}

// ImpairInstance fails the instance status check of a running instance
// whose checks have completed, as an OS problem does (kernel panic,
// exhausted memory, broken network configuration): the system check stays
// ok. A reboot (or stop/start) cures it. It reports whether the instance
// was running with completed checks.
func (s *Sim) ImpairInstance(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.advance()
	in := s.ec2.byID[id]
	if in == nil || in.state != types.InstanceStateNameRunning || in.instCheck == checkInit || in.sysCheck == checkInit {
		return false
	}
	s.setChecks(now, in, in.sysCheck, checkFailed)
	return true
}
