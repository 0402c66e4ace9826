package main

import (
	"bytes"
	"testing"
	"testing/synctest"

	"github.com/ec2ops/ec2ops/internal/exampleenv"
	"github.com/ec2ops/ec2ops/opsworks"
)

func opts(plan bool) options {
	return options{env: exampleenv.Flags{Plan: plan, Seed: 42, TimeScale: 1}, tags: exampleenv.TagsFlag{}, layer: "web",
		runList: "nginx::default,shop::deploy", source: "https://s3.amazonaws.com/b/c.tar.gz", event: "Deploy", fleet: 8}
}

func TestConfigureOnSimulator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		res, err := run(t.Context(), opts(false), nil, &out)
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
		if res.layerSize != 4 || res.dry.Count(opsworks.WouldChange) != 4 || res.real.Count(opsworks.Changed) != 4 {
			t.Errorf("layer %d, why-run %d, changed %d\n%s", res.layerSize, res.dry.Count(opsworks.WouldChange), res.real.Count(opsworks.Changed), out.String())
		}
	})
}

func TestConfigurePlanOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		res, err := run(t.Context(), opts(true), nil, &out)
		if err != nil || res.dry != nil || res.layerSize != 4 {
			t.Fatalf("run: %+v %v\n%s", res, err, out.String())
		}
	})
}
