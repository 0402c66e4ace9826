// Command retention retires old AMIs of a family with ami.Retention:
// deprecate, disable, then deregister by age, keeping the newest, and never
// retiring an image that an instance, a launch template version or an Auto
// Scaling group still uses (it is deprecated instead) or that is shared.
//
//	go run ./examples/retention                  # on the embedded simulator
//	go run ./examples/retention -plan
//	go run ./examples/retention -aws -region eu-west-1 -tag ec2ops:family=web -keep 3 -deregister-after 2160h
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/ami"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/internal/exampleenv"
)

type options struct {
	env             exampleenv.Flags
	family          string
	tag             string
	prefix          string
	keep            int
	deprecateAfter  time.Duration
	deregisterAfter time.Duration
	force           bool
}

type result struct {
	plan    *ami.RetentionPlan
	applied *ami.ApplyResult
	images  map[string]string // simulator: image name -> state at the end
}

func main() {
	fs := flag.NewFlagSet("retention", flag.ExitOnError)
	o := options{}
	o.env = *exampleenv.Register(fs, 0.005)
	fs.StringVar(&o.family, "family", "web", "family name (for plans and events)")
	fs.StringVar(&o.tag, "tag", "ec2ops:family=web", "select the family's images by tag KEY=VALUE (the Baker sets ec2ops:family)")
	fs.StringVar(&o.prefix, "name-prefix", "", "select the family's images by name prefix (with -tag: both must match)")
	fs.IntVar(&o.keep, "keep", 2, "always keep the newest N images")
	fs.DurationVar(&o.deprecateAfter, "deprecate-after", 30*24*time.Hour, "deprecate images older than this")
	fs.DurationVar(&o.deregisterAfter, "deregister-after", 90*24*time.Hour, "deregister images older than this (with their snapshots)")
	fs.BoolVar(&o.force, "force", false, "retire images shared with other accounts too")
	_ = fs.Parse(os.Args[1:])
	exampleenv.Main("retention", func(ctx context.Context) error {
		_, err := run(ctx, o, os.Stdin, os.Stdout)
		return err
	})
}

func run(ctx context.Context, o options, in io.Reader, w io.Writer) (*result, error) {
	env, err := exampleenv.New(ctx, o.env, in, w)
	if err != nil {
		return nil, err
	}
	key, value, _ := strings.Cut(o.tag, "=")
	if env.Simulated() {
		// Five images of the family, 3 to 200 days old; an instance still
		// runs the 100-day-old one.
		now := time.Now()
		var ids []string
		for i, age := range []int{3, 20, 45, 100, 200} {
			ids = append(ids, env.AddImage(cloudsim.AddImageInput{Name: fmt.Sprintf("web-%03dd", age), RootGiB: int32(8 + i),
				Created: now.Add(-time.Duration(age) * 24 * time.Hour), Tags: map[string]string{key: value}}))
		}
		if _, err := env.Sim.EC2().RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ids[3]), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}); err != nil {
			return nil, err
		}
	}
	if key == "" && o.prefix == "" {
		return nil, ec2ops.InvalidInput("-tag", o.tag, "selects nothing", "select the family by -tag KEY=VALUE and/or -name-prefix")
	}
	fmt.Fprintf(w, "retention on %s\n", env.Target())
	r := ami.NewRetention(env.EC2(), env.AutoScaling(), []ami.Family{{
		Name: o.family, NamePrefix: o.prefix, TagKey: key, TagValue: value, KeepNewest: o.keep,
		DeprecateAfter: o.deprecateAfter, DeregisterAfter: o.deregisterAfter,
	}}, func(ro *ami.RetentionOptions) {
		ro.Force = o.force
		ro.Limiter = env.EC2Limiter()
	})
	res := &result{}
	if res.plan, err = r.Plan(ctx); err != nil {
		return nil, err
	}
	for _, d := range res.plan.Decisions {
		fmt.Fprintf(w, "%s %-22s %-10s %s\n", d.Image.ID, d.Image.Name, d.Action, strings.Join(d.Reasons, "; "))
	}
	steps := res.plan.Plan()
	if o.env.Plan || len(steps.Steps) == 0 {
		return res, nil
	}
	if err := env.Confirm(steps); err != nil {
		return nil, err
	}
	ar, err := r.Apply(ctx, res.plan)
	res.applied = &ar
	for _, d := range ar.Done {
		fmt.Fprintf(w, "done: %s\n", d)
	}
	for id, why := range ar.Skipped {
		fmt.Fprintf(w, "skipped %s: %s\n", id, why)
	}
	if env.Simulated() {
		res.images = map[string]string{}
		for _, d := range res.plan.Decisions {
			res.images[d.Image.Name], _ = env.Sim.ImageState(d.Image.ID)
		}
	}
	return res, err
}
