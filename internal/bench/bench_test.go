package bench

import (
	"flag"
	"fmt"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

var benchOut = flag.String("bench-out", "", "run the full-size scenarios and write BENCHMARKS.md to this path")

func TestBench(t *testing.T) {
	if *benchOut == "" && os.Getenv("EC2OPS_BENCH") == "" {
		t.Skip("full-size scenarios run with -bench-out=FILE or EC2OPS_BENCH=1 (make bench)")
	}
	var results []Result
	wall := map[string]time.Duration{}
	for _, sc := range Scenarios(1) {
		t.Run(sc.ID, func(t *testing.T) {
			start := time.Now()
			synctest.Test(t, func(t *testing.T) {
				r, err := sc.Run(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				results = append(results, r)
				fmt.Println(r.Line())
				t.Logf("lib: %s | naive: %s | naive bound %v (%s) makespan %v", r.Lib.Note, r.Naive.Note, r.Naive.Bound, r.Naive.BoundTerms, r.Naive.Makespan)
			})
			wall[sc.ID] = time.Since(start)
		})
	}
	if *benchOut != "" {
		md := Markdown(results, "make bench", wall)
		if err := os.WriteFile(*benchOut, []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBenchSmoke runs every scenario at a twentieth of its size (the same
// code as make bench) and checks the invariants that hold at any size: no
// orphans and nothing surfaced in S1-S5, capacity never below the fleet in
// the rollouts, a ratio of at least 1 (the bound is a lower bound).
func TestBenchSmoke(t *testing.T) {
	for _, sc := range Scenarios(20) {
		t.Run(sc.ID, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, err := sc.Run(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				t.Log(r.Line())
				if r.Lib.Bound > 0 && r.Lib.Ratio() < 1 {
					t.Errorf("makespan %v below the lower bound %v (%s)", r.Lib.Makespan, r.Lib.Bound, r.Lib.BoundTerms)
				}
				if r.Lib.Orphans != 0 || r.Lib.Surfaced != 0 {
					t.Errorf("orphans %d, surfaced throttles %d", r.Lib.Orphans, r.Lib.Surfaced)
				}
				if r.ID != "S6" && r.Lib.Failures != 0 {
					t.Errorf("failures %d", r.Lib.Failures)
				}
				if (r.ID == "S1" || r.ID == "S2" || r.ID == "S6") && r.Lib.MinHealthy < r.N {
					t.Errorf("healthy capacity dropped to %d of %d", r.Lib.MinHealthy, r.N)
				}
			})
		})
	}
}
