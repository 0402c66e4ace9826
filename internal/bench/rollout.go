package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ec2ops/ec2ops/internal/awserr"
	"github.com/ec2ops/ec2ops/internal/baseline"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/lifecycle"
)

// RolloutParams sizes a rolling-replacement scenario (S1, S2, S6).
type RolloutParams struct {
	ID, Title string
	N, K      int
	Seed      int64
	Faults    cloudsim.Faults
}

// rolloutSim builds the simulator and the fleet of a rollout scenario
// (tag app=web, OldAMI), settled.
func rolloutSim(ctx context.Context, p RolloutParams) (*cloudsim.Sim, []string, error) {
	sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = p.Seed; o.Faults = p.Faults })
	ids, err := launchFleet(ctx, sim, p.N, OldAMI, map[string]string{"app": "web"}, "fleet", 0)
	if err != nil {
		return nil, nil, err
	}
	settle(sim, ids)
	sim.TrackCapacity("web", nil)
	sim.ResetCounters()
	return sim, ids, nil
}

// Rollout measures a rolling replacement of N instances with K in flight:
// the library's Surge replacer driven by a Rollout (MaxSurge K, the whole
// API budget: RequestShare 1), then baseline.Rollout on a fresh simulator
// with the same seed. It must run inside a synctest bubble.
func Rollout(ctx context.Context, p RolloutParams) (Result, error) {
	res := Result{ID: p.ID, Title: p.Title, N: p.N,
		Params: fmt.Sprintf("N=%d instances (m5.large, 3 AZs, tag app=web) replaced from %s to %s, K=%d in flight (MaxSurge), seed %d, faults %+v; latencies: cloudsim defaults (pending->running 15-30 s, status checks 60-180 s)",
			p.N, OldAMI, NewAMI, p.K, p.Seed, p.Faults),
		Formula: "T >= max(Σ svc_i / K, max_i svc_i, (N - 1000)/2 s + min_i svc_i), where svc_i is the time from launch to healthy " +
			"(running and both status checks ok) the simulator drew for replacement i. A replacement occupies one of the K surge slots " +
			"at least from its launch until it is healthy, so K slots serve at most K·T slot-seconds in T (first term) and no slot " +
			"finishes before its own service time (second); every replacement needs one RunInstances resource token, the bucket holds " +
			"1,000 and refills 2 a second (full at the start), so the last launch cannot happen before (N-1000)/2 s and then needs at " +
			"least the shortest service time (third). Only successful replacements are counted (S6's failed launches occupy no slot)."}

	// The library.
	sim, ids, err := rolloutSim(ctx, p)
	if err != nil {
		return res, err
	}
	slots := recordSlots(sim)
	s := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{ImageID: NewAMI}, func(o *lifecycle.Options) { o.RequestShare = 1 })
	ro := lifecycle.NewRollout(s, lifecycle.Selector{Tags: map[string]string{"app": "web"}}, func(o *lifecycle.RolloutOptions) {
		o.MaxSurge = fmt.Sprint(p.K)
		o.MaxFailures = "100%" // S6 reports its failures; S1 and S2 must have none
	})
	start := time.Now()
	out, err := ro.Apply(ctx)
	res.Lib.Makespan = time.Since(start)
	var rerr *lifecycle.RolloutError
	replaced := map[string]string{}
	if out != nil {
		replaced = out.Replaced
	}
	switch {
	case errors.As(err, &rerr):
		res.Lib.Failures = len(rerr.Failed) + len(rerr.Pending)
		for _, e := range rerr.Failed {
			if awserr.IsThrottle(e) {
				res.Lib.Surfaced++
			}
		}
		if awserr.IsThrottle(rerr.Err) {
			res.Lib.Surfaced++
		}
	case err != nil:
		return res, fmt.Errorf("library rollout: %w", err)
	}
	res.Lib.Calls, res.Lib.Throttled = sim.Calls(), sum(sim.Throttled())
	res.Lib.MinHealthy = sim.MinHealthy("web")
	res.Lib.Orphans = orphans(sim, ids, func(v cloudsim.InstanceView) string { return v.Tags[lifecycle.TagReplaces] })
	res.Lib.Bound, res.Lib.BoundTerms = windowBound(served(slots, replaced), p.N, p.K)
	res.Lib.Done = len(replaced)
	res.Lib.Note = fmt.Sprintf("%d replaced, %d failed", len(replaced), res.Lib.Failures)

	// The baseline, same seed, same fleet.
	sim, ids, err = rolloutSim(ctx, p)
	if err != nil {
		return res, err
	}
	slots = recordSlots(sim)
	nr := baseline.Rollout(ctx, sim.EC2(), ids, p.K, NewAMI)
	res.Naive.Makespan = nr.Makespan
	res.Naive.Calls, res.Naive.Throttled = sim.Calls(), sum(sim.Throttled())
	res.Naive.Surfaced, res.Naive.Failures = nr.Surfaced, len(nr.Failed)
	res.Naive.MinHealthy = sim.MinHealthy("web")
	newToOld := map[string]string{}
	naiveReplaced := map[string]string{}
	for old, n := range nr.Replacements {
		newToOld[n] = old
		if nr.Failed[old] == nil {
			naiveReplaced[old] = n
		}
	}
	res.Naive.Orphans = orphans(sim, ids, func(v cloudsim.InstanceView) string { return newToOld[v.ID] })
	svc := served(slots, naiveReplaced)
	res.Naive.Done = len(naiveReplaced)
	res.Naive.Bound, res.Naive.BoundTerms = windowBound(svc, p.N, p.K)
	var sample string
	for old, e := range nr.Failed {
		sample = old + ": " + e.Error()
		break
	}
	res.Naive.Note = fmt.Sprintf("[%s] %d replaced, %d failed (waits are batch-synchronous: K at a time, each batch as slow as its slowest)", sample, nr.Replaced, len(nr.Failed))
	return res, nil
}

// served returns the service times of the replacements that serve.
func served(st *slotTimes, replaced map[string]string) []time.Duration {
	var out []time.Duration
	for _, n := range replaced {
		if d, ok := st.healthy[n]; ok {
			out = append(out, d)
		}
	}
	return out
}

// orphans counts instances launched during the run that are alive (not
// shutting down or terminated) but do not serve: a replacement whose old
// instance is also alive, or a second live replacement of the same old
// instance, or an instance launched for no known old one. replaces maps a
// launched instance to the old instance it replaces ("" if unknown).
func orphans(sim *cloudsim.Sim, fleet []string, replaces func(cloudsim.InstanceView) string) int {
	orig := map[string]bool{}
	for _, id := range fleet {
		orig[id] = true
	}
	alive := func(v cloudsim.InstanceView) bool { return v.State != "shutting-down" && v.State != "terminated" }
	vs := sim.Instances()
	oldAlive := map[string]bool{}
	for _, v := range vs {
		if orig[v.ID] && alive(v) {
			oldAlive[v.ID] = true
		}
	}
	n := 0
	serving := map[string]bool{}
	for _, v := range vs {
		if orig[v.ID] || !alive(v) {
			continue
		}
		old := replaces(v)
		if old == "" || oldAlive[old] || serving[old] {
			n++
			continue
		}
		serving[old] = true
	}
	return n
}
