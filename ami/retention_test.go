package ami

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"go.uber.org/mock/gomock"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/ami/amimock"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
)

const day = 24 * time.Hour

var webFamily = Family{Name: "web", TagKey: TagFamily, TagValue: "web", KeepNewest: 2, KeepYoungerThan: 14 * day,
	DeprecateAfter: 30 * day, DisableAfter: 60 * day, DeregisterAfter: 90 * day}

func TestRetentionPlanAndApply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.DisableThrottling = true })
		ctx := context.Background()
		now := time.Now()
		img := map[int]string{}
		for _, d := range []int{5, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200, 220} {
			in := cloudsim.AddImageInput{Name: fmt.Sprintf("web-%03d", d), Created: now.Add(-time.Duration(d) * day), Tags: map[string]string{TagFamily: "web"}}
			if d == 180 {
				in.SharedWith = []string{"999988887777"}
			}
			img[d] = sim.AddImage(in)
		}
		other := sim.AddImage(cloudsim.AddImageInput{Name: "db-1", Created: now.Add(-400 * day)})
		c := sim.EC2()
		// In use: an instance (120), a launch template version (140), a
		// group's mixed instances override (160), a launch configuration (200).
		if _, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(img[120]), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("web"),
			LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(img[5])}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateName: aws.String("web"),
			LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(img[140])}}); err != nil {
			t.Fatal(err)
		}
		sim.AddAutoScalingGroup(astypes.AutoScalingGroup{AutoScalingGroupName: aws.String("web-arm"), MixedInstancesPolicy: &astypes.MixedInstancesPolicy{
			LaunchTemplate: &astypes.LaunchTemplate{
				LaunchTemplateSpecification: &astypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String("web")},
				Overrides:                   []astypes.LaunchTemplateOverrides{{InstanceType: aws.String("m7g.large"), ImageId: aws.String(img[160])}}}}})
		sim.AddLaunchConfiguration(astypes.LaunchConfiguration{LaunchConfigurationName: aws.String("web-legacy"), ImageId: aws.String(img[200])})
		sim.ResetCounters()

		r := NewRetention(c, sim.AutoScaling(), []Family{webFamily})
		plan, err := r.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int]Action{}
		for d, id := range img {
			for _, dec := range plan.Decisions {
				if dec.Image.ID == id {
					got[d] = dec.Action
				}
			}
		}
		// By default Plan leaves sharing to Apply: the shared 180d image is
		// planned for deregistration, and says its sharing is unchecked.
		want := map[int]Action{5: Keep, 20: Keep, 40: Deprecate, 60: Disable, 80: Disable, 100: Deregister, 120: Deprecate,
			140: Deprecate, 160: Deprecate, 180: Deregister, 200: Deprecate, 220: Deregister}
		for d, w := range want {
			if got[d] != w {
				t.Errorf("image %dd old: %s, want %s", d, got[d], w)
			}
		}
		for _, dec := range plan.Decisions {
			if dec.Image.ID == other {
				t.Errorf("an image outside the family was planned: %+v", dec)
			}
		}
		for _, dec := range plan.Decisions {
			deferred := slices.Contains(dec.Reasons, "sharing checked at apply (kept if shared)")
			if retires(dec) != deferred || dec.SharingChecked || dec.SharedWith != nil {
				t.Errorf("sharing of %s (%s) reported as checked or not deferred: %+v", dec.Image.Name, dec.Action, dec)
			}
		}
		t.Logf("plan:\n%s", plan.Plan())
		if n := sim.Calls()["ec2:DescribeImageAttribute"]; n != 0 {
			t.Errorf("default Plan made %d DescribeImageAttribute calls", n)
		}
		// With PlanSharing the plan checks and reports sharing itself.
		checked, err := NewRetention(c, sim.AutoScaling(), []Family{webFamily}, func(o *RetentionOptions) { o.PlanSharing = true }).Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, dec := range checked.Decisions {
			switch {
			case dec.Image.ID == img[180]:
				if dec.Action != Deprecate || !dec.SharingChecked || fmt.Sprint(dec.SharedWith) != "[999988887777]" ||
					!slices.Contains(dec.Reasons, "shared with 999988887777 (set Force to retire it)") {
					t.Errorf("shared image with PlanSharing: %+v", dec)
				}
			case retires(dec) && (!dec.SharingChecked || len(dec.SharedWith) > 0):
				t.Errorf("unshared image with PlanSharing: %+v", dec)
			}
		}
		if n := sim.Calls()["ec2:DescribeImageAttribute"]; n != 5 {
			t.Errorf("PlanSharing made %d DescribeImageAttribute calls, want 5 (the images to disable or deregister, not in use)", n)
		}
		if err := r.Policy(); len(err.Uncovered(sim.Calls())) > 0 {
			t.Errorf("plan calls outside the policy: %v", err.Uncovered(sim.Calls()))
		}
		for _, m := range []string{"ec2:DeregisterImage", "ec2:DisableImage", "ec2:EnableImageDeprecation"} {
			if sim.Calls()[m] > 0 {
				t.Errorf("Plan called %s", m)
			}
		}

		res, err := r.Apply(ctx, plan)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Done) != 10 {
			t.Errorf("done %v", res.Done)
		}
		// Apply found the 180d image shared: deprecated instead, not deregistered.
		if st, _ := sim.ImageState(img[180]); st != "available" || !slices.Contains(res.Done, "deprecate "+img[180]) ||
			res.Skipped[img[180]] != "deregister dropped: shared with 999988887777 (set Force to retire it)" {
			t.Errorf("shared image at apply: %s, done %v, skipped %q", st, res.Done, res.Skipped[img[180]])
		}
		for _, d := range []int{100, 220} {
			if st, _ := sim.ImageState(img[d]); st != "deregistered" {
				t.Errorf("%dd image is %s", d, st)
			}
			for snap, alive := range sim.ImageSnapshots(img[d]) {
				if alive {
					t.Errorf("snapshot %s of a deregistered image survived", snap)
				}
			}
		}
		if st, _ := sim.ImageState(img[60]); st != "disabled" {
			t.Errorf("60d image is %s", st)
		}
		if v := sim.DeregisteredInUse(); len(v) > 0 {
			t.Errorf("images deregistered while in use: %v", v)
		}
		policyCovers(t, sim, r.Policy())

		// Shared images go with Force.
		forced := NewRetention(c, sim.AutoScaling(), []Family{webFamily}, func(o *RetentionOptions) { o.Force = true; o.PlanSharing = true })
		plan2, err := forced.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, dec := range plan2.Decisions {
			if dec.Image.ID == img[180] && (dec.Action != Deregister || len(dec.SharedWith) != 1) {
				t.Errorf("forced shared image: %+v", dec)
			}
		}
		forced = NewRetention(c, sim.AutoScaling(), []Family{webFamily}, func(o *RetentionOptions) { o.Force = true })
		if plan2, err = forced.Plan(ctx); err != nil {
			t.Fatal(err)
		}
		sim.ResetCounters()
		res, err = forced.Apply(ctx, plan2)
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := sim.ImageState(img[180]); st != "deregistered" || sim.Calls()["ec2:DescribeImageAttribute"] != 0 {
			t.Errorf("forced shared image: %s after %v (Force checks no sharing)", st, sim.Calls())
		}
	})
}

