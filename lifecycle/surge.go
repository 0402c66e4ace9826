package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awserr"
)

// Replacer replaces instances one at a time; Rollout drives one across a
// fleet. Surge, RootVolume and Resize implement it.
type Replacer interface {
	// ReplaceInstance replaces instanceID by an equivalent instance (same
	// spec, same image) and returns the ID that now serves (the same ID for
	// in-place strategies). recovery's Watchdog consumes this method.
	ReplaceInstance(ctx context.Context, instanceID string) (newInstanceID string, err error)
	// Policy is the least-privilege IAM policy of the strategy.
	Policy() ec2ops.Policy

	rt() *runtime
	tgt() Target
	inPlace() bool
	// accepts refuses a target the strategy cannot apply.
	accepts(t Target) error
	// want is the spec the instance has once replaced.
	want(cur *Spec, t Target, image string) *Spec
	prepare(j *job)
	bringUp(ctx context.Context, j *job) error
	retire(ctx context.Context, j *job) error
	rollback(ctx context.Context, j *job) error
	steps(j *job) []ec2ops.Step
}

// Replacement is the outcome of one replacement.
type Replacement struct {
	// OldID is the replaced instance; NewID the one that serves now (equal
	// to OldID for in-place strategies).
	OldID, NewID string
	// Reasons says why the instance was drifted.
	Reasons []string
}

// ReplaceError reports a failed replacement: the phase it failed in and
// whether what it launched was rolled back (the old instance then still
// serves).
type ReplaceError struct {
	InstanceID    string
	ReplacementID string
	Phase         string
	RolledBack    bool
	Err           error
}

func (e *ReplaceError) Error() string {
	s := fmt.Sprintf("replace %s", e.InstanceID)
	if e.ReplacementID != "" && e.ReplacementID != e.InstanceID {
		s += " by " + e.ReplacementID
	}
	s += fmt.Sprintf(": %s: %v", e.Phase, e.Err)
	if e.RolledBack {
		s += " (rolled back; the old instance is kept)"
	}
	return s
}

// Unwrap returns the cause.
func (e *ReplaceError) Unwrap() error { return e.Err }

// job is one replacement in progress.
type job struct {
	op       string // event operation
	rollout  string
	cur      *Spec // the old instance as captured
	want     *Spec // what the replacement must be
	wantHash string
	reasons  []string
	attempt  int
	newID    string
	phase    string
	handover []BlockDevice // data volumes to move (handover mode)
	note     func(phase string)

	// Batched launches (Rollout with Surge): batchable lets the job launch
	// in a batch; batchToken is its batch's ClientToken; tagPending says
	// its replacement still lacks ec2ops:replaces.
	batchable  bool
	batchToken string
	tagPending bool

	target Target
	image  string
	found  *found

	// What bringUp did, for rollback.
	registered []TargetRegistration
	eipMoved   bool
}

func (j *job) step(phase string) {
	j.phase = phase
	if j.note != nil {
		j.note(phase)
	}
}

// Surge replaces an instance by launching its replacement first: the old
// instance serves until the new one is healthy and in service. See the
// package documentation.
type Surge struct {
	r      *runtime
	target Target
}

var _ Replacer = (*Surge)(nil)

// NewSurge returns a Surge replacer that applies target (the zero Target
// replaces by an equivalent instance).
func NewSurge(client EC2API, target Target, optFns ...func(*Options)) *Surge {
	return &Surge{r: newRuntime(client, optFns), target: target}
}

// NewSurgeFromConfig returns a Surge replacer with EC2 and ELBv2 clients
// made from cfg.
func NewSurgeFromConfig(cfg aws.Config, target Target, optFns ...func(*Options)) *Surge {
	withELB := func(o *Options) { o.ELB = elb.NewFromConfig(cfg) }
	return NewSurge(ec2.NewFromConfig(cfg), target, append([]func(*Options){withELB}, optFns...)...)
}

func (s *Surge) rt() *runtime  { return s.r }
func (s *Surge) tgt() Target   { return s.target }
func (s *Surge) inPlace() bool { return false }

func (s *Surge) accepts(Target) error { return nil }

func (s *Surge) want(cur *Spec, t Target, image string) *Spec {
	return desired(cur, t, image, s.r.opts.AllowIMDSv1, s.r.opts.HandoverDataVolumes)
}

