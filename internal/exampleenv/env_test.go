package exampleenv

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ec2ops/ec2ops"
)

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		f    Flags
		want string
	}{
		{Flags{AWS: true}, "-region"},
		{Flags{AWS: true, Region: "eu-west-1", Endpoint: "http://x"}, "-endpoint"},
		{Flags{TimeScale: 0}, "-timescale"},
	} {
		_, err := New(t.Context(), tc.f, nil, &bytes.Buffer{})
		if !errors.Is(err, ec2ops.ErrInvalidInput) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an InputError naming %s", tc.f, err, tc.want)
		}
	}
	e, err := New(t.Context(), Flags{Endpoint: "http://127.0.0.1:5000"}, nil, &bytes.Buffer{})
	if err != nil || e.Simulated() || e.Region != "us-east-1" || *e.Config.BaseEndpoint != "http://127.0.0.1:5000" {
		t.Fatalf("endpoint env: %+v, %v", e, err)
	}
}

func TestConfirm(t *testing.T) {
	plan := ec2ops.Plan{Operation: "x", Steps: []ec2ops.Step{{Action: "ec2:RunInstances"}}}
	for _, tc := range []struct {
		aws, yes bool
		input    string
		want     error
	}{
		{false, false, "", nil}, // simulator or endpoint: no prompt
		{true, true, "", nil},   // -yes
		{true, false, "y\n", nil},
		{true, false, "YES\n", nil},
		{true, false, "n\n", ErrDeclined},
		{true, false, "", ErrDeclined}, // EOF
	} {
		var out bytes.Buffer
		e := &Env{Flags: Flags{AWS: tc.aws, Yes: tc.yes}, In: strings.NewReader(tc.input), Out: &out, Region: "eu-west-1"}
		if err := e.Confirm(plan); err != tc.want {
			t.Errorf("aws=%v yes=%v input=%q: %v, want %v", tc.aws, tc.yes, tc.input, err, tc.want)
		}
		if prompted := strings.Contains(out.String(), "[y/N]"); prompted != (tc.aws && !tc.yes) {
			t.Errorf("aws=%v yes=%v: prompted=%v", tc.aws, tc.yes, prompted)
		}
	}
}

func TestProgressPlain(t *testing.T) {
	var out bytes.Buffer
	p := NewProgress(&out, false, nil)
	for i := 1; i <= 8; i++ {
		p.Observe(ec2ops.Event{Operation: "rollout", Phase: "replaced", Done: i, Total: 8})
		p.Observe(ec2ops.Event{Operation: "rollout", Phase: "terminate", Done: i, Total: 8})
	}
	p.Observe(ec2ops.Event{Operation: "rollout", Phase: "replace", Resource: "i-1", Err: errors.New("boom")})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	// first "replaced", first "terminate", then quarters 2/8, 4/8, 6/8, 8/8 and the error
	if len(lines) != 7 || !strings.Contains(lines[6], "boom") || strings.Contains(out.String(), "\x1b[") {
		t.Fatalf("plain output (%d lines):\n%s", len(lines), out.String())
	}
}

func TestProgressLive(t *testing.T) {
	var out bytes.Buffer
	p := NewProgress(&out, true, nil)
	p.RedrawEvery = 0
	p.Observe(ec2ops.Event{Operation: "a", Phase: "x", Done: 1, Total: 2})
	p.Observe(ec2ops.Event{Operation: "b", Phase: "y", Done: 1, Total: 2})
	p.Println("note")
	if !strings.Contains(out.String(), "\x1b[1A") || !strings.Contains(out.String(), "\x1b[2A\x1b[J") || !strings.Contains(out.String(), "note") {
		t.Fatalf("live output: %q", out.String())
	}
}
