package recovery_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.uber.org/goleak"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/recovery"
)

// inFlightTracker follows the Watchdog's events and records the most
// instances acted on at once.
type inFlightTracker struct {
	mu      sync.Mutex
	active  map[string]bool
	max     int
	touched map[string][]string
}

func (f *inFlightTracker) Observe(e ec2ops.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch e.Phase {
	case recovery.ActionReboot, recovery.ActionStopStart, recovery.ActionReplace:
		if e.Err != nil {
			return
		}
		f.active[e.Resource] = true
		f.touched[e.Resource] = append(f.touched[e.Resource], e.Phase)
		f.max = max(f.max, len(f.active))
	case "healthy", "failed", "replaced":
		delete(f.active, e.Resource)
	}
}

// simReplacer replaces an instance on the simulator as lifecycle's Surge
// does: launch an equivalent instance, wait until it is healthy, terminate
// the old one.
type simReplacer struct {
	sim *cloudsim.Sim
	mu  sync.Mutex
	n   int
}

func (r *simReplacer) ReplaceInstance(ctx context.Context, id string) (string, error) {
	v, ok := r.sim.Instance(id)
	if !ok {
		return "", errors.New("no such instance")
	}
	out, err := r.sim.EC2().RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(v.ImageID), InstanceType: types.InstanceType(v.InstanceType),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ClientToken: aws.String("replace-" + id)})
	if err != nil {
		return "", err
	}
	newID := aws.ToString(out.Instances[0].InstanceId)
	for {
		if nv, _ := r.sim.Instance(newID); nv.Healthy {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(15 * time.Second):
		}
	}
	if _, err := r.sim.EC2().TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		return "", err
	}
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
	return newID, nil
}

// TestWatchdogHealsFivePercent impairs 5% of a 200-instance fleet in three
// ways and checks that every instance is healthy again, that AWS's own
// recovery goes first, that no instance is touched twice and that the cap
// holds.
func TestWatchdogHealsFivePercent(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 7 })
		ids := launchFleet(t, sim, 160, types.InstanceTypeM5Large)
		ids = append(ids, launchFleet(t, sim, 40, types.InstanceTypeI3Large)...)
		time.Sleep(5 * time.Minute)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		inst := recovery.NewInstaller(sim.EC2(), sim.CloudWatch(), func(o *recovery.AlarmOptions) { o.Region = "us-east-1" })
		if _, err := inst.Reconcile(ctx, webFleet); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Minute)
		sim.ResetCounters()

		// 5% of 200: 4 host failures AWS recovers (m5.large), 3 OS failures
		// (m5.large) and 3 host failures AWS cannot recover (i3.large).
		awsFixes, osFails, hostFails := ids[10:14], ids[20:23], ids[170:173]
		for _, id := range awsFixes {
			sim.ImpairSystem(id)
		}
		for _, id := range osFails {
			sim.ImpairInstance(id)
		}
		for _, id := range hostFails {
			sim.ImpairSystem(id)
		}
		track := &inFlightTracker{active: map[string]bool{}, touched: map[string][]string{}}
		rep := &simReplacer{sim: sim}
		w := recovery.NewWatchdog(sim.EC2(), rep, func(o *recovery.WatchdogOptions) {
			o.MaxConcurrent = "2%" // 4 of 200
			o.Observer = track
		})
		done := make(chan error)
		go func() { done <- w.Run(ctx, webFleet) }()
		time.Sleep(45 * time.Minute)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}

		for _, id := range ids {
			if v, _ := sim.Instance(id); !v.Healthy {
				t.Errorf("%s not healthy: %+v", id, v)
			}
		}
		st := w.Stats()
		seen := map[string]bool{}
		for _, a := range st.Actions {
			if seen[a.InstanceID] {
				t.Errorf("%s touched twice: %+v", a.InstanceID, st.Actions)
			}
			seen[a.InstanceID] = true
		}
		for _, id := range awsFixes {
			if seen[id] {
				t.Errorf("the Watchdog acted on %s, which AWS recovers", id)
			}
		}
		for _, id := range osFails {
			if got := track.touched[id]; len(got) != 1 || got[0] != recovery.ActionReboot {
				t.Errorf("%s: actions %v, want one reboot", id, got)
			}
		}
		for _, id := range hostFails {
			if got := track.touched[id]; len(got) != 1 || got[0] != recovery.ActionStopStart {
				t.Errorf("%s: actions %v, want one stop-start", id, got)
			}
		}
		if st.MaxInFlight > 4 || track.max > 4 || st.MaxInFlight == 0 {
			t.Errorf("cap 4: stats %d, events %d", st.MaxInFlight, track.max)
		}
		succeeded := 0
		for _, r := range sim.Recoveries() {
			if r.Outcome == "succeeded" {
				succeeded++
			}
		}
		if succeeded != 4 || st.Healed != 6 || rep.n != 0 {
			t.Errorf("AWS recoveries %d (want 4), healed by the Watchdog %d (want 6), replacements %d", succeeded, st.Healed, rep.n)
		}
		ticks := st.Ticks
		calls := sim.Calls()
		// Batched: 2 calls a tick for 200 instances (100 IDs a call). A
		// throttled call is retried, and the tick cut short by the end of
		// the run may have sent its first chunk: allow for both.
		retried := sim.Throttled()["ec2:DescribeInstanceStatus"]
		if extra := st.StatusCalls - retried - 2*ticks; calls["ec2:DescribeInstanceStatus"] != st.StatusCalls || extra < 0 || extra > 1 {
			t.Errorf("status calls %d (%d retried throttles) for %d ticks (want 2 a tick), sim saw %d", st.StatusCalls, retried, ticks, calls["ec2:DescribeInstanceStatus"])
		}
		if u := w.Policy().Uncovered(calls); len(u) != 0 {
			t.Errorf("calls outside the Watchdog's policy: %v", u)
		}
		t.Logf("45 min watched: %d ticks, %d DescribeInstanceStatus calls, actions %d (max %d at once), AWS recoveries %d, calls %v",
			ticks, st.StatusCalls, len(st.Actions), st.MaxInFlight, succeeded, calls)
	})
}