// TestRetentionResumesAfterCancel cancels Apply part way (the
// DeregisterImage bucket, 100 then 5 a second, makes it slow) and checks
// that Plan and Apply again finish the job without deregistering anything
// in use.
func TestRetentionResumesAfterCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New()
		now := time.Now()
		var ids []string
		for i := range 400 {
			ids = append(ids, sim.AddImage(cloudsim.AddImageInput{Name: fmt.Sprintf("app-%04d", i), Created: now.Add(-time.Duration(100+i) * day)}))
		}
		ctx := context.Background()
		if _, err := sim.EC2().RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ids[200]), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
		fam := Family{Name: "app", NamePrefix: "app-", KeepNewest: 3, DeregisterAfter: 90 * day}
		r := NewRetention(sim.EC2(), sim.AutoScaling(), []Family{fam})
		plan, err := r.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c := plan.Counts(); c[Deregister] != 396 || c[Keep] != 4 {
			t.Fatalf("counts %v", c)
		}
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		_, err = r.Apply(cctx, plan)
		var pe *ec2ops.ProgressError
		if !errors.As(err, &pe) || len(pe.Pending) == 0 || len(pe.Done) == 0 {
			t.Fatalf("cancelled apply: %v", err)
		}
		t.Logf("cancelled after %d done, %d pending", len(pe.Done), len(pe.Pending))
		plan, err = r.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c := plan.Counts(); c[Deregister] != len(pe.Pending) {
			t.Errorf("resumed plan deregisters %d, want the %d pending", c[Deregister], len(pe.Pending))
		}
		if _, err := r.Apply(ctx, plan); err != nil {
			t.Fatal(err)
		}
		if n := sim.ImageCount(); n != 4 {
			t.Errorf("%d images left, want 4", n)
		}
		if st, _ := sim.ImageState(ids[200]); st != "available" {
			t.Errorf("image in use is %s", st)
		}
		if v := sim.DeregisteredInUse(); len(v) > 0 {
			t.Errorf("deregistered in use: %v", v)
		}
	})
}

