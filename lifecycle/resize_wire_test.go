package lifecycle_test

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/mototest"
	"github.com/ec2ops/ec2ops/lifecycle"
)

// TestWireResize drives real SDK clients over HTTP against moto_server:
// DescribeInstanceTypes, DescribeInstanceTypeOfferings (availability-zone),
// StopInstances, ModifyInstanceAttribute InstanceType and StartInstances
// (t2.micro to t2.medium), and refusals of a type that requires ENA and of
// an arm64 type. Type offerings per zone are checked on the simulator and
// with mocks (moto offers its catalogue in every zone).
func TestWireResize(t *testing.T) {
	cfg := mototest.Config(t)
	c := ec2.NewFromConfig(cfg)
	ctx := t.Context()
	// An HVM x86_64 image with ENA: moto gives instances of images it does
	// not know paravirtual virtualization.
	img, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("resize-wire"), Architecture: types.ArchitectureValuesX8664,
		VirtualizationType: aws.String("hvm"), EnaSupport: aws.Bool(true), RootDeviceName: aws.String("/dev/xvda")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: img.ImageId, InstanceType: types.InstanceTypeT2Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		Placement: &types.Placement{AvailabilityZone: aws.String("us-east-1a")},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	opts := lifecycle.WithOptions(func(o *lifecycle.Options) {
		o.PollInterval = 50 * time.Millisecond
		o.DisablePacing = true
	})
	// moto does not report EnaSupport on instances (not even after
	// ModifyInstanceAttribute EnaSupport): the ENA rule refuses Nitro
	// types there; Xen types without ENA (t2) go through.
	refused, err := lifecycle.NewResize(c, "m5.xlarge", opts).Check(ctx, []string{id})
	var ref *lifecycle.ResizeRefusal
	if err != nil || !errors.As(refused[id], &ref) || ref.Check != "ena" {
		t.Fatalf("check before ENA: %v %v", refused, err)
	}
	z := lifecycle.NewResize(c, "t2.medium", opts)
	refused, err = z.Check(ctx, []string{id})
	if err != nil || len(refused) != 0 {
		t.Fatalf("check: %v %v", refused, err)
	}
	r, err := z.Replace(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	in := d.Reservations[0].Instances[0]
	if r.NewID != id || in.InstanceType != types.InstanceTypeT2Medium || in.State.Name != types.InstanceStateNameRunning {
		t.Fatalf("after the resize: %s %s %s", r.NewID, in.InstanceType, in.State.Name)
	}
	_, err = lifecycle.NewResize(c, "m6g.large", opts).Replace(ctx, id)
	if !errors.As(err, &ref) || ref.Check != "architecture" {
		t.Fatalf("arm64: %v", err)
	}
	t.Logf("refused: %v", err)
}
