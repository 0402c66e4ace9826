package ami

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/internal/ratelimit"
)

// bigAccount builds the figure's account: 10 families of 500 images each
// (one a day), 20,000 instances on the 3 newest images of each family plus
// 40 old images, 50 launch templates with 3 versions, 20 Auto Scaling
// groups and 10 launch configurations on old images. pace paces the
// launches (nil when the Sim does not throttle).
func bigAccount(t testing.TB, sim *cloudsim.Sim, pace *ratelimit.Limiter) (families []Family, used map[string]bool) {
	ctx := context.Background()
	now := time.Now()
	used = map[string]bool{}
	byFam := make([][]string, 10)
	for f := range 10 {
		fam := fmt.Sprintf("svc%02d", f)
		families = append(families, Family{Name: fam, TagKey: TagFamily, TagValue: fam, KeepNewest: 3, KeepYoungerThan: 7 * day,
			DeprecateAfter: 30 * day, DisableAfter: 90 * day, DeregisterAfter: 180 * day})
		for i := range 500 {
			byFam[f] = append(byFam[f], sim.AddImage(cloudsim.AddImageInput{Name: fmt.Sprintf("%s-%04d", fam, i),
				Created: now.Add(-time.Duration(500-i) * day), Tags: map[string]string{TagFamily: fam}}))
		}
	}
	var imgs []string
	for f := range 10 {
		imgs = append(imgs, byFam[f][497:]...)
		imgs = append(imgs, byFam[f][100], byFam[f][200], byFam[f][300], byFam[f][400])
	}
	for i := range 20 {
		n := 1000
		if err := pace.Wait(ctx, "RunInstances", n); err != nil {
			t.Fatal(err)
		}
		var batch []string
		for j := range n {
			batch = append(batch, imgs[(i*n+j)%len(imgs)])
		}
		// One image per call: RunInstances launches one image; vary by call.
		img := batch[0]
		if _, err := sim.EC2().RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(img), MinCount: aws.Int32(int32(n)), MaxCount: aws.Int32(int32(n))}); err != nil {
			t.Fatal(err)
		}
		used[img] = true
	}
	// The remaining images in imgs are referenced by launch templates,
	// groups and launch configurations.
	for i := range 50 {
		if err := pace.Wait(ctx, "CreateLaunchTemplate", 0); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("lt-%02d", i)
		if _, err := sim.EC2().CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(name),
			LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(imgs[i%len(imgs)])}}); err != nil {
			t.Fatal(err)
		}
		used[imgs[i%len(imgs)]] = true
		for v := 1; v < 3; v++ {
			if err := pace.Wait(ctx, "CreateLaunchTemplateVersion", 0); err != nil {
				t.Fatal(err)
			}
			img := byFam[i%10][10+i+v]
			if _, err := sim.EC2().CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateName: aws.String(name),
				LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(img)}}); err != nil {
				t.Fatal(err)
			}
			used[img] = true
		}
	}
	for i := range 20 {
		img := byFam[i%10][150+i]
		sim.AddAutoScalingGroup(astypes.AutoScalingGroup{AutoScalingGroupName: aws.String(fmt.Sprintf("asg-%02d", i)),
			LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String(fmt.Sprintf("lt-%02d", i))},
			MixedInstancesPolicy: &astypes.MixedInstancesPolicy{LaunchTemplate: &astypes.LaunchTemplate{
				Overrides: []astypes.LaunchTemplateOverrides{{InstanceType: aws.String("m7g.large"), ImageId: aws.String(img)}}}}})
		used[img] = true
	}
	for i := range 10 {
		img := byFam[i][50]
		sim.AddLaunchConfiguration(astypes.LaunchConfiguration{LaunchConfigurationName: aws.String(fmt.Sprintf("lc-%02d", i)), ImageId: aws.String(img)})
		used[img] = true
	}
	return families, used
}

