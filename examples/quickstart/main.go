// Command quickstart runs a full maintenance cycle of ec2ops on the
// embedded simulator, on a fleet of 200 instances, with simulated time
// compressed so that it takes seconds:
//
//  1. the Balancer recommends what to bake into the image and what to
//     install at boot;
//  2. the Baker bakes that image on a builder, running the layers through
//     Systems Manager Run Command;
//  3. a canary, then a rolling surge replacement of the fleet onto the new
//     image (lifecycle Rollout with Surge), capacity never below the fleet;
//  4. CloudWatch recovery alarms reconciled to exactly the fleet (recovery
//     Installer), while a few instances are impaired and brought back
//     (AWS's recovery for host failures, the Watchdog for OS failures,
//     with the Surge's ReplaceInstance as its last resort);
//  5. patching in waves with AWS-RunPatchBaseline (patching Patcher);
//  6. a Chef run list on one layer, a why-run first, then for real
//     (opsworks, through AWS-ApplyChefRecipes);
//  7. AMI retention: the old image is retired only now that nothing uses it.
//
// No AWS account or credentials are needed:
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/ami"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/internal/exampleenv"
	"github.com/ec2ops/ec2ops/lifecycle"
	"github.com/ec2ops/ec2ops/opsworks"
	"github.com/ec2ops/ec2ops/patching"
	"github.com/ec2ops/ec2ops/recovery"
)

type config struct {
	Fleet     int
	Seed      int64
	TimeScale float64 // simulated durations are multiplied by this
	Live      bool    // redraw a live view (a terminal) instead of plain lines
}

// summary is what a run did, for the closing lines and for the test.
type summary struct {
	Fleet          int
	Recommendation string
	OldImage       string
	NewImage       string
	Replaced       int
	OnNewImage     int // fleet instances running the new image
	Healthy        int // fleet instances healthy at the end
	MinHealthy     int // lowest healthy count of the fleet during the rollout
	Alarms         int // recovery alarms (StatusCheckFailed_System) for fleet instances
	Impaired       []string
	Recovered      map[string]string // impaired instance -> what brought it back
	Patched        int
	Compliant      int
	ChefLayer      int // instances in the Chef layer
	ChefWouldRun   int // why-run: would change
	ChefChanged    int
	OldImageState  string // the old image at the end
	RetentionFirst string // the old image's decision while the fleet still used it
	SimTime        time.Duration
	Calls          map[string]int
	Violations     []string
}

