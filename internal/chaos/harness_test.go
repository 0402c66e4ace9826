package chaos

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/ec2ops/ec2ops/internal/cloudsim"
)

var seedsFlag = flag.Int("chaos.seeds", 0, "seeds per operation (0: 200, or 20 with -short or unless -chaos.long)")

// The long form (200 seeds an operation) runs with -chaos.long or
// -chaos.seeds=N; the default (and -short) is 20 seeds, the form `make
// test` runs.
var longFlag = flag.Bool("chaos.long", false, "run 200 seeds per operation")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func seeds() int {
	switch {
	case *seedsFlag > 0:
		return *seedsFlag
	case *longFlag && !testing.Short():
		return 200
	}
	return 20
}

// Fault kinds in the breakdown.
const (
	fThrottle    = "throttle"
	f5xx         = "5xx"
	fCapacity    = "capacity"
	fNotFound    = "eventual-notfound"
	fUnhealthy   = "never-healthy"
	fAgent       = "agent-offline"
	fCancel      = "cancel"
	fCmdFailures = "command-failure"
)

// tally accumulates the figures of every seed of every operation.
type tally struct {
	mu         sync.Mutex
	runs       map[string]int // by operation: runs of the strategy (first run + resumes)
	seeds      map[string]int
	faults     map[string]map[string]int // operation -> kind -> count
	violations map[string]int
	samples    []string
}

var global = &tally{runs: map[string]int{}, seeds: map[string]int{}, faults: map[string]map[string]int{}, violations: map[string]int{}}

func (g *tally) add(s *seedRun) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seeds[s.op]++
	g.runs[s.op] += s.runs
	if g.faults[s.op] == nil {
		g.faults[s.op] = map[string]int{}
	}
	for k, v := range s.faults {
		g.faults[s.op][k] += v
	}
	g.violations[s.op] += len(s.violations)
	for _, v := range s.violations {
		if len(g.samples) < 20 {
			g.samples = append(g.samples, fmt.Sprintf("%s seed %d: %s", s.op, s.seed, v))
		}
	}
}

func (g *tally) report() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ops []string
	runs, faults, viol := 0, 0, 0
	kinds := map[string]int{}
	for op := range g.seeds {
		ops = append(ops, op)
		runs += g.runs[op]
		viol += g.violations[op]
		for k, v := range g.faults[op] {
			faults += v
			kinds[k] += v
		}
	}
	sort.Strings(ops)
	var b strings.Builder
	fmt.Fprintf(&b, "CHAOS runs=%d faults=%d violations=%d\n", runs, faults, viol)
	for _, op := range ops {
		n := 0
		for _, v := range g.faults[op] {
			n += v
		}
		fmt.Fprintf(&b, "CHAOS op=%s seeds=%d runs=%d faults=%d violations=%d\n", op, g.seeds[op], g.runs[op], n, g.violations[op])
	}
	var ks []string
	for k := range kinds {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		fmt.Fprintf(&b, "CHAOS fault=%s count=%d\n", k, kinds[k])
	}
	for _, s := range g.samples {
		fmt.Fprintf(&b, "CHAOS violation: %s\n", s)
	}
	return b.String()
}

// seedRun is one seed of one operation: its simulator, random source,
// counters and violations.
type seedRun struct {
	t          *testing.T
	op         string
	seed       int64
	rng        *rand.Rand
	sim        *cloudsim.Sim
	runs       int
	faults     map[string]int
	violations []string
	impaired   map[string]bool
}

