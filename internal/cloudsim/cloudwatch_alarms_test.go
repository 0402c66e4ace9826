package cloudsim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

const (
	recoverARN = "arn:aws:automate:us-east-1:ec2:recover"
	rebootARN  = "arn:aws:automate:us-east-1:ec2:reboot"
	topicARN   = "arn:aws:sns:us-east-1:123456789012:ops"
)

// fixedLatency makes every duration exact, so the tests can name times.
func fixedLatency(o *Options) {
	o.DisableThrottling = true
	o.Latency.PendingToRunning = Dist{Min: 10 * time.Second, Max: 10 * time.Second}
	o.Latency.StatusInit = Dist{Min: time.Minute, Max: time.Minute}
	o.Latency.Reboot = Dist{Min: 40 * time.Second, Max: 40 * time.Second}
	o.Latency.Stopping = Dist{Min: 30 * time.Second, Max: 30 * time.Second}
}

func statusAlarm(name, metric, instanceID string, actions ...string) *cloudwatch.PutMetricAlarmInput {
	return &cloudwatch.PutMetricAlarmInput{
		AlarmName:          aws.String(name),
		Namespace:          aws.String("AWS/EC2"),
		MetricName:         aws.String(metric),
		Dimensions:         []cwtypes.Dimension{{Name: aws.String("InstanceId"), Value: aws.String(instanceID)}},
		Statistic:          cwtypes.StatisticMaximum,
		Period:             aws.Int32(60),
		EvaluationPeriods:  aws.Int32(2),
		DatapointsToAlarm:  aws.Int32(2),
		Threshold:          aws.Float64(1),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold,
		AlarmActions:       actions,
	}
}

func alarmState(t testing.TB, s *Sim, name string) string {
	t.Helper()
	for _, a := range s.Alarms() {
		if a.Name == name {
			return a.State
		}
	}
	t.Fatalf("alarm %s does not exist", name)
	return ""
}

func TestRecoverAlarmMovesInstanceToHealthyHardware(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(fixedLatency)
		s.ConfigureRecovery(func(o *RecoveryOptions) { o.RecoveryTime = Dist{Min: 4 * time.Minute, Max: 4 * time.Minute} })
		c, cw := s.EC2(), s.CloudWatch()
		ctx := context.Background()
		id := launch(t, c, runInput(1))[0]
		time.Sleep(2 * time.Minute)
		before, _ := s.Instance(id)
		if !before.Healthy {
			t.Fatalf("not healthy: %+v", before)
		}
		_, err := cw.PutMetricAlarm(ctx, statusAlarm("rec", "StatusCheckFailed_System", id, recoverARN, topicARN))
		mustOK(t, err)
		if got := alarmState(t, s, "rec"); got != "INSUFFICIENT_DATA" {
			t.Fatalf("new alarm state %s", got)
		}
		time.Sleep(time.Minute)
		if got := alarmState(t, s, "rec"); got != "OK" {
			t.Fatalf("after a minute of healthy data: %s", got)
		}

		if !s.ImpairSystem(id) {
			t.Fatal("ImpairSystem failed")
		}
		iv, _ := s.Instance(id)
		if iv.SystemStatus != "impaired" || iv.InstanceStatus != "ok" {
			t.Fatalf("after ImpairSystem: %+v", iv)
		}
		impairedAt := time.Now()
		// 2 of 2 one-minute datapoints: ALARM at the second boundary after the failure.
		time.Sleep(3 * time.Minute)
		tr := s.AlarmTransitions()
		last := tr[len(tr)-1]
		if last.To != "ALARM" || !slices.Contains(last.Actions, recoverARN) {
			t.Fatalf("transitions: %+v", tr)
		}
		if d := last.Time.Sub(impairedAt); d <= time.Minute || d > 2*time.Minute {
			t.Fatalf("ALARM %s after the failure, want within (1m, 2m]", d)
		}
		if n := s.Notifications(); len(n) != 1 || n[0].TopicARN != topicARN || n[0].State != "ALARM" {
			t.Fatalf("notifications: %+v", n)
		}
		recs := s.Recoveries()
		if len(recs) != 1 || recs[0].Outcome != "started" || recs[0].Mechanism != "alarm" {
			t.Fatalf("recoveries: %+v", recs)
		}
		// Recovery: 4 min from the ALARM, then the status checks run again (1 min).
		time.Sleep(time.Until(last.Time.Add(5*time.Minute + time.Second)))
		after, _ := s.Instance(id)
		if !after.Healthy || after.PrivateIP != before.PrivateIP || after.ID != before.ID || after.LaunchTime != before.LaunchTime {
			t.Fatalf("after recovery: %+v, before %+v", after, before)
		}
		if recs := s.Recoveries(); recs[len(recs)-1].Outcome != "succeeded" {
			t.Fatalf("recoveries: %+v", recs)
		}
		time.Sleep(3 * time.Minute)
		if got := alarmState(t, s, "rec"); got != "OK" {
			t.Fatalf("alarm after recovery: %s", got)
		}
	})
}

func TestRecoverIgnoresInstanceCheckFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(fixedLatency)
		c, cw := s.EC2(), s.CloudWatch()
		ctx := context.Background()
		id := launch(t, c, runInput(1))[0]
		time.Sleep(2 * time.Minute)
		must(t)(cw.PutMetricAlarm(ctx, statusAlarm("sys", "StatusCheckFailed_System", id, recoverARN)))
		must(t)(cw.PutMetricAlarm(ctx, statusAlarm("inst", "StatusCheckFailed_Instance", id, rebootARN)))
		time.Sleep(time.Minute)
		if !s.ImpairInstance(id) {
			t.Fatal("ImpairInstance failed")
		}
		if iv, _ := s.Instance(id); iv.InstanceStatus != "impaired" || iv.SystemStatus != "ok" {
			t.Fatalf("after ImpairInstance: %+v", iv)
		}
		time.Sleep(2 * time.Minute)
		if alarmState(t, s, "sys") != "OK" || alarmState(t, s, "inst") != "ALARM" {
			t.Fatalf("alarms: %+v", s.Alarms())
		}
		// The reboot action cured the OS; no recovery was attempted.
		time.Sleep(time.Minute)
		if iv, _ := s.Instance(id); !iv.Healthy {
			t.Fatalf("after the reboot action: %+v", iv)
		}
		if r := s.Recoveries(); len(r) != 0 {
			t.Fatalf("recoveries: %+v", r)
		}
		// The recover action only goes with StatusCheckFailed_System.
		_, err := cw.PutMetricAlarm(ctx, statusAlarm("bad", "StatusCheckFailed_Instance", id, recoverARN))
		wantCode(t, err, "InvalidParameterCombinationException")
	})
}

