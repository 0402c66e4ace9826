package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awserr"
	"github.com/ec2ops/ec2ops/internal/ec2wait"
	"github.com/ec2ops/ec2ops/internal/poll"
	"github.com/ec2ops/ec2ops/internal/ratelimit"
)

// Options configures the replacers, Capturer and Rollout. Zero values are
// safe defaults.
type Options struct {
	// ELB moves target group registrations; nil when TargetGroups is empty.
	ELB ELBAPI
	// TargetGroups are the ARNs of the target groups to look in: ELBv2 has
	// no reverse lookup from an instance to its groups. A replacement is
	// registered where the old instance was, and must turn healthy there
	// before the old one is deregistered.
	TargetGroups []string
	// HealthCheck is an optional check of the caller's, run after the
	// status checks pass and before the replacement goes into service. An
	// error fails the replacement.
	HealthCheck func(ctx context.Context, instanceID string) error
	// HealthTimeout bounds the wait for a replacement to become healthy
	// (status checks and target health). Default 15m.
	HealthTimeout time.Duration
	// AllowIMDSv1 keeps the old instance's metadata setting. By default
	// every replacement requires IMDSv2 (HttpTokens "required").
	AllowIMDSv1 bool
	// HandoverDataVolumes moves the old instance's data volumes to its
	// replacement: the old instance is stopped, DeleteOnTermination of the
	// volumes is turned off, they are detached and attached to the
	// replacement before it goes into service. By default the replacement
	// gets new, empty volumes of the same shape (the data lives outside the
	// instance, as AWS recommends).
	HandoverDataVolumes bool
	// Hooks run before and after the steps of each replacement.
	Hooks Hooks
	// Observer receives progress events; nil discards them.
	Observer ec2ops.Observer
	// Logger receives structured logs; nil discards them. User data is
	// never logged.
	Logger *slog.Logger
	// PollInterval is the first delay between status polls (default 3s:
	// one DescribeInstanceStatus call per 100 instances waited on, so a
	// short interval is cheap and every second a healthy replacement waits
	// to be noticed holds a surge slot); MaxPollInterval caps the backoff
	// (default 30s).
	PollInterval, MaxPollInterval time.Duration
	// RequestShare is the share of the account's EC2 API budget (the
	// published token buckets) this library may spend, in (0, 1]. Other
	// tools spend from the same buckets. Default 0.5.
	RequestShare float64
	// DisablePacing turns client-side pacing off (the API still throttles;
	// throttled calls are retried with backoff).
	DisablePacing bool
	// TimeScale multiplies every wait, poll interval, bake time and the
	// pacing refill period, for simulators that compress time (cloudsim's
	// Options.TimeScale). Zero means 1.
	TimeScale float64
	// Seed seeds the jitter of polls and retries. Zero means 1.
	Seed uint64
}

// Hooks run around the steps of a replacement; nil hooks are skipped. An
// error from a hook fails the replacement (which is then rolled back:
// the old instance stays). The opsworks package plugs its Setup and
// Shutdown lifecycle events in here.
type Hooks struct {
	// AfterLaunch runs once the replacement is launched (not yet healthy).
	AfterLaunch func(ctx context.Context, newID string) error
	// BeforeInService runs when the replacement passed its health checks,
	// before it is registered in target groups and gets the Elastic IP.
	BeforeInService func(ctx context.Context, newID string) error
	// AfterInService runs once the replacement serves.
	AfterInService func(ctx context.Context, newID string) error
	// BeforeTerminate runs before the old instance is terminated.
	BeforeTerminate func(ctx context.Context, oldID string) error
	// AfterTerminate runs after the old instance's termination started.
	AfterTerminate func(ctx context.Context, oldID string) error
}

func runHook(ctx context.Context, name string, h func(context.Context, string) error, id string) error {
	if h == nil {
		return nil
	}
	if err := h(ctx, id); err != nil {
		return fmt.Errorf("hook %s(%s): %w", name, id, err)
	}
	return nil
}

