package lifecycle_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/lifecycle"
)

// bigFleet launches n tagged instances in calls of 500 (throttled calls
// are retried after a second) and waits until they are healthy.
func bigFleet(t testing.TB, sim *cloudsim.Sim, n int) {
	subnets := sim.Subnets()
	azs := slices.Sorted(func(yield func(string) bool) {
		for az := range subnets {
			if !yield(az) {
				return
			}
		}
	})
	for i := 0; i < n; i += 500 {
		k := min(500, n-i)
		in := &ec2.RunInstancesInput{ImageId: aws.String(oldAMI), InstanceType: types.InstanceTypeM5Large,
			MinCount: aws.Int32(int32(k)), MaxCount: aws.Int32(int32(k)), SubnetId: aws.String(subnets[azs[(i/500)%len(azs)]]),
			ClientToken: aws.String(fmt.Sprint("big-", i)),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance,
				Tags: []types.Tag{{Key: aws.String("app"), Value: aws.String("web")}}}}}
		for {
			_, err := sim.EC2().RunInstances(context.Background(), in)
			if err == nil {
				break
			}
			if !strings.Contains(err.Error(), "RequestLimitExceeded") {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
		}
	}
	for sim.Healthy(nil) < n {
		time.Sleep(time.Minute)
	}
}

// TestFigures measures a rolling replacement of N instances with K in
// flight on the simulator (published token buckets, default latencies):
// simulated makespan over the DESIGN.md lower bound
// T >= max(ceil(N/K)*L, (N-1000)/2 s + L), with L the shortest per-slot
// latency (pending->running 15 s + status checks 60 s), and API calls per
// replaced instance by operation. Run with -v to see the figures.
func TestFigures(t *testing.T) {
	for _, c := range []struct{ n, k int }{{1000, 100}, {10000, 1000}} {
		t.Run(fmt.Sprintf("N=%d,K=%d", c.n, c.k), func(t *testing.T) {
			if c.n > 1000 && testing.Short() {
				t.Skip("N=10,000 skipped under -short")
			}
			synctest.Test(t, func(t *testing.T) { figures(t, c.n, c.k) })
		})
	}
}

func figures(t *testing.T, n, k int) {
	sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 3 })
	bigFleet(t, sim, n)
	sim.TrackCapacity("web", nil)
	sim.ResetCounters()
	s := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{ImageID: newAMI}, func(o *lifecycle.Options) { o.RequestShare = 1 })
	ro := lifecycle.NewRollout(s, lifecycle.Selector{Tags: map[string]string{"app": "web"}}, func(o *lifecycle.RolloutOptions) {
		o.MaxSurge = fmt.Sprint(k)
	})
	res, err := ro.Apply(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Replaced) != n {
		t.Fatalf("replaced %d of %d", len(res.Replaced), n)
	}
	if m := sim.MinHealthy("web"); m < n {
		t.Fatalf("healthy capacity dropped to %d < %d", m, n)
	}
	L := 75 * time.Second
	bound := max(time.Duration(math.Ceil(float64(n)/float64(k)))*L, time.Duration(max(0, n-1000))*time.Second/2+L)
	t.Logf("N=%d K=%d: makespan %s, lower bound %s, ratio %.2f; RunInstances request bucket alone (5 then 2/s, one instance a call): %s",
		n, k, res.Elapsed.Round(time.Second), bound, res.Elapsed.Seconds()/bound.Seconds(), (time.Duration(n-5)*time.Second/2 + L))
	calls := sim.Calls()
	var parts []string
	for _, op := range slices.Sorted(func(yield func(string) bool) {
		for op := range calls {
			if !yield(op) {
				return
			}
		}
	}) {
		parts = append(parts, fmt.Sprintf("%s %.3f", strings.TrimPrefix(op, "ec2:"), float64(calls[op])/float64(n)))
	}
	t.Logf("API calls per replaced instance: %s; throttled: %v", strings.Join(parts, ", "), sim.Throttled())
}
