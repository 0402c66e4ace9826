package ami

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
)

// FuzzRetentionPolicy: any Family (selector, counts, durations) is either
// refused with an ec2ops.InvalidInput before any call, or planned; Plan
// never mutates anything and never panics.
func FuzzRetentionPolicy(f *testing.F) {
	f.Add("web", "web-", "ec2ops:family", "web", 2, int64(14), int64(30), int64(60), int64(90))
	f.Add("", "", "", "", 0, int64(0), int64(0), int64(0), int64(0))
	f.Add("x", "", "aws:reserved", "", -1, int64(-1), int64(90), int64(60), int64(30))
	f.Add("dup", "a", "", "", 1000000, int64(1<<40), int64(1), int64(1), int64(1))
	f.Fuzz(func(t *testing.T, name, prefix, tagKey, tagValue string, keep int, young, deprecate, disable, deregister int64) {
		day := int64(24 * time.Hour)
		clamp := func(d int64) time.Duration { return time.Duration(d%(1<<20)) * time.Duration(day) }
		fam := Family{Name: name, NamePrefix: prefix, TagKey: tagKey, TagValue: tagValue, KeepNewest: keep,
			KeepYoungerThan: clamp(young), DeprecateAfter: clamp(deprecate), DisableAfter: clamp(disable), DeregisterAfter: clamp(deregister)}
		sim := cloudsim.New(func(o *cloudsim.Options) { o.DisableThrottling = true })
		sim.AddImage(cloudsim.AddImageInput{Name: "web-1", Created: time.Now().Add(-100 * 24 * time.Hour), Tags: map[string]string{TagFamily: "web"}})
		r := NewRetention(sim.EC2(), sim.AutoScaling(), []Family{fam, fam})
		plan, err := r.Plan(context.Background())
		if err != nil {
			if !errors.Is(err, ec2ops.ErrInvalidInput) {
				t.Fatalf("Plan(%+v): %v is not an input error", fam, err)
			}
			if n := sim.TotalCalls(); n != 0 {
				t.Fatalf("refused input, but %d calls made", n)
			}
			return
		}
		for _, d := range plan.Decisions {
			if d.Image.ID == "" || d.Action == "" {
				t.Fatalf("decision %+v", d)
			}
		}
		for k, n := range sim.Calls() {
			if n > 0 && k != "ec2:DescribeImages" && k != "ec2:DescribeImageAttribute" && k != "ec2:DescribeInstances" &&
				k != "ec2:DescribeLaunchTemplates" && k != "ec2:DescribeLaunchTemplateVersions" && k[:12] != "autoscaling:" {
				t.Fatalf("Plan made a mutating call %s", k)
			}
		}
	})
}
