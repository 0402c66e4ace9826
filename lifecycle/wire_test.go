package lifecycle_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/ec2ops/ec2ops/internal/mototest"
	"github.com/ec2ops/ec2ops/lifecycle"
)

// TestWireCaptureSurgeDrift drives real SDK clients over HTTP against
// moto_server: capture (volumes, Elastic IP, user data), drift, a surge
// replacement (tags, IMDSv2, Elastic IP moved), and no drift afterwards.
func TestWireCaptureSurgeDrift(t *testing.T) {
	cfg := mototest.Config(t)
	c := ec2.NewFromConfig(cfg)
	ctx := t.Context()
	const img, img2 = "ami-12c6146b", "ami-1e749f67"
	out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(img), InstanceType: types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), KeyName: aws.String("ops"),
		UserData: aws.String("IyEvYmluL3NoCmVjaG8gaGkK"),
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdf"),
			Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(20), VolumeType: types.VolumeTypeGp3}}},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance,
			Tags: []types.Tag{{Key: aws.String("app"), Value: aws.String("wire")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	old := aws.ToString(out.Instances[0].InstanceId)
	alloc, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: aws.String(old)}); err != nil {
		t.Fatal(err)
	}
	opts := func(o *lifecycle.Options) {
		o.PollInterval = 50 * time.Millisecond
		o.DisablePacing = true
		o.ELB = elb.NewFromConfig(cfg)
	}
	spec, err := lifecycle.NewCapturer(c, opts).Capture(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if spec.ImageID != img || spec.KeyName != "ops" || spec.Tags["app"] != "wire" || spec.UserData.IsZero() ||
		spec.ElasticIP == nil || spec.ElasticIP.AllocationID != aws.ToString(alloc.AllocationId) {
		t.Fatalf("capture: %+v", spec)
	}
	// The t3.micro's credit option comes over the wire
	// (DescribeInstanceCreditSpecifications).
	if cs := spec.CreditSpecification; cs != "standard" && cs != "unlimited" {
		t.Fatalf("credit option %q", cs)
	}
	if raw, _ := spec.UserData.Raw(); string(raw) != "#!/bin/sh\necho hi\n" {
		t.Fatalf("user data %q", raw)
	}
	s := lifecycle.NewSurge(c, lifecycle.Target{ImageID: img2}, opts)
	ro := lifecycle.NewRollout(s, lifecycle.Selector{Tags: map[string]string{"app": "wire"}})
	plan, err := ro.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Drifted) != 1 || plan.Drifted[0].InstanceID != old {
		t.Fatalf("plan: %+v", plan)
	}
	r, err := s.Replace(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{r.NewID}})
	if err != nil {
		t.Fatal(err)
	}
	in := d.Reservations[0].Instances[0]
	tags := map[string]string{}
	for _, tg := range in.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if aws.ToString(in.ImageId) != img2 || tags[lifecycle.TagReplaces] != old || tags["app"] != "wire" || tags[lifecycle.TagSpec] == "" {
		t.Fatalf("replacement: image %s tags %v", aws.ToString(in.ImageId), tags)
	}
	if in.MetadataOptions == nil || in.MetadataOptions.HttpTokens != types.HttpTokensStateRequired {
		t.Fatalf("replacement metadata options: %+v", in.MetadataOptions)
	}
	a, err := c.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: []string{aws.ToString(alloc.AllocationId)}})
	if err != nil || aws.ToString(a.Addresses[0].InstanceId) != r.NewID {
		t.Fatalf("Elastic IP: %v %v", err, a)
	}
	o, _ := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{old}})
	if st := o.Reservations[0].Instances[0].State.Name; st != types.InstanceStateNameTerminated && st != types.InstanceStateNameShuttingDown {
		t.Fatalf("old instance %s", st)
	}
	again, err := lifecycle.NewRollout(s, lifecycle.Selector{Tags: map[string]string{"app": "wire"}}).Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Drifted) != 0 {
		t.Fatalf("after the replacement: drifted %+v", again.Drifted)
	}
}
