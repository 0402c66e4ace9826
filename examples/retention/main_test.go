package main

import (
	"bytes"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ec2ops/ec2ops/internal/exampleenv"
)

func opts(plan bool) options {
	return options{env: exampleenv.Flags{Plan: plan, Seed: 42, TimeScale: 1}, family: "web", tag: "ec2ops:family=web", keep: 2,
		deprecateAfter: 30 * 24 * time.Hour, deregisterAfter: 90 * 24 * time.Hour}
}

func TestRetentionOnSimulator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		res, err := run(t.Context(), opts(false), nil, &out)
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
		want := map[string]string{
			"web-003d": "available", "web-020d": "available", // the 2 newest
			"web-045d": "available", // deprecated, still launchable
			"web-100d": "available", // past DeregisterAfter but in use: deprecated instead
			"web-200d": "deregistered",
		}
		for name, st := range want {
			if res.images[name] != st {
				t.Errorf("%s: %q, want %q\n%s", name, res.images[name], st, out.String())
			}
		}
	})
}

func TestRetentionPlanOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		res, err := run(t.Context(), opts(true), nil, &out)
		if err != nil || res.applied != nil || len(res.plan.Decisions) != 5 {
			t.Fatalf("run: %+v %v\n%s", res, err, out.String())
		}
	})
}
