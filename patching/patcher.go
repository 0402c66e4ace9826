package patching

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awserr"
	"github.com/ec2ops/ec2ops/internal/awsid"
	"github.com/ec2ops/ec2ops/internal/ec2wait"
	"github.com/ec2ops/ec2ops/internal/poll"
	"github.com/ec2ops/ec2ops/internal/quantity"
	"github.com/ec2ops/ec2ops/internal/ratelimit"
)

// PatchOptions configures a Patcher. Zero values are safe defaults.
type PatchOptions struct {
	// Operation is "Install" (default) or "Scan".
	Operation string
	// RebootOption is "RebootIfNeeded" (default) or "NoReboot".
	RebootOption string
	// WithHooks uses AWS-RunPatchBaselineWithHooks and passes the hook
	// documents (empty hooks are left to the document's defaults).
	WithHooks                                   bool
	PreInstallHook, PostInstallHook, OnExitHook string
	// SnapshotID is passed to the document to pin the patch snapshot across
	// waves (recommended: the same patches everywhere). Empty leaves it out.
	SnapshotID string

	// Canary is the size of the first wave. Zero means 1; negative means no
	// canary wave.
	Canary int
	// Waves are the cumulative shares of the fleet patched after each wave
	// that follows the canary. Default 10%, 50%, 100%. A last 100% is added
	// if missing.
	Waves []string
	// MinHealthyPerAZ is how many instances of each AZ stay out of any one
	// wave (an AZ with that many or fewer instances gives up one at a time).
	// Zero means 1.
	MinHealthyPerAZ int
	// MaxConcurrency is passed to each wave's commands. Default "100%"
	// (the wave is the unit of disruption).
	MaxConcurrency string
	// FailureThreshold is how many failed instances (count or % of the
	// fleet) are tolerated; one more stops the rollout after the current
	// wave. Default "0".
	FailureThreshold string

	// HealthCheck, if set, is called for each patched instance after its
	// status checks pass and its agent is back; an error marks it unhealthy.
	HealthCheck func(ctx context.Context, instanceID string) error
	// HealthTimeout bounds the health gate of a wave. Default 20m.
	HealthTimeout time.Duration
	// SkipUnmanaged patches the managed instances when some are not (the
	// others are reported). The default refuses to start.
	SkipUnmanaged bool

	Observer ec2ops.Observer
	Logger   *slog.Logger
	// SSMLimiter and EC2Limiter pace the calls; nil uses the SSM and EC2
	// presets.
	SSMLimiter, EC2Limiter *ratelimit.Limiter
	// Runner adjusts the CommandRunner the Patcher uses (poll intervals...).
	Runner []func(*RunnerOptions)
	// PollInterval is the first delay of the health-gate pollers. Default 10s.
	PollInterval time.Duration
}

// Patcher patches a fleet in place with AWS-RunPatchBaseline, in waves.
type Patcher struct {
	ssm  SSMAPI
	ec2  EC2API
	opts PatchOptions
	log  *slog.Logger
	run  *Runner
}

