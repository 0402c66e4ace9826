package cloudsim

import (
	"context"
	"encoding/json"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Replace-root-volume tasks. A task on a running instance goes pending ->
// in-progress (the instance stops serving: its instance status check
// re-initializes) -> succeeded: the root volume is a new volume restored
// from the image, the instance's image ID becomes that image, and the
// instance reboots (its checks pass again after Latency.Reboot); instance
// ID, private IP, network interfaces and data volumes are kept. The old
// root volume stays, available, unless DeleteReplacedRootVolume. A task
// whose instance stops or terminates meanwhile fails. Source: "Replace a
// root volume" (Amazon EC2 User Guide) and the CreateReplaceRootVolumeTask
// API reference.

// Task latencies: pending for a few seconds, then the volume swap.
var (
	rootPending = Dist{3 * time.Second, 10 * time.Second}
	rootSwap    = Dist{30 * time.Second, 90 * time.Second}
)

const codeRootTaskNotFound = "InvalidReplaceRootVolumeTaskId.NotFound"

type rootTask struct {
	id, token, fp string
	in            *instance
	imageID       string
	deleteOld     bool
	state         types.ReplaceRootVolumeTaskState
	start, done   time.Time
	tags          map[string]string
}

// CreateReplaceRootVolumeTask starts replacing the root volume of a running
// instance with one restored from ImageId (or its launch state). A
// ClientToken makes the call idempotent.
func (c *EC2) CreateReplaceRootVolumeTask(ctx context.Context, params *ec2.CreateReplaceRootVolumeTaskInput, optFns ...func(*ec2.Options)) (*ec2.CreateReplaceRootVolumeTaskOutput, error) {
	if params == nil {
		params = &ec2.CreateReplaceRootVolumeTaskInput{}
	}
	s := c.sim
	var out *ec2.CreateReplaceRootVolumeTaskOutput
	err := s.call(ctx, svcEC2, "CreateReplaceRootVolumeTask", nil, func(now time.Time) error {
		cp := *params
		cp.ClientToken, cp.DryRun = nil, nil
		fp, _ := json.Marshal(&cp)
		token := aws.ToString(params.ClientToken)
		if t := s.lc.rootToken[token]; token != "" && t != nil {
			if t.fp != string(fp) {
				return apiError(codeIdempotentMismatch, "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
			}
			if aws.ToBool(params.DryRun) {
				return errDryRun()
			}
			out = &ec2.CreateReplaceRootVolumeTaskOutput{ReplaceRootVolumeTask: s.sdkRootTask(t)}
			return nil
		}
		id := aws.ToString(params.InstanceId)
		if id == "" {
			return errMissing("InstanceId")
		}
		ins, err := s.lookupInstances(now, []string{id})
		if err != nil {
			return err
		}
		in := ins[0]
		if in.state != types.InstanceStateNameRunning {
			return apiError(codeIncorrectState, "The instance '%s' is not in the 'running' state.", id)
		}
		img := aws.ToString(params.ImageId)
		if img != "" {
			if !validID(img, "ami-") {
				return errMalformed(codeAMIMalformed, img, "ami-...")
			}
			if err := s.imageUsable(img); err != nil {
				return err
			}
		}
		for _, t := range s.lc.rootOrder {
			if t.in == in && (t.state == types.ReplaceRootVolumeTaskStatePending || t.state == types.ReplaceRootVolumeTaskStateInProgress) {
				return apiError(codeIncorrectState, "A replace root volume task is already in progress for instance '%s'.", id)
			}
		}
		tags := map[string]string{}
		for _, ts := range params.TagSpecifications {
			kv, err := validateTags(ts.Tags)
			if err != nil {
				return err
			}
			for _, p := range kv {
				tags[p.key] = p.value
			}
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		t := &rootTask{id: s.newID("replacevol-"), token: token, fp: string(fp), in: in, imageID: img,
			deleteOld: aws.ToBool(params.DeleteReplacedRootVolume), state: types.ReplaceRootVolumeTaskStatePending,
			start: now, tags: tags}
		s.lc.rootTasks[t.id] = t
		s.lc.rootOrder = append(s.lc.rootOrder, t)
		if token != "" {
			s.lc.rootToken[token] = t
		}
		s.runRootTask(now, t)
		out = &ec2.CreateReplaceRootVolumeTaskOutput{ReplaceRootVolumeTask: s.sdkRootTask(t)}
		return nil
	})
	return out, err
}

// runRootTask schedules the task's transitions (lock held).
func (s *Sim) runRootTask(now time.Time, t *rootTask) {
	in := t.in
	rng := s.resourceRand(t.id)
	fail := func(due time.Time) {
		t.state, t.done = types.ReplaceRootVolumeTaskStateFailed, due
	}
	s.schedule(now.Add(s.draw(rng, rootPending)), func(due time.Time) {
		if in.state != types.InstanceStateNameRunning {
			fail(due)
			return
		}
		t.state = types.ReplaceRootVolumeTaskStateInProgress
		in.gen++ // supersede pending status transitions: the OS goes down
		s.setChecks(due, in, in.sysCheck, checkInit)
		gen := in.gen
		s.schedule(due.Add(s.draw(rng, rootSwap)), func(due time.Time) {
			if in.gen != gen || in.state != types.InstanceStateNameRunning {
				fail(due)
				return
			}
			for i, v := range in.volumes {
				if v.device != rootDevice {
					continue
				}
				old := s.volumeFor(in, v)
				nv := *old
				nv.id, nv.created, nv.attachAt, nv.gen = s.newID("vol-"), due, due, 0
				s.lc.vols[nv.id] = &nv
				old.inst, old.device, old.busy = nil, "", ""
				if t.deleteOld {
					delete(s.lc.vols, old.id)
				}
				in.volumes[i].id = nv.id
			}
			if t.imageID != "" {
				in.imageID = t.imageID
			}
			t.state, t.done = types.ReplaceRootVolumeTaskStateSucceeded, due
			s.emit(Change{Time: due, InstanceID: in.id, Kind: ChangeTags}, in) // image changed: let views see it
			s.reboot(due, in)
		})
	})
}

func (s *Sim) sdkRootTask(t *rootTask) *types.ReplaceRootVolumeTask {
	out := &types.ReplaceRootVolumeTask{
		ReplaceRootVolumeTaskId:  ptr(t.id),
		InstanceId:               ptr(t.in.id),
		TaskState:                t.state,
		StartTime:                ptr(t.start.UTC().Format(time.RFC3339)),
		DeleteReplacedRootVolume: ptr(t.deleteOld),
		Tags:                     sdkTags(t.tags),
	}
	if t.imageID != "" {
		out.ImageId = ptr(t.imageID)
	}
	if !t.done.IsZero() {
		out.CompleteTime = ptr(t.done.UTC().Format(time.RFC3339))
	}
	return out
}

func rootTaskFields() filterFields[*rootTask] {
	return filterFields[*rootTask]{fields: map[string]func(*rootTask) []string{
		"instance-id": func(t *rootTask) []string { return []string{t.in.id} },
	}}
}

// DescribeReplaceRootVolumeTasks describes tasks by ID (every ID must
// exist) or all, with the filter instance-id. It does not paginate.
func (c *EC2) DescribeReplaceRootVolumeTasks(ctx context.Context, params *ec2.DescribeReplaceRootVolumeTasksInput, optFns ...func(*ec2.Options)) (*ec2.DescribeReplaceRootVolumeTasksOutput, error) {
	if params == nil {
		params = &ec2.DescribeReplaceRootVolumeTasksInput{}
	}
	s := c.sim
	var out *ec2.DescribeReplaceRootVolumeTasksOutput
	err := s.call(ctx, svcEC2, "DescribeReplaceRootVolumeTasks", nil, func(now time.Time) error {
		fs, err := compileFilters(params.Filters, rootTaskFields())
		if err != nil {
			return err
		}
		sel := s.lc.rootOrder
		if len(params.ReplaceRootVolumeTaskIds) > 0 {
			sel = nil
			for _, id := range params.ReplaceRootVolumeTaskIds {
				t := s.lc.rootTasks[id]
				if t == nil {
					return apiError(codeRootTaskNotFound, "The replace root volume task ID '%s' does not exist.", id)
				}
				sel = append(sel, t)
			}
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		out = &ec2.DescribeReplaceRootVolumeTasksOutput{ReplaceRootVolumeTasks: []types.ReplaceRootVolumeTask{}}
		for _, t := range sel {
			if matchAll(fs, t) {
				out.ReplaceRootVolumeTasks = append(out.ReplaceRootVolumeTasks, *s.sdkRootTask(t))
			}
		}
		return nil
	})
	return out, err
}
