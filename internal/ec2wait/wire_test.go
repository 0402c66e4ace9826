package ec2wait_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/ec2wait"
	"github.com/ec2ops/ec2ops/internal/mototest"
	"github.com/ec2ops/ec2ops/internal/poll"
)

// TestWireRunWaitDescribeTerminate drives real SDK clients over HTTP against
// moto_server: launch, wait through the batched poller, filter, terminate.
func TestWireRunWaitDescribeTerminate(t *testing.T) {
	cfg := mototest.Config(t)
	c := ec2.NewFromConfig(cfg)
	ctx := t.Context()

	out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId:      aws.String("ami-12c6146b"),
		InstanceType: types.InstanceTypeT3Micro,
		MinCount:     aws.Int32(3),
		MaxCount:     aws.Int32(3),
		ClientToken:  aws.String("ec2ops-wire-1"),
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeInstance,
			Tags:         []types.Tag{{Key: aws.String("ec2ops:fleet"), Value: aws.String("wire")}},
		}},
	})
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	var ids []string
	for _, in := range out.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	if len(ids) != 3 {
		t.Fatalf("launched %d instances, want 3", len(ids))
	}

	fast := func(o *poll.Options) { o.Interval = 50 * time.Millisecond; o.Jitter = -1 }
	ip := ec2wait.NewInstancePoller(c, nil, fast)
	if _, errs := ip.WaitAll(ctx, ids, ec2wait.Running); len(errs) != 0 {
		t.Fatalf("wait running: %v", errs)
	}
	sp := ec2wait.NewStatusPoller(c, nil, fast)
	if _, errs := sp.WaitAll(ctx, ids, ec2wait.Healthy); len(errs) != 0 {
		t.Fatalf("wait healthy: %v", errs)
	}
	if st := sp.Stats(); st.Calls != 1 {
		t.Errorf("status poll of 3 instances made %d calls, want 1", st.Calls)
	}

	// An unrelated instance that the tag filter must not return.
	if _, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
	}); err != nil {
		t.Fatal(err)
	}
	desc, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:ec2ops:fleet"), Values: []string{"wire"}},
		{Name: aws.String("instance-state-name"), Values: []string{"running"}},
	}})
	if err != nil {
		t.Fatalf("DescribeInstances: %v", err)
	}
	got := map[string]bool{}
	for _, r := range desc.Reservations {
		for _, in := range r.Instances {
			got[aws.ToString(in.InstanceId)] = true
		}
	}
	if len(got) != 3 {
		t.Fatalf("tag filter returned %d instances, want the 3 tagged ones", len(got))
	}
	for _, id := range ids {
		if !got[id] {
			t.Fatalf("tag filter missed %s", id)
		}
	}

	term, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
	if err != nil {
		t.Fatalf("TerminateInstances: %v", err)
	}
	if len(term.TerminatingInstances) != 3 {
		t.Fatalf("terminating %d, want 3", len(term.TerminatingInstances))
	}
	if _, errs := ip.WaitAll(ctx, ids, ec2wait.Terminated); len(errs) != 0 {
		t.Fatalf("wait terminated: %v", errs)
	}
}
