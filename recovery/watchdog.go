package recovery

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awserr"
	"github.com/ec2ops/ec2ops/internal/quantity"
)

// WatchdogOptions configures a Watchdog. Zero values are safe defaults.
type WatchdogOptions struct {
	// Interval between two status polls of the whole fleet. Default 30s
	// (EC2 runs status checks once a minute).
	Interval time.Duration
	// ImpairedFor is how long an instance must stay impaired (a status
	// check failed while running) before the Watchdog acts. Default 3m.
	ImpairedFor time.Duration
	// AWSRecoveryGrace is added to ImpairedFor when the system status check
	// of an instance AWS can recover fails, so that AWS's recovery (alarm or
	// simplified) goes first. Default 15m; negative means none.
	AWSRecoveryGrace time.Duration
	// ActionTimeout is how long a reboot or stop/start may take to bring the
	// instance back to healthy before the Watchdog escalates. Default 15m.
	ActionTimeout time.Duration
	// MaxConcurrent caps the instances acted on at once: a count ("5") or
	// a share of the fleet ("10%", rounded down, at least 1). "0" watches
	// without acting. Default "10%".
	MaxConcurrent string
	// FlapCount and FlapWindow: an instance that became impaired more than
	// FlapCount times within FlapWindow is flapping; the Watchdog stops
	// rebooting it and replaces it (or leaves it alone without a
	// Replacer). Defaults 3 and 1h.
	FlapCount  int
	FlapWindow time.Duration
	// ResetAfter: an instance healthy this long starts the escalation over
	// (reboot first again). Default 1h.
	ResetAfter time.Duration
	// MaxReplaceAttempts bounds the replacements tried for one instance.
	// Default 2.
	MaxReplaceAttempts int
	// RefreshInterval re-resolves a fleet selected by Filters, picking up
	// new instances. Default 5m.
	RefreshInterval time.Duration
	// RateShare is the share of the account's published EC2 request rates
	// to use, in (0, 1]. Zero means 1.
	RateShare float64
	// TimeScale compresses client-side pacing and retry delays for a
	// simulated cloud whose time runs compressed (cloudsim's
	// Options.TimeScale): buckets refill 1/TimeScale times faster. Leave it
	// zero (meaning 1) against AWS.
	TimeScale float64
	// MaxRetries bounds the retries of a throttled or failed call. Zero
	// means 8.
	MaxRetries int
	// Observer receives an event for every impairment and action; nil
	// discards them.
	Observer ec2ops.Observer
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// Action names, as they appear in events (Phase) and ActionRecords.
const (
	ActionReboot    = "reboot"
	ActionStopStart = "stop-start"
	ActionReplace   = "replace"
)

// ActionRecord is one remedy the Watchdog started.
type ActionRecord struct {
	Time       time.Time
	InstanceID string
	Action     string // ActionReboot, ActionStopStart or ActionReplace
}

// WatchdogStats counts the Watchdog's work.
type WatchdogStats struct {
	Ticks       int // fleet polls completed
	StatusCalls int // DescribeInstanceStatus calls
	Healed      int // actions after which the instance was healthy again
	Replaced    int // successful replacements
	Failures    int // actions that failed or timed out
	MaxInFlight int // most instances acted on at once
	Actions     []ActionRecord
}

// Watchdog watches a fleet's status checks with one batched
// DescribeInstanceStatus poll per tick and, for an instance impaired for a
// sustained window that AWS did not recover, escalates: reboot (instance
// check failures), stop/start (system check failures, or a reboot that did
// not help; EBS-backed only), then replacement through a Replacer.
type Watchdog struct {
	api    WatchdogAPI
	rep    Replacer
	opts   WatchdogOptions
	call   *caller
	detect *Detector

	mu    sync.Mutex
	stats WatchdogStats
}

// NewWatchdog returns a Watchdog. replacer may be nil: the Watchdog then
// stops at stop/start and reports instances it cannot heal.
func NewWatchdog(api WatchdogAPI, replacer Replacer, optFns ...func(*WatchdogOptions)) *Watchdog {
	o := WatchdogOptions{}
	for _, f := range optFns {
		f(&o)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Interval, 30*time.Second)
	def(&o.ImpairedFor, 3*time.Minute)
	def(&o.ActionTimeout, 15*time.Minute)
	def(&o.FlapWindow, time.Hour)
	def(&o.ResetAfter, time.Hour)
	def(&o.RefreshInterval, 5*time.Minute)
	switch {
	case o.AWSRecoveryGrace == 0:
		o.AWSRecoveryGrace = 15 * time.Minute
	case o.AWSRecoveryGrace < 0:
		o.AWSRecoveryGrace = 0
	}
	if o.MaxConcurrent == "" {
		o.MaxConcurrent = "10%"
	}
	if o.FlapCount <= 0 {
		o.FlapCount = 3
	}
	if o.MaxReplaceAttempts <= 0 {
		o.MaxReplaceAttempts = 2
	}
	c := newCaller(o.RateShare, o.TimeScale, o.MaxRetries, o.Logger)
	return &Watchdog{api: api, rep: replacer, opts: o, call: c, detect: &Detector{api: api, call: c, types: map[string]typeInfo{}}}
}

// NewWatchdogFromConfig returns a Watchdog with an EC2 client made from cfg.
func NewWatchdogFromConfig(cfg aws.Config, replacer Replacer, optFns ...func(*WatchdogOptions)) *Watchdog {
	return NewWatchdog(ec2.NewFromConfig(cfg), replacer, optFns...)
}

// Stats returns a copy of the counters so far.
func (w *Watchdog) Stats() WatchdogStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	s.Actions = slices.Clone(s.Actions)
	return s
}

