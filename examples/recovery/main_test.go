package main

import (
	"bytes"
	"testing"
	"testing/synctest"

	"github.com/ec2ops/ec2ops/internal/exampleenv"
	"github.com/ec2ops/ec2ops/recovery"
)

func TestRecoveryOnSimulator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		o := options{env: exampleenv.Flags{Seed: 42, TimeScale: 1}, tags: exampleenv.TagsFlag{}, prefix: recovery.DefaultPrefix, fleet: 10}
		res, err := run(t.Context(), o, nil, &out)
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
		if len(res.plan.Create) != 10 || res.second.Mutations() != 0 || res.second.Unchanged != 10 {
			t.Errorf("create %d, second run %d mutations %d unchanged\n%s", len(res.plan.Create), res.second.Mutations(), res.second.Unchanged, out.String())
		}
		if !res.healthy || res.stats.Healed < 1 || len(res.stats.Actions) == 0 || res.stats.Actions[0].Action != recovery.ActionReboot {
			t.Errorf("impaired %s healthy=%v, stats %+v\n%s", res.impaired, res.healthy, res.stats, out.String())
		}
	})
}

func TestRecoveryPlanOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		o := options{env: exampleenv.Flags{Plan: true, Seed: 42, TimeScale: 1}, tags: exampleenv.TagsFlag{}, prefix: recovery.DefaultPrefix, fleet: 4}
		res, err := run(t.Context(), o, nil, &out)
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
		if len(res.plan.Create) != 4 || res.second != nil {
			t.Errorf("plan %+v, second %v", res.plan, res.second)
		}
	})
}
