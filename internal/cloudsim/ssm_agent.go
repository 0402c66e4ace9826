package cloudsim

// The SSM agent model: one agent per instance, which registers with Systems
// Manager some time after the instance first boots, goes offline when the
// instance reboots, stops or terminates, and reconnects after a reboot or a
// start. Run Command (ssm_commands.go) delivers invocations only to online
// agents, and patch states (ssm_patch.go) live beside the agents.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// SSMLatencies size the SSM agent and Run Command model (Options.Latency.SSM).
// Zero fields take their defaults. Sources: AWS-FACTS.md "Latencies" (the
// agent long-polls on a ~20 s cycle; a fresh agent can take more than two
// minutes to register).
type SSMLatencies struct {
	// Register: an instance reaches running for the first time -> its agent
	// registers and is Online. Default 30s..150s.
	Register Dist
	// Reconnect: the instance is running again after a start or a reboot ->
	// the agent is Online. After a reboot it is added to a draw of
	// Latency.Reboot (the OS restarting). Default 10s..40s.
	Reconnect Dist
	// Delivery: an invocation is dispatched to an online agent -> it starts
	// (InProgress). Default 1s..5s.
	Delivery Dist
	// Shell: how long AWS-RunShellScript runs, unless scripted with
	// Sim.ScriptShell. Default 2s..20s.
	Shell Dist
	// Scan: AWS-RunPatchBaseline with Operation=Scan. Default 30s..120s.
	Scan Dist
	// Install: AWS-RunPatchBaseline with Operation=Install, before any
	// reboot. Default 2m..10m.
	Install Dist
	// Cancel: CancelCommand -> an in-progress invocation is Cancelled.
	// Default 1s..5s.
	Cancel Dist
}

// SSMFaults are seeded SSM fault rates in [0, 1] (Options.Faults.SSM).
type SSMFaults struct {
	// UnmanagedRate is the share of instances whose agent never registers
	// (no instance profile, no route to the SSM endpoints).
	UnmanagedRate float64
	// AgentLostAfterRebootRate is the share of reboots after which the
	// agent does not come back online (until the instance is stopped and
	// started again). Invocations waiting on it time out.
	AgentLostAfterRebootRate float64
	// CommandFailureRate is the share of invocations (any document) that
	// exit with code 1, whatever the document would have done.
	CommandFailureRate float64
	// CommandHangRate is the share of invocations that never finish and end
	// in an execution timeout.
	CommandHangRate float64
	// PatchFailureRate is the share of AWS-RunPatchBaseline installs that
	// fail on an instance: some patches stay failed and the exit code is 1.
	PatchFailureRate float64
}

func (l *SSMLatencies) withDefaults() {
	l.Register = l.Register.orDefault(30*time.Second, 150*time.Second)
	l.Reconnect = l.Reconnect.orDefault(10*time.Second, 40*time.Second)
	l.Delivery = l.Delivery.orDefault(time.Second, 5*time.Second)
	l.Shell = l.Shell.orDefault(2*time.Second, 20*time.Second)
	l.Scan = l.Scan.orDefault(30*time.Second, 120*time.Second)
	l.Install = l.Install.orDefault(2*time.Minute, 10*time.Minute)
	l.Cancel = l.Cancel.orDefault(time.Second, 5*time.Second)
}

// ssmState is the SSM part of the Sim's state (guarded by Sim.mu).
type ssmState struct {
	agents   map[string]*agent // by instance ID
	agentSeq []*agent          // registration order (DescribeInstanceInformation)
	commands map[string]*command
	cmdSeq   []*command // send order
	docs     map[string]*Document
	shell    func(instanceID string, commands []string) (exitCode int, stdout, stderr string)
	patches  map[string]*patchState
}

// agent is the SSM agent of one instance.
type agent struct {
	in         *instance
	rng        *rand.Rand
	unmanaged  bool // never registers
	registered bool
	online     bool
	lost       bool   // did not come back after a reboot (Faults.SSM.AgentLostAfterRebootRate)
	gen        uint64 // bumped at every boot, reboot and loss: scheduled reconnects check it
	regTime    time.Time
	lastPing   time.Time
	// waiting are invocations dispatched while the agent was offline, or
	// running ones whose instance rebooted; they continue when it is back.
	waiting []*invocation
}

func (s *Sim) initSSM() {
	s.opts.Latency.SSM.withDefaults()
	s.ssm = ssmState{
		agents:   map[string]*agent{},
		commands: map[string]*command{},
		docs:     map[string]*Document{},
		patches:  map[string]*patchState{},
	}
	s.registerBuiltinDocuments()
	s.ec2.onBoot = append(s.ec2.onBoot, s.agentBoot)
	s.ec2.onReboot = append(s.ec2.onReboot, s.agentReboot)
}

