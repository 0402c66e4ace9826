package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/ec2wait"
	"github.com/ec2ops/ec2ops/internal/quantity"
)

// Selector picks the fleet of a rollout: explicit instance IDs, or tags
// (all must match) and EC2 filters. Instances owned by an Auto Scaling
// group are refused, never replaced.
type Selector struct {
	InstanceIDs []string
	Tags        map[string]string
	Filters     []types.Filter
}

// RolloutOptions configures a Rollout. Zero values are safe defaults.
type RolloutOptions struct {
	// ID names the rollout (tag ec2ops:rollout, journal). Default: derived
	// from the target and the selector, so the same call resumes the same
	// rollout.
	ID string
	// MaxSurge is how many replacements may run above the fleet size at
	// once, a count ("5") or a percentage of the fleet ("10%", rounded up).
	// Default "25%". Surge replacers use it as their concurrency.
	MaxSurge string
	// MaxUnavailable is how far below the fleet size healthy capacity may
	// go, a count or a percentage (rounded down). Default "0". In-place
	// replacers (RootVolume, Resize by stop/start) and data-volume handover
	// take instances out of service and need it above zero.
	MaxUnavailable string
	// Canary is the size of a first batch (count or percentage, rounded
	// up) that is replaced and baked for BakeTime before the rest; the
	// canaries' old instances are kept until the bake passes. Default: none.
	Canary string
	// BakeTime is how long the canaries must stay healthy.
	BakeTime time.Duration
	// MaxFailures is how many failed replacements are tolerated (count or
	// percentage of the drifted instances, rounded down). One more stops
	// the rollout and rolls back what is in flight. Default "0".
	MaxFailures string
	// Journal records progress; nil means NoJournal (resume from tags).
	Journal Journal
}

// Rollout replaces the drifted instances of a fleet with a Replacer,
// keeping healthy capacity above a floor. Create it with NewRollout.
type Rollout struct {
	r    Replacer
	sel  Selector
	opts RolloutOptions
}

// NewRollout returns a Rollout of the instances sel picks, replaced by r
// (whose Target says what they should become).
func NewRollout(r Replacer, sel Selector, optFns ...func(*RolloutOptions)) *Rollout {
	o := RolloutOptions{}
	for _, f := range optFns {
		f(&o)
	}
	if o.MaxSurge == "" {
		o.MaxSurge = "25%"
	}
	if o.MaxUnavailable == "" {
		o.MaxUnavailable = "0"
	}
	if o.MaxFailures == "" {
		o.MaxFailures = "0"
	}
	if o.Journal == nil {
		o.Journal = NoJournal{}
	}
	sel.InstanceIDs = slices.Clone(sel.InstanceIDs)
	sel.Tags = maps.Clone(sel.Tags)
	sel.Filters = slices.Clone(sel.Filters)
	return &Rollout{r: r, sel: sel, opts: o}
}

// Policy returns the IAM policy of the rollout (that of its Replacer).
func (ro *Rollout) Policy() ec2ops.Policy { return ro.r.Policy() }

// PlannedInstance is one instance a rollout replaces.
type PlannedInstance struct {
	InstanceID       string
	AvailabilityZone string
	// Reasons says why the instance is drifted.
	Reasons []string
	// Replacement is an earlier replacement in flight that Apply adopts.
	Replacement string
}

// RolloutPlan is what Apply would do.
type RolloutPlan struct {
	ID      string
	ImageID string // "" when the target keeps each instance's image
	// Fleet is the number of selected instances; Floor the healthy
	// capacity Apply never goes below; InFlight the replacements at once.
	Fleet, Floor, InFlight int
	// Drifted are the instances to replace, in order (AZ-balanced, work in
	// flight first); Batches groups them (canary first).
	Drifted []PlannedInstance
	Batches [][]string
	// UpToDate are selected instances that match the target.
	UpToDate []string
	// Refused are selected instances that cannot be cloned, with why.
	Refused map[string]error
	// Steps are the API calls, in order.
	Steps ec2ops.Plan
}

