package ami

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
)

// notOnline mimics patching's *UnmanagedError: the runner refused before
// sending anything because the target's agent is not online. It matches
// ec2ops.ErrUnmanaged through an Is method, as the real one does.
type notOnline struct{ id string }

func (e *notOnline) Error() string        { return "run command: " + e.id + " is not managed by SSM" }
func (e *notOnline) Is(target error) bool { return target == ec2ops.ErrUnmanaged }

// waitingRunner is a fakeRunner that also implements AgentWaiter: its
// agents come online Online after WaitManaged is first called; with
// Never, WaitManaged blocks until ctx ends.
type waitingRunner struct {
	*fakeRunner
	Online time.Duration
	Never  bool

	mu          sync.Mutex
	WaitIDs     [][]string
	CallsBefore []int // RunShell calls made before each WaitManaged
}

var _ AgentWaiter = (*waitingRunner)(nil)

func (w *waitingRunner) WaitManaged(ctx context.Context, ids []string) error {
	w.fakeRunner.mu.Lock()
	before := len(w.fakeRunner.Calls)
	w.fakeRunner.mu.Unlock()
	w.mu.Lock()
	w.WaitIDs = append(w.WaitIDs, slices.Clone(ids))
	w.CallsBefore = append(w.CallsBefore, before)
	w.mu.Unlock()
	if w.Never {
		<-ctx.Done()
		return fmt.Errorf("%w: %w", &notOnline{ids[0]}, context.Cause(ctx))
	}
	t := time.NewTimer(w.Online)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// flakyRunner refuses its first Unmanaged RunShell calls with an error
// matching ec2ops.ErrUnmanaged (all of them with Unmanaged < 0), then
// behaves as its fakeRunner.
type flakyRunner struct {
	*fakeRunner
	Unmanaged int

	mu       sync.Mutex
	Attempts int
	At       []time.Time
}

func (f *flakyRunner) RunShell(ctx context.Context, ids []string, commands []string) error {
	f.mu.Lock()
	f.Attempts++
	f.At = append(f.At, time.Now())
	refuse := f.Unmanaged < 0 || f.Attempts <= f.Unmanaged
	f.mu.Unlock()
	if refuse {
		return fmt.Errorf("run command: %w", &notOnline{ids[0]})
	}
	return f.fakeRunner.RunShell(ctx, ids, commands)
}

func newBakeSim() (*cloudsim.Sim, string) {
	sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 11 })
	return sim, sim.AddImage(cloudsim.AddImageInput{Name: "al2023-base", Owner: "amazon", Public: true, RootGiB: 8})
}

func phaseEvents(rec *ec2ops.Recorder, phase string) []ec2ops.Event {
	var out []ec2ops.Event
	for _, e := range rec.Events() {
		if e.Phase == phase {
			out = append(out, e)
		}
	}
	return out
}

func assertBuildersTerminated(t *testing.T, sim *cloudsim.Sim) {
	t.Helper()
	time.Sleep(2 * time.Minute)
	bs := builderInstances(sim)
	if len(bs) == 0 {
		t.Fatal("no builder launched")
	}
	for _, v := range bs {
		if v.State != "terminated" {
			t.Errorf("builder %s is %s", v.ID, v.State)
		}
	}
}