func callsLine(m map[string]int) string {
	var parts []string
	total := 0
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
		total += m[k]
	}
	return fmt.Sprintf("%d calls: %s", total, strings.Join(parts, " "))
}

// TestFigureRetention5000Images is the report's figure: retention
// planning (and applying) over 5,000 images and 20,000 instances, with
// the published token buckets, in simulated time.
func TestFigureRetention5000Images(t *testing.T) {
	if testing.Short() {
		t.Skip("figure: 20,000 instances")
	}
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 5 })
		families, used := bigAccount(t, sim, ratelimit.New(ratelimit.EC2()))
		if n := len(sim.Instances()); n != 20000 {
			t.Fatalf("%d instances", n)
		}
		time.Sleep(10 * time.Minute) // refill the buckets the setup spent
		sim.ResetCounters()
		ctx := context.Background()
		r := NewRetention(sim.EC2(), sim.AutoScaling(), families)
		start := time.Now()
		plan, err := r.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		planTime := time.Since(start)
		planCalls := sim.Calls()
		counts := plan.Counts()
		t.Logf("FIGURE retention plan: 5000 images, 20000 instances: simulated %v, %s; throttled %v; decisions %v",
			planTime.Round(time.Second), callsLine(planCalls), sim.Throttled(), counts)
		if len(plan.Decisions) != 5000 {
			t.Errorf("%d decisions", len(plan.Decisions))
		}
		for _, d := range plan.Decisions {
			if used[d.Image.ID] && (d.Action == Deregister || d.Action == Disable) {
				t.Errorf("image in use planned for %s: %+v", d.Action, d)
			}
		}
		if u := r.Policy().Uncovered(planCalls); len(u) > 0 {
			t.Errorf("uncovered %v", u)
		}
		sim.ResetCounters()
		start = time.Now()
		res, err := r.Apply(ctx, plan)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("FIGURE retention apply: %d actions: simulated %v, %s; throttled %v",
			len(res.Done), time.Since(start).Round(time.Second), callsLine(sim.Calls()), sim.Throttled())
		if v := sim.DeregisteredInUse(); len(v) > 0 {
			t.Errorf("deregistered in use: %v", v)
		}
		if th := sim.Throttled(); len(th) > 0 {
			t.Errorf("the library was throttled: %v", th)
		}
	})
}

// unpaced is a limiter that never waits, for CPU benchmarks on a Sim
// without throttling.
func unpaced() *ratelimit.Limiter {
	return ratelimit.New(ratelimit.Preset{Name: "unpaced", Default: ratelimit.Rule{Request: ratelimit.Spec{Capacity: 1e12, Refill: 1e12}}})
}

// BenchmarkRetentionPlan measures the CPU cost of planning over the
// figure's account (5,000 images, 20,000 instances) on the simulator,
// simulator included.
func BenchmarkRetentionPlan(b *testing.B) {
	sim := cloudsim.New(func(o *cloudsim.Options) { o.DisableThrottling = true })
	families, _ := bigAccount(b, sim, nil)
	r := NewRetention(sim.EC2(), sim.AutoScaling(), families, func(o *RetentionOptions) { o.Limiter = unpaced() })
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Plan(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRetentionDecide measures the planner's own decision step
// (no API calls) for 5,000 images.
func BenchmarkRetentionDecide(b *testing.B) {
	f := Family{Name: "svc", KeepNewest: 3, KeepYoungerThan: 7 * day, DeprecateAfter: 30 * day, DisableAfter: 90 * day, DeregisterAfter: 180 * day}
	now := time.Now()
	imgs := make([]Image, 5000)
	for i := range imgs {
		imgs[i] = Image{ID: fmt.Sprintf("ami-%017x", i), Name: fmt.Sprintf("svc-%04d", i), Created: now.Add(-time.Duration(i) * time.Hour * 2)}
	}
	b.ReportAllocs()
	for b.Loop() {
		for i, im := range imgs {
			_ = decide(f, i, im, now)
		}
	}
}
