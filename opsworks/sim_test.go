package opsworks_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/opsworks"
	"github.com/ec2ops/ec2ops/patching"
)

var (
	_ opsworks.EC2API        = (*cloudsim.EC2)(nil)
	_ patching.CommandAPI    = (*cloudsim.SSM)(nil)
	_ opsworks.CommandRunner = (*patching.Runner)(nil)
)

// launch starts n instances tagged Layer=layer, round robin over the AZs.
func launch(t testing.TB, sim *cloudsim.Sim, layer string, n int) []string {
	t.Helper()
	var ids []string
	subnets := sim.Subnets()
	azs := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	for i := 0; i < 3 && len(ids) < n; i++ {
		k := (n - len(ids) + 2 - i) / (3 - i)
		if k == 0 {
			continue
		}
		out, err := sim.EC2().RunInstances(context.Background(), &ec2.RunInstancesInput{
			ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(int32(k)), MaxCount: aws.Int32(int32(k)),
			SubnetId: aws.String(subnets[azs[i]]),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance,
				Tags: []types.Tag{{Key: aws.String("Layer"), Value: aws.String(layer)}}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range out.Instances {
			ids = append(ids, aws.ToString(in.InstanceId))
		}
	}
	return ids
}

func fastRunner(o *patching.RunnerOptions) {
	o.PollInterval, o.MaxPollInterval, o.ResultsInterval = 5*time.Second, 15*time.Second, 5*time.Second
}

func newConfigurator(sim *cloudsim.Sim, optFns ...func(*opsworks.Options)) *opsworks.Configurator {
	var o opsworks.Options
	for _, f := range optFns {
		f(&o)
	}
	r := patching.NewRunner(sim.SSM(), fastRunner, func(ro *patching.RunnerOptions) {
		ro.Observer, ro.SkipUnmanaged, ro.Logger = o.Observer, o.SkipUnmanaged, o.Logger
	})
	return opsworks.New(r, sim.EC2(), optFns...)
}

func chefStack() *opsworks.Stack {
	return &opsworks.Stack{
		Name: "shop",
		Backend: &opsworks.Chef{Source: opsworks.Source{Type: "S3", Path: "https://s3.amazonaws.com/cookbooks/shop.tar.gz"},
			ChefClientVersion: "18"},
		Attributes: map[string]any{"app": map[string]any{"port": 8080.0, "db": map[string]any{"password": "s3cr3t-pw"}}},
		Sensitive:  []string{"app.db.password"},
		Layers: []opsworks.Layer{{
			Name:     "web",
			Selector: []opsworks.Selector{{Key: "tag:Layer", Values: []string{"web"}}},
			RunLists: map[opsworks.Event][]string{
				opsworks.Setup:     {"nginx::default"},
				opsworks.Configure: {"recipe[shop::configure]"},
				opsworks.Deploy:    {"recipe[shop::deploy]"},
				opsworks.Shutdown:  {"recipe[shop::drain]"},
			},
		}},
	}
}

// TestChefDryRunThenApply: a why-run changes nothing, the real run
// converges every instance, a second run changes nothing.
func TestChefDryRunThenApply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 3 })
		ids := launch(t, sim, "web", 12)
		launch(t, sim, "db", 2)
		time.Sleep(5 * time.Minute)
		sim.ResetCounters()
		var logs bytes.Buffer
		rec := &ec2ops.Recorder{}
		c := newConfigurator(sim, func(o *opsworks.Options) {
			o.Observer, o.Logger = rec, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		})
		ctx := context.Background()
		start := time.Now()
		plan, err := c.Plan(ctx, chefStack(), opsworks.Deployment{Event: opsworks.Setup, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Layers) != 1 || len(plan.Layers[0].Instances()) != 12 || plan.Layers[0].Document != "AWS-ApplyChefRecipes" {
			t.Fatalf("plan %+v", plan.Layers)
		}
		if s := plan.String(); strings.Contains(s, "s3cr3t") || !strings.Contains(s, "WhyRun=True") {
			t.Fatalf("plan text:\n%s", s)
		}
		if got := fmt.Sprint(plan.Layers[0].Attributes); strings.Contains(got, "s3cr3t") || !strings.Contains(got, "[sensitive]") {
			t.Fatalf("plan attributes %s", got)
		}
		rep, err := c.Apply(ctx, plan)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Count(opsworks.WouldChange) != 12 {
			t.Fatalf("dry run outcomes %v", rep.Results)
		}
		for _, id := range ids {
			if n := sim.ConfigNode(id); len(n.Applied) != 0 || n.DryRuns["chef"] != 1 {
				t.Fatalf("dry run changed %s: %+v", id, n)
			}
		}
		rep, err = c.Run(ctx, chefStack(), opsworks.Deployment{Event: opsworks.Setup})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Count(opsworks.Changed) != 12 {
			t.Fatalf("apply outcomes %v", rep.Results)
		}
		rep, err = c.Run(ctx, chefStack(), opsworks.Deployment{Event: opsworks.Setup})
		if err != nil || rep.Count(opsworks.Unchanged) != 12 {
			t.Fatalf("rerun %v %v", err, rep)
		}
		t.Logf("3 runs on 12 instances: %v simulated, calls %v", time.Since(start), sim.Calls())
		for _, e := range rec.Events() {
			if strings.Contains(e.Message, "s3cr3t") || (e.Err != nil && strings.Contains(e.Err.Error(), "s3cr3t")) {
				t.Fatalf("secret in event %+v", e)
			}
		}
		if strings.Contains(logs.String(), "s3cr3t") {
			t.Fatal("secret in logs")
		}
		if un := c.Policy().Uncovered(sim.Calls()); len(un) > 0 {
			t.Fatalf("calls outside Policy(): %v", un)
		}
	})
}

