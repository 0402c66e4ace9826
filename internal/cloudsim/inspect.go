package cloudsim

import (
	"encoding/json"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// InstanceView is a read-only snapshot of one instance, as the simulator
// knows it (eventual consistency does not hide it).
type InstanceView struct {
	ID            string
	ReservationID string
	State         string // pending, running, shutting-down, terminated, stopping, stopped
	AZ            string
	SubnetID      string
	ImageID       string
	InstanceType  string
	PrivateIP     string
	Tags          map[string]string // user tags and aws:* system tags; a copy
	LaunchTime    time.Time
	// InstanceStatus and SystemStatus are the status-check summaries:
	// not-applicable, initializing, ok or impaired.
	InstanceStatus string
	SystemStatus   string
	// Healthy: running and both status checks ok.
	Healthy bool
	// Impaired: at least one status check failed.
	Impaired bool
}

func (s *Sim) instanceView(in *instance) InstanceView {
	v := InstanceView{
		ID:             in.id,
		ReservationID:  in.res.id,
		State:          string(in.state),
		AZ:             in.subnet.az,
		SubnetID:       in.subnet.id,
		ImageID:        in.imageID,
		InstanceType:   in.itype,
		Tags:           in.allTags(),
		LaunchTime:     in.launchTime,
		InstanceStatus: string(in.instCheck.summary()),
		SystemStatus:   string(in.sysCheck.summary()),
		Healthy:        in.healthy(),
		Impaired:       in.sysCheck == checkFailed || in.instCheck == checkFailed,
	}
	if in.ip != 0 {
		v.PrivateIP = ipString(in.ip)
	}
	return v
}

// View is read-only access to the Sim's state at one moment, given to
// change hooks and invariants (and used by the Sim's own inspection
// helpers). It is valid only during the call it was passed to.
type View struct {
	s   *Sim
	now time.Time
}

func (v *View) sim() *Sim {
	if v.s == nil {
		panic("cloudsim: View used after the hook returned")
	}
	return v.s
}

// Time returns the simulated time of the view.
func (v *View) Time() time.Time { return v.now }

// Instance returns the instance with id, if it exists (terminated
// instances exist until their visibility window ends).
func (v *View) Instance(id string) (InstanceView, bool) {
	s := v.sim()
	in := s.ec2.byID[id]
	if in == nil {
		return InstanceView{}, false
	}
	return s.instanceView(in), true
}

// Instances returns every existing instance in launch order.
func (v *View) Instances() []InstanceView {
	s := v.sim()
	out := make([]InstanceView, 0, len(s.ec2.byID))
	for _, in := range s.ec2.order {
		if !in.expired {
			out = append(out, s.instanceView(in))
		}
	}
	return out
}

// Healthy counts the healthy instances (running, both status checks ok)
// that match selects (nil: all).
func (v *View) Healthy(match func(InstanceView) bool) int {
	s := v.sim()
	n := 0
	for _, in := range s.ec2.order {
		if !in.expired && in.healthy() && (match == nil || match(s.instanceView(in))) {
			n++
		}
	}
	return n
}

// Capacity returns the current healthy count tracked under name (see
// Sim.TrackCapacity), or -1 for an unknown name. It is O(1), which makes it
// the cheap way for an invariant to check a capacity floor.
func (v *View) Capacity(name string) int {
	if t := v.sim().trackers[name]; t != nil {
		return t.count
	}
	return -1
}

// inspect runs f with a View of the state at time.Now(), after applying
// due transitions.
func (s *Sim) inspect(f func(v *View)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := &View{s: s, now: s.advance()}
	f(v)
	v.s = nil
}

// Instance returns a snapshot of the instance with id, after applying the
// transitions due now; false if it does not exist (or no longer).
func (s *Sim) Instance(id string) (iv InstanceView, ok bool) {
	s.inspect(func(v *View) { iv, ok = v.Instance(id) })
	return iv, ok
}

// Instances returns snapshots of every existing instance in launch order,
// after applying the transitions due now.
func (s *Sim) Instances() (out []InstanceView) {
	s.inspect(func(v *View) { out = v.Instances() })
	return out
}

// Healthy counts the healthy instances that match selects (nil: all),
// after applying the transitions due now.
func (s *Sim) Healthy(match func(InstanceView) bool) (n int) {
	s.inspect(func(v *View) { n = v.Healthy(match) })
	return n
}

// LaunchInput returns a copy of the RunInstances request that launched
// the instance (normalized: ClientToken and DryRun cleared), or false if the
// instance does not exist.
func (s *Sim) LaunchInput(id string) (*ec2.RunInstancesInput, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	in := s.ec2.byID[id]
	if in == nil {
		return nil, false
	}
	b, err := json.Marshal(in.spec)
	if err != nil {
		return nil, false
	}
	cp := new(ec2.RunInstancesInput)
	if json.Unmarshal(b, cp) != nil {
		return nil, false
	}
	return cp, true
}

// Impair makes the status checks of instance id fail, as a host failure
// does: at once if it is running, otherwise when its checks next run. The
// impairment lasts until the instance is stopped (a later start moves it to
// healthy hardware) or terminated. It reports whether the instance exists
// and can still run.
func (s *Sim) Impair(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.advance()
	in := s.ec2.byID[id]
	if in == nil || in.state == types.InstanceStateNameShuttingDown || in.state == types.InstanceStateNameTerminated {
		return false
	}
	s.impair(now, in)
	return true
}
