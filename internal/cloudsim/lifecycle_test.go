package cloudsim

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestLaunchTiming checks pending -> running -> status ok against the
// default distributions, with transitions applied lazily long after they
// were due: the changes must still carry their own due times.
func TestLaunchTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle)
		checkStateMachine(t, s)
		type times struct{ launch, running, ok time.Time }
		seen := map[string]*times{}
		var last time.Time
		s.OnChange(func(c Change, v *View) {
			if c.Time.Before(last) {
				t.Errorf("change %+v out of time order (after %v)", c, last)
			}
			last = c.Time
			// The view is the state right after this change.
			if iv, ok := v.Instance(c.InstanceID); c.Kind == ChangeState && (!ok || iv.State != c.To) {
				t.Errorf("view of %s at change to %s shows %q", c.InstanceID, c.To, iv.State)
			}
			tm := seen[c.InstanceID]
			if tm == nil {
				tm = &times{}
				seen[c.InstanceID] = tm
			}
			switch {
			case c.Kind == ChangeState && c.To == "pending":
				tm.launch = c.Time
			case c.Kind == ChangeState && c.To == "running":
				tm.running = c.Time
			case c.Kind == ChangeStatus && c.To == "ok":
				tm.ok = c.Time
			}
		})
		c := s.EC2()
		start := time.Now()
		ids := launch(t, c, runInput(200))
		for _, id := range ids {
			if st := stateOf(t, s, id); st != "pending" {
				t.Fatalf("%s is %s right after launch, want pending", id, st)
			}
		}
		if n := s.Healthy(nil); n != 0 {
			t.Fatalf("healthy right after launch = %d", n)
		}
		time.Sleep(10 * time.Minute)
		s.Advance()
		if n := s.Healthy(nil); n != 200 {
			t.Fatalf("healthy after 10 min = %d, want 200", n)
		}
		var minRun, maxRun, minOK, maxOK time.Duration = time.Hour, 0, time.Hour, 0
		for _, id := range ids {
			tm := seen[id]
			if tm == nil || !tm.launch.Equal(start) {
				t.Fatalf("%s: launch change missing or not at call time: %+v", id, tm)
			}
			run, ok := tm.running.Sub(tm.launch), tm.ok.Sub(tm.running)
			if run < 15*time.Second || run > 30*time.Second {
				t.Errorf("%s: pending->running took %v, want 15s..30s", id, run)
			}
			if ok < 60*time.Second || ok > 180*time.Second {
				t.Errorf("%s: running->ok took %v, want 60s..180s", id, ok)
			}
			minRun, maxRun = min(minRun, run), max(maxRun, run)
			minOK, maxOK = min(minOK, ok), max(maxOK, ok)
		}
		// The draws are spread over the distribution, not constant.
		if maxRun-minRun < 10*time.Second || maxOK-minOK < 90*time.Second {
			t.Errorf("draws not spread: running %v..%v, ok %v..%v", minRun, maxRun, minOK, maxOK)
		}
	})
}

func TestCustomLatencyAndTimeScale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(func(o *Options) {
			o.TimeScale = 0.02
			o.Latency.PendingToRunning = Dist{Min: 20 * time.Second, Max: 20 * time.Second}
		})
		c := s.EC2()
		id := launch(t, c, runInput(1))[0]
		time.Sleep(399 * time.Millisecond) // 20 s * 0.02 = 400 ms
		if st := stateOf(t, s, id); st != "pending" {
			t.Fatalf("state after 399ms = %s, want pending", st)
		}
		time.Sleep(time.Millisecond)
		if st := stateOf(t, s, id); st != "running" {
			t.Fatalf("state after 400ms = %s, want running", st)
		}
		// Buckets refill 50 times faster: RunInstances 2 tokens per
		// simulated second = per 20 ms of real time.
		ok := 0
		for range 8 {
			if _, err := c.RunInstances(context.Background(), runInput(1)); err == nil {
				ok++
			}
		}
		if ok != 5 {
			t.Fatalf("%d of 8 RunInstances at one instant succeeded, want 5 (a full bucket)", ok)
		}
		_, err := c.RunInstances(context.Background(), runInput(1))
		wantCode(t, err, "RequestLimitExceeded")
		time.Sleep(20 * time.Millisecond)
		launch(t, c, runInput(1))
		launch(t, c, runInput(1))
	})
}

func TestImpairedRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle, func(o *Options) { o.Faults.ImpairedRate = 0.2 })
		checkStateMachine(t, s)
		c := s.EC2()
		ids := launch(t, c, runInput(1000))
		time.Sleep(24 * time.Hour)
		impaired := 0
		var oneImpaired string
		for _, v := range s.Instances() {
			if v.Impaired {
				impaired++
				oneImpaired = v.ID
				if v.Healthy || v.InstanceStatus != "impaired" || v.SystemStatus != "ok" || v.State != "running" {
					t.Fatalf("impaired instance view %+v", v)
				}
			} else if !v.Healthy {
				t.Fatalf("non-impaired instance not healthy after a day: %+v", v)
			}
		}
		if impaired < 150 || impaired > 250 {
			t.Fatalf("impaired = %d of 1000, want about 200", impaired)
		}
		if n := s.Healthy(nil); n != len(ids)-impaired {
			t.Fatalf("healthy = %d, want %d", n, len(ids)-impaired)
		}
		out, err := c.DescribeInstanceStatus(context.Background(), &ec2.DescribeInstanceStatusInput{InstanceIds: []string{oneImpaired}})
		mustOK(t, err)
		st := out.InstanceStatuses[0]
		if st.InstanceStatus.Status != types.SummaryStatusImpaired || st.SystemStatus.Status != types.SummaryStatusOk {
			t.Fatalf("status = %s/%s, want impaired/ok", st.InstanceStatus.Status, st.SystemStatus.Status)
		}
		d := st.InstanceStatus.Details[0]
		if d.Name != types.StatusNameReachability || d.Status != types.StatusTypeFailed || d.ImpairedSince == nil {
			t.Fatalf("detail = %+v, want reachability failed with ImpairedSince", d)
		}
		// A bad boot survives stop/start.
		_, err = c.StopInstances(context.Background(), &ec2.StopInstancesInput{InstanceIds: []string{oneImpaired}})
		mustOK(t, err)
		time.Sleep(2 * time.Minute)
		_, err = c.StartInstances(context.Background(), &ec2.StartInstancesInput{InstanceIds: []string{oneImpaired}})
		mustOK(t, err)
		time.Sleep(10 * time.Minute)
		if v, _ := s.Instance(oneImpaired); !v.Impaired || v.State != "running" {
			t.Fatalf("after stop/start: %+v, want running and still impaired", v)
		}
	})
}

func TestImpairAndStopStartRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		checkStateMachine(t, s)
		c := s.EC2()
		id := launch(t, c, runInput(1))[0]
		time.Sleep(5 * time.Minute)
		if !s.Impair(id) {
			t.Fatal("Impair returned false for a running instance")
		}
		v, _ := s.Instance(id)
		if v.Healthy || v.SystemStatus != "impaired" || v.InstanceStatus != "impaired" {
			t.Fatalf("after Impair: %+v", v)
		}
		if s.Impair("i-0000000000000000f") {
			t.Fatal("Impair of an unknown instance returned true")
		}
		_, err := c.StopInstances(context.Background(), &ec2.StopInstancesInput{InstanceIds: []string{id}})
		mustOK(t, err)
		time.Sleep(time.Minute)
		_, err = c.StartInstances(context.Background(), &ec2.StartInstancesInput{InstanceIds: []string{id}})
		mustOK(t, err)
		time.Sleep(5 * time.Minute)
		if v, _ := s.Instance(id); !v.Healthy {
			t.Fatalf("after stop/start on new hardware: %+v, want healthy", v)
		}
	})
}

func TestTerminateLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		checkStateMachine(t, s)
		var terminatedAt = map[string]time.Time{}
		s.OnChange(func(c Change, v *View) {
			if c.Kind == ChangeState && c.To == "terminated" {
				terminatedAt[c.InstanceID] = c.Time
			}
			if _, gone := terminatedAt[c.InstanceID]; gone {
				if iv, _ := v.Instance(c.InstanceID); iv.Healthy || c.Kind == ChangeState && c.To != "terminated" {
					t.Errorf("terminated instance %s changed again: %+v", c.InstanceID, c)
				}
			}
		})
		c := s.EC2()
		ctx := context.Background()
		ids := launch(t, c, runInput(2))
		running, pending := ids[0], ids[1]
		time.Sleep(5 * time.Minute)
		// The second one was stopped and started, so it is pending now.
		_, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{pending}})
		mustOK(t, err)
		time.Sleep(2 * time.Minute)
		_, err = c.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{pending}})
		mustOK(t, err)

		start := time.Now()
		out, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
		mustOK(t, err)
		want := map[string][2]string{running: {"running", "shutting-down"}, pending: {"pending", "shutting-down"}}
		for _, ch := range out.TerminatingInstances {
			w := want[aws.ToString(ch.InstanceId)]
			if string(ch.PreviousState.Name) != w[0] || string(ch.CurrentState.Name) != w[1] {
				t.Errorf("%s: %s -> %s, want %s -> %s", *ch.InstanceId, ch.PreviousState.Name, ch.CurrentState.Name, w[0], w[1])
			}
			if aws.ToInt32(ch.CurrentState.Code) != 32 {
				t.Errorf("shutting-down code = %d, want 32", aws.ToInt32(ch.CurrentState.Code))
			}
		}
		if s.Healthy(nil) != 0 {
			t.Fatal("healthy right after terminate")
		}
		time.Sleep(61 * time.Second)
		for _, id := range ids {
			if st := stateOf(t, s, id); st != "terminated" {
				t.Fatalf("%s is %s 61s after terminate", id, st)
			}
			if d := terminatedAt[id].Sub(start); d < 20*time.Second || d > 60*time.Second {
				t.Errorf("%s: shutting-down took %v, want 20s..60s", id, d)
			}
		}
		// The pending instance never reached running after terminate.
		// Terminating again is idempotent.
		out, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{running}})
		mustOK(t, err)
		if ch := out.TerminatingInstances[0]; ch.PreviousState.Name != "terminated" || ch.CurrentState.Name != "terminated" {
			t.Fatalf("second terminate: %s -> %s", ch.PreviousState.Name, ch.CurrentState.Name)
		}
		// Still visible for an hour, then gone.
		time.Sleep(58 * time.Minute)
		d, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{running}})
		mustOK(t, err)
		if st := d.Reservations[0].Instances[0].State; st.Name != "terminated" || aws.ToInt32(st.Code) != 48 {
			t.Fatalf("terminated instance described as %v", st.Name)
		}
		time.Sleep(2 * time.Minute)
		_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{running}})
		wantCode(t, err, "InvalidInstanceID.NotFound")
		_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{running}})
		wantCode(t, err, "InvalidInstanceID.NotFound")
		if n := len(s.Instances()); n != 0 {
			t.Fatalf("%d instances left after the visibility window", n)
		}
		if _, ok := s.Instance(running); ok {
			t.Fatal("Instance() finds an expired instance")
		}
	})
}

func TestTerminateProtection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		checkStateMachine(t, s)
		c := s.EC2()
		ids := launch(t, c, runInput(1))
		prot := launch(t, c, runInput(1, func(in *ec2.RunInstancesInput) { in.DisableApiTermination = aws.Bool(true) }))
		_, err := c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: append(ids, prot...)})
		wantCode(t, err, "OperationNotPermitted")
		// All or nothing: the unprotected one was not terminated either.
		if st := stateOf(t, s, ids[0]); st != "pending" {
			t.Fatalf("unprotected instance is %s after a refused call", st)
		}
		_, err = c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{})
		wantCode(t, err, "InvalidParameterCombination")
	})
}

func TestStopStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		checkStateMachine(t, s)
		c := s.EC2()
		ctx := context.Background()
		ids := launch(t, c, runInput(1))
		id := ids[0]
		_, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: ids})
		wantCode(t, err, "IncorrectInstanceState") // pending
		time.Sleep(5 * time.Minute)
		if !mustView(t, s, id).Healthy {
			t.Fatal("not healthy after 5 min")
		}
		out, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: ids})
		mustOK(t, err)
		if ch := out.StoppingInstances[0]; ch.PreviousState.Name != "running" || ch.CurrentState.Name != "stopping" || aws.ToInt32(ch.CurrentState.Code) != 64 {
			t.Fatalf("stop: %s -> %s", ch.PreviousState.Name, ch.CurrentState.Name)
		}
		if v := mustView(t, s, id); v.Healthy || v.InstanceStatus != "not-applicable" {
			t.Fatalf("stopping: %+v", v)
		}
		_, err = c.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: ids})
		wantCode(t, err, "IncorrectInstanceState") // stopping
		time.Sleep(time.Minute)
		if st := stateOf(t, s, id); st != "stopped" {
			t.Fatalf("state 60s after stop = %s", st)
		}
		st, err := c.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: ids, IncludeAllInstances: aws.Bool(true)})
		mustOK(t, err)
		if got := st.InstanceStatuses[0]; got.InstanceStatus.Status != types.SummaryStatusNotApplicable || got.InstanceState.Name != "stopped" {
			t.Fatalf("stopped status: %+v", got)
		}
		// Stopping a stopped instance changes nothing.
		out, err = c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: ids})
		mustOK(t, err)
		if ch := out.StoppingInstances[0]; ch.PreviousState.Name != "stopped" || ch.CurrentState.Name != "stopped" {
			t.Fatalf("stop of stopped: %s -> %s", ch.PreviousState.Name, ch.CurrentState.Name)
		}
		before := mustView(t, s, id).LaunchTime
		so, err := c.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: ids})
		mustOK(t, err)
		if ch := so.StartingInstances[0]; ch.PreviousState.Name != "stopped" || ch.CurrentState.Name != "pending" {
			t.Fatalf("start: %s -> %s", ch.PreviousState.Name, ch.CurrentState.Name)
		}
		if v := mustView(t, s, id); !v.LaunchTime.After(before) {
			t.Fatalf("LaunchTime not updated by start: %v", v.LaunchTime)
		}
		time.Sleep(31 * time.Second)
		if v := mustView(t, s, id); v.State != "running" || v.InstanceStatus != "initializing" {
			t.Fatalf("31s after start: %+v", v)
		}
		time.Sleep(3 * time.Minute)
		if !mustView(t, s, id).Healthy {
			t.Fatal("not healthy again after start")
		}
		_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
		mustOK(t, err)
		_, err = c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: ids})
		wantCode(t, err, "IncorrectInstanceState")
		_, err = c.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: ids})
		wantCode(t, err, "IncorrectInstanceState")
	})
}

func mustView(t testing.TB, s *Sim, id string) InstanceView {
	t.Helper()
	v, ok := s.Instance(id)
	if !ok {
		t.Fatalf("instance %s does not exist", id)
	}
	return v
}

// TestSDKWaiters runs the SDK's own waiters against the simulator.
func TestSDKWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		c := s.EC2()
		ids := launch(t, c, runInput(3))
		start := time.Now()
		err := ec2.NewInstanceRunningWaiter(c).Wait(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: ids}, 10*time.Minute)
		mustOK(t, err)
		for _, id := range ids {
			if st := stateOf(t, s, id); st != "running" {
				t.Fatalf("%s is %s after the running waiter", id, st)
			}
		}
		err = ec2.NewInstanceStatusOkWaiter(c).Wait(context.Background(), &ec2.DescribeInstanceStatusInput{InstanceIds: ids}, 30*time.Minute)
		mustOK(t, err)
		if n := s.Healthy(nil); n != 3 {
			t.Fatalf("healthy = %d after the status-ok waiter", n)
		}
		if d := time.Since(start); d > 10*time.Minute {
			t.Fatalf("waiters took %v", d)
		}
		if s.Calls()["ec2:DescribeInstances"] == 0 || s.Calls()["ec2:DescribeInstanceStatus"] == 0 {
			t.Fatalf("calls = %v", s.Calls())
		}
	})
}

// TestSupersededTransitions: a stop or terminate cancels the transitions
// that were scheduled before it.
func TestSupersededTransitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		checkStateMachine(t, s)
		c := s.EC2()
		ctx := context.Background()
		ids := launch(t, c, runInput(2))
		_, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids[1:]}) // pending
		mustOK(t, err)
		time.Sleep(31 * time.Second)
		if v := mustView(t, s, ids[0]); v.State != "running" || v.InstanceStatus != "initializing" {
			t.Fatalf("31s after launch: %+v", v)
		}
		_, err = c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: ids[:1]}) // checks still running
		mustOK(t, err)
		time.Sleep(10 * time.Minute)
		if v := mustView(t, s, ids[0]); v.State != "stopped" || v.InstanceStatus != "not-applicable" {
			t.Fatalf("stopped during the checks: %+v", v)
		}
		if v := mustView(t, s, ids[1]); v.State != "terminated" {
			t.Fatalf("terminated while pending: %+v", v)
		}
	})
}