// RolloutResult is what Apply did.
type RolloutResult struct {
	ID string
	// Replaced maps each replaced instance to its replacement.
	Replaced map[string]string
	UpToDate []string
	Refused  map[string]error
	Elapsed  time.Duration
}

// RolloutError reports a rollout that stopped before the end: what was
// replaced, what failed (and was rolled back), and what is pending. Run
// Apply again to resume. errors.As also finds it as *ec2ops.ProgressError.
type RolloutError struct {
	ID         string
	Replaced   map[string]string
	Failed     map[string]error
	RolledBack []string
	Pending    []string
	Err        error
}

func (e *RolloutError) Error() string {
	msg := fmt.Sprintf("rollout %s stopped: %d replaced, %d failed (%d rolled back), %d pending: %v",
		e.ID, len(e.Replaced), len(e.Failed), len(e.RolledBack), len(e.Pending), e.Err)
	if ids := slices.Sorted(maps.Keys(e.Failed)); len(ids) > 0 { // the first cause, so the message says why
		msg += fmt.Sprintf(" (first failure: %s: %v)", ids[0], e.Failed[ids[0]])
	}
	return msg
}

// Unwrap returns the cause.
func (e *RolloutError) Unwrap() error { return e.Err }

// As lets errors.As find the error as an *ec2ops.ProgressError.
func (e *RolloutError) As(target any) bool {
	p, ok := target.(**ec2ops.ProgressError)
	if !ok {
		return false
	}
	*p = &ec2ops.ProgressError{Operation: "rollout " + e.ID, Done: slices.Sorted(maps.Keys(e.Replaced)),
		Failed: maps.Clone(e.Failed), Pending: slices.Clone(e.Pending), Err: e.Err}
	return true
}

// ErrThreshold is the cause of a rollout stopped by too many failures.
var ErrThreshold = errors.New("lifecycle: failure threshold exceeded")

// internal plan, with the jobs Apply runs.
type plan struct {
	RolloutPlan
	jobs    []*job
	stale   []string
	canary  int
	maxFail int
}

// Plan selects the fleet, decides what is drifted and in which order and
// batches it would be replaced. It changes nothing.
func (ro *Rollout) Plan(ctx context.Context) (*RolloutPlan, error) {
	p, err := ro.plan(ctx, false)
	if err != nil {
		return nil, err
	}
	return &p.RolloutPlan, nil
}

func (ro *Rollout) validate() (surge, unavail, canary, maxFail quantity.Quantity, err error) {
	parse := func(field, v string) (quantity.Quantity, error) {
		q, err := quantity.Parse(v)
		if err != nil {
			return q, ec2ops.InvalidInput("RolloutOptions."+field, v, err.Error(), "use a count like 5 or a percentage like 10%")
		}
		return q, nil
	}
	if surge, err = parse("MaxSurge", ro.opts.MaxSurge); err != nil {
		return
	}
	if unavail, err = parse("MaxUnavailable", ro.opts.MaxUnavailable); err != nil {
		return
	}
	if ro.opts.Canary != "" {
		if canary, err = parse("Canary", ro.opts.Canary); err != nil {
			return
		}
	}
	if maxFail, err = parse("MaxFailures", ro.opts.MaxFailures); err != nil {
		return
	}
	if ro.opts.BakeTime < 0 {
		err = ec2ops.InvalidInput("RolloutOptions.BakeTime", ro.opts.BakeTime.String(), "negative", "use 0 or a positive duration")
		return
	}
	if len(ro.sel.InstanceIDs) == 0 && len(ro.sel.Tags) == 0 && len(ro.sel.Filters) == 0 {
		err = ec2ops.InvalidInput("Selector", "", "empty: it would select every instance in the Region",
			"name the instances (InstanceIDs) or the fleet's tags (Tags)")
		return
	}
	for _, id := range ro.sel.InstanceIDs {
		if !strings.HasPrefix(id, "i-") {
			err = ec2ops.InvalidInput("Selector.InstanceIDs", id, "not an instance ID", "use IDs of the form i-0123456789abcdef0")
			return
		}
	}
	return
}

