// Package poll waits for many resources at once with batched Describe calls.
//
// The SDK's waiters poll one resource per waiter: a fleet of 1,000 instances
// waited on that way makes 1,000 DescribeInstances calls per round and drains
// the account's token bucket (DescribeInstances refills 10 a second). A Poller
// instead keeps one registry of everything being waited on and, on each tick,
// makes one Describe call per chunk of registered IDs (the chunk size is the
// API's limit, e.g. 100 IDs for DescribeInstanceStatus), then fans the results
// out to every waiter. The cost per tick is ceil(IDs/chunk) calls, whatever the
// number of waiters.
//
// Behaviour:
//   - Ticks start Interval after the loop starts; when a tick completes no
//     wait, the delay grows by Backoff up to MaxInterval; when one completes,
//     it returns to Interval. Every delay is jittered by ±Jitter.
//   - Throttling and transient server errors never reach a waiter: the tick
//     backs off (doubling the delay) and retries. A chunk that keeps failing
//     with transient errors for MaxErrors ticks fails its waiters.
//   - EC2 fails a whole Describe call when one of its IDs does not exist. The
//     poller bisects such a chunk to find the missing IDs, so one bad ID costs
//     a few extra calls and never fails its neighbours.
//   - An ID that is not found within NotFoundGrace of its registration is
//     still pending (EC2 is eventually consistent right after a create);
//     after the grace, its waiters get an error matching ec2ops.ErrNotFound.
//   - The loop runs only while something is waited on; it stops when the last
//     waiter returns, and each waiter stops waiting when its ctx ends.
package poll

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awserr"
	"github.com/ec2ops/ec2ops/internal/ratelimit"
)

// Fetch describes one chunk of IDs and returns the observation for each ID
// it found. IDs missing from the map are treated as not found. An error
// classified NotFound (internal/awserr) says at least one ID of the chunk
// does not exist.
type Fetch[T any] func(ctx context.Context, ids []string) (map[string]T, error)

// Condition inspects an observation. done ends the wait successfully; a
// non-nil error ends it with that error (for example an instance that
// terminated while being waited on to run). It runs on the poller's
// goroutine with the poller locked: it must be quick and must not call the
// Poller.
type Condition[T any] func(obs T) (done bool, err error)

// Options configures a Poller. Zero values are safe defaults.
type Options struct {
	// ChunkSize is the most IDs one Describe call may carry. Default 100
	// (the DescribeInstanceStatus limit).
	ChunkSize int
	// Interval is the first delay between ticks. Default 5s.
	Interval time.Duration
	// MaxInterval caps the delay. Default 30s.
	MaxInterval time.Duration
	// Backoff multiplies the delay after a tick that completed no wait.
	// Default 1.5.
	Backoff float64
	// Jitter is the fraction by which each delay varies, in [0, 1). Default
	// 0.1. Negative disables jitter.
	Jitter float64
	// NotFoundGrace is how long after registration a missing ID still
	// counts as pending. Default 2m.
	NotFoundGrace time.Duration
	// MaxErrors is how many consecutive ticks a chunk may fail with a
	// transient error before its waiters fail. Throttling never counts.
	// Default 10.
	MaxErrors int
	// Limiter and Action pace every Describe call (e.g. Action
	// "DescribeInstanceStatus"); nil means no client-side pacing.
	Limiter *ratelimit.Limiter
	Action  string
	// Seed seeds the jitter so simulated runs are reproducible. Default 1.
	Seed uint64
}

// Stats counts the poller's work.
type Stats struct {
	Ticks     int // ticks run
	Calls     int // Describe calls made
	Throttled int // calls answered with a throttling error (retried, never surfaced)
	Errors    int // calls that failed otherwise
}

type waiter[T any] struct {
	id   string
	cond Condition[T]
	reg  time.Time
	done chan result[T]
}

type result[T any] struct {
	obs T
	err error
}

// Poller batches waits for resources of one kind. It is safe for concurrent
// use. The zero value is not usable; call New.
type Poller[T any] struct {
	fetch Fetch[T]
	opt   Options

	mu      sync.Mutex
	waiters map[string][]*waiter[T]
	running bool
	wake    chan struct{} // closed-over by the loop; signalled when waiters go to zero
	rng     *rand.Rand
	fails   map[string]int
	stats   Stats
}

