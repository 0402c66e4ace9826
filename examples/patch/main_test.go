package main

import (
	"bytes"
	"testing"
	"testing/synctest"

	"github.com/ec2ops/ec2ops/internal/exampleenv"
)

func TestPatchOnSimulator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		o := options{env: exampleenv.Flags{Seed: 42, TimeScale: 1}, tags: exampleenv.TagsFlag{}, operation: "Install", waves: "25%,100%", canary: 1, fleet: 20}
		rep, err := run(t.Context(), o, nil, &out)
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
		if rep.Count("Patched") != 20 || len(rep.Waves) != 3 {
			t.Errorf("patched %d in %d waves\n%s", rep.Count("Patched"), len(rep.Waves), out.String())
		}
		for id, c := range rep.Compliance {
			if !c.Compliant() {
				t.Errorf("%s not compliant: %+v", id, c)
			}
		}
	})
}

func TestPatchPlanOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		o := options{env: exampleenv.Flags{Plan: true, Seed: 42, TimeScale: 1}, tags: exampleenv.TagsFlag{}, operation: "Install", waves: "100%", canary: 1, fleet: 6}
		rep, err := run(t.Context(), o, nil, &out)
		if err != nil || rep != nil {
			t.Fatalf("run: %v %v\n%s", rep, err, out.String())
		}
		if !bytes.Contains(out.Bytes(), []byte("3. ssm:SendCommand")) {
			t.Errorf("output:\n%s", out.String())
		}
	})
}
