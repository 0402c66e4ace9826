package poll

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/smithy-go"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/ratelimit"
)

// fakeFleet is a resource store whose resources become "ready" at a given
// time; it counts calls and their sizes.
type fakeFleet struct {
	mu      sync.Mutex
	readyAt map[string]time.Time
	calls   int
	sizes   []int
	byTick  map[time.Time][2]int // calls and IDs described at one instant (one tick)
	fail    func(call int) error
}

func (f *fakeFleet) fetch(ctx context.Context, ids []string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.sizes = append(f.sizes, len(ids))
	if f.byTick == nil {
		f.byTick = map[time.Time][2]int{}
	}
	bt := f.byTick[time.Now()]
	f.byTick[time.Now()] = [2]int{bt[0] + 1, bt[1] + len(ids)}
	if f.fail != nil {
		if err := f.fail(f.calls); err != nil {
			return nil, err
		}
	}
	out := map[string]string{}
	for _, id := range ids {
		r, ok := f.readyAt[id]
		if !ok {
			// EC2 semantics: an unknown ID fails the whole call.
			return nil, &smithy.GenericAPIError{Code: "InvalidInstanceID.NotFound", Message: id}
		}
		if time.Now().Before(r) {
			out[id] = "pending"
		} else {
			out[id] = "ready"
		}
	}
	return out, nil
}

func ready(s string) (bool, error) { return s == "ready", nil }

func noJitter(o *Options) { o.Jitter = -1 }

func TestFiveHundredWaitersOneCallPerChunkPerTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFleet{readyAt: map[string]time.Time{}}
		start := time.Now()
		var ids []string
		for i := 0; i < 500; i++ {
			id := fmt.Sprintf("i-%04d", i)
			ids = append(ids, id)
			f.readyAt[id] = start.Add(time.Duration(30+i%120) * time.Second)
		}
		p := New(f.fetch, noJitter, func(o *Options) { o.ChunkSize = 100 })
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := p.Wait(t.Context(), id, ready); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		st := p.Stats()
		// Each tick describes the IDs still waited on: ceil(n/100) calls.
		if st.Calls > 5*st.Ticks {
			t.Fatalf("%d calls in %d ticks: more than one call per chunk per tick", st.Calls, st.Ticks)
		}
		for at, ct := range f.byTick {
			if want := (ct[1] + 99) / 100; ct[0] != want {
				t.Fatalf("tick at %v: %d calls for %d IDs, want %d", at, ct[0], ct[1], want)
			}
		}
		for _, s := range f.sizes {
			if s > 100 {
				t.Fatalf("a call carried %d IDs, chunk limit is 100", s)
			}
		}
		// A per-waiter poller would make 500 calls on the first tick alone.
		if st.Calls >= 500 {
			t.Fatalf("%d calls for 500 waiters", st.Calls)
		}
		t.Logf("500 waiters: %d ticks, %d calls (%.2f calls/tick), ready after %v", st.Ticks, st.Calls, float64(st.Calls)/float64(st.Ticks), time.Since(start))
		if got := time.Since(start); got > 160*time.Second {
			t.Fatalf("last resource ready at 149s, wait ended at %v", got)
		}
	})
}

func TestFirstTickCost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFleet{readyAt: map[string]time.Time{}}
		var ids []string
		for i := 0; i < 500; i++ {
			id := fmt.Sprintf("i-%04d", i)
			ids = append(ids, id)
			f.readyAt[id] = time.Now() // ready at once
		}
		p := New(f.fetch, noJitter)
		_, errs := p.WaitAll(t.Context(), ids, ready)
		if len(errs) != 0 {
			t.Fatal(errs)
		}
		if st := p.Stats(); st.Ticks != 1 || st.Calls != 5 {
			t.Fatalf("500 ready IDs took %d ticks and %d calls, want 1 tick of 5 calls", st.Ticks, st.Calls)
		}
	})
}

func TestNotFoundGraceAndBisect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFleet{readyAt: map[string]time.Time{}}
		var ids []string
		for i := 0; i < 8; i++ {
			id := fmt.Sprintf("i-%d", i)
			ids = append(ids, id)
			f.readyAt[id] = time.Now().Add(10 * time.Second)
		}
		ids = append(ids, "i-ghost") // never exists
		lateID := "i-late"           // appears after 20s (eventual consistency)
		ids = append(ids, lateID)
		go func() {
			time.Sleep(20 * time.Second)
			f.mu.Lock()
			f.readyAt[lateID] = time.Now()
			f.mu.Unlock()
		}()
		p := New(f.fetch, noJitter, func(o *Options) { o.NotFoundGrace = time.Minute })
		start := time.Now()
		_, errs := p.WaitAll(t.Context(), ids, ready)
		if len(errs) != 1 || !errors.Is(errs["i-ghost"], ec2ops.ErrNotFound) {
			t.Fatalf("errs = %v, want only i-ghost not found", errs)
		}
		if el := time.Since(start); el < time.Minute {
			t.Fatalf("ghost failed after %v, before the 1m grace", el)
		}
	})
}

func TestThrottlingIsRetriedNotSurfaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFleet{readyAt: map[string]time.Time{"i-1": time.Now()}}
		f.fail = func(call int) error {
			if call <= 3 {
				return &smithy.GenericAPIError{Code: "RequestLimitExceeded"}
			}
			return nil
		}
		p := New(f.fetch, noJitter)
		start := time.Now()
		if _, err := p.Wait(t.Context(), "i-1", ready); err != nil {
			t.Fatalf("throttling surfaced: %v", err)
		}
		st := p.Stats()
		if st.Throttled != 3 || st.Calls != 4 {
			t.Fatalf("stats %+v, want 3 throttled of 4 calls", st)
		}
		// Delays double on throttling: 5 + 10 + 20 + 30(cap) = 65s.
		if el := time.Since(start); el != 65*time.Second {
			t.Fatalf("took %v, want 65s of doubling backoff", el)
		}
	})
}

func TestTransientErrorsFailAfterMaxErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFleet{readyAt: map[string]time.Time{"i-1": time.Now()}}
		boom := &smithy.GenericAPIError{Code: "InternalError", Fault: smithy.FaultServer}
		f.fail = func(int) error { return boom }
		p := New(f.fetch, noJitter, func(o *Options) { o.MaxErrors = 3 })
		_, err := p.Wait(t.Context(), "i-1", ready)
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InternalError" {
			t.Fatalf("err = %v, want the InternalError after 3 tries", err)
		}
		if c := p.Stats().Calls; c != 3 {
			t.Fatalf("%d calls, want 3", c)
		}
	})
}

func TestOtherErrorFailsChunkAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFleet{readyAt: map[string]time.Time{"i-1": time.Now()}}
		f.fail = func(int) error { return &smithy.GenericAPIError{Code: "UnauthorizedOperation"} }
		p := New(f.fetch, noJitter)
		_, err := p.Wait(t.Context(), "i-1", ready)
		if err == nil || p.Stats().Calls != 1 {
			t.Fatalf("err = %v after %d calls, want auth error after 1", err, p.Stats().Calls)
		}
	})
}

func TestConditionError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFleet{readyAt: map[string]time.Time{"i-1": time.Now().Add(time.Hour)}}
		p := New(f.fetch, noJitter)
		_, err := p.Wait(t.Context(), "i-1", func(s string) (bool, error) {
			return false, fmt.Errorf("%w: %s", ErrCondition, s)
		})
		if !errors.Is(err, ErrCondition) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestCancelStopsWaitAndLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFleet{readyAt: map[string]time.Time{"i-1": time.Now().Add(time.Hour)}}
		p := New(f.fetch, noJitter)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		_, err := p.Wait(ctx, "i-1", ready)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		// The loop goroutine must exit once nothing is waited on; synctest
		// reports a deadlock if it were left blocked.
		synctest.Wait()
		p.mu.Lock()
		running := p.running
		p.mu.Unlock()
		if running {
			t.Fatal("poll loop still running with no waiters")
		}
	})
}

func TestBackoffGrowsAndResets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFleet{readyAt: map[string]time.Time{"i-1": time.Now().Add(100 * time.Second)}}
		p := New(f.fetch, noJitter)
		start := time.Now()
		if _, err := p.Wait(t.Context(), "i-1", ready); err != nil {
			t.Fatal(err)
		}
		// Ticks at 5, 12.5, 23.75, 40.6, 65.9, 95.9, 125.9: ready at 100s seen at 125.9s.
		if st := p.Stats(); st.Ticks != 7 {
			t.Fatalf("%d ticks, want 7", st.Ticks)
		}
		if el := time.Since(start); el > 130*time.Second {
			t.Fatalf("took %v", el)
		}
	})
}

func TestPacedByLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFleet{readyAt: map[string]time.Time{}}
		var ids []string
		for i := 0; i < 6000; i++ {
			id := fmt.Sprintf("i-%05d", i)
			ids = append(ids, id)
			f.readyAt[id] = time.Now()
		}
		lim := ratelimit.New(ratelimit.EC2())
		p := New(f.fetch, noJitter, func(o *Options) { o.Limiter = lim; o.Action = "DescribeInstanceStatus" })
		start := time.Now()
		_, errs := p.WaitAll(t.Context(), ids, ready)
		if len(errs) != 0 {
			t.Fatal(len(errs))
		}
		// 60 calls against a 50/10 bucket: the last 10 wait 1s; the tick is at 5s.
		if el := time.Since(start); el != 6*time.Second {
			t.Fatalf("took %v, want 6s (5s tick + 1s of pacing)", el)
		}
	})
}
