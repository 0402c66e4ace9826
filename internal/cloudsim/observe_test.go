package cloudsim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestCapacityTraceAndInvariant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		c := s.EC2()
		ctx := context.Background()
		web := launch(t, c, runInput(10, withTags("app", "web")))
		launch(t, c, runInput(3, withTags("app", "db")))
		time.Sleep(5 * time.Minute)
		isWeb := func(v InstanceView) bool { return v.Tags["app"] == "web" }
		s.TrackCapacity("web", isWeb)
		s.AddInvariant("web floor 8", func(ch Change, v *View) error {
			if n := v.Capacity("web"); n < 8 {
				return fmt.Errorf("healthy web capacity %d < 8", n)
			}
			return nil
		})
		if got := s.Violations(); len(got) != 0 {
			t.Fatalf("violations before any change: %v", got)
		}
		t0 := time.Now()
		_, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: web[:2]})
		mustOK(t, err)
		if got := s.Violations(); len(got) != 0 {
			t.Fatalf("violations at 8 healthy: %v", got)
		}
		time.Sleep(time.Minute)
		t1 := time.Now()
		_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: web[2:3]})
		mustOK(t, err)
		got := s.Violations()
		if len(got) == 0 || !strings.Contains(got[0], "web floor 8") || !strings.Contains(got[0], web[2]) ||
			!strings.Contains(got[0], "healthy web capacity 7 < 8") {
			t.Fatalf("violations = %v", got)
		}
		// Replace the three: capacity returns to 10.
		launch(t, c, runInput(3, withTags("app", "web")))
		time.Sleep(5 * time.Minute)
		want := []CapacityPoint{{t0, 10}, {t0, 9}, {t0, 8}, {t1, 7}}
		trace := s.Trace("web")
		if !slices.Equal(trace[:4], want) || trace[len(trace)-1].Healthy != 10 || len(trace) != 7 {
			t.Fatalf("trace = %v", trace)
		}
		if m := s.MinHealthy("web"); m != 7 {
			t.Fatalf("MinHealthy = %d, want 7", m)
		}
		if s.MinHealthy("nope") != -1 || s.Trace("nope") != nil {
			t.Fatal("unknown tracker")
		}
		if n := s.Healthy(isWeb); n != 10 {
			t.Fatalf("Healthy(web) = %d", n)
		}
		// Retagging moves an instance out of the tracked set.
		_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: web[3:4], Tags: tagList("app", "retired")})
		mustOK(t, err)
		if tr := s.Trace("web"); tr[len(tr)-1].Healthy != 9 {
			t.Fatalf("after retag: %v", tr[len(tr)-1])
		}
	})
}

func tagList(kv ...string) []types.Tag {
	var out []types.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

// scenario runs a small fleet story and returns everything observable:
// IDs, and each change with its time since the start.
func scenario(t *testing.T, seed int64, touchOther bool) (log []string) {
	synctest.Test(t, func(t *testing.T) {
		s := New(func(o *Options) { o.Seed = seed })
		start := time.Now()
		s.OnChange(func(c Change, v *View) {
			log = append(log, fmt.Sprintf("%v %s %s %s->%s", c.Time.Sub(start), c.InstanceID, c.Kind, c.From, c.To))
		})
		c := s.EC2()
		ctx := context.Background()
		a := launch(t, c, runInput(3))
		b := launch(t, c, runInput(2))
		time.Sleep(10 * time.Second)
		if touchOther {
			// Calls about other instances, at other times, must not change
			// a's draws.
			_, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: b[:1]})
			mustOK(t, err)
			for range 5 {
				_, _ = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: b})
				time.Sleep(7 * time.Second)
			}
		} else {
			time.Sleep(35 * time.Second) // the same timeline, without the calls
		}
		time.Sleep(5 * time.Minute)
		_, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: a[:1]})
		mustOK(t, err)
		time.Sleep(2 * time.Minute)
		_, err = c.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: a[:1]})
		mustOK(t, err)
		time.Sleep(10 * time.Minute)
		s.Advance()
	})
	return log
}

func TestDeterminism(t *testing.T) {
	one, two := scenario(t, 7, false), scenario(t, 7, false)
	if len(one) == 0 || !slices.Equal(one, two) {
		t.Fatalf("same seed, different runs:\n%v\n%v", one, two)
	}
	other := scenario(t, 8, false)
	if slices.Equal(one, other) {
		t.Fatal("different seeds gave identical runs")
	}
	// Per-instance draws do not depend on calls about other instances:
	// the changes of the first reservation's instances are the same.
	touched := scenario(t, 7, true)
	firstRes := func(log []string) []string {
		var ids []string
		for _, l := range log[:3] { // the three launches of a come first
			ids = append(ids, strings.Fields(l)[1])
		}
		var out []string
		for _, l := range log {
			for _, id := range ids {
				if strings.Contains(l, id) {
					out = append(out, l)
				}
			}
		}
		return out
	}
	if a, b := firstRes(one), firstRes(touched); !slices.Equal(a, b) {
		t.Fatalf("other instances' calls changed a's story:\n%v\n%v", a, b)
	}
}

func TestInstanceIDsDeterministic(t *testing.T) {
	ids := func(seed int64) []string {
		s := New(noThrottle, func(o *Options) { o.Seed = seed })
		return launch(t, s.EC2(), runInput(50))
	}
	a, b, c := ids(1), ids(1), ids(2)
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Fatal("instance IDs not a function of the seed")
	}
	seen := map[string]bool{}
	for _, id := range a {
		if seen[id] || !validID(id, "i-") || len(id) != 19 {
			t.Fatalf("bad or duplicate ID %s", id)
		}
		seen[id] = true
	}
	// Default seed is 1.
	if d := New(func(o *Options) { o.Seed = 0 }); d.Subnets()["us-east-1a"] != New().Subnets()["us-east-1a"] {
		t.Fatal("seed 0 is not the default seed 1")
	}
}

func TestHooksSeeConsistentViews(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle)
		var kinds = map[ChangeKind]int{}
		var leaked *View
		s.OnChange(func(c Change, v *View) {
			kinds[c.Kind]++
			if !v.Time().Equal(c.Time) {
				t.Errorf("view time %v, change time %v", v.Time(), c.Time)
			}
			// Healthy in the view agrees with the change that just happened.
			if c.Kind == ChangeStatus && c.To == "ok" {
				if iv, _ := v.Instance(c.InstanceID); !iv.Healthy {
					t.Errorf("%s ok but not healthy in the view", c.InstanceID)
				}
			}
			_ = v.Instances()
			leaked = v
		})
		c := s.EC2()
		ids := launch(t, c, runInput(20))
		time.Sleep(time.Hour)
		if n := s.Healthy(nil); n != 20 {
			t.Fatalf("healthy %d", n)
		}
		_, err := c.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: ids, Tags: tagList("a", "b")})
		mustOK(t, err)
		if kinds[ChangeState] != 40 || kinds[ChangeStatus] != 40 || kinds[ChangeTags] != 20 {
			t.Fatalf("changes by kind: %v", kinds)
		}
		defer func() {
			if recover() == nil {
				t.Fatal("a View used after its hook returned did not panic")
			}
		}()
		leaked.Instances()
	})
}
