package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/lifecycle"
)

var (
	_ lifecycle.InstanceTypesAPI = (*cloudsim.EC2)(nil)
	_ lifecycle.ResizeClient     = (*cloudsim.EC2)(nil)
)

// mutating are the calls a refused resize must never make.
var mutating = []string{"ec2:StopInstances", "ec2:StartInstances", "ec2:ModifyInstanceAttribute", "ec2:RunInstances",
	"ec2:TerminateInstances", "elasticloadbalancing:DeregisterTargets"}

func noMutation(t *testing.T, sim *cloudsim.Sim) {
	t.Helper()
	calls := sim.Calls()
	for _, a := range mutating {
		if calls[a] > 0 {
			t.Fatalf("refused resize made %d %s call(s)", calls[a], a)
		}
	}
}

// TestResizeFleetThroughRollout resizes 20 instances m5.large -> m5.xlarge
// by stop/modify/start through Rollout with MaxUnavailable 20%: healthy
// capacity never drops below 16 at any state change, every instance ends
// running, healthy and of the new type, with the same ID, and the calls
// are within Policy().
func TestResizeFleetThroughRollout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 11 })
		ids := fleet(t, sim, 20)
		capacityFloor(sim, 16)
		rec := &ec2ops.Recorder{}
		z := lifecycle.NewResize(sim.EC2(), "m5.xlarge", lifecycle.WithOptions(fast), func(o *lifecycle.ResizeOptions) { o.Observer = rec })
		ro := lifecycle.NewRollout(z, lifecycle.Selector{Tags: map[string]string{"app": "web"}}, func(o *lifecycle.RolloutOptions) {
			o.MaxUnavailable = "20%"
			o.Canary = "1"
			o.BakeTime = 5 * time.Minute
		})
		ctx := context.Background()
		refused, err := z.Check(ctx, ids)
		if err != nil || len(refused) != 0 {
			t.Fatalf("check: %v %v", refused, err)
		}
		plan, err := ro.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Drifted) != 20 || plan.Floor != 16 || plan.InFlight != 4 {
			t.Fatalf("plan: %d drifted, floor %d, %d in flight", len(plan.Drifted), plan.Floor, plan.InFlight)
		}
		if r := plan.Drifted[0].Reasons; len(r) != 1 || r[0] != "instance type m5.large -> m5.xlarge" {
			t.Fatalf("reasons %v", r)
		}
		sim.ResetCounters()
		start := time.Now()
		res, err := ro.Apply(ctx)
		if err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		if len(res.Replaced) != 20 {
			t.Fatalf("resized %d", len(res.Replaced))
		}
		for _, id := range ids {
			if res.Replaced[id] != id {
				t.Fatalf("%s resized as %q: the ID must stay", id, res.Replaced[id])
			}
			iv, _ := sim.Instance(id)
			if iv.InstanceType != "m5.xlarge" || !iv.Healthy || iv.ImageID != oldAMI {
				t.Fatalf("after the resize: %+v", iv)
			}
		}
		if v := sim.Violations(); len(v) > 0 {
			t.Fatalf("violations: %v", v[:min(5, len(v))])
		}
		calls := sim.Calls()
		if u := z.Policy().Uncovered(calls); len(u) > 0 {
			t.Fatalf("calls outside the policy: %v", u)
		}
		// Each type is described once for the whole fleet (cache and
		// in-flight dedupe), whatever the concurrency.
		if calls["ec2:DescribeInstanceTypes"] > 1 || calls["ec2:DescribeInstanceTypeOfferings"] > 1 {
			t.Fatalf("type calls not cached: %v", calls)
		}
		if calls["ec2:StopInstances"] != 20 || calls["ec2:ModifyInstanceAttribute"] != 20 || calls["ec2:StartInstances"] != 20 {
			t.Fatalf("calls %v", calls)
		}
		resized := 0
		for _, e := range rec.Events() {
			if e.Phase == "resized" {
				resized++
			}
		}
		if resized != 20 {
			t.Fatalf("%d resized events", resized)
		}
		t.Logf("20 instances resized in %s simulated (4 at a time, canary baked 5m), min healthy %d, calls per instance: %s",
			elapsed.Round(time.Second), sim.MinHealthy("web"), perInstance(calls, 20))
		again, err := ro.Plan(ctx)
		if err != nil || len(again.Drifted) != 0 || len(again.UpToDate) != 20 {
			t.Fatalf("after: %+v %v", again, err)
		}
	})
}

func perInstance(calls map[string]int, n int) string {
	var parts []string
	for _, k := range []string{"ec2:DescribeInstances", "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceAttribute",
		"ec2:StopInstances", "ec2:ModifyInstanceAttribute", "ec2:StartInstances", "ec2:DescribeInstanceTypes", "ec2:DescribeInstanceTypeOfferings"} {
		parts = append(parts, fmt.Sprintf("%s %.2f", strings.TrimPrefix(k, "ec2:"), float64(calls[k])/float64(n)))
	}
	return strings.Join(parts, ", ")
}

