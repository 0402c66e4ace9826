package ec2ops

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Policy is an IAM policy document: the least privilege a strategy needs.
// Every strategy's Policy() lists exactly the actions it calls; marshal it
// with encoding/json to attach it to a role.
type Policy struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of a Policy.
type Statement struct {
	Sid       string                       `json:"Sid,omitempty"`
	Effect    string                       `json:"Effect"`
	Action    []string                     `json:"Action"`
	Resource  []string                     `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// PolicyVersion is the current IAM policy language version.
const PolicyVersion = "2012-10-17"

// NewPolicy returns a Policy with the given statements, each with Effect
// "Allow" unless set.
func NewPolicy(st ...Statement) Policy {
	for i := range st {
		if st[i].Effect == "" {
			st[i].Effect = "Allow"
		}
		if len(st[i].Resource) == 0 {
			st[i].Resource = []string{"*"}
		}
		sort.Strings(st[i].Action)
	}
	return Policy{Version: PolicyVersion, Statement: st}
}

// Actions returns the distinct actions the policy allows, sorted.
func (p Policy) Actions() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range p.Statement {
		if s.Effect != "Allow" {
			continue
		}
		for _, a := range s.Action {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Allows reports whether the policy allows action (an exact "service:Op"
// name; wildcards in the policy are not expanded because least-privilege
// policies here never use them).
func (p Policy) Allows(action string) bool {
	for _, a := range p.Actions() {
		if a == action {
			return true
		}
	}
	return false
}

// Uncovered returns, sorted, the actions among calls (keyed "service:Op",
// as internal/cloudsim counts them) that p does not allow. Tests run a
// strategy on the simulator and require Uncovered to be empty.
func (p Policy) Uncovered(calls map[string]int) []string {
	var out []string
	for a, n := range calls {
		if n > 0 && !p.Allows(a) {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// Merge returns a policy with the statements of p and others, for a tool
// that runs several strategies under one role. IAM requires Sids to be
// unique within a policy, so a Sid seen before gets its occurrence number
// appended ("Describe", "Describe2", ...).
func (p Policy) Merge(others ...Policy) Policy {
	out := Policy{Version: PolicyVersion, Statement: append([]Statement(nil), p.Statement...)}
	for _, o := range others {
		out.Statement = append(out.Statement, o.Statement...)
	}
	seen := map[string]int{}
	for i := range out.Statement {
		sid := out.Statement[i].Sid
		if sid == "" {
			continue
		}
		seen[sid]++
		if n := seen[sid]; n > 1 {
			out.Statement[i].Sid = fmt.Sprintf("%s%d", sid, n)
		}
	}
	return out
}

// JSON renders the policy document, indented.
func (p Policy) JSON() string {
	b, _ := json.MarshalIndent(p, "", "  ") // a Policy always marshals
	return string(b)
}