func TestRetentionInstanceChecksChunkFilterValues(t *testing.T) {
	// In a bubble: 449 DescribeImageAttribute calls wait for the
	// non-mutating bucket (100, then 20 a second).
	synctest.Test(t, testRetentionChunks)
}

func testRetentionChunks(t *testing.T) {
	ctrl := gomock.NewController(t)
	m := amimock.NewMockRetentionAPI(ctrl)
	asg := amimock.NewMockAutoScalingAPI(ctrl)
	var imgs []types.Image
	for i := range 450 {
		imgs = append(imgs, types.Image{ImageId: aws.String(fmt.Sprintf("ami-%017x", i+1)), Name: aws.String(fmt.Sprintf("app-%03d", i)),
			State: types.ImageStateAvailable, CreationDate: aws.String(time.Now().Add(-time.Duration(200+i) * day).UTC().Format("2006-01-02T15:04:05.000Z"))})
	}
	m.EXPECT().DescribeImages(gomock.Any(), gomock.Any()).DoAndReturn(func(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
		if in.Owners[0] != "self" || !aws.ToBool(in.IncludeDeprecated) || !aws.ToBool(in.IncludeDisabled) || aws.ToInt32(in.MaxResults) != 1000 {
			t.Errorf("listing %+v", in)
		}
		return &ec2.DescribeImagesOutput{Images: imgs}, nil
	})
	var sizes []int
	m.EXPECT().DescribeInstances(gomock.Any(), gomock.Any()).Times(3).DoAndReturn(func(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
		if len(in.Filters) != 1 || aws.ToString(in.Filters[0].Name) != "image-id" {
			t.Errorf("filters %+v", in.Filters)
		}
		sizes = append(sizes, len(in.Filters[0].Values))
		out := &ec2.DescribeInstancesOutput{}
		if len(sizes) == 1 {
			out.Reservations = []types.Reservation{{Instances: []types.Instance{
				{InstanceId: aws.String("i-0000000000000000a"), ImageId: imgs[5].ImageId, State: &types.InstanceState{Name: types.InstanceStateNameStopped}},
				{InstanceId: aws.String("i-0000000000000000b"), ImageId: imgs[6].ImageId, State: &types.InstanceState{Name: types.InstanceStateNameTerminated}},
			}}}
		}
		return out, nil
	})
	m.EXPECT().DescribeLaunchTemplates(gomock.Any(), gomock.Any()).Return(&ec2.DescribeLaunchTemplatesOutput{
		LaunchTemplates: []types.LaunchTemplate{{LaunchTemplateId: aws.String("lt-0000000000000000a")}}}, nil)
	m.EXPECT().DescribeLaunchTemplateVersions(gomock.Any(), gomock.Any()).DoAndReturn(func(_ context.Context, in *ec2.DescribeLaunchTemplateVersionsInput, _ ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplateVersionsOutput, error) {
		if !aws.ToBool(in.ResolveAlias) || aws.ToString(in.LaunchTemplateId) != "lt-0000000000000000a" {
			t.Errorf("versions input %+v", in)
		}
		return &ec2.DescribeLaunchTemplateVersionsOutput{LaunchTemplateVersions: []types.LaunchTemplateVersion{{LaunchTemplateId: in.LaunchTemplateId,
			VersionNumber: aws.Int64(4), LaunchTemplateData: &types.ResponseLaunchTemplateData{ImageId: imgs[7].ImageId}}}}, nil
	})
	asg.EXPECT().DescribeAutoScalingGroups(gomock.Any(), gomock.Any()).Return(&autoscaling.DescribeAutoScalingGroupsOutput{}, nil)
	asg.EXPECT().DescribeLaunchConfigurations(gomock.Any(), gomock.Any()).Return(&autoscaling.DescribeLaunchConfigurationsOutput{}, nil)
	m.EXPECT().DescribeImageAttribute(gomock.Any(), gomock.Any()).AnyTimes().Return(&ec2.DescribeImageAttributeOutput{}, nil)
	r := NewRetention(m, asg, []Family{{Name: "app", NamePrefix: "app-", DeregisterAfter: 90 * day}})
	plan, err := r.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sizes) != "[200 200 49]" {
		t.Errorf("image-id filter values per call: %v (449 candidates, the newest is kept)", sizes)
	}
	for _, d := range plan.Decisions {
		id := d.Image.ID
		switch id {
		case *imgs[5].ImageId, *imgs[7].ImageId:
			if d.Action != Keep || len(d.InUse) != 1 {
				t.Errorf("%s in use: %+v", id, d)
			}
		case *imgs[6].ImageId:
			if d.Action != Deregister {
				t.Errorf("image of a terminated instance: %+v", d)
			}
		}
	}
}

