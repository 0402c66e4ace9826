package chaos

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/lifecycle"
)

func init() {
	operations = append(operations, operation{"rollout", chaosRollout})
}

var operations []operation

// replacementInvariants: healthy capacity of the selected fleet never
// under floor; never two live replacements of one instance (duplicate
// launch); an original terminated only while a healthy replacement exists,
// a replacement only while its original lives (wrong termination).
func replacementInvariants(sim *cloudsim.Sim, name string, match func(cloudsim.InstanceView) bool, floor int) {
	sim.TrackCapacity(name, match)
	sim.AddInvariant("floor", func(c cloudsim.Change, v *cloudsim.View) error {
		if n := v.Capacity(name); n < floor {
			return fmt.Errorf("healthy capacity %d < floor %d", n, floor)
		}
		return nil
	})
	sim.AddInvariant("termination", func(c cloudsim.Change, v *cloudsim.View) error {
		if c.Kind != cloudsim.ChangeState || c.To != "shutting-down" {
			return nil
		}
		me, _ := v.Instance(c.InstanceID)
		if !match(me) {
			return nil
		}
		if old := me.Tags[lifecycle.TagReplaces]; old != "" {
			if o, ok := v.Instance(old); !ok || !live(o) {
				return fmt.Errorf("replacement %s terminated after its old instance %s", c.InstanceID, old)
			}
			return nil
		}
		for _, x := range v.Instances() {
			if x.Tags[lifecycle.TagReplaces] == c.InstanceID && x.Healthy {
				return nil
			}
		}
		return fmt.Errorf("original %s terminated without a healthy replacement", c.InstanceID)
	})
	sim.AddInvariant("no-duplicate", func(c cloudsim.Change, v *cloudsim.View) error {
		if c.Kind != cloudsim.ChangeState || c.From != "" {
			return nil
		}
		me, _ := v.Instance(c.InstanceID)
		old := me.Tags[lifecycle.TagReplaces]
		if old == "" {
			return nil
		}
		n := 0
		for _, x := range v.Instances() {
			if x.Tags[lifecycle.TagReplaces] == old && live(x) {
				n++
			}
		}
		if n > 1 {
			return fmt.Errorf("%d live replacements of %s", n, old)
		}
		return nil
	})
}

// chaosRollout: a Surge rollout of 4-6 instances to a new image, cancelled
// at a random point, then run again until it finishes.
func chaosRollout(t *testing.T, s *seedRun) {
	n := 4 + s.rng.IntN(3)
	handover := s.seed%4 == 0
	launchHealthy(t, s, n, types.InstanceTypeM5Large, map[string]string{"app": "web"})
	unavail := 0
	if handover {
		unavail = 1
	}
	web := func(v cloudsim.InstanceView) bool { return v.Tags["app"] == "web" }
	replacementInvariants(s.sim, "web", web, n-unavail)
	var journal lifecycle.Journal
	if s.seed%2 == 0 {
		journal = lifecycle.NewMemoryJournal()
	}
	newRollout := func() *lifecycle.Rollout {
		sg := lifecycle.NewSurge(s.sim.EC2(), lifecycle.Target{ImageID: newAMI}, func(o *lifecycle.Options) {
			o.RequestShare = 1
			o.Seed = uint64(s.seed)
			o.HandoverDataVolumes = handover
		})
		return lifecycle.NewRollout(sg, lifecycle.Selector{Tags: map[string]string{"app": "web"}}, func(o *lifecycle.RolloutOptions) {
			o.MaxSurge = "2"
			o.MaxUnavailable = fmt.Sprint(unavail)
			o.MaxFailures = "1"
			o.Journal = journal
			if s.seed%3 == 0 {
				o.Canary = "1"
				o.BakeTime = 2 * time.Minute
			}
		})
	}
	var err error
	for s.runs = 1; s.runs <= 30; s.runs++ {
		ctx, cancel := context.Background(), func() {}
		if s.runs == 1 {
			ctx, cancel = s.cancelCtx(15 * time.Minute)
		}
		_, err = newRollout().Apply(ctx)
		cancel()
		if err == nil {
			break
		}
		var re *lifecycle.RolloutError
		if !errors.As(err, &re) && !errors.Is(err, context.Canceled) {
			s.violate("run %d: untyped error %v", s.runs, err)
			return
		}
		time.Sleep(time.Minute)
	}
	if err != nil {
		s.violate("not finished after %d runs: %v", s.runs, err)
		return
	}
	time.Sleep(10 * time.Minute)
	count := 0
	for _, iv := range s.sim.Instances() {
		if !web(iv) || !live(iv) {
			continue
		}
		count++
		if iv.ImageID != newAMI || !iv.Healthy {
			s.violate("orphan or left over: %s %s %s healthy=%v", iv.ID, iv.State, iv.ImageID, iv.Healthy)
		}
	}
	if count != n {
		s.violate("%d live web instances at the end, want %d", count, n)
	}
}