// New returns a Poller that observes resources with fetch.
func New[T any](fetch Fetch[T], optFns ...func(*Options)) *Poller[T] {
	o := Options{}
	for _, f := range optFns {
		f(&o)
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = 100
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.MaxInterval < o.Interval {
		o.MaxInterval = max(30*time.Second, o.Interval)
	}
	if o.Backoff < 1 {
		o.Backoff = 1.5
	}
	if o.Jitter == 0 {
		o.Jitter = 0.1
	} else if o.Jitter < 0 || o.Jitter >= 1 {
		o.Jitter = 0
	}
	if o.NotFoundGrace <= 0 {
		o.NotFoundGrace = 2 * time.Minute
	}
	if o.MaxErrors <= 0 {
		o.MaxErrors = 10
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return &Poller[T]{
		fetch:   fetch,
		opt:     o,
		waiters: map[string][]*waiter[T]{},
		wake:    make(chan struct{}, 1),
		rng:     rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15)),
		fails:   map[string]int{},
	}
}

// Stats returns the counters so far.
func (p *Poller[T]) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Wait blocks until cond reports done for id's observation, cond returns an
// error, id is not found past the grace period, or ctx ends.
func (p *Poller[T]) Wait(ctx context.Context, id string, cond Condition[T]) (T, error) {
	w := p.register(ctx, []string{id}, cond)[0]
	return p.await(ctx, w)
}

// WaitAll waits for every id with the same condition and returns the final
// observation of each id that reached done and the error of each that did
// not. It returns when every id is settled or ctx ends (the unsettled ids
// then carry ctx.Err()).
func (p *Poller[T]) WaitAll(ctx context.Context, ids []string, cond Condition[T]) (map[string]T, map[string]error) {
	ws := p.register(ctx, ids, cond)
	obs := make(map[string]T, len(ids))
	errs := map[string]error{}
	for _, w := range ws {
		o, err := p.await(ctx, w)
		if err != nil {
			errs[w.id] = err
		} else {
			obs[w.id] = o
		}
	}
	return obs, errs
}

func (p *Poller[T]) register(ctx context.Context, ids []string, cond Condition[T]) []*waiter[T] {
	now := time.Now()
	ws := make([]*waiter[T], len(ids))
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, id := range ids {
		w := &waiter[T]{id: id, cond: cond, reg: now, done: make(chan result[T], 1)}
		p.waiters[id] = append(p.waiters[id], w)
		ws[i] = w
	}
	if !p.running && len(p.waiters) > 0 {
		p.running = true
		// The loop serves many callers, so it must not die with the first
		// caller's ctx; it keeps that ctx's values and stops by itself when
		// nothing is waited on any more.
		lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		go p.loop(lctx, cancel)
	}
	return ws
}

func (p *Poller[T]) await(ctx context.Context, w *waiter[T]) (T, error) {
	select {
	case r := <-w.done:
		return r.obs, r.err
	case <-ctx.Done():
		p.remove(w)
		// The loop may have delivered between ctx ending and removal.
		select {
		case r := <-w.done:
			return r.obs, r.err
		default:
		}
		var zero T
		return zero, ctx.Err()
	}
}

func (p *Poller[T]) remove(w *waiter[T]) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(w)
}