func TestRecoveryLimitsAndUnsupportedTypes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(fixedLatency)
		s.ConfigureRecovery(func(o *RecoveryOptions) { o.RecoveryTime = Dist{Min: time.Minute, Max: time.Minute} })
		c, cw := s.EC2(), s.CloudWatch()
		ctx := context.Background()
		id := launch(t, c, runInput(1))[0]
		i3 := launch(t, c, runInput(1, func(in *ec2.RunInstancesInput) { in.InstanceType = types.InstanceTypeI3Large }))[0]
		time.Sleep(2 * time.Minute)
		must(t)(cw.PutMetricAlarm(ctx, statusAlarm("a", "StatusCheckFailed_System", id, recoverARN)))
		must(t)(cw.PutMetricAlarm(ctx, statusAlarm("b", "StatusCheckFailed_System", i3, recoverARN)))
		time.Sleep(time.Minute)
		for range 4 {
			s.ImpairSystem(id)
			time.Sleep(10 * time.Minute)
		}
		s.ImpairSystem(i3)
		time.Sleep(10 * time.Minute)
		var outcomes []string
		for _, r := range s.Recoveries() {
			outcomes = append(outcomes, r.InstanceID[:2]+":"+strings.SplitN(r.Outcome, ":", 2)[0])
		}
		want := []string{"i-:started", "i-:succeeded", "i-:started", "i-:succeeded", "i-:started", "i-:succeeded", "i-:failed", "i-:failed"}
		if !slices.Equal(outcomes, want) {
			t.Fatalf("outcomes %v, want %v (%+v)", outcomes, want, s.Recoveries())
		}
		recs := s.Recoveries()
		if !strings.Contains(recs[6].Outcome, "3 recovery attempts") || recs[7].InstanceID != i3 || !strings.Contains(recs[7].Outcome, "i3.large") {
			t.Fatalf("failure reasons: %+v", recs[6:])
		}
		if iv, _ := s.Instance(id); !iv.Impaired {
			t.Fatalf("the fourth failure was recovered: %+v", iv)
		}
		// A day later the allowance is back.
		time.Sleep(24 * time.Hour)
		s.ImpairSystem(id) // already impaired: no new failure; stop/start would move it
		_, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}})
		mustOK(t, err)
		time.Sleep(time.Minute)
		_, err = c.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
		mustOK(t, err)
		time.Sleep(2 * time.Minute)
		if iv, _ := s.Instance(id); !iv.Healthy {
			t.Fatalf("after stop/start: %+v", iv)
		}
		s.ImpairSystem(id)
		time.Sleep(10 * time.Minute)
		if iv, _ := s.Instance(id); !iv.Healthy {
			t.Fatalf("not recovered a day later: %+v (%+v)", iv, s.Recoveries())
		}
	})
}

func TestRecoveryFailureRateAndStoppedInstances(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(fixedLatency)
		s.ConfigureRecovery(func(o *RecoveryOptions) { o.FailureRate = 1 })
		c, cw := s.EC2(), s.CloudWatch()
		ctx := context.Background()
		id := launch(t, c, runInput(1))[0]
		time.Sleep(2 * time.Minute)
		must(t)(cw.PutMetricAlarm(ctx, statusAlarm("a", "StatusCheckFailed_System", id, recoverARN)))
		s.ImpairSystem(id)
		time.Sleep(15 * time.Minute)
		recs := s.Recoveries()
		if len(recs) != 2 || recs[1].Outcome != "failed: recovery did not complete" {
			t.Fatalf("recoveries: %+v", recs)
		}
		if iv, _ := s.Instance(id); !iv.Impaired {
			t.Fatalf("a failed recovery healed: %+v", iv)
		}
		// Stopped: no data, INSUFFICIENT_DATA.
		_, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}})
		mustOK(t, err)
		time.Sleep(4 * time.Minute)
		if got := alarmState(t, s, "a"); got != "INSUFFICIENT_DATA" {
			t.Fatalf("stopped instance alarm: %s", got)
		}
	})
}

// must(t)(call()) fails the test if call returned an error.
func must(t testing.TB) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		mustOK(t, err)
	}
}