// NewPatcher returns a Patcher.
func NewPatcher(ssmAPI SSMAPI, ec2API EC2API, optFns ...func(*PatchOptions)) *Patcher {
	o := PatchOptions{}
	for _, f := range optFns {
		f(&o)
	}
	if o.Operation == "" {
		o.Operation = "Install"
	}
	if o.RebootOption == "" {
		o.RebootOption = "RebootIfNeeded"
	}
	if o.Canary == 0 {
		o.Canary = 1
	}
	if len(o.Waves) == 0 {
		o.Waves = []string{"10%", "50%", "100%"}
	}
	if o.MinHealthyPerAZ <= 0 {
		o.MinHealthyPerAZ = 1
	}
	if o.MaxConcurrency == "" {
		o.MaxConcurrency = "100%"
	}
	if o.FailureThreshold == "" {
		o.FailureThreshold = "0"
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = 20 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 10 * time.Second
	}
	if o.SSMLimiter == nil {
		o.SSMLimiter = ratelimit.New(ratelimit.SSM())
	}
	if o.EC2Limiter == nil {
		o.EC2Limiter = ratelimit.New(ratelimit.EC2())
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base := func(ro *RunnerOptions) {
		ro.Observer, ro.Logger, ro.Limiter = o.Observer, o.Logger, o.SSMLimiter
		ro.SkipUnmanaged = true // an agent lost since the plan is a failure of its wave, not a reason to stop
	}
	return &Patcher{ssm: ssmAPI, ec2: ec2API, opts: o, log: log,
		run: NewRunner(ssmAPI, append([]func(*RunnerOptions){base}, o.Runner...)...)}
}

// NewPatcherFromConfig returns a Patcher with clients made from cfg.
func NewPatcherFromConfig(cfg aws.Config, optFns ...func(*PatchOptions)) *Patcher {
	return NewPatcher(ssm.NewFromConfig(cfg), ec2.NewFromConfig(cfg), optFns...)
}

// Runner returns the CommandRunner the Patcher uses.
func (p *Patcher) Runner() *Runner { return p.run }

// PatchPlan is the dry run of a patch rollout.
type PatchPlan struct {
	ec2ops.Plan
	// Waves are the instance IDs of each wave, in order.
	Waves [][]string
	// AZ is each managed instance's Availability Zone.
	AZ map[string]string
	// Unmanaged are targets without an online SSM agent (or not found),
	// with the reason; Apply refuses to start while there are any unless
	// SkipUnmanaged is set.
	Unmanaged map[string]string
}

const opPatch = "patch"

// Plan describes the targets (AZ, SSM agent) and splits the managed ones
// into waves. It changes nothing.
func (p *Patcher) Plan(ctx context.Context, instanceIDs []string) (*PatchPlan, error) {
	if err := p.validate(instanceIDs); err != nil {
		return nil, err
	}
	ids := dedupe(instanceIDs)
	insts, err := p.describe(ctx, ids)
	if err != nil {
		return nil, err
	}
	agents, err := p.run.describeAgents(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	plan := &PatchPlan{AZ: map[string]string{}, Unmanaged: map[string]string{}}
	var managed []string
	for _, id := range ids {
		in, ok := insts[id]
		switch {
		case !ok:
			plan.Unmanaged[id] = "instance not found"
		case in.State == nil || in.State.Name != ec2types.InstanceStateNameRunning:
			plan.Unmanaged[id] = "instance not running"
		case agents[id] == "":
			plan.Unmanaged[id] = "no registered SSM agent"
		case agents[id] != ssmtypes.PingStatusOnline:
			plan.Unmanaged[id] = "agent " + string(agents[id])
		default:
			managed = append(managed, id)
			if in.Placement != nil {
				plan.AZ[id] = aws.ToString(in.Placement.AvailabilityZone)
			}
		}
	}
	plan.Waves = Waves(managed, plan.AZ, p.opts.Canary, p.waveShares(), p.opts.MinHealthyPerAZ)
	plan.Plan = p.steps(plan, ids)
	ec2ops.Emit(p.opts.Observer, ec2ops.Event{Operation: opPatch, Phase: "plan", Total: len(ids),
		Message: fmt.Sprintf("%d managed in %d wave(s), %d unmanaged", len(managed), len(plan.Waves), len(plan.Unmanaged))})
	return plan, nil
}

func (p *Patcher) waveShares() []quantity.Quantity {
	var out []quantity.Quantity
	for _, w := range p.opts.Waves {
		out = append(out, quantity.MustParse(w)) // validated
	}
	return out
}

func (p *Patcher) document() string {
	if p.opts.WithHooks {
		return DocRunPatchBaselineWithHooks
	}
	return DocRunPatchBaseline
}

func (p *Patcher) steps(plan *PatchPlan, ids []string) ec2ops.Plan {
	pl := ec2ops.Plan{Operation: opPatch}
	pl.Steps = append(pl.Steps,
		ec2ops.Step{Action: "ec2:DescribeInstances", Resources: ids, Reason: "find each target's AZ and state"},
		ec2ops.Step{Action: "ssm:DescribeInstanceInformation", Resources: ids, Reason: "find targets without an online SSM agent"})
	for i, w := range plan.Waves {
		name := fmt.Sprintf("wave %d", i+1)
		if i == 0 && p.opts.Canary > 0 {
			name = "canary"
		}
		pl.Steps = append(pl.Steps,
			ec2ops.Step{Action: "ssm:SendCommand", Resources: w, Reason: fmt.Sprintf("%s: %s Operation=%s RebootOption=%s", name, p.document(), p.opts.Operation, p.opts.RebootOption)},
			ec2ops.Step{Action: "ssm:ListCommands", Resources: w, Reason: name + ": poll command counts"},
			ec2ops.Step{Action: "ssm:ListCommandInvocations", Resources: w, Reason: name + ": collect per-instance results"},
			ec2ops.Step{Action: "ec2:DescribeInstanceStatus", Resources: w, Reason: name + ": health gate, status checks"},
			ec2ops.Step{Action: "ssm:DescribeInstanceInformation", Resources: w, Reason: name + ": health gate, agent back online"})
	}
	pl.Steps = append(pl.Steps, ec2ops.Step{Action: "ssm:DescribeInstancePatchStates", Resources: ids, Reason: "compliance report"})
	return pl
}

func (p *Patcher) validate(ids []string) error {
	o := p.opts
	if len(ids) == 0 {
		return ec2ops.InvalidInput("instanceIDs", "", "is empty", "pass the instances to patch")
	}
	for _, id := range ids {
		if !awsid.Instance(id) {
			return ec2ops.InvalidInput("instanceIDs", id, "is not an instance ID", "use IDs like i-0123456789abcdef0")
		}
	}
	if o.Operation != "Install" && o.Operation != "Scan" {
		return ec2ops.InvalidInput("PatchOptions.Operation", o.Operation, "is not a patch operation", `use "Install" or "Scan"`)
	}
	if o.RebootOption != "RebootIfNeeded" && o.RebootOption != "NoReboot" {
		return ec2ops.InvalidInput("PatchOptions.RebootOption", o.RebootOption, "is not a reboot option", `use "RebootIfNeeded" or "NoReboot"`)
	}
	for _, w := range o.Waves {
		q, err := quantity.Parse(w)
		if err != nil || !q.Percent || q.IsZero() {
			return ec2ops.InvalidInput("PatchOptions.Waves", w, "is not a cumulative share of the fleet", `use increasing percentages like "10%", "50%", "100%"`)
		}
	}
	if _, err := quantity.Parse(o.FailureThreshold); err != nil {
		return ec2ops.InvalidInput("PatchOptions.FailureThreshold", o.FailureThreshold, err.Error(), `use a count like "2" or a percentage like "5%"`)
	}
	if q, err := quantity.Parse(o.MaxConcurrency); err != nil || q.IsZero() || (q.Percent && q.Value != float64(int(q.Value))) {
		return ec2ops.InvalidInput("PatchOptions.MaxConcurrency", o.MaxConcurrency, "is not a count or whole percentage above zero", `use e.g. "10" or "25%"`)
	}
	return nil
}

func dedupe(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// describe returns what EC2 says of ids (200 a call, filtered by ID so a
// missing ID does not fail the call).
func (p *Patcher) describe(ctx context.Context, ids []string) (map[string]ec2types.Instance, error) {
	fetch := ec2wait.FetchInstances(p.ec2)
	out := make(map[string]ec2types.Instance, len(ids))
	for chunk := range slices.Chunk(ids, ec2wait.InstancesChunk) {
		var m map[string]ec2types.Instance
		var err error
		// Throttling and 5xx are retried with backoff, never surfaced.
		for attempt, delay := 0, time.Second; ; attempt, delay = attempt+1, min(2*delay, 20*time.Second) {
			if err := p.opts.EC2Limiter.Wait(ctx, "DescribeInstances", 0); err != nil {
				return nil, err
			}
			if m, err = fetch(ctx, chunk); err == nil || !awserr.Retryable(err) || attempt >= 8 {
				break
			}
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		if err != nil {
			return nil, fmt.Errorf("plan: describe instances: %w", err)
		}
		maps.Copy(out, m)
	}
	return out, nil
}

// Waves splits ids into waves: first canary instances (if canary > 0),
// then enough to reach each cumulative share of the fleet, and more waves
// if the AZ rule held some back. Within a wave instances are taken round
// robin from the AZs with the most left, and no wave takes more than
// n - minHealthyPerAZ of an AZ's n instances (at least 1), so no AZ loses
// its last healthy instances at once. It is deterministic.
func Waves(ids []string, az map[string]string, canary int, shares []quantity.Quantity, minHealthyPerAZ int) [][]string {
	n := len(ids)
	if n == 0 {
		return nil
	}
	byAZ := map[string][]string{}
	for _, id := range ids {
		byAZ[az[id]] = append(byAZ[az[id]], id)
	}
	zones := slices.Sorted(maps.Keys(byAZ))
	capOf := map[string]int{}
	for _, z := range zones {
		capOf[z] = max(1, len(byAZ[z])-minHealthyPerAZ)
	}
	var targets []int
	if canary > 0 {
		targets = append(targets, min(canary, n))
	}
	for _, q := range shares {
		targets = append(targets, q.Ceil(n))
	}
	targets = append(targets, n)
	var waves [][]string
	done := 0
	for _, target := range targets {
		for done < min(target, n) {
			need := min(target, n) - done
			taken := map[string]int{}
			var wave []string
			for len(wave) < need {
				// The AZ with the most left that may still give one.
				best := ""
				for _, z := range zones {
					if len(byAZ[z]) == 0 || taken[z] >= capOf[z] {
						continue
					}
					if best == "" || len(byAZ[z]) > len(byAZ[best]) {
						best = z
					}
				}
				if best == "" {
					break
				}
				wave = append(wave, byAZ[best][0])
				byAZ[best] = byAZ[best][1:]
				taken[best]++
			}
			done += len(wave)
			waves = append(waves, wave)
		}
	}
	return waves
}

// Outcome is what happened to one instance.
type Outcome struct {
	// Status is Patched (or Scanned), Failed (see Invocation), Unhealthy
	// (the health gate failed), Unmanaged, or NotPatched (the rollout
	// stopped first).
	Status     string
	Wave       int // 1-based; 0 when never in a wave
	Invocation *Invocation
	// Reason explains a failure, never containing secrets.
	Reason string
}

// Compliance is an instance's patch state after the rollout
// (DescribeInstancePatchStates).
type Compliance struct {
	Installed, InstalledOther, Missing, Failed, InstalledPendingReboot, NotApplicable int
	Operation                                                                         string
	OperationEnd                                                                      time.Time
}

// Compliant reports no missing, failed or pending-reboot patches.
func (c Compliance) Compliant() bool {
	return c.Missing == 0 && c.Failed == 0 && c.InstalledPendingReboot == 0
}

// Report is the result of Apply.
type Report struct {
	Outcomes   map[string]Outcome
	Compliance map[string]Compliance
	// Waves are the waves that ran, with their instances.
	Waves [][]string
	// CommandIDs are the SSM commands sent.
	CommandIDs []string
}

// Count returns how many outcomes have status st.
func (r *Report) Count(st string) int {
	n := 0
	for _, o := range r.Outcomes {
		if o.Status == st {
			n++
		}
	}
	return n
}

// PatchError is returned when the rollout did not patch every target. It
// carries the per-instance outcomes; Err says why it stopped early (nil if
// every wave ran but some instances failed).
type PatchError struct {
	Report  *Report
	Failed  map[string]string // instance -> outcome status (Failed: detail, Unhealthy, Unmanaged)
	Pending []string          // not patched because the rollout stopped
	Err     error
}

func (e *PatchError) Error() string {
	ids := slices.Sorted(maps.Keys(e.Failed))
	if len(ids) > 10 {
		ids = append(ids[:10], "...")
	}
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		parts = append(parts, id+"="+e.Failed[id])
	}
	msg := fmt.Sprintf("patch: %d failed (%s), %d not patched", len(e.Failed), strings.Join(parts, ", "), len(e.Pending))
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *PatchError) Unwrap() error { return e.Err }

// ErrThreshold is the cause of a PatchError when failures exceeded
// PatchOptions.FailureThreshold.
var ErrThreshold = errors.New("patch: failures exceeded the threshold")

// Patch plans and applies in one call.
func (p *Patcher) Patch(ctx context.Context, instanceIDs []string) (*Report, error) {
	plan, err := p.Plan(ctx, instanceIDs)
	if err != nil {
		return nil, err
	}
	return p.Apply(ctx, plan)
}

// Apply runs the plan's waves: sends the patch document to a wave, waits
// for its results, gates on health (status checks, agent online, the
// caller's HealthCheck), and goes on unless failures exceed the threshold.
// It ends with a compliance report.
func (p *Patcher) Apply(ctx context.Context, plan *PatchPlan) (*Report, error) {
	if plan == nil {
		return nil, ec2ops.InvalidInput("plan", "", "is nil", "call Plan first")
	}
	if len(plan.Unmanaged) > 0 && !p.opts.SkipUnmanaged {
		return nil, &UnmanagedError{Unmanaged: maps.Clone(plan.Unmanaged)}
	}
	rep := &Report{Outcomes: map[string]Outcome{}, Compliance: map[string]Compliance{}}
	total := len(plan.Unmanaged)
	var all []string
	for _, w := range plan.Waves {
		total += len(w)
		all = append(all, w...)
	}
	for id, why := range plan.Unmanaged {
		rep.Outcomes[id] = Outcome{Status: "Unmanaged", Reason: why}
	}
	threshold := quantity.MustParse(p.opts.FailureThreshold).Floor(total)
	failures := len(plan.Unmanaged)
	var stopErr error
	if failures > threshold {
		stopErr = fmt.Errorf("%w: %d unmanaged, threshold %d", ErrThreshold, failures, threshold)
	}
	for i, wave := range plan.Waves {
		if stopErr != nil {
			break
		}
		if err := ctx.Err(); err != nil {
			stopErr = err
			break
		}
		rep.Waves = append(rep.Waves, wave)
		ec2ops.Emit(p.opts.Observer, ec2ops.Event{Operation: opPatch, Phase: "wave", Done: i, Total: len(plan.Waves),
			Message: fmt.Sprintf("wave %d/%d: %d instance(s)", i+1, len(plan.Waves), len(wave))})
		budget := threshold - failures
		res, err := p.run.Run(ctx, Command{
			DocumentName:   p.document(),
			Parameters:     p.parameters(),
			InstanceIDs:    wave,
			MaxConcurrency: p.opts.MaxConcurrency,
			MaxErrors:      fmt.Sprint(max(0, budget)),
			Comment:        fmt.Sprintf("ec2ops patch wave %d/%d", i+1, len(plan.Waves)),
		})
		if res != nil {
			rep.CommandIDs = append(rep.CommandIDs, res.CommandIDs...)
		}
		var cerr *CommandError
		if err != nil && !errors.As(err, &cerr) {
			stopErr = err
			break
		}
		var ok []string
		for _, id := range wave {
			o := Outcome{Wave: i + 1}
			switch {
			case res == nil:
				o.Status, o.Reason = "NotPatched", "wave not run"
			case res.Unmanaged[id] != "":
				o.Status, o.Reason = "Unmanaged", res.Unmanaged[id]
			case slices.Contains(res.NotSent, id):
				o.Status, o.Reason = "NotPatched", "not sent: wave stopped at MaxErrors"
			default:
				inv, found := res.Invocations[id]
				if !found {
					o.Status, o.Reason = "NotPatched", "no result"
					break
				}
				o.Invocation = &inv
				if inv.Succeeded() {
					ok = append(ok, id)
					continue
				}
				o.Status, o.Reason = "Failed", inv.Status
			}
			rep.Outcomes[id] = o
			if o.Status != "NotPatched" {
				failures++
			}
		}
		if cerr != nil && cerr.Err != nil {
			stopErr = cerr.Err
		}
		unhealthy := p.healthGate(ctx, i+1, ok)
		for _, id := range ok {
			inv := res.Invocations[id]
			o := Outcome{Wave: i + 1, Invocation: &inv, Status: "Patched"}
			if p.opts.Operation == "Scan" {
				o.Status = "Scanned"
			}
			if why, bad := unhealthy[id]; bad {
				o.Status, o.Reason = "Unhealthy", why
				failures++
			}
			rep.Outcomes[id] = o
		}
		if stopErr == nil && ctx.Err() != nil {
			stopErr = ctx.Err()
		}
		if stopErr == nil && failures > threshold {
			stopErr = fmt.Errorf("%w: %d failed after wave %d, threshold %d", ErrThreshold, failures, i+1, threshold)
		}
		ec2ops.Emit(p.opts.Observer, ec2ops.Event{Operation: opPatch, Phase: "wave-done", Done: i + 1, Total: len(plan.Waves),
			Message: fmt.Sprintf("wave %d: %d ok, %d failed so far", i+1, len(ok)-len(unhealthy), failures), Err: stopErr})
	}
	for _, id := range all {
		if _, seen := rep.Outcomes[id]; !seen {
			rep.Outcomes[id] = Outcome{Status: "NotPatched", Reason: "rollout stopped before its wave"}
		}
	}
	if ctx.Err() == nil {
		if err := p.compliance(ctx, all, rep); err != nil && stopErr == nil {
			stopErr = err
		}
	}
	perr := &PatchError{Report: rep, Failed: map[string]string{}, Err: stopErr}
	for id, o := range rep.Outcomes {
		switch o.Status {
		case "Patched", "Scanned":
		case "NotPatched":
			perr.Pending = append(perr.Pending, id)
		default:
			perr.Failed[id] = o.Status + cond(o.Reason != "", ": "+o.Reason, "")
		}
	}
	sort.Strings(perr.Pending)
	if len(perr.Failed) == 0 && len(perr.Pending) == 0 && stopErr == nil {
		return rep, nil
	}
	return rep, perr
}

func cond(b bool, x, y string) string {
	if b {
		return x
	}
	return y
}

func (p *Patcher) parameters() map[string][]string {
	m := map[string][]string{"Operation": {p.opts.Operation}, "RebootOption": {p.opts.RebootOption}}
	if p.opts.SnapshotID != "" {
		m["SnapshotId"] = []string{p.opts.SnapshotID}
	}
	if p.opts.WithHooks {
		for k, v := range map[string]string{"PreInstallHookDocName": p.opts.PreInstallHook,
			"PostInstallHookDocName": p.opts.PostInstallHook, "OnExitHookDocName": p.opts.OnExitHook} {
			if v != "" {
				m[k] = []string{v}
			}
		}
	}
	return m
}

// healthGate waits until the wave's patched instances pass their status
// checks (one DescribeInstanceStatus per 100 per tick) and their agents are
// online (one DescribeInstanceInformation per 50 per tick), then runs the
// caller's HealthCheck. It returns the instances that did not pass.
func (p *Patcher) healthGate(ctx context.Context, wave int, ids []string) map[string]string {
	bad := map[string]string{}
	if len(ids) == 0 {
		return bad
	}
	gctx, cancel := context.WithTimeout(ctx, p.opts.HealthTimeout)
	defer cancel()
	popts := func(o *poll.Options) {
		o.Interval = p.opts.PollInterval
		o.MaxInterval = max(60*time.Second, p.opts.PollInterval)
	}
	ec2ops.Emit(p.opts.Observer, ec2ops.Event{Operation: opPatch, Phase: "health-gate", Total: len(ids),
		Message: fmt.Sprintf("wave %d: waiting for status checks and SSM agents", wave)})
	var wg sync.WaitGroup
	var mu sync.Mutex
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, errs := ec2wait.NewStatusPoller(p.ec2, p.opts.EC2Limiter, popts).WaitAll(gctx, ids, ec2wait.Healthy)
		mu.Lock()
		for id, err := range errs {
			bad[id] = "status checks: " + err.Error()
		}
		mu.Unlock()
	}()
	go func() {
		defer wg.Done()
		agents := poll.New(p.fetchPing, popts, func(o *poll.Options) {
			o.ChunkSize, o.Limiter, o.Action = pageSize, p.opts.SSMLimiter, "DescribeInstanceInformation"
		})
		_, errs := agents.WaitAll(gctx, ids, func(st ssmtypes.PingStatus) (bool, error) { return st == ssmtypes.PingStatusOnline, nil })
		mu.Lock()
		for id, err := range errs {
			if _, dup := bad[id]; !dup {
				bad[id] = "SSM agent: " + err.Error()
			}
		}
		mu.Unlock()
	}()
	wg.Wait()
	if p.opts.HealthCheck != nil {
		for _, id := range ids {
			if _, already := bad[id]; already {
				continue
			}
			if err := p.opts.HealthCheck(gctx, id); err != nil {
				bad[id] = "health check: " + err.Error()
			}
		}
	}
	for id, why := range bad {
		ec2ops.Emit(p.opts.Observer, ec2ops.Event{Operation: opPatch, Phase: "unhealthy", Resource: id, Err: errors.New(why)})
	}
	return bad
}

// fetchPing is a poll.Fetch over DescribeInstanceInformation.
func (p *Patcher) fetchPing(ctx context.Context, ids []string) (map[string]ssmtypes.PingStatus, error) {
	out := map[string]ssmtypes.PingStatus{}
	var next *string
	for {
		o, err := p.ssm.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{
			Filters:    []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: ids}},
			MaxResults: aws.Int32(pageSize), NextToken: next})
		if err != nil {
			return nil, err
		}
		for _, ii := range o.InstanceInformationList {
			out[aws.ToString(ii.InstanceId)] = ii.PingStatus
		}
		if next = o.NextToken; aws.ToString(next) == "" {
			return out, nil
		}
	}
}

