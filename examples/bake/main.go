// Command bake bakes an AMI with ami.Baker: a builder launched from a base
// image, the layers applied through Systems Manager Run Command, then
// CreateImage; the builder is terminated whatever happens.
//
//	go run ./examples/bake                       # on the embedded simulator
//	go run ./examples/bake -plan                 # print the plan, change nothing
//	go run ./examples/bake -aws -region eu-west-1 -base ami-0123456789abcdef0 -profile my-ssm-profile
//	go run ./examples/bake -endpoint http://127.0.0.1:5000 -base ami-12c6146b -plan
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/ami"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/internal/exampleenv"
)

type options struct {
	env      exampleenv.Flags
	base     string
	name     string
	family   string
	profile  string
	subnet   string
	commands []string
}

func main() {
	fs := flag.NewFlagSet("bake", flag.ExitOnError)
	o := options{}
	o.env = *exampleenv.Register(fs, 0.005)
	fs.StringVar(&o.base, "base", "", "base AMI ID (required with -aws/-endpoint; the simulator registers one)")
	fs.StringVar(&o.name, "name", "app-{date}-{bake}", "AMI name template")
	fs.StringVar(&o.family, "family", "app", "image family (tag ec2ops:family)")
	fs.StringVar(&o.profile, "profile", "ec2ops-builder", "instance profile of the builder (needs AmazonSSMManagedInstanceCore)")
	fs.StringVar(&o.subnet, "subnet", "", "builder subnet (default: the default VPC's)")
	cmd := fs.String("command", "dnf -y upgrade --security", "shell command of the app layer, run through Run Command")
	_ = fs.Parse(os.Args[1:])
	o.commands = []string{*cmd}
	exampleenv.Main("bake", func(ctx context.Context) error {
		_, err := run(ctx, o, os.Stdin, os.Stdout)
		return err
	})
}

func run(ctx context.Context, o options, in io.Reader, w io.Writer) (*ami.Result, error) {
	env, err := exampleenv.New(ctx, o.env, in, w)
	if err != nil {
		return nil, err
	}
	if env.Simulated() && o.base == "" {
		o.base = env.AddImage(cloudsim.AddImageInput{Name: "al2023-ami-2023.7.20250301.0-kernel-6.1-x86_64", Owner: "amazon", Public: true})
	}
	if o.base == "" {
		return nil, ec2ops.InvalidInput("-base", "", "is required outside the simulator", "pass the base AMI ID, e.g. the newest Amazon Linux 2023 image of the Region")
	}
	fmt.Fprintf(w, "bake on %s\n", env.Target())
	pr := exampleenv.NewProgress(w, false, env.Elapsed)
	baker := ami.NewBaker(env.EC2(), func(bo *ami.BakerOptions) {
		bo.Runner = env.Runner(nil) // an ami.AgentWaiter: the Baker waits for the builder's SSM agent
		bo.AgentTimeout = env.D(10 * time.Minute)
		bo.Limiter = env.EC2Limiter()
		bo.Observer = pr
		bo.PollInterval = env.D(15 * time.Second)
		bo.CleanupTimeout = max(env.D(2*time.Minute), time.Second)
	})
	recipe := ami.Recipe{
		Name: o.name, Family: o.family, BaseImage: o.base, InstanceProfile: o.profile, SubnetID: o.subnet,
		Layers: []ami.Layer{
			{Name: "os", UserData: "#cloud-config\npackage_update: true\n"},
			{Name: "app", Commands: o.commands},
		},
	}
	plan, err := baker.PlanRecipe(recipe)
	if err != nil {
		return nil, err
	}
	exampleenv.PrintPlan(w, plan, 0)
	if o.env.Plan {
		return nil, nil
	}
	if err := env.Confirm(plan); err != nil {
		return nil, err
	}
	res, err := baker.Bake(ctx, recipe)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "image %s (%s) %s after %s; builder %s terminated\n", res.Image.ID, res.Image.Name, res.Image.State, env.Elapsed(), res.BuilderID)
	return &res, nil
}
