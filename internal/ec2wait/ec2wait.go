// Package ec2wait adapts EC2's Describe calls to the batched poller: one
// DescribeInstanceStatus call per 100 instances (its ID limit) or one
// DescribeInstances call per 200 instances (the filter-value limit) serves
// every goroutine waiting on those instances.
package ec2wait

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/poll"
	"github.com/ec2ops/ec2ops/internal/ratelimit"
)

// StatusAPI is the call a status poller makes.
type StatusAPI interface {
	DescribeInstanceStatus(ctx context.Context, params *ec2.DescribeInstanceStatusInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error)
}

// InstancesAPI is the call an instance poller makes.
type InstancesAPI interface {
	DescribeInstances(ctx context.Context, params *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

var (
	_ StatusAPI    = (*ec2.Client)(nil)
	_ InstancesAPI = (*ec2.Client)(nil)
)

// Limits of the Describe calls. Sources: EC2 API reference,
// DescribeInstanceStatus ("up to 100 explicitly specified instance IDs") and
// DescribeInstances (at most 200 filter values in one call).
const (
	StatusChunk    = 100
	InstancesChunk = 200
)

// Status is what DescribeInstanceStatus says of one instance.
type Status struct {
	State  types.InstanceStateName
	AZ     string
	System types.SummaryStatus // system status check
	Inst   types.SummaryStatus // instance status check
}

// Healthy reports whether the instance is running and passes both checks.
func (s Status) Healthy() bool {
	return s.State == types.InstanceStateNameRunning && s.System == types.SummaryStatusOk && s.Inst == types.SummaryStatusOk
}

// Impaired reports whether a status check failed.
func (s Status) Impaired() bool {
	return s.System == types.SummaryStatusImpaired || s.Inst == types.SummaryStatusImpaired
}

// FetchStatus returns a poll.Fetch over DescribeInstanceStatus with
// IncludeAllInstances, so stopped and terminated instances are reported too.
func FetchStatus(c StatusAPI) poll.Fetch[Status] {
	return func(ctx context.Context, ids []string) (map[string]Status, error) {
		out, err := c.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{
			InstanceIds:         ids,
			IncludeAllInstances: aws.Bool(true),
		})
		if err != nil {
			return nil, err
		}
		m := make(map[string]Status, len(out.InstanceStatuses))
		for _, st := range out.InstanceStatuses {
			s := Status{AZ: aws.ToString(st.AvailabilityZone)}
			if st.InstanceState != nil {
				s.State = st.InstanceState.Name
			}
			if st.SystemStatus != nil {
				s.System = st.SystemStatus.Status
			}
			if st.InstanceStatus != nil {
				s.Inst = st.InstanceStatus.Status
			}
			m[aws.ToString(st.InstanceId)] = s
		}
		return m, nil
	}
}

// FetchInstances returns a poll.Fetch over DescribeInstances filtered by
// instance-id. A filter, unlike InstanceIds, does not fail the call for an
// ID that is not visible yet, so eventual consistency costs no extra calls.
func FetchInstances(c InstancesAPI) poll.Fetch[types.Instance] {
	return func(ctx context.Context, ids []string) (map[string]types.Instance, error) {
		m := make(map[string]types.Instance, len(ids))
		p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{
			Filters: []types.Filter{{Name: aws.String("instance-id"), Values: ids}},
		})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, r := range out.Reservations {
				for _, in := range r.Instances {
					m[aws.ToString(in.InstanceId)] = in
				}
			}
		}
		return m, nil
	}
}

// NewStatusPoller returns a poller over DescribeInstanceStatus, paced by lim
// (nil for none).
func NewStatusPoller(c StatusAPI, lim *ratelimit.Limiter, optFns ...func(*poll.Options)) *poll.Poller[Status] {
	base := func(o *poll.Options) {
		o.ChunkSize = StatusChunk
		o.Limiter = lim
		o.Action = "DescribeInstanceStatus"
	}
	return poll.New(FetchStatus(c), append([]func(*poll.Options){base}, optFns...)...)
}

// NewInstancePoller returns a poller over DescribeInstances, paced by lim.
func NewInstancePoller(c InstancesAPI, lim *ratelimit.Limiter, optFns ...func(*poll.Options)) *poll.Poller[types.Instance] {
	base := func(o *poll.Options) {
		o.ChunkSize = InstancesChunk
		o.Limiter = lim
		o.Action = "DescribeInstances"
	}
	return poll.New(FetchInstances(c), append([]func(*poll.Options){base}, optFns...)...)
}

func gone(state types.InstanceStateName) bool {
	return state == types.InstanceStateNameShuttingDown || state == types.InstanceStateNameTerminated
}

// Healthy is a condition: running with both status checks ok. A terminated
// instance ends the wait with an error matching poll.ErrCondition.
func Healthy(s Status) (bool, error) {
	if gone(s.State) {
		return false, fmt.Errorf("%w: instance is %s", poll.ErrCondition, s.State)
	}
	return s.Healthy(), nil
}

// Running is a condition on DescribeInstances: state running. Terminating or
// stopped instances end the wait with an error.
func Running(in types.Instance) (bool, error) {
	st := stateOf(in)
	switch {
	case st == types.InstanceStateNameRunning:
		return true, nil
	case gone(st), st == types.InstanceStateNameStopped:
		return false, fmt.Errorf("%w: instance is %s, not running", poll.ErrCondition, st)
	}
	return false, nil
}

// Terminated is a condition on DescribeInstances: state terminated.
func Terminated(in types.Instance) (bool, error) {
	return stateOf(in) == types.InstanceStateNameTerminated, nil
}

// Stopped is a condition on DescribeInstances: state stopped.
func Stopped(in types.Instance) (bool, error) {
	st := stateOf(in)
	if gone(st) {
		return false, fmt.Errorf("%w: instance is %s, not stopped", poll.ErrCondition, st)
	}
	return st == types.InstanceStateNameStopped, nil
}

func stateOf(in types.Instance) types.InstanceStateName {
	if in.State == nil {
		return ""
	}
	return in.State.Name
}