func (ro *Rollout) filters() [][]types.Filter {
	base := slices.Clone(ro.sel.Filters)
	for _, k := range slices.Sorted(maps.Keys(ro.sel.Tags)) {
		base = append(base, types.Filter{Name: aws.String("tag:" + k), Values: []string{ro.sel.Tags[k]}})
	}
	base = append(base, types.Filter{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}})
	if len(ro.sel.InstanceIDs) == 0 {
		return [][]types.Filter{base}
	}
	var out [][]types.Filter
	for chunk := range slices.Chunk(ro.sel.InstanceIDs, filterChunk) {
		out = append(out, append(slices.Clone(base), types.Filter{Name: aws.String("instance-id"), Values: chunk}))
	}
	return out
}

func (ro *Rollout) plan(ctx context.Context, forApply bool) (*plan, error) {
	rt := ro.r.rt()
	surgeQ, unavailQ, canaryQ, failQ, err := ro.validate()
	if err != nil {
		return nil, err
	}
	t := ro.r.tgt()
	image, err := t.resolveImage(ctx)
	if err != nil {
		return nil, err
	}
	if err := t.validate(image); err != nil {
		return nil, err
	}
	if err := ro.r.accepts(t); err != nil {
		return nil, err
	}
	id := ro.opts.ID
	if id == "" {
		id = defaultID("rollout-", targetKey(t, image), fmt.Sprint(ro.sel.InstanceIDs, ro.sel.Tags, ro.sel.Filters))
	}
	p := &plan{RolloutPlan: RolloutPlan{ID: id, ImageID: image, Refused: map[string]error{}}}
	rt.emit(ec2ops.Event{Operation: "rollout", Phase: "plan", Resource: id})

	var ins []types.Instance
	for _, fs := range ro.filters() {
		got, err := rt.describe(ctx, fs)
		if err != nil {
			return nil, err
		}
		ins = append(ins, got...)
	}
	specs, err := rt.captureInstances(ctx, ins, false)
	if err != nil {
		return nil, err
	}
	var ids []string
	for sid := range specs {
		ids = append(ids, sid)
	}
	sort.Strings(ids)
	fs, err := rt.findReplacements(ctx, ids, ro.batched())
	if err != nil {
		return nil, err
	}
	records := map[string]*Record{}
	if forApply {
		recs, err := ro.opts.Journal.Records(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("read journal: %w", err)
		}
		for i := range recs {
			records[recs[i].Instance] = &recs[i]
		}
	}
	// A live replacement of a selected old instance is work in flight, not
	// a member of the fleet.
	// (A batch-launched one may not carry ec2ops:replaces yet.)
	inflight := map[string]string{}
	for old, f := range fs {
		for _, in := range f.live {
			inflight[aws.ToString(in.InstanceId)] = old
		}
	}
	var cands []*Spec
	for _, sid := range ids {
		s := specs[sid]
		if old, ok := inflight[sid]; ok && specs[old] != nil {
			continue
		}
		hasLive := fs[sid] != nil && len(fs[sid].live) > 0
		if (s.State == "stopped" || s.State == "stopping") && !hasLive {
			continue // not serving and not ours: leave it alone
		}
		if err := s.Refusal(); err != nil {
			p.Refused[sid] = err
			continue
		}
		p.Fleet++
		cands = append(cands, s)
	}
	// Drift. User data is read only where it decides: when the target sets
	// user data and nothing else differs (and, for Apply, to launch).
	var drifted []*Spec
	for _, s := range cands {
		hasLive := fs[s.InstanceID] != nil && len(fs[s.InstanceID].live) > 0
		w := ro.r.want(s, t, image)
		if !hasLive && t.UserData != nil && s.hashNoUserData() == w.hashNoUserData() {
			if err := rt.captureUserData(ctx, s); err != nil {
				return nil, err
			}
			w = ro.r.want(s, t, image)
		}
		if hasLive || s.Hash() != w.Hash() {
			drifted = append(drifted, s)
		} else {
			p.UpToDate = append(p.UpToDate, s.InstanceID)
		}
	}
	for _, s := range drifted {
		j, stale, err := newJob(ro.r, s, t, image, id, "rollout", fs[s.InstanceID], records[s.InstanceID])
		if err != nil {
			p.Refused[s.InstanceID] = err
			p.Fleet--
			continue
		}
		p.jobs = append(p.jobs, j)
		p.stale = append(p.stale, stale...)
	}
	p.jobs = balance(p.jobs)

	// Capacity: surge replacers never take an old instance out before its
	// replacement serves; in-place ones and handover do.
	p.Floor = p.Fleet - unavailQ.Floor(p.Fleet)
	surge := max(1, surgeQ.Ceil(p.Fleet))
	if ro.r.inPlace() || rt.opts.HandoverDataVolumes {
		budget := unavailQ.Floor(p.Fleet)
		if budget < 1 && len(p.jobs) > 0 {
			return nil, ec2ops.InvalidInput("RolloutOptions.MaxUnavailable", ro.opts.MaxUnavailable,
				"this replacer takes instances out of service (in place, or to hand over data volumes) and the fleet allows none",
				"set MaxUnavailable to 1 or more (or a percentage)")
		}
		if forApply && len(p.jobs) > 0 {
			// Instances already unhealthy count against the budget, except
			// those whose replacement is in flight: their jobs hold slots.
			var others []*Spec
			for _, c := range cands {
				if f := fs[c.InstanceID]; f == nil || len(f.live) == 0 {
					others = append(others, c)
				}
			}
			unhealthy, err := ro.unhealthy(ctx, others)
			if err != nil {
				return nil, err
			}
			budget -= unhealthy
			if budget < 1 {
				return nil, fmt.Errorf("rollout %s: %d instance(s) already unhealthy use the whole MaxUnavailable budget (%s): %w",
					id, unhealthy, ro.opts.MaxUnavailable, ec2ops.ErrUnsupported)
			}
		}
		p.InFlight = budget
		if !ro.r.inPlace() {
			p.InFlight = min(budget, surge)
		}
	} else {
		p.InFlight = surge
	}
	p.InFlight = max(1, min(p.InFlight, max(1, len(p.jobs))))
	if ro.opts.Canary != "" && len(p.jobs) > 0 {
		p.canary = min(max(1, canaryQ.Ceil(len(p.jobs))), p.InFlight, len(p.jobs))
	}
	p.maxFail = failQ.Floor(len(p.jobs))

	// Batches and steps.
	rest := p.jobs
	if p.canary > 0 {
		p.Batches = append(p.Batches, jobIDs(rest[:p.canary]))
		rest = rest[p.canary:]
	}
	for chunk := range slices.Chunk(rest, p.InFlight) {
		p.Batches = append(p.Batches, jobIDs(chunk))
	}
	p.Steps = ec2ops.Plan{Operation: "rollout " + id}
	for _, s := range p.stale {
		p.Steps.Steps = append(p.Steps.Steps, ec2ops.Step{Action: "ec2:TerminateInstances", Resources: []string{s},
			Reason: "a replacement launched for another target by an abandoned rollout; its old instance still serves"})
	}
	for _, j := range p.jobs {
		p.Drifted = append(p.Drifted, PlannedInstance{InstanceID: j.cur.InstanceID, AvailabilityZone: j.cur.AvailabilityZone,
			Reasons: j.reasons, Replacement: j.newID})
		p.Steps.Steps = append(p.Steps.Steps, ro.r.steps(j)...)
	}
	return p, nil
}