// Replace replaces instanceID according to the target: capture, launch,
// wait healthy, move Elastic IP and registrations, terminate the old
// instance. A failure rolls back (the old instance keeps serving) and
// returns a *ReplaceError. A rerun after a cancellation adopts the
// replacement it launched (ec2ops tags and the idempotent ClientToken).
func (s *Surge) Replace(ctx context.Context, instanceID string) (*Replacement, error) {
	return replaceOne(ctx, s, s.target, instanceID, "replace")
}

// ReplaceInstance replaces instanceID by an equivalent instance and
// returns the replacement's ID.
func (s *Surge) ReplaceInstance(ctx context.Context, instanceID string) (string, error) {
	r, err := replaceOne(ctx, s, Target{}, instanceID, "replace")
	if err != nil {
		return "", err
	}
	return r.NewID, nil
}

// Plan returns the steps Replace would take for instanceID, changing
// nothing.
func (s *Surge) Plan(ctx context.Context, instanceID string) (ec2ops.Plan, error) {
	return planOne(ctx, s, s.target, instanceID)
}

func (s *Surge) prepare(j *job) {
	if s.r.opts.HandoverDataVolumes && j.handover == nil {
		j.handover = j.cur.DataVolumes()
	}
}

// launchTags are the ec2ops tags of a replacement.
func (j *job) launchTags() map[string]string {
	t := map[string]string{TagReplaces: j.cur.InstanceID, TagRollout: j.rollout, TagSpec: j.wantHash}
	if len(j.handover) > 0 {
		var parts []string
		for _, b := range j.handover {
			parts = append(parts, b.VolumeID+":"+b.DeviceName)
		}
		t[TagHandover] = strings.Join(parts, ",")
	}
	return t
}

// maxTagValue is the EC2 tag value limit (256 characters).
const maxTagValue = 256

// maxLaunchAttempts bounds the tokens tried when an earlier attempt's
// token returns a terminated instance.
const maxLaunchAttempts = 5

// launch starts the replacement (or keeps the adopted one). A batchable
// job launches through the batcher; a batch-launched replacement is then
// tagged ec2ops:replaces (an adopted one too, if it lacks the tag).
func (s *Surge) launch(ctx context.Context, j *job) error {
	rt := s.r
	if j.newID != "" {
		if j.tagPending {
			return rt.tagReplaces(ctx, j)
		}
		return nil
	}
	if j.batchable && len(j.handover) == 0 {
		r := rt.launchBatched(ctx, j)
		switch {
		case r.single:
			return r.err
		case r.err != nil:
			return fmt.Errorf("launch: %w", r.err)
		case r.id != "":
			j.newID, j.batchToken, j.tagPending = r.id, r.token, true
			rt.launched(ctx, j)
			return rt.tagReplaces(ctx, j)
		}
		// r.fallback: launch alone.
	}
	return rt.launchSingle(ctx, j)
}

// launchSingle launches the replacement of j alone (MaxCount 1, its own
// ClientToken, every tag at launch).
func (rt *runtime) launchSingle(ctx context.Context, j *job) error {
	tags := j.launchTags()
	if len(tags[TagHandover]) > maxTagValue {
		return fmt.Errorf("%w: %d data volumes are too many to hand over (the %s tag is limited to %d characters)",
			ec2ops.ErrUnsupported, len(j.handover), TagHandover, maxTagValue)
	}
	for range maxLaunchAttempts {
		in := runInput(j.want, clientToken(j.cur.InstanceID, j.wantHash, j.attempt), tags, len(j.handover) > 0)
		var out *ec2.RunInstancesOutput
		err := rt.runInstances(ctx, in, 1, &out)
		if err != nil {
			return fmt.Errorf("launch: %w", err)
		}
		if len(out.Instances) != 1 {
			return fmt.Errorf("launch: RunInstances returned %d instances", len(out.Instances))
		}
		inst := out.Instances[0]
		if st := inst.State; st != nil && (st.Name == types.InstanceStateNameTerminated || st.Name == types.InstanceStateNameShuttingDown) {
			j.attempt++ // the token of an earlier, failed attempt: take the next one
			continue
		}
		j.newID = aws.ToString(inst.InstanceId)
		j.batchToken, j.tagPending = "", false
		rt.launched(ctx, j)
		return nil
	}
	return fmt.Errorf("launch: %d tokens in a row returned terminated instances", maxLaunchAttempts)
}