// compliance fills rep.Compliance from DescribeInstancePatchStates, 50
// instances a call.
func (p *Patcher) compliance(ctx context.Context, ids []string, rep *Report) error {
	for chunk := range slices.Chunk(ids, pageSize) {
		var next *string
		for {
			var out *ssm.DescribeInstancePatchStatesOutput
			err := p.run.call(ctx, "DescribeInstancePatchStates", func(ctx context.Context) (err error) {
				out, err = p.ssm.DescribeInstancePatchStates(ctx, &ssm.DescribeInstancePatchStatesInput{InstanceIds: chunk, NextToken: next})
				return err
			})
			if err != nil {
				return fmt.Errorf("compliance report: describe instance patch states: %w", err)
			}
			for _, st := range out.InstancePatchStates {
				c := Compliance{
					Installed: int(st.InstalledCount), InstalledOther: int(st.InstalledOtherCount),
					Missing: int(st.MissingCount), Failed: int(st.FailedCount),
					InstalledPendingReboot: int(aws.ToInt32(st.InstalledPendingRebootCount)),
					NotApplicable:          int(st.NotApplicableCount), Operation: string(st.Operation),
				}
				if st.OperationEndTime != nil {
					c.OperationEnd = *st.OperationEndTime
				}
				rep.Compliance[aws.ToString(st.InstanceId)] = c
			}
			if next = out.NextToken; aws.ToString(next) == "" {
				break
			}
		}
	}
	compliant := 0
	for _, c := range rep.Compliance {
		if c.Compliant() {
			compliant++
		}
	}
	ec2ops.Emit(p.opts.Observer, ec2ops.Event{Operation: opPatch, Phase: "compliance", Done: compliant, Total: len(ids),
		Message: fmt.Sprintf("%d of %d compliant", compliant, len(ids))})
	return nil
}

// Policy returns the least-privilege IAM policy of the Runner: the Run
// Command actions and DescribeInstanceInformation.
func (r *Runner) Policy() ec2ops.Policy { return runnerPolicy() }

func runnerPolicy() ec2ops.Policy {
	return ec2ops.NewPolicy(
		ec2ops.Statement{Sid: "RunCommand", Action: []string{"ssm:SendCommand", "ssm:CancelCommand"}},
		ec2ops.Statement{Sid: "TrackCommands", Action: []string{"ssm:ListCommands", "ssm:ListCommandInvocations",
			"ssm:GetCommandInvocation", "ssm:DescribeInstanceInformation"}},
	)
}

// Policy returns the least-privilege IAM policy of the Patcher.
func (p *Patcher) Policy() ec2ops.Policy {
	return runnerPolicy().Merge(ec2ops.NewPolicy(
		ec2ops.Statement{Sid: "PatchReport", Action: []string{"ssm:DescribeInstancePatchStates"}},
		ec2ops.Statement{Sid: "HealthGate", Action: []string{"ec2:DescribeInstances", "ec2:DescribeInstanceStatus"}},
	))
}
