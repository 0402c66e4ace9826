package chaos

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/lifecycle"
	"github.com/ec2ops/ec2ops/recovery"
)

func init() {
	operations = append(operations,
		operation{"alarm-reconcile", chaosAlarms},
		operation{"watchdog", chaosWatchdog})
}

var webFleet = recovery.Fleet{Filters: []types.Filter{{Name: aws.String("tag:Role"), Values: []string{"web"}}}}

func newInstaller(sim *cloudsim.Sim) *recovery.Installer {
	return recovery.NewInstaller(sim.EC2(), sim.CloudWatch(), func(o *recovery.AlarmOptions) {
		o.Region = "us-east-1"
		o.InstanceCheckReboot = true
		o.Tags = map[string]string{"team": "web"}
	})
}

// chaosAlarms: recovery alarms for a fleet of 3-6 instances, with a stale
// alarm under the prefix, a foreign alarm outside it and an instance that
// leaves the fleet; the reconcile is cancelled at a random point and rerun
// until it finishes. The alarms under the prefix are then exactly the
// desired set (two per live instance), the foreign alarm is untouched, and
// another reconcile plans no mutation.
func chaosAlarms(t *testing.T, s *seedRun) {
	sim := s.sim
	ctx := context.Background()
	n := 3 + s.rng.IntN(4)
	ids := launchHealthy(t, s, n, types.InstanceTypeM5Large, map[string]string{"Role": "web"})
	inst := newInstaller(sim)
	stale := alarmInput(inst.AlarmName("i-0123456789abcdef0", "StatusCheckFailed_System"), "i-0123456789abcdef0")
	foreign := alarmInput("someone-elses-alarm", ids[0])
	for _, in := range []*cloudwatch.PutMetricAlarmInput{stale, foreign} {
		retry(t, "PutMetricAlarm", func() error { _, err := sim.CloudWatch().PutMetricAlarm(ctx, in); return err })
	}
	var err error
	for s.runs = 1; s.runs <= 20; s.runs++ {
		c, cancel := context.Background(), func() {}
		if s.runs == 1 {
			c, cancel = s.cancelCtx(20 * time.Second)
		}
		if s.runs == 2 { // the fleet changes between runs
			gone := ids[n-1]
			ids = ids[:n-1]
			retry(t, "TerminateInstances", func() error {
				_, err := sim.EC2().TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{gone}})
				return err
			})
			time.Sleep(2 * time.Minute)
		}
		_, err = newInstaller(sim).Reconcile(c, webFleet)
		cancel()
		if err == nil && s.runs > 1 {
			break
		}
		if err != nil && !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "cloudwatch") && !strings.Contains(err.Error(), "ec2") {
			s.violate("run %d: unexpected error %v", s.runs, err)
			return
		}
		time.Sleep(30 * time.Second)
	}
	if err != nil {
		s.violate("reconcile not finished after %d runs: %v", s.runs, err)
		return
	}
	var want, got []string
	for _, id := range ids {
		want = append(want, inst.AlarmName(id, "StatusCheckFailed_System"), inst.AlarmName(id, "StatusCheckFailed_Instance"))
	}
	foreignLeft := false
	for _, a := range sim.Alarms() {
		if a.Name == "someone-elses-alarm" {
			foreignLeft = true
			continue
		}
		got = append(got, a.Name)
	}
	sort.Strings(want)
	sort.Strings(got)
	if fmt.Sprint(want) != fmt.Sprint(got) {
		s.violate("alarms %v, want exactly %v", got, want)
	}
	if !foreignLeft {
		s.violate("the alarm outside the prefix was deleted")
	}
	var plan *recovery.AlarmPlan
	retry(t, "Plan", func() (err error) { plan, err = inst.Plan(ctx, webFleet); return err })
	if m := plan.Mutations(); m != 0 {
		s.violate("a converged fleet plans %d mutations", m)
	}
}

func alarmInput(name, id string) *cloudwatch.PutMetricAlarmInput {
	return &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String(name), Namespace: aws.String("AWS/EC2"),
		MetricName: aws.String("StatusCheckFailed_System"), Statistic: cwtypes.StatisticMaximum,
		Dimensions: []cwtypes.Dimension{{Name: aws.String("InstanceId"), Value: aws.String(id)}},
		Period:     aws.Int32(60), EvaluationPeriods: aws.Int32(2), Threshold: aws.Float64(1),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold}
}

// chaosWatchdog: a fleet of 4-6 instances, 1-2 of which fail (instance
// check, or host failure); the Watchdog, with lifecycle's Surge as its
// Replacer, runs, is cancelled at a random point, and a fresh one runs for
// an hour. Nothing is replaced twice, only failed instances are terminated
// (and only once a healthy replacement runs), and at the end the fleet is
// back to full healthy capacity.
func chaosWatchdog(t *testing.T, s *seedRun) {
	sim := s.sim
	n := 4 + s.rng.IntN(3)
	ids := launchHealthy(t, s, n, types.InstanceTypeM5Large, map[string]string{"Role": "web"})
	web := func(v cloudsim.InstanceView) bool { return v.Tags["Role"] == "web" }
	failed := map[string]bool{}
	k := 1 + s.rng.IntN(2)
	for _, i := range s.rng.Perm(n)[:k] {
		failed[ids[i]] = true
		if s.rng.IntN(2) == 0 {
			sim.ImpairInstance(ids[i])
		} else {
			sim.ImpairSystem(ids[i])
		}
	}
	replacementInvariants(sim, "web", web, n-k)
	sim.AddInvariant("only-failed", func(c cloudsim.Change, v *cloudsim.View) error {
		if c.Kind != cloudsim.ChangeState || (c.To != "shutting-down" && c.To != "stopping") {
			return nil
		}
		me, _ := v.Instance(c.InstanceID)
		if !web(me) || me.Tags[lifecycle.TagReplaces] != "" || failed[c.InstanceID] || s.impaired[c.InstanceID] {
			return nil
		}
		return fmt.Errorf("healthy instance %s %s", c.InstanceID, c.To)
	})
	newWatchdog := func() *recovery.Watchdog {
		sg := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{}, func(o *lifecycle.Options) { o.RequestShare = 1; o.Seed = uint64(s.seed) })
		return recovery.NewWatchdog(sim.EC2(), sg, func(o *recovery.WatchdogOptions) {
			o.MaxConcurrent = "2"
			o.RefreshInterval = time.Minute
		})
	}
	for s.runs = 1; s.runs <= 2; s.runs++ {
		d := 75 * time.Minute
		ctx, cancel := context.WithTimeout(context.Background(), d)
		if s.runs == 1 {
			ctx, cancel = s.cancelCtx(20 * time.Minute)
		}
		err := newWatchdog().Run(ctx, webFleet)
		cancel()
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			s.violate("run %d: Run returned %v", s.runs, err)
		}
	}
	s.runs = 2
	healthy := 0
	for _, v := range sim.Instances() {
		if web(v) && live(v) {
			if v.Healthy {
				healthy++
			} else {
				s.violate("instance %s left %s, status %s/%s", v.ID, v.State, v.SystemStatus, v.InstanceStatus)
			}
		}
	}
	if healthy != n {
		s.violate("healthy fleet %d at the end, want %d", healthy, n)
	}
}
