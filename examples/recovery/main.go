// Command recovery reconciles CloudWatch recovery alarms with a fleet
// (recovery.Installer: one StatusCheckFailed_System alarm with the EC2
// recover action per instance AWS can recover, nothing else under the
// prefix), then optionally runs the Watchdog for a while: it reboots,
// stops and starts, or replaces (lifecycle Surge) instances AWS does not
// recover.
//
//	go run ./examples/recovery                   # on the embedded simulator: one OS hang, brought back
//	go run ./examples/recovery -plan
//	go run ./examples/recovery -aws -region eu-west-1 -tag app=web -watch 30m
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/exampleenv"
	"github.com/ec2ops/ec2ops/lifecycle"
	"github.com/ec2ops/ec2ops/recovery"
)

type options struct {
	env    exampleenv.Flags
	tags   exampleenv.TagsFlag
	prefix string
	watch  time.Duration
	fleet  int // simulator only
}

type result struct {
	plan     *recovery.AlarmPlan
	second   *recovery.AlarmPlan
	stats    recovery.WatchdogStats
	impaired string
	healthy  bool // the impaired instance is healthy at the end
}

func main() {
	fs := flag.NewFlagSet("recovery", flag.ExitOnError)
	o := options{tags: exampleenv.TagsFlag{}}
	o.env = *exampleenv.Register(fs, 0.005)
	fs.Var(o.tags, "tag", "select the fleet by tag KEY=VALUE (repeatable; default app=web on the simulator)")
	fs.StringVar(&o.prefix, "prefix", recovery.DefaultPrefix, "alarm name prefix: one per fleet")
	fs.DurationVar(&o.watch, "watch", 0, "run the Watchdog this long after the reconcile (default: 15m on the simulator, 0 elsewhere)")
	fs.IntVar(&o.fleet, "fleet", 10, "simulator only: instances in the fleet")
	_ = fs.Parse(os.Args[1:])
	exampleenv.Main("recovery", func(ctx context.Context) error {
		_, err := run(ctx, o, os.Stdin, os.Stdout)
		return err
	})
}

func run(ctx context.Context, o options, in io.Reader, w io.Writer) (*result, error) {
	env, err := exampleenv.New(ctx, o.env, in, w)
	if err != nil {
		return nil, err
	}
	var ids []string
	if env.Simulated() {
		if len(o.tags) == 0 {
			o.tags = exampleenv.TagsFlag{"app": "web"}
		}
		if o.watch == 0 {
			o.watch = 15 * time.Minute
		}
		if ids, err = env.LaunchFleet(ctx, exampleenv.FleetSpec{N: o.fleet, ImageID: "ami-0123456789abcdef0", Tags: o.tags}); err != nil {
			return nil, err
		}
	}
	if len(o.tags) == 0 {
		return nil, ec2ops.InvalidInput("-tag", "", "is required outside the simulator", "select the fleet, e.g. -tag app=web")
	}
	fmt.Fprintf(w, "recovery on %s\n", env.Target())
	var filters []types.Filter
	keys := make([]string, 0, len(o.tags))
	for k := range o.tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		filters = append(filters, types.Filter{Name: aws.String("tag:" + k), Values: []string{o.tags[k]}})
	}
	fleet := recovery.Fleet{Filters: filters}
	pr := exampleenv.NewProgress(w, false, env.Elapsed)
	inst := recovery.NewInstaller(env.EC2(), env.CloudWatch(), func(ao *recovery.AlarmOptions) {
		ao.Region = env.Region
		ao.Prefix = o.prefix
		ao.Observer = pr
		ao.TimeScale = env.Scale
	})
	res := &result{}
	if res.plan, err = inst.Plan(ctx, fleet); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "alarms: %d to create, %d to update, %d to delete, %d unchanged; %d instance(s) AWS cannot recover\n",
		len(res.plan.Create), len(res.plan.Update), len(res.plan.Delete), res.plan.Unchanged, len(res.plan.Unsupported))
	for _, u := range res.plan.Unsupported {
		fmt.Fprintf(w, "  %s (%s): %v\n", u.InstanceID, u.InstanceType, u.Reasons)
	}
	exampleenv.PrintPlan(w, res.plan.Plan, 6)
	if o.env.Plan {
		return res, nil
	}
	if res.plan.Mutations() > 0 {
		if err := env.Confirm(res.plan.Plan); err != nil {
			return nil, err
		}
		if err := inst.Apply(ctx, res.plan); err != nil {
			return nil, err
		}
	}
	if res.second, err = inst.Plan(ctx, fleet); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "reconciled: a second plan has %d mutating call(s), %d alarms unchanged\n", res.second.Mutations(), res.second.Unchanged)

	if o.watch <= 0 {
		return res, nil
	}
	// The Watchdog acts (reboot, stop/start, replace): ask first.
	wplan := ec2ops.Plan{Operation: "watchdog", Steps: []ec2ops.Step{
		{Action: "ec2:RebootInstances", Reason: "an instance status check failed for 3 minutes"},
		{Action: "ec2:StopInstances", Reason: "a system check failed and AWS did not recover it, or a reboot did not help"},
		{Action: "ec2:StartInstances"},
		{Action: "ec2:RunInstances", Reason: "replace (lifecycle Surge) when stop/start did not help"},
		{Action: "ec2:TerminateInstances", Reason: "the replaced instance, once its replacement is healthy"},
	}}
	if err := env.Confirm(wplan); err != nil {
		return res, err
	}
	if env.Simulated() {
		res.impaired = ids[len(ids)/2]
		env.Sim.ImpairInstance(res.impaired) // the OS hangs
		fmt.Fprintf(w, "simulator: %s's OS hangs (instance status check impaired)\n", res.impaired)
	}
	replacer := lifecycle.NewSurge(env.EC2(), lifecycle.Target{}, func(lo *lifecycle.Options) { lo.TimeScale = env.Scale })
	wd := recovery.NewWatchdog(env.EC2(), replacer, func(wo *recovery.WatchdogOptions) {
		wo.Interval = env.D(30 * time.Second)
		wo.ImpairedFor = env.D(3 * time.Minute)
		wo.AWSRecoveryGrace = env.D(15 * time.Minute)
		wo.ActionTimeout = env.D(15 * time.Minute)
		wo.RefreshInterval = env.D(5 * time.Minute)
		wo.Observer = pr
		wo.TimeScale = env.Scale
	})
	fmt.Fprintf(w, "watchdog: watching for %s\n", o.watch)
	wctx, cancel := context.WithTimeout(ctx, env.D(o.watch))
	defer cancel()
	if err := wd.Run(wctx, fleet); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return res, err
	}
	res.stats = wd.Stats()
	for _, a := range res.stats.Actions {
		fmt.Fprintf(w, "  %s %s\n", a.Action, a.InstanceID)
	}
	fmt.Fprintf(w, "watchdog: %d polls, %d DescribeInstanceStatus calls, %d healed, %d replaced, %d failed\n",
		res.stats.Ticks, res.stats.StatusCalls, res.stats.Healed, res.stats.Replaced, res.stats.Failures)
	if env.Simulated() {
		v, _ := env.Sim.Instance(res.impaired)
		res.healthy = v.Healthy
	}
	return res, nil
}