// TestPuppetDetailedExitCodes maps 0/2/4/6 to per-instance outcomes.
func TestPuppetDetailedExitCodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 5 })
		ids := launch(t, sim, "app", 20)
		time.Sleep(5 * time.Minute)
		failing := map[string]bool{ids[1]: true, ids[2]: true, ids[3]: true}
		sim.ScriptConfigManagement(func(r cloudsim.ConfigRun) bool { return failing[r.InstanceID] })
		stack := &opsworks.Stack{Name: "pup", Backend: &opsworks.Puppet{ModulePath: "/etc/puppetlabs/code/modules"},
			Attributes: map[string]any{"tier": "app"},
			Layers: []opsworks.Layer{{Name: "app", Selector: []opsworks.Selector{{Key: "tag:Layer", Values: []string{"app"}}},
				RunLists: map[opsworks.Event][]string{opsworks.Configure: {"role::app", "profile::base"}}}}}
		c := newConfigurator(sim, func(o *opsworks.Options) { o.FailureThreshold = "100%" })
		ctx := context.Background()
		rep, err := c.Run(ctx, stack, opsworks.Deployment{Event: opsworks.Configure, DryRun: true})
		if err != nil || rep.Count(opsworks.WouldChange) != 20 {
			t.Fatalf("noop: %v %v", err, rep.Results)
		}
		rep, err = c.Run(ctx, stack, opsworks.Deployment{Event: opsworks.Configure})
		var derr *opsworks.DeployError
		if !errors.As(err, &derr) || len(derr.Failed) != 3 {
			t.Fatalf("err %v", err)
		}
		for id := range failing {
			o := rep.Results[id].Outcome
			if o != opsworks.Failed && o != opsworks.ChangedWithFailures {
				t.Fatalf("%s outcome %s", id, o)
			}
			if code := rep.Results[id].Invocation.ResponseCode; (o == opsworks.Failed) != (code == 4) {
				t.Fatalf("%s outcome %s exit %d", id, o, code)
			}
		}
		if rep.Count(opsworks.Changed) != 17 {
			t.Fatalf("changed %d", rep.Count(opsworks.Changed))
		}
		sim.ScriptConfigManagement(nil)
		rep, err = c.Run(ctx, stack, opsworks.Deployment{Event: opsworks.Configure})
		if err != nil || rep.Count(opsworks.Unchanged) != 17 || rep.Count(opsworks.Changed) != 3 {
			t.Fatalf("rerun %v: unchanged %d changed %d", err, rep.Count(opsworks.Unchanged), rep.Count(opsworks.Changed))
		}
	})
}

