package cloudsim

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// EBS volumes as resources. An instance's attachments stay in its volumes
// list (instance.go); this file keeps each volume's attributes (size, type,
// IOPS, throughput, encryption, KMS key, AZ), registered lazily from the
// launch request's block device mappings the first time a volume is looked
// at, and the volumes that are not attached to anything. Detach and attach
// take a few seconds (attaching/detaching), as on EBS. A terminated
// instance's volumes are deleted when DeleteOnTermination is set and become
// available otherwise (releaseVolumes, called from terminate).

// Volume error codes. Source: "Error codes for the Amazon EC2 API".
const (
	codeVolumeNotFound     = "InvalidVolume.NotFound"
	codeVolumeMalformed    = "InvalidVolumeID.Malformed"
	codeVolumeInUse        = "VolumeInUse"
	codeVolumeZoneMismatch = "InvalidVolume.ZoneMismatch"
	codeIncorrectStateVol  = "IncorrectState"
	codeAttachmentNotFound = "InvalidAttachment.NotFound"
)

// Attach and detach latencies (EBS attachments typically settle in seconds).
const (
	volAttachLatency = 5 * time.Second
	volDetachLatency = 10 * time.Second
)

// ebsVolume is an EBS volume's attributes and attachment.
type ebsVolume struct {
	id         string
	az         string
	size       int32
	vtype      types.VolumeType
	iops       *int32
	throughput *int32
	encrypted  bool
	kmsKeyID   string
	created    time.Time
	inst       *instance // attached (or attaching/detaching) to; nil when available
	device     string
	attachAt   time.Time
	busy       types.VolumeAttachmentState // attaching or detaching while it lasts; "" when settled
	deleted    bool
	gen        uint64
}

// volumeFor returns the registry entry of in's volume v, creating it from
// the launch request's mapping for v's device on first use (lock held).
func (s *Sim) volumeFor(in *instance, v volume) *ebsVolume {
	if x := s.lc.vols[v.id]; x != nil {
		return x
	}
	x := &ebsVolume{id: v.id, az: in.subnet.az, size: 8, vtype: types.VolumeTypeGp3, created: in.created,
		inst: in, device: v.device, attachAt: in.created}
	for _, m := range in.spec.BlockDeviceMappings {
		if aws.ToString(m.DeviceName) != v.device || m.Ebs == nil {
			continue
		}
		e := m.Ebs
		if e.VolumeSize != nil {
			x.size = *e.VolumeSize
		}
		if e.VolumeType != "" {
			x.vtype = e.VolumeType
		}
		if e.Iops != nil {
			x.iops = ptr(*e.Iops)
		}
		if e.Throughput != nil {
			x.throughput = ptr(*e.Throughput)
		}
		x.encrypted = aws.ToBool(e.Encrypted)
		x.kmsKeyID = aws.ToString(e.KmsKeyId)
	}
	if x.vtype == types.VolumeTypeGp3 && x.iops == nil {
		x.iops, x.throughput = ptr(int32(3000)), ptr(int32(125))
	}
	if x.encrypted && x.kmsKeyID == "" {
		x.kmsKeyID = "arn:aws:kms:" + s.opts.Region + ":" + accountID + ":alias/aws/ebs"
	}
	s.lc.vols[v.id] = x
	return x
}

// syncVolumes registers every attached volume (lock held).
func (s *Sim) syncVolumes() {
	for _, in := range s.ec2.order {
		if in.expired {
			continue
		}
		for _, v := range in.volumes {
			s.volumeFor(in, v)
		}
	}
}

// releaseVolumes runs when in terminates: volumes with DeleteOnTermination
// are deleted, the others become available (lock held).
func (s *Sim) releaseVolumes(in *instance) {
	for _, v := range in.volumes {
		x := s.volumeFor(in, v)
		x.gen++
		x.inst, x.device, x.busy = nil, "", ""
		if v.deleteOnTermination {
			x.deleted = true
			delete(s.lc.vols, x.id)
		}
	}
	in.volumes = nil
}

func (s *Sim) lookupVolume(id string) (*ebsVolume, error) {
	if !validID(id, "vol-") {
		return nil, errMalformed(codeVolumeMalformed, id, "vol-...")
	}
	s.syncVolumes()
	x := s.lc.vols[id]
	if x == nil || x.deleted {
		return nil, apiError(codeVolumeNotFound, "The volume '%s' does not exist.", id)
	}
	return x, nil
}

