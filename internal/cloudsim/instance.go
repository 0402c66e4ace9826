package cloudsim

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// ec2State is the EC2 part of the Sim's state (guarded by Sim.mu).
type ec2State struct {
	vpcID     string
	sgID      string // the VPC's default security group
	subnets   []*subnet
	subnetsBy map[string]*subnet
	byID      map[string]*instance
	order     []*instance // launch order (ascending seq); expired entries compacted lazily
	expired   int         // expired entries still in order
	tokens    map[string]*reservation
	rr        int    // round-robin cursor over AZs
	launchSeq uint64 // instances launched so far
	tagKinds  []tagKind
	fields    filterFields[*instance]
	statusF   filterFields[*instance]
	// onBoot and onReboot let other models follow an instance's OS: they
	// run (lock held) when an instance enters running after a launch or
	// start, and when it is rebooted. The SSM agent model uses them.
	onBoot   []func(at time.Time, in *instance)
	onReboot []func(at time.Time, in *instance)
}

// subnet is a default subnet: one per AZ, carved out of the VPC's
// 10.0.0.0/16. AWS reserves the first four addresses and the last one.
type subnet struct {
	id, az string
	base   uint32 // network address
	size   uint32 // addresses in the subnet
	used   map[uint32]bool
	next   uint32
}

// alloc takes the next free address, or returns false when the subnet is full.
func (n *subnet) alloc() (uint32, bool) {
	usable := n.size - 5
	if uint32(len(n.used)) >= usable {
		return 0, false
	}
	for {
		off := 4 + n.next%usable
		n.next++
		if !n.used[off] {
			n.used[off] = true
			return n.base + off, true
		}
	}
}

func (n *subnet) release(ip uint32) { delete(n.used, ip-n.base) }

func ipString(ip uint32) string {
	return fmt.Sprintf("%d.%d.%d.%d", ip>>24, ip>>16&0xff, ip>>8&0xff, ip&0xff)
}

// reservation is one successful RunInstances call.
type reservation struct {
	id          string
	token       string
	fingerprint string
	instances   []*instance
}

// check is the state of one status check.
type check uint8

const (
	checkNA check = iota
	checkInit
	checkOK
	checkFailed
)

func (c check) summary() types.SummaryStatus {
	return [...]types.SummaryStatus{types.SummaryStatusNotApplicable, types.SummaryStatusInitializing,
		types.SummaryStatusOk, types.SummaryStatusImpaired}[c]
}

func (c check) detail() types.StatusType {
	return [...]types.StatusType{"", types.StatusTypeInitializing, types.StatusTypePassed, types.StatusTypeFailed}[c]
}

// volume is an EBS volume attached at launch.
type volume struct {
	device, id          string
	deleteOnTermination bool
}

// instance is one simulated EC2 instance.
type instance struct {
	seq         uint64
	id          string
	res         *reservation
	spec        *ec2.RunInstancesInput // normalized copy of the launch request; read-only, shared by the reservation
	rng         *rand.Rand             // private draws: see Sim.resourceRand
	created     time.Time              // when RunInstances returned it
	launchTime  time.Time              // last entry into pending
	imageID     string
	itype       string
	subnet      *subnet
	ip          uint32
	launchIndex int32
	sgs         []types.GroupIdentifier
	volumes     []volume

	state            types.InstanceStateName
	gen              uint64 // bumped when an API call supersedes scheduled transitions
	sysCheck         check
	instCheck        check
	badBoot          bool // instance check never passes (Faults.ImpairedRate); survives stop/start
	hostFail         bool // Sim.Impair: both checks fail until the instance moves host (stop/start)
	impairedSince    time.Time
	stateReason      *types.StateReason
	transitionReason string

	tags    map[string]string // user tags
	sysTags map[string]string // aws:* tags set by EC2
	expired bool
}

// stateCodes are the documented InstanceState codes (low byte).
var stateCodes = map[types.InstanceStateName]int32{
	types.InstanceStateNamePending: 0, types.InstanceStateNameRunning: 16,
	types.InstanceStateNameShuttingDown: 32, types.InstanceStateNameTerminated: 48,
	types.InstanceStateNameStopping: 64, types.InstanceStateNameStopped: 80,
}

