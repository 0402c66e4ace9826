package recovery

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awserr"
)

// Alarm shapes. Sources: "Configure CloudWatch action based recovery"
// (Amazon EC2 User Guide: StatusCheckFailed_System); PutMetricAlarm API
// reference (action ARNs, at most 50 tags, DeleteAlarms up to 100 names,
// Period x EvaluationPeriods at most one day under an hour's period);
// DescribeAlarms (MaxRecords up to 100).
const (
	// DefaultPrefix is the alarm name prefix the Installer owns.
	DefaultPrefix = "ec2ops-recovery-"

	metricSystem      = "StatusCheckFailed_System"
	metricInstance    = "StatusCheckFailed_Instance"
	suffixSystem      = "-system-recover"
	suffixInstance    = "-instance-reboot"
	maxAlarmTags      = 50
	maxDeleteNames    = 100
	maxAlarmRecords   = 100
	maxActionsPerList = 5

	// TagManagedBy and TagInstanceID are set on every alarm the Installer
	// creates.
	TagManagedBy  = "ec2ops:managed-by"
	TagInstanceID = "ec2ops:instance-id"
	managedBy     = "recovery"
)

// AlarmOptions configures an Installer. Zero values are safe defaults.
type AlarmOptions struct {
	// Prefix starts the name of every alarm the Installer manages; alarms
	// under it whose instance left the fleet (or can no longer be
	// recovered) are deleted, so use one prefix per fleet. Default
	// DefaultPrefix.
	Prefix string
	// Region is the Region of the fleet, used in the recover and reboot
	// action ARNs (arn:aws:automate:REGION:ec2:recover). Required;
	// NewInstallerFromConfig takes it from the aws.Config.
	Region string
	// Period is the alarm period in seconds, a multiple of 60. Default 60.
	Period int32
	// EvaluationPeriods is how many consecutive failed periods trigger the
	// action. Default 2.
	EvaluationPeriods int32
	// NotifyTopicARNs are SNS topics told when an alarm fires (ALARM) and
	// clears (OK). At most 4 (5 actions a state, one is recover/reboot).
	NotifyTopicARNs []string
	// InstanceCheckReboot also installs, for every instance of the fleet,
	// an alarm on StatusCheckFailed_Instance with the reboot action.
	InstanceCheckReboot bool
	// Tags are added to every alarm (with ec2ops:managed-by and
	// ec2ops:instance-id). Keys must not start with "aws:".
	Tags map[string]string
	// RateShare is the share of the account's published CloudWatch and EC2
	// request rates the Installer may use, in (0, 1]. Zero means 1.
	RateShare float64
	// TimeScale compresses client-side pacing and retry delays for a
	// simulated cloud whose time runs compressed (cloudsim's
	// Options.TimeScale): buckets refill 1/TimeScale times faster. Leave it
	// zero (meaning 1) against AWS.
	TimeScale float64
	// MaxRetries bounds the retries of a throttled or failed call. Zero
	// means 8.
	MaxRetries int
	// Observer receives progress events; nil discards them.
	Observer ec2ops.Observer
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// Installer reconciles CloudWatch recovery alarms with a fleet: every
// instance AWS can recover gets a StatusCheckFailed_System alarm with the
// recover action (and, optionally, every instance a StatusCheckFailed_Instance
// alarm with the reboot action); alarms under the prefix that are not
// desired are deleted; drifted ones are rewritten. It is safe for
// concurrent use.
type Installer struct {
	ec2    InstanceAPI
	cw     AlarmAPI
	opts   AlarmOptions
	call   *caller
	detect *Detector
}

// NewInstaller returns an Installer that describes the fleet with ec2 and
// manages alarms with cw.
func NewInstaller(ec2api InstanceAPI, cw AlarmAPI, optFns ...func(*AlarmOptions)) *Installer {
	o := AlarmOptions{}
	for _, f := range optFns {
		f(&o)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Period == 0 {
		o.Period = 60
	}
	if o.EvaluationPeriods == 0 {
		o.EvaluationPeriods = 2
	}
	o.Tags = maps.Clone(o.Tags)
	o.NotifyTopicARNs = slices.Clone(o.NotifyTopicARNs)
	c := newCaller(o.RateShare, o.TimeScale, o.MaxRetries, o.Logger)
	d := &Detector{api: ec2api, call: c, types: map[string]typeInfo{}}
	return &Installer{ec2: ec2api, cw: cw, opts: o, call: c, detect: d}
}

// NewInstallerFromConfig returns an Installer with EC2 and CloudWatch
// clients made from cfg, in cfg's Region.
func NewInstallerFromConfig(cfg aws.Config, optFns ...func(*AlarmOptions)) *Installer {
	return NewInstaller(ec2.NewFromConfig(cfg), cloudwatch.NewFromConfig(cfg),
		append([]func(*AlarmOptions){func(o *AlarmOptions) { o.Region = cfg.Region }}, optFns...)...)
}

// validate checks the options before any call.
func (i *Installer) validate() error {
	o := i.opts
	switch {
	case o.Region == "":
		return ec2ops.InvalidInput("AlarmOptions.Region", "", "required for the action ARNs", "set it to the fleet's Region, e.g. us-east-1 (NewInstallerFromConfig takes it from aws.Config)")
	case strings.ContainsAny(o.Region, ": "):
		return ec2ops.InvalidInput("AlarmOptions.Region", o.Region, "not a Region name", "use a name like us-east-1")
	case o.Period < 60 || o.Period%60 != 0:
		return ec2ops.InvalidInput("AlarmOptions.Period", fmt.Sprint(o.Period), "status check metrics are published once a minute", "use 60 or a multiple of 60 seconds")
	case o.EvaluationPeriods < 1:
		return ec2ops.InvalidInput("AlarmOptions.EvaluationPeriods", fmt.Sprint(o.EvaluationPeriods), "must be at least 1", "use 2 (the default) or more")
	case int64(o.Period)*int64(o.EvaluationPeriods) > 86400 && o.Period < 3600:
		return ec2ops.InvalidInput("AlarmOptions.EvaluationPeriods", fmt.Sprint(o.EvaluationPeriods), "Period x EvaluationPeriods exceeds one day", "CloudWatch allows at most 86,400 s for periods under an hour")
	case len(o.NotifyTopicARNs) > maxActionsPerList-1:
		return ec2ops.InvalidInput("AlarmOptions.NotifyTopicARNs", fmt.Sprint(len(o.NotifyTopicARNs)), "too many topics", "CloudWatch allows 5 actions per state, one of which is recover or reboot: use at most 4 topics")
	case len(i.opts.Prefix) > 200:
		return ec2ops.InvalidInput("AlarmOptions.Prefix", o.Prefix, "too long", "alarm names are at most 255 characters: use a prefix of at most 200")
	case len(o.Tags) > maxAlarmTags-2:
		return ec2ops.InvalidInput("AlarmOptions.Tags", fmt.Sprint(len(o.Tags)), "too many tags", "an alarm has at most 50 tags, 2 of which the Installer sets")
	}
	for i, t := range o.NotifyTopicARNs {
		if !strings.HasPrefix(t, "arn:") || !strings.Contains(t, ":sns:") {
			return ec2ops.InvalidInput(fmt.Sprintf("AlarmOptions.NotifyTopicARNs[%d]", i), t, "not an SNS topic ARN", "use arn:aws:sns:REGION:ACCOUNT:TOPIC")
		}
	}
	for k := range o.Tags {
		if k == "" || strings.HasPrefix(k, "aws:") || k == TagManagedBy || k == TagInstanceID {
			return ec2ops.InvalidInput("AlarmOptions.Tags", k, "reserved or empty tag key", "use another key; aws: keys are AWS's, ec2ops:managed-by and ec2ops:instance-id the Installer's")
		}
	}
	return nil
}

// actionARN returns the EC2 alarm action ARN (recover, reboot).
func (i *Installer) actionARN(action string) string {
	partition := "aws"
	switch {
	case strings.HasPrefix(i.opts.Region, "cn-"):
		partition = "aws-cn"
	case strings.HasPrefix(i.opts.Region, "us-gov-"):
		partition = "aws-us-gov"
	}
	return fmt.Sprintf("arn:%s:automate:%s:ec2:%s", partition, i.opts.Region, action)
}

// AlarmName returns the name of the alarm for instanceID and metric
// (StatusCheckFailed_System or StatusCheckFailed_Instance).
func (i *Installer) AlarmName(instanceID, metric string) string {
	if metric == metricInstance {
		return i.opts.Prefix + instanceID + suffixInstance
	}
	return i.opts.Prefix + instanceID + suffixSystem
}

// desired returns the alarm for instanceID on metric with action.
func (i *Installer) desired(instanceID, metric, action string) *cloudwatch.PutMetricAlarmInput {
	o := i.opts
	what := "recover it onto healthy hardware when its system status check fails"
	if metric == metricInstance {
		what = "reboot it when its instance status check fails"
	}
	tags := []cwtypes.Tag{{Key: aws.String(TagInstanceID), Value: aws.String(instanceID)}, {Key: aws.String(TagManagedBy), Value: aws.String(managedBy)}}
	for _, k := range slices.Sorted(maps.Keys(o.Tags)) {
		tags = append(tags, cwtypes.Tag{Key: aws.String(k), Value: aws.String(o.Tags[k])})
	}
	return &cloudwatch.PutMetricAlarmInput{
		AlarmName:          aws.String(i.AlarmName(instanceID, metric)),
		AlarmDescription:   aws.String(fmt.Sprintf("ec2ops recovery for %s: %s", instanceID, what)),
		Namespace:          aws.String("AWS/EC2"),
		MetricName:         aws.String(metric),
		Dimensions:         []cwtypes.Dimension{{Name: aws.String("InstanceId"), Value: aws.String(instanceID)}},
		Statistic:          cwtypes.StatisticMaximum,
		Period:             aws.Int32(o.Period),
		EvaluationPeriods:  aws.Int32(o.EvaluationPeriods),
		DatapointsToAlarm:  aws.Int32(o.EvaluationPeriods),
		Threshold:          aws.Float64(1),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold,
		TreatMissingData:   aws.String("missing"),
		ActionsEnabled:     aws.Bool(true),
		AlarmActions:       append([]string{i.actionARN(action)}, o.NotifyTopicARNs...),
		OKActions:          slices.Clone(o.NotifyTopicARNs),
		Tags:               tags,
	}
}

// AlarmUpdate is an existing alarm whose configuration drifted.
type AlarmUpdate struct {
	Input *cloudwatch.PutMetricAlarmInput
	// ARN is the existing alarm's ARN (for TagResource).
	ARN string
	// Drift names the fields that differ, e.g. "Period 300 -> 60".
	Drift []string
}

// AlarmPlan is the dry run of a reconcile: the alarms to create, update
// and delete, and the instances left without a recover alarm and why.
type AlarmPlan struct {
	ec2ops.Plan
	Create      []*cloudwatch.PutMetricAlarmInput
	Update      []AlarmUpdate
	Delete      []string
	Unchanged   int
	Unsupported []Support
}

// Mutations is the number of mutating calls Apply would make.
func (p *AlarmPlan) Mutations() int {
	return len(p.Create) + 2*len(p.Update) + (len(p.Delete)+maxDeleteNames-1)/maxDeleteNames
}

// Plan reads the fleet, its support and the alarms under the prefix, and
// returns what Apply would change. It makes no mutating call.
func (i *Installer) Plan(ctx context.Context, fleet Fleet) (*AlarmPlan, error) {
	if err := i.validate(); err != nil {
		return nil, err
	}
	if err := fleet.validate("fleet"); err != nil {
		return nil, err
	}
	emit := func(phase, msg string, done, total int) {
		ec2ops.Emit(i.opts.Observer, ec2ops.Event{Operation: "recovery-alarms", Phase: phase, Message: msg, Done: done, Total: total})
	}
	ins, _, err := describeFleet(ctx, i.ec2, i.call, fleet)
	if err != nil {
		return nil, err
	}
	sup, err := i.detect.DetectInstances(ctx, ins)
	if err != nil {
		return nil, err
	}
	emit("plan", fmt.Sprintf("%d instances in the fleet", len(sup)), 0, 0)
	want := map[string]*cloudwatch.PutMetricAlarmInput{}
	plan := &AlarmPlan{Plan: ec2ops.Plan{Operation: "recovery-alarms"}}
	for _, s := range sup {
		if s.Supported {
			a := i.desired(s.InstanceID, metricSystem, "recover")
			want[*a.AlarmName] = a
		} else {
			plan.Unsupported = append(plan.Unsupported, s)
		}
		if i.opts.InstanceCheckReboot {
			a := i.desired(s.InstanceID, metricInstance, "reboot")
			want[*a.AlarmName] = a
		}
	}
	have, err := i.listAlarms(ctx)
	if err != nil {
		return nil, err
	}
	emit("plan", fmt.Sprintf("%d alarms under %s", len(have), i.opts.Prefix), 0, 0)
	for _, name := range slices.Sorted(maps.Keys(want)) {
		w := want[name]
		h, ok := have[name]
		switch {
		case !ok:
			plan.Create = append(plan.Create, w)
			plan.Steps = append(plan.Steps, ec2ops.Step{Action: "cloudwatch:PutMetricAlarm", Resources: []string{name},
				Reason: "create: " + aws.ToString(w.AlarmDescription)})
		default:
			if d := drift(h, w); len(d) > 0 {
				plan.Update = append(plan.Update, AlarmUpdate{Input: w, ARN: aws.ToString(h.AlarmArn), Drift: d})
				plan.Steps = append(plan.Steps,
					ec2ops.Step{Action: "cloudwatch:PutMetricAlarm", Resources: []string{name}, Reason: "update drifted " + strings.Join(d, ", ")},
					ec2ops.Step{Action: "cloudwatch:TagResource", Resources: []string{aws.ToString(h.AlarmArn)}, Reason: "restore tags (PutMetricAlarm ignores Tags on update)"})
			} else {
				plan.Unchanged++
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[name]; !ok {
			plan.Delete = append(plan.Delete, name)
		}
	}
	for chunk := range slices.Chunk(plan.Delete, maxDeleteNames) {
		plan.Steps = append(plan.Steps, ec2ops.Step{Action: "cloudwatch:DeleteAlarms", Resources: slices.Clone(chunk),
			Reason: "the instance left the fleet or can no longer be recovered"})
	}
	return plan, nil
}

// listAlarms returns every alarm under the prefix (all pages).
func (i *Installer) listAlarms(ctx context.Context) (map[string]cwtypes.MetricAlarm, error) {
	have := map[string]cwtypes.MetricAlarm{}
	in := &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String(i.opts.Prefix), MaxRecords: aws.Int32(maxAlarmRecords),
		AlarmTypes: []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm}}
	for {
		var out *cloudwatch.DescribeAlarmsOutput
		err := i.call.do(ctx, "cloudwatch:DescribeAlarms", func() (err error) {
			out, err = i.cw.DescribeAlarms(ctx, in)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("describe alarms under %s: %w", i.opts.Prefix, err)
		}
		for _, a := range out.MetricAlarms {
			have[aws.ToString(a.AlarmName)] = a
		}
		if aws.ToString(out.NextToken) == "" {
			return have, nil
		}
		in.NextToken = out.NextToken
	}
}

// drift lists the differences between an existing alarm and the desired one.
func drift(h cwtypes.MetricAlarm, w *cloudwatch.PutMetricAlarmInput) []string {
	var d []string
	diff := func(field string, have, want any) {
		if fmt.Sprint(have) != fmt.Sprint(want) {
			d = append(d, fmt.Sprintf("%s %v -> %v", field, have, want))
		}
	}
	orDefault := func(p *int32, def int32) int32 {
		if p == nil || *p == 0 {
			return def
		}
		return *p
	}
	sorted := func(s []string) []string { return slices.Sorted(slices.Values(s)) }
	dims := func(ds []cwtypes.Dimension) []string {
		var out []string
		for _, x := range ds {
			out = append(out, aws.ToString(x.Name)+"="+aws.ToString(x.Value))
		}
		return sorted(out)
	}
	missing := aws.ToString(h.TreatMissingData)
	if missing == "" {
		missing = "missing"
	}
	diff("AlarmDescription", aws.ToString(h.AlarmDescription), aws.ToString(w.AlarmDescription))
	diff("Namespace", aws.ToString(h.Namespace), aws.ToString(w.Namespace))
	diff("MetricName", aws.ToString(h.MetricName), aws.ToString(w.MetricName))
	diff("Dimensions", dims(h.Dimensions), dims(w.Dimensions))
	diff("Statistic", h.Statistic, w.Statistic)
	diff("Period", aws.ToInt32(h.Period), aws.ToInt32(w.Period))
	diff("EvaluationPeriods", aws.ToInt32(h.EvaluationPeriods), aws.ToInt32(w.EvaluationPeriods))
	diff("DatapointsToAlarm", orDefault(h.DatapointsToAlarm, aws.ToInt32(h.EvaluationPeriods)), aws.ToInt32(w.DatapointsToAlarm))
	diff("Threshold", aws.ToFloat64(h.Threshold), aws.ToFloat64(w.Threshold))
	diff("ComparisonOperator", h.ComparisonOperator, w.ComparisonOperator)
	diff("TreatMissingData", missing, aws.ToString(w.TreatMissingData))
	diff("ActionsEnabled", h.ActionsEnabled == nil || *h.ActionsEnabled, aws.ToBool(w.ActionsEnabled))
	diff("AlarmActions", sorted(h.AlarmActions), sorted(w.AlarmActions))
	diff("OKActions", sorted(h.OKActions), sorted(w.OKActions))
	diff("InsufficientDataActions", sorted(h.InsufficientDataActions), sorted(w.InsufficientDataActions))
	return d
}

// Apply makes the plan's changes: creates, then updates (PutMetricAlarm,
// then TagResource because an update ignores Tags), then deletes in
// batches of 100, each call paced at CloudWatch's rates. On failure it
// returns an *ec2ops.ProgressError naming the alarms done, failed and
// pending; running Reconcile again finishes the job.
func (i *Installer) Apply(ctx context.Context, plan *AlarmPlan) error {
	if plan == nil {
		return ec2ops.InvalidInput("plan", "", "nil", "pass the plan Plan returned")
	}
	type op struct {
		phase string
		names []string
		run   func() error
	}
	var ops []op
	put := func(in *cloudwatch.PutMetricAlarmInput) error {
		return i.call.do(ctx, "cloudwatch:PutMetricAlarm", func() error {
			_, err := i.cw.PutMetricAlarm(ctx, in)
			return err
		})
	}
	for _, a := range plan.Create {
		ops = append(ops, op{"create", []string{aws.ToString(a.AlarmName)}, func() error { return put(a) }})
	}
	for _, u := range plan.Update {
		ops = append(ops, op{"update", []string{aws.ToString(u.Input.AlarmName)}, func() error {
			if err := put(u.Input); err != nil || u.ARN == "" {
				return err
			}
			return i.call.do(ctx, "cloudwatch:TagResource", func() error {
				_, err := i.cw.TagResource(ctx, &cloudwatch.TagResourceInput{ResourceARN: aws.String(u.ARN), Tags: u.Input.Tags})
				return err
			})
		}})
	}
	for chunk := range slices.Chunk(plan.Delete, maxDeleteNames) {
		ops = append(ops, op{"delete", chunk, func() error {
			return i.call.do(ctx, "cloudwatch:DeleteAlarms", func() error {
				_, err := i.cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: chunk})
				return err
			})
		}})
	}
	total := len(plan.Create) + len(plan.Update) + len(plan.Delete)
	perr := &ec2ops.ProgressError{Operation: "recovery-alarms", Failed: map[string]error{}}
	for k, o := range ops {
		res := strings.Join(o.names, ",")
		if err := o.run(); err != nil {
			err = fmt.Errorf("%s alarm %s: %w", o.phase, res, err)
			for _, n := range o.names {
				perr.Failed[n] = err
			}
			ec2ops.Emit(i.opts.Observer, ec2ops.Event{Operation: "recovery-alarms", Phase: o.phase, Resource: res, Done: len(perr.Done), Total: total, Err: err})
			if ctx.Err() != nil || awserr.Classify(err) == awserr.Auth {
				for _, rest := range ops[k+1:] {
					perr.Pending = append(perr.Pending, rest.names...)
				}
				perr.Err = err
				return perr
			}
			continue
		}
		perr.Done = append(perr.Done, o.names...)
		ec2ops.Emit(i.opts.Observer, ec2ops.Event{Operation: "recovery-alarms", Phase: o.phase, Resource: res, Done: len(perr.Done), Total: total})
	}
	if len(perr.Failed) > 0 {
		perr.Err = fmt.Errorf("%d alarm change(s) failed", len(perr.Failed))
		return perr
	}
	ec2ops.Emit(i.opts.Observer, ec2ops.Event{Operation: "recovery-alarms", Phase: "done", Done: total, Total: total,
		Message: fmt.Sprintf("%d created, %d updated, %d deleted, %d unchanged", len(plan.Create), len(plan.Update), len(plan.Delete), plan.Unchanged)})
	return nil
}

// Reconcile is Plan then Apply: after it returns nil, the alarms under the
// prefix are exactly the desired set. On an unchanged fleet it makes no
// mutating call.
func (i *Installer) Reconcile(ctx context.Context, fleet Fleet) (*AlarmPlan, error) {
	plan, err := i.Plan(ctx, fleet)
	if err != nil {
		return nil, err
	}
	return plan, i.Apply(ctx, plan)
}
