package cloudsim

import (
	"fmt"
	"maps"
	"time"
)

// ChangeKind says what a Change changed.
type ChangeKind string

const (
	// ChangeState: the instance state changed (From/To are state names;
	// From is "" at launch).
	ChangeState ChangeKind = "state"
	// ChangeStatus: the combined status-check summary changed (From/To are
	// "not-applicable", "initializing", "ok" or "impaired").
	ChangeStatus ChangeKind = "status"
	// ChangeTags: the instance's tags changed (From/To are empty).
	ChangeTags ChangeKind = "tags"
)

// Change is one state change of one resource, at the simulated time it
// happened (for scheduled transitions, their due time, not the time of the
// call that applied them).
type Change struct {
	Time       time.Time
	InstanceID string
	Kind       ChangeKind
	From, To   string
}

// counters is the Sim's call accounting (guarded by Sim.mu).
type counters struct {
	calls     map[string]int
	throttled map[string]int
	errs      map[string]int
	total     int
}

func (c *counters) reset() {
	c.calls, c.throttled, c.errs, c.total = map[string]int{}, map[string]int{}, map[string]int{}, 0
}

// Calls returns the number of API calls by "service:Operation" (for
// example "ec2:RunInstances"), including calls that were throttled or
// failed. Calls whose context was already done are not counted.
func (s *Sim) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// Throttled returns the number of calls answered RequestLimitExceeded, by
// "service:Operation", whether by a token bucket or by Faults.ThrottleRate.
func (s *Sim) Throttled() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.throttled)
}

// Errors returns the number of API errors answered, by error code.
func (s *Sim) Errors() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.errs)
}

// TotalCalls returns the number of API calls counted by Calls.
func (s *Sim) TotalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// ResetCounters zeroes Calls, Throttled, Errors and TotalCalls.
func (s *Sim) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counters.reset()
}

// observers are the change hooks, capacity trackers and invariants
// (guarded by Sim.mu).
type observers struct {
	hooks       []func(Change, *View)
	trackers    map[string]*tracker
	trackerList []*tracker
	invariants  []invariant
	violations  []string
}

// maxViolations bounds the violations a Sim records.
const maxViolations = 10000

type invariant struct {
	name  string
	check func(Change, *View) error
}

// tracker follows the healthy capacity of the instances one predicate
// selects, incrementally: only the instance that changed is re-evaluated.
type tracker struct {
	match func(InstanceView) bool
	in    map[*instance]bool
	count int
	min   int
	trace []CapacityPoint
}

// CapacityPoint is the healthy count of a tracked set from Time on.
type CapacityPoint struct {
	Time    time.Time
	Healthy int
}

// emit delivers one change (lock held): capacity trackers first, then
// invariants, then OnChange hooks, all with a View of the state right
// after this change and before any later one.
func (s *Sim) emit(c Change, in *instance) {
	if in != nil && len(s.trackerList) > 0 {
		healthy := in.healthy()
		var iv InstanceView
		if healthy {
			iv = s.instanceView(in)
		}
		for _, t := range s.trackerList {
			want := healthy && (t.match == nil || t.match(iv))
			if want == t.in[in] {
				continue
			}
			if want {
				t.in[in] = true
				t.count++
			} else {
				delete(t.in, in)
				t.count--
			}
			t.min = min(t.min, t.count)
			t.trace = append(t.trace, CapacityPoint{Time: c.Time, Healthy: t.count})
		}
	}
	if len(s.invariants) == 0 && len(s.hooks) == 0 {
		return
	}
	v := &View{s: s, now: c.Time}
	defer func() { v.s = nil }()
	for _, inv := range s.invariants {
		if err := inv.check(c, v); err != nil && len(s.violations) < maxViolations {
			s.violations = append(s.violations, fmt.Sprintf("%s: %s %s %s %s->%s: %v",
				inv.name, c.Time.Format(time.RFC3339Nano), c.InstanceID, c.Kind, c.From, c.To, err))
		}
	}
	for _, h := range s.hooks {
		h(c, v)
	}
}

// OnChange registers a hook called at every change: launch, state
// transition, status-check change, tag change. Hooks run synchronously, in
// the order of the changes (simulated time, then the order AWS would apply
// them), while the Sim's lock is held: a hook must use only its *View
// argument (valid during the call only) and must not call methods of the
// Sim or its clients, which would deadlock. Hooks run inside whichever API
// call or inspection helper applied the change.
func (s *Sim) OnChange(hook func(c Change, v *View)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = append(s.hooks, hook)
}

// AddInvariant registers a check run at every change (before OnChange
// hooks, with the same View and rules). A non-nil error is recorded as a
// violation naming the invariant and the change; see Violations.
func (s *Sim) AddInvariant(name string, check func(c Change, v *View) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invariants = append(s.invariants, invariant{name: name, check: check})
}

// Violations returns the invariant violations recorded so far (at most
// 10,000), after applying the transitions due now.
func (s *Sim) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	return append([]string(nil), s.violations...)
}

// TrackCapacity starts recording, under name, the number of healthy
// instances (running, both status checks ok) that match selects (nil: all).
// match sees each instance's view when it changes; it must not call the
// Sim. The trace starts with the current count; tracking the same name
// again starts over.
func (s *Sim) TrackCapacity(name string, match func(InstanceView) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.advance()
	t := &tracker{match: match, in: map[*instance]bool{}}
	for _, in := range s.ec2.order {
		if !in.expired && in.healthy() && (match == nil || match(s.instanceView(in))) {
			t.in[in] = true
			t.count++
		}
	}
	t.min = t.count
	t.trace = []CapacityPoint{{Time: now, Healthy: t.count}}
	if s.trackers == nil {
		s.trackers = map[string]*tracker{}
	}
	if old := s.trackers[name]; old != nil {
		for i, x := range s.trackerList {
			if x == old {
				s.trackerList = append(s.trackerList[:i], s.trackerList[i+1:]...)
				break
			}
		}
	}
	s.trackers[name] = t
	s.trackerList = append(s.trackerList, t)
}

// Trace returns the healthy-capacity trace recorded under name: one point
// at the start and one at every change of the count (several points may
// share a time). It returns nil for an unknown name.
func (s *Sim) Trace(name string) []CapacityPoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	if t := s.trackers[name]; t != nil {
		return append([]CapacityPoint(nil), t.trace...)
	}
	return nil
}

// MinHealthy returns the lowest healthy count recorded under name since
// TrackCapacity, or -1 for an unknown name.
func (s *Sim) MinHealthy(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	if t := s.trackers[name]; t != nil {
		return t.min
	}
	return -1
}