// TestWatchdogEscalatesToReplacement: an instance whose OS fails again after
// every reboot and stop/start (a bad boot) is replaced.
func TestWatchdogEscalatesToReplacement(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.DisableThrottling = true })
		ids := launchFleet(t, sim, 4, types.InstanceTypeM5Large)
		time.Sleep(5 * time.Minute)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// The OS of ids[0] fails again after each boot: re-impair it
		// whenever the Watchdog's remedy made it healthy.
		bad := ids[0]
		sim.ImpairInstance(bad)
		stopBad := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stopBad:
					return
				case <-time.After(10 * time.Second):
				}
				if v, ok := sim.Instance(bad); ok && v.Healthy {
					sim.ImpairInstance(bad)
				}
			}
		}()
		rep := &simReplacer{sim: sim}
		rec := &ec2ops.Recorder{}
		w := recovery.NewWatchdog(sim.EC2(), rep, func(o *recovery.WatchdogOptions) {
			o.Observer = rec
			o.ActionTimeout = 5 * time.Minute
		})
		done := make(chan error)
		go func() { done <- w.Run(ctx, recovery.Fleet{InstanceIDs: ids}) }()
		time.Sleep(40 * time.Minute)
		close(stopBad)
		wg.Wait()
		cancel()
		<-done
		st := w.Stats()
		var got []string
		for _, a := range st.Actions {
			got = append(got, a.Action)
		}
		if len(got) != 3 || got[0] != recovery.ActionReboot || got[1] != recovery.ActionStopStart || got[2] != recovery.ActionReplace || st.Replaced != 1 {
			t.Fatalf("escalation %v, replaced %d", got, st.Replaced)
		}
		if v, _ := sim.Instance(bad); v.State != "terminated" {
			t.Fatalf("old instance %+v", v)
		}
		var replacedBy string
		for _, e := range rec.Events() {
			if e.Phase == "replaced" {
				replacedBy = e.Message
			}
		}
		if replacedBy == "" {
			t.Fatal("no replaced event")
		}
	})
}
