package ec2ops

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestInputError(t *testing.T) {
	err := fmt.Errorf("rollout: %w", InvalidInput("Options.MaxUnavailable", "150%", "is above 100%", "use a count or a percentage in 0-100%"))
	if !errors.Is(err, ErrInvalidInput) {
		t.Fatal("InputError does not match ErrInvalidInput")
	}
	var ie *InputError
	if !errors.As(err, &ie) || ie.Field != "Options.MaxUnavailable" {
		t.Fatalf("errors.As: %v", err)
	}
	want := `rollout: invalid Options.MaxUnavailable "150%": is above 100%; use a count or a percentage in 0-100%`
	if err.Error() != want {
		t.Fatalf("got %q\nwant %q", err.Error(), want)
	}
}

func TestProgressError(t *testing.T) {
	cause := errors.New("capacity")
	err := &ProgressError{Operation: "rollout", Done: []string{"i-1"}, Failed: map[string]error{"i-2": cause}, Pending: []string{"i-3", "i-4"}, Err: cause}
	if !errors.Is(err, cause) {
		t.Fatal("ProgressError does not unwrap to its cause")
	}
	if got := err.Error(); got != "rollout stopped: 1 done, 1 failed, 2 pending: capacity" {
		t.Fatal(got)
	}
}

func TestPlan(t *testing.T) {
	p := Plan{Operation: "bake", Steps: []Step{
		{Action: "ec2:RunInstances", Resources: []string{"builder"}, Reason: "launch the builder"},
		{Action: "ec2:CreateImage", Resources: []string{"i-1"}},
		{Action: "ec2:RunInstances", Resources: []string{"builder-2"}},
	}}
	if got := strings.Join(p.Actions(), ","); got != "ec2:CreateImage,ec2:RunInstances" {
		t.Fatalf("Actions() = %s", got)
	}
	s := p.String()
	if !strings.Contains(s, "plan bake: 3 step(s)") || !strings.Contains(s, "1. ec2:RunInstances builder (launch the builder)") {
		t.Fatalf("String():\n%s", s)
	}
}

func TestEmit(t *testing.T) {
	Emit(nil, Event{Phase: "x"}) // a nil observer discards
	var r Recorder
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	Emit(&r, Event{Phase: "a", Time: at})
	Emit(ObserverFunc(r.Observe), Event{Phase: "b"})
	ev := r.Events()
	if len(ev) != 2 || ev[0].Phase != "a" || !ev[0].Time.Equal(at) || ev[1].Time.IsZero() {
		t.Fatalf("events = %+v", ev)
	}
}

func TestPolicy(t *testing.T) {
	p := NewPolicy(
		Statement{Sid: "Launch", Action: []string{"ec2:RunInstances", "ec2:CreateTags"}},
		Statement{Sid: "Read", Action: []string{"ec2:DescribeInstances", "ec2:RunInstances"}},
	)
	if got := strings.Join(p.Actions(), ","); got != "ec2:CreateTags,ec2:DescribeInstances,ec2:RunInstances" {
		t.Fatalf("Actions() = %s", got)
	}
	if !p.Allows("ec2:CreateTags") || p.Allows("ec2:TerminateInstances") {
		t.Fatal("Allows")
	}
	js := p.JSON()
	for _, want := range []string{`"Version": "2012-10-17"`, `"Effect": "Allow"`, `"Resource": [`, `"ec2:CreateTags"`} {
		if !strings.Contains(js, want) {
			t.Fatalf("JSON lacks %s:\n%s", want, js)
		}
	}
	m := p.Merge(NewPolicy(Statement{Action: []string{"ssm:SendCommand"}}))
	if !m.Allows("ssm:SendCommand") || !m.Allows("ec2:RunInstances") || len(p.Statement) != 2 {
		t.Fatal("Merge")
	}
	twice := p.Merge(p)
	var sids []string
	for _, st := range twice.Statement {
		sids = append(sids, st.Sid)
	}
	if got := strings.Join(sids, ","); got != "Launch,Read,Launch2,Read2" {
		t.Fatalf("merged Sids = %s, want unique ones", got)
	}
	if p.Statement[0].Sid != "Launch" {
		t.Fatal("Merge renamed the receiver's statements")
	}
}

func TestPolicyUncovered(t *testing.T) {
	p := NewPolicy(Statement{Action: []string{"ec2:RunInstances"}})
	got := p.Uncovered(map[string]int{"ec2:RunInstances": 3, "ec2:TerminateInstances": 1, "ec2:CreateTags": 0})
	if strings.Join(got, ",") != "ec2:TerminateInstances" {
		t.Fatalf("Uncovered = %v", got)
	}
}