// unhealthy counts the selected instances that are not healthy now (one
// DescribeInstanceStatus call per 100).
func (ro *Rollout) unhealthy(ctx context.Context, cands []*Spec) (int, error) {
	rt := ro.r.rt()
	fetch := ec2wait.FetchStatus(rt.ec2)
	n := 0
	for chunk := range slices.Chunk(cands, 100) {
		var ids []string
		for _, s := range chunk {
			ids = append(ids, s.InstanceID)
		}
		var st map[string]ec2wait.Status
		err := rt.do(ctx, "DescribeInstanceStatus", 0, func(ctx context.Context) (err error) {
			st, err = fetch(ctx, ids)
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("describe instance status: %w", err)
		}
		for _, id := range ids {
			if !st[id].Healthy() {
				n++
			}
		}
	}
	return n, nil
}

func jobIDs(js []*job) []string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.cur.InstanceID
	}
	return out
}

// balance orders jobs: work in flight first, then round-robin over the
// AZs (sorted), instance IDs ascending within an AZ, so that every batch
// takes from every AZ evenly.
func balance(js []*job) []*job {
	var inflight []*job
	byAZ := map[string][]*job{}
	for _, j := range js {
		if j.newID != "" {
			inflight = append(inflight, j)
			continue
		}
		byAZ[j.cur.AvailabilityZone] = append(byAZ[j.cur.AvailabilityZone], j)
	}
	less := func(a, b *job) int { return strings.Compare(a.cur.InstanceID, b.cur.InstanceID) }
	slices.SortFunc(inflight, less)
	azs := slices.Sorted(maps.Keys(byAZ))
	for _, az := range azs {
		slices.SortFunc(byAZ[az], less)
	}
	out := inflight
	for i := 0; ; i++ {
		added := false
		for _, az := range azs {
			if i < len(byAZ[az]) {
				out = append(out, byAZ[az][i])
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// progress is the shared bookkeeping of Apply.
type progress struct {
	mu         sync.Mutex
	replaced   map[string]string
	failed     map[string]error
	rolledBack []string
	pending    map[string]bool
	total      int
	stopped    bool
}

// Apply replaces the drifted instances: the canary batch first (baked,
// its old instances kept until the bake passes), then the rest with at
// most InFlight replacements at a time, one shared status poller for all
// of them, paced to the account's API budget. Too many failures stop the
// rollout and roll back what is in flight. Cancelling ctx stops promptly
// and leaves everything for a rerun to adopt. A partial run returns a
// *RolloutError.
func (ro *Rollout) Apply(ctx context.Context) (*RolloutResult, error) {
	start := time.Now()
	rt := ro.r.rt()
	p, err := ro.plan(ctx, true)
	if err != nil {
		return nil, err
	}
	for _, s := range p.stale {
		if err := rt.terminate(ctx, s); err != nil {
			return nil, err
		}
	}
	pr := &progress{replaced: map[string]string{}, failed: map[string]error{}, pending: map[string]bool{}, total: len(p.jobs)}
	batched := ro.batched()
	for _, j := range p.jobs {
		pr.pending[j.cur.InstanceID] = true
		j.note = ro.noter(ctx, j)
		j.batchable = batched
	}
	rt.emit(ec2ops.Event{Operation: "rollout", Phase: "start", Resource: p.ID, Total: len(p.jobs),
		Message: fmt.Sprintf("fleet %d, floor %d, %d in flight", p.Fleet, p.Floor, p.InFlight)})

	jctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	rest := p.jobs
	if p.canary > 0 {
		ro.canary(ctx, jctx, stop, p, pr, rest[:p.canary])
		rest = rest[p.canary:]
	}
	if !pr.isStopped() && ctx.Err() == nil {
		ro.window(ctx, jctx, stop, p, pr, rest)
	}

	res := &RolloutResult{ID: p.ID, Replaced: pr.replaced, UpToDate: p.UpToDate, Refused: p.Refused, Elapsed: time.Since(start)}
	cause := ctx.Err()
	if cause == nil {
		cause = context.Cause(jctx)
		if errors.Is(cause, context.Canceled) {
			cause = nil
		}
	}
	if cause == nil && len(pr.failed) > 0 {
		cause = fmt.Errorf("%d replacement(s) failed", len(pr.failed))
	}
	if cause != nil || len(pr.pending) > 0 {
		if cause == nil {
			cause = errors.New("replacements left pending")
		}
		rerr := &RolloutError{ID: p.ID, Replaced: pr.replaced, Failed: pr.failed, RolledBack: pr.rolledBack,
			Pending: slices.Sorted(maps.Keys(pr.pending)), Err: cause}
		rt.emit(ec2ops.Event{Operation: "rollout", Phase: "stopped", Resource: p.ID, Done: len(pr.replaced), Total: pr.total, Err: rerr})
		return res, rerr
	}
	rt.emit(ec2ops.Event{Operation: "rollout", Phase: "done", Resource: p.ID, Done: len(pr.replaced), Total: pr.total})
	return res, nil
}

// batched says whether the rollout launches replacements in batches:
// Surge without data-volume handover (whose tags are per instance).
func (ro *Rollout) batched() bool {
	s, ok := ro.r.(*Surge)
	return ok && !s.r.opts.HandoverDataVolumes
}

func (pr *progress) isStopped() bool {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.stopped
}

// noter returns the journal callback of a job. A journal write that fails
// is logged and reported as an event; the rollout goes on, since the
// ec2ops tags let a rerun resume without the journal.
func (ro *Rollout) noter(ctx context.Context, j *job) func(string) {
	rt := ro.r.rt()
	return func(phase string) {
		rec := Record{Rollout: j.rollout, Instance: j.cur.InstanceID, Replacement: j.newID, Phase: phase, Attempt: j.attempt,
			Batch: j.batchToken, Time: time.Now()}
		if err := ro.opts.Journal.Append(context.WithoutCancel(ctx), rec); err != nil {
			rt.log.ErrorContext(ctx, "journal append failed", "instance", j.cur.InstanceID, "phase", phase, "err", err)
			rt.emit(ec2ops.Event{Operation: "rollout", Phase: "journal", Resource: j.cur.InstanceID, Err: err})
		}
	}
}

// finish records the outcome of one job (lock-free callers).
func (ro *Rollout) finish(ctx, jctx context.Context, stop context.CancelCauseFunc, p *plan, pr *progress, j *job, err error) {
	rt := ro.r.rt()
	old := j.cur.InstanceID
	pr.mu.Lock()
	defer pr.mu.Unlock()
	switch {
	case err == nil:
		delete(pr.pending, old)
		pr.replaced[old] = j.newID
		rt.emit(ec2ops.Event{Operation: "rollout", Phase: "replaced", Resource: old, Done: len(pr.replaced), Total: pr.total, Message: "by " + j.newID})
	case ctx.Err() != nil:
		// Cancelled by the caller: left as is, for a rerun to adopt.
	default:
		var re *ReplaceError
		if errors.As(err, &re) && re.RolledBack {
			pr.rolledBack = append(pr.rolledBack, old)
		}
		if errors.Is(context.Cause(jctx), ErrThreshold) && errors.Is(err, context.Canceled) {
			return // stopped by the threshold: counted as pending
		}
		delete(pr.pending, old)
		pr.failed[old] = err
		if len(pr.failed) > p.maxFail && !pr.stopped {
			pr.stopped = true
			stop(fmt.Errorf("%w: %d failed, %d tolerated", ErrThreshold, len(pr.failed), p.maxFail))
		}
	}
}

// runOne runs a job under jctx; a job stopped by the threshold is rolled
// back with the caller's ctx.
func (ro *Rollout) runOne(ctx, jctx context.Context, j *job, retire bool) error {
	err := finalize(jctx, ro.r, j)
	if err == nil {
		err = ro.r.bringUp(jctx, j)
	}
	if err == nil && retire {
		err = ro.r.retire(jctx, j)
	}
	if err == nil {
		return nil
	}
	if ctx.Err() == nil && jctx.Err() != nil {
		// Stopped by the threshold: undo what this run launched.
		return failJob(ctx, ro.r, j, fmt.Errorf("%w", context.Canceled))
	}
	return failJob(ctx, ro.r, j, err)
}

// canary replaces the canary batch, bakes it and retires its old
// instances only when it stayed healthy.
func (ro *Rollout) canary(ctx, jctx context.Context, stop context.CancelCauseFunc, p *plan, pr *progress, js []*job) {
	rt := ro.r.rt()
	rt.emit(ec2ops.Event{Operation: "rollout", Phase: "canary", Resource: p.ID, Total: len(js)})
	errs := make([]error, len(js))
	var wg sync.WaitGroup
	for i, j := range js {
		wg.Go(func() { errs[i] = ro.runOne(ctx, jctx, j, ro.r.inPlace()) })
	}
	wg.Wait()
	var up []*job
	for i, j := range js {
		if errs[i] != nil {
			ro.finish(ctx, jctx, stop, p, pr, j, errs[i])
		} else if ro.r.inPlace() {
			ro.finish(ctx, jctx, stop, p, pr, j, nil)
			up = append(up, j)
		} else {
			up = append(up, j)
		}
	}
	if pr.isStopped() || ctx.Err() != nil {
		ro.abandon(ctx, jctx, stop, p, pr, up)
		return
	}
	rt.emit(ec2ops.Event{Operation: "rollout", Phase: "bake", Resource: p.ID, Message: ro.opts.BakeTime.String()})
	if err := sleep(jctx, rt.d(ro.opts.BakeTime)); err != nil {
		ro.abandon(ctx, jctx, stop, p, pr, up)
		return
	}
	// Still healthy after the bake? One status observation each.
	var ids []string
	for _, j := range up {
		ids = append(ids, j.newID)
	}
	_, bad := rt.status.WaitAll(jctx, ids, func(s ec2wait.Status) (bool, error) {
		if s.Healthy() {
			return true, nil
		}
		return false, fmt.Errorf("%w after the bake: %s", ErrUnhealthy, s.State)
	})
	for _, j := range up {
		if err := bad[j.newID]; err != nil && !ro.r.inPlace() {
			ro.finish(ctx, jctx, stop, p, pr, j, failJob(ctx, ro.r, j, err))
		} else if err != nil {
			ro.finish(ctx, jctx, stop, p, pr, j, &ReplaceError{InstanceID: j.cur.InstanceID, ReplacementID: j.newID, Phase: "bake", Err: err})
		}
	}
	if pr.isStopped() || ctx.Err() != nil {
		var left []*job
		for _, j := range up {
			if bad[j.newID] == nil {
				left = append(left, j)
			}
		}
		ro.abandon(ctx, jctx, stop, p, pr, left)
		return
	}
	if ro.r.inPlace() {
		return
	}
	var wg2 sync.WaitGroup
	for _, j := range up {
		if bad[j.newID] != nil {
			continue
		}
		wg2.Go(func() {
			err := ro.r.retire(jctx, j)
			if err != nil {
				err = failJob(ctx, ro.r, j, err)
			}
			ro.finish(ctx, jctx, stop, p, pr, j, err)
		})
	}
	wg2.Wait()
}

// abandon rolls back canaries that are up but will not be kept (the
// rollout stopped); on a caller's cancellation they stay for a rerun.
func (ro *Rollout) abandon(ctx, jctx context.Context, stop context.CancelCauseFunc, p *plan, pr *progress, js []*job) {
	if ctx.Err() != nil || ro.r.inPlace() {
		return
	}
	for _, j := range js {
		ro.finish(ctx, jctx, stop, p, pr, j, failJob(ctx, ro.r, j, fmt.Errorf("%w", context.Canceled)))
	}
}

// window runs the remaining jobs with at most InFlight at a time.
func (ro *Rollout) window(ctx, jctx context.Context, stop context.CancelCauseFunc, p *plan, pr *progress, js []*job) {
	sem := make(chan struct{}, p.InFlight)
	var wg sync.WaitGroup
	for _, j := range js {
		select {
		case sem <- struct{}{}:
		case <-jctx.Done():
		}
		if jctx.Err() != nil || pr.isStopped() {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			err := ro.runOne(ctx, jctx, j, true)
			ro.finish(ctx, jctx, stop, p, pr, j, err)
		})
	}
	wg.Wait()
}
