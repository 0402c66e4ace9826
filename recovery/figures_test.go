package recovery_test

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
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/awserr"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/recovery"
)

// launchPaced launches n m5.large instances within the published
// RunInstances buckets (batches of 100, waiting when throttled).
func launchPaced(t testing.TB, sim *cloudsim.Sim, n int) {
	t.Helper()
	for left := n; left > 0; {
		k := int32(min(left, 100))
		_, err := sim.EC2().RunInstances(context.Background(), &ec2.RunInstancesInput{
			ImageId: aws.String(testAMI), InstanceType: types.InstanceTypeM5Large, MinCount: aws.Int32(k), MaxCount: aws.Int32(k),
			ClientToken: aws.String(fmt.Sprintf("fleet-%d", left)),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance,
				Tags: []types.Tag{{Key: aws.String("Role"), Value: aws.String("web")}}}},
		})
		if awserr.IsThrottle(err) {
			time.Sleep(time.Duration(k) * time.Second / 2)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		left -= int(k)
	}
}

func callsLine(calls map[string]int) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(calls)) {
		fmt.Fprintf(&b, " %s=%d", k, calls[k])
	}
	return b.String()
}

// TestReconcileFigures reconciles the recovery alarms of 10,000 instances
// on the simulator with the published CloudWatch and EC2 buckets, and
// reports the simulated time against the bound N/3 s (PutMetricAlarm at 3
// a second), the calls by operation, and the calls of a second run on the
// unchanged fleet. Run it with -v to see the figures:
//
//	go test -run TestReconcileFigures -v ./recovery/
func TestReconcileFigures(t *testing.T) {
	const n = 10000
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 3 })
		launchPaced(t, sim, n)
		time.Sleep(5 * time.Minute)
		inst := recovery.NewInstaller(sim.EC2(), sim.CloudWatch(), func(o *recovery.AlarmOptions) { o.Region = "us-east-1" })
		ctx := context.Background()

		sim.ResetCounters()
		start := time.Now()
		plan, err := inst.Reconcile(ctx, webFleet)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		first := sim.Calls()
		puts := first["cloudwatch:PutMetricAlarm"]
		bound := time.Duration(float64(puts-3) / 3 * float64(time.Second)) // a burst of 3, then 3 a second
		if len(plan.Create) != n || puts-sim.Throttled()["cloudwatch:PutMetricAlarm"] != n || len(sim.Alarms()) != n {
			t.Fatalf("created %d alarms with %d calls", len(sim.Alarms()), puts)
		}
		ratio := took.Seconds() / bound.Seconds()
		t.Logf("first run: %d instances, %d alarms created in %s simulated (bound %s, ratio %.4f); throttled %v; calls:%s",
			n, len(plan.Create), took.Round(time.Second), bound.Round(time.Second), ratio, sim.Throttled(), callsLine(first))
		if ratio < 1 || ratio > 1.01 {
			t.Errorf("makespan/bound = %.4f, want within 1%% of the bound", ratio)
		}

		sim.ResetCounters()
		start = time.Now()
		plan2, err := inst.Reconcile(ctx, webFleet)
		if err != nil {
			t.Fatal(err)
		}
		second := sim.Calls()
		t.Logf("second run (unchanged fleet): %d calls in %s simulated, %d mutating, %d unchanged; throttled %v; calls:%s",
			sim.TotalCalls(), time.Since(start).Round(time.Second), plan2.Mutations(), plan2.Unchanged, sim.Throttled(), callsLine(second))
		if m := mutating(second); len(m) != 0 || plan2.Unchanged != n {
			t.Errorf("second run mutated: %v", m)
		}
		if u := inst.Policy().Uncovered(first); len(u) != 0 {
			t.Errorf("uncovered: %v", u)
		}
	})
}