// capacityRetries bounds the retries of a launch refused for capacity
// (InsufficientInstanceCapacity and the like), capacityBase the first
// delay. EC2 advises retrying such a launch after a short while: capacity
// frees up continually. Each retry is a new, paced RunInstances call with
// the same ClientToken (a refused request launches nothing). While it
// waits, the old instance keeps serving.
const (
	capacityRetries = 3
	capacityBase    = 2 * time.Second
)

// runInstances launches in (count instances), retrying capacity refusals
// a few times.
func (rt *runtime) runInstances(ctx context.Context, in *ec2.RunInstancesInput, count int, out **ec2.RunInstancesOutput) error {
	for n := 1; ; n++ {
		err := rt.do(ctx, "RunInstances", count, func(ctx context.Context) (err error) {
			*out, err = rt.ec2.RunInstances(ctx, in)
			return err
		})
		if err == nil || n > capacityRetries || awserr.Classify(err) != awserr.Capacity {
			return err
		}
		rt.log.InfoContext(ctx, "launch refused for capacity, retrying", "code", awserr.Code(err), "retry", n)
		if err := sleep(ctx, rt.backoff(capacityBase, n)); err != nil {
			return err
		}
	}
}

// bringUp launches the replacement and puts it in service next to the old
// instance.
func (s *Surge) bringUp(ctx context.Context, j *job) error {
	rt := s.r
	j.phase = "launch"
	if err := s.launch(ctx, j); err != nil {
		return err
	}
	j.phase = "after-launch hook"
	if err := runHook(ctx, "AfterLaunch", rt.opts.Hooks.AfterLaunch, j.newID); err != nil {
		return err
	}
	j.phase = "wait-healthy"
	rt.emit(ec2ops.Event{Operation: j.op, Phase: "wait-healthy", Resource: j.newID})
	if err := rt.waitHealthy(ctx, j.newID); err != nil {
		return err
	}
	if len(j.handover) > 0 {
		j.phase = "handover"
		if err := rt.handover(ctx, j); err != nil {
			return err
		}
	}
	if rt.opts.HealthCheck != nil {
		j.phase = "health-check"
		if err := rt.opts.HealthCheck(ctx, j.newID); err != nil {
			return fmt.Errorf("%w: health check: %w", ErrUnhealthy, err)
		}
	}
	j.phase = "before-in-service hook"
	if err := runHook(ctx, "BeforeInService", rt.opts.Hooks.BeforeInService, j.newID); err != nil {
		return err
	}
	j.phase = "register"
	if err := rt.register(ctx, j); err != nil {
		return err
	}
	if e := j.cur.ElasticIP; e != nil {
		j.phase = "move-eip"
		if err := rt.associate(ctx, e.AllocationID, j.newID); err != nil {
			return err
		}
		j.eipMoved = true
		rt.emit(ec2ops.Event{Operation: j.op, Phase: "move-eip", Resource: j.newID, Message: "Elastic IP " + e.PublicIP})
	}
	j.step("in-service")
	return runHook(ctx, "AfterInService", rt.opts.Hooks.AfterInService, j.newID)
}

func (rt *runtime) associate(ctx context.Context, allocID, instance string) error {
	err := rt.do(ctx, "AssociateAddress", 0, func(ctx context.Context) error {
		_, err := rt.ec2.AssociateAddress(ctx, &ec2.AssociateAddressInput{
			AllocationId: aws.String(allocID), InstanceId: aws.String(instance), AllowReassociation: aws.Bool(true)})
		return err
	})
	if err != nil {
		return fmt.Errorf("associate Elastic IP %s with %s: %w", allocID, instance, err)
	}
	return nil
}

// register registers the replacement where the old instance is registered
// and waits until it is healthy in every group.
func (rt *runtime) register(ctx context.Context, j *job) error {
	if rt.elb == nil || len(j.cur.TargetGroups) == 0 {
		return nil
	}
	for _, tg := range j.cur.TargetGroups {
		err := rt.do(ctx, "elb:RegisterTargets", 0, func(ctx context.Context) error {
			_, err := rt.elb.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tg.TargetGroupARN),
				Targets: []elbtypes.TargetDescription{{Id: aws.String(j.newID), Port: portOrNil(tg.Port)}}})
			return err
		})
		if err != nil {
			return fmt.Errorf("register %s in %s: %w", j.newID, tg.TargetGroupARN, err)
		}
		j.registered = append(j.registered, tg)
		rt.emit(ec2ops.Event{Operation: j.op, Phase: "register", Resource: j.newID, Message: tg.TargetGroupARN})
	}
	for _, tg := range j.cur.TargetGroups {
		if err := rt.waitTarget(ctx, tg.TargetGroupARN, j.newID, false); err != nil {
			return err
		}
	}
	return nil
}

