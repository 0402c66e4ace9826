package cloudsim

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// RebootInstances restarts the OS of running instances. The state stays
// running; the instance status check runs again and passes after
// Latency.Reboot (a reboot does not move the instance to another host, so a
// host failure from Sim.Impair stays). Rebooting a terminated instance is
// ignored, as AWS documents; a stopped, stopping or pending one is
// IncorrectInstanceState.
func (c *EC2) RebootInstances(ctx context.Context, params *ec2.RebootInstancesInput, optFns ...func(*ec2.Options)) (*ec2.RebootInstancesOutput, error) {
	if params == nil {
		params = &ec2.RebootInstancesInput{}
	}
	s := c.sim
	err := s.call(ctx, svcEC2, "RebootInstances", nil, func(now time.Time) error {
		_, err := s.stateChange(now, params.InstanceIds, params.DryRun,
			func(in *instance) error {
				switch in.state {
				case types.InstanceStateNameRunning, types.InstanceStateNameShuttingDown, types.InstanceStateNameTerminated:
					return nil
				}
				return apiError(codeIncorrectState, "The instance '%s' is not in a state from which it can be rebooted.", in.id)
			},
			func(in *instance) {
				if in.state == types.InstanceStateNameRunning {
					s.reboot(now, in)
				}
			})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &ec2.RebootInstancesOutput{}, nil
}

// reboot restarts in's OS (lock held): the instance check re-initializes and
// passes after Latency.Reboot unless the instance boots badly; the system
// check is the host's and does not change.
func (s *Sim) reboot(at time.Time, in *instance) {
	in.gen++
	sys := in.sysCheck
	if sys == checkInit {
		sys = checkOK
		if in.hostFail {
			sys = checkFailed
		}
	}
	s.setChecks(at, in, sys, checkInit)
	for _, f := range s.ec2.onReboot {
		f(at, in)
	}
	s.later(at, s.draw(in.rng, s.opts.Latency.Reboot), in, func(due time.Time) {
		inst := checkOK
		if in.badBoot || in.hostFail {
			inst = checkFailed
		}
		s.setChecks(due, in, in.sysCheck, inst)
	})
}
