package lifecycle

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
)

// Tags the library puts on the instances it launches. A rerun finds its
// work through them, with or without a journal.
const (
	// TagReplaces names the instance a replacement replaces.
	TagReplaces = "ec2ops:replaces"
	// TagRollout names the rollout (or single replacement) that launched it.
	TagRollout = "ec2ops:rollout"
	// TagSpec is the drift hash of the spec it was launched from.
	TagSpec = "ec2ops:spec"
	// TagHandover lists the data volumes handed over from the old
	// instance ("vol-1:/dev/sdf,vol-2:/dev/sdg"), so that an interrupted
	// handover can be finished or undone from tags alone.
	TagHandover = "ec2ops:handover"

	tagASG = "aws:autoscaling:groupName"
)

// UserData is an instance's user data as EC2 returns it (base64). It is
// never printed, logged or marshalled: String, GoString, LogValue and
// MarshalJSON show only its size. Raw returns the content.
type UserData struct{ b64 string }

// NewUserData returns UserData holding raw (not yet base64-encoded) bytes.
func NewUserData(raw []byte) UserData {
	return UserData{b64: base64.StdEncoding.EncodeToString(raw)}
}

// IsZero reports whether there is no user data.
func (u UserData) IsZero() bool { return u.b64 == "" }

// Raw returns the decoded user data.
func (u UserData) Raw() ([]byte, error) { return base64.StdEncoding.DecodeString(u.b64) }

func (u UserData) size() int { return base64.StdEncoding.DecodedLen(len(u.b64)) }

// String never reveals the content.
func (u UserData) String() string {
	if u.IsZero() {
		return "[no user data]"
	}
	return fmt.Sprintf("[user data redacted, about %d bytes]", u.size())
}

// GoString never reveals the content (%#v).
func (u UserData) GoString() string { return u.String() }

// LogValue never reveals the content (log/slog).
func (u UserData) LogValue() slog.Value { return slog.StringValue(u.String()) }

// MarshalJSON never reveals the content.
func (u UserData) MarshalJSON() ([]byte, error) { return json.Marshal(u.String()) }

// BlockDevice is one EBS volume of an instance, as launched.
type BlockDevice struct {
	DeviceName          string
	VolumeID            string // the current volume; not part of the drift hash
	Root                bool
	VolumeType          string
	SizeGiB             int32
	IOPS                int32
	Throughput          int32
	Encrypted           bool
	KMSKeyID            string
	DeleteOnTermination bool
}

// Metadata is the instance metadata service configuration.
type Metadata struct {
	HTTPTokens   string // "required" (IMDSv2 only) or "optional"
	HTTPEndpoint string
	HopLimit     int32
	InstanceTags string
	IPv6         string
}

// ElasticIP is an Elastic IP address associated with the instance.
type ElasticIP struct{ AllocationID, PublicIP, AssociationID string }

// TargetRegistration is the instance's registration in a target group.
type TargetRegistration struct {
	TargetGroupARN string
	Port           int32
}

// LaunchTemplateRef is the launch template an instance was launched from.
type LaunchTemplateRef struct{ ID, Version string }

// Spec is everything needed to launch an equivalent instance, captured
// from a running one. Hash is its drift hash.
type Spec struct {
	InstanceID            string
	State                 string
	ImageID               string
	InstanceType          string
	Architecture          string
	AvailabilityZone      string
	SubnetID              string
	SecurityGroupIDs      []string // sorted
	IAMInstanceProfileARN string
	KeyName               string
	UserData              UserData
	// Tags are the user tags, without aws:* and ec2ops:* tags.
	Tags                map[string]string
	BlockDevices        []BlockDevice // root first, then by device name
	Metadata            Metadata
	Tenancy             string
	PlacementGroup      string
	PartitionNumber     int32
	EBSOptimized        bool
	Monitoring          bool
	LaunchTemplate      *LaunchTemplateRef
	PrivateIP           string
	SecondaryPrivateIPs int
	NetworkInterfaces   int
	RootDeviceType      string
	// CreditSpecification is the CPU credit option of a burstable
	// performance (T-family) instance, "standard" or "unlimited"
	// (DescribeInstanceCreditSpecifications); empty for other types.
	CreditSpecification string
	ElasticIP           *ElasticIP
	TargetGroups        []TargetRegistration
	// AutoScalingGroup is the group that owns the instance (refused).
	AutoScalingGroup string
	// Replaces and Rollout are the instance's ec2ops:replaces and
	// ec2ops:rollout tags, when the library launched it.
	Replaces, Rollout string
	// userDataKnown reports whether UserData was read (DescribeInstanceAttribute).
	userDataKnown bool
}

