package main

import (
	"bytes"
	"strings"
	"testing"
	"testing/synctest"
)

// TestQuickstart runs the example on the simulator in a synctest bubble at
// real simulated latencies (time scale 1): the fleet must all become
// healthy, and the poller must stay batched.
func TestQuickstart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		s, err := run(t.Context(), &out, config{Fleet: 200, Seed: 42, TimeScale: 1})
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
		if s.Launched != 200 || s.Healthy != 200 {
			t.Fatalf("launched %d, healthy %d, want 200/200", s.Launched, s.Healthy)
		}
		if got := s.Calls["ec2:RunInstances"]; got != 3 {
			t.Errorf("RunInstances calls = %d, want 3 (one per AZ)", got)
		}
		if s.Poll.Calls > 2*s.Poll.Ticks {
			t.Errorf("%d status calls in %d ticks: more than ceil(200/100) per tick", s.Poll.Calls, s.Poll.Ticks)
		}
		if got := s.Calls["ec2:DescribeInstanceStatus"]; got != s.Poll.Calls {
			t.Errorf("simulator counted %d DescribeInstanceStatus calls, poller %d", got, s.Poll.Calls)
		}
		for _, want := range []string{"launch: 200 instances in 3 RunInstances calls", "healthy [##############################] 200/200", "done: 200/200 instances healthy"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}
		t.Logf("\n%s", out.String())
	})
}
