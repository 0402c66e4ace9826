package lifecycle

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/cloudsim"
)

// BenchmarkCaptureHash is the CPU cost of turning one described instance
// into a Spec and computing its drift hash and the target's.
func BenchmarkCaptureHash(b *testing.B) {
	in := types.Instance{
		InstanceId: aws.String("i-0123456789abcdef0"), ImageId: aws.String("ami-0123456789abcdef0"), InstanceType: types.InstanceTypeM5Large,
		SubnetId: aws.String("subnet-0123"), State: &types.InstanceState{Name: types.InstanceStateNameRunning},
		Placement:      &types.Placement{AvailabilityZone: aws.String("us-east-1a")},
		SecurityGroups: []types.GroupIdentifier{{GroupId: aws.String("sg-1")}},
		RootDeviceName: aws.String("/dev/xvda"), RootDeviceType: types.DeviceTypeEbs,
		BlockDeviceMappings: []types.InstanceBlockDeviceMapping{
			{DeviceName: aws.String("/dev/xvda"), Ebs: &types.EbsInstanceBlockDevice{VolumeId: aws.String("vol-1"), DeleteOnTermination: aws.Bool(true)}},
			{DeviceName: aws.String("/dev/sdf"), Ebs: &types.EbsInstanceBlockDevice{VolumeId: aws.String("vol-2")}}},
		MetadataOptions: &types.InstanceMetadataOptionsResponse{HttpTokens: types.HttpTokensStateRequired},
		Tags:            []types.Tag{{Key: aws.String("app"), Value: aws.String("web")}, {Key: aws.String("Name"), Value: aws.String("web-1")}},
	}
	t := Target{ImageID: "ami-0fedcba9876543210"}
	b.ReportAllocs()
	for b.Loop() {
		s := specFromInstance(in)
		s.UserData, s.userDataKnown = UserData{b64: "IyEvYmluL3NoCmVjaG8gaGkK"}, true
		w := desired(s, t, t.ImageID, false, false)
		if s.Hash() == w.Hash() {
			b.Fatal("not drifted")
		}
	}
}

// BenchmarkPlan10000 is the CPU cost (simulator included) of planning a
// rollout of 10,000 instances: describe, capture, tag lookup, drift,
// ordering and batches.
func BenchmarkPlan10000(b *testing.B) {
	sim := cloudsim.New(func(o *cloudsim.Options) { o.DisableThrottling = true })
	for i := range 20 {
		_, err := sim.EC2().RunInstances(context.Background(), &ec2.RunInstancesInput{ImageId: aws.String("ami-0123456789abcdef0"),
			MinCount: aws.Int32(500), MaxCount: aws.Int32(500), ClientToken: aws.String(fmt.Sprint("b", i)),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance,
				Tags: []types.Tag{{Key: aws.String("app"), Value: aws.String("web")}}}}})
		if err != nil {
			b.Fatal(err)
		}
	}
	s := NewSurge(sim.EC2(), Target{ImageID: "ami-0fedcba9876543210"}, func(o *Options) { o.DisablePacing = true })
	ro := NewRollout(s, Selector{Tags: map[string]string{"app": "web"}}, func(o *RolloutOptions) { o.MaxSurge = "10%" })
	b.ReportAllocs()
	for b.Loop() {
		p, err := ro.Plan(context.Background())
		if err != nil || len(p.Drifted) != 10000 {
			b.Fatal(err, len(p.Drifted))
		}
	}
}

func TestClientToken(t *testing.T) {
	a, b := clientToken("i-1", "h", 0), clientToken("i-1", "h", 1)
	if a == b || len(a) > maxClientToken || a != clientToken("i-1", "h", 0) || a == clientToken("i-2", "h", 0) {
		t.Fatalf("tokens %q %q", a, b)
	}
}
