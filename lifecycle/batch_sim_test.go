package lifecycle_test

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

	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/lifecycle"
)

// batchStats counts what the batch chaos runs exercised.
type batchStats struct {
	batchLaunched   int // replacements launched by a RunInstances call of several
	untaggedAtCrash int // batch-launched replacements left without ec2ops:replaces by a cancellation
	runs            int
}

// TestRolloutBatchResume runs Surge rollouts whose replacements launch in
// batches (fleets whose launch specs differ only in their Name tags and
// subnets, MaxSurge 50% or 100%), with faults (impaired boots, capacity refusals,
// throttling, server errors, eventual consistency), cancels the first runs
// at random points - half of them right after a batch's RunInstances call,
// before its members carry ec2ops:replaces - and runs again until the
// rollout finishes, with each journal kind. At every change: capacity
// never below the fleet, no duplicate launch, no wrong termination; at
// the end every instance is on the new image, healthy, tagged with the old
// instance it replaced and with that instance's own Name, nothing orphaned.
func TestRolloutBatchResume(t *testing.T) {
	seeds := 20
	if testing.Short() {
		seeds = 6
	}
	var st batchStats
	for _, kind := range []string{"none", "memory", "file"} {
		for seed := 1; seed <= seeds; seed++ {
			t.Run(fmt.Sprintf("%s/seed%d", kind, seed), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { batchChaos(t, int64(seed), kind, &st) })
			})
		}
	}
	t.Logf("%d runs, %d replacements launched in batches, %d left untagged by a cancellation and resumed", st.runs, st.batchLaunched, st.untaggedAtCrash)
	if st.batchLaunched == 0 || st.untaggedAtCrash == 0 {
		t.Fatalf("batching not exercised: %+v", st)
	}
}

func batchChaos(t *testing.T, seed int64, kind string, st *batchStats) {
	sim := cloudsim.New(func(o *cloudsim.Options) {
		o.Seed = seed
		o.Faults = cloudsim.Faults{ImpairedRate: 0.05, CapacityRate: 0.05, ThrottleRate: 0.02, ServerErrorRate: 0.01, EventualConsistency: 5 * time.Second}
	})
	rng := newRand(seed)
	n := 12 + rng.IntN(7)
	ids := fleet(t, sim, n)
	names := map[string]string{}
	for _, id := range ids {
		iv, _ := sim.Instance(id)
		names[id] = iv.Tags["Name"]
	}
	capacityFloor(sim, n)
	var journal lifecycle.Journal
	switch kind {
	case "memory":
		journal = lifecycle.NewMemoryJournal()
	case "file":
		fj, err := lifecycle.OpenFileJournal(t.TempDir() + "/journal.jsonl")
		if err != nil {
			t.Fatal(err)
		}
		defer fj.Close()
		journal = fj
	}
	// Cancel right after the k-th batch-launched instance appears.
	var (
		mu              sync.Mutex
		crash           func()
		launchedInBatch int
	)
	setCrash := func(f func()) { mu.Lock(); crash = f; mu.Unlock() }
	k := 1 + rng.IntN(6)
	sim.OnChange(func(c cloudsim.Change, v *cloudsim.View) {
		if c.Kind != cloudsim.ChangeState || c.From != "" {
			return
		}
		if me, ok := v.Instance(c.InstanceID); ok && me.Tags[lifecycle.TagBatch] != "" {
			mu.Lock()
			defer mu.Unlock()
			launchedInBatch++
			if launchedInBatch == k && crash != nil {
				crash()
			}
		}
	})
	newRollout := func() *lifecycle.Rollout {
		s := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{ImageID: newAMI}, fast, func(o *lifecycle.Options) { o.Seed = uint64(seed) })
		return lifecycle.NewRollout(s, lifecycle.Selector{Tags: map[string]string{"app": "web"}}, func(o *lifecycle.RolloutOptions) {
			o.MaxSurge = []string{"50%", "100%"}[seed%2]
			o.MaxFailures = "2"
			o.Journal = journal
		})
	}
	var err error
	runs := 0
	for runs = 1; runs <= 30; runs++ {
		ctx, cancel := context.WithCancel(context.Background())
		switch {
		case runs == 1 && seed%2 == 1:
			setCrash(cancel)
		case runs <= 3:
			time.AfterFunc(time.Duration(rng.Int64N(int64(20*time.Minute))), cancel)
		}
		_, err = newRollout().Apply(ctx)
		cancel()
		setCrash(nil)
		for _, iv := range sim.Instances() {
			if iv.Tags[lifecycle.TagBatch] != "" && iv.Tags[lifecycle.TagReplaces] == "" && iv.State != "terminated" && iv.State != "shutting-down" {
				st.untaggedAtCrash++
			}
		}
		if err == nil {
			break
		}
		var re *lifecycle.RolloutError
		if !errors.As(err, &re) && !errors.Is(err, context.Canceled) {
			t.Fatalf("run %d: unexpected error %v", runs, err)
		}
		time.Sleep(time.Minute)
	}
	st.runs += runs
	mu.Lock()
	st.batchLaunched += launchedInBatch
	mu.Unlock()
	if err != nil {
		t.Fatalf("not finished after %d runs: %v", runs, err)
	}
	time.Sleep(10 * time.Minute)
	if v := sim.Violations(); len(v) > 0 {
		t.Fatalf("%d violations, first: %v", len(v), v[:min(3, len(v))])
	}
	var got, want []string
	for _, id := range ids {
		want = append(want, names[id])
	}
	for _, iv := range sim.Instances() {
		if iv.State == "terminated" || iv.Tags["app"] != "web" {
			continue
		}
		old := iv.Tags[lifecycle.TagReplaces]
		if iv.ImageID != newAMI || !iv.Healthy || old == "" || iv.Tags["Name"] != names[old] || iv.Tags[lifecycle.TagSpec] == "" {
			t.Errorf("left over or mistagged: %s %s %s healthy=%v tags %v", iv.ID, iv.State, iv.ImageID, iv.Healthy, iv.Tags)
		}
		got = append(got, iv.Tags["Name"])
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("web instances at the end named %s, want %s", strings.Join(got, ","), strings.Join(want, ","))
	}
	plan, perr := newRollout().Plan(context.Background())
	if perr != nil || len(plan.Drifted) != 0 {
		t.Fatalf("after the rollout: %v drifted, err %v", plan, perr)
	}
}
