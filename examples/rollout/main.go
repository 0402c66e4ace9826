// Command rollout replaces a fleet onto a new AMI with lifecycle.Rollout and
// the Surge strategy: a canary batch first, then at most -max-surge
// replacements at a time, healthy capacity never below the fleet size.
//
//	go run ./examples/rollout                    # on the embedded simulator
//	go run ./examples/rollout -plan
//	go run ./examples/rollout -aws -region eu-west-1 -tag app=web -image ami-0123456789abcdef0
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/internal/exampleenv"
	"github.com/ec2ops/ec2ops/lifecycle"
)

type options struct {
	env      exampleenv.Flags
	tags     exampleenv.TagsFlag
	image    string
	maxSurge string
	canary   string
	bakeTime time.Duration
	fleet    int // simulator only
}

func main() {
	fs := flag.NewFlagSet("rollout", flag.ExitOnError)
	o := options{tags: exampleenv.TagsFlag{}}
	o.env = *exampleenv.Register(fs, 0.005)
	fs.Var(o.tags, "tag", "select the fleet by tag KEY=VALUE (repeatable; default app=web on the simulator)")
	fs.StringVar(&o.image, "image", "", "target AMI ID (required with -aws/-endpoint; the simulator registers one)")
	fs.StringVar(&o.maxSurge, "max-surge", "25%", "replacements at once, a count or a percentage of the fleet")
	fs.StringVar(&o.canary, "canary", "1", "canary batch size, replaced and baked first")
	fs.DurationVar(&o.bakeTime, "bake-time", 5*time.Minute, "how long the canaries must stay healthy")
	fs.IntVar(&o.fleet, "fleet", 24, "simulator only: instances in the fleet")
	_ = fs.Parse(os.Args[1:])
	exampleenv.Main("rollout", func(ctx context.Context) error {
		_, err := run(ctx, o, os.Stdin, os.Stdout)
		return err
	})
}

func run(ctx context.Context, o options, in io.Reader, w io.Writer) (*lifecycle.RolloutResult, error) {
	env, err := exampleenv.New(ctx, o.env, in, w)
	if err != nil {
		return nil, err
	}
	if env.Simulated() {
		old := env.AddImage(cloudsim.AddImageInput{Name: "web-20250101"})
		if o.image == "" {
			o.image = env.AddImage(cloudsim.AddImageInput{Name: "web-20250301"})
		}
		if len(o.tags) == 0 {
			o.tags = exampleenv.TagsFlag{"app": "web"}
		}
		if _, err := env.LaunchFleet(ctx, exampleenv.FleetSpec{N: o.fleet, ImageID: old, Tags: o.tags}); err != nil {
			return nil, err
		}
	}
	if o.image == "" {
		return nil, ec2ops.InvalidInput("-image", "", "is required outside the simulator", "pass the AMI ID to roll the fleet onto")
	}
	if len(o.tags) == 0 {
		return nil, ec2ops.InvalidInput("-tag", "", "is required outside the simulator", "select the fleet, e.g. -tag app=web")
	}
	fmt.Fprintf(w, "rollout on %s\n", env.Target())
	pr := exampleenv.NewProgress(w, false, env.Elapsed)
	surge := lifecycle.NewSurge(env.EC2(), lifecycle.Target{ImageID: o.image}, func(lo *lifecycle.Options) {
		lo.TimeScale = env.Scale
		lo.Seed = uint64(o.env.Seed)
		lo.Observer = pr
	})
	ro := lifecycle.NewRollout(surge, lifecycle.Selector{Tags: o.tags}, func(ro *lifecycle.RolloutOptions) {
		ro.MaxSurge = o.maxSurge
		ro.Canary = o.canary
		ro.BakeTime = o.bakeTime
	})
	plan, err := ro.Plan(ctx)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "fleet %d, %d drifted, %d up to date, %d refused; floor %d, %d in flight, %d batch(es)\n",
		plan.Fleet, len(plan.Drifted), len(plan.UpToDate), len(plan.Refused), plan.Floor, plan.InFlight, len(plan.Batches))
	for id, why := range plan.Refused {
		fmt.Fprintf(w, "  refused %s: %v\n", id, why)
	}
	exampleenv.PrintPlan(w, plan.Steps, 9)
	if o.env.Plan || len(plan.Drifted) == 0 {
		return nil, nil
	}
	if err := env.Confirm(plan.Steps); err != nil {
		return nil, err
	}
	res, err := ro.Apply(ctx)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(w, "replaced %d instance(s) in %s\n", len(res.Replaced), env.Elapsed())
	return res, nil
}
