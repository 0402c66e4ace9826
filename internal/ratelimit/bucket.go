// Package ratelimit paces API calls on the client side with token buckets that
// mirror the ones AWS applies per account and Region, so that the library
// spends its share of the budget smoothly instead of hitting
// RequestLimitExceeded and backing off.
//
// EC2 evaluates each API action individually: every action has its own
// request bucket, sized by its category (non-mutating, mutating, ...), and
// some actions (RunInstances, TerminateInstances, StartInstances,
// StopInstances) also have a resource bucket that costs one token per
// instance. Source: "Request throttling for the Amazon EC2 API", Amazon EC2
// Developer Guide (ec2-api-throttling). A call needs tokens in both buckets.
//
// The same Bucket type serves the simulator (TryTake: refuse when empty, as
// AWS does) and the library (Wait: block until the tokens are there).
package ratelimit

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// Spec sizes a token bucket: Capacity tokens at most, refilled at Refill
// tokens per second.
type Spec struct {
	Capacity float64
	Refill   float64
}

// Scale returns s with capacity and refill multiplied by f (a share of the
// account's budget). Capacity never drops below one token so that a call can
// still be made.
func (s Spec) Scale(f float64) Spec {
	c := math.Max(1, s.Capacity*f)
	return Spec{Capacity: c, Refill: s.Refill * f}
}

// Bucket is a token bucket that is safe for concurrent use. Tokens can go
// negative: Wait reserves tokens ahead of time (as golang.org/x/time/rate
// does), which keeps waiters in FIFO order without a queue.
type Bucket struct {
	mu     sync.Mutex
	spec   Spec
	tokens float64
	last   time.Time
}

// NewBucket returns a full bucket.
func NewBucket(s Spec) *Bucket {
	return &Bucket{spec: s, tokens: s.Capacity, last: nowFunc()}
}

// Spec returns the bucket's size.
func (b *Bucket) Spec() Spec { return b.spec }

func (b *Bucket) advance(now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(b.spec.Capacity, b.tokens+dt*b.spec.Refill)
		b.last = now
	}
}

// Tokens returns the tokens available now (negative while reserved ahead).
func (b *Bucket) Tokens() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(nowFunc())
	return b.tokens
}

// TryTake takes n tokens if they are all available now and reports whether
// it did. It never blocks.
func (b *Bucket) TryTake(n float64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(nowFunc())
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// ErrTooLarge is returned by Wait when a single request needs more tokens
// than the bucket can ever hold; the caller must split the request.
type ErrTooLarge struct {
	Need, Capacity float64
}

func (e *ErrTooLarge) Error() string {
	return fmt.Sprintf("ratelimit: request needs %.0f tokens, bucket holds %.0f; split the request", e.Need, e.Capacity)
}

// reserve takes n tokens, possibly going negative, and returns how long the
// caller must wait before the reservation is covered.
func (b *Bucket) reserve(now time.Time, n float64) time.Duration {
	b.advance(now)
	b.tokens -= n
	if b.tokens >= 0 {
		return 0
	}
	if b.spec.Refill <= 0 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(-b.tokens / b.spec.Refill * float64(time.Second))
}

// giveBack returns n reserved tokens after a canceled wait.
func (b *Bucket) giveBack(n float64) {
	b.mu.Lock()
	b.advance(nowFunc())
	b.tokens = math.Min(b.spec.Capacity, b.tokens+n)
	b.mu.Unlock()
}

// Wait blocks until n tokens are available and takes them, or returns
// ctx.Err() (giving the reservation back) when ctx ends first.
func (b *Bucket) Wait(ctx context.Context, n float64) error {
	return waitAll(ctx, []*Bucket{b}, []float64{n})
}

// waitAll reserves n[i] tokens in every bucket at once and sleeps until the
// slowest of them is covered, so that a call needing two buckets (request and
// resource) waits once, for the longer of the two.
func waitAll(ctx context.Context, bs []*Bucket, n []float64) error {
	for i, b := range bs {
		if n[i] > b.spec.Capacity {
			return &ErrTooLarge{Need: n[i], Capacity: b.spec.Capacity}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now := nowFunc()
	var delay time.Duration
	for i, b := range bs {
		b.mu.Lock()
		if d := b.reserve(now, n[i]); d > delay {
			delay = d
		}
		b.mu.Unlock()
	}
	if delay <= 0 {
		return nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		for i, b := range bs {
			b.giveBack(n[i])
		}
		return ctx.Err()
	}
}

// nowFunc is time.Now; inside a testing/synctest bubble it reads the
// bubble's fake clock.
func nowFunc() time.Time { return time.Now() }