// agentOf returns in's agent, creating it on first use (lock held).
func (s *Sim) agentOf(in *instance) *agent {
	ag := s.ssm.agents[in.id]
	if ag == nil {
		ag = &agent{in: in, rng: s.resourceRand("ssm-agent/" + in.id)}
		ag.unmanaged = ag.rng.Float64() < s.opts.Faults.SSM.UnmanagedRate
		s.ssm.agents[in.id] = ag
	}
	return ag
}

// agentBoot runs when in enters running after a launch or a start: the
// agent registers (first boot) or reconnects after a delay.
func (s *Sim) agentBoot(at time.Time, in *instance) {
	ag := s.agentOf(in)
	ag.gen++
	ag.online, ag.lost = false, false
	if ag.unmanaged {
		return
	}
	lat := &s.opts.Latency.SSM
	d := lat.Reconnect
	if !ag.registered {
		d = lat.Register
	}
	s.agentOnlineAfter(at, ag, s.draw(ag.rng, d))
}

// agentReboot runs when in is rebooted: the agent drops offline and, unless
// the reboot loses it, reconnects once the OS is back.
func (s *Sim) agentReboot(at time.Time, in *instance) {
	ag := s.agentOf(in)
	ag.gen++
	ag.online = false
	if ag.unmanaged || !ag.registered {
		return
	}
	s.interruptRunning(at, ag)
	if ag.rng.Float64() < s.opts.Faults.SSM.AgentLostAfterRebootRate {
		ag.lost = true
		return
	}
	d := s.draw(ag.rng, s.opts.Latency.Reboot) + s.draw(ag.rng, s.opts.Latency.SSM.Reconnect)
	s.agentOnlineAfter(at, ag, d)
}

func (s *Sim) agentOnlineAfter(at time.Time, ag *agent, d time.Duration) {
	gen := ag.gen
	s.schedule(at.Add(d), func(due time.Time) {
		if ag.gen != gen || ag.in.expired || ag.in.state != types.InstanceStateNameRunning {
			return
		}
		ag.online = true
		ag.lastPing = due
		if !ag.registered {
			ag.registered = true
			ag.regTime = due
			s.ssm.agentSeq = append(s.ssm.agentSeq, ag)
		}
		waiting := ag.waiting
		ag.waiting = nil
		for _, inv := range waiting {
			s.agentBack(due, inv)
		}
	})
}

// isOnline reports whether ag can take commands now (lock held): registered,
// connected, and its instance running (a stop has no hook: it is read here).
func (ag *agent) isOnline() bool {
	return ag.registered && ag.online && !ag.in.expired && ag.in.state == types.InstanceStateNameRunning
}

func (ag *agent) pingStatus() ssmtypes.PingStatus {
	if ag.isOnline() {
		return ssmtypes.PingStatusOnline
	}
	return ssmtypes.PingStatusConnectionLost
}

// AgentOnline reports whether the SSM agent of instance id is registered
// and online, for tests.
func (s *Sim) AgentOnline(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	ag := s.ssm.agents[id]
	return ag != nil && ag.isOnline()
}

// Limits of DescribeInstanceInformation. Source: SSM API reference,
// DescribeInstanceInformation (MaxResults 5-50, default 10; the InstanceIds
// filter takes up to 50 values).
const (
	maxInstanceInfoResults = 50
	defInstanceInfoResults = 10
	maxInstanceInfoIDs     = 50
)

// DescribeInstanceInformation lists the registered agents (managed nodes),
// in registration order, with filters InstanceIds, PingStatus,
// PlatformTypes, ResourceType and tag:KEY / tag-key, and pagination. An
// instance whose agent never registered is not listed; a stopped,
// rebooting or terminated one is ConnectionLost until it expires.
func (c *SSM) DescribeInstanceInformation(ctx context.Context, params *ssm.DescribeInstanceInformationInput, optFns ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error) {
	if params == nil {
		params = &ssm.DescribeInstanceInformationInput{}
	}
	s := c.sim
	var out *ssm.DescribeInstanceInformationOutput
	err := s.call(ctx, svcSSM, "DescribeInstanceInformation", nil, func(now time.Time) error {
		if len(params.InstanceInformationFilterList) > 0 && len(params.Filters) > 0 {
			return apiError("InvalidFilter", "InstanceInformationFilterList and Filters cannot be used together.")
		}
		limit := defInstanceInfoResults
		if params.MaxResults != nil {
			limit = int(*params.MaxResults)
			if limit < 5 || limit > maxInstanceInfoResults {
				return apiError("ValidationException", "1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 5 and %d", limit, maxInstanceInfoResults)
			}
		}
		match, err := s.instanceInfoFilter(params)
		if err != nil {
			return err
		}
		start, err := pageStart(params.NextToken)
		if err != nil {
			return err
		}
		var list []ssmtypes.InstanceInformation
		next := ""
		for i := start; i < len(s.ssm.agentSeq); i++ {
			ag := s.ssm.agentSeq[i]
			if ag.in.expired || !match(ag) {
				continue
			}
			if len(list) == limit {
				next = pageToken(i)
				break
			}
			list = append(list, s.instanceInfo(now, ag))
		}
		out = &ssm.DescribeInstanceInformationOutput{InstanceInformationList: list}
		if next != "" {
			out.NextToken = aws.String(next)
		}
		return nil
	})
	return out, err
}

