package lifecycle_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/lifecycle"
)

var (
	_ lifecycle.CaptureAPI    = (*cloudsim.EC2)(nil)
	_ lifecycle.EC2API        = (*cloudsim.EC2)(nil)
	_ lifecycle.RootVolumeAPI = (*cloudsim.EC2)(nil)
	_ lifecycle.ELBAPI        = (*cloudsim.ELBv2)(nil)
)

const (
	oldAMI = "ami-0aaaaaaaaaaaaaaa1"
	newAMI = "ami-0bbbbbbbbbbbbbbb2"
)

// fleet launches n web instances spread over the AZs, with a data volume
// and user data, and waits until they are healthy (replacing any that boot
// impaired, and retrying throttled or failed calls).
func fleet(t *testing.T, sim *cloudsim.Sim, n int, mods ...func(*ec2.RunInstancesInput)) []string {
	t.Helper()
	ctx := context.Background()
	c := sim.EC2()
	subnets := sim.Subnets()
	azs := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	var ids []string
	seq := 0
	launch := func(i int) {
		seq++
		in := &ec2.RunInstancesInput{
			ImageId: aws.String(oldAMI), InstanceType: types.InstanceTypeM5Large,
			MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			ClientToken: aws.String(fmt.Sprintf("fleet-%d", seq)),
			SubnetId:    aws.String(subnets[azs[i%len(azs)]]),
			UserData:    aws.String("IyEvYmluL3NoCmVjaG8gc2VjcmV0LXRva2VuCg=="), // "#!/bin/sh\necho secret-token\n"
			BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdf"),
				Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(20), VolumeType: types.VolumeTypeGp3, Encrypted: aws.Bool(true)}}},
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance,
				Tags: []types.Tag{{Key: aws.String("app"), Value: aws.String("web")}, {Key: aws.String("Name"), Value: aws.String(fmt.Sprintf("web-%d", i))}}}},
		}
		for _, m := range mods {
			m(in)
		}
		for try := 0; ; try++ {
			out, err := c.RunInstances(ctx, in)
			if err == nil {
				ids = append(ids, aws.ToString(out.Instances[0].InstanceId))
				return
			}
			if try > 50 {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
		}
	}
	for i := range n {
		launch(i)
	}
	for round := 0; ; round++ {
		time.Sleep(5 * time.Minute)
		var good []string
		for i, id := range ids {
			if iv, _ := sim.Instance(id); iv.Healthy {
				good = append(good, id)
			} else {
				for {
					if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err == nil {
						break
					}
					time.Sleep(time.Second)
				}
				_ = i
			}
		}
		if len(good) == n {
			return good
		}
		if round > 10 {
			t.Fatalf("fleet: %d of %d healthy", len(good), n)
		}
		missing := n - len(good)
		ids = good
		for i := range missing {
			launch(i)
		}
	}
}

func fast(o *lifecycle.Options) { o.RequestShare = 1 }

func TestSurgeReplaceMovesEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New()
		ids := fleet(t, sim, 1)
		old := ids[0]
		ctx := context.Background()
		alloc, err := sim.EC2().AllocateAddress(ctx, &ec2.AllocateAddressInput{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sim.EC2().AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: aws.String(old)}); err != nil {
			t.Fatal(err)
		}
		tg := sim.CreateTargetGroup("web", 80)
		if _, err := sim.ELBv2().RegisterTargets(ctx, registerInput(tg, old)); err != nil {
			t.Fatal(err)
		}
		rec := &ec2ops.Recorder{}
		s := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{ImageID: newAMI}, fast, func(o *lifecycle.Options) {
			o.ELB = sim.ELBv2()
			o.TargetGroups = []string{tg}
			o.Observer = rec
		})
		start := time.Now()
		r, err := s.Replace(ctx, old)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("replaced %s by %s in %s (simulated), reasons %v", r.OldID, r.NewID, time.Since(start), r.Reasons)
		iv, _ := sim.Instance(r.NewID)
		if iv.ImageID != newAMI || !iv.Healthy || iv.Tags[lifecycle.TagReplaces] != old || iv.Tags["app"] != "web" {
			t.Fatalf("replacement %+v", iv)
		}
		if ov, _ := sim.Instance(old); ov.State != "shutting-down" && ov.State != "terminated" {
			t.Fatalf("old instance is %s", ov.State)
		}
		if ip, ok := sim.AddressOf(r.NewID); !ok || ip != aws.ToString(alloc.PublicIp) {
			t.Fatalf("Elastic IP not moved: %q %v", ip, ok)
		}
		if st := sim.TargetState(tg, r.NewID); st != "healthy" {
			t.Fatalf("new target %s", st)
		}
		if st := sim.TargetState(tg, old); st != "unused" {
			t.Fatalf("old target %s", st)
		}
		in, _ := sim.LaunchInput(r.NewID)
		if in.MetadataOptions.HttpTokens != types.HttpTokensStateRequired {
			t.Fatalf("IMDSv2 not required: %v", in.MetadataOptions.HttpTokens)
		}
		for _, e := range rec.Events() {
			if strings.Contains(fmt.Sprint(e), "secret-token") || strings.Contains(fmt.Sprint(e), "IyEvYmlu") {
				t.Fatalf("user data leaked into an event: %+v", e)
			}
		}
		// Captured again, the replacement matches the target: no drift.
		capt := lifecycle.NewCapturer(sim.EC2())
		spec, err := capt.Capture(ctx, r.NewID)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := lifecycle.NewRollout(s, lifecycle.Selector{InstanceIDs: []string{r.NewID}}).Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Drifted) != 0 || len(plan.UpToDate) != 1 {
			t.Fatalf("replacement is drifted: %+v (spec %v)", plan.Drifted, spec)
		}
	})
}

func registerInput(tg, id string) *elb.RegisterTargetsInput {
	return &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tg), Targets: []elbtypes.TargetDescription{{Id: aws.String(id)}}}
}

// capacityFloor registers invariants on the simulator: healthy web
// capacity never below floor; never two live replacements of one
// instance; an original is terminated only while a healthy replacement
// exists; a replacement is terminated only while its old instance lives.
func capacityFloor(sim *cloudsim.Sim, floor int) {
	web := func(v cloudsim.InstanceView) bool { return v.Tags["app"] == "web" }
	sim.TrackCapacity("web", web)
	sim.AddInvariant("floor", func(c cloudsim.Change, v *cloudsim.View) error {
		if n := v.Capacity("web"); n < floor {
			return fmt.Errorf("healthy web capacity %d < floor %d", n, floor)
		}
		return nil
	})
	sim.AddInvariant("termination", func(c cloudsim.Change, v *cloudsim.View) error {
		if c.Kind != cloudsim.ChangeState || c.To != "shutting-down" {
			return nil
		}
		me, _ := v.Instance(c.InstanceID)
		if old := me.Tags[lifecycle.TagReplaces]; old != "" {
			if o, ok := v.Instance(old); !ok || o.State == "terminated" || o.State == "shutting-down" {
				return fmt.Errorf("replacement %s terminated after its old instance %s", c.InstanceID, old)
			}
			return nil
		}
		for _, x := range v.Instances() {
			if x.Tags[lifecycle.TagReplaces] == c.InstanceID && x.Healthy {
				return nil
			}
		}
		return fmt.Errorf("original %s terminated without a healthy replacement", c.InstanceID)
	})
	sim.AddInvariant("no-duplicate", func(c cloudsim.Change, v *cloudsim.View) error {
		if c.Kind != cloudsim.ChangeState || c.From != "" {
			return nil
		}
		me, _ := v.Instance(c.InstanceID)
		old := me.Tags[lifecycle.TagReplaces]
		if old == "" {
			return nil
		}
		live := 0
		for _, x := range v.Instances() {
			if x.Tags[lifecycle.TagReplaces] == old && x.State != "terminated" && x.State != "shutting-down" {
				live++
			}
		}
		if live > 1 {
			return fmt.Errorf("%d live replacements of %s", live, old)
		}
		return nil
	})
}