func TestAlarmAPIValidationPaginationAndTags(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle)
		cw := s.CloudWatch()
		ctx := context.Background()
		for i := range 250 {
			in := statusAlarm(fmt.Sprintf("p-%03d", i), "StatusCheckFailed_System", fmt.Sprintf("i-%017x", i), recoverARN)
			in.Tags = []cwtypes.Tag{{Key: aws.String("ec2ops:owner"), Value: aws.String("test")}}
			must(t)(cw.PutMetricAlarm(ctx, in))
		}
		must(t)(cw.PutMetricAlarm(ctx, statusAlarm("q-other", "CPUUtilization", "i-00000000000000001")))
		var names []string
		var tok *string
		pages := 0
		for {
			out, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("p-"), MaxRecords: aws.Int32(100), NextToken: tok})
			mustOK(t, err)
			pages++
			for _, a := range out.MetricAlarms {
				names = append(names, aws.ToString(a.AlarmName))
			}
			if tok = out.NextToken; tok == nil {
				break
			}
		}
		if pages != 3 || len(names) != 250 || names[0] != "p-000" || names[249] != "p-249" {
			t.Fatalf("%d pages, %d names", pages, len(names))
		}
		// The SDK paginator, default page size 50.
		p := cloudwatch.NewDescribeAlarmsPaginator(cw, &cloudwatch.DescribeAlarmsInput{})
		total := 0
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			mustOK(t, err)
			total += len(out.MetricAlarms)
		}
		if total != 251 {
			t.Fatalf("paginator saw %d alarms", total)
		}

		out, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{"p-007", "nope"}})
		mustOK(t, err)
		a := out.MetricAlarms[0]
		if len(out.MetricAlarms) != 1 || aws.ToString(a.AlarmArn) != "arn:aws:cloudwatch:us-east-1:123456789012:alarm:p-007" ||
			a.StateValue != cwtypes.StateValueInsufficientData || aws.ToInt32(a.Period) != 60 || a.AlarmActions[0] != recoverARN {
			t.Fatalf("describe by name: %+v", out.MetricAlarms)
		}

		// Update: configuration replaced, state kept, Tags ignored.
		upd := statusAlarm("p-007", "StatusCheckFailed_System", "i-00000000000000007", recoverARN, topicARN)
		upd.Tags = []cwtypes.Tag{{Key: aws.String("ignored"), Value: aws.String("x")}}
		must(t)(cw.PutMetricAlarm(ctx, upd))
		arn := aws.String("arn:aws:cloudwatch:us-east-1:123456789012:alarm:p-007")
		tags, err := cw.ListTagsForResource(ctx, &cloudwatch.ListTagsForResourceInput{ResourceARN: arn})
		mustOK(t, err)
		if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "ec2ops:owner" {
			t.Fatalf("tags after update: %+v", tags.Tags)
		}
		must(t)(cw.TagResource(ctx, &cloudwatch.TagResourceInput{ResourceARN: arn, Tags: []cwtypes.Tag{{Key: aws.String("b"), Value: aws.String("2")}}}))
		must(t)(cw.UntagResource(ctx, &cloudwatch.UntagResourceInput{ResourceARN: arn, TagKeys: []string{"ec2ops:owner"}}))
		tags, err = cw.ListTagsForResource(ctx, &cloudwatch.ListTagsForResourceInput{ResourceARN: arn})
		mustOK(t, err)
		if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "b" {
			t.Fatalf("tags after tag/untag: %+v", tags.Tags)
		}
		_, err = cw.TagResource(ctx, &cloudwatch.TagResourceInput{ResourceARN: aws.String("arn:aws:cloudwatch:us-east-1:123456789012:alarm:nope")})
		wantCode(t, err, "ResourceNotFoundException")

		// Delete in batches of at most 100; unknown names ignored.
		_, err = cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: names[:101]})
		wantCode(t, err, "InvalidParameterValueException")
		must(t)(cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: append(slices.Clone(names[:99]), "nope")}))
		if n := len(s.Alarms()); n != 152 {
			t.Fatalf("%d alarms after deleting 99", n)
		}

		// Validation.
		bad := []struct {
			name string
			in   *cloudwatch.DescribeAlarmsInput
			code string
		}{
			{"prefix and names", &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("p"), AlarmNames: []string{"x"}}, "InvalidParameterCombinationException"},
			{"max records", &cloudwatch.DescribeAlarmsInput{MaxRecords: aws.Int32(101)}, "InvalidParameterValueException"},
			{"token", &cloudwatch.DescribeAlarmsInput{NextToken: aws.String("!!")}, "InvalidNextToken"},
		}
		for _, b := range bad {
			_, err := cw.DescribeAlarms(ctx, b.in)
			wantCode(t, err, b.code)
		}
		putBad := []struct {
			name string
			mod  func(*cloudwatch.PutMetricAlarmInput)
			code string
		}{
			{"period", func(in *cloudwatch.PutMetricAlarmInput) { in.Period = aws.Int32(90) }, "InvalidParameterValueException"},
			{"window", func(in *cloudwatch.PutMetricAlarmInput) { in.EvaluationPeriods = aws.Int32(1441) }, "InvalidParameterValueException"},
			{"datapoints", func(in *cloudwatch.PutMetricAlarmInput) { in.DatapointsToAlarm = aws.Int32(3) }, "InvalidParameterValueException"},
			{"region", func(in *cloudwatch.PutMetricAlarmInput) {
				in.AlarmActions = []string{"arn:aws:automate:eu-west-1:ec2:recover"}
			}, "InvalidParameterValueException"},
			{"no instance", func(in *cloudwatch.PutMetricAlarmInput) { in.Dimensions = nil }, "InvalidParameterValueException"},
			{"statistic", func(in *cloudwatch.PutMetricAlarmInput) { in.Statistic = "" }, "MissingRequiredParameterException"},
			{"missing data", func(in *cloudwatch.PutMetricAlarmInput) { in.TreatMissingData = aws.String("sometimes") }, "InvalidParameterValueException"},
			{"name", func(in *cloudwatch.PutMetricAlarmInput) { in.AlarmName = nil }, "MissingRequiredParameterException"},
		}
		for _, b := range putBad {
			in := statusAlarm("v", "StatusCheckFailed_System", "i-00000000000000001", recoverARN)
			b.mod(in)
			_, err := cw.PutMetricAlarm(ctx, in)
			if err == nil {
				t.Fatalf("%s: accepted", b.name)
			}
			wantCode(t, err, b.code)
		}
		calls := s.Calls()
		if calls["cloudwatch:PutMetricAlarm"] != 252+len(putBad) || calls["cloudwatch:DeleteAlarms"] != 2 {
			t.Fatalf("calls: %v", calls)
		}
	})
}

