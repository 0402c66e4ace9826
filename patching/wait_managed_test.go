package patching_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
	"go.uber.org/mock/gomock"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/patching"
	"github.com/ec2ops/ec2ops/patching/patchingmock"
)

func TestUnmanagedErrorMatchesSentinel(t *testing.T) {
	var err error = &patching.UnmanagedError{Unmanaged: map[string]string{"i-0123456789abcdef0": "no registered SSM agent"}}
	if !errors.Is(err, ec2ops.ErrUnmanaged) || errors.Is(err, ec2ops.ErrNotFound) {
		t.Fatalf("errors.Is(%v, ErrUnmanaged) = false", err)
	}
	if !errors.Is(&patching.CommandError{Err: err}, ec2ops.ErrUnmanaged) {
		t.Fatal("a wrapped *UnmanagedError does not match ErrUnmanaged")
	}
}

// TestWaitManagedOnSim: 120 fresh instances (3 chunks of at most 50) whose
// agents register 1-4 minutes after running. WaitManaged returns once all
// are online, with one DescribeInstanceInformation call per chunk per poll
// (fewer as agents come online), soon after the last agent registered.
func TestWaitManagedOnSim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(func(o *cloudsim.Options) {
			o.DisableThrottling = true
			o.Latency.SSM.Register = cloudsim.Dist{Min: time.Minute, Max: 4 * time.Minute}
		})
		ids, err := launchFleet(sim, 120)
		if err != nil {
			t.Fatal(err)
		}
		sim.ResetCounters()
		rec := &ec2ops.Recorder{}
		r := patching.NewRunner(sim.SSM(), func(o *patching.RunnerOptions) { o.Observer = rec })
		start := time.Now()
		lastOnline := time.Time{}
		done := make(chan error, 1)
		go func() { done <- r.WaitManaged(context.Background(), append(slices.Clone(ids), ids[0])) }()
		for waiting := true; waiting; {
			select {
			case err = <-done:
				waiting = false
			case <-time.After(time.Second):
				if lastOnline.IsZero() && allOnline(sim, ids) {
					lastOnline = time.Now()
				}
			}
		}
		if err != nil {
			t.Fatalf("WaitManaged: %v", err)
		}
		if !allOnline(sim, ids) {
			t.Fatal("WaitManaged returned before every agent was online")
		}
		if lastOnline.IsZero() {
			lastOnline = time.Now()
		}
		calls := sim.Calls()["ssm:DescribeInstanceInformation"]
		events := rec.Events()
		polls := 0
		for _, e := range events {
			if e.Phase == "wait-managed" {
				polls++
				if e.Total != 120 {
					t.Errorf("event total %d, want 120 (duplicates removed)", e.Total)
				}
			}
		}
		took, lag := time.Since(start), time.Since(lastOnline)
		t.Logf("120 agents online after %v (returned %v after the last registered), %d polls, %d DescribeInstanceInformation calls", took, lag, polls, calls)
		if calls > 3*polls || calls < polls {
			t.Errorf("%d calls for %d polls: want 1 to 3 a poll (50 IDs a call)", calls, polls)
		}
		if lag > 31*time.Second {
			t.Errorf("returned %v after the last agent registered; the poll interval is capped at 30s", lag)
		}
		if n := sim.Calls()["ssm:SendCommand"]; n != 0 {
			t.Errorf("%d SendCommand calls", n)
		}
		if u := r.Policy().Uncovered(sim.Calls()); len(u) > 0 {
			t.Errorf("calls outside the policy: %v", u)
		}
	})
}

func allOnline(sim *cloudsim.Sim, ids []string) bool {
	for _, id := range ids {
		if !sim.AgentOnline(id) {
			return false
		}
	}
	return true
}

// TestWaitManagedTimeout: one of three instances is stopped (its agent is
// ConnectionLost); when ctx ends the error is an *UnmanagedError naming
// only it, matching ErrUnmanaged and the context's cause.
func TestWaitManagedTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(func(o *cloudsim.Options) { o.DisableThrottling = true })
		ids := fleet(t, sim, 3)
		if _, err := sim.EC2().StopInstances(context.Background(), &ec2.StopInstancesInput{InstanceIds: ids[1:2]}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute)
		r := patching.NewRunner(sim.SSM())
		ctx, cancel := context.WithTimeoutCause(context.Background(), 3*time.Minute, ec2ops.ErrTimeout)
		defer cancel()
		start := time.Now()
		err := r.WaitManaged(ctx, ids)
		var ue *patching.UnmanagedError
		if !errors.As(err, &ue) || !errors.Is(err, ec2ops.ErrUnmanaged) || !errors.Is(err, ec2ops.ErrTimeout) {
			t.Fatalf("err = %v, want an *UnmanagedError and the timeout", err)
		}
		if len(ue.Unmanaged) != 1 || ue.Unmanaged[ids[1]] != "agent ConnectionLost" {
			t.Fatalf("unmanaged %v, want only %s", ue.Unmanaged, ids[1])
		}
		if took := time.Since(start); took != 3*time.Minute {
			t.Errorf("returned after %v, want the 3m deadline", took)
		}
	})
}