func TestRolloutCapacityFloor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 7 })
		ids := fleet(t, sim, 12)
		capacityFloor(sim, 12)
		s := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{ImageID: newAMI}, fast)
		ro := lifecycle.NewRollout(s, lifecycle.Selector{Tags: map[string]string{"app": "web"}}, func(o *lifecycle.RolloutOptions) {
			o.MaxSurge = "25%"
			o.Canary = "1"
			o.BakeTime = 10 * time.Minute
		})
		plan, err := ro.Plan(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Drifted) != 12 || plan.InFlight != 3 || len(plan.Batches[0]) != 1 {
			t.Fatalf("plan: %d drifted, %d in flight, batches %v", len(plan.Drifted), plan.InFlight, plan.Batches)
		}
		res, err := ro.Apply(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Replaced) != 12 {
			t.Fatalf("replaced %d", len(res.Replaced))
		}
		t.Logf("12 instances in %s, calls %v", res.Elapsed, sim.Calls())
		if v := sim.Violations(); len(v) > 0 {
			t.Fatalf("violations: %v", v[:min(5, len(v))])
		}
		for _, id := range ids {
			if _, ok := res.Replaced[id]; !ok {
				t.Fatalf("%s not replaced", id)
			}
		}
	})
}

// TestRolloutResumeChaos runs a rollout on 100 seeded fleets with faults
// (impaired boots, throttling, server errors, eventual consistency), cancels
// it at random points and runs it again until it finishes. At every state
// change the invariants hold: healthy capacity never below the floor, no
// duplicate launch, no wrong termination. At the end no instance is
// orphaned.
func TestRolloutResumeChaos(t *testing.T) {
	seeds := 100
	if testing.Short() {
		seeds = 20
	}
	for seed := 1; seed <= seeds; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { chaos(t, int64(seed)) })
		})
	}
}

func chaos(t *testing.T, seed int64) {
	sim := cloudsim.New(func(o *cloudsim.Options) {
		o.Seed = seed
		o.Faults = cloudsim.Faults{ImpairedRate: 0.08, ThrottleRate: 0.02, ServerErrorRate: 0.01, EventualConsistency: 5 * time.Second}
	})
	rng := newRand(seed)
	n := 12 + rng.IntN(7)
	handover := seed%4 == 0
	fleet(t, sim, n)
	unavail := 0
	if handover {
		unavail = 2
	}
	capacityFloor(sim, n-unavail)
	var journal lifecycle.Journal
	switch seed % 3 {
	case 0:
		journal = lifecycle.NewMemoryJournal()
	case 1:
		fj, err := lifecycle.OpenFileJournal(t.TempDir() + "/journal.jsonl")
		if err != nil {
			t.Fatal(err)
		}
		defer fj.Close()
		journal = fj
	}
	newRollout := func() *lifecycle.Rollout {
		s := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{ImageID: newAMI}, fast, func(o *lifecycle.Options) {
			o.Seed = uint64(seed)
			o.HandoverDataVolumes = handover
		})
		return lifecycle.NewRollout(s, lifecycle.Selector{Tags: map[string]string{"app": "web"}}, func(o *lifecycle.RolloutOptions) {
			o.MaxSurge = "3"
			o.MaxUnavailable = fmt.Sprint(unavail)
			o.MaxFailures = "1"
			o.Journal = journal
			if seed%2 == 0 {
				o.Canary = "1"
				o.BakeTime = 5 * time.Minute
			}
		})
	}
	var err error
	runs := 0
	for runs = 1; runs <= 30; runs++ {
		ctx, cancel := context.WithCancel(context.Background())
		if runs <= 3 { // cancel the first runs at a random point
			after := time.Duration(rng.Int64N(int64(20 * time.Minute)))
			time.AfterFunc(after, cancel)
		}
		_, err = newRollout().Apply(ctx)
		cancel()
		if err == nil {
			break
		}
		var re *lifecycle.RolloutError
		if !errors.As(err, &re) && !errors.Is(err, context.Canceled) {
			t.Fatalf("run %d: unexpected error %v", runs, err)
		}
		time.Sleep(time.Minute)
	}
	if err != nil {
		t.Fatalf("not finished after %d runs: %v", runs, err)
	}
	time.Sleep(10 * time.Minute)
	if v := sim.Violations(); len(v) > 0 {
		t.Fatalf("%d violations, first: %v", len(v), v[:min(3, len(v))])
	}
	// Everything is on the new image, healthy, and nothing is orphaned.
	web := 0
	for _, iv := range sim.Instances() {
		if iv.State == "terminated" || iv.Tags["app"] != "web" {
			continue
		}
		web++
		if iv.ImageID != newAMI || !iv.Healthy {
			t.Errorf("left over: %s %s %s healthy=%v", iv.ID, iv.State, iv.ImageID, iv.Healthy)
		}
	}
	if web != n {
		t.Fatalf("%d web instances at the end, want %d", web, n)
	}
	plan, perr := newRollout().Plan(context.Background())
	if perr != nil || len(plan.Drifted) != 0 {
		t.Fatalf("after the rollout: %v drifted, err %v", plan, perr)
	}
	if testing.Verbose() {
		t.Logf("seed %d: n=%d handover=%v runs=%d min healthy %d", seed, n, handover, runs, sim.MinHealthy("web"))
	}
}

