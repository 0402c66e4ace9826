package ec2ops

import (
	"fmt"
	"sort"
	"strings"
)

// Plan is the dry run of a mutating strategy: the ordered steps it would take,
// each with the API call it makes, the resources it touches and the IAM action
// it needs. Producing a Plan changes nothing.
type Plan struct {
	// Operation names the strategy that produced the plan.
	Operation string
	// Steps are in the order Apply would take them.
	Steps []Step
}

// Step is one action of a Plan.
type Step struct {
	// Action is the API call, e.g. "ec2:RunInstances".
	Action string
	// Resources are the IDs (or names, for resources that do not exist yet)
	// the step touches.
	Resources []string
	// Reason says why the step is needed, in words.
	Reason string
}

// Actions returns the distinct IAM actions of the plan's steps, sorted.
func (p Plan) Actions() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range p.Steps {
		if !seen[s.Action] {
			seen[s.Action] = true
			out = append(out, s.Action)
		}
	}
	sort.Strings(out)
	return out
}

// String renders the plan one step per line, for humans.
func (p Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plan %s: %d step(s)\n", p.Operation, len(p.Steps))
	for i, s := range p.Steps {
		fmt.Fprintf(&b, "%3d. %s %s", i+1, s.Action, strings.Join(s.Resources, ","))
		if s.Reason != "" {
			fmt.Fprintf(&b, " (%s)", s.Reason)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