// newSeedRun makes the simulator of one seed with the common faults:
// throttling 5-20%, 5xx 1%, capacity errors, impaired boots, eventual
// consistency, and agents lost after reboots.
func newSeedRun(t *testing.T, op string, seed int64, mod func(*cloudsim.Options)) *seedRun {
	rng := rand.New(rand.NewPCG(uint64(seed), 0xc4a05))
	s := &seedRun{t: t, op: op, seed: seed, rng: rng, faults: map[string]int{}, impaired: map[string]bool{}}
	s.sim = cloudsim.New(func(o *cloudsim.Options) {
		o.Seed = seed
		o.Faults = cloudsim.Faults{
			ThrottleRate:        0.05 + 0.15*rng.Float64(),
			ServerErrorRate:     0.01,
			CapacityRate:        0.05,
			ImpairedRate:        0.05,
			EventualConsistency: 5 * time.Second,
		}
		o.Faults.SSM.AgentLostAfterRebootRate = 0.1
		if mod != nil {
			mod(o)
		}
	})
	s.sim.OnChange(func(c cloudsim.Change, v *cloudsim.View) {
		if c.Kind == cloudsim.ChangeStatus && c.To == "impaired" {
			s.impaired[c.InstanceID] = true
		}
	})
	return s
}

// violate records an end-state violation.
func (s *seedRun) violate(format string, args ...any) {
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

// finish collects the simulator's invariant violations and fault counts
// and adds the seed to the tally.
func (s *seedRun) finish() {
	s.violations = append(s.violations, s.sim.Violations()...)
	for code, n := range s.sim.Errors() {
		switch code {
		case "RequestLimitExceeded", "Throttling", "ThrottlingException":
			s.faults[fThrottle] += n
		case "InternalError", "InternalServerError":
			s.faults[f5xx] += n
		case "InsufficientInstanceCapacity":
			s.faults[fCapacity] += n
		case "InvalidInstanceID.NotFound", "InvalidAMIID.NotFound", "InvalidInstanceId":
			s.faults[fNotFound] += n
		}
	}
	s.faults[fUnhealthy] += len(s.impaired)
	global.add(s)
	for _, v := range s.violations[:min(5, len(s.violations))] {
		s.t.Errorf("violation: %s", v)
	}
}

// cancelCtx returns a context cancelled at a random point within max, the
// crash of the first run.
func (s *seedRun) cancelCtx(max time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	after := time.Duration(s.rng.Int64N(int64(max)))
	tm := time.AfterFunc(after, cancel)
	s.faults[fCancel]++
	return ctx, func() { tm.Stop(); cancel() }
}

// retry runs a test-side call until it succeeds (the faults apply to the
// test's own setup calls too).
func retry(t *testing.T, what string, f func() error) {
	t.Helper()
	var err error
	for i := 0; i < 200; i++ {
		if err = f(); err == nil {
			return
		}
		time.Sleep(2 * time.Second)
	}
	t.Fatalf("%s: %v", what, err)
}

// forSeeds runs body for every seed of op inside its own synctest bubble and
// checks that no goroutine outlived the operation.
func forSeeds(t *testing.T, op string, body func(t *testing.T, s *seedRun)) {
	t.Run(op, func(t *testing.T) {
		before := goleak.IgnoreCurrent()
		for seed := int64(1); seed <= int64(seeds()); seed++ {
			ok := t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					s := newSeedRunFor(t, op, seed)
					body(t, s)
					s.finish()
				})
			})
			if !ok && testing.Short() {
				break
			}
		}
		goleak.VerifyNone(t, before)
	})
}

// newSeedRunFor picks the per-operation simulator options.
func newSeedRunFor(t *testing.T, op string, seed int64) *seedRun {
	return newSeedRun(t, op, seed, simOptions[op])
}

var simOptions = map[string]func(*cloudsim.Options){}

// TestChaos runs every long operation on seeded faulty fleets and prints
// the CHAOS summary.
func TestChaos(t *testing.T) {
	for _, op := range operations {
		forSeeds(t, op.name, op.run)
	}
	rep := global.report()
	fmt.Fprint(os.Stdout, rep)
	if strings.Contains(rep, "CHAOS violation:") {
		t.Error("invariant violations (see the CHAOS lines)")
	}
}

type operation struct {
	name string
	run  func(t *testing.T, s *seedRun)
}
