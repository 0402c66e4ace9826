package ami

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"go.uber.org/mock/gomock"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/ami/amimock"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
)

func testRecipe(base string) Recipe {
	return Recipe{
		Name: "web-{date}-{bake}", Family: "web", BaseImage: base, InstanceProfile: "ec2ops-builder",
		Tags: map[string]string{"team": "web"},
		Layers: []Layer{
			{Name: "patches", UserData: "#!/bin/bash\ndnf -y upgrade --security\n"},
			{Name: "runtime", Commands: []string{"dnf -y install java-21-amazon-corretto"}},
			{Name: "app", Commands: []string{"aws s3 cp s3://bucket/app.jar /opt/app.jar", "systemctl enable app"}},
		},
	}
}

func fixedNow() time.Time { return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) }

func builderInstances(sim *cloudsim.Sim) []cloudsim.InstanceView {
	var out []cloudsim.InstanceView
	for _, v := range sim.Instances() {
		if v.Tags[TagRole] == RoleBuilder {
			out = append(out, v)
		}
	}
	return out
}

func TestBakeOnSimulator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 7 })
		base := sim.AddImage(cloudsim.AddImageInput{Name: "al2023-ami-2023.6-x86_64", Owner: "amazon", Public: true, RootGiB: 8})
		runner := &fakeRunner{Took: 90 * time.Second}
		rec := &ec2ops.Recorder{}
		b := NewBaker(sim.EC2(), func(o *BakerOptions) { o.Runner = runner; o.Observer = rec; o.Now = fixedNow })
		r := testRecipe(base)
		plan, err := b.PlanRecipe(r)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		res, err := b.Bake(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		if res.Image.State != types.ImageStateAvailable || res.Image.Name != "web-20250301-"+r.ID() || res.Adopted {
			t.Errorf("result %+v", res)
		}
		if got := res.Image.Tags; got[TagBake] != r.ID() || got[TagFamily] != "web" || got[TagSourceImage] != base || got["team"] != "web" {
			t.Errorf("image tags %v", got)
		}
		// cloud-init first, then one RunShell per command layer, on the builder.
		want := [][]string{{cloudInitWait}, r.Layers[1].Commands, r.Layers[2].Commands}
		if len(runner.Calls) != 3 || runner.Calls[0][0] != want[0][0] || runner.Calls[2][1] != "systemctl enable app" || runner.IDs[0][0] != res.BuilderID {
			t.Errorf("runner calls %v on %v", runner.Calls, runner.IDs)
		}
		time.Sleep(2 * time.Minute)
		bs := builderInstances(sim)
		if len(bs) != 1 || bs[0].State != "terminated" || bs[0].Tags[TagBake] != r.ID() {
			t.Errorf("builders after the bake: %+v", bs)
		}
		spec, _ := sim.LaunchInput(res.BuilderID)
		ud, _ := base64.StdEncoding.DecodeString(aws.ToString(spec.UserData))
		if !strings.Contains(string(ud), "dnf -y upgrade --security") || spec.MetadataOptions.HttpTokens != types.HttpTokensStateRequired {
			t.Errorf("builder launch: user data %q, metadata %+v", ud, spec.MetadataOptions)
		}
		calls := sim.Calls()
		t.Logf("bake: simulated %v, calls %v, plan:\n%s", took.Round(time.Second), calls, plan)
		if calls["ec2:RunInstances"] != 1 || calls["ec2:CreateImage"] != 1 || calls["ec2:TerminateInstances"] != 1 {
			t.Errorf("calls %v", calls)
		}
		policyCovers(t, sim, b.Policy())
		for _, a := range plan.Actions() {
			if !strings.HasPrefix(a, "ssm:") && !b.Policy().Allows(a) {
				t.Errorf("plan action %s not in the policy", a)
			}
		}
		phases := map[string]bool{}
		for _, e := range rec.Events() {
			phases[e.Phase] = true
			if strings.Contains(e.Message, "dnf") {
				t.Errorf("event leaks user data or commands: %+v", e)
			}
		}
		for _, p := range []string{"adopt", "launch-builder", "wait-builder", "layers", "create-image", "wait-image", "terminate-builder", "done"} {
			if !phases[p] {
				t.Errorf("no %s event", p)
			}
		}

		// A rerun adopts the image: no builder, no CreateImage.
		sim.ResetCounters()
		again, err := b.Bake(context.Background(), r)
		if err != nil || !again.Adopted || again.Image.ID != res.Image.ID {
			t.Fatalf("rerun: %+v, %v", again, err)
		}
		if c := sim.Calls(); c["ec2:RunInstances"]+c["ec2:CreateImage"] != 0 {
			t.Errorf("rerun made %v", c)
		}
	})
}

func TestBakeTerminatesBuilderOnFailureAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 3 })
		base := sim.AddImage(cloudsim.AddImageInput{Name: "base-1"})
		runner := &fakeRunner{Took: time.Minute, Fail: map[string]bool{"aws s3 cp s3://bucket/app.jar /opt/app.jar": true}}
		b := NewBaker(sim.EC2(), func(o *BakerOptions) { o.Runner = runner; o.Now = fixedNow })
		_, err := b.Bake(context.Background(), testRecipe(base))
		var be *BakeError
		if !errors.As(err, &be) || be.Phase != "layers" || be.BuilderID == "" || be.BuilderLeftBehind {
			t.Fatalf("err = %v", err)
		}
		if calls := sim.Calls(); calls["ec2:CreateImage"] != 0 || calls["ec2:TerminateInstances"] != 1 {
			t.Errorf("calls after a failed layer: %v", calls)
		}

		// Cancel while the image is being created: the builder still goes.
		r := testRecipe(base)
		r.Name = "web-cancel-{bake}"
		runner.Fail = nil
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { _, err := b.Bake(ctx, r); done <- err }()
		for sim.ImageCount() < 2 {
			time.Sleep(5 * time.Second)
		}
		cancel()
		err = <-done
		if !errors.As(err, &be) || be.Phase != "wait-image" || !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled bake: %v", err)
		}
		time.Sleep(2 * time.Minute)
		for _, v := range builderInstances(sim) {
			if v.State != "terminated" {
				t.Errorf("builder %s is %s after cancel", v.ID, v.State)
			}
		}
		// The rerun adopts the pending image of the cancelled run.
		sim.ResetCounters()
		res, err := b.Bake(context.Background(), r)
		if err != nil || !res.Adopted {
			t.Fatalf("rerun after cancel: %+v %v", res, err)
		}
		if sim.Calls()["ec2:RunInstances"] != 0 {
			t.Errorf("rerun launched a builder")
		}
	})
}

func TestSnapshotAndSweeper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New()
		base := sim.AddImage(cloudsim.AddImageInput{Name: "base-1"})
		ctx := context.Background()
		out, err := sim.EC2().RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(base), MinCount: aws.Int32(2), MaxCount: aws.Int32(2),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String(TagRole), Value: aws.String(RoleBuilder)}}}}})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Minute)
		b := NewBaker(sim.EC2(), func(o *BakerOptions) { o.Now = fixedNow })
		src := aws.ToString(out.Instances[0].InstanceId)
		res, err := b.Snapshot(ctx, Snapshot{InstanceID: src, Name: "snap-{date}", Family: "db"})
		if err != nil || res.Image.State != types.ImageStateAvailable || res.Image.Tags[TagFamily] != "db" {
			t.Fatalf("snapshot: %+v %v", res, err)
		}
		if _, err := b.Snapshot(ctx, Snapshot{InstanceID: "x", Name: "n"}); !errors.Is(err, ec2ops.ErrInvalidInput) {
			t.Errorf("bad instance ID: %v", err)
		}

		sw := NewSweeper(sim.EC2(), func(o *SweeperOptions) { o.MinAge = time.Hour })
		if ids, _ := sw.Leftovers(ctx); len(ids) != 0 {
			t.Errorf("young builders swept: %v", ids)
		}
		time.Sleep(time.Hour)
		plan, err := sw.Plan(ctx)
		if err != nil || len(plan.Steps) != 1 || len(plan.Steps[0].Resources) != 2 {
			t.Fatalf("plan %v %v", plan, err)
		}
		done, err := sw.Sweep(ctx)
		if err != nil || len(done) != 2 {
			t.Fatalf("sweep %v %v", done, err)
		}
		if ids, _ := sw.Leftovers(ctx); len(ids) != 0 {
			t.Errorf("leftovers after sweep: %v", ids)
		}
		policyCovers(t, sim, b.Policy().Merge(sw.Policy()))
	})
}

