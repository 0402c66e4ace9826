// Command configure runs a Chef run list on one layer the way OpsWorks did,
// through Systems Manager (AWS-ApplyChefRecipes) with opsworks.Configurator:
// a why-run first (nothing changes on the instances), then for real.
//
//	go run ./examples/configure                  # on the embedded simulator
//	go run ./examples/configure -plan
//	go run ./examples/configure -aws -region eu-west-1 -tag Layer=web \
//	    -source https://s3.amazonaws.com/my-bucket/cookbooks.tar.gz -runlist nginx::default,shop::deploy
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/exampleenv"
	"github.com/ec2ops/ec2ops/opsworks"
)

type options struct {
	env     exampleenv.Flags
	tags    exampleenv.TagsFlag
	layer   string
	runList string
	source  string
	event   string
	whyRun  bool // only the why-run
	fleet   int  // simulator only
}

type result struct {
	dry, real *opsworks.Report
	layerSize int
}

func main() {
	fs := flag.NewFlagSet("configure", flag.ExitOnError)
	o := options{tags: exampleenv.TagsFlag{}}
	o.env = *exampleenv.Register(fs, 0.005)
	fs.Var(o.tags, "tag", "select the layer's instances by tag KEY=VALUE (repeatable; default Layer=web on the simulator)")
	fs.StringVar(&o.layer, "layer", "web", "layer name")
	fs.StringVar(&o.runList, "runlist", "nginx::default,shop::deploy", "comma-separated Chef recipes")
	fs.StringVar(&o.source, "source", "https://s3.amazonaws.com/acme-cookbooks/shop.tar.gz", "S3 URL of the cookbooks archive")
	fs.StringVar(&o.event, "event", "Deploy", "lifecycle event: Setup, Configure, Deploy, Undeploy or Shutdown")
	fs.BoolVar(&o.whyRun, "why-run", false, "stop after the why-run")
	fs.IntVar(&o.fleet, "fleet", 8, "simulator only: instances (half in layer web, half in worker)")
	_ = fs.Parse(os.Args[1:])
	exampleenv.Main("configure", func(ctx context.Context) error {
		_, err := run(ctx, o, os.Stdin, os.Stdout)
		return err
	})
}

func run(ctx context.Context, o options, in io.Reader, w io.Writer) (*result, error) {
	env, err := exampleenv.New(ctx, o.env, in, w)
	if err != nil {
		return nil, err
	}
	if env.Simulated() {
		if len(o.tags) == 0 {
			o.tags = exampleenv.TagsFlag{"Layer": "web"}
		}
		if _, err := env.LaunchFleet(ctx, exampleenv.FleetSpec{N: o.fleet, ImageID: "ami-0123456789abcdef0",
			Tags: map[string]string{"app": "shop"}, Layers: []string{"web", "worker"}}); err != nil {
			return nil, err
		}
	}
	if len(o.tags) == 0 {
		return nil, ec2ops.InvalidInput("-tag", "", "is required outside the simulator", "select the layer's instances, e.g. -tag Layer=web")
	}
	fmt.Fprintf(w, "configure on %s\n", env.Target())
	var sel []opsworks.Selector
	keys := make([]string, 0, len(o.tags))
	for k := range o.tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sel = append(sel, opsworks.Selector{Key: "tag:" + k, Values: []string{o.tags[k]}})
	}
	ev := opsworks.Event(o.event)
	stack := &opsworks.Stack{
		Name:    "example",
		Backend: &opsworks.Chef{Source: opsworks.Source{Type: "S3", Path: o.source}},
		Layers: []opsworks.Layer{{
			Name: o.layer, Selector: sel,
			RunLists: map[opsworks.Event][]string{ev: strings.Split(o.runList, ",")},
		}},
	}
	pr := exampleenv.NewProgress(w, false, env.Elapsed)
	c := opsworks.New(env.Runner(nil), env.EC2(), func(oo *opsworks.Options) {
		oo.EC2Limiter = env.EC2Limiter()
		oo.Observer = pr
	})
	plan, err := c.Plan(ctx, stack, opsworks.Deployment{Event: ev, DryRun: true})
	if err != nil {
		return nil, err
	}
	res := &result{}
	for _, lr := range plan.Layers {
		res.layerSize += len(lr.Instances())
		fmt.Fprintf(w, "layer %s: %s on %d instance(s), run list %v\n", lr.Layer, lr.Document, len(lr.Instances()), lr.RunList)
	}
	exampleenv.PrintPlan(w, plan.Plan, 6)
	if o.env.Plan {
		return res, nil
	}
	// A why-run changes nothing on the instances, but it runs commands.
	if err := env.Confirm(plan.Plan); err != nil {
		return nil, err
	}
	if res.dry, err = c.Apply(ctx, plan); err != nil {
		return res, err
	}
	fmt.Fprintf(w, "why-run: %d would change, %d unchanged\n", res.dry.Count(opsworks.WouldChange), res.dry.Count(opsworks.Unchanged))
	if o.whyRun {
		return res, nil
	}
	realPlan, err := c.Plan(ctx, stack, opsworks.Deployment{Event: ev, Comment: "examples/configure"})
	if err != nil {
		return res, err
	}
	if err := env.Confirm(realPlan.Plan); err != nil {
		return res, err
	}
	if res.real, err = c.Apply(ctx, realPlan); err != nil {
		return res, err
	}
	fmt.Fprintf(w, "run: %d changed, %d unchanged, %d failed in %s\n", res.real.Count(opsworks.Changed), res.real.Count(opsworks.Unchanged),
		res.real.Count(opsworks.Failed), env.Elapsed())
	return res, nil
}
