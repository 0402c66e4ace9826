package lifecycle

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
)

// Data-volume handover. Every step reads the volumes' current attachments
// first, so an interrupted handover is finished (or undone) by a rerun
// from whatever state it stopped in. Nothing that holds data is ever
// deleted: DeleteOnTermination is turned off on the old instance before it
// is stopped, and volumes attached after launch have it off (EC2 default).

// parseHandover reads the ec2ops:handover tag ("vol-1:/dev/sdf,...").
func parseHandover(v string) []BlockDevice {
	var out []BlockDevice
	for _, p := range strings.Split(v, ",") {
		id, dev, ok := strings.Cut(p, ":")
		if ok && id != "" && dev != "" {
			out = append(out, BlockDevice{VolumeID: id, DeviceName: dev})
		}
	}
	return out
}

// attachments returns, per volume ID, the instance it is attached to ("" if
// available) and the attachment state.
func (rt *runtime) attachments(ctx context.Context, vols []BlockDevice) (map[string][2]string, error) {
	var ids []string
	for _, b := range vols {
		ids = append(ids, b.VolumeID)
	}
	var out *ec2.DescribeVolumesOutput
	err := rt.do(ctx, "DescribeVolumes", 0, func(ctx context.Context) (err error) {
		out, err = rt.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("volume-id"), Values: ids}}})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("describe data volumes: %w", err)
	}
	m := map[string][2]string{}
	for _, v := range out.Volumes {
		st := [2]string{"", string(v.State)}
		for _, a := range v.Attachments {
			st = [2]string{aws.ToString(a.InstanceId), string(a.State)}
		}
		m[aws.ToString(v.VolumeId)] = st
	}
	for _, id := range ids {
		if _, ok := m[id]; !ok {
			return nil, fmt.Errorf("data volume %s: %w", id, ec2ops.ErrNotFound)
		}
	}
	return m, nil
}

// keepVolumes turns DeleteOnTermination off for the devices on instance.
func (rt *runtime) keepVolumes(ctx context.Context, instance string, vols []BlockDevice) error {
	var maps []types.InstanceBlockDeviceMappingSpecification
	for _, b := range vols {
		maps = append(maps, types.InstanceBlockDeviceMappingSpecification{DeviceName: aws.String(b.DeviceName),
			Ebs: &types.EbsInstanceBlockDeviceSpecification{DeleteOnTermination: aws.Bool(false)}})
	}
	if len(maps) == 0 {
		return nil
	}
	err := rt.do(ctx, "ModifyInstanceAttribute", 0, func(ctx context.Context) error {
		_, err := rt.ec2.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(instance), BlockDeviceMappings: maps})
		return err
	})
	if err != nil {
		return fmt.Errorf("keep data volumes of %s on termination: %w", instance, err)
	}
	return nil
}

func (rt *runtime) stopInstance(ctx context.Context, id string) error {
	err := rt.do(ctx, "StopInstances", 1, func(ctx context.Context) error {
		_, err := rt.ec2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}})
		return err
	})
	if err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	return rt.waitState(ctx, id, types.InstanceStateNameStopped)
}

func (rt *runtime) startInstance(ctx context.Context, id string) error {
	err := rt.do(ctx, "StartInstances", 1, func(ctx context.Context) error {
		_, err := rt.ec2.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
		return err
	})
	if err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	return nil
}

// moveVolumes moves vols from instance from to instance to (stopped or
// running), idempotently.
func (rt *runtime) moveVolumes(ctx context.Context, op string, vols []BlockDevice, from, to string) error {
	att, err := rt.attachments(ctx, vols)
	if err != nil {
		return err
	}
	for _, b := range vols {
		a := att[b.VolumeID]
		switch a[0] {
		case to:
		case from, "":
			if a[0] == from {
				err := rt.do(ctx, "DetachVolume", 0, func(ctx context.Context) error {
					_, err := rt.ec2.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(b.VolumeID), InstanceId: aws.String(from)})
					return err
				})
				if err != nil && a[1] != string(types.VolumeAttachmentStateDetaching) {
					return fmt.Errorf("detach %s from %s: %w", b.VolumeID, from, err)
				}
			}
			if err := rt.waitVolume(ctx, b.VolumeID, ""); err != nil {
				return err
			}
			err := rt.do(ctx, "AttachVolume", 0, func(ctx context.Context) error {
				_, err := rt.ec2.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: aws.String(b.VolumeID), InstanceId: aws.String(to), Device: aws.String(b.DeviceName)})
				return err
			})
			if err != nil {
				return fmt.Errorf("attach %s to %s at %s: %w", b.VolumeID, to, b.DeviceName, err)
			}
			rt.emit(ec2ops.Event{Operation: op, Phase: "handover", Resource: b.VolumeID, Message: from + " -> " + to})
		default:
			return fmt.Errorf("data volume %s is attached to %s, neither %s nor %s: not touching it", b.VolumeID, a[0], from, to)
		}
	}
	for _, b := range vols {
		if err := rt.waitVolume(ctx, b.VolumeID, to); err != nil {
			return err
		}
	}
	return nil
}

// handover moves the old instance's data volumes to the replacement: keep
// them on termination, stop the old instance, detach, attach.
func (rt *runtime) handover(ctx context.Context, j *job) error {
	old := j.cur.InstanceID
	att, err := rt.attachments(ctx, j.handover)
	if err != nil {
		return err
	}
	var onOld []BlockDevice
	for _, b := range j.handover {
		if att[b.VolumeID][0] == old {
			onOld = append(onOld, b)
		}
	}
	if err := rt.keepVolumes(ctx, old, onOld); err != nil {
		return err
	}
	if len(onOld) > 0 {
		rt.emit(ec2ops.Event{Operation: j.op, Phase: "handover", Resource: old, Message: "stopping the old instance"})
		if err := rt.stopInstance(ctx, old); err != nil {
			return err
		}
	}
	j.step("handover")
	return rt.moveVolumes(ctx, j.op, j.handover, old, j.newID)
}

// undoHandover moves the volumes back to the old instance and starts it.
// The replacement is stopped first if it holds any of them.
func (rt *runtime) undoHandover(ctx context.Context, j *job) error {
	old := j.cur.InstanceID
	att, err := rt.attachments(ctx, j.handover)
	if err != nil {
		return err
	}
	onNew := false
	for _, b := range j.handover {
		onNew = onNew || att[b.VolumeID][0] == j.newID
	}
	if onNew {
		if err := rt.stopInstance(ctx, j.newID); err != nil {
			return err
		}
		if err := rt.moveVolumes(ctx, j.op, j.handover, j.newID, old); err != nil {
			return err
		}
	}
	return rt.startInstance(ctx, old)
}
