package baseline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/awserr"
)

// CloudWatch is what the baseline alarm reconcile calls.
type CloudWatch interface {
	PutMetricAlarm(ctx context.Context, params *cloudwatch.PutMetricAlarmInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricAlarmOutput, error)
	DescribeAlarms(ctx context.Context, params *cloudwatch.DescribeAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
	DeleteAlarms(ctx context.Context, params *cloudwatch.DeleteAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DeleteAlarmsOutput, error)
}

// Instances is what the baseline alarm reconcile and retention call on EC2.
type Instances interface {
	DescribeInstances(ctx context.Context, params *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

var (
	_ CloudWatch = (*cloudwatch.Client)(nil)
	_ Instances  = (*ec2.Client)(nil)
)

// AlarmPrefix names the baseline's recovery alarms: AlarmPrefix + instance ID.
const AlarmPrefix = "recover-"

// AlarmResult is what one baseline reconcile did.
type AlarmResult struct {
	Put, Deleted int
	Failed       map[string]error // alarm name -> why it was not put or deleted
	Surfaced     int              // failures caused by a throttling error
	Makespan     time.Duration
}

// ReconcileAlarms installs a recover alarm on the system status check of
// every running or stopped instance with tag key=value, the way a user
// writes it with the SDK alone: list the fleet (DescribeInstances with a tag
// filter, 1,000 a page), PutMetricAlarm for every instance on every run (a
// put of an unchanged alarm is how the SDK user makes it idempotent; there
// is no read-compare step), then list the alarms under AlarmPrefix
// (DescribeAlarms, 100 a page) and DeleteAlarms those whose instance is gone
// (100 names a call). Calls are made one after another through the
// standard retryer, without client-side pacing.
func ReconcileAlarms(ctx context.Context, e Instances, cw CloudWatch, region, key, value string) (res AlarmResult) {
	rt := NewRetrier()
	res = AlarmResult{Failed: map[string]error{}}
	start := time.Now()
	defer func() { res.Makespan = time.Since(start) }()
	fail := func(name string, err error) {
		res.Failed[name] = err
		if awserr.IsThrottle(err) {
			res.Surfaced++
		}
	}
	var ids []string
	in := &ec2.DescribeInstancesInput{MaxResults: aws.Int32(1000), Filters: []types.Filter{
		{Name: aws.String("tag:" + key), Values: []string{value}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}}}}
	for {
		out, err := Do(ctx, rt, func(ctx context.Context) (*ec2.DescribeInstancesOutput, error) { return e.DescribeInstances(ctx, in) })
		if err != nil {
			fail("fleet", fmt.Errorf("describe instances: %w", err))
			return res
		}
		for _, r := range out.Reservations {
			for _, x := range r.Instances {
				ids = append(ids, aws.ToString(x.InstanceId))
			}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	want := map[string]bool{}
	action := fmt.Sprintf("arn:aws:automate:%s:ec2:recover", region)
	for _, id := range ids {
		name := AlarmPrefix + id
		want[name] = true
		_, err := Do(ctx, rt, func(ctx context.Context) (*cloudwatch.PutMetricAlarmOutput, error) {
			return cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
				AlarmName: aws.String(name), Namespace: aws.String("AWS/EC2"), MetricName: aws.String("StatusCheckFailed_System"),
				Dimensions: []cwtypes.Dimension{{Name: aws.String("InstanceId"), Value: aws.String(id)}},
				Statistic:  cwtypes.StatisticMaximum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(2),
				Threshold: aws.Float64(1), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold,
				AlarmActions: []string{action}})
		})
		if err != nil {
			fail(name, err)
			continue
		}
		res.Put++
	}
	var gone []string
	din := &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String(AlarmPrefix), MaxRecords: aws.Int32(100)}
	for {
		out, err := Do(ctx, rt, func(ctx context.Context) (*cloudwatch.DescribeAlarmsOutput, error) {
			return cw.DescribeAlarms(ctx, din)
		})
		if err != nil {
			fail("list", fmt.Errorf("describe alarms: %w", err))
			return res
		}
		for _, a := range out.MetricAlarms {
			if n := aws.ToString(a.AlarmName); strings.HasPrefix(n, AlarmPrefix) && !want[n] {
				gone = append(gone, n)
			}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		din.NextToken = out.NextToken
	}
	for chunk := range slices.Chunk(gone, 100) {
		_, err := Do(ctx, rt, func(ctx context.Context) (*cloudwatch.DeleteAlarmsOutput, error) {
			return cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: chunk})
		})
		if err != nil {
			for _, n := range chunk {
				fail(n, err)
			}
			continue
		}
		res.Deleted += len(chunk)
	}
	return res
}
