package chaos

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/ami"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/patching"
)

func init() {
	operations = append(operations, operation{"bake", chaosBake})
}

func fastRunner(o *patching.RunnerOptions) {
	o.PollInterval, o.MaxPollInterval, o.ResultsInterval = 5*time.Second, 15*time.Second, 5*time.Second
}

func bakeRecipe(base string) ami.Recipe {
	return ami.Recipe{
		Name: "web-{bake}", Family: "web", BaseImage: base, InstanceProfile: "ec2ops-builder",
		Layers: []ami.Layer{
			{Name: "secrets", UserData: "#!/bin/sh\nexport DB_PASSWORD=" + canary + "\n"},
			{Name: "app", Commands: []string{"install-app --version 1.2.3", "systemctl enable app"}},
		},
	}
}

// chaosBake: a bake (builder, command layer through Run Command,
// CreateImage), cancelled at a random point, then rerun until it finishes.
// At every launch at most one builder of the bake lives; at the end the
// builders are all terminated and exactly one image carries the bake ID.
func chaosBake(t *testing.T, s *seedRun) {
	sim := s.sim
	base := sim.AddImage(cloudsim.AddImageInput{Name: "al2023-base", Owner: "amazon", Public: true, RootGiB: 8})
	r := bakeRecipe(base)
	bakeID := r.ID()
	builder := func(v cloudsim.InstanceView) bool { return v.Tags[ami.TagRole] == ami.RoleBuilder }
	sim.AddInvariant("one-builder", func(c cloudsim.Change, v *cloudsim.View) error {
		if c.Kind != cloudsim.ChangeState || c.From != "" {
			return nil
		}
		n := 0
		for _, x := range v.Instances() {
			if builder(x) && x.Tags[ami.TagBake] == bakeID && live(x) {
				n++
			}
		}
		if n > 1 {
			return fmt.Errorf("%d live builders of bake %s", n, bakeID)
		}
		return nil
	})
	newBaker := func() *ami.Baker {
		return ami.NewBaker(sim.EC2(), func(o *ami.BakerOptions) {
			o.Runner = patching.NewRunner(sim.SSM(), fastRunner)
			o.PollInterval = 5 * time.Second
		})
	}
	var res ami.Result
	var err error
	for s.runs = 1; s.runs <= 20; s.runs++ {
		ctx, cancel := context.Background(), func() {}
		if s.runs == 1 {
			ctx, cancel = s.cancelCtx(20 * time.Minute)
		}
		res, err = newBaker().Bake(ctx, r)
		cancel()
		if err == nil {
			break
		}
		var be *ami.BakeError
		if !errors.As(err, &be) && !errors.Is(err, context.Canceled) {
			s.violate("run %d: untyped error %v", s.runs, err)
			return
		}
		if be != nil && be.BuilderLeftBehind {
			s.violate("run %d: builder %s left behind: %v", s.runs, be.BuilderID, err)
		}
		time.Sleep(time.Minute)
	}
	if err != nil {
		s.violate("bake not finished after %d runs: %v", s.runs, err)
		return
	}
	time.Sleep(5 * time.Minute)
	for _, v := range sim.Instances() {
		if builder(v) && v.State != "terminated" {
			s.violate("orphaned builder %s (%s)", v.ID, v.State)
		}
		if !s.impaired[v.ID] && builder(v) && !v.Healthy && v.State != "terminated" {
			s.violate("builder %s not terminated", v.ID)
		}
	}
	var images []types.Image
	retry(t, "DescribeImages", func() error {
		out, err := sim.EC2().DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"self"},
			Filters: []types.Filter{{Name: aws.String("tag:" + ami.TagBake), Values: []string{bakeID}}}})
		if err == nil {
			images = out.Images
		}
		return err
	})
	if len(images) != 1 || aws.ToString(images[0].ImageId) != res.Image.ID {
		s.violate("images of the bake: %d (want exactly %s)", len(images), res.Image.ID)
	}
	if st, _ := sim.ImageState(res.Image.ID); st != "available" {
		s.violate("baked image %s is %s", res.Image.ID, st)
	}
	for snap, exists := range sim.ImageSnapshots(res.Image.ID) {
		if !exists {
			s.violate("snapshot %s of the image is gone", snap)
		}
	}
}
