package cloudsim

import (
	"container/heap"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ec2ops/ec2ops/internal/ratelimit"
)

// Options configures a Sim. Zero values take the documented defaults.
type Options struct {
	// Seed seeds every random draw (latencies, faults, IDs). Zero means 1.
	Seed int64
	// Region is the simulated Region. Empty means "us-east-1".
	Region string
	// AZs are the Availability Zones; the Sim creates one VPC and one
	// default subnet per AZ. Empty means us-east-1a, us-east-1b, us-east-1c.
	AZs []string
	// TimeScale multiplies every simulated duration: latencies, the
	// visibility window of terminated instances and the eventual-consistency
	// window; token buckets refill 1/TimeScale times faster. Examples use
	// 0.02 to run a fleet in seconds of real time. Zero or less means 1.
	TimeScale float64
	// Latency sizes the state machines. Zero fields take their defaults.
	Latency Latencies
	// Faults injects seeded failures. The zero value injects none.
	Faults Faults
	// DisableThrottling turns off the published token buckets.
	DisableThrottling bool
	// Images configures the image model (ec2_images.go): latencies, failures, strict AMI validation.
	Images ImageOptions
}

// Dist is a uniform distribution of durations in [Min, Max], drawn from a
// seeded source. The zero Dist means "use the default"; for an (almost)
// instant transition use Dist{Max: time.Nanosecond}.
type Dist struct{ Min, Max time.Duration }

// Latencies are the durations of the instance state machine. Sources:
// AWS-FACTS.md "Latencies" (pending -> running about 5-17 s measured, status
// checks run every minute and typically pass in 1-3 min); the defaults are
// deliberately on the slow side.
type Latencies struct {
	// PendingToRunning: pending -> running. Default 15s..30s.
	PendingToRunning Dist
	// StatusInit: running -> both status checks "ok". Default 60s..180s.
	StatusInit Dist
	// ShuttingDown: shutting-down -> terminated. Default 20s..60s.
	ShuttingDown Dist
	// Stopping: stopping -> stopped. Default 20s..60s.
	Stopping Dist
	// Reboot: RebootInstances -> the instance's status check passes again
	// (the OS restarts; the state stays running). Default 30s..90s.
	Reboot Dist
	// TerminatedVisible is how long a terminated instance stays visible to
	// DescribeInstances. Default 1h (AWS: "about an hour"); negative means
	// it disappears as soon as it is terminated.
	TerminatedVisible time.Duration
	SSM               SSMLatencies // SSM agent and Run Command durations (ssm_agent.go)
}

// Faults are seeded fault-injection rates in [0, 1] and windows.
type Faults struct {
	// ThrottleRate answers any call with RequestLimitExceeded, on top of
	// the token buckets.
	ThrottleRate float64
	// ServerErrorRate answers any call with InternalError (HTTP 500,
	// smithy.FaultServer).
	ServerErrorRate float64
	// CapacityRate fails RunInstances with InsufficientInstanceCapacity;
	// nothing is launched.
	CapacityRate float64
	// ImpairedRate is the share of launched instances whose instance status
	// check goes to "impaired" and never to "ok" (a bad boot; it survives
	// stop/start).
	ImpairedRate float64
	// EventualConsistency is how long a new instance ID answers
	// InvalidInstanceID.NotFound (and is left out of listings) after
	// RunInstances returned it.
	EventualConsistency time.Duration
	SSM                 SSMFaults // SSM agent and Run Command faults (ssm_agent.go)
}

// Sim is a deterministic in-memory cloud. It owns the state shared by every
// service client (lock, clock, random sources, accounting, resources); the
// clients (EC2, and later SSM and CloudWatch) are thin views of it. A Sim is
// safe for concurrent use. It runs no goroutines and no timers: every call
// first applies the transitions due by time.Now().
type Sim struct {
	opts  Options
	seed  uint64
	scale float64

	mu      sync.Mutex
	now     time.Time  // time of the last advance; never goes back
	rng     *rand.Rand // faults and capacity: shared, so call order matters
	idSeq   map[string]uint64
	events  eventHeap
	evSeq   uint64
	reqSeq  uint64
	limiter map[string]*ratelimit.Limiter // by service prefix ("ec2")

	counters
	observers

	ec2    ec2State
	ssm    ssmState          // SSM agents, commands, patch states (ssm_agent.go)
	lc     lcState           // Elastic IPs, EBS volumes, target groups, root-volume tasks (ec2_addresses.go)
	itypes instanceTypeState // instance type offerings overrides (ec2_instancetypes.go)
	cw     cwState           // CloudWatch alarms, metric history, maintenance options (cloudwatch_alarms.go)
	img    imageState        // images, snapshots, launch templates, Auto Scaling groups, SSM parameters (ec2_images.go)
	cm     cmState           // configuration management: Chef, Ansible, Puppet runs and agents (ssm_configmgmt.go)
	pol    policyState       // IAM policy enforcement (policy.go)
}

