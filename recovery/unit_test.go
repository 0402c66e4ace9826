package recovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"
	"go.uber.org/mock/gomock"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/recovery/recoverymock"
)

func apiErr(code string) error { return &smithy.GenericAPIError{Code: code, Message: code} }

func instance(id, itype string, mods ...func(*types.Instance)) types.Instance {
	in := types.Instance{InstanceId: aws.String(id), InstanceType: types.InstanceType(itype), VpcId: aws.String("vpc-1"),
		RootDeviceType: types.DeviceTypeEbs, State: &types.InstanceState{Name: types.InstanceStateNameRunning},
		MaintenanceOptions: &types.InstanceMaintenanceOptions{AutoRecovery: types.InstanceAutoRecoveryStateDefault}}
	for _, m := range mods {
		m(&in)
	}
	return in
}

func reservations(ins ...types.Instance) *ec2.DescribeInstancesOutput {
	return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: ins}}}
}

func typeInfoOut(names ...string) *ec2.DescribeInstanceTypesOutput {
	out := &ec2.DescribeInstanceTypesOutput{}
	for _, n := range names {
		store := strings.Contains(n, "d.") || strings.HasPrefix(n, "i3")
		out.InstanceTypes = append(out.InstanceTypes, types.InstanceTypeInfo{InstanceType: types.InstanceType(n),
			AutoRecoverySupported: aws.Bool(!store), InstanceStorageSupported: aws.Bool(store)})
	}
	return out
}

func id(n int) string { return fmt.Sprintf("i-%017x", n) }

func TestInstallerExactCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctrl := gomock.NewController(t)
		e := recoverymock.NewMockInstanceAPI(ctrl)
		cw := recoverymock.NewMockAlarmAPI(ctrl)
		inst := NewInstaller(e, cw, func(o *AlarmOptions) {
			o.Region = "eu-west-1"
			o.Prefix = "p-"
			o.NotifyTopicARNs = []string{"arn:aws:sns:eu-west-1:111122223333:ops"}
		})
		ids := []string{id(1), id(2), id(3)}
		e.EXPECT().DescribeInstances(gomock.Any(), gomock.Any()).DoAndReturn(func(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
			if in.MaxResults != nil || len(in.InstanceIds) != 0 || len(in.Filters) != 1 || aws.ToString(in.Filters[0].Name) != "instance-id" || !slices.Equal(in.Filters[0].Values, ids) {
				t.Errorf("DescribeInstances input %+v", in)
			}
			return reservations(instance(ids[0], "m5.large"), instance(ids[1], "m5.large"), instance(ids[2], "i3.large")), nil
		})
		e.EXPECT().DescribeInstanceTypes(gomock.Any(), &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"i3.large", "m5.large"}}).
			Return(typeInfoOut("i3.large", "m5.large"), nil)
		// Two pages of existing alarms: one current, one drifted, 150 stale.
		cur := DesiredAlarm(inst, ids[0])
		drifted := *DesiredAlarm(inst, ids[1])
		drifted.EvaluationPeriods = aws.Int32(3)
		toAlarm := func(in *cloudwatch.PutMetricAlarmInput) cwtypes.MetricAlarm {
			return cwtypes.MetricAlarm{AlarmName: in.AlarmName, AlarmArn: aws.String("arn:aws:cloudwatch:eu-west-1:111122223333:alarm:" + *in.AlarmName),
				AlarmDescription: in.AlarmDescription, Namespace: in.Namespace, MetricName: in.MetricName, Dimensions: in.Dimensions,
				Statistic: in.Statistic, Period: in.Period, EvaluationPeriods: in.EvaluationPeriods, DatapointsToAlarm: in.DatapointsToAlarm,
				Threshold: in.Threshold, ComparisonOperator: in.ComparisonOperator, TreatMissingData: in.TreatMissingData,
				ActionsEnabled: in.ActionsEnabled, AlarmActions: in.AlarmActions, OKActions: in.OKActions}
		}
		page1 := []cwtypes.MetricAlarm{toAlarm(cur), toAlarm(&drifted)}
		var page2 []cwtypes.MetricAlarm
		var stale []string
		for k := range 150 {
			name := fmt.Sprintf("p-%s-system-recover", id(100+k))
			stale = append(stale, name)
			page2 = append(page2, cwtypes.MetricAlarm{AlarmName: aws.String(name)})
		}
		gomock.InOrder(
			cw.EXPECT().DescribeAlarms(gomock.Any(), &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("p-"), MaxRecords: aws.Int32(100),
				AlarmTypes: []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm}}).Return(&cloudwatch.DescribeAlarmsOutput{MetricAlarms: page1, NextToken: aws.String("t1")}, nil),
			cw.EXPECT().DescribeAlarms(gomock.Any(), &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("p-"), MaxRecords: aws.Int32(100), NextToken: aws.String("t1"),
				AlarmTypes: []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm}}).Return(&cloudwatch.DescribeAlarmsOutput{MetricAlarms: page2}, nil),
		)
		plan, err := inst.Plan(context.Background(), Fleet{InstanceIDs: []string{ids[2], ids[0], ids[1], ids[0]}})
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Create) != 0 || len(plan.Update) != 1 || len(plan.Delete) != 150 || plan.Unchanged != 1 || len(plan.Unsupported) != 1 || plan.Mutations() != 4 {
			t.Fatalf("plan %+v", plan)
		}
		if d := plan.Update[0].Drift; len(d) != 1 || d[0] != "EvaluationPeriods 3 -> 2" {
			t.Fatalf("drift %v", d)
		}
		want := DesiredAlarm(inst, ids[1])
		if aws.ToString(want.AlarmName) != "p-"+ids[1]+"-system-recover" || want.AlarmActions[0] != "arn:aws:automate:eu-west-1:ec2:recover" ||
			want.AlarmActions[1] != "arn:aws:sns:eu-west-1:111122223333:ops" || aws.ToInt32(want.Period) != 60 || aws.ToInt32(want.EvaluationPeriods) != 2 ||
			want.Statistic != cwtypes.StatisticMaximum || aws.ToString(want.MetricName) != "StatusCheckFailed_System" ||
			aws.ToString(want.Tags[0].Key) != TagInstanceID || aws.ToString(want.Tags[1].Value) != "recovery" {
			t.Fatalf("desired alarm %+v", want)
		}
		gomock.InOrder(
			cw.EXPECT().PutMetricAlarm(gomock.Any(), want).Return(nil, apiErr("Throttling")),
			cw.EXPECT().PutMetricAlarm(gomock.Any(), want).Return(&cloudwatch.PutMetricAlarmOutput{}, nil),
			cw.EXPECT().TagResource(gomock.Any(), &cloudwatch.TagResourceInput{ResourceARN: aws.String("arn:aws:cloudwatch:eu-west-1:111122223333:alarm:" + *want.AlarmName), Tags: want.Tags}).
				Return(&cloudwatch.TagResourceOutput{}, nil),
			cw.EXPECT().DeleteAlarms(gomock.Any(), &cloudwatch.DeleteAlarmsInput{AlarmNames: stale[:100]}).Return(&cloudwatch.DeleteAlarmsOutput{}, nil),
			cw.EXPECT().DeleteAlarms(gomock.Any(), &cloudwatch.DeleteAlarmsInput{AlarmNames: stale[100:]}).Return(&cloudwatch.DeleteAlarmsOutput{}, nil),
		)
		if err := inst.Apply(context.Background(), plan); err != nil {
			t.Fatal(err)
		}
	})
}

