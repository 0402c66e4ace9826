package recovery_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/recovery"
)

// The simulator stands behind every interface of the package.
var (
	_ recovery.InstanceAPI    = (*cloudsim.EC2)(nil)
	_ recovery.MaintenanceAPI = (*cloudsim.EC2)(nil)
	_ recovery.WatchdogAPI    = (*cloudsim.EC2)(nil)
	_ recovery.AlarmAPI       = (*cloudsim.CloudWatch)(nil)
)

const testAMI = "ami-0123456789abcdef0"

// launchFleet launches n instances of each type, tagged Role=web, and
// returns their IDs in launch order.
func launchFleet(t testing.TB, sim *cloudsim.Sim, n int, itypes ...types.InstanceType) []string {
	t.Helper()
	var ids []string
	for _, it := range itypes {
		for left := n; left > 0; left -= 500 {
			k := int32(min(left, 500))
			out, err := sim.EC2().RunInstances(context.Background(), &ec2.RunInstancesInput{
				ImageId: aws.String(testAMI), InstanceType: it, MinCount: aws.Int32(k), MaxCount: aws.Int32(k),
				TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance,
					Tags: []types.Tag{{Key: aws.String("Role"), Value: aws.String("web")}}}},
			})
			if err != nil {
				t.Fatalf("RunInstances: %v", err)
			}
			for _, x := range out.Instances {
				ids = append(ids, aws.ToString(x.InstanceId))
			}
		}
	}
	return ids
}

var webFleet = recovery.Fleet{Filters: []types.Filter{{Name: aws.String("tag:Role"), Values: []string{"web"}}}}

func mutating(calls map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range calls {
		op := k[strings.Index(k, ":")+1:]
		if !strings.HasPrefix(op, "Describe") && !strings.HasPrefix(op, "List") && !strings.HasPrefix(op, "Get") {
			out[k] = v
		}
	}
	return out
}

func TestInstallerReconcilesOnSimulator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.DisableThrottling = true })
		ids := launchFleet(t, sim, 5, types.InstanceTypeM5Large, types.InstanceTypeI3Large)
		time.Sleep(5 * time.Minute)
		sim.ResetCounters()
		rec := &ec2ops.Recorder{}
		inst := recovery.NewInstaller(sim.EC2(), sim.CloudWatch(), func(o *recovery.AlarmOptions) {
			o.Region = "us-east-1"
			o.InstanceCheckReboot = true
			o.NotifyTopicARNs = []string{"arn:aws:sns:us-east-1:123456789012:ops"}
			o.Tags = map[string]string{"team": "web"}
			o.Observer = rec
		})
		plan, err := inst.Plan(context.Background(), webFleet)
		if err != nil {
			t.Fatal(err)
		}
		if len(mutating(sim.Calls())) != 0 {
			t.Fatalf("Plan made mutating calls: %v", sim.Calls())
		}
		// 5 m5.large: system + instance alarm; 5 i3.large: instance alarm only.
		if len(plan.Create) != 15 || len(plan.Unsupported) != 5 || len(plan.Steps) != 15 {
			t.Fatalf("plan: %d creates, %d unsupported, %d steps\n%s", len(plan.Create), len(plan.Unsupported), len(plan.Steps), plan)
		}
		for _, u := range plan.Unsupported {
			if u.InstanceType != "i3.large" || len(u.Reasons) != 2 || u.Reasons[0].Code != recovery.ReasonTypeUnsupported || u.Reasons[1].Code != recovery.ReasonInstanceStore {
				t.Fatalf("unsupported: %+v", u)
			}
		}
		if err := inst.Apply(context.Background(), plan); err != nil {
			t.Fatal(err)
		}
		alarms := sim.Alarms()
		if len(alarms) != 15 {
			t.Fatalf("%d alarms", len(alarms))
		}
		for _, a := range alarms {
			if a.Tags["ec2ops:managed-by"] != "recovery" || a.Tags["ec2ops:instance-id"] != a.InstanceID || a.Tags["team"] != "web" {
				t.Fatalf("alarm tags: %+v", a)
			}
		}
		if got := inst.AlarmName(ids[0], "StatusCheckFailed_System"); !slices.ContainsFunc(alarms, func(a cloudsim.AlarmView) bool { return a.Name == got }) {
			t.Fatalf("no alarm %s", got)
		}

		// Second run on the unchanged fleet: no mutating call.
		sim.ResetCounters()
		plan2, err := inst.Reconcile(context.Background(), webFleet)
		if err != nil {
			t.Fatal(err)
		}
		if m := mutating(sim.Calls()); len(m) != 0 || plan2.Unchanged != 15 || plan2.Mutations() != 0 {
			t.Fatalf("second run: mutating %v, unchanged %d", m, plan2.Unchanged)
		}

		// Drift, a terminated instance, a foreign alarm outside the prefix.
		in := cloudsimAlarmInput(ids[1])
		if _, err := sim.CloudWatch().PutMetricAlarm(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		if _, err := sim.EC2().TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: ids[2:3]}); err != nil {
			t.Fatal(err)
		}
		sim.ResetCounters()
		plan3, err := inst.Reconcile(context.Background(), webFleet)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan3.Update) != 1 || !strings.Contains(strings.Join(plan3.Update[0].Drift, ";"), "Period 300 -> 60") ||
			len(plan3.Delete) != 2 || len(plan3.Create) != 0 {
			t.Fatalf("third plan:\n%s%+v", plan3, plan3.Update)
		}
		calls := sim.Calls()
		if calls["cloudwatch:PutMetricAlarm"] != 1 || calls["cloudwatch:TagResource"] != 1 || calls["cloudwatch:DeleteAlarms"] != 1 {
			t.Fatalf("third run calls: %v", calls)
		}
		if n := len(sim.Alarms()); n != 13 {
			t.Fatalf("%d alarms after the third run", n)
		}
		if uncovered := inst.Policy().Uncovered(calls); len(uncovered) != 0 {
			t.Fatalf("calls outside Policy(): %v", uncovered)
		}
		var phases []string
		for _, e := range rec.Events() {
			phases = append(phases, e.Phase)
		}
		if !slices.Contains(phases, "create") || !slices.Contains(phases, "done") {
			t.Fatalf("events: %v", phases)
		}
	})
}