func TestCloudWatchThrottling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		cw := s.CloudWatch()
		ctx := context.Background()
		ok, throttled := 0, 0
		for i := range 10 {
			_, err := cw.PutMetricAlarm(ctx, statusAlarm(fmt.Sprintf("a%d", i), "StatusCheckFailed_System", "i-00000000000000001", recoverARN))
			if err != nil {
				wantCode(t, err, "Throttling")
				throttled++
			} else {
				ok++
			}
		}
		// A burst of 3 a second.
		if ok != 3 || throttled != 7 || s.Throttled()["cloudwatch:PutMetricAlarm"] != 7 {
			t.Fatalf("ok %d throttled %d %v", ok, throttled, s.Throttled())
		}
		time.Sleep(time.Second)
		must(t)(cw.PutMetricAlarm(ctx, statusAlarm("later", "StatusCheckFailed_System", "i-00000000000000001", recoverARN)))
	})
}

func TestMaintenanceOptionsAndSimplifiedRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(fixedLatency)
		s.ConfigureRecovery(func(o *RecoveryOptions) {
			o.SimplifiedAutoRecovery = true
			o.SimplifiedDelay = Dist{Min: 3 * time.Minute, Max: 3 * time.Minute}
			o.RecoveryTime = Dist{Min: 2 * time.Minute, Max: 2 * time.Minute}
		})
		c := s.EC2()
		ctx := context.Background()
		ids := launch(t, c, runInput(3))
		disabledAtLaunch := launch(t, c, runInput(1, func(in *ec2.RunInstancesInput) {
			in.MaintenanceOptions = &types.InstanceMaintenanceOptionsRequest{AutoRecovery: types.InstanceAutoRecoveryStateDisabled}
		}))[0]
		i3 := launch(t, c, runInput(1, func(in *ec2.RunInstancesInput) { in.InstanceType = types.InstanceTypeI3Large }))[0]
		time.Sleep(2 * time.Minute)

		out, err := c.ModifyInstanceMaintenanceOptions(ctx, &ec2.ModifyInstanceMaintenanceOptionsInput{InstanceId: aws.String(ids[1]), AutoRecovery: types.InstanceAutoRecoveryStateDisabled})
		mustOK(t, err)
		if out.AutoRecovery != types.InstanceAutoRecoveryStateDisabled || aws.ToString(out.InstanceId) != ids[1] {
			t.Fatalf("modify output: %+v", out)
		}
		desc, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{ids[0], ids[1], disabledAtLaunch}})
		mustOK(t, err)
		var got []types.InstanceAutoRecoveryState
		for _, r := range desc.Reservations {
			for _, in := range r.Instances {
				got = append(got, in.MaintenanceOptions.AutoRecovery)
			}
		}
		if !slices.Equal(got, []types.InstanceAutoRecoveryState{"default", "disabled", "disabled"}) {
			t.Fatalf("MaintenanceOptions.AutoRecovery: %v", got)
		}
		_, err = c.ModifyInstanceMaintenanceOptions(ctx, &ec2.ModifyInstanceMaintenanceOptionsInput{InstanceId: aws.String(ids[2]), AutoRecovery: "sometimes"})
		wantCode(t, err, "InvalidParameterValue")
		_, err = c.ModifyInstanceMaintenanceOptions(ctx, &ec2.ModifyInstanceMaintenanceOptionsInput{InstanceId: aws.String("i-00000000000000bad")})
		wantCode(t, err, "InvalidInstanceID.NotFound")
		_, err = c.ModifyInstanceMaintenanceOptions(ctx, &ec2.ModifyInstanceMaintenanceOptionsInput{InstanceId: aws.String(ids[2]), AutoRecovery: "disabled", DryRun: aws.Bool(true)})
		wantCode(t, err, "DryRunOperation")

		for _, id := range []string{ids[0], ids[1], disabledAtLaunch, i3} {
			s.ImpairSystem(id)
		}
		s.ImpairInstance(ids[2]) // instance checks are not AWS's to recover
		time.Sleep(3*time.Minute + 2*time.Minute + time.Minute + time.Second)
		health := func(id string) bool { iv, _ := s.Instance(id); return iv.Healthy }
		if !health(ids[0]) || health(ids[1]) || health(disabledAtLaunch) || health(i3) || health(ids[2]) {
			t.Fatalf("after simplified recovery: %v %v %v %v %v (%+v)", health(ids[0]), health(ids[1]), health(disabledAtLaunch), health(i3), health(ids[2]), s.Recoveries())
		}
		recs := s.Recoveries()
		if len(recs) != 2 || recs[0].Mechanism != "simplified" || recs[0].InstanceID != ids[0] || recs[1].Outcome != "succeeded" {
			t.Fatalf("recoveries: %+v", recs)
		}
		if mo, ok := s.MaintenanceOptions(ids[1]); !ok || mo.AutoRecovery != "disabled" {
			t.Fatalf("MaintenanceOptions: %+v %v", mo, ok)
		}
		if s.Calls()["ec2:ModifyInstanceMaintenanceOptions"] != 4 {
			t.Fatalf("calls: %v", s.Calls())
		}
	})
}

func TestBothRecoveryMechanismsRecoverOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(fixedLatency)
		s.ConfigureRecovery(func(o *RecoveryOptions) {
			o.SimplifiedAutoRecovery = true
			o.SimplifiedDelay = Dist{Min: 150 * time.Second, Max: 150 * time.Second}
			o.RecoveryTime = Dist{Min: 5 * time.Minute, Max: 5 * time.Minute}
		})
		c, cw := s.EC2(), s.CloudWatch()
		id := launch(t, c, runInput(1))[0]
		time.Sleep(2 * time.Minute)
		must(t)(cw.PutMetricAlarm(context.Background(), statusAlarm("a", "StatusCheckFailed_System", id, recoverARN)))
		must(t)(cw.PutMetricAlarm(context.Background(), statusAlarm("b", "StatusCheckFailed_Instance", id, rebootARN)))
		time.Sleep(time.Minute)
		s.Impair(id) // both checks: the instance alarm reboots too, the recovery goes on
		time.Sleep(15 * time.Minute)
		var started int
		for _, r := range s.Recoveries() {
			if r.Outcome == "started" {
				started++
			}
		}
		if iv, _ := s.Instance(id); !iv.Healthy || started != 1 {
			t.Fatalf("healthy=%v, %d recoveries started: %+v", iv.Healthy, started, s.Recoveries())
		}
	})
}
