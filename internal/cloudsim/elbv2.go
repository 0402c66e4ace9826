package cloudsim

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// ELBv2 target groups with instance targets. Target health is evaluated
// lazily from timestamps: a registered target is "initial" until
// HealthyThreshold x HealthCheckInterval after both its registration and
// its instance's launch, then "healthy", or "unhealthy" while a status check
// of the instance fails; a target whose instance is not running is
// "unused" (Target.InvalidState). A deregistered target is "draining" for
// the DeregistrationDelay, then gone ("unused", Target.NotRegistered).
// Sources: Elastic Load Balancing user guide, "Health checks for your
// target groups" (HealthCheckIntervalSeconds default 30, HealthyThreshold
// Count default 5) and "Deregistration delay" (default 300 seconds).

// ELBv2 error codes (ELBv2 API reference).
const (
	codeTargetGroupNotFound = "TargetGroupNotFound"
	codeInvalidTarget       = "InvalidTarget"
)

// TargetGroupOptions sizes a simulated target group; zero fields take the
// AWS defaults.
type TargetGroupOptions struct {
	// HealthCheckInterval between health checks. Default 30s.
	HealthCheckInterval time.Duration
	// HealthyThreshold is the number of consecutive passed checks to turn
	// healthy. Default 5.
	HealthyThreshold int
	// DeregistrationDelay is how long a deregistered target drains.
	// Default 300s.
	DeregistrationDelay time.Duration
}

type targetGroup struct {
	arn, name string
	port      int32
	opts      TargetGroupOptions
	targets   map[string]*target
}

type target struct {
	id         string
	port       int32
	registered time.Time
	deregAt    time.Time // zero while registered
}