// TestBakeWaitsForAgent: a Runner that implements AgentWaiter is asked
// to wait for the builder (and only the builder) before the first RunShell.
func TestBakeWaitsForAgent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim, base := newBakeSim()
		runner := &waitingRunner{fakeRunner: &fakeRunner{Took: time.Minute}, Online: 150 * time.Second}
		rec := &ec2ops.Recorder{}
		b := NewBaker(sim.EC2(), func(o *BakerOptions) { o.Runner = runner; o.Observer = rec; o.Now = fixedNow })
		r := testRecipe(base)
		plan, err := b.PlanRecipe(r)
		if err != nil || !slices.Contains(plan.Actions(), "ssm:DescribeInstanceInformation") {
			t.Fatalf("plan %v %v", plan, err)
		}
		res, err := b.Bake(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if len(runner.WaitIDs) != 1 || !slices.Equal(runner.WaitIDs[0], []string{res.BuilderID}) || runner.CallsBefore[0] != 0 {
			t.Fatalf("WaitManaged calls %v (RunShell calls before: %v), builder %s", runner.WaitIDs, runner.CallsBefore, res.BuilderID)
		}
		if len(runner.Calls) != 3 || runner.Calls[0][0] != cloudInitWait {
			t.Errorf("RunShell calls %v", runner.Calls)
		}
		ev := phaseEvents(rec, "wait-agent")
		if len(ev) != 2 || ev[0].Done != 0 || ev[1].Done != 1 || ev[1].Resource != res.BuilderID || !strings.Contains(ev[1].Message, "2m30s") {
			t.Errorf("wait-agent events %+v", ev)
		}
		assertBuildersTerminated(t, sim)

		// A recipe with nothing to run does not wait for the agent.
		empty := Recipe{Name: "bare-{bake}", BaseImage: base}
		if _, err := b.Bake(context.Background(), empty); err != nil || len(runner.WaitIDs) != 1 {
			t.Fatalf("bare bake: %v, WaitManaged calls %v", err, runner.WaitIDs)
		}
	})
}

// TestBakeAgentTimeout: an agent that never comes online fails the bake in
// phase wait-agent after AgentTimeout, with an error matching ErrTimeout
// and ErrUnmanaged that says what to check; nothing is run and the builder
// is terminated.
func TestBakeAgentTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim, base := newBakeSim()
		runner := &waitingRunner{fakeRunner: &fakeRunner{}, Never: true}
		var waitStart time.Time
		obs := ec2ops.ObserverFunc(func(e ec2ops.Event) {
			if e.Phase == "wait-agent" && e.Done == 0 && e.Err == nil {
				waitStart = time.Now()
			}
		})
		b := NewBaker(sim.EC2(), func(o *BakerOptions) { o.Runner = runner; o.Observer = obs; o.AgentTimeout = 5 * time.Minute })
		_, err := b.Bake(context.Background(), testRecipe(base))
		waited := time.Since(waitStart)
		var be *BakeError
		if !errors.As(err, &be) || be.Phase != "wait-agent" || be.BuilderLeftBehind {
			t.Fatalf("err = %v", err)
		}
		if !errors.Is(err, ec2ops.ErrTimeout) || !errors.Is(err, ec2ops.ErrUnmanaged) || !strings.Contains(err.Error(), "AmazonSSMManagedInstanceCore") {
			t.Errorf("err = %v, want a timeout matching ErrUnmanaged with a hint", err)
		}
		if waited < 5*time.Minute || waited > 5*time.Minute+time.Minute {
			t.Errorf("gave up after %v, want AgentTimeout (5m) plus the termination", waited)
		}
		if len(runner.Calls) != 0 || sim.Calls()["ec2:CreateImage"] != 0 {
			t.Errorf("RunShell %v, calls %v", runner.Calls, sim.Calls())
		}
		assertBuildersTerminated(t, sim)
	})
}

// TestBakeRetriesUnmanaged: a Runner without AgentWaiter that refuses
// with ErrUnmanaged (nothing sent) is retried with backoff, and the bake
// succeeds on its first run.
func TestBakeRetriesUnmanaged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim, base := newBakeSim()
		runner := &flakyRunner{fakeRunner: &fakeRunner{Took: 30 * time.Second}, Unmanaged: 3}
		rec := &ec2ops.Recorder{}
		b := NewBaker(sim.EC2(), func(o *BakerOptions) { o.Runner = runner; o.Observer = rec; o.Now = fixedNow })
		res, err := b.Bake(context.Background(), testRecipe(base))
		if err != nil {
			t.Fatal(err)
		}
		if runner.Attempts != 6 || len(runner.Calls) != 3 || runner.IDs[0][0] != res.BuilderID {
			t.Fatalf("%d attempts, %d runs %v", runner.Attempts, len(runner.Calls), runner.IDs)
		}
		var gaps []time.Duration
		for i := 1; i < 4; i++ {
			gaps = append(gaps, runner.At[i].Sub(runner.At[i-1]))
		}
		if !slices.Equal(gaps, []time.Duration{15 * time.Second, 30 * time.Second, time.Minute}) {
			t.Errorf("retry delays %v, want 15s 30s 1m (PollInterval doubling)", gaps)
		}
		if ev := phaseEvents(rec, "wait-agent"); len(ev) != 3 || !strings.Contains(ev[0].Message, "not online yet") {
			t.Errorf("wait-agent events %+v", ev)
		}
		assertBuildersTerminated(t, sim)
	})
}