// TestFailureThresholdStopsWaves: with a canary, a failing canary stops the
// layer before the other waves.
func TestFailureThresholdStopsWaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 9 })
		ids := launch(t, sim, "web", 9)
		time.Sleep(5 * time.Minute)
		sim.ScriptConfigManagement(func(cloudsim.ConfigRun) bool { return true })
		c := newConfigurator(sim, func(o *opsworks.Options) { o.Canary = 1; o.Waves = []string{"50%", "100%"} })
		plan, err := c.Plan(context.Background(), chefStack(), opsworks.Deployment{Event: opsworks.Deploy})
		if err != nil {
			t.Fatal(err)
		}
		if w := plan.Layers[0].Waves; len(w) < 3 || len(w[0]) != 1 {
			t.Fatalf("waves %v", w)
		}
		rep, err := c.Apply(context.Background(), plan)
		var derr *opsworks.DeployError
		if !errors.As(err, &derr) || !errors.Is(err, opsworks.ErrThreshold) || len(derr.Failed) != 1 || len(derr.NotRun) != len(ids)-1 {
			t.Fatalf("err %v", err)
		}
		if len(rep.CommandIDs) != 1 || strings.Contains(err.Error(), "s3cr3t") {
			t.Fatalf("commands %v err %v", rep.CommandIDs, err)
		}
	})
}

// TestAnsibleCheckMode: check mode changes nothing; the real run does.
func TestAnsibleCheckMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 11 })
		ids := launch(t, sim, "api", 4)
		time.Sleep(5 * time.Minute)
		stack := &opsworks.Stack{Name: "ans",
			Backend: &opsworks.Ansible{Source: opsworks.Source{Type: "GitHub", Owner: "acme", Repository: "playbooks", GetOptions: "branch:main",
				TokenInfo: "{{ssm-secure:github-token}}"}, InstallDependencies: true},
			Attributes: map[string]any{"env": "prod", "workers": 4.0},
			Layers: []opsworks.Layer{{Name: "api", Selector: []opsworks.Selector{{Key: "tag:Layer", Values: []string{"api"}}},
				RunLists: map[opsworks.Event][]string{opsworks.Deploy: {"deploy.yml"}}}}}
		c := newConfigurator(sim)
		rep, err := c.Run(context.Background(), stack, opsworks.Deployment{Event: opsworks.Deploy, DryRun: true})
		if err != nil || rep.Count(opsworks.WouldChange) != 4 || sim.ConfigNode(ids[0]).Applied["ansible"] != "" {
			t.Fatalf("check: %v %v", err, rep)
		}
		rep, err = c.Run(context.Background(), stack, opsworks.Deployment{Event: opsworks.Deploy})
		if err != nil || rep.Count(opsworks.Changed) != 4 || sim.ConfigNode(ids[0]).Applied["ansible"] == "" {
			t.Fatalf("apply: %v %v", err, rep)
		}
		v, _ := sim.Command(rep.CommandIDs[0])
		if v.Document != "AWS-ApplyAnsiblePlaybooks" {
			t.Fatalf("document %s", v.Document)
		}
	})
}