// instanceStoreRoot reports one instance with an instance-store root
// device, which the simulator does not model.
type instanceStoreRoot struct {
	*cloudsim.EC2
	id string
}

func (c instanceStoreRoot) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	out, err := c.EC2.DescribeInstances(ctx, in, optFns...)
	if err != nil {
		return nil, err
	}
	for i := range out.Reservations {
		for k := range out.Reservations[i].Instances {
			if in := &out.Reservations[i].Instances[k]; *in.InstanceId == c.id {
				in.RootDeviceType = types.DeviceTypeInstanceStore
			}
		}
	}
	return out, nil
}

// TestResizeRefusals: an arm64 type for an x86 instance, a type not
// offered in the instance's AZ, an instance-store root and an unknown type
// are refused with a *ResizeRefusal naming instance, types and reason,
// before any mutating call, by Replace, Plan, Check and Rollout.
func TestResizeRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 5 })
		ids := fleet(t, sim, 3) // us-east-1a, 1b, 1c
		sim.SetOfferings("m6i.large", "us-east-1a")
		ctx := context.Background()
		cases := []struct {
			name, itype, id, check, want string
		}{
			{"arm64", "c6g.large", ids[0], "architecture", "image is x86_64 and c6g.large supports arm64 only"},
			{"offering", "m6i.large", ids[1], "offering", "m6i.large is not offered in us-east-1b"},
			{"instance-store", "m5.xlarge", ids[2], "root-device", "instance-store"},
			{"unknown", "m5.huge", ids[0], "unknown-type", "does not exist"},
		}
		for _, c := range cases {
			client := lifecycle.ResizeClient(sim.EC2())
			if c.check == "root-device" {
				client = instanceStoreRoot{sim.EC2(), c.id}
			}
			for _, mode := range []lifecycle.ResizeMode{lifecycle.ResizeStopStart, lifecycle.ResizeSurge} {
				sim.ResetCounters()
				z := lifecycle.NewResize(client, c.itype, lifecycle.WithOptions(fast), func(o *lifecycle.ResizeOptions) { o.Mode = mode })
				_, err := z.Replace(ctx, c.id)
				var ref *lifecycle.ResizeRefusal
				if !errors.As(err, &ref) || !errors.Is(err, ec2ops.ErrUnsupported) || ref.Check != c.check || ref.InstanceID != c.id ||
					ref.From != "m5.large" || ref.To != c.itype || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("%s/%s: %v", c.name, mode, err)
				}
				if _, err := z.Plan(ctx, c.id); !errors.As(err, &ref) {
					t.Fatalf("%s/%s plan: %v", c.name, mode, err)
				}
				noMutation(t, sim)
				if u := z.Policy().Uncovered(sim.Calls()); len(u) > 0 {
					t.Fatalf("calls outside the policy: %v", u)
				}
			}
			t.Logf("%s: %v", c.name, func() error { _, err := lifecycle.NewResize(client, c.itype).Replace(ctx, c.id); return err }())
		}
		// Check sorts a fleet: m6i.large fits only the instance in us-east-1a.
		z := lifecycle.NewResize(sim.EC2(), "m6i.large", lifecycle.WithOptions(fast))
		sim.ResetCounters()
		refused, err := z.Check(ctx, append(ids, "i-0000000000000dead"))
		if err != nil || len(refused) != 3 || refused[ids[0]] != nil || !errors.Is(refused["i-0000000000000dead"], ec2ops.ErrNotFound) {
			t.Fatalf("check: %v %v", refused, err)
		}
		if c := sim.Calls(); c["ec2:DescribeInstanceTypes"] != 1 || c["ec2:DescribeInstanceTypeOfferings"] != 1 || c["ec2:DescribeInstances"] != 1 {
			t.Fatalf("check calls %v", c)
		}
		// A Rollout fails the misfits before touching them, and resizes
		// the instance that fits.
		ro := lifecycle.NewRollout(z, lifecycle.Selector{Tags: map[string]string{"app": "web"}}, func(o *lifecycle.RolloutOptions) {
			o.MaxUnavailable = "1"
			o.MaxFailures = "2"
		})
		_, err = ro.Apply(ctx)
		var rerr *lifecycle.RolloutError
		if !errors.As(err, &rerr) || len(rerr.Failed) != 2 || len(rerr.Replaced) != 1 || rerr.Replaced[ids[0]] != ids[0] {
			t.Fatalf("rollout: %v", err)
		}
		for id, e := range rerr.Failed {
			var ref *lifecycle.ResizeRefusal
			if !errors.As(e, &ref) || ref.Check != "offering" {
				t.Fatalf("%s: %v", id, e)
			}
			if iv, _ := sim.Instance(id); iv.InstanceType != "m5.large" || !iv.Healthy {
				t.Fatalf("refused instance touched: %+v", iv)
			}
		}
		if iv, _ := sim.Instance(ids[0]); iv.InstanceType != "m6i.large" || !iv.Healthy {
			t.Fatalf("fitting instance: %+v", iv)
		}
	})
}

