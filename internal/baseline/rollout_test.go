package baseline

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2ops/ec2ops/internal/cloudsim"
)

var _ EC2 = (*cloudsim.EC2)(nil)

func launchFleet(t *testing.T, c *cloudsim.EC2, n int) []string {
	t.Helper()
	var ids []string
	for len(ids) < n {
		m := min(n-len(ids), 500)
		out, err := c.RunInstances(context.Background(), &ec2.RunInstancesInput{
			ImageId: aws.String("ami-00000000000000001"), MinCount: aws.Int32(int32(m)), MaxCount: aws.Int32(int32(m)),
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range out.Instances {
			ids = append(ids, aws.ToString(in.InstanceId))
		}
	}
	return ids
}

func TestRolloutSmallFleet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 7 })
		c := sim.EC2()
		ids := launchFleet(t, c, 20)
		// Let the RunInstances bucket (5/2) refill: each batch of 5 then fits
		// its burst, and the SDK retryer's unseeded jitter cannot make the
		// test flaky.
		time.Sleep(time.Minute)
		sim.ResetCounters()
		res := Rollout(t.Context(), c, ids, 5, "ami-00000000000000002")
		if res.Replaced != 20 || len(res.Failed) != 0 {
			t.Fatalf("replaced %d, failed %v", res.Replaced, res.Failed)
		}
		calls := sim.Calls()
		// Throttled launches are retried by the standard retryer; each
		// replacement launched exactly once.
		if len(res.Launched) != 20 || calls["ec2:RunInstances"] < 20 || calls["ec2:TerminateInstances"] != 20 {
			t.Fatalf("launched %d, calls %v", len(res.Launched), calls)
		}
		// One waiter per instance: at least one status call per instance.
		if calls["ec2:DescribeInstanceStatus"] < 20 {
			t.Fatalf("status calls %d", calls["ec2:DescribeInstanceStatus"])
		}
		t.Logf("baseline 20 instances k=5: makespan %v, calls %v", res.Makespan, calls)
	})
}

func TestRetrierGivesUpAfterThreeAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Faults.ThrottleRate = 1 })
		c := sim.EC2()
		_, err := Do(t.Context(), NewRetrier(), func(ctx context.Context) (*ec2.DescribeInstancesOutput, error) {
			return c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
		})
		if err == nil {
			t.Fatal("always-throttled call succeeded")
		}
		if got := sim.Calls()["ec2:DescribeInstances"]; got != 3 {
			t.Fatalf("%d attempts, want the standard retryer's 3", got)
		}
	})
}