// TestBakeGivesUpOnUnmanaged: a Runner that keeps refusing is retried for
// at most AgentTimeout; the bake then fails in phase layers with an error
// saying so (matching ErrTimeout and ErrUnmanaged) and the builder is
// terminated. Other RunShell errors are not retried.
func TestBakeGivesUpOnUnmanaged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim, base := newBakeSim()
		runner := &flakyRunner{fakeRunner: &fakeRunner{}, Unmanaged: -1}
		b := NewBaker(sim.EC2(), func(o *BakerOptions) { o.Runner = runner; o.AgentTimeout = 4 * time.Minute })
		_, err := b.Bake(context.Background(), testRecipe(base))
		var be *BakeError
		if !errors.As(err, &be) || be.Phase != "layers" || be.BuilderLeftBehind {
			t.Fatalf("err = %v", err)
		}
		if !errors.Is(err, ec2ops.ErrTimeout) || !errors.Is(err, ec2ops.ErrUnmanaged) || !strings.Contains(err.Error(), "still not online after") {
			t.Errorf("err = %v", err)
		}
		span := runner.At[len(runner.At)-1].Sub(runner.At[0])
		t.Logf("%d attempts over %v: %v", runner.Attempts, span, err)
		// At 0, 15s, 45s, 1m45s, 2m45s, 3m45s (a minute at most between
		// two), and a last one at 4m, the wait cut to end at AgentTimeout.
		if runner.Attempts != 7 || span != 4*time.Minute {
			t.Errorf("%d attempts over %v, want 7 over 4m", runner.Attempts, span)
		}
		if len(runner.Calls) != 0 || sim.Calls()["ec2:CreateImage"] != 0 || sim.Calls()["ec2:TerminateInstances"] != 1 {
			t.Errorf("runs %v, calls %v", runner.Calls, sim.Calls())
		}
		assertBuildersTerminated(t, sim)

		// A command that fails is not retried.
		failing := &flakyRunner{fakeRunner: &fakeRunner{Fail: map[string]bool{"dnf -y install java-21-amazon-corretto": true}}}
		r := testRecipe(base)
		r.Name = "web-fail-{bake}"
		b = NewBaker(sim.EC2(), func(o *BakerOptions) { o.Runner = failing })
		if _, err := b.Bake(context.Background(), r); !errors.As(err, &be) || be.Phase != "layers" || errors.Is(err, ec2ops.ErrUnmanaged) || failing.Attempts != 2 {
			t.Fatalf("failing layer: %v after %d attempts", err, failing.Attempts)
		}
	})
}

// TestBakeErrorsIsUnmanaged: the Baker recognises a refusal by its
// sentinel alone, however deeply the runner wraps it.
func TestBakeErrorsIsUnmanaged(t *testing.T) {
	wrapped := fmt.Errorf("layer app: %w", fmt.Errorf("runner: %w", &notOnline{"i-0123456789abcdef0"}))
	if !errors.Is(wrapped, ec2ops.ErrUnmanaged) || errors.Is(errors.New("not managed"), ec2ops.ErrUnmanaged) {
		t.Fatal("errors.Is does not see ErrUnmanaged through the wrapping")
	}
}