func cloudsimAlarmInput(id string) *cloudwatch.PutMetricAlarmInput {
	in := recovery.NewInstaller(nil, nil, func(o *recovery.AlarmOptions) {
		o.Region = "us-east-1"
		o.InstanceCheckReboot = true
		o.NotifyTopicARNs = []string{"arn:aws:sns:us-east-1:123456789012:ops"}
		o.Tags = map[string]string{"team": "web"}
	})
	p := recovery.DesiredAlarm(in, id)
	p.Period = aws.Int32(300)
	return p
}

func TestInstallerInvalidInput(t *testing.T) {
	sim := cloudsim.New()
	cases := []struct {
		name  string
		opt   func(*recovery.AlarmOptions)
		fleet recovery.Fleet
		field string
	}{
		{"region", func(o *recovery.AlarmOptions) {}, webFleet, "AlarmOptions.Region"},
		{"period", func(o *recovery.AlarmOptions) { o.Region = "us-east-1"; o.Period = 30 }, webFleet, "AlarmOptions.Period"},
		{"topics", func(o *recovery.AlarmOptions) {
			o.Region = "us-east-1"
			o.NotifyTopicARNs = []string{"a", "b", "c", "d", "e"}
		}, webFleet, "AlarmOptions.NotifyTopicARNs"},
		{"topic arn", func(o *recovery.AlarmOptions) { o.Region = "us-east-1"; o.NotifyTopicARNs = []string{"ops"} }, webFleet, "AlarmOptions.NotifyTopicARNs[0]"},
		{"tag", func(o *recovery.AlarmOptions) { o.Region = "us-east-1"; o.Tags = map[string]string{"aws:x": "y"} }, webFleet, "AlarmOptions.Tags"},
		{"empty fleet", func(o *recovery.AlarmOptions) { o.Region = "us-east-1" }, recovery.Fleet{}, "fleet"},
		{"bad id", func(o *recovery.AlarmOptions) { o.Region = "us-east-1" }, recovery.Fleet{InstanceIDs: []string{"web-1"}}, "fleet.InstanceIDs[0]"},
	}
	for _, c := range cases {
		_, err := recovery.NewInstaller(sim.EC2(), sim.CloudWatch(), c.opt).Reconcile(context.Background(), c.fleet)
		var ie *ec2ops.InputError
		if !errors.As(err, &ie) || ie.Field != c.field || ie.Fix == "" {
			t.Errorf("%s: err %v, want InputError on %s", c.name, err, c.field)
		}
	}
	if n := sim.TotalCalls(); n != 0 {
		t.Fatalf("invalid input made %d calls", n)
	}
}