func TestInstallerApplyErrors(t *testing.T) {
	ctrl := gomock.NewController(t)
	cw := recoverymock.NewMockAlarmAPI(ctrl)
	inst := NewInstaller(nil, cw, func(o *AlarmOptions) { o.Region = "us-east-1" })
	plan := &AlarmPlan{Create: []*cloudwatch.PutMetricAlarmInput{DesiredAlarm(inst, id(1)), DesiredAlarm(inst, id(2)), DesiredAlarm(inst, id(3))},
		Delete: []string{"x"}}
	gomock.InOrder(
		cw.EXPECT().PutMetricAlarm(gomock.Any(), plan.Create[0]).Return(nil, apiErr("InvalidParameterValueException")),
		cw.EXPECT().PutMetricAlarm(gomock.Any(), plan.Create[1]).Return(nil, apiErr("AccessDenied")),
	)
	err := inst.Apply(context.Background(), plan)
	var pe *ec2ops.ProgressError
	if !errors.As(err, &pe) || len(pe.Failed) != 2 || !slices.Equal(pe.Pending, []string{*plan.Create[2].AlarmName, "x"}) || len(pe.Done) != 0 {
		t.Fatalf("err %v %+v", err, pe)
	}
}

func TestDetectorReasonsAndUnknownTypes(t *testing.T) {
	ctrl := gomock.NewController(t)
	e := recoverymock.NewMockInstanceAPI(ctrl)
	d := NewDetector(e)
	ins := []types.Instance{
		instance(id(1), "m5.large", func(in *types.Instance) {
			in.NetworkInterfaces = []types.InstanceNetworkInterface{{NetworkInterfaceId: aws.String("eni-1"), InterfaceType: aws.String("efa")}}
		}),
		instance(id(2), "m5.large", func(in *types.Instance) { in.RootDeviceType = types.DeviceTypeInstanceStore; in.VpcId = nil }),
		instance(id(3), "zz9.huge"),
	}
	gomock.InOrder(
		e.EXPECT().DescribeInstanceTypes(gomock.Any(), &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"m5.large", "zz9.huge"}}).
			Return(nil, apiErr("InvalidInstanceType")),
		e.EXPECT().DescribeInstanceTypes(gomock.Any(), &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"m5.large"}}).Return(typeInfoOut("m5.large"), nil),
		e.EXPECT().DescribeInstanceTypes(gomock.Any(), &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"zz9.huge"}}).Return(nil, apiErr("InvalidInstanceType")),
	)
	sup, err := d.DetectInstances(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	codes := func(s Support) string {
		var c []string
		for _, r := range s.Reasons {
			c = append(c, string(r.Code))
		}
		return strings.Join(c, ",")
	}
	if codes(sup[0]) != "elastic-fabric-adapter" || codes(sup[1]) != "instance-store-root-device,not-in-vpc" || sup[1].EBSBacked ||
		codes(sup[2]) != "instance-type-unknown" || sup[0].Supported {
		t.Fatalf("%s | %s | %s", codes(sup[0]), codes(sup[1]), codes(sup[2]))
	}
	// Cached: no more calls.
	if _, err := d.DetectInstances(context.Background(), ins); err != nil {
		t.Fatal(err)
	}
	e.EXPECT().DescribeInstanceTypes(gomock.Any(), gomock.Any()).Return(nil, apiErr("UnauthorizedOperation"))
	if _, err := d.DetectInstances(context.Background(), []types.Instance{instance(id(4), "c5.large")}); err == nil || !strings.Contains(err.Error(), "UnauthorizedOperation") {
		t.Fatalf("err %v", err)
	}
}

