package patching_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2ops/ec2ops/internal/awserr"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/patching"
)

// TestFigures5000 patches 5,000 simulated instances with
// AWS-RunPatchBaseline (Install, RebootIfNeeded) at MaxConcurrency 10%,
// with the published token buckets on, and logs the simulated makespan
// against its lower bound and the API calls spent. Run with -v to see the
// figures:
//
//	go test -run TestFigures5000 -v ./patching/
func TestFigures5000(t *testing.T) {
	if testing.Short() {
		t.Skip("figures: skipped in -short mode")
	}
	synctest.Test(t, func(t *testing.T) {
		const n = 5000
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 11 })
		var ids []string
		for len(ids) < n {
			out, err := sim.EC2().RunInstances(context.Background(), &ec2.RunInstancesInput{
				ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(500), MaxCount: aws.Int32(500)})
			if awserr.IsThrottle(err) {
				time.Sleep(time.Minute)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range out.Instances {
				ids = append(ids, aws.ToString(in.InstanceId))
			}
		}
		time.Sleep(10 * time.Minute)
		sim.ResetCounters()
		start := time.Now()
		res, err := patching.NewRunner(sim.SSM()).Run(context.Background(), patching.Command{
			DocumentName: patching.DocRunPatchBaseline, InstanceIDs: ids, MaxConcurrency: "10%", MaxErrors: "100%",
			Parameters: map[string][]string{"Operation": {"Install"}, "RebootOption": {"RebootIfNeeded"}},
		})
		var cerr *patching.CommandError
		if err != nil && !errors.As(err, &cerr) {
			t.Fatal(err)
		}
		took := time.Since(start)
		// Lower bound: 500 invocations at a time, each as long as it ran
		// (delivery to end, reboot included): max(sum(d)/K, max d).
		var sum, longest time.Duration
		peak := 0
		for _, id := range res.CommandIDs {
			v, _ := sim.Command(id)
			peak += v.PeakInFlight
			for _, iv := range v.Invocations {
				d := iv.End.Sub(iv.Start)
				sum += d
				longest = max(longest, d)
			}
		}
		const k = n / 10
		bound := max(sum/k, longest)
		calls := sim.Calls()
		if len(res.Invocations) != n {
			t.Fatalf("%d invocations collected, want %d", len(res.Invocations), n)
		}
		if peak > k {
			t.Fatalf("%d invocations in flight at once, over MaxConcurrency 10%% (%d)", peak, k)
		}
		t.Logf("5000 instances, MaxConcurrency 10%% (%d in flight at most, peak %d): makespan %v, bound %v, ratio %.2f",
			k, peak, took.Round(time.Second), bound.Round(time.Second), float64(took)/float64(bound))
		t.Logf("SendCommand %d, ListCommands %d, ListCommandInvocations %d, DescribeInstanceInformation %d, GetCommandInvocation %d, throttled %v",
			calls["ssm:SendCommand"], calls["ssm:ListCommands"], calls["ssm:ListCommandInvocations"],
			calls["ssm:DescribeInstanceInformation"], calls["ssm:GetCommandInvocation"], sim.Throttled())
		t.Logf("failed %d (seeded patch failures: none)", len(res.Failed()))
	})
}
