package opsworks

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ec2ops/ec2ops"
)

// Event is an OpsWorks lifecycle event.
type Event string

// The five lifecycle events OpsWorks Stacks ran ("Stack Lifecycle Events",
// OpsWorks user guide): Setup once an instance has booted, Configure on
// every instance of the stack when one enters or leaves the online state,
// Deploy and Undeploy for applications, Shutdown before an instance is
// terminated.
const (
	Setup     Event = "Setup"
	Configure Event = "Configure"
	Deploy    Event = "Deploy"
	Undeploy  Event = "Undeploy"
	Shutdown  Event = "Shutdown"
)

// Events lists the lifecycle events in their OpsWorks order.
var Events = []Event{Setup, Configure, Deploy, Undeploy, Shutdown}

func (e Event) valid() bool { return slices.Contains(Events, e) }

// Selector selects EC2 instances by tag, as DescribeInstances filters do:
// Key "tag:NAME" with the accepted Values, or Key "tag-key" with the tag
// keys that must be present. Several selectors of a layer are ANDed.
type Selector struct {
	Key    string
	Values []string
}

// Stack is a set of layers configured by one backend (Chef, Ansible or
// Puppet), with stack-wide custom JSON attributes.
type Stack struct {
	// Name identifies the stack in plans, events and errors.
	Name string
	// Backend configures the layers that do not set their own.
	Backend Backend
	// Attributes are the stack's custom JSON (lowest precedence).
	Attributes map[string]any
	// Sensitive are dotted paths ("db.password") of Attributes (at any
	// level: stack, layer or deployment) whose values are secrets: the
	// parameter carrying them is marked sensitive in the patching.Command,
	// and plans, events, logs and errors show "[sensitive]" instead.
	Sensitive []string
	// Layers are configured in this order.
	Layers []Layer
}

// Layer is a set of instances (selected by tags) that share run lists.
type Layer struct {
	// Name identifies the layer.
	Name string
	// Selector picks the layer's running instances (ANDed).
	Selector []Selector
	// Backend overrides the stack's backend for this layer.
	Backend Backend
	// RunLists are what each lifecycle event runs: Chef recipes
	// ("recipe[cookbook::recipe]" or "cookbook::recipe"), one Ansible
	// playbook file, or Puppet classes (apply) or tags (agent). An event
	// without a run list does nothing on this layer.
	RunLists map[Event][]string
	// Attributes are the layer's custom JSON, over the stack's.
	Attributes map[string]any
	// Timeouts bound each event's run on an instance (zero: the
	// document's default, one hour).
	Timeouts map[Event]time.Duration
}

// Deployment is one run of a lifecycle event on a stack.
type Deployment struct {
	// Event to run.
	Event Event
	// Layers restricts the run to these layers (empty: every layer with a
	// run list for the event).
	Layers []string
	// InstanceIDs restricts the run to these instances (which must be in
	// the selected layers, unless Explicit is set).
	InstanceIDs []string
	// Explicit runs on InstanceIDs as given, without checking the layers'
	// selectors (the lifecycle hooks use it for a replacement that is not
	// yet tagged or not yet running when resolved).
	Explicit bool
	// Attributes are the deployment's custom JSON, over the layer's.
	Attributes map[string]any
	// DryRun asks the tool to report what would change and change nothing:
	// Chef why-run, Ansible check mode, Puppet --noop.
	DryRun bool
	// Comment is passed to SendCommand (at most 100 characters).
	Comment string
}

// MergeAttributes deep-merges custom JSON with increasing precedence:
// later maps win. Objects merge key by key, recursively; any other value
// (string, number, bool, array) replaces the lower one whole; a JSON null
// removes the key. OpsWorks merged stack custom JSON, then layer custom
// JSON, then deployment custom JSON in the same order. The inputs are not
// modified.
func MergeAttributes(levels ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, l := range levels {
		mergeInto(out, l)
	}
	return out
}

func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		if sv, ok := v.(map[string]any); ok {
			dv, ok := dst[k].(map[string]any)
			if !ok {
				dv = map[string]any{}
			} else {
				dv = maps.Clone(dv)
			}
			mergeInto(dv, sv)
			dst[k] = dv
			continue
		}
		dst[k] = deepCopy(v)
	}
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = deepCopy(e)
		}
		return s
	}
	return v
}

// ParseAttributes parses custom JSON (an object). Empty means none.
func ParseAttributes(s string) (map[string]any, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("custom JSON is not a JSON object: %w", err)
	}
	return m, nil
}

// sensitiveMark replaces secrets in plans and errors.
const sensitiveMark = "[sensitive]"

// redactAttributes returns a copy of attrs with the values at the
// sensitive paths replaced by "[sensitive]", and whether any was present.
func redactAttributes(attrs map[string]any, paths []string) (map[string]any, bool) {
	out, _ := deepCopy(attrs).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	found := false
	for _, p := range paths {
		parts := strings.Split(p, ".")
		m := out
		for i, k := range parts {
			v, ok := m[k]
			if !ok {
				break
			}
			if i == len(parts)-1 {
				m[k] = sensitiveMark
				found = true
				break
			}
			next, ok := v.(map[string]any)
			if !ok {
				break
			}
			m = next
		}
	}
	return out, found
}

