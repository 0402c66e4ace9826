package main

import (
	"bytes"
	"strings"
	"testing"
	"testing/synctest"
)

// TestQuickstart runs the whole maintenance cycle on the simulator in a
// synctest bubble at real simulated latencies (time scale 1) and checks the
// outcome of every step.
func TestQuickstart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		s, err := run(t.Context(), &out, config{Fleet: 200, Seed: 42, TimeScale: 1})
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
		t.Logf("\n%s", out.String())
		if s.Recommendation == "" || s.NewImage == "" {
			t.Errorf("recommendation %q, new image %q", s.Recommendation, s.NewImage)
		}
		if s.Replaced != 200 || s.OnNewImage != 200 || s.Healthy != 200 {
			t.Errorf("replaced %d, on the new image %d, healthy %d; want 200 each", s.Replaced, s.OnNewImage, s.Healthy)
		}
		if s.MinHealthy < 200 {
			t.Errorf("healthy capacity dropped to %d during the rollout, want >= 200", s.MinHealthy)
		}
		if s.Alarms != 200 {
			t.Errorf("recover alarms = %d, want one per fleet instance (200)", s.Alarms)
		}
		if len(s.Impaired) != 4 || len(s.Recovered) < 4 {
			t.Errorf("impaired %v, recovered %v", s.Impaired, s.Recovered)
		}
		for _, id := range s.Impaired {
			if s.Recovered[id] == "" {
				t.Errorf("impaired %s: nothing brought it back", id)
			}
		}
		if s.Patched != 200 || s.Compliant != 200 {
			t.Errorf("patched %d, compliant %d, want 200", s.Patched, s.Compliant)
		}
		if s.ChefLayer != 100 || s.ChefWouldRun != 100 || s.ChefChanged != 100 {
			t.Errorf("chef layer %d, why-run %d, changed %d; want 100 each", s.ChefLayer, s.ChefWouldRun, s.ChefChanged)
		}
		if s.RetentionFirst != "deprecate" {
			t.Errorf("old image while in use: %q, want deprecate (in use, kept)", s.RetentionFirst)
		}
		if s.OldImageState != "deregistered" {
			t.Errorf("old image state %q, want deregistered", s.OldImageState)
		}
		if len(s.Violations) > 0 {
			t.Errorf("simulator invariants violated: %v", s.Violations)
		}
		for _, want := range []string{"1. Balancer", "7. Retention", "Summary ("} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q", want)
			}
		}
	})
}
