package ratelimit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestBucketTryTake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBucket(Spec{Capacity: 5, Refill: 2})
		for i := 0; i < 5; i++ {
			if !b.TryTake(1) {
				t.Fatalf("take %d refused from a full bucket", i)
			}
		}
		if b.TryTake(1) {
			t.Fatal("empty bucket gave a token")
		}
		time.Sleep(500 * time.Millisecond) // refill 2/s -> 1 token
		if !b.TryTake(1) {
			t.Fatal("no token after 0.5 s at 2/s")
		}
		time.Sleep(time.Hour)
		if got := b.Tokens(); got != 5 {
			t.Fatalf("bucket overfilled or underfilled: %v tokens, want capacity 5", got)
		}
	})
}

func TestWaitPacesAtRefillRate(t *testing.T) {
	tests := []struct {
		name  string
		spec  Spec
		calls int
		want  time.Duration
	}{
		{"burst within capacity", Spec{5, 2}, 5, 0},
		{"RunInstances 5/2, 25 calls", Spec{5, 2}, 25, 10 * time.Second},
		{"CopyImage 100/1, 110 calls", Spec{100, 1}, 110, 10 * time.Second},
		{"PutMetricAlarm 3/3, 30 calls", Spec{3, 3}, 30, 9 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := NewBucket(tt.spec)
				start := time.Now()
				for i := 0; i < tt.calls; i++ {
					if err := b.Wait(t.Context(), 1); err != nil {
						t.Fatal(err)
					}
				}
				if got := time.Since(start); got != tt.want {
					t.Fatalf("%d calls took %v, want %v", tt.calls, got, tt.want)
				}
			})
		})
	}
}

func TestWaitConcurrentNeverOverspends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := Spec{Capacity: 10, Refill: 5}
		b := NewBucket(spec)
		var mu sync.Mutex
		var stamps []time.Time
		var wg sync.WaitGroup
		for g := 0; g < 20; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 5; i++ {
					if err := b.Wait(t.Context(), 1); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					stamps = append(stamps, time.Now())
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		// 100 calls: 10 at once, then 90 at 5/s = 18 s.
		start := stamps[0]
		last := start
		for _, s := range stamps {
			if s.After(last) {
				last = s
			}
		}
		if d := last.Sub(start); d != 18*time.Second {
			t.Fatalf("100 calls finished after %v, want 18s", d)
		}
		// In any window [s, s+1s) at most capacity + refill calls happen.
		for _, s := range stamps {
			n := 0
			for _, u := range stamps {
				if !u.Before(s) && u.Before(s.Add(time.Second)) {
					n++
				}
			}
			if n > 15 {
				t.Fatalf("%d calls in one second from %v, bucket allows 15", n, s)
			}
		}
	})
}

func TestWaitHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBucket(Spec{1, 0.1})
		if err := b.Wait(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		err := b.Wait(ctx, 1)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
		// The canceled reservation was given back: after 10 s one token is there.
		time.Sleep(9 * time.Second)
		if !b.TryTake(1) {
			t.Fatal("reservation of a canceled wait was not returned")
		}
	})
}

func TestWaitTooLarge(t *testing.T) {
	b := NewBucket(Spec{1000, 2})
	var tl *ErrTooLarge
	if err := b.Wait(context.Background(), 1001); !errors.As(err, &tl) || tl.Need != 1001 {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestLimiterResourceBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(EC2())
		// 1000 instances drain the RunInstances resource bucket (1000/2).
		if err := l.Wait(t.Context(), "RunInstances", 1000); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := l.Wait(t.Context(), "RunInstances", 10); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 5*time.Second {
			t.Fatalf("10 more instances waited %v, want 5s at 2 instances/s", got)
		}
		if l.Allow("RunInstances", 1) {
			t.Fatal("Allow gave a resource token from an empty bucket")
		}
		// Another action's bucket is separate.
		if !l.Allow("DescribeInstances", 0) {
			t.Fatal("DescribeInstances throttled by RunInstances")
		}
	})
}

func TestLimiterShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(EC2(), func(o *Options) { o.Share = 0.5 })
		n := 0
		for l.Allow("CreateTags", 0) {
			n++
		}
		if n != 50 {
			t.Fatalf("half share of CreateTags 100/10 allowed a burst of %d, want 50", n)
		}
		start := time.Now()
		if err := l.Wait(t.Context(), "CreateTags", 0); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 200*time.Millisecond {
			t.Fatalf("waited %v, want 200ms at 5/s", got)
		}
	})
}

func TestPresets(t *testing.T) {
	tests := []struct {
		p        Preset
		action   string
		req      Spec
		resource *Spec
	}{
		{EC2(), "RunInstances", Spec{5, 2}, &Spec{1000, 2}},
		{EC2(), "TerminateInstances", Spec{100, 5}, &Spec{1000, 20}},
		{EC2(), "DescribeInstances", Spec{50, 10}, nil},
		{EC2(), "DescribeInstanceStatus", Spec{50, 10}, nil},
		{EC2(), "DescribeImages", Spec{100, 20}, nil},
		{EC2(), "CreateImage", Spec{50, 5}, nil},
		{EC2(), "CreateTags", Spec{100, 10}, nil},
		{EC2(), "CopyImage", Spec{100, 1}, nil},
		{EC2(), "DeregisterImage", Spec{100, 5}, nil},
		{CloudWatch(), "PutMetricAlarm", Spec{3, 3}, nil},
		{CloudWatch(), "DescribeAlarms", Spec{9, 9}, nil},
		{SSM(), "SendCommand", Spec{10, 5}, nil},
	}
	for _, tt := range tests {
		r := tt.p.Rule(tt.action)
		if r.Request != tt.req {
			t.Errorf("%s %s request = %+v, want %+v", tt.p.Name, tt.action, r.Request, tt.req)
		}
		if (r.Resource == nil) != (tt.resource == nil) || (r.Resource != nil && *r.Resource != *tt.resource) {
			t.Errorf("%s %s resource = %v, want %v", tt.p.Name, tt.action, r.Resource, tt.resource)
		}
	}
}

func TestNilLimiterDoesNotPace(t *testing.T) {
	var l *Limiter
	if err := l.Wait(context.Background(), "RunInstances", 5000); err != nil {
		t.Fatal(err)
	}
}

func TestCompressed(t *testing.T) {
	p := EC2().Compressed(0.5)
	r := p.Rule("RunInstances")
	if r.Request != (Spec{5, 4}) || *r.Resource != (Spec{1000, 4}) {
		t.Fatalf("RunInstances compressed 2x = %+v %+v", r.Request, *r.Resource)
	}
	if orig := EC2().Rule("RunInstances"); orig.Request.Refill != 2 || orig.Resource.Refill != 2 {
		t.Fatal("Compressed changed the original preset")
	}
	if got := p.Rule("SomethingElse").Request; got != (Spec{50, 10}) {
		t.Fatalf("default compressed = %+v", got)
	}
	if EC2().Compressed(1).Rule("CopyImage") != EC2().Rule("CopyImage") {
		t.Fatal("scale 1 changed the preset")
	}
}