func TestAutoRecoveryExactCalls(t *testing.T) {
	ctrl := gomock.NewController(t)
	e := recoverymock.NewMockMaintenanceAPI(ctrl)
	ar := NewAutoRecovery(e)
	e.EXPECT().DescribeInstances(gomock.Any(), &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("tag:Role"), Values: []string{"db"}}}, MaxResults: aws.Int32(1000)}).
		Return(reservations(instance(id(1), "m5.large"), instance(id(2), "m5.large", func(in *types.Instance) {
			in.MaintenanceOptions.AutoRecovery = types.InstanceAutoRecoveryStateDisabled
		})), nil)
	e.EXPECT().DescribeInstanceTypes(gomock.Any(), gomock.Any()).Return(typeInfoOut("m5.large"), nil)
	e.EXPECT().ModifyInstanceMaintenanceOptions(gomock.Any(), &ec2.ModifyInstanceMaintenanceOptionsInput{InstanceId: aws.String(id(1)), AutoRecovery: types.InstanceAutoRecoveryStateDisabled}).
		Return(&ec2.ModifyInstanceMaintenanceOptionsOutput{}, nil)
	p, err := ar.Set(context.Background(), Fleet{Filters: []types.Filter{{Name: aws.String("tag:Role"), Values: []string{"db"}}}}, types.InstanceAutoRecoveryStateDisabled)
	if err != nil || !slices.Equal(p.InstanceIDs, []string{id(1)}) || p.Steps[0].Action != "ec2:ModifyInstanceMaintenanceOptions" {
		t.Fatalf("%+v %v", p, err)
	}
}

// scripted is a fake fleet for the Watchdog: statuses changed by the test
// and by the remedies.
type scripted struct {
	mu   sync.Mutex
	st   map[string]types.InstanceStatus
	gone map[string]bool
}

func (s *scripted) set(id string, state types.InstanceStateName, sys, inst types.SummaryStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st[id] = types.InstanceStatus{InstanceId: aws.String(id), InstanceState: &types.InstanceState{Name: state},
		SystemStatus: &types.InstanceStatusSummary{Status: sys}, InstanceStatus: &types.InstanceStatusSummary{Status: inst}}
}

func TestWatchdogWithMocks(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		ctrl := gomock.NewController(t)
		e := recoverymock.NewMockWatchdogAPI(ctrl)
		rep := recoverymock.NewMockReplacer(ctrl)
		ok, bad := types.SummaryStatusOk, types.SummaryStatusImpaired
		run := types.InstanceStateNameRunning
		fake := &scripted{st: map[string]types.InstanceStatus{}, gone: map[string]bool{}}
		ids := []string{id(1), id(2), id(3)}
		for _, x := range ids {
			fake.set(x, run, ok, ok)
		}
		e.EXPECT().DescribeInstances(gomock.Any(), gomock.Any()).Return(reservations(instance(ids[0], "m5.large"), instance(ids[1], "m5.large"),
			instance(ids[2], "m5.large")), nil)
		e.EXPECT().DescribeInstanceTypes(gomock.Any(), gomock.Any()).Return(typeInfoOut("m5.large"), nil)
		e.EXPECT().DescribeInstanceStatus(gomock.Any(), gomock.Any()).AnyTimes().DoAndReturn(
			func(_ context.Context, in *ec2.DescribeInstanceStatusInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error) {
				if !aws.ToBool(in.IncludeAllInstances) || len(in.InstanceIds) > 100 {
					t.Errorf("status input %+v", in)
				}
				fake.mu.Lock()
				defer fake.mu.Unlock()
				out := &ec2.DescribeInstanceStatusOutput{}
				for _, x := range in.InstanceIds {
					if fake.gone[x] {
						return nil, apiErr("InvalidInstanceID.NotFound")
					}
					out.InstanceStatuses = append(out.InstanceStatuses, fake.st[x])
				}
				return out, nil
			})
		// ids[0]: instance check fails; the reboot does not help, nor does
		// stop/start; the replacement does.
		e.EXPECT().RebootInstances(gomock.Any(), &ec2.RebootInstancesInput{InstanceIds: []string{ids[0]}}).Return(&ec2.RebootInstancesOutput{}, nil)
		e.EXPECT().StopInstances(gomock.Any(), &ec2.StopInstancesInput{InstanceIds: []string{ids[0]}}).DoAndReturn(
			func(context.Context, *ec2.StopInstancesInput, ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error) {
				fake.set(ids[0], types.InstanceStateNameStopped, types.SummaryStatusNotApplicable, types.SummaryStatusNotApplicable)
				return &ec2.StopInstancesOutput{}, nil
			})
		e.EXPECT().StartInstances(gomock.Any(), &ec2.StartInstancesInput{InstanceIds: []string{ids[0]}}).DoAndReturn(
			func(context.Context, *ec2.StartInstancesInput, ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error) {
				fake.set(ids[0], run, ok, bad)
				return &ec2.StartInstancesOutput{}, nil
			})
		newID := id(9)
		rep.EXPECT().ReplaceInstance(gomock.Any(), ids[0]).DoAndReturn(func(context.Context, string) (string, error) {
			time.Sleep(3 * time.Minute)
			fake.set(newID, run, ok, ok)
			fake.mu.Lock()
			fake.gone[ids[0]] = true
			fake.mu.Unlock()
			return newID, nil
		})
		e.EXPECT().DescribeInstances(gomock.Any(), gomock.Any()).Return(reservations(instance(newID, "m5.large")), nil)

		rec := &ec2ops.Recorder{}
		w := NewWatchdog(e, rep, func(o *WatchdogOptions) {
			o.Observer = rec
			o.ActionTimeout = 5 * time.Minute
			o.MaxConcurrent = "1"
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- w.Run(ctx, Fleet{InstanceIDs: ids}) }()
		time.Sleep(time.Minute)
		fake.set(ids[0], run, ok, bad)
		// ids[1] flickers: impaired for less than the window, never acted on.
		fake.set(ids[1], run, ok, bad)
		time.Sleep(time.Minute)
		fake.set(ids[1], run, ok, ok)
		time.Sleep(40 * time.Minute)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
		st := w.Stats()
		var acts []string
		for _, a := range st.Actions {
			acts = append(acts, a.InstanceID[len(a.InstanceID)-1:]+":"+a.Action)
		}
		if !slices.Equal(acts, []string{"1:reboot", "1:stop-start", "1:replace"}) || st.Replaced != 1 || st.Failures != 2 || st.MaxInFlight != 1 {
			t.Fatalf("actions %v stats %+v", acts, st)
		}
		var phases []string
		for _, ev := range rec.Events() {
			if ev.Resource == ids[0] {
				phases = append(phases, ev.Phase)
			}
		}
		want := []string{"impaired", "reboot", "failed", "stop-start", "start", "impaired", "failed", "replace", "replaced"}
		if !slices.Equal(phases, want) {
			t.Fatalf("events %v, want %v", phases, want)
		}
	})
}