func sdkState(n types.InstanceStateName) *types.InstanceState {
	c := stateCodes[n]
	return &types.InstanceState{Code: &c, Name: n}
}

// health is the combined status-check summary used in Change and
// InstanceView: "impaired" if either check failed, "initializing" while one
// runs, "ok" when both passed, "not-applicable" when the instance is not
// running.
func (in *instance) health() string {
	switch {
	case in.sysCheck == checkFailed || in.instCheck == checkFailed:
		return string(types.SummaryStatusImpaired)
	case in.sysCheck == checkInit || in.instCheck == checkInit:
		return string(types.SummaryStatusInitializing)
	case in.sysCheck == checkOK && in.instCheck == checkOK:
		return string(types.SummaryStatusOk)
	}
	return string(types.SummaryStatusNotApplicable)
}

func (in *instance) healthy() bool {
	return in.state == types.InstanceStateNameRunning && in.sysCheck == checkOK && in.instCheck == checkOK
}

// allTags returns user and system tags together (a new map).
func (in *instance) allTags() map[string]string {
	m := make(map[string]string, len(in.tags)+len(in.sysTags))
	maps.Copy(m, in.sysTags)
	maps.Copy(m, in.tags)
	return m
}

// visible reports whether in is visible to API calls at now: eventual
// consistency hides a new instance for Faults.EventualConsistency.
func (s *Sim) visible(in *instance, now time.Time) bool {
	return !in.expired && !now.Before(in.created.Add(s.scaled(s.opts.Faults.EventualConsistency)))
}

// transition moves in to state `to` with the given status checks, emitting
// a state change and, if the combined status changed, a status change.
func (s *Sim) transition(at time.Time, in *instance, to types.InstanceStateName, sys, inst check) {
	from, oldHealth := in.state, in.health()
	in.state, in.sysCheck, in.instCheck = to, sys, inst
	s.emit(Change{Time: at, InstanceID: in.id, Kind: ChangeState, From: string(from), To: string(to)}, in)
	if h := in.health(); h != oldHealth {
		s.emit(Change{Time: at, InstanceID: in.id, Kind: ChangeStatus, From: oldHealth, To: h}, in)
	}
}

// setChecks changes the status checks of a running instance.
func (s *Sim) setChecks(at time.Time, in *instance, sys, inst check) {
	old := in.health()
	if (sys == checkFailed || inst == checkFailed) && in.impairedSince.IsZero() {
		in.impairedSince = at
	}
	in.sysCheck, in.instCheck = sys, inst
	if h := in.health(); h != old {
		s.emit(Change{Time: at, InstanceID: in.id, Kind: ChangeStatus, From: old, To: h}, in)
	}
}

// later schedules fire after d unless in's generation changes first.
func (s *Sim) later(at time.Time, d time.Duration, in *instance, fire func(due time.Time)) {
	gen := in.gen
	s.schedule(at.Add(d), func(due time.Time) {
		if in.gen == gen && !in.expired {
			fire(due)
		}
	})
}

// boot enters pending and schedules running (launch and start).
func (s *Sim) boot(at time.Time, in *instance) {
	in.launchTime = at
	in.stateReason, in.transitionReason = nil, ""
	s.transition(at, in, types.InstanceStateNamePending, checkNA, checkNA)
	s.later(at, s.draw(in.rng, s.opts.Latency.PendingToRunning), in, func(due time.Time) {
		s.transition(due, in, types.InstanceStateNameRunning, checkInit, checkInit)
		for _, f := range s.ec2.onBoot {
			f(due, in)
		}
		s.later(due, s.draw(in.rng, s.opts.Latency.StatusInit), in, func(due time.Time) {
			sys, inst := checkOK, checkOK
			if in.hostFail {
				sys, inst = checkFailed, checkFailed
			}
			if in.badBoot {
				inst = checkFailed
			}
			s.setChecks(due, in, sys, inst)
		})
	})
}