// status is what DescribeInstanceStatus says of one instance.
type status struct {
	state     types.InstanceStateName
	sys, inst types.SummaryStatus
}

func (s status) healthy() bool {
	return s.state == types.InstanceStateNameRunning && s.sys == types.SummaryStatusOk && s.inst == types.SummaryStatusOk
}

func (s status) impaired() bool {
	return s.state == types.InstanceStateNameRunning && (s.sys == types.SummaryStatusImpaired || s.inst == types.SummaryStatusImpaired)
}

// action is a remedy in progress.
type action struct {
	kind     string
	started  time.Time
	stopping bool // stop-start: waiting for stopped, then start
}

// watch is the Watchdog's memory of one instance.
type watch struct {
	id            string
	sup           Support
	impairedSince time.Time
	sysFailed     bool
	wasHealthy    bool
	episodes      []time.Time
	healthySince  time.Time
	stage         string // last remedy tried: "", reboot, stop-start, replace
	act           *action
	replaceFails  int
	exhausted     bool // nothing left to try until healthy for ResetAfter
	deferred      bool
}

type replaceResult struct {
	old, new string
	err      error
}

// run is the state of one Run.
type run struct {
	w        *Watchdog
	ctx      context.Context
	fleet    Fleet
	maxConc  quantity.Quantity
	watches  map[string]*watch
	results  chan replaceResult
	wg       sync.WaitGroup
	refresh  time.Time
	inFlight int
}

// Run watches fleet until ctx ends, then waits for replacements in flight
// to return and returns ctx.Err(). Bad options or fleet are reported before
// any call. Each tick makes ceil(n/100) DescribeInstanceStatus calls for
// n instances (IncludeAllInstances), whatever happens to them.
func (w *Watchdog) Run(ctx context.Context, fleet Fleet) error {
	q, err := quantity.Parse(w.opts.MaxConcurrent)
	if err != nil {
		return ec2ops.InvalidInput("WatchdogOptions.MaxConcurrent", w.opts.MaxConcurrent, err.Error(), `use a count like "5" or a share like "10%"`)
	}
	if err := fleet.validate("fleet"); err != nil {
		return err
	}
	r := &run{w: w, ctx: ctx, fleet: fleet, maxConc: q, watches: map[string]*watch{}, results: make(chan replaceResult)}
	defer r.wg.Wait()
	defer r.restartStopped()
	if err := r.resolve(); err != nil {
		return err
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case res := <-r.results:
			r.replaced(res)
		case <-timer.C:
			r.tick()
			timer.Reset(w.opts.Interval)
		}
	}
}