func TestRetentionValidation(t *testing.T) {
	for name, fs := range map[string][]Family{
		"none":     nil,
		"selector": {{Name: "all"}},
		"order":    {{Name: "x", NamePrefix: "x", DeprecateAfter: 10 * day, DisableAfter: 5 * day}},
		"negative": {{Name: "x", NamePrefix: "x", KeepNewest: -1}},
	} {
		r := NewRetention(nil, amimock.NewMockAutoScalingAPI(gomock.NewController(t)), fs)
		if _, err := r.Plan(context.Background()); !errors.Is(err, ec2ops.ErrInvalidInput) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := NewRetention(nil, nil, []Family{webFamily}).Plan(context.Background()); !errors.Is(err, ec2ops.ErrInvalidInput) {
		t.Errorf("nil Auto Scaling client: %v", err)
	}
}

// TestRetentionApplyChecksSharingAhead plans 600 deregistrations with
// PlanSharing, shares one image and makes another public after the plan,
// and checks that Apply keeps both, and that its sharing checks (one per
// image, 20 a second) overlap the DeregisterImage pacing (5 a second)
// instead of adding to it: Apply takes (600-100)/5 = 100 s, not 125 s.
func TestRetentionApplyChecksSharingAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New()
		ctx := context.Background()
		now := time.Now()
		var ids []string
		for i := range 603 {
			ids = append(ids, sim.AddImage(cloudsim.AddImageInput{Name: fmt.Sprintf("app-%04d", i), Created: now.Add(-time.Duration(100+i) * day)}))
		}
		r := NewRetention(sim.EC2(), sim.AutoScaling(), []Family{{Name: "app", NamePrefix: "app-", KeepNewest: 1, DeregisterAfter: 90 * day}},
			func(o *RetentionOptions) { o.PlanSharing = true })
		plan, err := r.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c := plan.Counts(); c[Deregister] != 602 {
			t.Fatalf("counts %v", c)
		}
		shared, public := ids[10], ids[500]
		if _, err := sim.EC2().ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(shared),
			LaunchPermission: &types.LaunchPermissionModifications{Add: []types.LaunchPermission{{UserId: aws.String("999988887777")}}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := sim.EC2().ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(public),
			LaunchPermission: &types.LaunchPermissionModifications{Add: []types.LaunchPermission{{Group: types.PermissionGroupAll}}}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute) // refill the buckets Plan spent
		sim.ResetCounters()
		start := time.Now()
		res, err := r.Apply(ctx, plan)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		t.Logf("apply: %d deregistered in %v simulated, %s", len(res.Done), took, callsLine(sim.Calls()))
		if len(res.Done) != 600 || len(res.Skipped) != 2 {
			t.Errorf("done %d, skipped %v", len(res.Done), res.Skipped)
		}
		for _, id := range []string{shared, public} {
			if st, _ := sim.ImageState(id); st != "available" || res.Skipped[id] == "" {
				t.Errorf("image shared after the plan: %s, skipped %q", st, res.Skipped[id])
			}
		}
		if n := sim.Calls()["ec2:DescribeImageAttribute"]; n != 602 {
			t.Errorf("%d sharing checks at apply, want 602", n)
		}
		// The bound is (600-100)/5 = 100 s; serial checks would add (602-100)/20 = 25 s.
		if took > 105*time.Second {
			t.Errorf("apply took %v simulated, want about 100 s: the sharing checks do not overlap the deregistrations", took)
		}
		if th := sim.Throttled(); len(th) > 0 {
			t.Errorf("throttled: %v", th)
		}
	})
}

