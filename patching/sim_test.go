package patching_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/patching"
)

var (
	_ patching.CommandAPI = (*cloudsim.SSM)(nil)
	_ patching.SSMAPI     = (*cloudsim.SSM)(nil)
	_ patching.EC2API     = (*cloudsim.EC2)(nil)
)

// fleet launches n tagged instances spread over the AZs and waits until
// their agents are registered.
func fleet(t testing.TB, sim *cloudsim.Sim, n int) []string {
	t.Helper()
	ids, err := launchFleet(sim, n)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Minute)
	return ids
}

// launchFleet launches n instances tagged role=web round robin over the AZs.
func launchFleet(sim *cloudsim.Sim, n int) ([]string, error) {
	var ids []string
	subnets := sim.Subnets()
	azs := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	for i := 0; len(ids) < n; i++ {
		k := min(500, n-len(ids))
		out, err := sim.EC2().RunInstances(context.Background(), &ec2.RunInstancesInput{
			ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(int32(k)), MaxCount: aws.Int32(int32(k)),
			SubnetId: aws.String(subnets[azs[i%3]]),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance,
				Tags: []types.Tag{{Key: aws.String("role"), Value: aws.String("web")}}}},
		})
		if err != nil {
			return nil, err
		}
		for _, in := range out.Instances {
			ids = append(ids, aws.ToString(in.InstanceId))
		}
	}
	return ids, nil
}

func newSim(optFns ...func(*cloudsim.Options)) *cloudsim.Sim {
	return cloudsim.New(append([]func(*cloudsim.Options){func(o *cloudsim.Options) { o.Seed = 7 }}, optFns...)...)
}

func TestRunShellOnSim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(func(o *cloudsim.Options) { o.DisableThrottling = true })
		ids := fleet(t, sim, 120)
		sim.ScriptShell(func(id string, _ []string) (int, string, string) {
			if id == ids[7] {
				return 3, "", "disk full"
			}
			return 0, "ok", ""
		})
		rec := &ec2ops.Recorder{}
		r := patching.NewRunner(sim.SSM(), func(o *patching.RunnerOptions) { o.Observer = rec })
		_, err := r.Run(context.Background(), patching.Command{DocumentName: patching.DocRunShellScript, InstanceIDs: ids,
			Parameters: map[string][]string{"commands": {"yum -y update"}}, MaxErrors: "100%"})
		var cerr *patching.CommandError
		if !errors.As(err, &cerr) {
			t.Fatalf("RunShell: %v, want *CommandError", err)
		}
		if len(cerr.Failed) != 1 || cerr.Failed[ids[7]] != "Failed" {
			t.Fatalf("failed: %v", cerr.Failed)
		}
		inv := cerr.Result.Invocations[ids[7]]
		if inv.ResponseCode != 3 || inv.Stderr != "disk full" {
			t.Fatalf("failed invocation: %+v", inv)
		}
		if n := len(cerr.Result.CommandIDs); n != 3 {
			t.Fatalf("%d commands for 120 instances, want 3 (50 IDs at most)", n)
		}
		if got := sim.Calls()["ssm:SendCommand"]; got != 3 {
			t.Fatalf("%d SendCommand calls", got)
		}
		seen := 0
		for _, e := range rec.Events() {
			if e.Phase == "invocation" {
				seen++
			}
		}
		if seen != 120 {
			t.Fatalf("%d invocation events, want 120", seen)
		}
	})
}

func TestUnmanagedPreflight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(func(o *cloudsim.Options) { o.DisableThrottling = true; o.Faults.SSM.UnmanagedRate = 0.2 })
		ids := fleet(t, sim, 30)
		r := patching.NewRunner(sim.SSM())
		err := r.RunShell(context.Background(), ids, []string{"true"})
		var uerr *patching.UnmanagedError
		if !errors.As(err, &uerr) || len(uerr.Unmanaged) == 0 {
			t.Fatalf("got %v, want *UnmanagedError", err)
		}
		if n := sim.Calls()["ssm:SendCommand"]; n != 0 {
			t.Fatalf("%d SendCommand calls before refusing", n)
		}
		r = patching.NewRunner(sim.SSM(), func(o *patching.RunnerOptions) { o.SkipUnmanaged = true })
		res, err := r.Run(context.Background(), patching.Command{DocumentName: patching.DocRunShellScript,
			InstanceIDs: ids, Parameters: map[string][]string{"commands": {"true"}}})
		var cerr *patching.CommandError
		if !errors.As(err, &cerr) || len(res.Unmanaged) != len(uerr.Unmanaged) || len(res.Invocations)+len(res.Unmanaged) != 30 {
			t.Fatalf("skip unmanaged: err %v, %d unmanaged, %d invocations", err, len(res.Unmanaged), len(res.Invocations))
		}
		for id := range res.Unmanaged {
			if cerr.Failed[id] != "Unmanaged" {
				t.Fatalf("unmanaged %s reported as %q", id, cerr.Failed[id])
			}
		}
	})
}

func TestCancelOnContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(func(o *cloudsim.Options) {
			o.DisableThrottling = true
			o.Latency.SSM.Shell = cloudsim.Dist{Min: time.Hour, Max: time.Hour}
		})
		ids := fleet(t, sim, 10)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		res, err := patching.NewRunner(sim.SSM()).Run(ctx, patching.Command{DocumentName: patching.DocRunShellScript,
			InstanceIDs: ids, Parameters: map[string][]string{"commands": {"sleep 3600"}}, ExecutionTimeout: 2 * time.Hour})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want deadline exceeded", err)
		}
		if sim.Calls()["ssm:CancelCommand"] != 1 {
			t.Fatalf("CancelCommand calls: %d", sim.Calls()["ssm:CancelCommand"])
		}
		time.Sleep(time.Minute)
		v, _ := sim.Command(res.CommandIDs[0])
		if v.Status != "Cancelled" {
			t.Fatalf("command %s after cancel", v.Status)
		}
	})
}

func TestSensitiveNeverInErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(func(o *cloudsim.Options) { o.DisableThrottling = true })
		ids := fleet(t, sim, 2)
		rec := &ec2ops.Recorder{}
		r := patching.NewRunner(sim.SSM(), func(o *patching.RunnerOptions) { o.Observer = rec })
		// The simulator's InvalidParameters message names the parameter; the
		// value must not leak even when an error echoes it.
		_, err := r.Run(context.Background(), patching.Command{DocumentName: patching.DocRunShellScript, InstanceIDs: ids,
			Parameters: map[string][]string{"commands": {"true"}, "s3cr3t-value": {"s3cr3t-value"}}, Sensitive: []string{"s3cr3t-value"}})
		if err == nil || strings.Contains(err.Error(), "s3cr3t-value") {
			t.Fatalf("error leaks the sensitive value: %v", err)
		}
		for _, e := range rec.Events() {
			if strings.Contains(fmt.Sprint(e), "s3cr3t-value") {
				t.Fatalf("event leaks the sensitive value: %+v", e)
			}
		}
	})
}

func TestPatchWavesOnSim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim()
		ids := fleet(t, sim, 60)
		healthyFloor := 60
		sim.OnChange(func(c cloudsim.Change, v *cloudsim.View) {
			healthyFloor = min(healthyFloor, v.Healthy(func(cloudsim.InstanceView) bool { return true }))
		})
		perAZ := map[string]int{}
		for _, id := range ids {
			iv, _ := sim.Instance(id)
			perAZ[iv.AZ]++
		}
		sim.ResetCounters()
		p := patching.NewPatcher(sim.SSM(), sim.EC2())
		plan, err := p.Plan(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Waves[0]) != 1 {
			t.Fatalf("canary wave of %d", len(plan.Waves[0]))
		}
		for wi, w := range plan.Waves {
			in := map[string]int{}
			for _, id := range w {
				in[plan.AZ[id]]++
			}
			for az, k := range in {
				if k >= perAZ[az] {
					t.Fatalf("wave %d takes all %d instances of %s", wi+1, k, az)
				}
			}
		}
		rep, err := p.Apply(context.Background(), plan)
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if n := rep.Count("Patched"); n != 60 {
			t.Fatalf("%d patched", n)
		}
		for id, c := range rep.Compliance {
			if !c.Compliant() {
				t.Fatalf("%s not compliant: %+v", id, c)
			}
		}
		if up := p.Policy().Uncovered(sim.Calls()); len(up) != 0 {
			t.Fatalf("calls not in Policy(): %v", up)
		}
		t.Logf("60 instances, %d waves, healthy floor %d, calls %v", len(plan.Waves), healthyFloor, sim.Calls())
	})
}

func TestPatchStopsAtThreshold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(func(o *cloudsim.Options) { o.Faults.SSM.PatchFailureRate = 1 })
		ids := fleet(t, sim, 30)
		for _, id := range ids {
			sim.SetMissingPatches(id, 3)
		}
		p := patching.NewPatcher(sim.SSM(), sim.EC2())
		rep, err := p.Patch(context.Background(), ids)
		var perr *patching.PatchError
		if !errors.As(err, &perr) || !errors.Is(err, patching.ErrThreshold) {
			t.Fatalf("err %v, want *PatchError with ErrThreshold", err)
		}
		if len(perr.Failed) != 1 || len(perr.Pending) != 29 || len(rep.Waves) != 1 {
			t.Fatalf("failed %d, pending %d, waves %d; want the canary only", len(perr.Failed), len(perr.Pending), len(rep.Waves))
		}
		if n := sim.Calls()["ssm:SendCommand"]; n != 1 {
			t.Fatalf("%d SendCommand calls after a failed canary", n)
		}
	})
}

func TestPatchHealthGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(func(o *cloudsim.Options) { o.Faults.SSM.AgentLostAfterRebootRate = 1 })
		ids := fleet(t, sim, 6)
		for _, id := range ids {
			sim.SetMissingPatches(id, 2)
		}
		p := patching.NewPatcher(sim.SSM(), sim.EC2(), func(o *patching.PatchOptions) {
			o.HealthTimeout = 10 * time.Minute
			o.FailureThreshold = "100%"
		})
		_, err := p.Patch(context.Background(), ids)
		var perr *patching.PatchError
		if !errors.As(err, &perr) || len(perr.Failed) != 6 {
			t.Fatalf("err %v: want all 6 failed (agents lost after the patch reboot)", err)
		}
	})
}
