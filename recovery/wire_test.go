package recovery_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwschemas "github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/ec2ops/ec2ops/internal/mototest"
	"github.com/ec2ops/ec2ops/recovery"
)

// motoCloudWatch returns a CloudWatch client that moto understands: the
// SDK's default protocol for CloudWatch is rpcv2-CBOR, which moto 5.2.1 does
// not speak, so the client is switched to the AWS query protocol with the
// service schema from service/cloudwatch/schemas.
func motoCloudWatch(cfg aws.Config) *cloudwatch.Client {
	return cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		o.Protocol = awsquery.New(cwschemas.GraniteServiceVersion20100801)
	})
}

func wireFleet(t *testing.T, c *ec2.Client, token string, itype types.InstanceType, n int32) []string {
	t.Helper()
	out, err := c.RunInstances(t.Context(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12c6146b"), InstanceType: itype, MinCount: aws.Int32(n), MaxCount: aws.Int32(n),
		ClientToken: aws.String(token),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance,
			Tags: []types.Tag{{Key: aws.String("Role"), Value: aws.String("web")}}}},
	})
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	var ids []string
	for _, x := range out.Instances {
		ids = append(ids, aws.ToString(x.InstanceId))
	}
	return ids
}

// TestWireInstaller runs the Installer with real SDK clients against moto:
// create, a second run that changes nothing (the drift check reads moto's
// DescribeAlarms answer field by field), then deletion of a terminated
// instance's alarm.
func TestWireInstaller(t *testing.T) {
	cfg := mototest.Config(t)
	ec := ec2.NewFromConfig(cfg)
	cw := motoCloudWatch(cfg)
	ctx := t.Context()
	ids := wireFleet(t, ec, "wire-m5", types.InstanceTypeM5Large, 3)
	wireFleet(t, ec, "wire-i3", types.InstanceTypeI3Large, 1)

	// NewInstallerFromConfig would make a CloudWatch client with the default
	// (CBOR) protocol; moto needs the query protocol client.
	inst := recovery.NewInstaller(ec, cw, func(o *recovery.AlarmOptions) {
		o.Region = cfg.Region
		o.NotifyTopicARNs = []string{"arn:aws:sns:us-east-1:123456789012:ops"}
		o.InstanceCheckReboot = true
	})
	plan, err := inst.Reconcile(ctx, webFleet)
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	// 3 m5.large: system + instance alarms; i3.large (instance store, no
	// AutoRecoverySupported in moto's type data): instance alarm only.
	if len(plan.Create) != 7 || len(plan.Unsupported) != 1 || plan.Unsupported[0].InstanceType != "i3.large" {
		t.Fatalf("plan: %d creates, unsupported %+v", len(plan.Create), plan.Unsupported)
	}
	out, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{inst.AlarmName(ids[0], "StatusCheckFailed_System")}})
	if err != nil {
		t.Fatalf("DescribeAlarms: %v", err)
	}
	if len(out.MetricAlarms) != 1 {
		t.Fatalf("alarms: %+v", out.MetricAlarms)
	}
	a := out.MetricAlarms[0]
	if aws.ToString(a.MetricName) != "StatusCheckFailed_System" || aws.ToInt32(a.Period) != 60 || aws.ToInt32(a.EvaluationPeriods) != 2 ||
		len(a.AlarmActions) != 2 || a.AlarmActions[0] != "arn:aws:automate:us-east-1:ec2:recover" {
		t.Fatalf("alarm as moto stores it: %+v", a)
	}
	tags, err := cw.ListTagsForResource(ctx, &cloudwatch.ListTagsForResourceInput{ResourceARN: a.AlarmArn})
	if err != nil {
		t.Fatalf("ListTagsForResource: %v", err)
	}
	if len(tags.Tags) != 2 {
		t.Fatalf("tags: %+v", tags.Tags)
	}

	again, err := inst.Plan(ctx, webFleet)
	if err != nil {
		t.Fatal(err)
	}
	if again.Mutations() != 0 || again.Unchanged != 7 {
		t.Fatalf("second run on moto would mutate:\n%s%+v", again, again.Update)
	}

	if _, err := ec.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids[:1]}); err != nil {
		t.Fatal(err)
	}
	plan, err = inst.Reconcile(ctx, webFleet)
	if err != nil {
		t.Fatalf("Reconcile after terminate: %v", err)
	}
	if len(plan.Delete) != 2 {
		t.Fatalf("deletes %v", plan.Delete)
	}
	left, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String(recovery.DefaultPrefix)})
	if err != nil {
		t.Fatal(err)
	}
	if len(left.MetricAlarms) != 5 {
		t.Fatalf("%d alarms left, want 5", len(left.MetricAlarms))
	}
}

// TestWireDetectAndWatch: support detection from moto's instance type data,
// and one Watchdog poll (DescribeInstanceStatus, IncludeAllInstances) that
// finds nothing to do.
func TestWireDetectAndWatch(t *testing.T) {
	cfg := mototest.Config(t)
	ec := ec2.NewFromConfig(cfg)
	ids := wireFleet(t, ec, "wire-w", types.InstanceTypeM5Large, 2)
	sup, err := recovery.NewDetector(ec).Detect(t.Context(), recovery.Fleet{InstanceIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sup {
		if !s.Supported {
			t.Fatalf("m5.large on moto: %+v", s)
		}
	}
	w := recovery.NewWatchdog(ec, nil, func(o *recovery.WatchdogOptions) { o.Interval = 50 * time.Millisecond })
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if err := w.Run(ctx, recovery.Fleet{InstanceIDs: ids}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v", err)
	}
	st := w.Stats()
	if st.Ticks == 0 || st.StatusCalls < st.Ticks || st.StatusCalls > st.Ticks+1 || len(st.Actions) != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestWireModifyInstanceMaintenanceOptions checks the wire shape of
// ModifyInstanceMaintenanceOptions, which moto does not implement, against
// an httptest server answering the documented EC2 query response.
func TestWireModifyInstanceMaintenanceOptions(t *testing.T) {
	var got url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got, _ = url.ParseQuery(string(body))
		w.Header().Set("Content-Type", "text/xml")
		switch got.Get("Action") {
		case "ModifyInstanceMaintenanceOptions":
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>
<ModifyInstanceMaintenanceOptionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <instanceId>i-0123456789abcdef0</instanceId>
  <autoRecovery>disabled</autoRecovery>
</ModifyInstanceMaintenanceOptionsResponse>`)
		default:
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	ec := ec2.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	var api recovery.MaintenanceAPI = ec
	out, err := api.ModifyInstanceMaintenanceOptions(t.Context(), &ec2.ModifyInstanceMaintenanceOptionsInput{
		InstanceId: aws.String("i-0123456789abcdef0"), AutoRecovery: types.InstanceAutoRecoveryStateDisabled})
	if err != nil {
		t.Fatal(err)
	}
	if got.Get("InstanceId") != "i-0123456789abcdef0" || got.Get("AutoRecovery") != "disabled" ||
		out.AutoRecovery != types.InstanceAutoRecoveryStateDisabled || !strings.HasPrefix(aws.ToString(out.InstanceId), "i-") {
		t.Fatalf("request %v, response %+v", got, out)
	}
}