func TestWatchdogInvalidInput(t *testing.T) {
	w := NewWatchdog(nil, nil, func(o *WatchdogOptions) { o.MaxConcurrent = "ten" })
	err := w.Run(context.Background(), Fleet{InstanceIDs: []string{id(1)}})
	var ie *ec2ops.InputError
	if !errors.As(err, &ie) || ie.Field != "WatchdogOptions.MaxConcurrent" {
		t.Fatalf("err %v", err)
	}
	if err := NewWatchdog(nil, nil).Run(context.Background(), Fleet{}); !errors.Is(err, ec2ops.ErrInvalidInput) {
		t.Fatalf("err %v", err)
	}
}

func TestFromConfigConstructors(t *testing.T) {
	cfg := aws.Config{Region: "ap-southeast-2"}
	inst := NewInstallerFromConfig(cfg)
	if inst.opts.Region != "ap-southeast-2" || inst.actionARN("recover") != "arn:aws:automate:ap-southeast-2:ec2:recover" {
		t.Fatalf("region %q", inst.opts.Region)
	}
	if NewInstallerFromConfig(aws.Config{Region: "cn-north-1"}).actionARN("reboot") != "arn:aws-cn:automate:cn-north-1:ec2:reboot" {
		t.Fatal("partition")
	}
	// Bad input is reported before any call (there is no endpoint to call).
	if _, err := inst.Reconcile(context.Background(), Fleet{}); !errors.Is(err, ec2ops.ErrInvalidInput) {
		t.Fatalf("err %v", err)
	}
	if NewDetectorFromConfig(cfg) == nil || NewAutoRecoveryFromConfig(cfg) == nil || NewWatchdogFromConfig(cfg, nil) == nil {
		t.Fatal("nil")
	}
}