func main() {
	cfg := config{}
	flag.IntVar(&cfg.Fleet, "fleet", 200, "number of simulated instances")
	flag.Int64Var(&cfg.Seed, "seed", 42, "simulator seed")
	flag.Float64Var(&cfg.TimeScale, "timescale", 0.004, "simulated durations are multiplied by this (0.004: 250x faster than real)")
	plain := flag.Bool("plain", false, "plain lines even on a terminal")
	flag.Parse()
	cfg.Live = !*plain && exampleenv.IsTerminal(os.Stdout)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	if _, err := run(ctx, os.Stdout, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
	fmt.Printf("wall time: %s\n", time.Since(start).Round(100*time.Millisecond))
}

const (
	app         = "shop"
	family      = "shop"
	alarmPrefix = "ec2ops-recovery-quickstart-"
)

func run(ctx context.Context, w io.Writer, cfg config) (s summary, err error) {
	env, err := exampleenv.New(ctx, exampleenv.Flags{Seed: cfg.Seed, TimeScale: cfg.TimeScale}, nil, w)
	if err != nil {
		return s, err
	}
	sim := env.Sim
	s.Fleet = cfg.Fleet
	pr := exampleenv.NewProgress(w, cfg.Live, env.Elapsed)
	step := func(n int, format string, args ...any) {
		pr.Done()
		pr.Println("\n%d. %s", n, fmt.Sprintf(format, args...))
	}
	say := func(format string, args ...any) { pr.Println("   "+format, args...) }
	inFleet := func(v cloudsim.InstanceView) bool {
		return v.Tags["app"] == app && (v.State == "running" || v.State == "pending")
	}
	defer func() {
		s.SimTime = env.Elapsed()
		s.Calls = sim.Calls()
		s.Violations = sim.Violations()
		if err == nil {
			report(w, s)
		}
	}()

	pr.Println("ec2ops quickstart on %s", env.Target())

	// The starting point: a fleet of 200 on an image baked 40 days ago,
	// in two OpsWorks-style layers. Nothing here is ec2ops yet.
	base := sim.AddImage(cloudsim.AddImageInput{Name: "al2023-ami-2023.7.20250301.0-kernel-6.1-x86_64", Owner: "amazon", Public: true,
		Created: time.Now().Add(-20 * 24 * time.Hour)})
	s.OldImage = sim.AddImage(cloudsim.AddImageInput{Name: "shop-20250120", Created: time.Now().Add(-40 * 24 * time.Hour),
		Tags: map[string]string{ami.TagFamily: family}})
	ids, err := env.LaunchFleet(ctx, exampleenv.FleetSpec{N: cfg.Fleet, ImageID: s.OldImage,
		Tags: map[string]string{"app": app}, Layers: []string{"web", "worker"}})
	if err != nil {
		return s, err
	}
	sim.TrackCapacity("fleet", inFleet)
	pr.Println("set-up: %d m5.large instances (layers web and worker) on %s, healthy, SSM agents online, at t+%s",
		len(ids), s.OldImage, env.Elapsed())

	// 1. What to bake.
	step(1, "Balancer: what goes into the image, what installs at boot")
	rec, err := ami.Balance(balancerInput())
	if err != nil {
		return s, err
	}
	s.Recommendation = rec.Strategy
	say("%s: bake %v, install at boot %v", rec.Strategy, rec.Baked, rec.AtBoot)
	say("boot %.1f min (SLO 5), %.2f build hours a week; %s", rec.BootMinutes, rec.BuildHoursPerWeek, rec.Reason)
	for _, t := range rec.Thresholds {
		if t.Input == "LaunchesPerDay" {
			say("%s", t.Text)
		}
	}

	// 2. Bake it.
	step(2, "Baker: a builder from %s, layers through Run Command, CreateImage", base)
	runner := env.Runner(nil)
	recipe := rec.Recipe(base, "shop-{date}-{bake}", family)
	recipe.InstanceProfile = "ec2ops-builder"
	baker := ami.NewBaker(sim.EC2(), func(o *ami.BakerOptions) {
		o.Runner = runner // an ami.AgentWaiter: the Baker waits for the builder's SSM agent
		o.AgentTimeout = env.D(10 * time.Minute)
		o.Limiter = env.EC2Limiter()
		o.Observer = pr
		o.PollInterval = env.D(15 * time.Second)
		o.CleanupTimeout = max(env.D(2*time.Minute), time.Second)
	})
	baked, err := baker.Bake(ctx, recipe)
	if err != nil {
		return s, fmt.Errorf("bake: %w", err)
	}
	s.NewImage = baked.Image.ID
	say("image %s (%s) %s at t+%s; builder %s terminated", baked.Image.ID, baked.Image.Name, baked.Image.State, env.Elapsed(), baked.BuilderID)

	// Retention, before the rollout: the old image is still in use.
	retention := ami.NewRetention(sim.EC2(), sim.AutoScaling(), []ami.Family{{
		Name: family, TagKey: ami.TagFamily, TagValue: family, KeepNewest: 1,
		DeprecateAfter: 14 * 24 * time.Hour, DeregisterAfter: 30 * 24 * time.Hour,
	}}, func(o *ami.RetentionOptions) { o.Limiter = env.EC2Limiter(); o.Observer = pr })
	if rp, err := retention.Plan(ctx); err == nil {
		for _, d := range rp.Decisions {
			if d.Image.ID == s.OldImage {
				s.RetentionFirst = string(d.Action)
				say("retention plan now: %s %s (%s)", d.Image.Name, d.Action, strings.Join(d.Reasons, "; "))
			}
		}
	} else {
		return s, err
	}

	// 3. Roll the fleet onto it.
	step(3, "Rollout: canary of 2, then the fleet, surge 25%%, never below %d healthy", len(ids))
	bootUD, err := rec.BootUserData()
	if err != nil {
		return s, err
	}
	ud := lifecycle.NewUserData([]byte(bootUD))
	lcOpts := func(o *lifecycle.Options) {
		o.TimeScale = env.Scale
		o.Seed = uint64(cfg.Seed)
		o.RequestShare = 0.5
		o.Observer = pr
	}
	surge := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{ImageID: s.NewImage, UserData: &ud}, lcOpts)
	ro := lifecycle.NewRollout(surge, lifecycle.Selector{Tags: map[string]string{"app": app}}, func(o *lifecycle.RolloutOptions) {
		o.MaxSurge = "25%"
		o.Canary = "2"
		o.BakeTime = 5 * time.Minute // scaled by Options.TimeScale
	})
	plan, err := ro.Plan(ctx)
	if err != nil {
		return s, err
	}
	say("plan: %d drifted of %d, floor %d, %d in flight, %d batches, %d API steps", len(plan.Drifted), plan.Fleet, plan.Floor, plan.InFlight, len(plan.Batches), len(plan.Steps.Steps))
	res, err := ro.Apply(ctx)
	if err != nil {
		return s, fmt.Errorf("rollout: %w", err)
	}
	s.Replaced = len(res.Replaced)
	s.MinHealthy = sim.MinHealthy("fleet")
	say("replaced %d at t+%s; healthy capacity never below %d", s.Replaced, env.Elapsed(), s.MinHealthy)
	fleet, err := exampleenv.Instances(ctx, sim.EC2(), map[string]string{"app": app})
	if err != nil {
		return s, err
	}

	// 4. Recovery: alarms for the new fleet, and a few failures.
	step(4, "Recovery: alarms reconciled to the fleet; 2 host failures and 2 OS failures brought back")
	if err := recoverFleet(ctx, env, pr, say, fleet, &s); err != nil {
		return s, err
	}

	// 5. Patch in place, in waves.
	step(5, "Patching: AWS-RunPatchBaseline in waves (canary 1, 25%%, 100%%), health gates between waves")
	if err := exampleenv.WaitAgents(ctx, sim.SSM(), fleet, env.D(15*time.Second), env.D(15*time.Minute)); err != nil {
		return s, err
	}
	patcher := patching.NewPatcher(sim.SSM(), sim.EC2(), func(o *patching.PatchOptions) {
		o.Waves = []string{"25%", "100%"}
		o.SSMLimiter, o.EC2Limiter = env.SSMLimiter(), env.EC2Limiter()
		o.PollInterval = env.D(10 * time.Second)
		o.Runner = append(o.Runner, env.RunnerOptions(nil))
		o.Observer = pr
	})
	pplan, err := patcher.Plan(ctx, fleet)
	if err != nil {
		return s, err
	}
	var waves []string
	for _, wv := range pplan.Waves {
		waves = append(waves, fmt.Sprint(len(wv)))
	}
	say("plan: waves of %s instances", strings.Join(waves, ", "))
	prep, err := patcher.Apply(ctx, pplan)
	if err != nil {
		return s, fmt.Errorf("patching: %w", err)
	}
	s.Patched = prep.Count("Patched")
	for _, c := range prep.Compliance {
		if c.Compliant() {
			s.Compliant++
		}
	}
	say("patched %d, compliant %d, %d commands, at t+%s", s.Patched, s.Compliant, len(prep.CommandIDs), env.Elapsed())

	// 6. Chef on one layer.
	step(6, "Configuration: a Chef run list on layer web, why-run first, then for real")
	cfgr := opsworks.New(runner, sim.EC2(), func(o *opsworks.Options) {
		o.EC2Limiter = env.EC2Limiter()
		o.Observer = pr
	})
	stack := &opsworks.Stack{
		Name:       app,
		Backend:    &opsworks.Chef{Source: opsworks.Source{Type: "S3", Path: "https://s3.amazonaws.com/acme-cookbooks/shop.tar.gz"}},
		Attributes: map[string]any{"shop": map[string]any{"port": 8080}},
		Layers: []opsworks.Layer{{
			Name:     "web",
			Selector: []opsworks.Selector{{Key: "tag:app", Values: []string{app}}, {Key: "tag:Layer", Values: []string{"web"}}},
			RunLists: map[opsworks.Event][]string{opsworks.Deploy: {"nginx::default", "shop::deploy"}},
		}},
	}
	dplan, err := cfgr.Plan(ctx, stack, opsworks.Deployment{Event: opsworks.Deploy, DryRun: true})
	if err != nil {
		return s, err
	}
	for _, lr := range dplan.Layers {
		s.ChefLayer += len(lr.Instances())
		say("plan: layer %s, %s on %d instances, run list %v", lr.Layer, lr.Document, len(lr.Instances()), lr.RunList)
	}
	dry, err := cfgr.Apply(ctx, dplan)
	if err != nil {
		return s, fmt.Errorf("chef why-run: %w", err)
	}
	s.ChefWouldRun = dry.Count(opsworks.WouldChange)
	say("why-run: %d would change", s.ChefWouldRun)
	run2, err := cfgr.Run(ctx, stack, opsworks.Deployment{Event: opsworks.Deploy, Comment: "quickstart deploy"})
	if err != nil {
		return s, fmt.Errorf("chef run: %w", err)
	}
	s.ChefChanged = run2.Count(opsworks.Changed)
	say("run: %d changed at t+%s", s.ChefChanged, env.Elapsed())

	// 7. Retire the old image, now that nothing uses it.
	step(7, "Retention: retire old images of family %s, never one in use", family)
	rp, err := retention.Plan(ctx)
	if err != nil {
		return s, err
	}
	for _, d := range rp.Decisions {
		say("%s %s: %s (%s)", d.Image.ID, d.Image.Name, d.Action, strings.Join(d.Reasons, "; "))
	}
	if _, err := retention.Apply(ctx, rp); err != nil {
		return s, fmt.Errorf("retention: %w", err)
	}
	s.OldImageState, _ = sim.ImageState(s.OldImage)
	say("old image %s is %s", s.OldImage, s.OldImageState)
	pr.Done()

	for _, v := range sim.Instances() {
		if !inFleet(v) {
			continue
		}
		if v.ImageID == s.NewImage {
			s.OnNewImage++
		}
		if v.Healthy {
			s.Healthy++
		}
	}
	return s, nil
}