func (p *Poller[T]) removeLocked(w *waiter[T]) {
	ws := p.waiters[w.id]
	i := slices.Index(ws, w)
	if i < 0 {
		return
	}
	ws = slices.Delete(ws, i, i+1)
	if len(ws) == 0 {
		delete(p.waiters, w.id)
		delete(p.fails, w.id)
	} else {
		p.waiters[w.id] = ws
	}
	if len(p.waiters) == 0 {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

func (p *Poller[T]) deliver(w *waiter[T], r result[T]) {
	p.removeLocked(w)
	w.done <- r
}

func (p *Poller[T]) jitter(d time.Duration) time.Duration {
	if p.opt.Jitter == 0 {
		return d
	}
	p.mu.Lock()
	f := 1 + p.opt.Jitter*(2*p.rng.Float64()-1)
	p.mu.Unlock()
	return time.Duration(float64(d) * f)
}

func (p *Poller[T]) loop(ctx context.Context, cancel context.CancelFunc) {
	defer cancel()
	delay := p.opt.Interval
	timer := time.NewTimer(p.jitter(delay))
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
		case <-p.wake:
		}
		p.mu.Lock()
		if len(p.waiters) == 0 {
			p.running = false
			select { // drop a stale wake-up so the next loop starts clean
			case <-p.wake:
			default:
			}
			p.mu.Unlock()
			return
		}
		ids := make([]string, 0, len(p.waiters))
		for id := range p.waiters {
			ids = append(ids, id)
		}
		p.stats.Ticks++
		p.mu.Unlock()
		slices.Sort(ids)

		completed, throttled := false, false
		for chunk := range slices.Chunk(ids, p.opt.ChunkSize) {
			c, t := p.pollChunk(ctx, chunk)
			completed = completed || c
			throttled = throttled || t
		}
		switch {
		case throttled:
			delay = min(2*delay, p.opt.MaxInterval)
		case completed:
			delay = p.opt.Interval
		default:
			delay = min(time.Duration(float64(delay)*p.opt.Backoff), p.opt.MaxInterval)
		}
		timer.Reset(p.jitter(delay))
	}
}

// pollChunk describes one chunk and settles its waiters. It reports whether
// any wait completed and whether the call was throttled.
func (p *Poller[T]) pollChunk(ctx context.Context, ids []string) (completed, throttled bool) {
	if err := p.opt.Limiter.Wait(ctx, p.opt.Action, 0); err != nil {
		return false, false
	}
	obs, err := p.fetch(ctx, ids)
	p.mu.Lock()
	p.stats.Calls++
	p.mu.Unlock()
	switch awserr.Classify(err) {
	case awserr.None:
		return p.settle(ids, obs), false
	case awserr.NotFound:
		if len(ids) == 1 {
			return p.settle(ids, nil), false
		}
		half := len(ids) / 2
		c1, t1 := p.pollChunk(ctx, ids[:half])
		c2, t2 := p.pollChunk(ctx, ids[half:])
		return c1 || c2, t1 || t2
	case awserr.Throttle:
		p.mu.Lock()
		p.stats.Throttled++
		p.mu.Unlock()
		return false, true
	case awserr.Transient:
		return p.failAfter(ids, err), false
	case awserr.Canceled:
		return false, false
	default:
		p.mu.Lock()
		defer p.mu.Unlock()
		p.stats.Errors++
		for _, id := range ids {
			for _, w := range slices.Clone(p.waiters[id]) {
				p.deliver(w, result[T]{err: fmt.Errorf("poll %s: %w", id, err)})
			}
		}
		return true, false
	}
}

// failAfter counts a transient failure for each id and fails the waiters of
// those that reached MaxErrors.
func (p *Poller[T]) failAfter(ids []string, err error) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Errors++
	completed := false
	for _, id := range ids {
		p.fails[id]++
		if p.fails[id] < p.opt.MaxErrors {
			continue
		}
		for _, w := range slices.Clone(p.waiters[id]) {
			p.deliver(w, result[T]{err: fmt.Errorf("poll %s: %d consecutive failures: %w", id, p.fails[id], err)})
			completed = true
		}
	}
	return completed
}

func (p *Poller[T]) settle(ids []string, obs map[string]T) bool {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	completed := false
	for _, id := range ids {
		delete(p.fails, id)
		o, found := obs[id]
		for _, w := range slices.Clone(p.waiters[id]) {
			if !found {
				if now.Sub(w.reg) >= p.opt.NotFoundGrace {
					p.deliver(w, result[T]{err: fmt.Errorf("poll %s: %w (still missing %s after registration)", id, ec2ops.ErrNotFound, now.Sub(w.reg))})
					completed = true
				}
				continue
			}
			done, err := w.cond(o)
			if err != nil || done {
				p.deliver(w, result[T]{obs: o, err: err})
				completed = true
			}
		}
	}
	return completed
}

// ErrCondition is a convenience for conditions: wrap a terminal state in it,
// e.g. fmt.Errorf("%w: instance %s terminated", poll.ErrCondition, id).
var ErrCondition = errors.New("poll: resource reached a state it cannot leave")