// secretValues returns the string forms of the values at the sensitive
// paths (leaves of objects included), to scrub them from instance output.
func secretValues(attrs map[string]any, paths []string) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case nil:
		default:
			if s := fmt.Sprint(x); len(s) >= 4 {
				out = append(out, s)
			}
		}
	}
	for _, p := range paths {
		var cur any = attrs
		for _, k := range strings.Split(p, ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				cur = nil
				break
			}
			cur = m[k]
		}
		walk(cur)
	}
	return out
}

var (
	reName    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	reTagName = regexp.MustCompile(`^[^\x00-\x1f]{1,128}$`)
)

// validate checks the stack and returns the error naming the field.
func (s *Stack) validate() error {
	if s == nil {
		return ec2ops.InvalidInput("stack", "", "is nil", "describe the stack, or import one with Import")
	}
	if !reName.MatchString(s.Name) {
		return ec2ops.InvalidInput("Stack.Name", s.Name, "must be 1-128 letters, digits, '.', '_' or '-'", `name the stack, e.g. "shop-prod"`)
	}
	if len(s.Layers) == 0 {
		return ec2ops.InvalidInput("Stack.Layers", "", "is empty", "add at least one layer with a Selector and run lists")
	}
	if s.Backend != nil {
		if err := s.Backend.Validate(); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for i, l := range s.Layers {
		f := fmt.Sprintf("Stack.Layers[%d]", i)
		if !reName.MatchString(l.Name) {
			return ec2ops.InvalidInput(f+".Name", l.Name, "must be 1-128 letters, digits, '.', '_' or '-'", "name the layer")
		}
		if seen[l.Name] {
			return ec2ops.InvalidInput(f+".Name", l.Name, "is used by two layers", "give each layer its own name")
		}
		seen[l.Name] = true
		if len(l.Selector) == 0 {
			return ec2ops.InvalidInput(f+".Selector", "", "is empty", `select the layer's instances by tag, e.g. {Key: "tag:Layer", Values: ["web"]}`)
		}
		for _, sel := range l.Selector {
			if err := sel.validate(f + ".Selector"); err != nil {
				return err
			}
		}
		b := l.Backend
		if b == nil {
			b = s.Backend
		}
		if b == nil {
			return ec2ops.InvalidInput(f+".Backend", "", "no backend for the layer or the stack", "set Stack.Backend to a *Chef, *Ansible or *Puppet")
		}
		if l.Backend != nil {
			if err := l.Backend.Validate(); err != nil {
				return err
			}
		}
		for ev, rl := range l.RunLists {
			if !ev.valid() {
				return ec2ops.InvalidInput(f+".RunLists", string(ev), "is not a lifecycle event", "use Setup, Configure, Deploy, Undeploy or Shutdown")
			}
			if err := b.ValidateRunList(rl); err != nil {
				var ie *ec2ops.InputError
				if asInput(err, &ie) {
					ie.Field = fmt.Sprintf("%s.RunLists[%s]", f, ev)
				}
				return err
			}
		}
		for ev, d := range l.Timeouts {
			if d < time.Second || d > 48*time.Hour {
				return ec2ops.InvalidInput(fmt.Sprintf("%s.Timeouts[%s]", f, ev), d.String(), "must be from 1s to 48h", "or leave it out for the document's default")
			}
		}
	}
	for _, p := range s.Sensitive {
		if p == "" || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") {
			return ec2ops.InvalidInput("Stack.Sensitive", p, "is not a dotted attribute path", `name a path like "db.password"`)
		}
	}
	return nil
}

func (sel Selector) validate(field string) error {
	switch {
	case sel.Key == "tag-key":
	case strings.HasPrefix(sel.Key, "tag:") && reTagName.MatchString(sel.Key[4:]):
	default:
		return ec2ops.InvalidInput(field+".Key", sel.Key, `is not "tag:NAME" or "tag-key"`, `select by tag, e.g. "tag:Layer"`)
	}
	if len(sel.Values) == 0 || len(sel.Values) > 200 {
		return ec2ops.InvalidInput(field+".Values", sel.Key, fmt.Sprintf("has %d values; DescribeInstances takes 1 to 200 filter values", len(sel.Values)), "list the accepted values")
	}
	return nil
}

// layer returns the named layer.
func (s *Stack) layer(name string) (*Layer, bool) {
	for i := range s.Layers {
		if s.Layers[i].Name == name {
			return &s.Layers[i], true
		}
	}
	return nil, false
}

func (s *Stack) backendOf(l *Layer) Backend {
	if l.Backend != nil {
		return l.Backend
	}
	return s.Backend
}