// restartStopped starts again the instances this run stopped for a
// stop/start that had not been started yet when Run returned (ctx done):
// a cancelled Watchdog never leaves an instance stopped. It runs without
// ctx, for at most ActionTimeout, waiting for each instance to finish
// stopping (StartInstances answers IncorrectInstanceState until then).
func (r *run) restartStopped() {
	var ids []string
	for id, wt := range r.watches {
		if wt.act != nil && wt.act.kind == ActionStopStart && wt.act.stopping {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return
	}
	sort.Strings(ids)
	w := r.w
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), w.opts.ActionTimeout)
	defer cancel()
	for _, id := range ids {
		for {
			err := w.call.do(ctx, "ec2:StartInstances", func() error {
				_, err := w.api.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
				return err
			})
			if err == nil {
				r.emit("start", id, "started after stop (the Watchdog was stopped mid stop/start)", nil)
				break
			}
			if awserr.Code(err) != "IncorrectInstanceState" || ctx.Err() != nil {
				r.emit("start", id, "could not start the instance again after its stop; start it by hand", err)
				break
			}
			t := time.NewTimer(5 * time.Second)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
}

func (r *run) emit(phase, id, msg string, err error) {
	healthy := 0
	for _, wt := range r.watches {
		if !wt.healthySince.IsZero() && wt.impairedSince.IsZero() && wt.act == nil {
			healthy++
		}
	}
	ec2ops.Emit(r.w.opts.Observer, ec2ops.Event{Operation: "watchdog", Phase: phase, Resource: id, Message: msg, Err: err,
		Done: healthy, Total: len(r.watches)})
}

// resolve (re)reads the fleet: new instances are added; with Filters,
// instances no longer selected are dropped unless acted on.
func (r *run) resolve() error {
	sup, err := r.w.detect.Detect(r.ctx, r.fleet)
	if err != nil {
		return fmt.Errorf("watchdog: resolve fleet: %w", err)
	}
	r.refresh = time.Now()
	seen := map[string]bool{}
	for _, s := range sup {
		if hasReason(s, ReasonNotFound) {
			continue
		}
		seen[s.InstanceID] = true
		if wt := r.watches[s.InstanceID]; wt != nil {
			wt.sup = s
			continue
		}
		r.watches[s.InstanceID] = &watch{id: s.InstanceID, sup: s, wasHealthy: true}
	}
	if len(r.fleet.Filters) > 0 {
		for id, wt := range r.watches {
			if !seen[id] && wt.act == nil {
				delete(r.watches, id)
				r.emit("gone", id, "no longer in the fleet", nil)
			}
		}
	}
	return nil
}

// tick polls the whole fleet once and acts on what it sees.
func (r *run) tick() {
	w := r.w
	now := time.Now()
	if len(r.fleet.Filters) > 0 && now.Sub(r.refresh) >= w.opts.RefreshInterval {
		if err := r.resolve(); err != nil && r.ctx.Err() == nil { // not an error when Run is stopping
			r.emit("refresh", "", "fleet refresh failed", err)
		}
	}
	ids := slices.Sorted(maps.Keys(r.watches))
	st, gone, err := r.poll(ids)
	if err != nil {
		if r.ctx.Err() == nil {
			r.emit("poll", "", "status poll failed; retrying next tick", err)
		}
		return
	}
	w.mu.Lock()
	w.stats.Ticks++
	w.mu.Unlock()
	for _, id := range gone {
		if wt := r.watches[id]; wt != nil && (wt.act == nil || wt.act.kind != ActionReplace) {
			if wt.act != nil {
				r.inFlight--
			}
			delete(r.watches, id)
			r.emit("gone", id, "the instance no longer exists", nil)
		}
	}
	for _, id := range ids {
		if s, ok := st[id]; ok && r.watches[id] != nil {
			r.observe(r.watches[id], s, now)
		}
	}
	r.act(now)
}

// observe updates one instance's memory from its status.
func (r *run) observe(wt *watch, s status, now time.Time) {
	w := r.w
	if a := wt.act; a != nil && a.kind != ActionReplace {
		switch {
		case a.stopping && s.state == types.InstanceStateNameStopped:
			err := w.call.do(r.ctx, "ec2:StartInstances", func() error {
				_, err := w.api.StartInstances(r.ctx, &ec2.StartInstancesInput{InstanceIds: []string{wt.id}})
				return err
			})
			if err != nil {
				r.finish(wt, fmt.Errorf("start %s: %w", wt.id, err))
				break
			}
			a.stopping = false
			r.emit("start", wt.id, "started after stop (new hardware)", nil)
		case s.healthy():
			r.finish(wt, nil)
		case now.Sub(a.started) >= w.opts.ActionTimeout:
			r.finish(wt, fmt.Errorf("%s of %s did not make it healthy within %s", a.kind, wt.id, w.opts.ActionTimeout))
		}
	}
	switch {
	case s.impaired():
		wt.sysFailed = s.sys == types.SummaryStatusImpaired
		wt.healthySince = time.Time{}
		if wt.impairedSince.IsZero() {
			wt.impairedSince = now
			if wt.wasHealthy && wt.act == nil {
				wt.wasHealthy = false
				cut := now.Add(-w.opts.FlapWindow)
				wt.episodes = append(slices.DeleteFunc(wt.episodes, func(t time.Time) bool { return t.Before(cut) }), now)
			}
			r.emit("impaired", wt.id, fmt.Sprintf("system check %s, instance check %s", s.sys, s.inst), nil)
		}
	case s.healthy():
		wt.impairedSince = time.Time{}
		wt.wasHealthy = true
		wt.deferred = false
		if wt.healthySince.IsZero() {
			wt.healthySince = now
		}
		if wt.act == nil && wt.stage != "" && now.Sub(wt.healthySince) >= w.opts.ResetAfter {
			wt.stage, wt.exhausted, wt.replaceFails = "", false, 0
		}
	default: // pending, stopping, stopped, checks initializing
		wt.impairedSince = time.Time{}
		wt.healthySince = time.Time{}
	}
}

// finish ends the action on wt, successful when err is nil.
func (r *run) finish(wt *watch, err error) {
	kind := wt.act.kind
	wt.act = nil
	r.inFlight--
	r.w.mu.Lock()
	if err == nil {
		r.w.stats.Healed++
	} else {
		r.w.stats.Failures++
	}
	r.w.mu.Unlock()
	if err != nil {
		r.emit("failed", wt.id, kind+" did not heal the instance", err)
		return
	}
	r.emit("healthy", wt.id, "healthy again after "+kind, nil)
}

// window is how long wt must be impaired before the Watchdog acts.
func (r *run) window(wt *watch) time.Duration {
	d := r.w.opts.ImpairedFor
	if wt.sysFailed && wt.sup.Supported {
		d += r.w.opts.AWSRecoveryGrace
	}
	return d
}

// act starts remedies for the instances impaired long enough, oldest
// impairment first, within the concurrency cap.
func (r *run) act(now time.Time) {
	var cands []*watch
	for _, wt := range r.watches {
		if wt.act == nil && !wt.exhausted && !wt.impairedSince.IsZero() && now.Sub(wt.impairedSince) >= r.window(wt) {
			cands = append(cands, wt)
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if !cands[i].impairedSince.Equal(cands[j].impairedSince) {
			return cands[i].impairedSince.Before(cands[j].impairedSince)
		}
		return cands[i].id < cands[j].id
	})
	limit := r.maxConc.Floor(len(r.watches))
	if limit == 0 && !r.maxConc.IsZero() {
		limit = 1
	}
	for _, wt := range cands {
		if r.inFlight >= limit {
			if !wt.deferred {
				wt.deferred = true
				r.emit("deferred", wt.id, fmt.Sprintf("%d of at most %d instances are being acted on", r.inFlight, limit), nil)
			}
			continue
		}
		r.start(wt, now)
	}
}

// next chooses wt's next remedy, or "" when none is left.
func (r *run) next(wt *watch) string {
	w := r.w
	k := ActionReplace
	flapping := len(wt.episodes) > w.opts.FlapCount
	switch {
	case flapping:
		r.emit("flapping", wt.id, fmt.Sprintf("impaired %d times within %s", len(wt.episodes), w.opts.FlapWindow), nil)
	case wt.stage == "" && !wt.sysFailed:
		k = ActionReboot // the OS: a reboot is enough
	case wt.stage == "" || wt.stage == ActionReboot:
		k = ActionStopStart // the host: a reboot stays on it, stop/start moves
	}
	if k == ActionStopStart && !wt.sup.EBSBacked {
		k = ActionReplace
	}
	if k == ActionReplace && (w.rep == nil || wt.replaceFails >= w.opts.MaxReplaceAttempts) {
		return ""
	}
	return k
}

// start begins wt's next remedy.
func (r *run) start(wt *watch, now time.Time) {
	w := r.w
	k := r.next(wt)
	if k == "" {
		wt.exhausted = true
		r.emit("gave-up", wt.id, "no remedy left (no Replacer, replacement attempts used up, or not EBS-backed); needs a human", nil)
		return
	}
	wt.stage = k
	wt.deferred = false
	var err error
	switch k {
	case ActionReboot:
		err = w.call.do(r.ctx, "ec2:RebootInstances", func() error {
			_, err := w.api.RebootInstances(r.ctx, &ec2.RebootInstancesInput{InstanceIds: []string{wt.id}})
			return err
		})
	case ActionStopStart:
		err = w.call.do(r.ctx, "ec2:StopInstances", func() error {
			_, err := w.api.StopInstances(r.ctx, &ec2.StopInstancesInput{InstanceIds: []string{wt.id}})
			return err
		})
	}
	if err != nil {
		if r.ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		w.stats.Failures++
		w.mu.Unlock()
		r.emit(k, wt.id, "call failed; escalating next time", err)
		return
	}
	wt.act = &action{kind: k, started: now, stopping: k == ActionStopStart}
	r.inFlight++
	w.mu.Lock()
	w.stats.Actions = append(w.stats.Actions, ActionRecord{Time: now, InstanceID: wt.id, Action: k})
	w.stats.MaxInFlight = max(w.stats.MaxInFlight, r.inFlight)
	w.mu.Unlock()
	msg := map[string]string{ActionReboot: "rebooting (instance status check failed)",
		ActionStopStart: "stopping to start on new hardware", ActionReplace: "replacing by an equivalent instance"}[k]
	r.emit(k, wt.id, msg, nil)
	if k == ActionReplace {
		r.wg.Add(1)
		go func(id string) {
			defer r.wg.Done()
			newID, err := w.rep.ReplaceInstance(r.ctx, id)
			select {
			case r.results <- replaceResult{old: id, new: newID, err: err}:
			case <-r.ctx.Done():
			}
		}(wt.id)
	}
}

// replaced handles a finished replacement.
func (r *run) replaced(res replaceResult) {
	w := r.w
	wt := r.watches[res.old]
	if wt == nil || wt.act == nil {
		return
	}
	wt.act = nil
	r.inFlight--
	if res.err != nil {
		wt.replaceFails++
		w.mu.Lock()
		w.stats.Failures++
		w.mu.Unlock()
		r.emit("failed", res.old, "replacement failed", res.err)
		return
	}
	delete(r.watches, res.old)
	w.mu.Lock()
	w.stats.Replaced++
	w.mu.Unlock()
	nw := &watch{id: res.new, wasHealthy: true, sup: Support{InstanceID: res.new, EBSBacked: true}}
	if sup, err := w.detect.Detect(r.ctx, Fleet{InstanceIDs: []string{res.new}}); err == nil && len(sup) == 1 && !hasReason(sup[0], ReasonNotFound) {
		nw.sup = sup[0]
	}
	r.watches[res.new] = nw
	r.emit("replaced", res.old, "replaced by "+res.new, nil)
}

// poll describes the status of ids, 100 a call (IncludeAllInstances, so
// stopped instances are reported). IDs EC2 no longer knows are returned in
// gone: a chunk failing with NotFound is bisected to find them.
func (r *run) poll(ids []string) (map[string]status, []string, error) {
	out := make(map[string]status, len(ids))
	var gone []string
	for chunk := range slices.Chunk(ids, maxStatusIDs) {
		if err := r.pollChunk(chunk, out, &gone); err != nil {
			return nil, nil, err
		}
	}
	return out, gone, nil
}

func (r *run) pollChunk(ids []string, out map[string]status, gone *[]string) error {
	w := r.w
	var resp *ec2.DescribeInstanceStatusOutput
	err := w.call.do(r.ctx, "ec2:DescribeInstanceStatus", func() (err error) {
		w.mu.Lock()
		w.stats.StatusCalls++
		w.mu.Unlock()
		resp, err = w.api.DescribeInstanceStatus(r.ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: ids, IncludeAllInstances: aws.Bool(true)})
		return err
	})
	if awserr.IsNotFound(err) {
		if len(ids) == 1 {
			*gone = append(*gone, ids[0])
			return nil
		}
		h := len(ids) / 2
		if err := r.pollChunk(ids[:h], out, gone); err != nil {
			return err
		}
		return r.pollChunk(ids[h:], out, gone)
	}
	if err != nil {
		return fmt.Errorf("describe instance status: %w", err)
	}
	for _, x := range resp.InstanceStatuses {
		s := status{}
		if x.InstanceState != nil {
			s.state = x.InstanceState.Name
		}
		if x.SystemStatus != nil {
			s.sys = x.SystemStatus.Status
		}
		if x.InstanceStatus != nil {
			s.inst = x.InstanceStatus.Status
		}
		if s.state == types.InstanceStateNameTerminated || s.state == types.InstanceStateNameShuttingDown {
			*gone = append(*gone, aws.ToString(x.InstanceId))
			continue
		}
		out[aws.ToString(x.InstanceId)] = s
	}
	return nil
}