// terminate starts shutting in down (nothing happens if it already is).
func (s *Sim) terminate(at time.Time, in *instance) {
	switch in.state {
	case types.InstanceStateNameShuttingDown, types.InstanceStateNameTerminated:
		return
	}
	in.gen++
	in.stateReason = &types.StateReason{Code: ptr("Client.UserInitiatedShutdown"),
		Message: ptr("Client.UserInitiatedShutdown: User initiated shutdown")}
	in.transitionReason = fmt.Sprintf("User initiated (%s)", at.UTC().Format("2006-01-02 15:04:05 MST"))
	s.transition(at, in, types.InstanceStateNameShuttingDown, checkNA, checkNA)
	s.later(at, s.draw(in.rng, s.opts.Latency.ShuttingDown), in, func(due time.Time) {
		if in.ip != 0 {
			in.subnet.release(in.ip)
		}
		s.releaseVolumes(in) // ec2_volumes.go: delete or free the EBS volumes
		in.stateReason = &types.StateReason{Code: ptr("Client.UserInitiatedShutdown"),
			Message: ptr("Client.UserInitiatedShutdown: User initiated shutdown")}
		s.transition(due, in, types.InstanceStateNameTerminated, checkNA, checkNA)
		vis := s.opts.Latency.TerminatedVisible
		if vis < 0 {
			s.expire(in)
			return
		}
		s.later(due, s.scaled(vis), in, func(time.Time) { s.expire(in) })
	})
}

// stop starts stopping a running instance.
func (s *Sim) stop(at time.Time, in *instance) {
	in.gen++
	in.transitionReason = fmt.Sprintf("User initiated (%s)", at.UTC().Format("2006-01-02 15:04:05 MST"))
	in.stateReason = &types.StateReason{Code: ptr("Client.UserInitiatedShutdown"),
		Message: ptr("Client.UserInitiatedShutdown: User initiated shutdown")}
	s.transition(at, in, types.InstanceStateNameStopping, checkNA, checkNA)
	s.later(at, s.draw(in.rng, s.opts.Latency.Stopping), in, func(due time.Time) {
		in.hostFail = false // a start moves the instance to healthy hardware
		in.impairedSince = time.Time{}
		s.transition(due, in, types.InstanceStateNameStopped, checkNA, checkNA)
	})
}

// impair fails both status checks of in, now if it is running, else when
// its checks next complete.
func (s *Sim) impair(at time.Time, in *instance) {
	in.hostFail = true
	if in.state == types.InstanceStateNameRunning {
		s.setChecks(at, in, checkFailed, checkFailed)
	}
}

// expire removes a terminated instance once its visibility window ends.
func (s *Sim) expire(in *instance) {
	if in.expired {
		return
	}
	in.expired = true
	delete(s.ec2.byID, in.id)
	for _, t := range s.trackerList {
		delete(t.in, in)
	}
	e := &s.ec2
	e.expired++
	if e.expired*2 > len(e.order) {
		kept := e.order[:0]
		for _, x := range e.order {
			if !x.expired {
				kept = append(kept, x)
			}
		}
		clear(e.order[len(kept):])
		e.order = kept
		e.expired = 0
	}
}

// lookupInstances resolves explicit instance IDs as EC2 does: a malformed ID
// fails the call with InvalidInstanceID.Malformed, and any ID that does not
// exist (or not yet, or no longer) fails it with InvalidInstanceID.NotFound
// naming every missing ID. Duplicates are dropped; the result is in the
// order given.
func (s *Sim) lookupInstances(now time.Time, ids []string) ([]*instance, error) {
	for _, id := range ids {
		if !validID(id, "i-") {
			return nil, errMalformed(codeInstanceMalformed, id, "i-...")
		}
	}
	seen := make(map[string]bool, len(ids))
	out := make([]*instance, 0, len(ids))
	var missing []string
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		in := s.ec2.byID[id]
		if in == nil || !s.visible(in, now) {
			missing = append(missing, id)
			continue
		}
		out = append(out, in)
	}
	if len(missing) > 0 {
		return nil, errInstancesNotFound(missing)
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }
