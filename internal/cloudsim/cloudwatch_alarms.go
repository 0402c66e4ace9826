package cloudsim

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// CloudWatch metric alarms on the EC2 status-check metrics, and the EC2
// actions they run.
//
// Model:
//   - Metrics: AWS/EC2 StatusCheckFailed_System, StatusCheckFailed_Instance
//     and StatusCheckFailed, dimension InstanceId, one datapoint a minute
//     while the instance is running: 1 if the check failed at any time in
//     that minute, else 0 (an initializing check counts as 0). A stopped or
//     terminated instance publishes nothing (missing data). Any other metric
//     has no data. The history comes from the instance's status changes.
//   - Evaluation: at each multiple of Period (Unix time), over the last
//     EvaluationPeriods periods, each period's Statistic of its one-minute
//     datapoints; ALARM when at least DatapointsToAlarm of them breach,
//     else OK; TreatMissingData missing (default: all missing ->
//     INSUFFICIENT_DATA, otherwise only present datapoints count),
//     notBreaching, breaching or ignore (all missing -> state kept). A new
//     alarm starts in INSUFFICIENT_DATA; an updated one keeps its state.
//     Evaluations are scheduled only when they can change the state: after
//     a create/update and after each change of the instance's status, at
//     the next EvaluationPeriods+1 period boundaries.
//   - Actions on entering a state (when ActionsEnabled): the EC2 actions
//     arn:aws:automate:REGION:ec2:recover|reboot|stop|terminate (and their
//     arn:aws:swf:...:action/actions/AWS_EC2.InstanceId.Recover/1.0 forms)
//     on the alarm's InstanceId, and SNS topics (recorded, see
//     Sim.Notifications). recover acts only when the system status check
//     fails (see startRecovery).
//
// Sources: PutMetricAlarm API reference (action ARNs; a new alarm is
// INSUFFICIENT_DATA, an update keeps the state and ignores Tags; Period 10,
// 20, 30 or a multiple of 60; Period x EvaluationPeriods at most one day
// under an hour's period, else seven days; at most 50 tags);
// DeleteAlarms API reference (up to 100 alarms a call; unknown names are
// ignored); "Configure CloudWatch action based recovery" (Amazon EC2 User
// Guide: works with StatusCheckFailed_System); AWS-FACTS.md for the rates.

// Limits of the CloudWatch alarm calls (sources above and the DescribeAlarms
// API reference: MaxRecords 1..100, AlarmNames at most 100).
const (
	maxAlarmsPerDelete   = 100
	maxAlarmRecords      = 100
	defaultAlarmRecords  = 50
	maxAlarmNameLen      = 255
	maxActionsPerState   = 5
	maxAlarmTags         = 50
	cwCodeInvalidValue   = "InvalidParameterValueException"
	cwCodeInvalidCombo   = "InvalidParameterCombinationException"
	cwCodeMissing        = "MissingRequiredParameterException"
	cwCodeNotFound       = "ResourceNotFoundException"
	cwCodeInvalidToken   = "InvalidNextToken"
	metricSystem         = "StatusCheckFailed_System"
	metricInstance       = "StatusCheckFailed_Instance"
	metricEither         = "StatusCheckFailed"
	namespaceEC2         = "AWS/EC2"
	dimensionInstanceID  = "InstanceId"
	missingDataMissing   = "missing"
	missingDataBreaching = "breaching"
	missingDataNot       = "notBreaching"
	missingDataIgnore    = "ignore"
)

// CloudWatchAlarmAPI is the alarm part of the CloudWatch API the simulator
// serves, with the exact method signatures of *cloudwatch.Client.
type CloudWatchAlarmAPI interface {
	PutMetricAlarm(ctx context.Context, params *cloudwatch.PutMetricAlarmInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricAlarmOutput, error)
	DescribeAlarms(ctx context.Context, params *cloudwatch.DescribeAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
	DeleteAlarms(ctx context.Context, params *cloudwatch.DeleteAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DeleteAlarmsOutput, error)
	TagResource(ctx context.Context, params *cloudwatch.TagResourceInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.TagResourceOutput, error)
	UntagResource(ctx context.Context, params *cloudwatch.UntagResourceInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.UntagResourceOutput, error)
	ListTagsForResource(ctx context.Context, params *cloudwatch.ListTagsForResourceInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.ListTagsForResourceOutput, error)
}

var (
	_ CloudWatchAlarmAPI = (*cloudwatch.Client)(nil)
	_ CloudWatchAlarmAPI = (*CloudWatch)(nil)
)

// cwState is the CloudWatch part of the Sim's state, with the instance
// recovery machinery it drives (guarded by Sim.mu).
type cwState struct {
	alarms     map[string]*alarm
	names      []string            // alarm names, sorted
	byInstance map[string][]*alarm // AWS/EC2 alarms by InstanceId dimension
	hist       map[string][]metricSample
	maint      map[string]types.InstanceAutoRecoveryState // ModifyInstanceMaintenanceOptions overrides
	rec        map[string]*recoveryState
	opts       RecoveryOptions
	transits   []AlarmTransition
	notes      []Notification
	recs       []RecoveryRecord
}

// alarm is one metric alarm.
type alarm struct {
	name, arn     string
	cfg           cloudwatch.PutMetricAlarmInput // normalized copy; Tags nil
	instanceID    string
	state         cwtypes.StateValue
	reason        string
	stateUpdated  time.Time
	stateChanged  time.Time
	configUpdated time.Time
	tags          map[string]string
	gen           uint64 // bumped on update and delete: stale evaluations do nothing
	evalUntil     time.Time
	deleted       bool
}

// metricSample is an instance's status from t on.
type metricSample struct {
	t                  time.Time
	running, sys, inst bool // running; system / instance check failed
}

// AlarmTransition records one alarm state change.
type AlarmTransition struct {
	Time       time.Time
	AlarmName  string
	From, To   string
	InstanceID string
	Reason     string
	// Actions are the actions run for the new state.
	Actions []string
}

// Notification is one message an alarm sent to an SNS topic.
type Notification struct {
	Time      time.Time
	TopicARN  string
	AlarmName string
	State     string
}

// RecoveryRecord is one instance recovery attempt.
type RecoveryRecord struct {
	Time       time.Time
	InstanceID string
	// Mechanism is "alarm" (the recover action) or "simplified"
	// (simplified automatic recovery).
	Mechanism string
	// Outcome is "started", "succeeded", or "failed: <why>" (attempt limit,
	// unsupported instance, not impaired, injected failure).
	Outcome string
}

// RecoveryOptions sizes the simulated instance recovery. Zero values take
// the defaults.
type RecoveryOptions struct {
	// RecoveryTime is how long a recovery takes, from its start to the
	// instance running on new hardware (a reboot: its status checks then run
	// again, Latency.StatusInit). AWS publishes no figure. Default 3m..6m.
	RecoveryTime Dist
	// SimplifiedDelay is how long a system status check must have failed
	// before simplified automatic recovery starts. Default 3m..5m (AWS
	// publishes none; it is documented as slower and coarser than an alarm
	// with 1-minute periods).
	SimplifiedDelay Dist
	// SimplifiedAutoRecovery turns on simplified automatic recovery. AWS
	// enables it by default on every supported instance; the Sim leaves it
	// off unless asked, so that tests of host failures (Sim.Impair) keep
	// the instance impaired until they act. Instances whose
	// MaintenanceOptions.AutoRecovery is "disabled" never use it.
	SimplifiedAutoRecovery bool
	// MaxPerDay is how many recovery attempts an instance gets in 24 hours,
	// both mechanisms together. Default 3 ("the maximum daily allowance of
	// three recovery attempts", Amazon EC2 User Guide, troubleshooting
	// instance recovery failures).
	MaxPerDay int
	// FailureRate is the seeded share of recovery attempts that fail: the
	// instance stays on the impaired host.
	FailureRate float64
}

// recoveryState is an instance's recovery bookkeeping.
type recoveryState struct {
	attempts []time.Time
	active   bool
	seq      uint64 // identifies the active recovery
}

func (s *Sim) initCloudWatch() {
	s.cw = cwState{
		alarms:     map[string]*alarm{},
		byInstance: map[string][]*alarm{},
		hist:       map[string][]metricSample{},
		maint:      map[string]types.InstanceAutoRecoveryState{},
		rec:        map[string]*recoveryState{},
	}
	s.cw.opts = recoveryDefaults(RecoveryOptions{})
	s.hooks = append(s.hooks, func(c Change, _ *View) { s.cwOnChange(c) })
}

func recoveryDefaults(o RecoveryOptions) RecoveryOptions {
	o.RecoveryTime = o.RecoveryTime.orDefault(3*time.Minute, 6*time.Minute)
	o.SimplifiedDelay = o.SimplifiedDelay.orDefault(3*time.Minute, 5*time.Minute)
	if o.MaxPerDay <= 0 {
		o.MaxPerDay = 3
	}
	return o
}

// ConfigureRecovery changes the recovery model (see RecoveryOptions).
func (s *Sim) ConfigureRecovery(f func(*RecoveryOptions)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	o := s.cw.opts
	f(&o)
	s.cw.opts = recoveryDefaults(o)
}

// cwOnChange records the status-check metrics of an instance and schedules
// what depends on them (lock held, from emit).
func (s *Sim) cwOnChange(c Change) {
	if c.Kind != ChangeState && c.Kind != ChangeStatus {
		return
	}
	in := s.ec2.byID[c.InstanceID]
	if in == nil {
		return
	}
	smp := metricSample{t: c.Time, running: in.state == types.InstanceStateNameRunning,
		sys: in.sysCheck == checkFailed, inst: in.instCheck == checkFailed}
	h := s.cw.hist[in.id]
	prevSys := len(h) > 0 && h[len(h)-1].running && h[len(h)-1].sys
	if n := len(h); n > 0 && h[n-1].t.Equal(smp.t) {
		h[n-1] = smp
	} else {
		h = append(h, smp)
	}
	s.cw.hist[in.id] = pruneHistory(h, c.Time)
	for _, a := range s.cw.byInstance[in.id] {
		s.scheduleEvals(a, c.Time)
	}
	if smp.running && smp.sys && !prevSys {
		s.scheduleSimplified(c.Time, in)
	}
}

// pruneHistory drops samples older than the longest evaluation window
// (one day for sub-hour periods; longer windows see missing data beyond a
// day), keeping the one in effect at the cutoff.
func pruneHistory(h []metricSample, now time.Time) []metricSample {
	cut := now.Add(-25 * time.Hour)
	i := sort.Search(len(h), func(i int) bool { return h[i].t.After(cut) })
	if i <= 1 {
		return h
	}
	return append(h[:0], h[i-1:]...)
}

// period returns the alarm's period and the number of periods evaluated.
func (a *alarm) period() (time.Duration, int) {
	return time.Duration(aws.ToInt32(a.cfg.Period)) * time.Second, int(aws.ToInt32(a.cfg.EvaluationPeriods))
}

// scheduleEvals schedules the evaluations of a that a change at t can
// affect: the next EvaluationPeriods+1 period boundaries after t.
func (s *Sim) scheduleEvals(a *alarm, t time.Time) {
	p, n := a.period()
	if p <= 0 {
		return
	}
	first := boundaryAfter(t, p)
	last := first.Add(time.Duration(n) * p)
	from := first
	if !a.evalUntil.Before(first) {
		from = a.evalUntil.Add(p)
	}
	gen := a.gen
	for b := from; !b.After(last); b = b.Add(p) {
		s.schedule(b, func(due time.Time) {
			if a.gen == gen && !a.deleted {
				s.evalAlarm(a, due)
			}
		})
	}
	if last.After(a.evalUntil) {
		a.evalUntil = last
	}
}

// boundaryAfter returns the first multiple of p (in Unix time) after t.
func boundaryAfter(t time.Time, p time.Duration) time.Time {
	return t.Truncate(p).Add(p)
}

// evalAlarm evaluates a at the period boundary at (lock held).
func (s *Sim) evalAlarm(a *alarm, at time.Time) {
	p, n := a.period()
	m := int(aws.ToInt32(a.cfg.DatapointsToAlarm))
	if m <= 0 {
		m = n
	}
	breaching, present, missing := 0, 0, 0
	var last float64
	for k := n; k >= 1; k-- {
		start := at.Add(-time.Duration(k) * p)
		v, ok := s.datapoint(a, start, start.Add(p))
		if !ok {
			missing++
			continue
		}
		present++
		last = v
		if a.breaches(v) {
			breaching++
		}
	}
	treat := aws.ToString(a.cfg.TreatMissingData)
	if treat == "" {
		treat = missingDataMissing
	}
	switch treat {
	case missingDataBreaching:
		breaching += missing
		present += missing
	case missingDataNot:
		present += missing
	}
	var to cwtypes.StateValue
	var reason string
	switch {
	case present == 0 && treat == missingDataIgnore:
		return
	case present == 0:
		to = cwtypes.StateValueInsufficientData
		reason = fmt.Sprintf("Insufficient Data: %d datapoints were unknown.", n)
	case breaching >= min(m, present) && breaching > 0:
		to = cwtypes.StateValueAlarm
		reason = fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints [%g] were %s the threshold (%g).",
			breaching, n, last, comparisonWords(a.cfg.ComparisonOperator), aws.ToFloat64(a.cfg.Threshold))
	default:
		to = cwtypes.StateValueOk
		reason = fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints were not %s the threshold (%g).",
			present-breaching, n, comparisonWords(a.cfg.ComparisonOperator), aws.ToFloat64(a.cfg.Threshold))
	}
	a.stateUpdated = at
	if to == a.state {
		return
	}
	s.setAlarmState(a, at, to, reason)
}

// setAlarmState moves a to state `to` and runs the actions of that state.
func (s *Sim) setAlarmState(a *alarm, at time.Time, to cwtypes.StateValue, reason string) {
	from := a.state
	a.state, a.reason, a.stateChanged, a.stateUpdated = to, reason, at, at
	var acts []string
	if a.cfg.ActionsEnabled == nil || *a.cfg.ActionsEnabled {
		switch to {
		case cwtypes.StateValueAlarm:
			acts = a.cfg.AlarmActions
		case cwtypes.StateValueOk:
			acts = a.cfg.OKActions
		case cwtypes.StateValueInsufficientData:
			acts = a.cfg.InsufficientDataActions
		}
	}
	s.cw.transits = append(s.cw.transits, AlarmTransition{Time: at, AlarmName: a.name, From: string(from), To: string(to),
		InstanceID: a.instanceID, Reason: reason, Actions: slices.Clone(acts)})
	for _, arn := range acts {
		s.runAlarmAction(a, at, arn)
	}
}

// runAlarmAction runs one action of a (lock held). Action ARNs were
// validated by PutMetricAlarm.
func (s *Sim) runAlarmAction(a *alarm, at time.Time, arn string) {
	kind, _ := s.parseAction(arn)
	if kind == "sns" {
		s.cw.notes = append(s.cw.notes, Notification{Time: at, TopicARN: arn, AlarmName: a.name, State: string(a.state)})
		return
	}
	in := s.ec2.byID[a.instanceID]
	if in == nil || in.expired {
		return
	}
	switch kind {
	case "recover":
		s.startRecovery(at, in, "alarm")
	case "reboot":
		if in.state == types.InstanceStateNameRunning {
			s.reboot(at, in)
		}
	case "stop":
		if in.state == types.InstanceStateNameRunning && !aws.ToBool(in.spec.DisableApiStop) {
			s.stop(at, in)
		}
	case "terminate":
		if !aws.ToBool(in.spec.DisableApiTermination) {
			s.terminate(at, in)
		}
	}
}

// datapoint returns the alarm statistic over [from, to) of the one-minute
// (or Period, if shorter) datapoints, and whether any datapoint exists.
func (s *Sim) datapoint(a *alarm, from, to time.Time) (float64, bool) {
	metric := aws.ToString(a.cfg.MetricName)
	if aws.ToString(a.cfg.Namespace) != namespaceEC2 || a.instanceID == "" ||
		(metric != metricSystem && metric != metricInstance && metric != metricEither) {
		return 0, false
	}
	h := s.cw.hist[a.instanceID]
	step := min(time.Minute, to.Sub(from))
	var vals []float64
	for t := from; t.Before(to); t = t.Add(step) {
		if v, ok := sampleValue(h, metric, t, t.Add(step)); ok {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return 0, false
	}
	var sum, mx, mn float64 = 0, math.Inf(-1), math.Inf(1)
	for _, v := range vals {
		sum += v
		mx, mn = max(mx, v), min(mn, v)
	}
	switch a.cfg.Statistic {
	case cwtypes.StatisticMinimum:
		return mn, true
	case cwtypes.StatisticSum:
		return sum, true
	case cwtypes.StatisticAverage:
		return sum / float64(len(vals)), true
	case cwtypes.StatisticSampleCount:
		return float64(len(vals)), true
	}
	return mx, true
}

// sampleValue is the metric's datapoint over [from, to): 1 if the check
// failed at any time the instance was running, 0 if it ran and passed, no
// data if it did not run.
func sampleValue(h []metricSample, metric string, from, to time.Time) (float64, bool) {
	// Sample i holds from h[i].t to h[i+1].t; start with the one in effect
	// at from (same-time samples are merged, so each later one starts
	// inside the window).
	i := max(0, sort.Search(len(h), func(i int) bool { return h[i].t.After(from) })-1)
	has, failed := false, false
	for ; i < len(h) && h[i].t.Before(to); i++ {
		x := h[i]
		if !x.running {
			continue
		}
		has = true
		switch metric {
		case metricSystem:
			failed = failed || x.sys
		case metricInstance:
			failed = failed || x.inst
		default:
			failed = failed || x.sys || x.inst
		}
	}
	if !has {
		return 0, false
	}
	if failed {
		return 1, true
	}
	return 0, true
}

func (a *alarm) breaches(v float64) bool {
	th := aws.ToFloat64(a.cfg.Threshold)
	switch a.cfg.ComparisonOperator {
	case cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold:
		return v >= th
	case cwtypes.ComparisonOperatorGreaterThanThreshold:
		return v > th
	case cwtypes.ComparisonOperatorLessThanThreshold:
		return v < th
	case cwtypes.ComparisonOperatorLessThanOrEqualToThreshold:
		return v <= th
	}
	return false
}

func comparisonWords(op cwtypes.ComparisonOperator) string {
	switch op {
	case cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold:
		return "greater than or equal to"
	case cwtypes.ComparisonOperatorGreaterThanThreshold:
		return "greater than"
	case cwtypes.ComparisonOperatorLessThanThreshold:
		return "less than"
	}
	return "less than or equal to"
}

// parseAction classifies an alarm action ARN: "recover", "reboot", "stop",
// "terminate" (EC2 actions of this Region) or "sns"; an error otherwise.
func (s *Sim) parseAction(arn string) (string, error) {
	region := s.opts.Region
	if rest, ok := strings.CutPrefix(arn, "arn:aws:automate:"); ok {
		r, act, ok := strings.Cut(rest, ":ec2:")
		if ok && r == region {
			switch act {
			case "recover", "reboot", "stop", "terminate":
				return act, nil
			}
		}
		return "", fmt.Errorf("invalid EC2 action %q (want arn:aws:automate:%s:ec2:recover|reboot|stop|terminate)", arn, region)
	}
	if rest, ok := strings.CutPrefix(arn, "arn:aws:swf:"+region+":"); ok {
		for _, act := range []string{"Recover", "Reboot", "Stop", "Terminate"} {
			if strings.HasSuffix(rest, ":action/actions/AWS_EC2.InstanceId."+act+"/1.0") {
				return strings.ToLower(act), nil
			}
		}
	}
	if rest, ok := strings.CutPrefix(arn, "arn:aws:sns:"); ok && strings.Count(rest, ":") == 2 {
		return "sns", nil
	}
	return "", fmt.Errorf("action %q is not an EC2 action of %s or an SNS topic ARN (other action types are not modelled)", arn, region)
}

// alarmARN returns the ARN of the alarm name.
func (s *Sim) alarmARN(name string) string {
	return fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", s.opts.Region, accountID, name)
}

func cwInvalid(format string, args ...any) error {
	return apiError(cwCodeInvalidValue, format, args...)
}

// validateAlarm checks a PutMetricAlarm request as CloudWatch does (for the
// static-threshold metric alarms modelled) and returns the InstanceId
// dimension of an AWS/EC2 alarm.
func (s *Sim) validateAlarm(in *cloudwatch.PutMetricAlarmInput) (string, error) {
	name := aws.ToString(in.AlarmName)
	switch {
	case name == "":
		return "", apiError(cwCodeMissing, "The parameter AlarmName is required.")
	case len(name) > maxAlarmNameLen:
		return "", cwInvalid("The parameter AlarmName must be at most %d characters long.", maxAlarmNameLen)
	case len(in.Metrics) > 0 || in.ThresholdMetricId != nil:
		return "", cwInvalid("cloudsim: metric math and anomaly detection alarms are not modelled.")
	case aws.ToString(in.MetricName) == "" || aws.ToString(in.Namespace) == "":
		return "", apiError(cwCodeMissing, "The parameters MetricName and Namespace are required.")
	case in.ExtendedStatistic != nil:
		return "", cwInvalid("cloudsim: ExtendedStatistic (percentiles) is not modelled; use Statistic.")
	case in.Statistic == "":
		return "", apiError(cwCodeMissing, "The parameter Statistic or ExtendedStatistic is required.")
	case !slices.Contains(in.Statistic.Values(), in.Statistic):
		return "", cwInvalid("Invalid statistic %q.", in.Statistic)
	case in.Period == nil:
		return "", apiError(cwCodeMissing, "The parameter Period is required.")
	case in.EvaluationPeriods == nil:
		return "", apiError(cwCodeMissing, "The parameter EvaluationPeriods is required.")
	case in.Threshold == nil:
		return "", apiError(cwCodeMissing, "The parameter Threshold is required.")
	case in.ComparisonOperator == "":
		return "", apiError(cwCodeMissing, "The parameter ComparisonOperator is required.")
	}
	switch in.ComparisonOperator {
	case cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold, cwtypes.ComparisonOperatorGreaterThanThreshold,
		cwtypes.ComparisonOperatorLessThanThreshold, cwtypes.ComparisonOperatorLessThanOrEqualToThreshold:
	default:
		return "", cwInvalid("cloudsim: ComparisonOperator %q is not modelled.", in.ComparisonOperator)
	}
	p := *in.Period
	if p != 10 && p != 20 && p != 30 && (p < 60 || p%60 != 0) {
		return "", cwInvalid("The parameter Period must be 10, 20, 30 or a multiple of 60.")
	}
	n := *in.EvaluationPeriods
	if n < 1 {
		return "", cwInvalid("The parameter EvaluationPeriods must be greater than or equal to 1.")
	}
	limit := int64(86400)
	if p >= 3600 {
		limit = 604800
	}
	if int64(p)*int64(n) > limit {
		return "", cwInvalid("The evaluation period (Period x EvaluationPeriods) must be at most %d seconds.", limit)
	}
	if d := in.DatapointsToAlarm; d != nil && (*d < 1 || *d > n) {
		return "", cwInvalid("DatapointsToAlarm must be between 1 and EvaluationPeriods.")
	}
	if t := aws.ToString(in.TreatMissingData); t != "" {
		switch t {
		case missingDataMissing, missingDataBreaching, missingDataNot, missingDataIgnore:
		default:
			return "", cwInvalid("Invalid TreatMissingData %q: valid values are breaching, notBreaching, ignore and missing.", t)
		}
	}
	if len(in.Tags) > maxAlarmTags {
		return "", cwInvalid("At most %d tags can be specified.", maxAlarmTags)
	}
	instanceID := ""
	if aws.ToString(in.Namespace) == namespaceEC2 {
		for _, d := range in.Dimensions {
			if aws.ToString(d.Name) == dimensionInstanceID {
				instanceID = aws.ToString(d.Value)
			}
		}
	}
	for _, acts := range [][]string{in.AlarmActions, in.OKActions, in.InsufficientDataActions} {
		if len(acts) > maxActionsPerState {
			return "", cwInvalid("At most %d actions can be specified per state.", maxActionsPerState)
		}
		for _, arn := range acts {
			kind, err := s.parseAction(arn)
			if err != nil {
				return "", cwInvalid("%v", err)
			}
			if kind == "sns" {
				continue
			}
			if instanceID == "" {
				return "", cwInvalid("EC2 action %s needs an alarm on an AWS/EC2 metric with the InstanceId dimension.", arn)
			}
			if kind == "recover" && aws.ToString(in.MetricName) != metricSystem {
				return "", apiError(cwCodeInvalidCombo, "The recover action works with the %s metric only.", metricSystem)
			}
		}
	}
	return instanceID, nil
}

// normalizedAlarm returns a deep copy of the request without Tags.
func normalizedAlarm(in *cloudwatch.PutMetricAlarmInput) cloudwatch.PutMetricAlarmInput {
	c := *in
	c.Tags = nil
	c.AlarmActions = slices.Clone(in.AlarmActions)
	c.OKActions = slices.Clone(in.OKActions)
	c.InsufficientDataActions = slices.Clone(in.InsufficientDataActions)
	c.Dimensions = slices.Clone(in.Dimensions)
	for _, p := range []**int32{&c.Period, &c.EvaluationPeriods, &c.DatapointsToAlarm, &c.EvaluationInterval} {
		if *p != nil {
			*p = ptr(**p)
		}
	}
	for _, p := range []**string{&c.AlarmName, &c.AlarmDescription, &c.MetricName, &c.Namespace, &c.TreatMissingData, &c.EvaluateLowSampleCountPercentile} {
		if *p != nil {
			*p = ptr(**p)
		}
	}
	if c.Threshold != nil {
		c.Threshold = ptr(*c.Threshold)
	}
	if c.ActionsEnabled != nil {
		c.ActionsEnabled = ptr(*c.ActionsEnabled)
	}
	return c
}

// PutMetricAlarm creates an alarm (state INSUFFICIENT_DATA, tags applied)
// or overwrites an existing one's configuration (state kept, Tags
// ignored), then evaluates it at the next period boundaries.
func (c *CloudWatch) PutMetricAlarm(ctx context.Context, params *cloudwatch.PutMetricAlarmInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricAlarmOutput, error) {
	if params == nil {
		params = &cloudwatch.PutMetricAlarmInput{}
	}
	s := c.sim
	err := s.call(ctx, svcCloudWatch, "PutMetricAlarm", nil, func(now time.Time) error {
		instanceID, err := s.validateAlarm(params)
		if err != nil {
			return err
		}
		tags, err := cwTags(params.Tags)
		if err != nil {
			return err
		}
		name := aws.ToString(params.AlarmName)
		a := s.cw.alarms[name]
		if a == nil {
			a = &alarm{name: name, arn: s.alarmARN(name), state: cwtypes.StateValueInsufficientData,
				reason: "Unchecked: Initial alarm creation", stateUpdated: now, stateChanged: now, tags: tags}
			s.cw.alarms[name] = a
			i, _ := slices.BinarySearch(s.cw.names, name)
			s.cw.names = slices.Insert(s.cw.names, i, name)
		} else {
			s.unindexAlarm(a)
			a.gen++
			a.evalUntil = time.Time{}
		}
		a.cfg = normalizedAlarm(params)
		a.instanceID = instanceID
		a.configUpdated = now
		if instanceID != "" {
			s.cw.byInstance[instanceID] = append(s.cw.byInstance[instanceID], a)
		}
		s.scheduleEvals(a, now)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &cloudwatch.PutMetricAlarmOutput{}, nil
}

func (s *Sim) unindexAlarm(a *alarm) {
	if a.instanceID == "" {
		return
	}
	l := s.cw.byInstance[a.instanceID]
	if i := slices.Index(l, a); i >= 0 {
		l = slices.Delete(l, i, i+1)
	}
	if len(l) == 0 {
		delete(s.cw.byInstance, a.instanceID)
	} else {
		s.cw.byInstance[a.instanceID] = l
	}
}

func cwTags(in []cwtypes.Tag) (map[string]string, error) {
	m := make(map[string]string, len(in))
	for _, t := range in {
		k := aws.ToString(t.Key)
		if k == "" || len(k) > 128 || len(aws.ToString(t.Value)) > 256 {
			return nil, cwInvalid("Tag keys must be 1-128 characters and values at most 256.")
		}
		if strings.HasPrefix(k, "aws:") {
			return nil, cwInvalid("Tag keys starting with aws: are reserved.")
		}
		m[k] = aws.ToString(t.Value)
	}
	return m, nil
}

func alarmToken(name string) *string {
	t := base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + name))
	return &t
}

func decodeAlarmToken(tok *string) (string, error) {
	if tok == nil || *tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(*tok)
	if err == nil {
		if rest, ok := strings.CutPrefix(string(b), tokenPrefix); ok {
			return rest, nil
		}
	}
	return "", apiError(cwCodeInvalidToken, "The service returned an invalid NextToken.")
}

// DescribeAlarms lists metric alarms by AlarmNames (at most 100) or
// AlarmNamePrefix (not both), StateValue and ActionPrefix, sorted by name,
// MaxRecords (1..100, default 50) a page.
func (c *CloudWatch) DescribeAlarms(ctx context.Context, params *cloudwatch.DescribeAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error) {
	if params == nil {
		params = &cloudwatch.DescribeAlarmsInput{}
	}
	s := c.sim
	var out *cloudwatch.DescribeAlarmsOutput
	err := s.call(ctx, svcCloudWatch, "DescribeAlarms", nil, func(now time.Time) error {
		prefix := aws.ToString(params.AlarmNamePrefix)
		if prefix != "" && len(params.AlarmNames) > 0 {
			return apiError(cwCodeInvalidCombo, "AlarmNamePrefix and AlarmNames cannot be specified together.")
		}
		if len(params.AlarmNames) > maxAlarmRecords {
			return cwInvalid("At most %d AlarmNames can be specified.", maxAlarmRecords)
		}
		limit := defaultAlarmRecords
		if m := params.MaxRecords; m != nil {
			if *m < 1 || *m > maxAlarmRecords {
				return cwInvalid("MaxRecords must be between 1 and %d.", maxAlarmRecords)
			}
			limit = int(*m)
		}
		from, err := decodeAlarmToken(params.NextToken)
		if err != nil {
			return err
		}
		out = &cloudwatch.DescribeAlarmsOutput{MetricAlarms: []cwtypes.MetricAlarm{}}
		if len(params.AlarmTypes) > 0 && !slices.Contains(params.AlarmTypes, cwtypes.AlarmTypeMetricAlarm) {
			return nil
		}
		wanted := map[string]bool{}
		for _, n := range params.AlarmNames {
			wanted[n] = true
		}
		start := max(from, prefix)
		i, _ := slices.BinarySearch(s.cw.names, start)
		for ; i < len(s.cw.names); i++ {
			name := s.cw.names[i]
			if !strings.HasPrefix(name, prefix) {
				break
			}
			a := s.cw.alarms[name]
			if len(wanted) > 0 && !wanted[name] ||
				params.StateValue != "" && a.state != params.StateValue ||
				params.ActionPrefix != nil && !hasActionPrefix(a, *params.ActionPrefix) {
				continue
			}
			if len(out.MetricAlarms) == limit {
				out.NextToken = alarmToken(name)
				break
			}
			out.MetricAlarms = append(out.MetricAlarms, a.sdk())
		}
		return nil
	})
	return out, err
}

func hasActionPrefix(a *alarm, p string) bool {
	for _, l := range [][]string{a.cfg.AlarmActions, a.cfg.OKActions, a.cfg.InsufficientDataActions} {
		for _, x := range l {
			if strings.HasPrefix(x, p) {
				return true
			}
		}
	}
	return false
}

// sdk describes a as DescribeAlarms does (freshly allocated).
func (a *alarm) sdk() cwtypes.MetricAlarm {
	c := normalizedAlarm(&a.cfg)
	enabled := c.ActionsEnabled == nil || *c.ActionsEnabled
	m := cwtypes.MetricAlarm{
		AlarmName:                          ptr(a.name),
		AlarmArn:                           ptr(a.arn),
		AlarmDescription:                   c.AlarmDescription,
		AlarmConfigurationUpdatedTimestamp: ptr(a.configUpdated),
		ActionsEnabled:                     &enabled,
		AlarmActions:                       orEmpty(c.AlarmActions),
		OKActions:                          orEmpty(c.OKActions),
		InsufficientDataActions:            orEmpty(c.InsufficientDataActions),
		ComparisonOperator:                 c.ComparisonOperator,
		DatapointsToAlarm:                  c.DatapointsToAlarm,
		Dimensions:                         c.Dimensions,
		EvaluationPeriods:                  c.EvaluationPeriods,
		MetricName:                         c.MetricName,
		Namespace:                          c.Namespace,
		Period:                             c.Period,
		Statistic:                          c.Statistic,
		Threshold:                          c.Threshold,
		TreatMissingData:                   c.TreatMissingData,
		Unit:                               c.Unit,
		StateValue:                         a.state,
		StateReason:                        ptr(a.reason),
		StateUpdatedTimestamp:              ptr(a.stateUpdated),
		StateTransitionedTimestamp:         ptr(a.stateChanged),
	}
	if m.Dimensions == nil {
		m.Dimensions = []cwtypes.Dimension{}
	}
	return m
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// DeleteAlarms deletes up to 100 alarms; names that do not exist are
// ignored.
func (c *CloudWatch) DeleteAlarms(ctx context.Context, params *cloudwatch.DeleteAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DeleteAlarmsOutput, error) {
	if params == nil {
		params = &cloudwatch.DeleteAlarmsInput{}
	}
	s := c.sim
	err := s.call(ctx, svcCloudWatch, "DeleteAlarms", nil, func(now time.Time) error {
		if len(params.AlarmNames) == 0 {
			return apiError(cwCodeMissing, "The parameter AlarmNames is required.")
		}
		if len(params.AlarmNames) > maxAlarmsPerDelete {
			return cwInvalid("At most %d alarms can be deleted in one call.", maxAlarmsPerDelete)
		}
		for _, name := range params.AlarmNames {
			a := s.cw.alarms[name]
			if a == nil {
				continue
			}
			a.deleted = true
			a.gen++
			s.unindexAlarm(a)
			delete(s.cw.alarms, name)
			if i, ok := slices.BinarySearch(s.cw.names, name); ok {
				s.cw.names = slices.Delete(s.cw.names, i, i+1)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &cloudwatch.DeleteAlarmsOutput{}, nil
}

// alarmByARN resolves an alarm ARN (lock held).
func (s *Sim) alarmByARN(arn string) (*alarm, error) {
	name, ok := strings.CutPrefix(arn, s.alarmARN(""))
	if a := s.cw.alarms[name]; ok && a != nil {
		return a, nil
	}
	return nil, apiError(cwCodeNotFound, "The resource %s does not exist.", arn)
}

// TagResource adds or overwrites tags of an alarm (at most 50 in all).
func (c *CloudWatch) TagResource(ctx context.Context, params *cloudwatch.TagResourceInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.TagResourceOutput, error) {
	if params == nil {
		params = &cloudwatch.TagResourceInput{}
	}
	s := c.sim
	err := s.call(ctx, svcCloudWatch, "TagResource", nil, func(now time.Time) error {
		a, err := s.alarmByARN(aws.ToString(params.ResourceARN))
		if err != nil {
			return err
		}
		tags, err := cwTags(params.Tags)
		if err != nil {
			return err
		}
		merged := maps.Clone(a.tags)
		maps.Copy(merged, tags)
		if len(merged) > maxAlarmTags {
			return cwInvalid("An alarm can have at most %d tags.", maxAlarmTags)
		}
		a.tags = merged
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &cloudwatch.TagResourceOutput{}, nil
}

// UntagResource removes tags of an alarm.
func (c *CloudWatch) UntagResource(ctx context.Context, params *cloudwatch.UntagResourceInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.UntagResourceOutput, error) {
	if params == nil {
		params = &cloudwatch.UntagResourceInput{}
	}
	s := c.sim
	err := s.call(ctx, svcCloudWatch, "UntagResource", nil, func(now time.Time) error {
		a, err := s.alarmByARN(aws.ToString(params.ResourceARN))
		if err != nil {
			return err
		}
		for _, k := range params.TagKeys {
			delete(a.tags, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &cloudwatch.UntagResourceOutput{}, nil
}

// ListTagsForResource returns an alarm's tags, sorted by key.
func (c *CloudWatch) ListTagsForResource(ctx context.Context, params *cloudwatch.ListTagsForResourceInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.ListTagsForResourceOutput, error) {
	if params == nil {
		params = &cloudwatch.ListTagsForResourceInput{}
	}
	s := c.sim
	var out *cloudwatch.ListTagsForResourceOutput
	err := s.call(ctx, svcCloudWatch, "ListTagsForResource", nil, func(now time.Time) error {
		a, err := s.alarmByARN(aws.ToString(params.ResourceARN))
		if err != nil {
			return err
		}
		out = &cloudwatch.ListTagsForResourceOutput{Tags: []cwtypes.Tag{}}
		for _, k := range slices.Sorted(maps.Keys(a.tags)) {
			out.Tags = append(out.Tags, cwtypes.Tag{Key: ptr(k), Value: ptr(a.tags[k])})
		}
		return nil
	})
	return out, err
}

// AlarmView is a read-only snapshot of one alarm.
type AlarmView struct {
	Name       string
	State      string // OK, ALARM, INSUFFICIENT_DATA
	InstanceID string // the InstanceId dimension of an AWS/EC2 alarm
	MetricName string
	Tags       map[string]string
}

// Alarms returns snapshots of every alarm, sorted by name, after applying
// the transitions due now.
func (s *Sim) Alarms() []AlarmView {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	out := make([]AlarmView, 0, len(s.cw.names))
	for _, n := range s.cw.names {
		a := s.cw.alarms[n]
		out = append(out, AlarmView{Name: n, State: string(a.state), InstanceID: a.instanceID,
			MetricName: aws.ToString(a.cfg.MetricName), Tags: maps.Clone(a.tags)})
	}
	return out
}

// AlarmTransitions returns every alarm state change so far, in order.
func (s *Sim) AlarmTransitions() []AlarmTransition {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	return slices.Clone(s.cw.transits)
}

// Notifications returns every SNS notification alarms sent, in order.
func (s *Sim) Notifications() []Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	return slices.Clone(s.cw.notes)
}

// Recoveries returns every recovery attempt and its outcome, in order.
func (s *Sim) Recoveries() []RecoveryRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	return slices.Clone(s.cw.recs)
}

// recoverable reports whether AWS can recover in, and why not (lock held):
// the type must support it, tenancy must not be host.
func (s *Sim) recoverable(in *instance) (bool, string) {
	if ok, known := AutoRecoverySupported(in.itype); !known || !ok {
		return false, fmt.Sprintf("instance type %s does not support recovery", in.itype)
	}
	if sp := in.spec.Placement; sp != nil && sp.Tenancy == types.TenancyHost {
		return false, "host tenancy"
	}
	return true, ""
}

// startRecovery starts moving in to healthy hardware (lock held), if it is
// running with a failed system status check, recoverable, not already
// recovering and under the daily attempt limit. After RecoveryTime the
// instance reboots on a new host, keeping its ID, addresses and volumes.
func (s *Sim) startRecovery(at time.Time, in *instance, mechanism string) {
	rec := s.cw.rec[in.id]
	if rec == nil {
		rec = &recoveryState{}
		s.cw.rec[in.id] = rec
	}
	if rec.active {
		return // one recovery at a time
	}
	record := func(outcome string) {
		s.cw.recs = append(s.cw.recs, RecoveryRecord{Time: at, InstanceID: in.id, Mechanism: mechanism, Outcome: outcome})
	}
	if in.state != types.InstanceStateNameRunning || in.sysCheck != checkFailed {
		record("failed: the system status check is not failing")
		return
	}
	if ok, why := s.recoverable(in); !ok {
		record("failed: " + why)
		return
	}
	day := at.Add(-24 * time.Hour)
	kept := rec.attempts[:0]
	for _, t := range rec.attempts {
		if t.After(day) {
			kept = append(kept, t)
		}
	}
	rec.attempts = kept
	if len(rec.attempts) >= s.cw.opts.MaxPerDay {
		record(fmt.Sprintf("failed: %d recovery attempts in the last 24 hours", len(rec.attempts)))
		return
	}
	rec.attempts = append(rec.attempts, at)
	record("started")
	fail := s.cw.opts.FailureRate > 0 && in.rng.Float64() < s.cw.opts.FailureRate
	rec.active = true
	rec.seq++
	seq, launched := rec.seq, in.launchTime
	s.schedule(at.Add(s.draw(in.rng, s.cw.opts.RecoveryTime)), func(due time.Time) {
		if rec.seq != seq {
			return
		}
		rec.active = false
		if in.expired || in.state != types.InstanceStateNameRunning || !in.launchTime.Equal(launched) {
			s.cw.recs = append(s.cw.recs, RecoveryRecord{Time: due, InstanceID: in.id, Mechanism: mechanism, Outcome: "failed: the instance stopped running during the recovery"})
			return
		}
		if fail {
			s.cw.recs = append(s.cw.recs, RecoveryRecord{Time: due, InstanceID: in.id, Mechanism: mechanism, Outcome: "failed: recovery did not complete"})
			return
		}
		s.cw.recs = append(s.cw.recs, RecoveryRecord{Time: due, InstanceID: in.id, Mechanism: mechanism, Outcome: "succeeded"})
		s.migrate(due, in)
	})
}

// migrate restarts in on healthy hardware (lock held): the instance
// reboots (the OS restarts; in-memory data is lost) and its status checks
// run again; it keeps its ID, private IP and volumes.
func (s *Sim) migrate(at time.Time, in *instance) {
	in.gen++
	in.hostFail = false
	in.impairedSince = time.Time{}
	s.setChecks(at, in, checkInit, checkInit)
	for _, f := range s.ec2.onReboot {
		f(at, in)
	}
	s.later(at, s.draw(in.rng, s.opts.Latency.StatusInit), in, func(due time.Time) {
		sys, inst := checkOK, checkOK
		if in.hostFail {
			sys, inst = checkFailed, checkFailed
		}
		if in.badBoot {
			inst = checkFailed
		}
		s.setChecks(due, in, sys, inst)
	})
}