// runtime is what the strategies of one Replacer share: clients, pacing,
// the one batched status poller and the target-health pollers.
type runtime struct {
	read  CaptureAPI
	ec2   EC2API // nil for a Capturer
	elb   ELBAPI
	opts  Options
	lim   *ratelimit.Limiter
	log   *slog.Logger
	scale float64

	status *poll.Poller[ec2wait.Status]
	vols   *poll.Poller[types.Volume]

	mu  sync.Mutex
	tgs map[string]*poll.Poller[elbtypes.TargetHealth]
	rng *rand.Rand

	// The batcher of launches (batch.go): queued jobs and running drains
	// by batch key.
	bmu   sync.Mutex
	bq    map[string][]*launchReq
	bbusy map[string]bool
}

func newRuntime(read CaptureAPI, optFns []func(*Options)) *runtime {
	o := Options{}
	for _, f := range optFns {
		f(&o)
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = 15 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 3 * time.Second
	}
	if o.MaxPollInterval < o.PollInterval {
		o.MaxPollInterval = max(30*time.Second, o.PollInterval)
	}
	if o.RequestShare <= 0 || o.RequestShare > 1 {
		o.RequestShare = 0.5
	}
	if o.TimeScale <= 0 {
		o.TimeScale = 1
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	o.TargetGroups = append([]string(nil), o.TargetGroups...)
	rt := &runtime{read: read, elb: o.ELB, opts: o, scale: o.TimeScale, tgs: map[string]*poll.Poller[elbtypes.TargetHealth]{},
		rng: rand.New(rand.NewPCG(o.Seed, 0x11fe))}
	if e, ok := read.(EC2API); ok {
		rt.ec2 = e
	}
	rt.log = o.Logger
	if rt.log == nil {
		rt.log = slog.New(slog.DiscardHandler)
	}
	if !o.DisablePacing {
		rt.lim = ratelimit.New(ratelimit.EC2().Compressed(o.TimeScale), func(lo *ratelimit.Options) { lo.Share = o.RequestShare })
	}
	pollOpts := func(p *poll.Options) {
		p.Interval = rt.d(o.PollInterval)
		p.MaxInterval = rt.d(o.MaxPollInterval)
		p.NotFoundGrace = rt.d(2 * time.Minute)
		p.Seed = o.Seed
	}
	if rt.ec2 != nil {
		rt.status = poll.New(retryThrottled(rt, "DescribeInstanceStatus", ec2wait.FetchStatus(rt.ec2)), pollOpts, func(p *poll.Options) {
			p.ChunkSize = ec2wait.StatusChunk
			p.Limiter, p.Action = rt.lim, "DescribeInstanceStatus"
		})
		rt.vols = poll.New(rt.fetchVolumes, pollOpts, func(p *poll.Options) {
			p.ChunkSize = filterChunk
			p.Limiter, p.Action = rt.lim, "DescribeVolumes"
		})
	}
	return rt
}

// d scales a duration by Options.TimeScale.
func (rt *runtime) d(x time.Duration) time.Duration {
	if rt.scale == 1 {
		return x
	}
	return time.Duration(float64(x) * rt.scale)
}

func (rt *runtime) emit(e ec2ops.Event) { ec2ops.Emit(rt.opts.Observer, e) }

// maxRetries bounds the retries of one call on throttling and server faults.
const maxRetries = 10

// Retry delays. Client-side pacing already keeps every call within the
// published buckets, so a throttle that still comes back is a random
// refusal (or another tool's spending), not a sign that the pacer is
// wrong: it is retried after a short jittered delay (throttleBase, i.e.
// 100-300 ms) that doubles only while the same call keeps being throttled.
// Transient server errors back off as the SDK's standard retryer does (1s
// doubling). Both are capped at maxBackoff.
const (
	throttleBase  = 200 * time.Millisecond
	transientBase = time.Second
	maxBackoff    = 20 * time.Second
)

// backoff is the jittered retry delay of one call: base·2^(n-1) scaled by
// a factor in [0.5, 1.5), capped at maxBackoff, for its n-th consecutive
// failure of one kind.
func (rt *runtime) backoff(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	rt.mu.Lock()
	f := 0.5 + rt.rng.Float64()
	rt.mu.Unlock()
	return rt.d(time.Duration(float64(d) * f))
}

// do makes one API call: paced by the limiter (EC2 actions; "elb:" ones are
// not paced), retried on throttling (short jittered delays, growing on
// consecutive throttles) and on transient server errors (1s doubling to
// 20s, as the SDK's standard retryer), never on other errors.
func (rt *runtime) do(ctx context.Context, action string, resources int, fn func(context.Context) error) error {
	throttles, transients := 0, 0
	for attempt := 0; ; attempt++ {
		if !strings.HasPrefix(action, "elb:") {
			if err := rt.lim.Wait(ctx, action, resources); err != nil {
				return err
			}
		} else if err := ctx.Err(); err != nil {
			return err
		}
		err := fn(ctx)
		var wait time.Duration
		switch awserr.Classify(err) {
		case awserr.None:
			return nil
		case awserr.Throttle:
			throttles++
			wait = rt.backoff(throttleBase, throttles)
		case awserr.Transient:
			throttles = 0
			transients++
			wait = rt.backoff(transientBase, transients)
		default:
			return err
		}
		if attempt+1 >= maxRetries {
			return err
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// retryThrottled wraps a poller's fetch: a throttled Describe is retried
// within the same tick after a short jittered delay (paced like the first
// call) instead of costing every waiter of the chunk a whole, doubled poll
// interval. After maxTickRetries throttles in a row the throttle goes to
// the poller, which then backs off its ticks.
func retryThrottled[T any](rt *runtime, action string, fetch poll.Fetch[T]) poll.Fetch[T] {
	return func(ctx context.Context, ids []string) (map[string]T, error) {
		for n := 1; ; n++ {
			m, err := fetch(ctx, ids)
			if n > maxTickRetries || !awserr.IsThrottle(err) {
				return m, err
			}
			if err := sleep(ctx, rt.backoff(throttleBase, n)); err != nil {
				return nil, err
			}
			if err := rt.lim.Wait(ctx, action, 0); err != nil {
				return nil, err
			}
		}
	}
}

// maxTickRetries bounds the in-tick retries of a throttled poll.
const maxTickRetries = 3

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrUnhealthy marks a replacement that failed its health checks.
var ErrUnhealthy = errors.New("lifecycle: instance unhealthy")

// healthyCond is the status condition of a replacement: running with both
// checks ok; an impaired check, a stop or a termination fails it at once.
func healthyCond(s ec2wait.Status) (bool, error) {
	switch s.State {
	case types.InstanceStateNameShuttingDown, types.InstanceStateNameTerminated,
		types.InstanceStateNameStopping, types.InstanceStateNameStopped:
		return false, fmt.Errorf("%w: instance is %s", ErrUnhealthy, s.State)
	}
	if s.Impaired() {
		return false, fmt.Errorf("%w: a status check is impaired", ErrUnhealthy)
	}
	return s.Healthy(), nil
}

// waitHealthy waits for the status checks of id, bounded by HealthTimeout.
func (rt *runtime) waitHealthy(ctx context.Context, id string) error {
	wctx, cancel := context.WithTimeout(ctx, rt.d(rt.opts.HealthTimeout))
	defer cancel()
	_, err := rt.status.Wait(wctx, id, healthyCond)
	return rt.timeout(ctx, err, "status checks of "+id)
}

// timeout turns a deadline of our own into ec2ops.ErrTimeout (the
// caller's own cancellation passes through).
func (rt *runtime) timeout(ctx context.Context, err error, what string) error {
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("%s: %w after %s", what, ec2ops.ErrTimeout, rt.d(rt.opts.HealthTimeout))
	}
	return err
}

// waitState waits until id is in state want (stopped or running) per the
// status poller (IncludeAllInstances shows stopped instances).
func (rt *runtime) waitState(ctx context.Context, id string, want types.InstanceStateName) error {
	wctx, cancel := context.WithTimeout(ctx, rt.d(rt.opts.HealthTimeout))
	defer cancel()
	_, err := rt.status.Wait(wctx, id, func(s ec2wait.Status) (bool, error) {
		if s.State == types.InstanceStateNameTerminated || s.State == types.InstanceStateNameShuttingDown {
			return false, fmt.Errorf("%w: instance %s is %s", poll.ErrCondition, id, s.State)
		}
		return s.State == want, nil
	})
	return rt.timeout(ctx, err, fmt.Sprintf("wait for %s to be %s", id, want))
}

func (rt *runtime) fetchVolumes(ctx context.Context, ids []string) (map[string]types.Volume, error) {
	out, err := rt.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("volume-id"), Values: ids}}})
	if err != nil {
		return nil, err
	}
	m := make(map[string]types.Volume, len(out.Volumes))
	for _, v := range out.Volumes {
		m[aws.ToString(v.VolumeId)] = v
	}
	return m, nil
}

