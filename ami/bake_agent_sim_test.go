package ami_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/ami"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/patching"
)

// patching's Runner is the Baker's ShellRunner and AgentWaiter (ami does
// not import patching; the contract is checked here).
var (
	_ ami.ShellRunner = (*patching.Runner)(nil)
	_ ami.AgentWaiter = (*patching.Runner)(nil)
)

// shellOnly hides the Runner's WaitManaged: the Baker then relies on
// retrying RunShell refusals (ec2ops.ErrUnmanaged).
type shellOnly struct{ r *patching.Runner }

func (s shellOnly) RunShell(ctx context.Context, ids, cmds []string) error {
	return s.r.RunShell(ctx, ids, cmds)
}

// TestBakeLateAgentOnSim: the builder passes its status checks 1 minute
// after it runs, but its SSM agent registers 3 to 4 minutes after it runs,
// 2 to 3 minutes later (AWS-FACTS.md: a fresh agent can take more than 2
// minutes). With the real patching.Runner, the bake succeeds on its first
// run, whether the Baker waits through WaitManaged or retries RunShell, and
// no command is sent before the agent is online.
func TestBakeLateAgentOnSim(t *testing.T) {
	for _, tc := range []struct {
		name   string
		runner func(*patching.Runner) ami.ShellRunner
	}{
		{"AgentWaiter", func(r *patching.Runner) ami.ShellRunner { return r }},
		{"RetryUnmanaged", func(r *patching.Runner) ami.ShellRunner { return shellOnly{r} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sim := cloudsim.New(func(o *cloudsim.Options) {
					o.Seed = 5
					o.Latency.StatusInit = cloudsim.Dist{Min: time.Minute, Max: time.Minute}
					o.Latency.SSM.Register = cloudsim.Dist{Min: 3 * time.Minute, Max: 4 * time.Minute}
				})
				base := sim.AddImage(cloudsim.AddImageInput{Name: "al2023-base", Owner: "amazon", Public: true, RootGiB: 8})
				var (
					builder                  string
					healthyAt, firstCommand  time.Time
					agentOnlineAtStatusCheck bool
				)
				runner := patching.NewRunner(sim.SSM(), func(o *patching.RunnerOptions) {
					o.PollInterval, o.MaxPollInterval, o.ResultsInterval = 5*time.Second, 15*time.Second, 5*time.Second
					o.Observer = ec2ops.ObserverFunc(func(e ec2ops.Event) {
						if e.Phase == "sent" && firstCommand.IsZero() {
							firstCommand = time.Now()
							if !sim.AgentOnline(builder) {
								t.Errorf("command sent to %s before its agent was online", builder)
							}
						}
					})
				})
				obs := ec2ops.ObserverFunc(func(e ec2ops.Event) {
					switch {
					case e.Phase == "launch-builder" && e.Done == 1:
						builder = e.Resource
					case healthyAt.IsZero() && (e.Phase == "wait-agent" || e.Phase == "layers"):
						// The status checks have just passed.
						healthyAt = time.Now()
						agentOnlineAtStatusCheck = sim.AgentOnline(builder)
					}
				})
				b := ami.NewBaker(sim.EC2(), func(o *ami.BakerOptions) { o.Runner = tc.runner(runner); o.Observer = obs })
				r := ami.Recipe{Name: "web-{bake}", Family: "web", BaseImage: base, InstanceProfile: "ec2ops-builder",
					Layers: []ami.Layer{
						{Name: "os", UserData: "#cloud-config\npackage_update: true\n"},
						{Name: "app", Commands: []string{"install-app --version 1.2.3", "systemctl enable app"}},
					}}
				start := time.Now()
				res, err := b.Bake(context.Background(), r)
				if err != nil {
					var be *ami.BakeError
					errors.As(err, &be)
					t.Fatalf("first run failed: %v (phase %+v)", err, be)
				}
				took := time.Since(start)
				if res.Adopted || res.Image.State != "available" || res.BuilderID != builder {
					t.Fatalf("result %+v", res)
				}
				if agentOnlineAtStatusCheck || healthyAt.IsZero() {
					t.Fatalf("the agent was online when the status checks passed (at %v): the test does not reproduce the race", healthyAt.Sub(start))
				}
				calls := sim.Calls()
				// cloud-init and the app layer: two commands, none refused
				// (a refusal sends nothing) and none sent twice.
				if calls["ssm:SendCommand"] != 2 {
					t.Errorf("SendCommand calls %d, want 2", calls["ssm:SendCommand"])
				}
				if u := b.Policy().Merge(runner.Policy()).Uncovered(calls); len(u) > 0 {
					t.Errorf("calls outside the policies: %v", u)
				}
				t.Logf("bake %v (simulated); status checks passed at +%v, first command sent %v later; DescribeInstanceInformation %d, SendCommand %d",
					took.Round(time.Second), healthyAt.Sub(start).Round(time.Second), firstCommand.Sub(healthyAt).Round(time.Second),
					calls["ssm:DescribeInstanceInformation"], calls["ssm:SendCommand"])
				time.Sleep(2 * time.Minute)
				for _, v := range sim.Instances() {
					if v.Tags[ami.TagRole] == ami.RoleBuilder && v.State != "terminated" {
						t.Errorf("builder %s is %s", v.ID, v.State)
					}
				}
			})
		})
	}
}
