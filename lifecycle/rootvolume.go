package lifecycle

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/poll"
)

// RootVolumeClient is what the RootVolume replacer needs.
type RootVolumeClient interface {
	EC2API
	RootVolumeAPI
}

// RootVolume replaces an instance's root volume with one restored from the
// target image (CreateReplaceRootVolumeTask), keeping the instance ID,
// network interfaces, private IPs, Elastic IP and data volumes. The
// instance reboots and is out of service meanwhile: Rollout counts it
// against MaxUnavailable. It can change the image only. The replaced root
// volume is kept (DeleteReplacedRootVolume false): nothing with data is
// deleted.
type RootVolume struct {
	r      *runtime
	rv     RootVolumeAPI
	target Target
	tasks  *poll.Poller[types.ReplaceRootVolumeTask]
}

var _ Replacer = (*RootVolume)(nil)

// NewRootVolume returns a RootVolume replacer onto target's image.
func NewRootVolume(client RootVolumeClient, target Target, optFns ...func(*Options)) *RootVolume {
	rv := &RootVolume{r: newRuntime(client, optFns), rv: client, target: target}
	rt := rv.r
	rv.tasks = poll.New(func(ctx context.Context, ids []string) (map[string]types.ReplaceRootVolumeTask, error) {
		out, err := client.DescribeReplaceRootVolumeTasks(ctx, &ec2.DescribeReplaceRootVolumeTasksInput{ReplaceRootVolumeTaskIds: ids})
		if err != nil {
			return nil, err
		}
		m := map[string]types.ReplaceRootVolumeTask{}
		for _, t := range out.ReplaceRootVolumeTasks {
			m[aws.ToString(t.ReplaceRootVolumeTaskId)] = t
		}
		return m, nil
	}, func(p *poll.Options) {
		p.Interval, p.MaxInterval = rt.d(rt.opts.PollInterval), rt.d(rt.opts.MaxPollInterval)
		p.Limiter, p.Action, p.Seed = rt.lim, "DescribeReplaceRootVolumeTasks", rt.opts.Seed
	})
	return rv
}

// NewRootVolumeFromConfig returns a RootVolume replacer with clients made
// from cfg.
func NewRootVolumeFromConfig(cfg aws.Config, target Target, optFns ...func(*Options)) *RootVolume {
	return NewRootVolume(ec2.NewFromConfig(cfg), target, optFns...)
}

func (v *RootVolume) rt() *runtime  { return v.r }
func (v *RootVolume) tgt() Target   { return v.target }
func (v *RootVolume) inPlace() bool { return true }
func (v *RootVolume) prepare(*job)  {}

func (v *RootVolume) accepts(t Target) error {
	if t.InstanceType != "" || t.UserData != nil || len(t.Tags) > 0 {
		return ec2ops.InvalidInput("Target", "", "RootVolume replaces the root volume only: it cannot change the instance type, user data or tags",
			"use Surge (or Resize for the type)")
	}
	return nil
}

func (v *RootVolume) want(cur *Spec, t Target, image string) *Spec {
	w := cur.clone()
	w.InstanceID, w.State, w.PrivateIP, w.ElasticIP, w.TargetGroups, w.Replaces, w.Rollout = "", "", "", nil, nil, "", ""
	if image != "" {
		w.ImageID = image
	}
	for i := range w.BlockDevices {
		w.BlockDevices[i].VolumeID = ""
	}
	return w
}

// Replace replaces the root volume of instanceID from the target image.
func (v *RootVolume) Replace(ctx context.Context, instanceID string) (*Replacement, error) {
	return replaceOne(ctx, v, v.target, instanceID, "replace-root-volume")
}

// ReplaceInstance restores the root volume of instanceID from its own
// image (a fresh OS disk, same instance) and returns instanceID.
func (v *RootVolume) ReplaceInstance(ctx context.Context, instanceID string) (string, error) {
	r, err := replaceOne(ctx, v, Target{}, instanceID, "replace-root-volume")
	if err != nil {
		return "", err
	}
	return r.NewID, nil
}

// Plan returns the steps Replace would take.
func (v *RootVolume) Plan(ctx context.Context, instanceID string) (ec2ops.Plan, error) {
	return planOne(ctx, v, v.target, instanceID)
}

