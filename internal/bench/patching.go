package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ec2ops/ec2ops/internal/awserr"
	"github.com/ec2ops/ec2ops/internal/baseline"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/patching"
)

// PatchParams sizes the patching scenario (S3).
type PatchParams struct {
	ID, Title string
	N         int
	Percent   int // MaxConcurrency in percent of N
	Seed      int64
}

var patchParams = map[string][]string{"Operation": {"Install"}, "RebootOption": {"RebootIfNeeded"}}

func patchSim(ctx context.Context, p PatchParams) (*cloudsim.Sim, []string, error) {
	sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = p.Seed })
	ids, err := launchFleet(ctx, sim, p.N, OldAMI, map[string]string{"Role": "web"}, "fleet", 0)
	if err != nil {
		return nil, nil, err
	}
	settle(sim, ids) // agents register 30-150 s after boot: all online by now
	sim.TrackCapacity("web", nil)
	sim.ResetCounters()
	return sim, ids, nil
}

// invocationBound is max(Σ d_i / K, max d_i) over the invocations of the
// commands, d_i from the moment the invocation took a MaxConcurrency slot
// (dispatch: delivery to the agent follows and holds the slot) to its end
// (reboot included), as the simulator drew them.
func invocationBound(sim *cloudsim.Sim, cmds []string, k int) (time.Duration, string) {
	var total, longest time.Duration
	for _, id := range cmds {
		v, _ := sim.Command(id)
		for _, iv := range v.Invocations {
			if iv.Start.IsZero() || iv.End.IsZero() {
				continue
			}
			from := iv.Dispatched
			if from.IsZero() {
				from = iv.Start
			}
			d := iv.End.Sub(from)
			total += d
			longest = max(longest, d)
		}
	}
	work := total / time.Duration(k)
	return max(work, longest), fmt.Sprintf("Σd/K = %.1f s, max d = %.1f s", work.Seconds(), longest.Seconds())
}

// Patch measures AWS-RunPatchBaseline (Install, RebootIfNeeded) on N
// instances at MaxConcurrency Percent%: the library's Runner, then
// baseline.Patch on a fresh simulator with the same seed.
func Patch(ctx context.Context, p PatchParams) (Result, error) {
	k := max(1, p.N*p.Percent/100)
	res := Result{ID: p.ID, Title: p.Title, N: p.N,
		Params: fmt.Sprintf("N=%d managed instances (tag Role=web), AWS-RunPatchBaseline Operation=Install RebootOption=RebootIfNeeded, MaxConcurrency %d%% (K=%d), MaxErrors 100%%, seed %d; latencies: cloudsim defaults (delivery 1-5 s, install 2-10 min, reboot 30-90 s plus agent reconnect 10-40 s)",
			p.N, p.Percent, k, p.Seed),
		Formula: "T >= max(Σ d_i / K, max_i d_i), where d_i is the time invocation i held one of the K MaxConcurrency slots " +
			"(from SSM dispatching it, through delivery to the agent and the run, to its end, reboot and reconnect included) " +
			"as the simulator drew it. At most K invocations may hold a slot at once, so K slots give at most K·T slot-seconds " +
			"in T; no invocation ends before its own duration. The time before the first dispatch (pre-flight, SendCommand) is " +
			"left out, so the bound is optimistic."}

	sim, _, err := patchSim(ctx, p)
	if err != nil {
		return res, err
	}
	start := time.Now()
	out, err := patching.NewRunner(sim.SSM()).Run(ctx, patching.Command{DocumentName: patching.DocRunPatchBaseline,
		Targets: []patching.Target{{Key: "tag:Role", Values: []string{"web"}}}, MaxConcurrency: fmt.Sprintf("%d%%", p.Percent), MaxErrors: "100%", Parameters: patchParams})
	res.Lib.Makespan = time.Since(start)
	var cerr *patching.CommandError
	if err != nil && !errors.As(err, &cerr) {
		return res, fmt.Errorf("library patching: %w", err)
	}
	if cerr != nil && awserr.IsThrottle(cerr.Err) {
		res.Lib.Surfaced++
	}
	res.Lib.Calls, res.Lib.Throttled = sim.Calls(), sum(sim.Throttled())
	res.Lib.Failures = len(out.Failed())
	res.Lib.Done = len(out.Invocations) - res.Lib.Failures
	res.Lib.Orphans = unfinished(sim, out.CommandIDs)
	res.Lib.MinHealthy = sim.MinHealthy("web")
	res.Lib.Bound, res.Lib.BoundTerms = invocationBound(sim, out.CommandIDs, k)
	peak := 0
	for _, id := range out.CommandIDs {
		v, _ := sim.Command(id)
		peak += v.PeakInFlight
	}
	res.Lib.Note = fmt.Sprintf("%d command(s); %d invocations collected; sum of per-command peaks in flight %d (K=%d)", len(out.CommandIDs), len(out.Invocations), peak, k)

	sim, ids, err := patchSim(ctx, p)
	if err != nil {
		return res, err
	}
	nr := baseline.Patch(ctx, sim.SSM(), ids, patching.DocRunPatchBaseline, patchParams, fmt.Sprintf("%d%%", p.Percent), "100%", 2*time.Hour)
	res.Naive.Makespan = nr.Makespan
	res.Naive.Calls, res.Naive.Throttled = sim.Calls(), sum(sim.Throttled())
	res.Naive.Surfaced, res.Naive.Failures, res.Naive.Done = nr.Surfaced, len(nr.Failed), nr.Succeeded
	res.Naive.Orphans = unfinished(sim, nr.CommandIDs)
	res.Naive.MinHealthy = sim.MinHealthy("web")
	res.Naive.Bound, res.Naive.BoundTerms = invocationBound(sim, nr.CommandIDs, k)
	res.Naive.Note = fmt.Sprintf("%d commands of 50 IDs, each MaxConcurrency %d%% of its own 50; one CommandExecuted waiter per instance", len(nr.CommandIDs), p.Percent)
	return res, nil
}

// unfinished counts invocations of cmds that are not finished (still
// pending or running after the run returned).
func unfinished(sim *cloudsim.Sim, cmds []string) int {
	n := 0
	for _, id := range cmds {
		v, _ := sim.Command(id)
		for _, iv := range v.Invocations {
			switch iv.Status {
			case "Pending", "InProgress", "Delayed":
				n++
			}
		}
	}
	return n
}
