package cloudsim

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// BenchmarkDescribeInstancesPage measures one 1000-instance page out of a
// 2000-instance fleet, filtered by tag.
func BenchmarkDescribeInstancesPage(b *testing.B) {
	s := New(noThrottle)
	c := s.EC2()
	launch(b, c, runInput(1000, withTags("app", "web")))
	launch(b, c, runInput(1000, withTags("app", "db")))
	in := &ec2.DescribeInstancesInput{MaxResults: aws.Int32(1000), Filters: []types.Filter{f("tag:app", "w*")}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.DescribeInstances(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLaunchAndTerminate measures the simulator's cost per instance
// life: launch, transitions with a capacity tracker, terminate.
func BenchmarkLaunchAndTerminate(b *testing.B) {
	s := New(noThrottle, func(o *Options) { o.Latency.TerminatedVisible = -1 })
	s.TrackCapacity("all", nil)
	c := s.EC2()
	b.ReportAllocs()
	for b.Loop() {
		ids := launch(b, c, runInput(10))
		if _, err := c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: ids}); err != nil {
			b.Fatal(err)
		}
	}
}
