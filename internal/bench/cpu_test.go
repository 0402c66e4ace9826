package bench

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/internal/poll"
	"github.com/ec2ops/ec2ops/lifecycle"
)

// CPU paths measured elsewhere (run them with go test -bench):
//   - spec capture and drift hash: lifecycle BenchmarkCaptureHash
//   - planning a 10,000-instance rollout: lifecycle BenchmarkPlan10000
//   - the retention planner: ami BenchmarkRetentionPlan, BenchmarkRetentionDecide
//   - the Balancer: ami BenchmarkBalance
// This file adds the poller's fan-out and the 100,000-instance inventory.

// BenchmarkPollerFanOut is the CPU cost of one poller serving 10,000
// waiters: registration, 100 Describe chunks per tick, and the fan-out of
// the observations to every waiter (each done at its first observation).
func BenchmarkPollerFanOut(b *testing.B) {
	const n = 10000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("i-%017x", i)
	}
	fetch := func(_ context.Context, chunk []string) (map[string]int, error) {
		m := make(map[string]int, len(chunk))
		for _, id := range chunk {
			m[id] = 1
		}
		return m, nil
	}
	b.ReportAllocs()
	for b.Loop() {
		p := poll.New(fetch, func(o *poll.Options) { o.Interval, o.MaxInterval = time.Microsecond, time.Microsecond })
		_, bad := p.WaitAll(context.Background(), ids, func(v int) (bool, error) { return v == 1, nil })
		if len(bad) != 0 {
			b.Fatal(bad)
		}
	}
}

// inventory is a read-only EC2 inventory of n instances for planning: the
// simulator's VPC (10.0.0.0/16) cannot hold 100,000 instances, so 500 real
// cloudsim instances are described once and replicated with fresh IDs.
// DescribeInstances pages through them (1,000 a page) and answers the
// rollout's lookup of earlier replacements (ec2ops tag filters) with
// nothing; the other capture calls find no volumes and no addresses.
type inventory struct {
	lifecycle.EC2API // not called by Plan
	all              []types.Instance
}

func newInventory(b *testing.B, n int) *inventory {
	sim := cloudsim.New(func(o *cloudsim.Options) { o.DisableThrottling = true })
	out, err := sim.EC2().RunInstances(context.Background(), &ec2.RunInstancesInput{ImageId: aws.String(OldAMI),
		InstanceType: types.InstanceTypeM5Large, MinCount: aws.Int32(500), MaxCount: aws.Int32(500),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance,
			Tags: []types.Tag{{Key: aws.String("app"), Value: aws.String("web")}}}}})
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(0)
	d, err := sim.EC2().DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{aws.ToString(out.Instances[0].InstanceId)}})
	if err != nil {
		b.Fatal(err)
	}
	proto := d.Reservations[0].Instances[0]
	inv := &inventory{}
	for i := range n {
		x := proto
		x.InstanceId = aws.String(fmt.Sprintf("i-%017x", i+1))
		x.State = &types.InstanceState{Name: types.InstanceStateNameRunning, Code: aws.Int32(16)}
		inv.all = append(inv.all, x)
	}
	return inv
}

func (v *inventory) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	for _, f := range in.Filters {
		if name := aws.ToString(f.Name); len(name) > 10 && name[:10] == "tag:ec2ops" || name == "tag-key" {
			return &ec2.DescribeInstancesOutput{}, nil
		}
	}
	at := 0
	if t := aws.ToString(in.NextToken); t != "" {
		fmt.Sscan(t, &at)
	}
	page := int(aws.ToInt32(in.MaxResults))
	if page <= 0 {
		page = 1000
	}
	end := min(len(v.all), at+page)
	out := &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: v.all[at:end]}}}
	if end < len(v.all) {
		out.NextToken = aws.String(fmt.Sprint(end))
	}
	return out, nil
}

func (v *inventory) DescribeVolumes(context.Context, *ec2.DescribeVolumesInput, ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error) {
	return &ec2.DescribeVolumesOutput{}, nil
}

func (v *inventory) DescribeAddresses(context.Context, *ec2.DescribeAddressesInput, ...func(*ec2.Options)) (*ec2.DescribeAddressesOutput, error) {
	return &ec2.DescribeAddressesOutput{}, nil
}

func (v *inventory) DescribeInstanceAttribute(context.Context, *ec2.DescribeInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error) {
	return &ec2.DescribeInstanceAttributeOutput{}, nil
}

// BenchmarkPlan100000 plans a rollout of a 100,000-instance inventory
// (describe 100 pages, capture, tag lookup, drift, order, batches) and
// reports, besides ns/op and allocs/op, the bytes allocated per plan
// (alloc-MB/op) and the live heap right after a plan (live-MB: simulator
// included: the 100,000 described instances). BENCHMARKS.md states the figure.
func BenchmarkPlan100000(b *testing.B) {
	const n = 100000
	inv := newInventory(b, n)
	s := lifecycle.NewSurge(inv, lifecycle.Target{ImageID: NewAMI}, func(o *lifecycle.Options) { o.DisablePacing = true })
	ro := lifecycle.NewRollout(s, lifecycle.Selector{Tags: map[string]string{"app": "web"}}, func(o *lifecycle.RolloutOptions) { o.MaxSurge = "10%" })
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var live uint64
	for b.Loop() {
		p, err := ro.Plan(context.Background())
		if err != nil || len(p.Drifted) != n {
			b.Fatal(err, len(p.Drifted))
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		live = max(live, m.HeapInuse)
		runtime.KeepAlive(p)
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/1e6, "alloc-MB/op")
	b.ReportMetric(float64(live)/1e6, "live-MB")
	b.ReportMetric(float64(before.HeapInuse)/1e6, "inventory-MB")
}