// TestResizeRestoresOldType: a new type that fails the caller's health
// check is undone: the old type is restored and the instance started
// again, healthy, with the same ID.
func TestResizeRestoresOldType(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 9 })
		ids := fleet(t, sim, 1)
		ctx := context.Background()
		rec := &ec2ops.Recorder{}
		z := lifecycle.NewResize(sim.EC2(), "r5.large", lifecycle.WithOptions(fast), func(o *lifecycle.ResizeOptions) {
			o.Observer = rec
			o.HealthCheck = func(ctx context.Context, id string) error {
				if iv, _ := sim.Instance(id); iv.InstanceType == "r5.large" {
					return errors.New("app does not start on r5")
				}
				return nil
			}
		})
		_, err := z.Replace(ctx, ids[0])
		var re *lifecycle.ReplaceError
		var ze *lifecycle.ResizeError
		if !errors.As(err, &re) || re.Phase != "health-check" || !errors.As(err, &ze) || !ze.Restored || !errors.Is(err, lifecycle.ErrUnhealthy) {
			t.Fatalf("error %v", err)
		}
		iv, _ := sim.Instance(ids[0])
		if iv.InstanceType != "m5.large" || !iv.Healthy {
			t.Fatalf("not restored: %+v", iv)
		}
		if c := sim.Calls(); c["ec2:ModifyInstanceAttribute"] != 2 || c["ec2:StartInstances"] != 2 || c["ec2:StopInstances"] != 2 {
			t.Fatalf("calls %v", c)
		}
		t.Logf("error: %v", err)
	})
}

// TestResizeSurgeMode: through Surge the replacement is launched with the
// new type, the old instance terminated.
func TestResizeSurgeMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 4 })
		ids := fleet(t, sim, 1)
		sim.ResetCounters()
		z := lifecycle.NewResize(sim.EC2(), "c5.xlarge", lifecycle.WithOptions(fast), func(o *lifecycle.ResizeOptions) { o.Mode = lifecycle.ResizeSurge })
		r, err := z.Replace(context.Background(), ids[0])
		if err != nil {
			t.Fatal(err)
		}
		iv, _ := sim.Instance(r.NewID)
		if r.NewID == ids[0] || iv.InstanceType != "c5.xlarge" || !iv.Healthy || iv.Tags[lifecycle.TagReplaces] != ids[0] {
			t.Fatalf("replacement %+v", iv)
		}
		if ov, _ := sim.Instance(ids[0]); ov.State != "shutting-down" && ov.State != "terminated" {
			t.Fatalf("old %s", ov.State)
		}
		if u := z.Policy().Uncovered(sim.Calls()); len(u) > 0 {
			t.Fatalf("calls outside the policy: %v", u)
		}
		if c := sim.Calls(); c["ec2:StopInstances"]+c["ec2:ModifyInstanceAttribute"] != 0 {
			t.Fatalf("surge mode stopped or modified: %v", c)
		}
	})
}

// TestResizeCancelNeverLeavesStopped cancels a resize at several points:
// the instance always ends running (old or new type), never stopped, and a
// rerun finishes the job.
func TestResizeCancelNeverLeavesStopped(t *testing.T) {
	for _, after := range []time.Duration{2 * time.Second, 20 * time.Second, 50 * time.Second, 90 * time.Second, 3 * time.Minute} {
		t.Run(after.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 21 })
				ids := fleet(t, sim, 1)
				z := lifecycle.NewResize(sim.EC2(), "m5.2xlarge", lifecycle.WithOptions(fast))
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(after, cancel)
				_, err := z.Replace(ctx, ids[0])
				cancel()
				synctest.Wait()
				iv, _ := sim.Instance(ids[0])
				if iv.State == "stopped" || iv.State == "stopping" {
					t.Fatalf("left %s after a cancellation (%v)", iv.State, err)
				}
				time.Sleep(10 * time.Minute)
				if _, err := z.Replace(context.Background(), ids[0]); err != nil {
					t.Fatal(err)
				}
				if iv, _ := sim.Instance(ids[0]); iv.InstanceType != "m5.2xlarge" || !iv.Healthy {
					t.Fatalf("after the rerun: %+v", iv)
				}
			})
		})
	}
}

// TestResizeReplaceInstance: the equivalent replacement of stop/start mode
// is a stop and start of the same type (new hardware, same ID), which
// clears a system impairment.
func TestResizeReplaceInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 2 })
		ids := fleet(t, sim, 1)
		sim.Impair(ids[0])
		sim.ResetCounters()
		z := lifecycle.NewResize(sim.EC2(), "m5.xlarge", lifecycle.WithOptions(fast))
		id, err := z.ReplaceInstance(context.Background(), ids[0])
		if err != nil || id != ids[0] {
			t.Fatalf("%s %v", id, err)
		}
		iv, _ := sim.Instance(id)
		if iv.InstanceType != "m5.large" || !iv.Healthy {
			t.Fatalf("%+v", iv)
		}
		if c := sim.Calls(); c["ec2:ModifyInstanceAttribute"] != 0 || c["ec2:StopInstances"] != 1 || c["ec2:DescribeInstanceTypes"] != 0 {
			t.Fatalf("calls %v", c)
		}
	})
}
