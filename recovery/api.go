package recovery

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

//go:generate go run go.uber.org/mock/mockgen@v0.6.0 -source=api.go -destination=recoverymock/mocks.go -package=recoverymock

// InstanceAPI is what support detection calls: it describes the fleet and
// the instance types it runs. *ec2.Client satisfies it.
type InstanceAPI interface {
	DescribeInstances(ctx context.Context, params *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeInstanceTypes(ctx context.Context, params *ec2.DescribeInstanceTypesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error)
}

// AlarmAPI is what the alarm Installer calls on CloudWatch.
// *cloudwatch.Client satisfies it.
type AlarmAPI interface {
	DescribeAlarms(ctx context.Context, params *cloudwatch.DescribeAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
	PutMetricAlarm(ctx context.Context, params *cloudwatch.PutMetricAlarmInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricAlarmOutput, error)
	DeleteAlarms(ctx context.Context, params *cloudwatch.DeleteAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DeleteAlarmsOutput, error)
	TagResource(ctx context.Context, params *cloudwatch.TagResourceInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.TagResourceOutput, error)
}

// MaintenanceAPI is what AutoRecovery calls: detection plus
// ModifyInstanceMaintenanceOptions. *ec2.Client satisfies it.
type MaintenanceAPI interface {
	InstanceAPI
	ModifyInstanceMaintenanceOptions(ctx context.Context, params *ec2.ModifyInstanceMaintenanceOptionsInput, optFns ...func(*ec2.Options)) (*ec2.ModifyInstanceMaintenanceOptionsOutput, error)
}

// WatchdogAPI is what the Watchdog calls: detection, the batched status
// poll and the in-place remedies. *ec2.Client satisfies it.
type WatchdogAPI interface {
	InstanceAPI
	DescribeInstanceStatus(ctx context.Context, params *ec2.DescribeInstanceStatusInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error)
	RebootInstances(ctx context.Context, params *ec2.RebootInstancesInput, optFns ...func(*ec2.Options)) (*ec2.RebootInstancesOutput, error)
	StopInstances(ctx context.Context, params *ec2.StopInstancesInput, optFns ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error)
	StartInstances(ctx context.Context, params *ec2.StartInstancesInput, optFns ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error)
}

// Replacer replaces an instance by an equivalent one (same launch spec,
// same image) and returns the new instance's ID once it is in service.
// lifecycle's Surge strategy satisfies it; recovery does not import
// lifecycle.
type Replacer interface {
	ReplaceInstance(ctx context.Context, instanceID string) (newInstanceID string, err error)
}

var (
	_ InstanceAPI    = (*ec2.Client)(nil)
	_ MaintenanceAPI = (*ec2.Client)(nil)
	_ WatchdogAPI    = (*ec2.Client)(nil)
	_ AlarmAPI       = (*cloudwatch.Client)(nil)
)