func TestDetectorOnSimulator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.DisableThrottling = true })
		ids := launchFleet(t, sim, 2, types.InstanceTypeM5Large, types.InstanceTypeM5dLarge, types.InstanceTypeMac1Metal)
		out, err := sim.EC2().RunInstances(context.Background(), &ec2.RunInstancesInput{ImageId: aws.String(testAMI), InstanceType: types.InstanceTypeC5Large,
			MinCount: aws.Int32(1), MaxCount: aws.Int32(1), Placement: &types.Placement{Tenancy: types.TenancyHost, HostId: aws.String("h-0123456789abcdef0")}})
		if err != nil {
			t.Fatal(err)
		}
		host := aws.ToString(out.Instances[0].InstanceId)
		sim.ResetCounters()
		d := recovery.NewDetector(sim.EC2())
		sup, err := d.Detect(context.Background(), recovery.Fleet{InstanceIDs: append(slices.Clone(ids), host, "i-0000000000000dead")})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, s := range sup {
			var codes []string
			for _, r := range s.Reasons {
				codes = append(codes, string(r.Code))
			}
			got[s.InstanceType+"/"+fmt.Sprint(s.Supported)] = strings.Join(codes, ",")
		}
		want := map[string]string{
			"m5.large/true":    "",
			"m5d.large/false":  "instance-type-unsupported,instance-store-volumes",
			"mac1.metal/false": "instance-type-unsupported",
			"c5.large/false":   "dedicated-host-tenancy",
			"/false":           "instance-not-found",
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("support:\n got %v\nwant %v", got, want)
		}
		// Types are cached: a second Detect describes no type.
		before := sim.Calls()["ec2:DescribeInstanceTypes"]
		if _, err := d.Detect(context.Background(), webFleet); err != nil {
			t.Fatal(err)
		}
		if n := sim.Calls()["ec2:DescribeInstanceTypes"]; n != before || before != 1 {
			t.Fatalf("DescribeInstanceTypes calls %d then %d", before, n)
		}
		if u := d.Policy().Uncovered(sim.Calls()); len(u) != 0 {
			t.Fatalf("uncovered: %v", u)
		}
	})
}

func TestAutoRecoveryOnSimulator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.DisableThrottling = true })
		ids := launchFleet(t, sim, 3, types.InstanceTypeM5Large, types.InstanceTypeI3Large)
		time.Sleep(3 * time.Minute)
		ar := recovery.NewAutoRecovery(sim.EC2())
		ctx := context.Background()
		plan, err := ar.Set(ctx, webFleet, types.InstanceAutoRecoveryStateDisabled)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.InstanceIDs) != 6 {
			t.Fatalf("disable plan: %v", plan.InstanceIDs)
		}
		rep, err := ar.Report(ctx, webFleet)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep {
			if r.AutoRecovery != types.InstanceAutoRecoveryStateDisabled || r.Effective {
				t.Fatalf("after disable: %+v", r)
			}
		}
		// Back to default: only the supported instances change.
		plan, err = ar.Set(ctx, webFleet, types.InstanceAutoRecoveryStateDefault)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(plan.InstanceIDs, slices.Sorted(slices.Values(ids[:3]))) {
			t.Fatalf("default plan %v, want the m5.large %v", plan.InstanceIDs, ids[:3])
		}
		rep, _ = ar.Report(ctx, webFleet)
		eff := 0
		for _, r := range rep {
			if r.Effective {
				eff++
			}
		}
		if eff != 3 {
			t.Fatalf("%d effective", eff)
		}
		sim.ResetCounters()
		if p, err := ar.Set(ctx, webFleet, types.InstanceAutoRecoveryStateDefault); err != nil || len(p.InstanceIDs) != 0 {
			t.Fatalf("rerun: %v %v", p, err)
		}
		if m := mutating(sim.Calls()); len(m) != 0 {
			t.Fatalf("rerun mutated: %v", m)
		}
		if _, err := ar.Plan(ctx, webFleet, "sometimes"); err == nil {
			t.Fatal("bad state accepted")
		}
	})
}