func newRand(seed int64) *rand.Rand { return rand.New(rand.NewPCG(uint64(seed), 99)) }

// TestPolicyCoversCalls runs each strategy on the simulator (Elastic IP,
// target group, handover) and checks every call it made is in its Policy.
func TestPolicyCoversCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New()
		ids := fleet(t, sim, 4)
		ctx := context.Background()
		tg := sim.CreateTargetGroup("web", 80)
		for _, id := range ids {
			if _, err := sim.ELBv2().RegisterTargets(ctx, registerInput(tg, id)); err != nil {
				t.Fatal(err)
			}
		}
		alloc, _ := sim.EC2().AllocateAddress(ctx, &ec2.AllocateAddressInput{})
		if _, err := sim.EC2().AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: aws.String(ids[0])}); err != nil {
			t.Fatal(err)
		}
		withTG := func(o *lifecycle.Options) { o.ELB = sim.ELBv2(); o.TargetGroups = []string{tg} }
		sim.ResetCounters()
		s := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{ImageID: newAMI}, fast, withTG, func(o *lifecycle.Options) { o.HandoverDataVolumes = true })
		ro := lifecycle.NewRollout(s, lifecycle.Selector{InstanceIDs: ids[:3]}, func(o *lifecycle.RolloutOptions) { o.MaxUnavailable = "1" })
		if _, err := ro.Apply(ctx); err != nil {
			t.Fatal(err)
		}
		if u := ro.Policy().Uncovered(sim.Calls()); len(u) > 0 {
			t.Fatalf("surge rollout calls outside its policy: %v", u)
		}
		if ip, ok := sim.AddressOf(ids[0]); ok {
			t.Fatalf("Elastic IP %s still on the old instance", ip)
		}
		sim.ResetCounters()
		v := lifecycle.NewRootVolume(sim.EC2(), lifecycle.Target{ImageID: newAMI}, fast, withTG)
		if _, err := v.Replace(ctx, ids[3]); err != nil {
			t.Fatal(err)
		}
		if u := v.Policy().Uncovered(sim.Calls()); len(u) > 0 {
			t.Fatalf("root volume calls outside its policy: %v", u)
		}
		if st := sim.TargetState(tg, ids[3]); st != "healthy" {
			t.Fatalf("root-volume instance back in service: %s", st)
		}
		var js map[string]any
		if err := json.Unmarshal([]byte(s.Policy().JSON()), &js); err != nil || js["Version"] != "2012-10-17" {
			t.Fatalf("policy JSON: %v %v", err, js)
		}
	})
}

// TestHandoverKeepsData checks that handed-over data volumes end on the
// replacement, at the same device, with DeleteOnTermination off, and that
// the old instance's termination deleted none of them.
func TestHandoverKeepsData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New()
		ids := fleet(t, sim, 1)
		ctx := context.Background()
		before, _ := sim.EC2().DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{
			{Name: aws.String("attachment.instance-id"), Values: ids}, {Name: aws.String("attachment.device"), Values: []string{"/dev/sdf"}}}})
		if len(before.Volumes) != 1 {
			t.Fatalf("data volumes: %v", before.Volumes)
		}
		vol := aws.ToString(before.Volumes[0].VolumeId)
		s := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{ImageID: newAMI}, fast, func(o *lifecycle.Options) { o.HandoverDataVolumes = true })
		r, err := s.Replace(ctx, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute) // the old instance terminates
		after, err := sim.EC2().DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{vol}})
		if err != nil {
			t.Fatal(err)
		}
		a := after.Volumes[0].Attachments
		if len(a) != 1 || aws.ToString(a[0].InstanceId) != r.NewID || aws.ToString(a[0].Device) != "/dev/sdf" || aws.ToBool(a[0].DeleteOnTermination) {
			t.Fatalf("data volume after handover: %+v", a)
		}
	})
}