// recoverFleet reconciles the recovery alarms with the fleet while, at the same
// time, four instances fail and are brought back.
func recoverFleet(ctx context.Context, env *exampleenv.Env, pr *exampleenv.Progress, say func(string, ...any), fleet []string, s *summary) error {
	sim := env.Sim
	installer := recovery.NewInstaller(sim.EC2(), sim.CloudWatch(), func(o *recovery.AlarmOptions) {
		o.Region = env.Region
		o.Prefix = alarmPrefix
		o.Observer = pr
		o.TimeScale = env.Scale
	})
	sel := recovery.Fleet{Filters: []types.Filter{{Name: aws.String("tag:app"), Values: []string{app}}}}
	var wg sync.WaitGroup
	var alarmErr error
	var aplan *recovery.AlarmPlan
	wg.Add(1)
	go func() {
		defer wg.Done()
		aplan, alarmErr = installer.Reconcile(ctx, sel)
	}()

	// Two hosts fail (system status check) and two OSes hang (instance
	// status check), spread over the fleet.
	s.Impaired = []string{fleet[10], fleet[len(fleet)/2], fleet[30], fleet[len(fleet)-20]}
	s.Recovered = map[string]string{}
	sim.ImpairSystem(s.Impaired[0])
	sim.ImpairSystem(s.Impaired[1])
	sim.ImpairInstance(s.Impaired[2])
	sim.ImpairInstance(s.Impaired[3])
	say("impaired: %s, %s (host), %s, %s (OS)", s.Impaired[0], s.Impaired[1], s.Impaired[2], s.Impaired[3])

	replacer := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{}, func(o *lifecycle.Options) {
		o.TimeScale = env.Scale
		o.RequestShare = 0.25
	})
	wd := recovery.NewWatchdog(sim.EC2(), replacer, func(o *recovery.WatchdogOptions) {
		o.Interval = env.D(30 * time.Second)
		o.ImpairedFor = env.D(3 * time.Minute)
		o.AWSRecoveryGrace = env.D(15 * time.Minute)
		o.ActionTimeout = env.D(15 * time.Minute)
		o.RefreshInterval = env.D(5 * time.Minute)
		o.MaxConcurrent = "5"
		o.RateShare = 0.25
		o.Observer = pr
		o.TimeScale = env.Scale
	})
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wdone := make(chan error, 1)
	go func() { wdone <- wd.Run(wctx, sel) }()
	for {
		healthy := 0
		for _, id := range s.Impaired {
			if v, ok := sim.Instance(id); ok && v.Healthy {
				healthy++
			}
		}
		if healthy == len(s.Impaired) {
			break
		}
		if err := exampleenv.Sleep(ctx, env.D(30*time.Second)); err != nil {
			cancel()
			<-wdone
			wg.Wait()
			return err
		}
	}
	cancel()
	if err := <-wdone; err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("watchdog: %w", err)
	}
	for _, r := range sim.Recoveries() {
		if r.Outcome == "succeeded" {
			s.Recovered[r.InstanceID] = "AWS recovery (" + r.Mechanism + ")"
		}
	}
	for _, a := range wd.Stats().Actions {
		if _, done := s.Recovered[a.InstanceID]; !done {
			s.Recovered[a.InstanceID] = "Watchdog " + a.Action
		}
	}
	for _, id := range s.Impaired {
		say("%s healthy again: %s", id, s.Recovered[id])
	}
	say("impaired instances back at t+%s; waiting for the alarm reconcile (PutMetricAlarm is paced at CloudWatch's 3 a second)", env.Elapsed())
	wg.Wait()
	if alarmErr != nil {
		return fmt.Errorf("recovery alarms: %w", alarmErr)
	}
	fleetSet := map[string]bool{}
	for _, id := range fleet {
		fleetSet[id] = true
	}
	for _, a := range sim.Alarms() {
		if strings.HasPrefix(a.Name, alarmPrefix) && a.MetricName == "StatusCheckFailed_System" && fleetSet[a.InstanceID] {
			s.Alarms++
		}
	}
	say("alarms: %d created, %d deleted; %d recover alarms for %d instances at t+%s", len(aplan.Create), len(aplan.Delete), s.Alarms, len(fleet), env.Elapsed())
	return nil
}

