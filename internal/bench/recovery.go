package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awserr"
	"github.com/ec2ops/ec2ops/internal/baseline"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/recovery"
)

// AlarmParams sizes the recovery scenario (S4).
type AlarmParams struct {
	ID, Title string
	N         int
	Seed      int64
}

func alarmSim(ctx context.Context, p AlarmParams) (*cloudsim.Sim, []string, error) {
	sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = p.Seed })
	ids, err := launchFleet(ctx, sim, p.N, OldAMI, map[string]string{"Role": "web"}, "fleet", 0)
	if err != nil {
		return nil, nil, err
	}
	settle(sim, ids)
	sim.TrackCapacity("web", nil)
	sim.ResetCounters()
	return sim, ids, nil
}

// mutating counts the calls that are not Describe*, List* or Get*.
func mutating(calls map[string]int) int {
	n := 0
	for k, v := range calls {
		op := k[strings.Index(k, ":")+1:]
		if !strings.HasPrefix(op, "Describe") && !strings.HasPrefix(op, "List") && !strings.HasPrefix(op, "Get") {
			n += v
		}
	}
	return n
}

// alarmState counts fleet instances without an alarm under prefix
// (failures) and alarms under prefix for instances not in the fleet
// (orphans).
func alarmState(sim *cloudsim.Sim, ids []string, prefix string) (missing, orphaned int) {
	fleet := map[string]bool{}
	for _, id := range ids {
		fleet[id] = true
	}
	have := map[string]bool{}
	for _, a := range sim.Alarms() {
		if !strings.HasPrefix(a.Name, prefix) {
			continue
		}
		if fleet[a.InstanceID] {
			have[a.InstanceID] = true
		} else {
			orphaned++
		}
	}
	return len(fleet) - len(have), orphaned
}

// Alarms measures recovery alarm reconcile for N instances from scratch,
// then a second run on the unchanged fleet: the library's
// Installer.Reconcile, then baseline.ReconcileAlarms on a fresh simulator
// with the same seed.
func Alarms(ctx context.Context, p AlarmParams) (Result, error) {
	res := Result{ID: p.ID, Title: p.Title, N: p.N,
		Params: fmt.Sprintf("N=%d running instances (tag Role=web), no alarms at the start; one recover alarm (StatusCheckFailed_System) per instance; then a second run on the unchanged fleet; seed %d; CloudWatch buckets PutMetricAlarm 3/s (burst 3), DescribeAlarms 9/s", p.N, p.Seed),
		Formula: "T >= (N - 3) / 3 s: N alarms need N PutMetricAlarm calls (the API creates one alarm a call), the bucket holds 3 and " +
			"refills 3 a second. The makespan and ratio are those of the first run; the second run must make no mutating call."}
	fleet := recovery.Fleet{Filters: []types.Filter{{Name: aws.String("tag:Role"), Values: []string{"web"}}}}
	bound := time.Duration(max(0, p.N-3)) * time.Second / 3
	terms := fmt.Sprintf("(N-3)/3 s = %.1f s", bound.Seconds())

	sim, ids, err := alarmSim(ctx, p)
	if err != nil {
		return res, err
	}
	inst := recovery.NewInstaller(sim.EC2(), sim.CloudWatch(), func(o *recovery.AlarmOptions) { o.Region = "us-east-1" })
	start := time.Now()
	_, err = inst.Reconcile(ctx, fleet)
	res.Lib.Makespan = time.Since(start)
	var perr *ec2ops.ProgressError
	switch {
	case errors.As(err, &perr):
		for _, e := range perr.Failed {
			if awserr.IsThrottle(e) {
				res.Lib.Surfaced++
			}
		}
	case err != nil:
		return res, fmt.Errorf("library reconcile: %w", err)
	}
	res.Lib.Calls, res.Lib.Throttled = sim.Calls(), sum(sim.Throttled())
	res.Lib.Failures, res.Lib.Orphans = alarmState(sim, ids, recovery.DefaultPrefix)
	res.Lib.Done = p.N - res.Lib.Failures
	res.Lib.MinHealthy = sim.MinHealthy("web")
	res.Lib.Bound, res.Lib.BoundTerms = bound, terms
	sim.ResetCounters()
	start = time.Now()
	plan2, err := inst.Reconcile(ctx, fleet)
	if err != nil {
		return res, fmt.Errorf("library second reconcile: %w", err)
	}
	second := sim.Calls()
	res.Lib.Note = fmt.Sprintf("second run: %d calls (%d mutating), %.1f s simulated, %d alarms unchanged", sum(second), mutating(second), time.Since(start).Seconds(), plan2.Unchanged)

	sim, ids, err = alarmSim(ctx, p)
	if err != nil {
		return res, err
	}
	nr := baseline.ReconcileAlarms(ctx, sim.EC2(), sim.CloudWatch(), "us-east-1", "Role", "web")
	res.Naive.Makespan = nr.Makespan
	res.Naive.Calls, res.Naive.Throttled = sim.Calls(), sum(sim.Throttled())
	res.Naive.Surfaced = nr.Surfaced
	res.Naive.Failures, res.Naive.Orphans = alarmState(sim, ids, baseline.AlarmPrefix)
	res.Naive.Done = p.N - res.Naive.Failures
	res.Naive.MinHealthy = sim.MinHealthy("web")
	res.Naive.Bound, res.Naive.BoundTerms = bound, terms
	sim.ResetCounters()
	n2 := baseline.ReconcileAlarms(ctx, sim.EC2(), sim.CloudWatch(), "us-east-1", "Role", "web")
	second = sim.Calls()
	res.Naive.Note = fmt.Sprintf("first run: %d put, %d failed; second run: %d calls (%d mutating), %.1f s simulated, %d failed",
		nr.Put, len(nr.Failed), sum(second), mutating(second), n2.Makespan.Seconds(), len(n2.Failed))
	return res, nil
}