func (s *Sim) instanceInfo(now time.Time, ag *agent) ssmtypes.InstanceInformation {
	if ag.isOnline() {
		ag.lastPing = now
	}
	in := ag.in
	return ssmtypes.InstanceInformation{
		InstanceId:       aws.String(in.id),
		PingStatus:       ag.pingStatus(),
		LastPingDateTime: aws.Time(ag.lastPing),
		RegistrationDate: aws.Time(ag.regTime),
		AgentVersion:     aws.String("3.3.1142.0"),
		IsLatestVersion:  aws.Bool(true),
		PlatformType:     ssmtypes.PlatformTypeLinux,
		PlatformName:     aws.String("Amazon Linux"),
		PlatformVersion:  aws.String("2023"),
		ResourceType:     ssmtypes.ResourceTypeEc2Instance,
		IPAddress:        aws.String(ipString(in.ip)),
		ComputerName:     aws.String(fmt.Sprintf("ip-%s.ec2.internal", ipString(in.ip))),
		SourceId:         aws.String(in.id),
		SourceType:       ssmtypes.SourceTypeAwsEc2Instance,
	}
}

// instanceInfoFilter builds the filter of a DescribeInstanceInformation call
// (lock held). Filters on the same key are ORed within, ANDed across keys.
func (s *Sim) instanceInfoFilter(p *ssm.DescribeInstanceInformationInput) (func(*agent) bool, error) {
	type pred func(*agent) bool
	var preds []pred
	add := func(key string, values []string) error {
		if len(values) == 0 {
			return apiError("InvalidInstanceInformationFilterValue", "The filter %s has no values.", key)
		}
		set := map[string]bool{}
		for _, v := range values {
			set[v] = true
		}
		switch {
		case key == "InstanceIds":
			if len(values) > maxInstanceInfoIDs {
				return apiError("InvalidInstanceInformationFilterValue", "The InstanceIds filter takes at most %d values.", maxInstanceInfoIDs)
			}
			preds = append(preds, func(a *agent) bool { return set[a.in.id] })
		case key == "PingStatus":
			preds = append(preds, func(a *agent) bool { return set[string(a.pingStatus())] })
		case key == "PlatformTypes":
			preds = append(preds, func(*agent) bool { return set[string(ssmtypes.PlatformTypeLinux)] })
		case key == "ResourceType":
			preds = append(preds, func(*agent) bool { return set[string(ssmtypes.ResourceTypeEc2Instance)] })
		case key == "tag-key":
			preds = append(preds, func(a *agent) bool {
				for k := range a.in.allTags() {
					if set[k] {
						return true
					}
				}
				return false
			})
		case len(key) > 4 && key[:4] == "tag:":
			k := key[4:]
			preds = append(preds, func(a *agent) bool {
				v, ok := a.in.allTags()[k]
				return ok && set[v]
			})
		default:
			return apiError("InvalidInstanceInformationFilterValue", "The filter key %s is not supported.", key)
		}
		return nil
	}
	for _, f := range p.Filters {
		if err := add(aws.ToString(f.Key), f.Values); err != nil {
			return nil, err
		}
	}
	for _, f := range p.InstanceInformationFilterList {
		key := string(f.Key)
		if key == "InstanceIds" || key == "PingStatus" || key == "PlatformTypes" || key == "ResourceType" {
			if err := add(key, f.ValueSet); err != nil {
				return nil, err
			}
			continue
		}
		return nil, apiError("InvalidInstanceInformationFilterValue", "The filter key %s is not supported.", key)
	}
	return func(a *agent) bool {
		for _, p := range preds {
			if !p(a) {
				return false
			}
		}
		return true
	}, nil
}

// pageStart and pageToken encode a NextToken as the index to resume at.
func pageStart(tok *string) (int, error) {
	t := aws.ToString(tok)
	if t == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 {
		return 0, apiError("InvalidNextToken", "The specified token isn't valid.")
	}
	return n, nil
}

func pageToken(i int) string { return strconv.Itoa(i) }