// TestWaitManagedInputs: exact DescribeInstanceInformation inputs (InstanceIds
// filter, 50 values, MaxResults 50), pages followed, a chunk refused with
// InvalidInstanceId bisected down to the unknown ID, bad IDs refused
// before any call.
func TestWaitManagedInputs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctrl := gomock.NewController(t)
		m := patchingmock.NewMockCommandAPI(ctrl)
		var ids []string
		for i := range 60 {
			ids = append(ids, instanceID(i+1))
		}
		unknown := ids[55]
		calls := 0
		m.EXPECT().DescribeInstanceInformation(gomock.Any(), gomock.Any()).AnyTimes().DoAndReturn(
			func(_ context.Context, in *ssm.DescribeInstanceInformationInput, _ ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error) {
				calls++
				if len(in.Filters) != 1 || aws.ToString(in.Filters[0].Key) != "InstanceIds" || aws.ToInt32(in.MaxResults) != 50 || len(in.Filters[0].Values) > 50 {
					t.Errorf("input %+v", in)
				}
				vals := in.Filters[0].Values
				if slices.Contains(vals, unknown) {
					return nil, &smithy.GenericAPIError{Code: "InvalidInstanceId", Message: "Instances not in a valid state for account"}
				}
				// Two pages: the first half, then the rest.
				half := (len(vals) + 1) / 2
				page := vals[:half]
				out := &ssm.DescribeInstanceInformationOutput{NextToken: aws.String("p2")}
				if aws.ToString(in.NextToken) == "p2" {
					page, out.NextToken = vals[half:], nil
				}
				for _, id := range page {
					out.InstanceInformationList = append(out.InstanceInformationList,
						ssmtypes.InstanceInformation{InstanceId: aws.String(id), PingStatus: ssmtypes.PingStatusOnline})
				}
				return out, nil
			})
		r := patching.NewRunner(m, func(o *patching.RunnerOptions) { o.PollInterval, o.MaxPollInterval = 10*time.Second, 10*time.Second })
		if err := r.WaitManaged(context.Background(), []string{ids[0], "i-nope"}); !errors.Is(err, ec2ops.ErrInvalidInput) || calls != 0 {
			t.Fatalf("bad ID: %v after %d calls", err, calls)
		}
		if err := r.WaitManaged(context.Background(), nil); err != nil || calls != 0 {
			t.Fatalf("no IDs: %v after %d calls", err, calls)
		}
		if err := r.WaitManaged(context.Background(), ids[:50]); err != nil || calls != 2 {
			t.Fatalf("50 online: %v after %d calls, want 2 (one chunk, two pages)", err, calls)
		}
		calls = 0
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
		defer cancel()
		err := r.WaitManaged(ctx, ids)
		var ue *patching.UnmanagedError
		if !errors.As(err, &ue) || len(ue.Unmanaged) != 1 || ue.Unmanaged[unknown] != "no registered SSM agent" || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		if !strings.Contains(err.Error(), unknown) {
			t.Errorf("error does not name %s: %v", unknown, err)
		}
		// Polls at 0, 10s and 20s: the first reads chunk 1 (2 pages) and
		// bisects chunk 2 of 10 IDs (10 -> 5+5 -> 3+2 -> 1+2 -> 1+1, with
		// pages), the later ones only the unknown ID.
		t.Logf("%d calls for 60 IDs over 3 polls", calls)
		if calls > 20 {
			t.Errorf("%d calls", calls)
		}
	})
}

// TestWireHTTPWaitManaged runs WaitManaged over the real SDK client against
// the documented JSON of DescribeInstanceInformation.
func TestWireHTTPWaitManaged(t *testing.T) {
	srv := &ssmServer{calls: map[string][]map[string]any{}}
	r := patching.NewRunnerFromConfig(httptestConfig(t, srv), quick)
	if err := r.WaitManaged(context.Background(), []string{"i-0000000000000000a", "i-0000000000000000b"}); err != nil {
		t.Fatal(err)
	}
	calls := srv.calls["DescribeInstanceInformation"]
	if len(calls) != 1 {
		t.Fatalf("%d DescribeInstanceInformation calls, want 1", len(calls))
	}
	f := calls[0]["Filters"].([]any)[0].(map[string]any)
	if f["Key"] != "InstanceIds" || len(f["Values"].([]any)) != 2 || calls[0]["MaxResults"] != float64(50) {
		t.Fatalf("DescribeInstanceInformation input %v", calls[0])
	}
}
