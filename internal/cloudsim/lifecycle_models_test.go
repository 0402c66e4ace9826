package cloudsim

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

func dataVolume(in *ec2.RunInstancesInput) {
	in.BlockDeviceMappings = []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdf"),
		Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(50), VolumeType: types.VolumeTypeIo2, Iops: aws.Int32(4000), Encrypted: aws.Bool(true), DeleteOnTermination: aws.Bool(false)}}}
}

func TestElasticIPs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		c := s.EC2()
		ctx := context.Background()
		ids := launch(t, c, runInput(2))
		time.Sleep(time.Minute)
		a, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
		mustOK(t, err)
		_, err = c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: a.AllocationId, InstanceId: aws.String(ids[0])})
		mustOK(t, err)
		_, err = c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: a.AllocationId, InstanceId: aws.String(ids[1])})
		wantCode(t, err, codeAlreadyAssociated)
		_, err = c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: a.AllocationId, InstanceId: aws.String(ids[1]), AllowReassociation: aws.Bool(true)})
		mustOK(t, err)
		out, err := c.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{ids[1]}}}})
		mustOK(t, err)
		if len(out.Addresses) != 1 || aws.ToString(out.Addresses[0].PublicIp) != aws.ToString(a.PublicIp) {
			t.Fatalf("describe: %+v", out.Addresses)
		}
		_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{ids[1]}})
		mustOK(t, err)
		time.Sleep(2 * time.Minute)
		if _, ok := s.AddressOf(ids[1]); ok {
			t.Fatal("address still associated with a terminated instance")
		}
		_, err = c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: aws.String("eipalloc-0000000000000000f"), InstanceId: aws.String(ids[0])})
		wantCode(t, err, codeAllocationNotFound)
	})
}

func TestVolumesDetachAttachAndTermination(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		c := s.EC2()
		ctx := context.Background()
		ids := launch(t, c, runInput(2, dataVolume))
		time.Sleep(time.Minute)
		out, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{
			{Name: aws.String("attachment.instance-id"), Values: []string{ids[0]}}, {Name: aws.String("attachment.device"), Values: []string{"/dev/sdf"}}}})
		mustOK(t, err)
		v := out.Volumes[0]
		if aws.ToInt32(v.Size) != 50 || v.VolumeType != types.VolumeTypeIo2 || aws.ToInt32(v.Iops) != 4000 || !aws.ToBool(v.Encrypted) || v.State != types.VolumeStateInUse {
			t.Fatalf("volume %+v", v)
		}
		vol := aws.ToString(v.VolumeId)
		all, _ := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{ids[0]}}, {Name: aws.String("attachment.device"), Values: []string{rootDevice}}}})
		root := aws.ToString(all.Volumes[0].VolumeId)
		_, err = c.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(root)})
		wantCode(t, err, codeIncorrectState) // root of a running instance
		_, err = c.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: aws.String(vol), InstanceId: aws.String(ids[1]), Device: aws.String("/dev/sdg")})
		wantCode(t, err, codeVolumeInUse)
		_, err = c.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(vol)})
		mustOK(t, err)
		time.Sleep(30 * time.Second)
		got, _ := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{vol}})
		if got.Volumes[0].State != types.VolumeStateAvailable {
			t.Fatalf("after detach: %s", got.Volumes[0].State)
		}
		_, err = c.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: aws.String(vol), InstanceId: aws.String(ids[1]), Device: aws.String("/dev/sdg")})
		mustOK(t, err)
		time.Sleep(10 * time.Second)
		got, _ = c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{vol}})
		a := got.Volumes[0].Attachments[0]
		if aws.ToString(a.InstanceId) != ids[1] || a.State != types.VolumeAttachmentStateAttached || aws.ToBool(a.DeleteOnTermination) {
			t.Fatalf("attachment %+v", a)
		}
		// DeleteOnTermination on: the volume goes with the instance; off: it stays.
		_, err = c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(ids[1]),
			BlockDeviceMappings: []types.InstanceBlockDeviceMappingSpecification{{DeviceName: aws.String("/dev/sdg"), Ebs: &types.EbsInstanceBlockDeviceSpecification{DeleteOnTermination: aws.Bool(true)}}}})
		mustOK(t, err)
		_, err = c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(ids[1]), InstanceType: &types.AttributeValue{Value: aws.String("c5.large")}})
		wantCode(t, err, codeIncorrectState) // running
		_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
		mustOK(t, err)
		time.Sleep(2 * time.Minute)
		_, err = c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{vol}})
		wantCode(t, err, codeVolumeNotFound)
		_, err = c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{root}})
		wantCode(t, err, codeVolumeNotFound)
	})
}

func TestTargetHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		ctx := context.Background()
		ids := launch(t, s.EC2(), runInput(2))
		time.Sleep(40 * time.Second)
		arn := s.CreateTargetGroup("web", 80, func(o *TargetGroupOptions) { o.DeregistrationDelay = time.Minute })
		_, err := s.ELBv2().RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(arn),
			Targets: []elbtypes.TargetDescription{{Id: aws.String(ids[0])}, {Id: aws.String(ids[1])}}})
		mustOK(t, err)
		if st := s.TargetState(arn, ids[0]); st != "initial" {
			t.Fatalf("just registered: %s", st)
		}
		s.Impair(ids[1])
		time.Sleep(3 * time.Minute)
		if st := s.TargetState(arn, ids[0]); st != "healthy" {
			t.Fatalf("after 150s: %s", st)
		}
		if st := s.TargetState(arn, ids[1]); st != "unhealthy" {
			t.Fatalf("impaired: %s", st)
		}
		_, err = s.ELBv2().DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: []elbtypes.TargetDescription{{Id: aws.String(ids[0])}}})
		mustOK(t, err)
		if st := s.TargetState(arn, ids[0]); st != "draining" {
			t.Fatalf("deregistered: %s", st)
		}
		time.Sleep(61 * time.Second)
		out, err := s.ELBv2().DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
		mustOK(t, err)
		if len(out.TargetHealthDescriptions) != 1 || aws.ToString(out.TargetHealthDescriptions[0].Target.Id) != ids[1] {
			t.Fatalf("after draining: %+v", out.TargetHealthDescriptions)
		}
		_, err = s.ELBv2().DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn + "x")})
		wantCode(t, err, codeTargetGroupNotFound)
		g, err := s.ELBv2().DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: []string{"web"}})
		mustOK(t, err)
		if aws.ToInt32(g.TargetGroups[0].HealthyThresholdCount) != 5 {
			t.Fatalf("target group %+v", g.TargetGroups[0])
		}
	})
}

func TestReplaceRootVolumeTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		c := s.EC2()
		ctx := context.Background()
		ids := launch(t, c, runInput(1, dataVolume))
		time.Sleep(5 * time.Minute)
		before, _ := s.Instance(ids[0])
		in := &ec2.CreateReplaceRootVolumeTaskInput{InstanceId: aws.String(ids[0]), ImageId: aws.String("ami-0fedcba9876543210"), ClientToken: aws.String("t1")}
		out, err := c.CreateReplaceRootVolumeTask(ctx, in)
		mustOK(t, err)
		again, err := c.CreateReplaceRootVolumeTask(ctx, in)
		mustOK(t, err)
		task := aws.ToString(out.ReplaceRootVolumeTask.ReplaceRootVolumeTaskId)
		if aws.ToString(again.ReplaceRootVolumeTask.ReplaceRootVolumeTaskId) != task || out.ReplaceRootVolumeTask.TaskState != types.ReplaceRootVolumeTaskStatePending {
			t.Fatalf("idempotency / state: %+v", again.ReplaceRootVolumeTask)
		}
		time.Sleep(11 * time.Second)
		d, _ := c.DescribeReplaceRootVolumeTasks(ctx, &ec2.DescribeReplaceRootVolumeTasksInput{ReplaceRootVolumeTaskIds: []string{task}})
		if st := d.ReplaceRootVolumeTasks[0].TaskState; st != types.ReplaceRootVolumeTaskStateInProgress {
			t.Fatalf("after 11s: %s", st)
		}
		if iv, _ := s.Instance(ids[0]); iv.Healthy {
			t.Fatal("healthy while its root volume is replaced")
		}
		time.Sleep(5 * time.Minute)
		d, _ = c.DescribeReplaceRootVolumeTasks(ctx, &ec2.DescribeReplaceRootVolumeTasksInput{Filters: []types.Filter{{Name: aws.String("instance-id"), Values: ids}}})
		if st := d.ReplaceRootVolumeTasks[0].TaskState; st != types.ReplaceRootVolumeTaskStateSucceeded {
			t.Fatalf("after 5m: %s", st)
		}
		after, _ := s.Instance(ids[0])
		if after.ImageID != "ami-0fedcba9876543210" || after.PrivateIP != before.PrivateIP || !after.Healthy || after.ID != before.ID {
			t.Fatalf("after: %+v", after)
		}
		vols, _ := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("status"), Values: []string{"available"}}}})
		if len(vols.Volumes) != 1 {
			t.Fatalf("the replaced root volume is kept: %d available", len(vols.Volumes))
		}
	})
}

func TestAutoScalingGroupTag(t *testing.T) {
	s := New()
	ids := launch(t, s.EC2(), runInput(1))
	if !s.SetAutoScalingGroup(ids[0], "web-asg") {
		t.Fatal("instance not found")
	}
	iv, _ := s.Instance(ids[0])
	if iv.Tags["aws:autoscaling:groupName"] != "web-asg" {
		t.Fatalf("tags %v", iv.Tags)
	}
}
