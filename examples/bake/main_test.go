package main

import (
	"bytes"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ec2ops/ec2ops/internal/exampleenv"
)

func TestBakeOnSimulator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		o := options{env: exampleenv.Flags{Seed: 42, TimeScale: 1}, name: "app-{date}-{bake}", family: "app", profile: "p", commands: []string{"true"}}
		res, err := run(t.Context(), o, nil, &out)
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
		if res.Image.State != "available" || res.Image.Tags["ec2ops:family"] != "app" {
			t.Fatalf("image %+v", res.Image)
		}
		time.Sleep(5 * time.Minute) // the builder shuts down
		if !strings.Contains(out.String(), "plan bake") || !strings.Contains(out.String(), "terminated") {
			t.Errorf("output:\n%s", out.String())
		}
	})
}

func TestBakePlanChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		o := options{env: exampleenv.Flags{Plan: true, Seed: 42, TimeScale: 1}, name: "app-{date}", family: "app", profile: "p", commands: []string{"true"}}
		res, err := run(t.Context(), o, nil, &out)
		if err != nil || res != nil {
			t.Fatalf("run: %v %v\n%s", res, err, out.String())
		}
		if !strings.Contains(out.String(), "ec2:CreateImage") {
			t.Errorf("plan lacks CreateImage:\n%s", out.String())
		}
	})
}

func TestBakeAWSNeedsRegion(t *testing.T) {
	_, err := run(t.Context(), options{env: exampleenv.Flags{AWS: true}, base: "ami-0123456789abcdef0"}, nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "-region") {
		t.Fatalf("err = %v, want -region required", err)
	}
}