func balancerInput() ami.BalancerInput {
	return ami.BalancerInput{
		Layers: []ami.BalancerLayer{
			{Layer: ami.Layer{Name: "os"}, ChangesPerWeek: 0.25},
			{Layer: ami.Layer{Name: "patches", Commands: []string{"dnf -y upgrade --security"}}, BakeMinutes: 6, BootMinutes: 4, ChangesPerWeek: 1},
			{Layer: ami.Layer{Name: "runtime", Commands: []string{"dnf -y install java-21-amazon-corretto-headless"}}, BakeMinutes: 3, BootMinutes: 2.5, ChangesPerWeek: 0.1},
			{Layer: ami.Layer{Name: "app", Commands: []string{"aws s3 cp s3://acme-artifacts/shop.jar /opt/shop/"}}, BakeMinutes: 1, BootMinutes: 1, ChangesPerWeek: 3},
			{Layer: ami.Layer{Name: "config", UserData: "#cloud-config\nruncmd: [systemctl restart shop]\n"}, BakeMinutes: 0.5, BootMinutes: 0.5, ChangesPerWeek: 7},
		},
		LaunchesPerDay: 40,
		BootSLOMinutes: 5,
	}
}

func report(w io.Writer, s summary) {
	fmt.Fprintf(w, "\nSummary (%s simulated)\n", s.SimTime)
	fmt.Fprintf(w, "  image     %s (%s) baked; %s: %s\n", s.NewImage, s.Recommendation, s.OldImage, s.OldImageState)
	fmt.Fprintf(w, "  fleet     %d of %d on the new image, %d healthy; %d replaced, healthy capacity never below %d\n",
		s.OnNewImage, s.Fleet, s.Healthy, s.Replaced, s.MinHealthy)
	fmt.Fprintf(w, "  recovery  %d recover alarms; %d impaired instances healthy again\n", s.Alarms, len(s.Recovered))
	fmt.Fprintf(w, "  patching  %d patched, %d compliant\n", s.Patched, s.Compliant)
	fmt.Fprintf(w, "  chef      %d would change (why-run), %d changed, on %d instances of layer web\n", s.ChefWouldRun, s.ChefChanged, s.ChefLayer)
	if len(s.Violations) > 0 {
		fmt.Fprintf(w, "  invariant violations: %v\n", s.Violations)
	}
	fmt.Fprintf(w, "  API       %s\n", exampleenv.CallTable(s.Calls))
}

var _ ec2ops.Observer = (*exampleenv.Progress)(nil)