// TestRetentionApplySharingCheckErrors: an image whose sharing cannot be
// read at apply is not deregistered (it fails, and the others go on); an
// image already gone when checked counts as done, like a rerun.
func TestRetentionApplySharingCheckErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctrl := gomock.NewController(t)
		m := amimock.NewMockRetentionAPI(ctrl)
		asg := amimock.NewMockAutoScalingAPI(ctrl)
		denied, gone, ok := "ami-0000000000000000a", "ami-0000000000000000b", "ami-0000000000000000c"
		m.EXPECT().DescribeInstances(gomock.Any(), gomock.Any()).Return(&ec2.DescribeInstancesOutput{}, nil)
		m.EXPECT().DescribeLaunchTemplates(gomock.Any(), gomock.Any()).Return(&ec2.DescribeLaunchTemplatesOutput{}, nil)
		asg.EXPECT().DescribeAutoScalingGroups(gomock.Any(), gomock.Any()).Return(&autoscaling.DescribeAutoScalingGroupsOutput{}, nil)
		asg.EXPECT().DescribeLaunchConfigurations(gomock.Any(), gomock.Any()).Return(&autoscaling.DescribeLaunchConfigurationsOutput{}, nil)
		m.EXPECT().DescribeImageAttribute(gomock.Any(), gomock.Any()).Times(3).DoAndReturn(func(_ context.Context, in *ec2.DescribeImageAttributeInput, _ ...func(*ec2.Options)) (*ec2.DescribeImageAttributeOutput, error) {
			if in.Attribute != types.ImageAttributeNameLaunchPermission {
				t.Errorf("attribute %s", in.Attribute)
			}
			switch aws.ToString(in.ImageId) {
			case denied:
				return nil, &smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "no"}
			case gone:
				return nil, &smithy.GenericAPIError{Code: "InvalidAMIID.NotFound", Message: "gone"}
			}
			return &ec2.DescribeImageAttributeOutput{}, nil
		})
		m.EXPECT().DeregisterImage(gomock.Any(), gomock.Any()).Times(2).DoAndReturn(func(_ context.Context, in *ec2.DeregisterImageInput, _ ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error) {
			switch aws.ToString(in.ImageId) {
			case denied:
				t.Errorf("deregistered %s, whose sharing is unknown", denied)
			case gone:
				return nil, &smithy.GenericAPIError{Code: "InvalidAMIID.NotFound", Message: "gone"}
			}
			return &ec2.DeregisterImageOutput{}, nil
		})
		r := NewRetention(m, asg, []Family{{Name: "app", NamePrefix: "app-", DeregisterAfter: 90 * day}})
		plan := &RetentionPlan{At: time.Now()}
		for _, id := range []string{denied, gone, ok} {
			plan.Decisions = append(plan.Decisions, Decision{Image: Image{ID: id}, Family: "app", Action: Deregister, Reasons: []string{"old"}})
		}
		res, err := r.Apply(context.Background(), plan)
		var pe *ec2ops.ProgressError
		if !errors.As(err, &pe) || len(pe.Failed) != 1 || pe.Failed[denied] == nil {
			t.Fatalf("apply: %v", err)
		}
		if fmt.Sprint(res.Done) != fmt.Sprintf("[deregister %s deregister %s]", gone, ok) {
			t.Errorf("done %v", res.Done)
		}
	})
}