// bringUp drains the instance from its target groups, runs the task (or
// adopts the one in flight, found by its idempotent ClientToken), waits
// for the status checks and puts the instance back in service.
func (v *RootVolume) bringUp(ctx context.Context, j *job) error {
	rt := v.r
	id := j.cur.InstanceID
	j.newID = id
	j.phase = "deregister"
	if err := rt.deregister(ctx, j.op, id, j.cur.TargetGroups); err != nil {
		return err
	}
	j.phase = "replace-root-volume"
	var out *ec2.CreateReplaceRootVolumeTaskOutput
	err := rt.do(ctx, "CreateReplaceRootVolumeTask", 0, func(ctx context.Context) (err error) {
		out, err = v.rv.CreateReplaceRootVolumeTask(ctx, &ec2.CreateReplaceRootVolumeTaskInput{
			InstanceId:               aws.String(id),
			ImageId:                  aws.String(j.want.ImageID),
			ClientToken:              aws.String(clientToken(id, j.wantHash, j.attempt)),
			DeleteReplacedRootVolume: aws.Bool(false),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeReplaceRootVolumeTask,
				Tags: ownTags(map[string]string{TagRollout: j.rollout, TagSpec: j.wantHash})}},
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("create replace-root-volume task: %w", err)
	}
	task := aws.ToString(out.ReplaceRootVolumeTask.ReplaceRootVolumeTaskId)
	j.step("launched")
	rt.emit(ec2ops.Event{Operation: j.op, Phase: "replace-root-volume", Resource: id, Message: task})
	wctx, cancel := context.WithTimeout(ctx, rt.d(rt.opts.HealthTimeout))
	defer cancel()
	_, err = v.tasks.Wait(wctx, task, func(t types.ReplaceRootVolumeTask) (bool, error) {
		switch t.TaskState {
		case types.ReplaceRootVolumeTaskStateSucceeded:
			return true, nil
		case types.ReplaceRootVolumeTaskStateFailed, types.ReplaceRootVolumeTaskStateFailedDetached, types.ReplaceRootVolumeTaskStateFailing:
			return false, fmt.Errorf("replace-root-volume task %s: %s", task, t.TaskState)
		}
		return false, nil
	})
	if err := rt.timeout(ctx, err, "replace-root-volume task "+task); err != nil {
		return err
	}
	if err := runHook(ctx, "AfterLaunch", rt.opts.Hooks.AfterLaunch, id); err != nil {
		return err
	}
	j.phase = "wait-healthy"
	if err := rt.waitHealthy(ctx, id); err != nil {
		return err
	}
	if rt.opts.HealthCheck != nil {
		j.phase = "health-check"
		if err := rt.opts.HealthCheck(ctx, id); err != nil {
			return fmt.Errorf("%w: health check: %w", ErrUnhealthy, err)
		}
	}
	j.phase = "before-in-service hook"
	if err := runHook(ctx, "BeforeInService", rt.opts.Hooks.BeforeInService, id); err != nil {
		return err
	}
	j.phase = "register"
	if err := rt.register(ctx, j); err != nil {
		return err
	}
	j.step("done")
	return runHook(ctx, "AfterInService", rt.opts.Hooks.AfterInService, id)
}

func (v *RootVolume) retire(context.Context, *job) error { return nil }

// rollback cannot undo a replaced root volume (the old one is kept, for a
// manual restore); it puts the instance back in its target groups.
func (v *RootVolume) rollback(ctx context.Context, j *job) error {
	if v.r.elb == nil || len(j.cur.TargetGroups) == 0 {
		return nil
	}
	return v.r.register(ctx, j)
}

func (v *RootVolume) steps(j *job) []ec2ops.Step {
	id := j.cur.InstanceID
	var st []ec2ops.Step
	for _, tg := range j.cur.TargetGroups {
		st = append(st, ec2ops.Step{Action: "elasticloadbalancing:DeregisterTargets", Resources: []string{tg.TargetGroupARN}, Reason: "drain " + id + " before its reboot"})
	}
	st = append(st,
		ec2ops.Step{Action: "ec2:CreateReplaceRootVolumeTask", Resources: []string{id}, Reason: "restore the root volume from " + j.want.ImageID + " (the old root volume is kept)"},
		ec2ops.Step{Action: "ec2:DescribeReplaceRootVolumeTasks", Resources: []string{id}, Reason: "wait for the task to succeed"},
		ec2ops.Step{Action: "ec2:DescribeInstanceStatus", Resources: []string{id}, Reason: "wait until both status checks pass"})
	for _, tg := range j.cur.TargetGroups {
		st = append(st, ec2ops.Step{Action: "elasticloadbalancing:RegisterTargets", Resources: []string{tg.TargetGroupARN}, Reason: "put " + id + " back in service"})
	}
	return st
}

// Policy returns the least-privilege IAM policy of RootVolume.
func (v *RootVolume) Policy() ec2ops.Policy {
	st := []ec2ops.Statement{
		{Sid: "Describe", Action: []string{"ec2:DescribeInstances", "ec2:DescribeInstanceAttribute", "ec2:DescribeInstanceStatus",
			"ec2:DescribeVolumes", "ec2:DescribeAddresses", "ec2:DescribeReplaceRootVolumeTasks",
			"ec2:DescribeInstanceCreditSpecifications"}},
		{Sid: "ReplaceRootVolume", Action: []string{"ec2:CreateReplaceRootVolumeTask"}},
		{Sid: "TagOnCreate", Action: []string{"ec2:CreateTags"},
			Condition: map[string]map[string]string{"StringEquals": {"ec2:CreateAction": "CreateReplaceRootVolumeTask"}}},
	}
	if len(v.r.opts.TargetGroups) > 0 {
		st = append(st, ec2ops.Statement{Sid: "TargetGroups", Action: []string{"elasticloadbalancing:RegisterTargets",
			"elasticloadbalancing:DeregisterTargets"}, Resource: append([]string(nil), v.r.opts.TargetGroups...)},
			ec2ops.Statement{Sid: "TargetHealth", Action: []string{"elasticloadbalancing:DescribeTargetHealth"}})
	}
	return ec2ops.NewPolicy(st...)
}