// clone returns a deep copy.
func (s *Spec) clone() *Spec {
	c := *s
	c.SecurityGroupIDs = slices.Clone(s.SecurityGroupIDs)
	c.Tags = maps.Clone(s.Tags)
	c.BlockDevices = slices.Clone(s.BlockDevices)
	c.TargetGroups = slices.Clone(s.TargetGroups)
	if s.ElasticIP != nil {
		e := *s.ElasticIP
		c.ElasticIP = &e
	}
	if s.LaunchTemplate != nil {
		l := *s.LaunchTemplate
		c.LaunchTemplate = &l
	}
	return &c
}

// DataVolumes returns the non-root block devices.
func (s *Spec) DataVolumes() []BlockDevice {
	var out []BlockDevice
	for _, b := range s.BlockDevices {
		if !b.Root {
			out = append(out, b)
		}
	}
	return out
}

// canonical is the drift-hash encoding: every field that defines the
// instance, in a fixed order (encoding/json keeps struct order and sorts map
// keys). Identity and placement of the moment (instance ID, volume IDs,
// private IP, Elastic IP, target groups) are not part of it: a replacement
// takes them over.
type canonical struct {
	V               int
	Image           string
	Type            string
	Subnet          string
	Groups          []string
	Profile         string
	Key             string
	UserData        string
	Tags            map[string]string
	Devices         []canonDevice
	Metadata        Metadata
	Tenancy         string
	PlacementGroup  string
	Partition       int32
	EBSOptimized    bool
	Monitoring      bool
	LaunchTemplate  string
	SecondaryIPs    int
	NetworkIfaces   int
	RootDeviceType  string
	AutoScaling     string
	UserDataUnknown bool
	// Credits is omitted when empty, so that the hash of a spec without a
	// credit option (every non-burstable instance) is what it was before
	// the field existed.
	Credits string `json:",omitempty"`
}

type canonDevice struct {
	Device     string
	Root       bool
	Type       string
	Size       int32
	IOPS       int32
	Throughput int32
	Encrypted  bool
	KMS        string
	DOT        bool
}

func (s *Spec) canonical(withUserData bool) canonical {
	c := canonical{V: 1, Image: s.ImageID, Type: s.InstanceType, Subnet: s.SubnetID, Groups: s.SecurityGroupIDs,
		Profile: s.IAMInstanceProfileARN, Key: s.KeyName, Tags: s.Tags, Metadata: s.Metadata, Tenancy: s.Tenancy,
		PlacementGroup: s.PlacementGroup, Partition: s.PartitionNumber, EBSOptimized: s.EBSOptimized,
		Monitoring: s.Monitoring, SecondaryIPs: s.SecondaryPrivateIPs, NetworkIfaces: s.NetworkInterfaces,
		RootDeviceType: s.RootDeviceType, AutoScaling: s.AutoScalingGroup, Credits: s.CreditSpecification}
	if withUserData {
		c.UserData = s.UserData.b64
		c.UserDataUnknown = !s.userDataKnown
	}
	if s.LaunchTemplate != nil {
		c.LaunchTemplate = s.LaunchTemplate.ID + ":" + s.LaunchTemplate.Version
	}
	for _, b := range s.BlockDevices {
		c.Devices = append(c.Devices, canonDevice{b.DeviceName, b.Root, b.VolumeType, b.SizeGiB, b.IOPS, b.Throughput, b.Encrypted, b.KMSKeyID, b.DeleteOnTermination})
	}
	return c
}

func hashOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil { // the canonical types always marshal
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Hash is the drift hash: sha256 over a canonical encoding of every field
// that defines the instance, user data included. Two instances with the
// same Hash are equivalent; an instance whose Hash differs from its
// target's is drifted.
func (s *Spec) Hash() string { return hashOf(s.canonical(true)) }

// hashNoUserData is the hash without user data, to decide drift without
// reading user data when something else already differs.
func (s *Spec) hashNoUserData() string { return hashOf(s.canonical(false)) }

// Diff lists, in words, how want differs from cur (empty: equivalent). It
// never shows user data, only that it changed.
func Diff(cur, want *Spec) []string {
	var out []string
	f := func(name, a, b string) {
		if a != b {
			out = append(out, fmt.Sprintf("%s %s -> %s", name, orNone(a), orNone(b)))
		}
	}
	f("image", cur.ImageID, want.ImageID)
	f("instance type", cur.InstanceType, want.InstanceType)
	f("subnet", cur.SubnetID, want.SubnetID)
	f("security groups", strings.Join(cur.SecurityGroupIDs, ","), strings.Join(want.SecurityGroupIDs, ","))
	f("instance profile", cur.IAMInstanceProfileARN, want.IAMInstanceProfileARN)
	f("key pair", cur.KeyName, want.KeyName)
	if cur.UserData != want.UserData || cur.userDataKnown != want.userDataKnown {
		out = append(out, "user data changed")
	}
	keys := slices.Sorted(maps.Keys(cur.Tags))
	for k := range want.Tags {
		if _, ok := cur.Tags[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		a, aok := cur.Tags[k]
		b, bok := want.Tags[k]
		if a != b || aok != bok {
			out = append(out, fmt.Sprintf("tag %s %s -> %s", k, orNone(a), orNone(b)))
		}
	}
	f("metadata http-tokens", cur.Metadata.HTTPTokens, want.Metadata.HTTPTokens)
	f("metadata endpoint", cur.Metadata.HTTPEndpoint, want.Metadata.HTTPEndpoint)
	f("metadata hop limit", fmt.Sprint(cur.Metadata.HopLimit), fmt.Sprint(want.Metadata.HopLimit))
	f("metadata tags", cur.Metadata.InstanceTags, want.Metadata.InstanceTags)
	f("tenancy", cur.Tenancy, want.Tenancy)
	f("placement group", cur.PlacementGroup, want.PlacementGroup)
	f("ebs optimized", fmt.Sprint(cur.EBSOptimized), fmt.Sprint(want.EBSOptimized))
	f("detailed monitoring", fmt.Sprint(cur.Monitoring), fmt.Sprint(want.Monitoring))
	f("cpu credits", cur.CreditSpecification, want.CreditSpecification)
	if a, b := hashOf(cur.canonical(false).Devices), hashOf(want.canonical(false).Devices); a != b {
		out = append(out, "block devices changed")
	}
	if len(out) == 0 && cur.Hash() != want.Hash() {
		out = append(out, "other launch parameters changed")
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Refusal is why an instance cannot be cloned. It matches
// ec2ops.ErrUnsupported with errors.Is.
type Refusal struct {
	InstanceID string
	Reason     string
	Fix        string
}

func (e *Refusal) Error() string {
	return fmt.Sprintf("instance %s cannot be replaced: %s; %s", e.InstanceID, e.Reason, e.Fix)
}

// Is makes errors.Is(err, ec2ops.ErrUnsupported) true.
func (e *Refusal) Is(target error) bool { return target == ec2ops.ErrUnsupported }

// Refusal returns why the instance cannot be cloned, or nil.
func (s *Spec) Refusal() error {
	switch {
	case s.AutoScalingGroup != "":
		return &Refusal{s.InstanceID, fmt.Sprintf("it belongs to Auto Scaling group %q, which would fight a replacement", s.AutoScalingGroup),
			fmt.Sprintf("replace it with an Instance Refresh of group %q (autoscaling:StartInstanceRefresh)", s.AutoScalingGroup)}
	case s.RootDeviceType == string(types.DeviceTypeInstanceStore):
		return &Refusal{s.InstanceID, "its root device is an instance-store volume, whose data does not survive a replacement",
			"move the data to EBS or S3 and launch from an EBS-backed AMI"}
	case s.Tenancy == string(types.TenancyHost):
		return &Refusal{s.InstanceID, "it runs on a Dedicated Host (tenancy host), whose placement and licensing the library does not clone",
			"replace it manually on the host, or move it to default or dedicated tenancy"}
	case s.NetworkInterfaces > 1:
		return &Refusal{s.InstanceID, fmt.Sprintf("it has %d network interfaces; secondary interfaces keep their identity and cannot be cloned", s.NetworkInterfaces),
			"detach the secondary interfaces and reattach them to the replacement yourself, or use the RootVolume replacer, which keeps them"}
	}
	return nil
}

// Target is what a replacement changes. The zero Target replaces an
// instance by an equivalent one.
type Target struct {
	// ImageID is the AMI to launch. Empty: Image, else the instance's own.
	ImageID string
	// Image resolves the AMI at Plan/Apply time (for example ami's
	// Resolver). Used when ImageID is empty.
	Image func(ctx context.Context) (string, error)
	// InstanceType changes the type. Empty keeps it.
	InstanceType string
	// UserData replaces the user data when set (see NewUserData).
	UserData *UserData
	// Tags are added to (or override) the instance's tags.
	Tags map[string]string
}

// resolveImage returns the image the target names ("" keeps each
// instance's own).
func (t Target) resolveImage(ctx context.Context) (string, error) {
	if t.ImageID != "" || t.Image == nil {
		return t.ImageID, nil
	}
	id, err := t.Image(ctx)
	if err != nil {
		return "", fmt.Errorf("resolve target image: %w", err)
	}
	if id == "" {
		return "", ec2ops.InvalidInput("Target.Image", "", "the resolver returned no image ID", "return an AMI ID (ami-...) or set Target.ImageID")
	}
	return id, nil
}

func (t Target) validate(image string) error {
	if image != "" && !strings.HasPrefix(image, "ami-") {
		return ec2ops.InvalidInput("Target.ImageID", image, "not an AMI ID", "use an ID of the form ami-0123456789abcdef0")
	}
	if t.InstanceType != "" {
		if a, b, ok := strings.Cut(t.InstanceType, "."); !ok || a == "" || b == "" {
			return ec2ops.InvalidInput("Target.InstanceType", t.InstanceType, "not an instance type", "use a type such as m5.large")
		}
	}
	for k := range t.Tags {
		if strings.HasPrefix(strings.ToLower(k), "aws:") || strings.HasPrefix(k, "ec2ops:") {
			return ec2ops.InvalidInput("Target.Tags", k, "the aws: and ec2ops: prefixes are reserved", "use another key")
		}
	}
	return nil
}

// desired applies the target to a captured spec: the spec a replacement is
// launched from. IMDSv2 is required unless allowV1; in handover mode data
// volumes arrive from the old instance with DeleteOnTermination false.
func desired(cur *Spec, t Target, image string, allowV1, handover bool) *Spec {
	w := cur.clone()
	w.InstanceID, w.State, w.PrivateIP, w.ElasticIP, w.TargetGroups = "", "", "", nil, nil
	w.Replaces, w.Rollout = "", ""
	if image != "" {
		w.ImageID = image
	}
	if t.InstanceType != "" {
		w.InstanceType = t.InstanceType
		if !burstable(w.InstanceType) {
			// Only T instances take a credit option.
			w.CreditSpecification = ""
		}
	}
	if t.UserData != nil {
		w.UserData, w.userDataKnown = *t.UserData, true
	}
	for k, v := range t.Tags {
		if w.Tags == nil {
			w.Tags = map[string]string{}
		}
		w.Tags[k] = v
	}
	if !allowV1 {
		w.Metadata.HTTPTokens = string(types.HttpTokensStateRequired)
	}
	for i := range w.BlockDevices {
		w.BlockDevices[i].VolumeID = ""
		if handover && !w.BlockDevices[i].Root {
			w.BlockDevices[i].DeleteOnTermination = false
		}
	}
	return w
}

// maxClientToken is RunInstances' ClientToken limit. Source: RunInstances
// API reference, ClientToken: "up to 64 ASCII characters".
const maxClientToken = 64

// clientToken derives the idempotency token of a launch from the old
// instance, the target spec's hash and the attempt: a retried call (same
// attempt) never launches twice; a new attempt after a failed replacement
// gets a new token.
func clientToken(oldID, specHash string, attempt int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s|%s|%d", oldID, specHash, attempt)))
	t := "ec2ops-" + hex.EncodeToString(sum[:])[:48]
	return t[:min(len(t), maxClientToken)]
}

// runInput builds the RunInstances request that launches w. In handover
// mode the data volumes are left out: they come from the old instance.
func runInput(w *Spec, token string, tags map[string]string, handover bool) *ec2.RunInstancesInput {
	in := &ec2.RunInstancesInput{
		ImageId:      aws.String(w.ImageID),
		InstanceType: types.InstanceType(w.InstanceType),
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
		ClientToken:  aws.String(token),
		EbsOptimized: aws.Bool(w.EBSOptimized),
		Monitoring:   &types.RunInstancesMonitoringEnabled{Enabled: aws.Bool(w.Monitoring)},
	}
	if w.SecondaryPrivateIPs > 0 {
		in.NetworkInterfaces = []types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex: aws.Int32(0), SubnetId: aws.String(w.SubnetID), Groups: slices.Clone(w.SecurityGroupIDs),
			SecondaryPrivateIpAddressCount: aws.Int32(int32(w.SecondaryPrivateIPs)),
		}}
	} else {
		in.SubnetId = aws.String(w.SubnetID)
		in.SecurityGroupIds = slices.Clone(w.SecurityGroupIDs)
	}
	if w.IAMInstanceProfileARN != "" {
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Arn: aws.String(w.IAMInstanceProfileARN)}
	}
	if w.KeyName != "" {
		in.KeyName = aws.String(w.KeyName)
	}
	if w.CreditSpecification != "" {
		in.CreditSpecification = &types.CreditSpecificationRequest{CpuCredits: aws.String(w.CreditSpecification)}
	}
	if !w.UserData.IsZero() {
		in.UserData = aws.String(w.UserData.b64)
	}
	m := w.Metadata
	in.MetadataOptions = &types.InstanceMetadataOptionsRequest{
		HttpTokens:           types.HttpTokensState(m.HTTPTokens),
		HttpEndpoint:         types.InstanceMetadataEndpointState(m.HTTPEndpoint),
		InstanceMetadataTags: types.InstanceMetadataTagsState(m.InstanceTags),
		HttpProtocolIpv6:     types.InstanceMetadataProtocolState(m.IPv6),
	}
	if m.HopLimit > 0 {
		in.MetadataOptions.HttpPutResponseHopLimit = aws.Int32(m.HopLimit)
	}
	if (w.Tenancy != "" && w.Tenancy != string(types.TenancyDefault)) || w.PlacementGroup != "" {
		in.Placement = &types.Placement{Tenancy: types.Tenancy(w.Tenancy)}
		if w.PlacementGroup != "" {
			in.Placement.GroupName = aws.String(w.PlacementGroup)
			if w.PartitionNumber > 0 {
				in.Placement.PartitionNumber = aws.Int32(w.PartitionNumber)
			}
		}
	}
	if w.LaunchTemplate != nil {
		in.LaunchTemplate = &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(w.LaunchTemplate.ID), Version: aws.String(w.LaunchTemplate.Version)}
	}
	for _, b := range w.BlockDevices {
		if handover && !b.Root {
			continue
		}
		e := &types.EbsBlockDevice{DeleteOnTermination: aws.Bool(b.DeleteOnTermination), Encrypted: aws.Bool(b.Encrypted)}
		if b.VolumeType != "" {
			e.VolumeType = types.VolumeType(b.VolumeType)
		}
		if b.SizeGiB > 0 {
			e.VolumeSize = aws.Int32(b.SizeGiB)
		}
		if b.IOPS > 0 && b.VolumeType != string(types.VolumeTypeGp2) && b.VolumeType != string(types.VolumeTypeStandard) {
			e.Iops = aws.Int32(b.IOPS)
		}
		if b.Throughput > 0 && b.VolumeType == string(types.VolumeTypeGp3) {
			e.Throughput = aws.Int32(b.Throughput)
		}
		if b.Encrypted && b.KMSKeyID != "" {
			e.KmsKeyId = aws.String(b.KMSKeyID)
		}
		in.BlockDeviceMappings = append(in.BlockDeviceMappings, types.BlockDeviceMapping{DeviceName: aws.String(b.DeviceName), Ebs: e})
	}
	all := maps.Clone(w.Tags)
	if all == nil {
		all = map[string]string{}
	}
	maps.Copy(all, tags)
	var ts []types.Tag
	for _, k := range slices.Sorted(maps.Keys(all)) {
		ts = append(ts, types.Tag{Key: aws.String(k), Value: aws.String(all[k])})
	}
	in.TagSpecifications = []types.TagSpecification{
		{ResourceType: types.ResourceTypeInstance, Tags: ts},
		{ResourceType: types.ResourceTypeVolume, Tags: ownTags(tags)},
	}
	return in
}

// ownTags returns only the ec2ops:* tags of m, sorted, for volumes.
func ownTags(m map[string]string) []types.Tag {
	var ts []types.Tag
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if strings.HasPrefix(k, "ec2ops:") {
			ts = append(ts, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
		}
	}
	return ts
}
