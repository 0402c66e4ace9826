package main

import (
	"bytes"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ec2ops/ec2ops/internal/exampleenv"
)

func opts(plan bool) options {
	return options{env: exampleenv.Flags{Plan: plan, Seed: 42, TimeScale: 1}, tags: exampleenv.TagsFlag{},
		maxSurge: "25%", canary: "1", bakeTime: 5 * time.Minute, fleet: 12}
}

func TestRolloutOnSimulator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		res, err := run(t.Context(), opts(false), nil, &out)
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
		if len(res.Replaced) != 12 {
			t.Fatalf("replaced %d, want 12\n%s", len(res.Replaced), out.String())
		}
		for old, nw := range res.Replaced {
			if old == nw || nw == "" {
				t.Errorf("%s -> %q", old, nw)
			}
		}
	})
}

func TestRolloutPlanOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		res, err := run(t.Context(), opts(true), nil, &out)
		if err != nil || res != nil {
			t.Fatalf("run: %v %v\n%s", res, err, out.String())
		}
		if !bytes.Contains(out.Bytes(), []byte("12 drifted")) {
			t.Errorf("output:\n%s", out.String())
		}
	})
}