// CreateTargetGroup creates an instance target group (a test helper: the
// library never creates load balancers) and returns its ARN.
func (s *Sim) CreateTargetGroup(name string, port int32, optFns ...func(*TargetGroupOptions)) string {
	o := TargetGroupOptions{}
	for _, f := range optFns {
		f(&o)
	}
	if o.HealthCheckInterval <= 0 {
		o.HealthCheckInterval = 30 * time.Second
	}
	if o.HealthyThreshold <= 0 {
		o.HealthyThreshold = 5
	}
	if o.DeregistrationDelay == 0 {
		o.DeregistrationDelay = 300 * time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	arn := fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/%s/%016x", s.opts.Region, accountID, name, mix64(s.seed^hashString(name)))
	tg := &targetGroup{arn: arn, name: name, port: port, opts: o, targets: map[string]*target{}}
	s.lc.tgs[arn] = tg
	s.lc.tgOrder = append(s.lc.tgOrder, tg)
	return arn
}

func (s *Sim) lookupTargetGroup(arn string) (*targetGroup, error) {
	if arn == "" {
		return nil, errMissing("TargetGroupArn")
	}
	if tg := s.lc.tgs[arn]; tg != nil {
		return tg, nil
	}
	return nil, apiError(codeTargetGroupNotFound, "One or more target groups not found")
}

// health returns the state of t at now, dropping it when its draining ended.
func (s *Sim) targetHealth(tg *targetGroup, t *target, now time.Time) *elbtypes.TargetHealth {
	h := func(st elbtypes.TargetHealthStateEnum, r elbtypes.TargetHealthReasonEnum) *elbtypes.TargetHealth {
		th := &elbtypes.TargetHealth{State: st}
		if r != "" {
			th.Reason = r
		}
		return th
	}
	if t == nil {
		return h(elbtypes.TargetHealthStateEnumUnused, elbtypes.TargetHealthReasonEnumNotRegistered)
	}
	if !t.deregAt.IsZero() {
		if now.Before(t.deregAt.Add(s.scaled(tg.opts.DeregistrationDelay))) {
			return h(elbtypes.TargetHealthStateEnumDraining, elbtypes.TargetHealthReasonEnumDeregistrationInProgress)
		}
		delete(tg.targets, t.id)
		return h(elbtypes.TargetHealthStateEnumUnused, elbtypes.TargetHealthReasonEnumNotRegistered)
	}
	in := s.ec2.byID[t.id]
	if in == nil || in.state != types.InstanceStateNameRunning {
		return h(elbtypes.TargetHealthStateEnumUnused, elbtypes.TargetHealthReasonEnumInvalidState)
	}
	start := t.registered
	if in.launchTime.After(start) {
		start = in.launchTime
	}
	ready := start.Add(s.scaled(tg.opts.HealthCheckInterval * time.Duration(tg.opts.HealthyThreshold)))
	switch {
	case in.sysCheck == checkFailed || in.instCheck == checkFailed:
		if now.Before(ready) {
			return h(elbtypes.TargetHealthStateEnumInitial, elbtypes.TargetHealthReasonEnumInitialHealthChecking)
		}
		return h(elbtypes.TargetHealthStateEnumUnhealthy, elbtypes.TargetHealthReasonEnumFailedHealthChecks)
	case now.Before(ready):
		return h(elbtypes.TargetHealthStateEnumInitial, elbtypes.TargetHealthReasonEnumRegistrationInProgress)
	}
	return h(elbtypes.TargetHealthStateEnumHealthy, "")
}

// RegisterTargets registers running instances (re-registering a draining
// target makes it a new registration).
func (c *ELBv2) RegisterTargets(ctx context.Context, params *elb.RegisterTargetsInput, optFns ...func(*elb.Options)) (*elb.RegisterTargetsOutput, error) {
	if params == nil {
		params = &elb.RegisterTargetsInput{}
	}
	s := c.sim
	err := s.call(ctx, svcELBv2, "RegisterTargets", nil, func(now time.Time) error {
		tg, err := s.lookupTargetGroup(aws.ToString(params.TargetGroupArn))
		if err != nil {
			return err
		}
		if len(params.Targets) == 0 {
			return errMissing("Targets")
		}
		for _, d := range params.Targets {
			id := aws.ToString(d.Id)
			in := s.ec2.byID[id]
			if in == nil || !s.visible(in, now) || in.state != types.InstanceStateNameRunning {
				return apiError(codeInvalidTarget, "The following targets are not in a running state and cannot be registered: '%s'", id)
			}
		}
		for _, d := range params.Targets {
			id := aws.ToString(d.Id)
			port := tg.port
			if d.Port != nil {
				port = *d.Port
			}
			if t := tg.targets[id]; t != nil && t.deregAt.IsZero() {
				continue // already registered: no change
			}
			tg.targets[id] = &target{id: id, port: port, registered: now}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elb.RegisterTargetsOutput{}, nil
}

// DeregisterTargets starts draining targets. A target that is not
// registered is InvalidTarget.
func (c *ELBv2) DeregisterTargets(ctx context.Context, params *elb.DeregisterTargetsInput, optFns ...func(*elb.Options)) (*elb.DeregisterTargetsOutput, error) {
	if params == nil {
		params = &elb.DeregisterTargetsInput{}
	}
	s := c.sim
	err := s.call(ctx, svcELBv2, "DeregisterTargets", nil, func(now time.Time) error {
		tg, err := s.lookupTargetGroup(aws.ToString(params.TargetGroupArn))
		if err != nil {
			return err
		}
		if len(params.Targets) == 0 {
			return errMissing("Targets")
		}
		for _, d := range params.Targets {
			id := aws.ToString(d.Id)
			t := tg.targets[id]
			if t != nil && !t.deregAt.IsZero() {
				s.targetHealth(tg, t, now) // drop it if draining ended
				t = tg.targets[id]
			}
			if t == nil {
				return apiError(codeInvalidTarget, "The following targets are not registered in target group '%s': '%s'", tg.arn, id)
			}
		}
		for _, d := range params.Targets {
			if t := tg.targets[aws.ToString(d.Id)]; t.deregAt.IsZero() {
				t.deregAt = now
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elb.DeregisterTargetsOutput{}, nil
}

// DescribeTargetHealth describes the given targets (unregistered ones as
// "unused", Target.NotRegistered) or every target of the group.
func (c *ELBv2) DescribeTargetHealth(ctx context.Context, params *elb.DescribeTargetHealthInput, optFns ...func(*elb.Options)) (*elb.DescribeTargetHealthOutput, error) {
	if params == nil {
		params = &elb.DescribeTargetHealthInput{}
	}
	s := c.sim
	var out *elb.DescribeTargetHealthOutput
	err := s.call(ctx, svcELBv2, "DescribeTargetHealth", nil, func(now time.Time) error {
		tg, err := s.lookupTargetGroup(aws.ToString(params.TargetGroupArn))
		if err != nil {
			return err
		}
		out = &elb.DescribeTargetHealthOutput{TargetHealthDescriptions: []elbtypes.TargetHealthDescription{}}
		add := func(id string, port int32, t *target) {
			out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, elbtypes.TargetHealthDescription{
				Target:          &elbtypes.TargetDescription{Id: ptr(id), Port: ptr(port)},
				HealthCheckPort: ptr(fmt.Sprint(port)),
				TargetHealth:    s.targetHealth(tg, t, now),
			})
		}
		if len(params.Targets) > 0 {
			for _, d := range params.Targets {
				id := aws.ToString(d.Id)
				port := tg.port
				if d.Port != nil {
					port = *d.Port
				}
				add(id, port, tg.targets[id])
			}
			return nil
		}
		for _, in := range s.ec2.order {
			if t := tg.targets[in.id]; t != nil {
				if s.targetHealth(tg, t, now); tg.targets[in.id] == nil {
					continue // draining ended: no longer registered
				}
				add(t.id, t.port, t)
			}
		}
		return nil
	})
	return out, err
}

// DescribeTargetGroups describes target groups by ARN or name, or all.
func (c *ELBv2) DescribeTargetGroups(ctx context.Context, params *elb.DescribeTargetGroupsInput, optFns ...func(*elb.Options)) (*elb.DescribeTargetGroupsOutput, error) {
	if params == nil {
		params = &elb.DescribeTargetGroupsInput{}
	}
	s := c.sim
	var out *elb.DescribeTargetGroupsOutput
	err := s.call(ctx, svcELBv2, "DescribeTargetGroups", nil, func(now time.Time) error {
		var sel []*targetGroup
		for _, arn := range params.TargetGroupArns {
			tg, err := s.lookupTargetGroup(arn)
			if err != nil {
				return err
			}
			sel = append(sel, tg)
		}
		for _, name := range params.Names {
			var found *targetGroup
			for _, tg := range s.lc.tgOrder {
				if tg.name == name {
					found = tg
				}
			}
			if found == nil {
				return apiError(codeTargetGroupNotFound, "One or more target groups not found")
			}
			sel = append(sel, found)
		}
		if len(params.TargetGroupArns)+len(params.Names) == 0 {
			sel = s.lc.tgOrder
		}
		out = &elb.DescribeTargetGroupsOutput{TargetGroups: []elbtypes.TargetGroup{}}
		for _, tg := range sel {
			out.TargetGroups = append(out.TargetGroups, elbtypes.TargetGroup{
				TargetGroupArn:             ptr(tg.arn),
				TargetGroupName:            ptr(tg.name),
				Port:                       ptr(tg.port),
				Protocol:                   elbtypes.ProtocolEnumHttp,
				TargetType:                 elbtypes.TargetTypeEnumInstance,
				VpcId:                      ptr(s.ec2.vpcID),
				HealthCheckEnabled:         ptr(true),
				HealthCheckIntervalSeconds: ptr(int32(tg.opts.HealthCheckInterval / time.Second)),
				HealthyThresholdCount:      ptr(int32(tg.opts.HealthyThreshold)),
				HealthCheckProtocol:        elbtypes.ProtocolEnumHttp,
				HealthCheckPath:            ptr("/"),
			})
		}
		return nil
	})
	return out, err
}

// TargetState returns the health state of instance id in target group arn
// ("" if the group does not exist), a test helper.
func (s *Sim) TargetState(arn, id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.advance()
	tg := s.lc.tgs[arn]
	if tg == nil {
		return ""
	}
	return string(s.targetHealth(tg, tg.targets[id], now).State)
}
