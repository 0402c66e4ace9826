package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/awserr"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
)

// Images the fleets launch from and roll to.
const (
	OldAMI = "ami-0a000000000000001"
	NewAMI = "ami-0b000000000000002"
)

// launchFleet launches n m5.large instances from image with tags, in calls
// of at most 500 spread over the AZs, retrying throttled, failed and
// capacity-limited calls (set-up is not measured), and returns their IDs.
// Call i goes to AZ number az0+i (mod the AZs).
func launchFleet(ctx context.Context, sim *cloudsim.Sim, n int, image string, tags map[string]string, prefix string, az0 int) ([]string, error) {
	subnets := sim.Subnets()
	azs := slices.Sorted(maps.Keys(subnets))
	var tt []types.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		tt = append(tt, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	var ids []string
	for i := 0; len(ids) < n; i++ {
		k := min(500, n-len(ids))
		in := &ec2.RunInstancesInput{ImageId: aws.String(image), InstanceType: types.InstanceTypeM5Large,
			MinCount: aws.Int32(int32(k)), MaxCount: aws.Int32(int32(k)), SubnetId: aws.String(subnets[azs[(az0+i)%len(azs)]]),
			ClientToken:       aws.String(fmt.Sprintf("%s-%d", prefix, i)),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tt}}}
		for {
			out, err := sim.EC2().RunInstances(ctx, in)
			if err == nil {
				for _, x := range out.Instances {
					ids = append(ids, aws.ToString(x.InstanceId))
				}
				break
			}
			switch awserr.Classify(err) {
			case awserr.Throttle, awserr.Transient, awserr.Capacity:
				time.Sleep(time.Duration(k) * time.Second / 2)
			default:
				return nil, err
			}
		}
	}
	return ids, nil
}

// settle waits until every instance of ids is healthy, then long enough for
// every token bucket to be full again (the RunInstances resource bucket
// refills 1,000 tokens in 500 s), so that each measured run starts from
// the state the bound assumes.
func settle(sim *cloudsim.Sim, ids []string) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for sim.Healthy(func(v cloudsim.InstanceView) bool { return want[v.ID] }) < len(ids) {
		time.Sleep(time.Minute)
	}
	time.Sleep(10 * time.Minute)
}

// slotTimes records, for every instance launched after the call, its launch
// and the moment it turned healthy (running, both status checks ok): the
// per-slot service time the simulator drew.
type slotTimes struct {
	launched map[string]time.Time
	healthy  map[string]time.Duration
}

func recordSlots(sim *cloudsim.Sim) *slotTimes {
	st := &slotTimes{launched: map[string]time.Time{}, healthy: map[string]time.Duration{}}
	sim.OnChange(func(c cloudsim.Change, v *cloudsim.View) {
		switch {
		case c.Kind == cloudsim.ChangeState && c.From == "":
			st.launched[c.InstanceID] = c.Time
		case c.Kind == cloudsim.ChangeStatus && c.To == "ok":
			if t, ok := st.launched[c.InstanceID]; ok {
				if _, seen := st.healthy[c.InstanceID]; !seen {
					st.healthy[c.InstanceID] = c.Time.Sub(t)
				}
			}
		}
	})
	return st
}

// lower bound of a sliding window of k slots over the service times svc
// with n launches through the RunInstances resource bucket (1,000 tokens,
// 2 a second, full at the start).
func windowBound(svc []time.Duration, n, k int) (time.Duration, string) {
	if len(svc) == 0 {
		return 0, "no replacement"
	}
	var sum, longest time.Duration
	shortest := svc[0]
	for _, d := range svc {
		sum += d
		longest = max(longest, d)
		shortest = min(shortest, d)
	}
	work := sum / time.Duration(k)
	bucket := time.Duration(max(0, n-1000))*time.Second/2 + shortest
	b := max(work, longest, bucket)
	return b, fmt.Sprintf("Σsvc/K = %.1f s, max svc = %.1f s, (N-1000)/2 s + min svc = %.1f s", work.Seconds(), longest.Seconds(), bucket.Seconds())
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