func portOrNil(p int32) *int32 {
	if p == 0 {
		return nil
	}
	return aws.Int32(p)
}

// deregister takes id out of the groups and waits until draining ended.
func (rt *runtime) deregister(ctx context.Context, op, id string, regs []TargetRegistration) error {
	if rt.elb == nil {
		return nil
	}
	for _, tg := range regs {
		err := rt.do(ctx, "elb:DeregisterTargets", 0, func(ctx context.Context) error {
			_, err := rt.elb.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(tg.TargetGroupARN),
				Targets: []elbtypes.TargetDescription{{Id: aws.String(id), Port: portOrNil(tg.Port)}}})
			return err
		})
		if err != nil && awserr.Code(err) != "InvalidTarget" { // not registered (any more): nothing to drain
			return fmt.Errorf("deregister %s from %s: %w", id, tg.TargetGroupARN, err)
		}
		rt.emit(ec2ops.Event{Operation: op, Phase: "deregister", Resource: id, Message: tg.TargetGroupARN})
	}
	for _, tg := range regs {
		if err := rt.waitTarget(ctx, tg.TargetGroupARN, id, true); err != nil {
			return err
		}
	}
	return nil
}

// retire takes the old instance out of service and terminates it.
func (s *Surge) retire(ctx context.Context, j *job) error {
	rt := s.r
	j.phase = "deregister"
	if err := rt.deregister(ctx, j.op, j.cur.InstanceID, j.cur.TargetGroups); err != nil {
		return err
	}
	j.phase = "before-terminate hook"
	if err := runHook(ctx, "BeforeTerminate", rt.opts.Hooks.BeforeTerminate, j.cur.InstanceID); err != nil {
		return err
	}
	j.phase = "terminate"
	if err := rt.terminate(ctx, j.cur.InstanceID); err != nil {
		return err
	}
	j.step("done")
	rt.emit(ec2ops.Event{Operation: j.op, Phase: "terminate", Resource: j.cur.InstanceID, Message: "replaced by " + j.newID})
	return runHook(ctx, "AfterTerminate", rt.opts.Hooks.AfterTerminate, j.cur.InstanceID)
}

func (rt *runtime) terminate(ctx context.Context, id string) error {
	err := rt.do(ctx, "TerminateInstances", 1, func(ctx context.Context) error {
		_, err := rt.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
		return err
	})
	if err != nil && !awserr.IsNotFound(err) {
		return fmt.Errorf("terminate %s: %w", id, err)
	}
	return nil
}

