// Command patch patches a fleet in place with AWS-RunPatchBaseline, in
// waves (patching.Patcher): a canary, then cumulative shares of the fleet,
// with health gates (status checks, SSM agent back after the reboot)
// between waves, and a compliance report at the end.
//
//	go run ./examples/patch                      # on the embedded simulator
//	go run ./examples/patch -plan
//	go run ./examples/patch -aws -region eu-west-1 -tag app=web -operation Scan
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/exampleenv"
	"github.com/ec2ops/ec2ops/patching"
)

type options struct {
	env       exampleenv.Flags
	tags      exampleenv.TagsFlag
	operation string
	waves     string
	canary    int
	fleet     int // simulator only
}

func main() {
	fs := flag.NewFlagSet("patch", flag.ExitOnError)
	o := options{tags: exampleenv.TagsFlag{}}
	o.env = *exampleenv.Register(fs, 0.005)
	fs.Var(o.tags, "tag", "select the fleet by tag KEY=VALUE (repeatable; default app=web on the simulator)")
	fs.StringVar(&o.operation, "operation", "Install", "Install or Scan")
	fs.StringVar(&o.waves, "waves", "25%,100%", "cumulative shares of the fleet after the canary")
	fs.IntVar(&o.canary, "canary", 1, "instances in the first wave")
	fs.IntVar(&o.fleet, "fleet", 20, "simulator only: instances in the fleet")
	_ = fs.Parse(os.Args[1:])
	exampleenv.Main("patch", func(ctx context.Context) error {
		_, err := run(ctx, o, os.Stdin, os.Stdout)
		return err
	})
}

func run(ctx context.Context, o options, in io.Reader, w io.Writer) (*patching.Report, error) {
	env, err := exampleenv.New(ctx, o.env, in, w)
	if err != nil {
		return nil, err
	}
	if env.Simulated() {
		if len(o.tags) == 0 {
			o.tags = exampleenv.TagsFlag{"app": "web"}
		}
		if _, err := env.LaunchFleet(ctx, exampleenv.FleetSpec{N: o.fleet, ImageID: "ami-0123456789abcdef0", Tags: o.tags}); err != nil {
			return nil, err
		}
	}
	if len(o.tags) == 0 {
		return nil, ec2ops.InvalidInput("-tag", "", "is required outside the simulator", "select the fleet, e.g. -tag app=web")
	}
	fmt.Fprintf(w, "patch on %s\n", env.Target())
	ids, err := exampleenv.Instances(ctx, env.EC2(), o.tags)
	if err != nil {
		return nil, err
	}
	pr := exampleenv.NewProgress(w, false, env.Elapsed)
	p := patching.NewPatcher(env.SSM(), env.EC2(), func(po *patching.PatchOptions) {
		po.Operation = o.operation
		po.Canary = o.canary
		po.Waves = strings.Split(o.waves, ",")
		po.SSMLimiter, po.EC2Limiter = env.SSMLimiter(), env.EC2Limiter()
		po.PollInterval = env.D(10 * time.Second)
		po.HealthTimeout = env.D(20 * time.Minute)
		po.Runner = append(po.Runner, env.RunnerOptions(nil))
		po.Observer = pr
	})
	plan, err := p.Plan(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i, wv := range plan.Waves {
		fmt.Fprintf(w, "wave %d: %d instance(s)\n", i+1, len(wv))
	}
	for id, why := range plan.Unmanaged {
		fmt.Fprintf(w, "unmanaged %s: %s\n", id, why)
	}
	exampleenv.PrintPlan(w, plan.Plan, 8)
	if o.env.Plan {
		return nil, nil
	}
	if err := env.Confirm(plan.Plan); err != nil {
		return nil, err
	}
	rep, err := p.Apply(ctx, plan)
	if rep != nil {
		compliant := 0
		for _, c := range rep.Compliance {
			if c.Compliant() {
				compliant++
			}
		}
		fmt.Fprintf(w, "patched %d, failed %d, unhealthy %d, not patched %d; compliant %d of %d; %d command(s) in %s\n",
			rep.Count("Patched")+rep.Count("Scanned"), rep.Count("Failed"), rep.Count("Unhealthy"), rep.Count("NotPatched"),
			compliant, len(rep.Compliance), len(rep.CommandIDs), env.Elapsed())
	}
	return rep, err
}