func TestBakeRunInstancesInputAndSpotFallback(t *testing.T) {
	ctrl := gomock.NewController(t)
	m := amimock.NewMockBakeAPI(ctrl)
	r := testRecipe("ami-0123456789abcdef0")
	r.Spot = true
	r.Layers = []Layer{{Name: "patches", UserData: "#!/bin/sh\necho hi\n"}}
	r.RootVolumeGiB = 30
	id := r.ID()
	ctx, cancel := context.WithCancel(context.Background())
	m.EXPECT().DescribeImages(gomock.Any(), gomock.Any()).DoAndReturn(func(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
		if len(in.Filters) != 1 || *in.Filters[0].Name != "tag:"+TagBake || in.Filters[0].Values[0] != id || in.Owners[0] != "self" {
			t.Errorf("adopt query %+v", in)
		}
		return &ec2.DescribeImagesOutput{}, nil
	})
	m.EXPECT().DescribeInstances(gomock.Any(), gomock.Any()).Return(&ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: []types.Instance{
		{InstanceId: aws.String("i-0000000000000000a"), State: &types.InstanceState{Name: types.InstanceStateNameTerminated}}}}}}, nil)
	capacity := &smithy.GenericAPIError{Code: "InsufficientInstanceCapacity", Message: "no spot"}
	gomock.InOrder(
		m.EXPECT().RunInstances(gomock.Any(), gomock.Any()).DoAndReturn(func(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
			if aws.ToString(in.ClientToken) != "ec2ops-bake-"+id+"-1-spot" || in.InstanceMarketOptions == nil || in.InstanceMarketOptions.MarketType != types.MarketTypeSpot {
				t.Errorf("spot request: token %s market %+v", aws.ToString(in.ClientToken), in.InstanceMarketOptions)
			}
			return nil, capacity
		}),
		m.EXPECT().RunInstances(gomock.Any(), gomock.Any()).DoAndReturn(func(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
			tags := map[string]string{}
			for _, ts := range in.TagSpecifications {
				for _, tg := range ts.Tags {
					tags[string(ts.ResourceType)+"/"+*tg.Key] = *tg.Value
				}
			}
			ud, _ := base64.StdEncoding.DecodeString(aws.ToString(in.UserData))
			switch {
			case aws.ToString(in.ClientToken) != "ec2ops-bake-"+id+"-1", in.InstanceMarketOptions != nil:
				t.Errorf("on-demand fallback: token %s market %+v", aws.ToString(in.ClientToken), in.InstanceMarketOptions)
			case tags["instance/"+TagRole] != RoleBuilder || tags["volume/"+TagBake] != id:
				t.Errorf("tags %v", tags)
			case string(ud) != "#!/bin/sh\necho hi\n" || in.MetadataOptions.HttpTokens != types.HttpTokensStateRequired:
				t.Errorf("user data %q metadata %+v", ud, in.MetadataOptions)
			case aws.ToString(in.IamInstanceProfile.Name) != "ec2ops-builder" || aws.ToInt32(in.BlockDeviceMappings[0].Ebs.VolumeSize) != 30:
				t.Errorf("profile/root: %+v %+v", in.IamInstanceProfile, in.BlockDeviceMappings)
			case in.InstanceInitiatedShutdownBehavior != types.ShutdownBehaviorTerminate:
				t.Errorf("shutdown behaviour %s", in.InstanceInitiatedShutdownBehavior)
			}
			cancel() // stop the bake while waiting for the builder
			return &ec2.RunInstancesOutput{Instances: []types.Instance{{InstanceId: aws.String("i-0000000000000000b")}}}, nil
		}),
	)
	m.EXPECT().DescribeInstanceStatus(gomock.Any(), gomock.Any()).AnyTimes().Return(&ec2.DescribeInstanceStatusOutput{}, nil)
	m.EXPECT().TerminateInstances(gomock.Any(), &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0000000000000000b"}}).Return(&ec2.TerminateInstancesOutput{}, nil)
	b := NewBaker(m, func(o *BakerOptions) { o.Runner = &fakeRunner{}; o.PollInterval = time.Millisecond })
	_, err := b.Bake(ctx, r)
	var be *BakeError
	if !errors.As(err, &be) || be.Phase != "wait-builder" || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestRecipeValidation(t *testing.T) {
	b := NewBaker(nil)
	for name, r := range map[string]Recipe{
		"base":        {Name: "x-{bake}", BaseImage: "nope"},
		"name":        {Name: "", BaseImage: "ami-12345678"},
		"placeholder": {Name: "x-{when}", BaseImage: "ami-12345678"},
		"runner":      {Name: "x-{bake}", BaseImage: "ami-12345678", Layers: []Layer{{Name: "a", Commands: []string{"true"}}}},
		"dup layer":   {Name: "x-{bake}", BaseImage: "ami-12345678", Layers: []Layer{{Name: "a"}, {Name: "a"}}},
		"user data":   {Name: "x-{bake}", BaseImage: "ami-12345678", Layers: []Layer{{Name: "a", UserData: strings.Repeat("x", 17000)}}},
	} {
		if _, err := b.Bake(context.Background(), r); !errors.Is(err, ec2ops.ErrInvalidInput) {
			t.Errorf("%s: err = %v, want invalid input", name, err)
		}
	}
}