// New returns a Sim configured by optFns.
func New(optFns ...func(*Options)) *Sim {
	o := Options{}
	for _, f := range optFns {
		f(&o)
	}
	o = withDefaults(o)
	s := &Sim{
		opts:    o,
		seed:    uint64(o.Seed),
		scale:   o.TimeScale,
		now:     time.Now(),
		idSeq:   map[string]uint64{},
		limiter: map[string]*ratelimit.Limiter{},
	}
	s.rng = rand.New(rand.NewPCG(s.seed, 0x5eed))
	s.counters.reset()
	if !o.DisableThrottling {
		s.limiter["ec2"] = ratelimit.New(ratelimit.EC2().Compressed(o.TimeScale))
		s.limiter["ssm"] = ratelimit.New(ratelimit.SSM().Compressed(o.TimeScale))
		s.limiter["cloudwatch"] = ratelimit.New(ratelimit.CloudWatch().Compressed(o.TimeScale))
	}
	s.initEC2()
	s.initSSM()
	s.initConfigMgmt()
	s.initLifecycle()
	s.initCloudWatch()
	s.initImages()
	return s
}

func withDefaults(o Options) Options {
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if len(o.AZs) == 0 {
		o.AZs = []string{o.Region + "a", o.Region + "b", o.Region + "c"}
	}
	o.AZs = append([]string(nil), o.AZs...)
	if o.TimeScale <= 0 {
		o.TimeScale = 1
	}
	l := &o.Latency
	l.PendingToRunning = l.PendingToRunning.orDefault(15*time.Second, 30*time.Second)
	l.StatusInit = l.StatusInit.orDefault(60*time.Second, 180*time.Second)
	l.ShuttingDown = l.ShuttingDown.orDefault(20*time.Second, 60*time.Second)
	l.Stopping = l.Stopping.orDefault(20*time.Second, 60*time.Second)
	l.Reboot = l.Reboot.orDefault(30*time.Second, 90*time.Second)
	if l.TerminatedVisible == 0 {
		l.TerminatedVisible = time.Hour
	}
	return o
}

func (d Dist) orDefault(lo, hi time.Duration) Dist {
	if d == (Dist{}) {
		return Dist{lo, hi}
	}
	if d.Max < d.Min {
		d.Max = d.Min
	}
	return d
}

// draw returns a duration from d using r, multiplied by the time scale.
func (s *Sim) draw(r *rand.Rand, d Dist) time.Duration {
	v := d.Min
	if d.Max > d.Min {
		v += time.Duration(r.Int64N(int64(d.Max-d.Min) + 1))
	}
	return s.scaled(v)
}

// scaled multiplies a simulated duration by the time scale.
func (s *Sim) scaled(d time.Duration) time.Duration {
	if s.scale == 1 {
		return d
	}
	return time.Duration(float64(d) * s.scale)
}

// event is a scheduled state transition. fire runs with the lock held and
// receives the event's own due time, which is the time of the changes it
// makes. A transition that may be cancelled captures a generation number
// and checks it in fire.
type event struct {
	due  time.Time
	seq  uint64
	fire func(due time.Time)
}

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return e
}

// schedule arranges for fire to run at due (lock held).
func (s *Sim) schedule(due time.Time, fire func(due time.Time)) {
	s.evSeq++
	heap.Push(&s.events, &event{due: due, seq: s.evSeq, fire: fire})
}

// advance applies, in time order, every transition due by time.Now() and
// returns the current time (lock held). Transitions fire change hooks with
// their own due time, so lazily evaluated state is indistinguishable from a
// simulator that ran every transition on time.
func (s *Sim) advance() time.Time {
	now := time.Now()
	if now.Before(s.now) {
		now = s.now // never go back (time read by a goroutine that waited for the lock)
	}
	for len(s.events) > 0 && !s.events[0].due.After(now) {
		ev := heap.Pop(&s.events).(*event)
		ev.fire(ev.due)
	}
	s.now = now
	return now
}

// Advance applies every transition due at time.Now(), firing change hooks.
// API calls and inspection helpers do this themselves; Advance is for a
// test that only sleeps and then wants the hooks to have run.
func (s *Sim) Advance() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
}
