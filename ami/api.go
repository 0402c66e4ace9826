package ami

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

//go:generate go run go.uber.org/mock/mockgen@v0.6.0 -destination=amimock/mocks.go -package=amimock -source=api.go

// The narrow client interfaces of the strategies. Each lists exactly the
// calls one strategy makes, with the signatures of the aws-sdk-go-v2
// clients, so an *ec2.Client (or *ssm.Client, *autoscaling.Client), the
// simulator in internal/cloudsim or a generated mock in amimock satisfies
// them.

// ImagesAPI is what the Resolver calls on EC2.
type ImagesAPI interface {
	DescribeImages(ctx context.Context, params *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
}

// ParameterAPI is what the Resolver calls on Systems Manager to read a
// public AMI parameter such as
// /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64.
type ParameterAPI interface {
	GetParameter(ctx context.Context, params *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// BakeAPI is what the Baker calls on EC2.
type BakeAPI interface {
	DescribeImages(ctx context.Context, params *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	CreateImage(ctx context.Context, params *ec2.CreateImageInput, optFns ...func(*ec2.Options)) (*ec2.CreateImageOutput, error)
	RunInstances(ctx context.Context, params *ec2.RunInstancesInput, optFns ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	DescribeInstances(ctx context.Context, params *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeInstanceStatus(ctx context.Context, params *ec2.DescribeInstanceStatusInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error)
	TerminateInstances(ctx context.Context, params *ec2.TerminateInstancesInput, optFns ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
}

// ShellRunner runs shell commands on instances through Systems Manager
// (AWS-RunShellScript) and returns nil only if every instance succeeded.
// patching's Runner satisfies it; the Baker uses it to apply the
// command layers of a recipe on the builder instance.
type ShellRunner interface {
	RunShell(ctx context.Context, instanceIDs []string, commands []string) error
}

// AgentWaiter is optionally implemented by a ShellRunner (patching's Runner
// implements it): WaitManaged blocks until every instance of instanceIDs
// has an online SSM agent, or fails when ctx ends (with an error matching
// ec2ops.ErrUnmanaged). The Baker calls it with the builder's ID before the
// first command layer, bounded by BakerOptions.AgentTimeout, because a
// builder passes its status checks before its agent has registered.
type AgentWaiter interface {
	WaitManaged(ctx context.Context, instanceIDs []string) error
}

// SweepAPI is what the Sweeper calls on EC2.
type SweepAPI interface {
	DescribeInstances(ctx context.Context, params *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	TerminateInstances(ctx context.Context, params *ec2.TerminateInstancesInput, optFns ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
}

// DistributeAPI is what the Distributor calls on EC2, in the source Region
// and, through a client per Region, in each destination Region.
type DistributeAPI interface {
	DescribeImages(ctx context.Context, params *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	CopyImage(ctx context.Context, params *ec2.CopyImageInput, optFns ...func(*ec2.Options)) (*ec2.CopyImageOutput, error)
	ModifyImageAttribute(ctx context.Context, params *ec2.ModifyImageAttributeInput, optFns ...func(*ec2.Options)) (*ec2.ModifyImageAttributeOutput, error)
	ModifySnapshotAttribute(ctx context.Context, params *ec2.ModifySnapshotAttributeInput, optFns ...func(*ec2.Options)) (*ec2.ModifySnapshotAttributeOutput, error)
	EnableImageDeprecation(ctx context.Context, params *ec2.EnableImageDeprecationInput, optFns ...func(*ec2.Options)) (*ec2.EnableImageDeprecationOutput, error)
	DisableImageDeprecation(ctx context.Context, params *ec2.DisableImageDeprecationInput, optFns ...func(*ec2.Options)) (*ec2.DisableImageDeprecationOutput, error)
}

// RetentionAPI is what Retention calls on EC2.
type RetentionAPI interface {
	DescribeImages(ctx context.Context, params *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	DescribeImageAttribute(ctx context.Context, params *ec2.DescribeImageAttributeInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImageAttributeOutput, error)
	DescribeInstances(ctx context.Context, params *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeLaunchTemplates(ctx context.Context, params *ec2.DescribeLaunchTemplatesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplatesOutput, error)
	DescribeLaunchTemplateVersions(ctx context.Context, params *ec2.DescribeLaunchTemplateVersionsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplateVersionsOutput, error)
	EnableImageDeprecation(ctx context.Context, params *ec2.EnableImageDeprecationInput, optFns ...func(*ec2.Options)) (*ec2.EnableImageDeprecationOutput, error)
	DisableImage(ctx context.Context, params *ec2.DisableImageInput, optFns ...func(*ec2.Options)) (*ec2.DisableImageOutput, error)
	DeregisterImage(ctx context.Context, params *ec2.DeregisterImageInput, optFns ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error)
}

// AutoScalingAPI is what Retention calls on Auto Scaling to find the images
// that groups reference.
type AutoScalingAPI interface {
	DescribeAutoScalingGroups(ctx context.Context, params *autoscaling.DescribeAutoScalingGroupsInput, optFns ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error)
	DescribeLaunchConfigurations(ctx context.Context, params *autoscaling.DescribeLaunchConfigurationsInput, optFns ...func(*autoscaling.Options)) (*autoscaling.DescribeLaunchConfigurationsOutput, error)
}

var (
	_ ImagesAPI      = (*ec2.Client)(nil)
	_ ParameterAPI   = (*ssm.Client)(nil)
	_ BakeAPI        = (*ec2.Client)(nil)
	_ SweepAPI       = (*ec2.Client)(nil)
	_ DistributeAPI  = (*ec2.Client)(nil)
	_ RetentionAPI   = (*ec2.Client)(nil)
	_ AutoScalingAPI = (*autoscaling.Client)(nil)
)
