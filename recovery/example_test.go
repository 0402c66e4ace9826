package recovery_test

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/recovery"
)

// exampleFleet launches n instances of each type on sim, tagged Role=web.
func exampleFleet(sim *cloudsim.Sim, n int32, itypes ...types.InstanceType) []string {
	var ids []string
	for _, it := range itypes {
		out, err := sim.EC2().RunInstances(context.Background(), &ec2.RunInstancesInput{
			ImageId: aws.String("ami-0123456789abcdef0"), InstanceType: it, MinCount: aws.Int32(n), MaxCount: aws.Int32(n),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance,
				Tags: []types.Tag{{Key: aws.String("Role"), Value: aws.String("web")}}}},
		})
		if err != nil {
			panic(err)
		}
		for _, x := range out.Instances {
			ids = append(ids, aws.ToString(x.InstanceId))
		}
	}
	return ids
}

func ExampleDetector_Detect() {
	sim := cloudsim.New()
	exampleFleet(sim, 1, types.InstanceTypeM5Large, types.InstanceTypeI3Large, types.InstanceTypeMac1Metal)

	d := recovery.NewDetector(sim.EC2())
	sup, err := d.Detect(context.Background(), recovery.Fleet{
		Filters: []types.Filter{{Name: aws.String("tag:Role"), Values: []string{"web"}}},
	})
	if err != nil {
		panic(err)
	}
	for _, s := range sup {
		fmt.Println(s.InstanceType, "supported:", s.Supported, s.Reasons)
	}
	// Unordered output:
	// m5.large supported: true []
	// i3.large supported: false [instance-type-unsupported: i3.large: AutoRecoverySupported is false instance-store-volumes: i3.large has instance store volumes]
	// mac1.metal supported: false [instance-type-unsupported: mac1.metal: AutoRecoverySupported is false]
}

func ExampleInstaller_Reconcile() {
	sim := cloudsim.New()
	exampleFleet(sim, 2, types.InstanceTypeM5Large, types.InstanceTypeI3Large)
	fleet := recovery.Fleet{Filters: []types.Filter{{Name: aws.String("tag:Role"), Values: []string{"web"}}}}

	inst := recovery.NewInstaller(sim.EC2(), sim.CloudWatch(), func(o *recovery.AlarmOptions) {
		o.Region = "us-east-1" // NewInstallerFromConfig takes it from aws.Config
	})
	plan, err := inst.Reconcile(context.Background(), fleet)
	if err != nil {
		panic(err)
	}
	fmt.Printf("created %d, updated %d, deleted %d; %d instances AWS cannot recover\n",
		len(plan.Create), len(plan.Update), len(plan.Delete), len(plan.Unsupported))
	fmt.Println("first step:", plan.Steps[0].Action)

	// The same fleet again: nothing to do.
	plan, err = inst.Reconcile(context.Background(), fleet)
	if err != nil {
		panic(err)
	}
	fmt.Printf("second run: %d mutating calls, %d alarms unchanged\n", plan.Mutations(), plan.Unchanged)
	// Output:
	// created 2, updated 0, deleted 0; 2 instances AWS cannot recover
	// first step: cloudwatch:PutMetricAlarm
	// second run: 0 mutating calls, 2 alarms unchanged
}

func ExampleInstaller_Policy() {
	inst := recovery.NewInstaller(nil, nil, func(o *recovery.AlarmOptions) { o.Region = "us-east-1" })
	p := inst.Policy()
	fmt.Println(p.Actions())
	fmt.Println(p.Statement[2].Resource)
	// Output:
	// [cloudwatch:DeleteAlarms cloudwatch:DescribeAlarms cloudwatch:PutMetricAlarm cloudwatch:TagResource ec2:DescribeInstanceTypes ec2:DescribeInstances iam:CreateServiceLinkedRole]
	// [arn:aws:cloudwatch:*:*:alarm:ec2ops-recovery-*]
}

func ExampleAutoRecovery_Set() {
	sim := cloudsim.New()
	exampleFleet(sim, 2, types.InstanceTypeM5Large)
	fleet := recovery.Fleet{Filters: []types.Filter{{Name: aws.String("tag:Role"), Values: []string{"web"}}}}

	ar := recovery.NewAutoRecovery(sim.EC2())
	plan, err := ar.Set(context.Background(), fleet, types.InstanceAutoRecoveryStateDisabled)
	if err != nil {
		panic(err)
	}
	fmt.Println("changed:", len(plan.InstanceIDs))
	rep, err := ar.Report(context.Background(), fleet)
	if err != nil {
		panic(err)
	}
	for _, r := range rep {
		fmt.Println(r.AutoRecovery, "effective:", r.Effective)
	}
	// Output:
	// changed: 2
	// disabled effective: false
	// disabled effective: false
}

// The Watchdog on a simulator whose time runs 1000x faster: one instance's
// OS hangs (the Watchdog reboots it) and one i3.large, which AWS cannot
// recover, loses its host (the Watchdog stops and starts it).
func ExampleWatchdog_Run() {
	const scale = 0.001
	sim := cloudsim.New(func(o *cloudsim.Options) { o.TimeScale = scale; o.DisableThrottling = true })
	ids := exampleFleet(sim, 5, types.InstanceTypeM5Large, types.InstanceTypeI3Large)
	fleet := recovery.Fleet{InstanceIDs: ids}
	sc := func(d time.Duration) time.Duration { return time.Duration(float64(d) * scale) }
	for sim.Healthy(nil) < len(ids) {
		time.Sleep(sc(10 * time.Second))
	}
	sim.ImpairInstance(ids[0])
	sim.ImpairSystem(ids[7])

	w := recovery.NewWatchdog(sim.EC2(), nil, func(o *recovery.WatchdogOptions) {
		o.Interval = sc(30 * time.Second)
		o.ImpairedFor = sc(3 * time.Minute)
		o.AWSRecoveryGrace = sc(15 * time.Minute)
		o.ActionTimeout = sc(15 * time.Minute)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, fleet) }()
	for len(w.Stats().Actions) < 2 || sim.Healthy(nil) < len(ids) {
		time.Sleep(sc(30 * time.Second))
	}
	cancel()
	<-done
	for _, a := range w.Stats().Actions {
		fmt.Println(a.InstanceID == ids[0], a.InstanceID == ids[7], a.Action)
	}
	fmt.Printf("%d of %d healthy\n", sim.Healthy(nil), len(ids))
	// Unordered output:
	// true false reboot
	// false true stop-start
	// 10 of 10 healthy
}