// waitVolume waits until volume id is available, or attached to instance.
func (rt *runtime) waitVolume(ctx context.Context, id, instance string) error {
	wctx, cancel := context.WithTimeout(ctx, rt.d(rt.opts.HealthTimeout))
	defer cancel()
	_, err := rt.vols.Wait(wctx, id, func(v types.Volume) (bool, error) {
		if instance == "" {
			return v.State == types.VolumeStateAvailable, nil
		}
		for _, a := range v.Attachments {
			if aws.ToString(a.InstanceId) == instance && a.State == types.VolumeAttachmentStateAttached {
				return true, nil
			}
		}
		return false, nil
	})
	return rt.timeout(ctx, err, "wait for volume "+id)
}

// tgPoller returns the shared target-health poller of one target group:
// one DescribeTargetHealth call per tick for every instance waited on.
func (rt *runtime) tgPoller(arn string) *poll.Poller[elbtypes.TargetHealth] {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if p := rt.tgs[arn]; p != nil {
		return p
	}
	fetch := func(ctx context.Context, ids []string) (map[string]elbtypes.TargetHealth, error) {
		in := &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)}
		for _, id := range ids {
			in.Targets = append(in.Targets, elbtypes.TargetDescription{Id: aws.String(id)})
		}
		out, err := rt.elb.DescribeTargetHealth(ctx, in)
		if err != nil {
			return nil, err
		}
		m := make(map[string]elbtypes.TargetHealth, len(out.TargetHealthDescriptions))
		for _, d := range out.TargetHealthDescriptions {
			if d.Target != nil && d.TargetHealth != nil {
				m[aws.ToString(d.Target.Id)] = *d.TargetHealth
			}
		}
		return m, nil
	}
	p := poll.New(fetch, func(p *poll.Options) {
		p.Interval = rt.d(rt.opts.PollInterval)
		p.MaxInterval = rt.d(rt.opts.MaxPollInterval)
		p.ChunkSize = 100
		p.Seed = rt.opts.Seed
	})
	rt.tgs[arn] = p
	return p
}

// waitTarget waits until id is healthy in target group arn (or, with
// gone, until it is no longer registered: draining finished).
func (rt *runtime) waitTarget(ctx context.Context, arn, id string, gone bool) error {
	wctx, cancel := context.WithTimeout(ctx, rt.d(rt.opts.HealthTimeout))
	defer cancel()
	_, err := rt.tgPoller(arn).Wait(wctx, id, func(h elbtypes.TargetHealth) (bool, error) {
		if gone {
			return h.State == elbtypes.TargetHealthStateEnumUnused, nil
		}
		switch h.State {
		case elbtypes.TargetHealthStateEnumHealthy:
			return true, nil
		case elbtypes.TargetHealthStateEnumUnhealthy:
			return false, fmt.Errorf("%w: target %s is unhealthy in %s (%s)", ErrUnhealthy, id, arn, h.Reason)
		}
		return false, nil
	})
	return rt.timeout(ctx, err, "target health of "+id)
}
