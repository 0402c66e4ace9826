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

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/ami"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
)

func init() {
	operations = append(operations, operation{"retention", chaosRetention})
}

const day = 24 * time.Hour

// chaosRetention: 10-16 images of a family, some in use by instances and
// launch templates; between the plan and the apply more images come into
// use; the apply is cancelled at a random point and a fresh plan and apply
// run until they finish. No in-use image is ever deregistered (the
// simulator records every DeregisterImage of an image in use), the
// snapshots of every deregistered image are deleted (no orphans), and the
// kept images keep theirs.
func chaosRetention(t *testing.T, s *seedRun) {
	sim := s.sim
	ctx := context.Background()
	now := time.Now()
	n := 10 + s.rng.IntN(7)
	var imgs []string
	for i := range n {
		imgs = append(imgs, sim.AddImage(cloudsim.AddImageInput{Name: fmt.Sprintf("web-%03d", i),
			Created: now.Add(-time.Duration(5+20*i) * day), Tags: map[string]string{ami.TagFamily: "web"}}))
	}
	use := func(id string) {
		retry(t, "RunInstances", func() error {
			_, err := sim.EC2().RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(id), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
				ClientToken: aws.String("use-" + id)})
			return err
		})
	}
	ltUse := func(id string) {
		retry(t, "CreateLaunchTemplate", func() error {
			_, err := sim.EC2().CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("lt-" + id),
				ClientToken: aws.String("lt-" + id), LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(id)}})
			return err
		})
	}
	use(imgs[n-1-s.rng.IntN(3)])
	ltUse(imgs[n/2+s.rng.IntN(n/2)])
	fam := ami.Family{Name: "web", TagKey: ami.TagFamily, TagValue: "web", KeepNewest: 2, KeepYoungerThan: 14 * day,
		DeprecateAfter: 30 * day, DisableAfter: 60 * day, DeregisterAfter: 90 * day}
	newRet := func() *ami.Retention { return ami.NewRetention(sim.EC2(), sim.AutoScaling(), []ami.Family{fam}) }
	var plan *ami.RetentionPlan
	retry(t, "Plan", func() (err error) { plan, err = newRet().Plan(ctx); return err })
	// Images come into use between the plan and the apply.
	var late []string
	for _, d := range plan.Decisions {
		if d.Action == ami.Deregister && len(late) < 2 {
			late = append(late, d.Image.ID)
		}
	}
	if len(late) > 0 {
		use(late[0])
	}
	if len(late) > 1 {
		ltUse(late[1])
	}
	time.Sleep(time.Minute) // past EC2's eventual consistency: the uses are visible
	var err error
	for s.runs = 1; s.runs <= 20; s.runs++ {
		c, cancel := context.Background(), func() {}
		if s.runs == 1 {
			c, cancel = s.cancelCtx(40 * time.Second)
		} else {
			plan, err = newRet().Plan(c)
		}
		if err == nil {
			_, err = newRet().Apply(c, plan)
		}
		cancel()
		if err == nil {
			break
		}
		var pe *ec2ops.ProgressError
		if !errors.As(err, &pe) && !errors.Is(err, context.Canceled) {
			s.violate("run %d: untyped error %v", s.runs, err)
			return
		}
		time.Sleep(30 * time.Second)
	}
	if err != nil {
		s.violate("retention not finished after %d runs: %v", s.runs, err)
		return
	}
	for _, id := range sim.DeregisteredInUse() {
		s.violate("in-use image %s deregistered", id)
	}
	for _, id := range late {
		if st, _ := sim.ImageState(id); st == "deregistered" {
			s.violate("image %s came into use after the plan and was deregistered", id)
		}
	}
	for _, id := range imgs {
		st, _ := sim.ImageState(id)
		for snap, exists := range sim.ImageSnapshots(id) {
			if st == "deregistered" && exists {
				s.violate("orphaned snapshot %s of deregistered image %s", snap, id)
			}
			if st != "deregistered" && !exists {
				s.violate("snapshot %s of %s image %s deleted", snap, st, id)
			}
		}
	}
	// A fresh plan finds nothing left to do but keep or skip.
	var again *ami.RetentionPlan
	retry(t, "Plan", func() (err error) { again, err = newRet().Plan(ctx); return err })
	for _, d := range again.Decisions {
		if d.Action == ami.Deregister && len(d.InUse) == 0 {
			s.violate("after the run %s still to deregister", d.Image.ID)
		}
	}
}