func (x *ebsVolume) state() types.VolumeState {
	if x.inst != nil {
		return types.VolumeStateInUse
	}
	return types.VolumeStateAvailable
}

func (s *Sim) deleteOnTermination(x *ebsVolume) bool {
	if x.inst == nil {
		return false
	}
	for _, v := range x.inst.volumes {
		if v.id == x.id {
			return v.deleteOnTermination
		}
	}
	return false
}

func (s *Sim) sdkVolume(x *ebsVolume) types.Volume {
	out := types.Volume{
		AvailabilityZone:   ptr(x.az),
		CreateTime:         ptr(x.created),
		Encrypted:          ptr(x.encrypted),
		Iops:               x.iops,
		Size:               ptr(x.size),
		SnapshotId:         ptr(""),
		State:              x.state(),
		Throughput:         x.throughput,
		VolumeId:           ptr(x.id),
		VolumeType:         x.vtype,
		MultiAttachEnabled: ptr(false),
		Attachments:        []types.VolumeAttachment{},
	}
	if x.kmsKeyID != "" {
		out.KmsKeyId = ptr(x.kmsKeyID)
	}
	if x.inst != nil {
		st := x.busy
		if st == "" {
			st = types.VolumeAttachmentStateAttached
		}
		out.Attachments = append(out.Attachments, types.VolumeAttachment{
			AttachTime: ptr(x.attachAt), DeleteOnTermination: ptr(s.deleteOnTermination(x)), Device: ptr(x.device),
			InstanceId: ptr(x.inst.id), State: st, VolumeId: ptr(x.id),
		})
	}
	return out
}

func volumeFields(s *Sim) filterFields[*ebsVolume] {
	one := func(f func(x *ebsVolume) string) func(*ebsVolume) []string {
		return func(x *ebsVolume) []string {
			if v := f(x); v != "" {
				return []string{v}
			}
			return nil
		}
	}
	attached := func(f func(x *ebsVolume) string) func(*ebsVolume) []string {
		return one(func(x *ebsVolume) string {
			if x.inst == nil {
				return ""
			}
			return f(x)
		})
	}
	return filterFields[*ebsVolume]{fields: map[string]func(*ebsVolume) []string{
		"volume-id":              one(func(x *ebsVolume) string { return x.id }),
		"status":                 one(func(x *ebsVolume) string { return string(x.state()) }),
		"availability-zone":      one(func(x *ebsVolume) string { return x.az }),
		"volume-type":            one(func(x *ebsVolume) string { return string(x.vtype) }),
		"encrypted":              one(func(x *ebsVolume) string { return strconv.FormatBool(x.encrypted) }),
		"size":                   one(func(x *ebsVolume) string { return strconv.Itoa(int(x.size)) }),
		"attachment.instance-id": attached(func(x *ebsVolume) string { return x.inst.id }),
		"attachment.device":      attached(func(x *ebsVolume) string { return x.device }),
		"attachment.status": attached(func(x *ebsVolume) string {
			if x.busy != "" {
				return string(x.busy)
			}
			return string(types.VolumeAttachmentStateAttached)
		}),
		"attachment.delete-on-termination": attached(func(x *ebsVolume) string {
			return strconv.FormatBool(s.deleteOnTermination(x))
		}),
	}}
}