// TestBootstrapIdempotent: the second bootstrap finds the agent and
// changes nothing; the inline secret never shows in errors.
func TestBootstrapIdempotent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 13 })
		ids := launch(t, sim, "web", 3)
		time.Sleep(5 * time.Minute)
		c := newConfigurator(sim)
		b := opsworks.Bootstrap{Tool: "puppet", Server: "puppet.example.com", Secret: "challenge-s3cr3t"}
		res, err := c.BootstrapAgents(context.Background(), b, ids)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(res.Invocations[ids[0]].Output, "installed puppet") {
			t.Fatalf("output %q", res.Invocations[ids[0]].Output)
		}
		res, err = c.BootstrapAgents(context.Background(), b, ids)
		if err != nil || !strings.Contains(res.Invocations[ids[0]].Output, "nothing to do") {
			t.Fatalf("second bootstrap %v %q", err, res.Invocations[ids[0]].Output)
		}
		if sim.ConfigNode(ids[2]).Agents["puppet"] != "puppet.example.com" {
			t.Fatal("agent not registered")
		}
		// Puppet agent mode now works on the bootstrapped instances.
		stack := &opsworks.Stack{Name: "pe", Backend: &opsworks.Puppet{Agent: true, Server: "puppet.example.com", Environment: "production"},
			Layers: []opsworks.Layer{{Name: "web", Selector: []opsworks.Selector{{Key: "tag:Layer", Values: []string{"web"}}},
				RunLists: map[opsworks.Event][]string{opsworks.Configure: {}}}}}
		stack.Layers[0].RunLists[opsworks.Configure] = []string{"web"}
		if _, err := c.Run(context.Background(), stack, opsworks.Deployment{Event: opsworks.Configure}); err != nil {
			t.Fatal(err)
		}
		sim.ScriptConfigManagement(func(r cloudsim.ConfigRun) bool { return r.Tool == "puppet-bootstrap" })
		more := launch(t, sim, "web", 1)
		time.Sleep(5 * time.Minute)
		_, err = c.BootstrapAgents(context.Background(), b, more)
		var cerr *patching.CommandError
		if !errors.As(err, &cerr) || strings.Contains(err.Error(), "challenge-s3cr3t") {
			t.Fatalf("err %v", err)
		}
	})
}

// TestLifecycleFuncs: Setup+Deploy on a new instance, Configure on the
// others when one joins or leaves, Shutdown on the leaving one.
func TestLifecycleFuncs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 17 })
		ids := launch(t, sim, "web", 3)
		time.Sleep(5 * time.Minute)
		c := newConfigurator(sim)
		stack := chefStack()
		ctx := context.Background()
		// A replacement whose agent is not registered yet: the hook waits.
		fresh := launch(t, sim, "web", 1)[0]
		time.Sleep(40 * time.Second)
		if err := c.SetupFunc(stack, "web")(ctx, fresh); err != nil {
			t.Fatal(err)
		}
		before := len(sim.CommandIDs())
		if err := c.ConfigureFunc(stack, "web", false)(ctx, fresh); err != nil {
			t.Fatal(err)
		}
		v, _ := sim.Command(sim.CommandIDs()[before])
		if v.Targets != 4 {
			t.Fatalf("configure after join targeted %d", v.Targets)
		}
		if err := c.ShutdownFunc(stack, "web")(ctx, ids[0]); err != nil {
			t.Fatal(err)
		}
		before = len(sim.CommandIDs())
		if err := c.ConfigureFunc(stack, "web", true)(ctx, ids[0]); err != nil {
			t.Fatal(err)
		}
		v, _ = sim.Command(sim.CommandIDs()[before])
		if _, in := v.Invocations[ids[0]]; in || v.Targets != 3 {
			t.Fatalf("configure after leave: %d targets, includes leaving: %v", v.Targets, in)
		}
		h := c.LifecycleHooks(stack, "web")
		if h.BeforeInService == nil || h.BeforeTerminate == nil {
			t.Fatal("hooks missing")
		}
	})
}