// rollback undoes bringUp: the Elastic IP goes back, the replacement leaves
// the target groups, handed-over volumes go back to the old instance, which
// is started again, and the replacement is terminated. The old instance is
// kept in every case.
func (s *Surge) rollback(ctx context.Context, j *job) error {
	rt := s.r
	if j.newID == "" {
		return nil
	}
	rt.emit(ec2ops.Event{Operation: j.op, Phase: "rollback", Resource: j.cur.InstanceID, Message: "terminating " + j.newID})
	var errs []error
	if j.eipMoved {
		errs = append(errs, rt.associate(ctx, j.cur.ElasticIP.AllocationID, j.cur.InstanceID))
	}
	if len(j.registered) > 0 {
		errs = append(errs, rt.deregister(ctx, j.op, j.newID, j.registered))
	}
	if len(j.handover) > 0 {
		if err := rt.undoHandover(ctx, j); err != nil {
			// Never terminate an instance that may hold the data volumes.
			return errors.Join(append(errs, err)...)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if j.tagPending {
		// A batch-launched replacement stopped before its tagging: tag it
		// first, so that it is never mistaken for a fleet member. If that
		// fails it stays (a rerun finds it by its batch tags).
		if err := rt.tagReplaces(ctx, j); err != nil {
			return err
		}
	}
	if err := rt.terminate(ctx, j.newID); err != nil {
		return err
	}
	j.step("rolled-back")
	return nil
}

func (s *Surge) steps(j *job) []ec2ops.Step {
	return surgeSteps(s.r, j)
}

func surgeSteps(rt *runtime, j *job) []ec2ops.Step {
	old := j.cur.InstanceID
	why := strings.Join(j.reasons, "; ")
	if why == "" {
		why = "equivalent replacement"
	}
	var st []ec2ops.Step
	add := func(action, reason string, res ...string) {
		st = append(st, ec2ops.Step{Action: action, Resources: res, Reason: reason})
	}
	add("ec2:RunInstances", fmt.Sprintf("launch the replacement of %s from %s (%s)", old, j.want.ImageID, why), "replacement-of-"+old)
	add("ec2:DescribeInstanceStatus", "wait until the replacement passes both status checks", "replacement-of-"+old)
	if len(j.handover) > 0 {
		var vols []string
		for _, b := range j.handover {
			vols = append(vols, b.VolumeID)
		}
		add("ec2:ModifyInstanceAttribute", "turn DeleteOnTermination off for the data volumes before anything is terminated", old)
		add("ec2:StopInstances", "stop the old instance so its data volumes can move", old)
		add("ec2:DetachVolume", "detach the data volumes from the old instance", vols...)
		add("ec2:AttachVolume", "attach the data volumes to the replacement at the same devices", vols...)
	}
	for _, tg := range j.cur.TargetGroups {
		add("elasticloadbalancing:RegisterTargets", "register the replacement and wait until it is healthy", tg.TargetGroupARN)
	}
	if e := j.cur.ElasticIP; e != nil {
		add("ec2:AssociateAddress", "move Elastic IP "+e.PublicIP+" to the replacement", e.AllocationID)
	}
	for _, tg := range j.cur.TargetGroups {
		add("elasticloadbalancing:DeregisterTargets", "deregister the old instance and wait for draining", tg.TargetGroupARN)
	}
	add("ec2:TerminateInstances", "terminate the old instance once the replacement serves", old)
	return st
}

// Policy returns the least-privilege IAM policy of Surge (and of a Rollout
// that uses it). Launches are allowed to tag only at creation; ELB actions
// are listed when target groups are configured.
func (s *Surge) Policy() ec2ops.Policy {
	return surgePolicy(s.r)
}

func surgePolicy(rt *runtime) ec2ops.Policy {
	st := []ec2ops.Statement{
		{Sid: "Describe", Action: []string{"ec2:DescribeInstances", "ec2:DescribeInstanceAttribute", "ec2:DescribeInstanceStatus",
			"ec2:DescribeVolumes", "ec2:DescribeAddresses", "ec2:DescribeInstanceCreditSpecifications"}},
		{Sid: "Launch", Action: []string{"ec2:RunInstances", "ec2:AssociateAddress", "ec2:TerminateInstances"}},
		{Sid: "TagOnLaunch", Action: []string{"ec2:CreateTags"},
			Condition: map[string]map[string]string{"StringEquals": {"ec2:CreateAction": "RunInstances"}}},
		// Batch-launched replacements get their own tags (ec2ops:replaces,
		// ec2ops:spec, user tags) after the launch: only instances that
		// carry ec2ops:batch.
		{Sid: "TagBatchLaunched", Action: []string{"ec2:CreateTags"}, Resource: []string{"arn:aws:ec2:*:*:instance/*"},
			Condition: map[string]map[string]string{"StringLike": {"aws:ResourceTag/" + TagBatch: "*"}}},
		{Sid: "PassInstanceProfileRole", Action: []string{"iam:PassRole"},
			Condition: map[string]map[string]string{"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}},
	}
	if rt.opts.HandoverDataVolumes {
		st = append(st, ec2ops.Statement{Sid: "Handover", Action: []string{"ec2:StopInstances", "ec2:StartInstances",
			"ec2:DetachVolume", "ec2:AttachVolume", "ec2:ModifyInstanceAttribute"}})
	}
	if len(rt.opts.TargetGroups) > 0 {
		st = append(st, ec2ops.Statement{Sid: "TargetGroups", Action: []string{"elasticloadbalancing:RegisterTargets",
			"elasticloadbalancing:DeregisterTargets"}, Resource: slices.Clone(rt.opts.TargetGroups)},
			// DescribeTargetHealth does not support resource-level permissions.
			ec2ops.Statement{Sid: "TargetHealth", Action: []string{"elasticloadbalancing:DescribeTargetHealth"}})
	}
	return ec2ops.NewPolicy(st...)
}