// DescribeVolumes describes EBS volumes by ID (every ID must exist) or all
// of them, with the filters volume-id, status, availability-zone,
// volume-type, encrypted, size and attachment.instance-id / device /
// status / delete-on-termination. It does not paginate.
func (c *EC2) DescribeVolumes(ctx context.Context, params *ec2.DescribeVolumesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error) {
	if params == nil {
		params = &ec2.DescribeVolumesInput{}
	}
	s := c.sim
	var out *ec2.DescribeVolumesOutput
	err := s.call(ctx, svcEC2, "DescribeVolumes", nil, func(now time.Time) error {
		fs, err := compileFilters(params.Filters, volumeFields(s))
		if err != nil {
			return err
		}
		s.syncVolumes()
		var sel []*ebsVolume
		if len(params.VolumeIds) > 0 {
			var missing []string
			for _, id := range params.VolumeIds {
				x, err := s.lookupVolume(id)
				if err != nil {
					if !validID(id, "vol-") {
						return err
					}
					missing = append(missing, id)
					continue
				}
				sel = append(sel, x)
			}
			if len(missing) > 0 {
				return apiError(codeVolumeNotFound, "The volume '%s' does not exist.", strings.Join(missing, ", "))
			}
		} else {
			seen := map[string]bool{}
			for _, in := range s.ec2.order {
				for _, v := range in.volumes {
					if x := s.lc.vols[v.id]; x != nil && !seen[x.id] {
						seen[x.id] = true
						sel = append(sel, x)
					}
				}
			}
			var avail []*ebsVolume
			for _, x := range s.lc.vols {
				if !seen[x.id] && x.inst == nil && !x.deleted {
					avail = append(avail, x)
				}
			}
			slices.SortFunc(avail, func(a, b *ebsVolume) int { return strings.Compare(a.id, b.id) })
			sel = append(sel, avail...)
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		out = &ec2.DescribeVolumesOutput{Volumes: []types.Volume{}}
		for _, x := range sel {
			if matchAll(fs, x) {
				out.Volumes = append(out.Volumes, s.sdkVolume(x))
			}
		}
		return nil
	})
	return out, err
}

// DetachVolume starts detaching a volume: "detaching", then available after
// a few seconds. The root volume of an instance that is not stopped cannot
// be detached.
func (c *EC2) DetachVolume(ctx context.Context, params *ec2.DetachVolumeInput, optFns ...func(*ec2.Options)) (*ec2.DetachVolumeOutput, error) {
	if params == nil {
		params = &ec2.DetachVolumeInput{}
	}
	s := c.sim
	var out *ec2.DetachVolumeOutput
	err := s.call(ctx, svcEC2, "DetachVolume", nil, func(now time.Time) error {
		id := aws.ToString(params.VolumeId)
		if id == "" {
			return errMissing("VolumeId")
		}
		x, err := s.lookupVolume(id)
		if err != nil {
			return err
		}
		in := x.inst
		if in == nil || x.busy == types.VolumeAttachmentStateDetaching {
			return apiError(codeIncorrectStateVol, "Volume '%s' is in the 'available' state.", id)
		}
		if want := aws.ToString(params.InstanceId); want != "" && want != in.id {
			return apiError(codeAttachmentNotFound, "Volume '%s' is not attached to instance '%s'.", id, want)
		}
		if x.device == rootDevice && in.state != types.InstanceStateNameStopped {
			return apiError(codeIncorrectState, "Unable to detach root volume '%s' from instance '%s': the instance must be stopped.", id, in.id)
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		x.busy = types.VolumeAttachmentStateDetaching
		x.gen++
		gen := x.gen
		out = &ec2.DetachVolumeOutput{AttachTime: ptr(x.attachAt), Device: ptr(x.device), InstanceId: ptr(in.id),
			State: types.VolumeAttachmentStateDetaching, VolumeId: ptr(id), DeleteOnTermination: ptr(s.deleteOnTermination(x))}
		s.schedule(now.Add(s.scaled(volDetachLatency)), func(time.Time) {
			if x.gen != gen || x.inst != in {
				return
			}
			kept := in.volumes[:0]
			for _, v := range in.volumes {
				if v.id != x.id {
					kept = append(kept, v)
				}
			}
			in.volumes = kept
			x.inst, x.device, x.busy = nil, "", ""
		})
		return nil
	})
	return out, err
}

// AttachVolume attaches an available volume to a running or stopped
// instance in the same AZ at a free device: "attaching", then attached
// after a few seconds. Volumes attached after launch have
// DeleteOnTermination false, as on EC2.
func (c *EC2) AttachVolume(ctx context.Context, params *ec2.AttachVolumeInput, optFns ...func(*ec2.Options)) (*ec2.AttachVolumeOutput, error) {
	if params == nil {
		params = &ec2.AttachVolumeInput{}
	}
	s := c.sim
	var out *ec2.AttachVolumeOutput
	err := s.call(ctx, svcEC2, "AttachVolume", nil, func(now time.Time) error {
		id, dev := aws.ToString(params.VolumeId), aws.ToString(params.Device)
		if id == "" {
			return errMissing("VolumeId")
		}
		if dev == "" {
			return errMissing("Device")
		}
		x, err := s.lookupVolume(id)
		if err != nil {
			return err
		}
		ins, err := s.lookupInstances(now, []string{aws.ToString(params.InstanceId)})
		if err != nil {
			return err
		}
		in := ins[0]
		if x.inst != nil {
			return apiError(codeVolumeInUse, "%s is already attached to an instance", id)
		}
		switch in.state {
		case types.InstanceStateNameRunning, types.InstanceStateNameStopped:
		default:
			return apiError(codeIncorrectState, "Instance '%s' is not 'running' or 'stopped'.", in.id)
		}
		if x.az != in.subnet.az {
			return apiError(codeVolumeZoneMismatch, "The volume '%s' is not in the same availability zone as instance '%s'", id, in.id)
		}
		for _, v := range in.volumes {
			if v.device == dev {
				return errInvalidValue("device", dev, "Attachment point "+dev+" is already in use")
			}
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		in.volumes = append(in.volumes, volume{device: dev, id: id})
		x.inst, x.device, x.attachAt, x.busy = in, dev, now, types.VolumeAttachmentStateAttaching
		x.gen++
		gen := x.gen
		s.schedule(now.Add(s.scaled(volAttachLatency)), func(time.Time) {
			if x.gen == gen {
				x.busy = ""
			}
		})
		out = &ec2.AttachVolumeOutput{AttachTime: ptr(now), Device: ptr(dev), InstanceId: ptr(in.id),
			State: types.VolumeAttachmentStateAttaching, VolumeId: ptr(id)}
		return nil
	})
	return out, err
}

// ModifyInstanceAttribute changes DeleteOnTermination of attached volumes
// (BlockDeviceMappings) and the instance type (InstanceType, or Attribute
// instanceType with Value), which EC2 allows only on a stopped instance.
// Other attributes answer InvalidParameterValue (not modelled).
func (c *EC2) ModifyInstanceAttribute(ctx context.Context, params *ec2.ModifyInstanceAttributeInput, optFns ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error) {
	if params == nil {
		params = &ec2.ModifyInstanceAttributeInput{}
	}
	s := c.sim
	err := s.call(ctx, svcEC2, "ModifyInstanceAttribute", nil, func(now time.Time) error {
		ins, err := s.lookupInstances(now, []string{aws.ToString(params.InstanceId)})
		if err != nil {
			return err
		}
		in := ins[0]
		itype := ""
		if params.InstanceType != nil {
			itype = aws.ToString(params.InstanceType.Value)
		} else if params.Attribute == types.InstanceAttributeNameInstanceType {
			itype = aws.ToString(params.Value)
		} else if params.Attribute != "" || len(params.BlockDeviceMappings) == 0 {
			return errInvalidValue("Attribute", params.Attribute, "The simulator models blockDeviceMapping and instanceType only.")
		}
		if itype != "" {
			if a, b, ok := strings.Cut(itype, "."); !ok || a == "" || b == "" {
				return apiError(codeInvalidParameter, "Invalid value '%s' for InstanceType.", itype)
			}
			if in.state != types.InstanceStateNameStopped {
				return apiError(codeIncorrectState, "The instance '%s' is not in the 'stopped' state.", in.id)
			}
		}
		idx := make([]int, len(params.BlockDeviceMappings))
		for i, m := range params.BlockDeviceMappings {
			idx[i] = -1
			for j, v := range in.volumes {
				if v.device == aws.ToString(m.DeviceName) {
					idx[i] = j
				}
			}
			if idx[i] < 0 || m.Ebs == nil {
				return errInvalidValue("BlockDeviceMapping", aws.ToString(m.DeviceName), "No EBS volume is attached at this device.")
			}
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		for i, m := range params.BlockDeviceMappings {
			if m.Ebs.DeleteOnTermination != nil {
				in.volumes[idx[i]].deleteOnTermination = *m.Ebs.DeleteOnTermination
			}
		}
		if itype != "" {
			in.itype = itype
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ec2.ModifyInstanceAttributeOutput{}, nil
}

// SetAutoScalingGroup gives instance id the aws:autoscaling:groupName
// system tag, as Auto Scaling does for the instances it launches (a test
// helper: CreateTags refuses aws: keys). It reports whether the instance
// exists.
func (s *Sim) SetAutoScalingGroup(id, group string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.advance()
	in := s.ec2.byID[id]
	if in == nil {
		return false
	}
	tags := cloneMap(in.sysTags) // the map may be shared by a reservation
	tags["aws:autoscaling:groupName"] = group
	in.sysTags = tags
	in.tagsChanged(s, now)
	return true
}
