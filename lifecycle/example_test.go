package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/lifecycle"
)

// exampleScale compresses simulated time 10,000x: a 3-minute boot takes
// 18 ms of real time.
const exampleScale = 0.0001

// exampleFleet returns a simulator with n healthy web instances.
func exampleFleet(n int) (*cloudsim.Sim, []string) {
	sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 42; o.TimeScale = exampleScale })
	out, err := sim.EC2().RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0aaaaaaaaaaaaaaa1"), InstanceType: types.InstanceTypeM5Large,
		MinCount: aws.Int32(int32(n)), MaxCount: aws.Int32(int32(n)),
		KeyName:  aws.String("ops"),
		UserData: aws.String("IyEvYmluL3NoCmVjaG8gc2VjcmV0LXRva2VuCg=="),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance,
			Tags: []types.Tag{{Key: aws.String("app"), Value: aws.String("web")}}}},
	})
	if err != nil {
		panic(err)
	}
	var ids []string
	for _, in := range out.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	for sim.Healthy(nil) < n {
		time.Sleep(time.Millisecond)
	}
	return sim, ids
}

func exampleOptions(o *lifecycle.Options) { o.TimeScale = exampleScale; o.RequestShare = 1 }

func ExampleCapturer_Capture() {
	sim, ids := exampleFleet(1)
	spec, err := lifecycle.NewCapturer(sim.EC2(), exampleOptions).Capture(context.Background(), ids[0])
	if err != nil {
		panic(err)
	}
	fmt.Println("image:", spec.ImageID, "type:", spec.InstanceType, "key:", spec.KeyName)
	fmt.Println("tags:", spec.Tags)
	fmt.Println("user data:", spec.UserData) // never printed in clear
	fmt.Println("root volume:", spec.BlockDevices[0].VolumeType, spec.BlockDevices[0].SizeGiB, "GiB")
	fmt.Println("IMDS tokens:", spec.Metadata.HTTPTokens)
	fmt.Println("refusal:", spec.Refusal())
	// Output:
	// image: ami-0aaaaaaaaaaaaaaa1 type: m5.large key: ops
	// tags: map[app:web]
	// user data: [user data redacted, about 30 bytes]
	// root volume: gp3 8 GiB
	// IMDS tokens: optional
	// refusal: <nil>
}

func ExampleSurge_Replace() {
	sim, ids := exampleFleet(1)
	s := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{ImageID: "ami-0bbbbbbbbbbbbbbb2"}, exampleOptions)
	r, err := s.Replace(context.Background(), ids[0])
	if err != nil {
		panic(err)
	}
	for _, why := range r.Reasons {
		fmt.Println("drift:", why)
	}
	iv, _ := sim.Instance(r.NewID)
	old, _ := sim.Instance(r.OldID)
	fmt.Println("new:", iv.ImageID, iv.State, "replaces old:", iv.Tags[lifecycle.TagReplaces] == r.OldID)
	fmt.Println("old:", old.State == "shutting-down" || old.State == "terminated")
	// Output:
	// drift: image ami-0aaaaaaaaaaaaaaa1 -> ami-0bbbbbbbbbbbbbbb2
	// drift: metadata http-tokens optional -> required
	// new: ami-0bbbbbbbbbbbbbbb2 running replaces old: true
	// old: true
}

func ExampleRootVolume_Replace() {
	sim, ids := exampleFleet(1)
	v := lifecycle.NewRootVolume(sim.EC2(), lifecycle.Target{ImageID: "ami-0bbbbbbbbbbbbbbb2"}, exampleOptions)
	r, err := v.Replace(context.Background(), ids[0])
	if err != nil {
		panic(err)
	}
	iv, _ := sim.Instance(ids[0])
	fmt.Println("same instance:", r.NewID == r.OldID, "image:", iv.ImageID, "healthy:", iv.Healthy)
	// Output:
	// same instance: true image: ami-0bbbbbbbbbbbbbbb2 healthy: true
}

func ExampleRollout() {
	sim, _ := exampleFleet(9)
	s := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{ImageID: "ami-0bbbbbbbbbbbbbbb2"}, exampleOptions)
	ro := lifecycle.NewRollout(s, lifecycle.Selector{Tags: map[string]string{"app": "web"}}, func(o *lifecycle.RolloutOptions) {
		o.MaxSurge = "3"
		o.Canary = "1"
		o.BakeTime = 10 * time.Minute // scaled by Options.TimeScale
	})
	plan, err := ro.Plan(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Printf("fleet %d, floor %d, %d drifted, %d in flight, batches of %d then %d\n",
		plan.Fleet, plan.Floor, len(plan.Drifted), plan.InFlight, len(plan.Batches[0]), len(plan.Batches[1]))
	res, err := ro.Apply(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println("replaced:", len(res.Replaced))
	again, _ := ro.Plan(context.Background())
	fmt.Println("drifted after:", len(again.Drifted), "up to date:", len(again.UpToDate))
	// Output:
	// fleet 9, floor 9, 9 drifted, 3 in flight, batches of 1 then 3
	// replaced: 9
	// drifted after: 0 up to date: 9
}

func ExampleResize() {
	sim, ids := exampleFleet(1)
	z := lifecycle.NewResize(sim.EC2(), "m5.xlarge", lifecycle.WithOptions(exampleOptions))
	plan, err := z.Plan(context.Background(), ids[0])
	if err != nil {
		panic(err)
	}
	for _, s := range plan.Steps {
		fmt.Println("plan:", s.Action)
	}
	r, err := z.Replace(context.Background(), ids[0])
	if err != nil {
		panic(err)
	}
	iv, _ := sim.Instance(ids[0])
	fmt.Println("same instance:", r.NewID == r.OldID, "type:", iv.InstanceType, "healthy:", iv.Healthy)
	fmt.Println("drift:", r.Reasons)

	// An arm64 type for an x86_64 image is refused before any change.
	_, err = lifecycle.NewResize(sim.EC2(), "c6g.large", lifecycle.WithOptions(exampleOptions)).Replace(context.Background(), ids[0])
	var ref *lifecycle.ResizeRefusal
	fmt.Println("refused:", errors.As(err, &ref), ref.Check, errors.Is(err, ec2ops.ErrUnsupported))
	// Output:
	// plan: ec2:DescribeInstanceTypes
	// plan: ec2:DescribeInstanceTypeOfferings
	// plan: ec2:StopInstances
	// plan: ec2:DescribeInstances
	// plan: ec2:ModifyInstanceAttribute
	// plan: ec2:StartInstances
	// plan: ec2:DescribeInstanceStatus
	// same instance: true type: m5.xlarge healthy: true
	// drift: [instance type m5.large -> m5.xlarge]
	// refused: true architecture true
}
