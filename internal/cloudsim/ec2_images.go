package cloudsim

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// The image model: AMIs and their EBS snapshots, per Region.
//
// A Sim serves one Region (Options.Region, the "home" Region), but AMIs are
// a regional resource that CopyImage moves between Regions, so the image
// registry has a Region dimension: every image and snapshot belongs to one
// Region, and (*Sim).EC2In(region) returns an EC2 client bound to another
// Region of the same Sim. Image and snapshot calls (DescribeImages,
// CopyImage, DeregisterImage, ...) through that client see that Region's
// images only. Everything else (instances, launch templates, tags by ID) is
// not regional in the simulator: those calls act on the Sim's one instance
// model whatever the client's Region, and IDs are unique across Regions.
//
// RunInstances validates its AMI against the home Region's registry, but
// only once the Sim has an image registry: until the first image is
// registered (CreateImage, CopyImage, AddImage), any well-formed AMI ID
// launches, so tests that launch arbitrary AMI IDs keep working. Set
// ImageOptions.Strict to validate from the start.

// Error codes of the image model. Source: "Error codes for the Amazon EC2
// API" (EC2 API Reference).
const (
	codeAMINotFound        = "InvalidAMIID.NotFound"
	codeAMIUnavailable     = "InvalidAMIID.Unavailable"
	codeAMINameDuplicate   = "InvalidAMIName.Duplicate"
	codeAMINameMalformed   = "InvalidAMIName.Malformed"
	codeSnapshotNotFound   = "InvalidSnapshot.NotFound"
	codeSnapshotMalformed  = "InvalidSnapshotID.Malformed"
	codeSnapshotInUse      = "InvalidSnapshot.InUse"
	codeImageState         = "IncorrectState"
	codeAuthFailure        = "AuthFailure"
	codeInvalidKMSKey      = "InvalidKMSKey.NotFound"
	codeInvalidUserID      = "InvalidUserID.Malformed"
	codeInvalidOrgARN      = "InvalidOrganizationARN"
	codeInvalidOUARN       = "InvalidOrganizationalUnitARN"
	amazonOwnerID          = "137112412989" // the owner of Amazon Linux and other "amazon" images
	defaultRootVolumeGiB   = 8
	maxImageNameLen        = 128
	minImageNameLen        = 3
	maxDeprecationInFuture = 10 * 365 * 24 * time.Hour
)

// ImageOptions configures the image model. Zero values take the defaults.
//
// AWS publishes no latency for CreateImage or CopyImage beyond "several
// minutes" and "longer for large volumes" (AWS-FACTS.md "Latencies"; the
// first snapshot of a volume copies every written block). The model is a
// base latency plus a per-GiB term over the image's total volume size, so a
// 100 GiB image takes about 20 minutes longer than an 8 GiB one.
type ImageOptions struct {
	// Strict validates every AMI ID of RunInstances against the registry
	// from the start (InvalidAMIID.NotFound for an unknown image). By
	// default validation starts with the first registered image.
	Strict bool
	// Create is the base latency of CreateImage, pending -> available.
	// Default 2m..4m.
	Create Dist
	// CreatePerGiB is added per GiB of total volume size. Default 10s.
	CreatePerGiB time.Duration
	// Copy is the base latency of CopyImage. Default 5m..10m.
	Copy Dist
	// CopyPerGiB is added per GiB for a copy. Default 15s.
	CopyPerGiB time.Duration
	// FailRate is the share of new images (CreateImage and CopyImage)
	// that end "failed" instead of "available".
	FailRate float64
}

func (o ImageOptions) withDefaults() ImageOptions {
	o.Create = o.Create.orDefault(2*time.Minute, 4*time.Minute)
	if o.CreatePerGiB == 0 {
		o.CreatePerGiB = 10 * time.Second
	}
	o.Copy = o.Copy.orDefault(5*time.Minute, 10*time.Minute)
	if o.CopyPerGiB == 0 {
		o.CopyPerGiB = 15 * time.Second
	}
	return o
}

// imageState is the image, snapshot, launch template, Auto Scaling and
// parameter registry (guarded by Sim.mu).
type imageState struct {
	opts       ImageOptions
	registered bool // an image was registered: RunInstances validates AMIs
	byID       map[string]*image
	order      []*image // creation order (ascending seq)
	seq        uint64
	snaps      map[string]*snapshot
	snapOrder  []*snapshot
	copyTokens map[string]*image // region + "\x00" + ClientToken
	fields     filterFields[*image]
	snapFields filterFields[*snapshot]
	deregInUse []string               // images deregistered while something referenced them
	byImage    map[string][]*instance // instances by image (imageInUse), built at launch count byImageSeq
	byImageSeq uint64

	lt     launchTemplateState
	asg    autoScalingState
	params map[string]*parameter
}

// image is one AMI.
type image struct {
	seq            uint64
	id, region     string
	owner, alias   string
	name, desc     string
	state          types.ImageState
	stateReason    string
	created        time.Time
	arch           types.ArchitectureValues
	virt           types.VirtualizationType
	platform       types.PlatformValues
	imds           types.ImdsSupportValues
	devices        []imageDevice
	tags           map[string]string
	public         bool
	users          map[string]bool // launch permissions by account
	orgs, ous      map[string]bool
	deprecateAt    time.Time
	lastLaunched   time.Time
	sourceInstance string
	sourceImage    string
	sourceRegion   string
	deregistered   bool
}

// imageDevice is one block device mapping of an image.
type imageDevice struct {
	device              string
	snapshotID          string
	size                int32
	volumeType          types.VolumeType
	encrypted           bool
	kmsKeyID            string
	deleteOnTermination bool
}

// snapshot is an EBS snapshot.
type snapshot struct {
	seq         uint64
	id, region  string
	owner       string
	volumeID    string
	desc        string
	size        int32
	state       types.SnapshotState
	started     time.Time
	completed   time.Time
	encrypted   bool
	kmsKeyID    string
	tags        map[string]string
	createPerms map[string]bool // account IDs, or "all"
	deleted     bool
}

func (s *Sim) initImages() {
	st := &s.img
	st.opts = s.opts.Images.withDefaults()
	st.byID = map[string]*image{}
	st.snaps = map[string]*snapshot{}
	st.copyTokens = map[string]*image{}
	st.fields = s.imageFilterFields()
	st.snapFields = snapshotFilterFields()
	st.params = map[string]*parameter{}
	s.initLaunchTemplates()
	s.initAutoScaling()
	s.ec2.tagKinds = append(s.ec2.tagKinds, s.imageTagKind(), s.snapshotTagKind())
}

// EC2In returns an EC2 client of s bound to region: its image and snapshot
// calls see that Region's registry (see the image model above). It is how
// a test gives CopyImage a destination client. An empty region is the
// Sim's own Region.
func (s *Sim) EC2In(region string) *EC2 {
	return &EC2{sim: s, region: region}
}

// regionOf is the Region of c's image calls.
func (c *EC2) regionOf() string {
	if c.region != "" {
		return c.region
	}
	return c.sim.opts.Region
}

// imageRand draws the latency and failure of one image.
func (s *Sim) imageLatency(id string, base Dist, perGiB time.Duration, gib int64) (time.Duration, bool) {
	r := s.resourceRand(id)
	failed := r.Float64() < s.img.opts.FailRate
	d := s.draw(r, base) + s.scaled(time.Duration(gib)*perGiB)
	return d, failed
}

// imageNameRE is what AWS accepts in an AMI name: 3-128 characters among
// letters, digits, ( ) [ ] space . / - ' @ _. Source: CreateImage API
// reference, Name.
var imageNameRE = regexp.MustCompile(`^[A-Za-z0-9()\[\] ./\-'@_]{3,128}$`)

func validImageName(name string) error {
	if name == "" {
		return errMissing("Name")
	}
	if !imageNameRE.MatchString(name) {
		return apiError(codeAMINameMalformed, "AMI names must be between %d and %d characters long, and may contain letters, numbers, '(', ')', '.', '-', '/', '_', '[', ']', ' ', '@' and \"'\": %q", minImageNameLen, maxImageNameLen, name)
	}
	return nil
}

// liveImage returns the registered image id in region visible to the
// caller, or nil.
func (s *Sim) liveImage(region, id string) *image {
	im := s.img.byID[id]
	if im == nil || im.deregistered || im.region != region || !im.visibleToSelf() {
		return nil
	}
	return im
}

func (im *image) visibleToSelf() bool {
	return im.owner == accountID || im.public || im.users[accountID]
}

func (im *image) deprecated(now time.Time) bool {
	return !im.deprecateAt.IsZero() && !now.Before(im.deprecateAt)
}

func (im *image) totalGiB() int64 {
	var n int64
	for _, d := range im.devices {
		n += int64(d.size)
	}
	return n
}

func (s *Sim) nameTaken(region, owner, name string) *image {
	for _, im := range s.img.order {
		if !im.deregistered && im.region == region && im.owner == owner && im.name == name {
			return im
		}
	}
	return nil
}

func (s *Sim) newImage(now time.Time, region string) *image {
	s.img.seq++
	im := &image{seq: s.img.seq, id: s.newID("ami-"), region: region, owner: accountID, created: now,
		state: types.ImageStatePending, virt: types.VirtualizationTypeHvm, arch: types.ArchitectureValuesX8664,
		tags: map[string]string{}, users: map[string]bool{}, orgs: map[string]bool{}, ous: map[string]bool{}}
	s.img.byID[im.id] = im
	s.img.order = append(s.img.order, im)
	s.img.registered = true
	return im
}

func (s *Sim) newSnapshot(now time.Time, region, volumeID string, size int32, encrypted bool, kms string) *snapshot {
	s.img.seq++
	sn := &snapshot{seq: s.img.seq, id: s.newID("snap-"), region: region, owner: accountID, volumeID: volumeID,
		size: size, state: types.SnapshotStatePending, started: now, encrypted: encrypted, kmsKeyID: kms,
		tags: map[string]string{}, createPerms: map[string]bool{}}
	s.img.snaps[sn.id] = sn
	s.img.snapOrder = append(s.img.snapOrder, sn)
	return sn
}

// imageTags splits TagSpecifications of CreateImage and CopyImage into
// image and snapshot tags.
func imageTags(specs []types.TagSpecification) (img, snap map[string]string, err error) {
	img, snap = map[string]string{}, map[string]string{}
	for _, ts := range specs {
		var dst map[string]string
		switch ts.ResourceType {
		case types.ResourceTypeImage:
			dst = img
		case types.ResourceTypeSnapshot:
			dst = snap
		default:
			return nil, nil, apiError(codeInvalidParameter, "'%s' is not a valid taggable resource type for this operation.", ts.ResourceType)
		}
		kv, err := validateTags(ts.Tags)
		if err != nil {
			return nil, nil, err
		}
		for _, t := range kv {
			dst[t.key] = t.value
		}
	}
	if len(img) > maxTagsPerResource || len(snap) > maxTagsPerResource {
		return nil, nil, errTagLimit()
	}
	return img, snap, nil
}

// finishImage schedules pending -> available (or failed) for im and its
// snapshots after d.
func (s *Sim) finishImage(at time.Time, im *image, d time.Duration, failed bool) {
	s.schedule(at.Add(d), func(due time.Time) {
		for _, dev := range im.devices {
			if sn := s.img.snaps[dev.snapshotID]; sn != nil && sn.state == types.SnapshotStatePending {
				sn.state, sn.completed = types.SnapshotStateCompleted, due
			}
		}
		if im.deregistered || im.state != types.ImageStatePending {
			return
		}
		if failed {
			im.state, im.stateReason = types.ImageStateFailed, "Client.InternalError: image creation failed"
			return
		}
		im.state = types.ImageStateAvailable
	})
}

// CreateImage creates an EBS-backed AMI from a running or stopped instance:
// one snapshot per attached EBS volume (a mapping in BlockDeviceMappings
// may resize a volume or leave it out with NoDevice), tags from
// TagSpecifications on the image and the snapshots, and, unless NoReboot,
// a reboot of a running instance (its status check runs again). The image
// is pending until ImageOptions.Create + CreatePerGiB x size has passed.
// Names are unique per owner and Region (InvalidAMIName.Duplicate).
func (c *EC2) CreateImage(ctx context.Context, params *ec2.CreateImageInput, optFns ...func(*ec2.Options)) (*ec2.CreateImageOutput, error) {
	if params == nil {
		params = &ec2.CreateImageInput{}
	}
	s, region := c.sim, c.regionOf()
	var out *ec2.CreateImageOutput
	err := s.call(ctx, svcEC2, "CreateImage", nil, func(now time.Time) error {
		id := aws.ToString(params.InstanceId)
		if id == "" {
			return errMissing("InstanceId")
		}
		if err := validImageName(aws.ToString(params.Name)); err != nil {
			return err
		}
		ins, err := s.lookupInstances(now, []string{id})
		if err != nil {
			return err
		}
		in := ins[0]
		if in.state != types.InstanceStateNameRunning && in.state != types.InstanceStateNameStopped {
			return apiError(codeImageState, "Instance '%s' is not in a state from which it can be imaged.", id)
		}
		if s.nameTaken(region, accountID, aws.ToString(params.Name)) != nil {
			return apiError(codeAMINameDuplicate, "AMI name %s is already in use by AMI %s", aws.ToString(params.Name), s.nameTaken(region, accountID, aws.ToString(params.Name)).id)
		}
		imgTags, snapTags, err := imageTags(params.TagSpecifications)
		if err != nil {
			return err
		}
		devs, err := s.instanceDevices(in, params.BlockDeviceMappings)
		if err != nil {
			return err
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		im := s.newImage(now, region)
		im.name, im.desc = aws.ToString(params.Name), aws.ToString(params.Description)
		im.arch = architecture(in.itype)
		im.sourceInstance = in.id
		if src := s.img.byID[in.imageID]; src != nil {
			im.platform, im.imds = src.platform, src.imds
		}
		maps.Copy(im.tags, imgTags)
		for _, d := range devs {
			sn := s.newSnapshot(now, region, d.volID, d.size, d.encrypted, d.kms)
			sn.desc = fmt.Sprintf("Created by CreateImage(%s) for %s", in.id, im.id)
			maps.Copy(sn.tags, snapTags)
			im.devices = append(im.devices, imageDevice{device: d.device, snapshotID: sn.id, size: d.size,
				volumeType: d.volType, encrypted: d.encrypted, kmsKeyID: d.kms, deleteOnTermination: d.deleteOnTermination})
		}
		d, failed := s.imageLatency(im.id, s.img.opts.Create, s.img.opts.CreatePerGiB, im.totalGiB())
		s.finishImage(now, im, d, failed)
		if !aws.ToBool(params.NoReboot) && in.state == types.InstanceStateNameRunning {
			s.reboot(now, in)
		}
		out = &ec2.CreateImageOutput{ImageId: ptr(im.id)}
		return nil
	})
	return out, err
}

type instanceDevice struct {
	device, volID       string
	size                int32
	volType             types.VolumeType
	encrypted           bool
	kms                 string
	deleteOnTermination bool
}

// instanceDevices returns the volumes CreateImage snapshots: the instance's
// volumes with the sizes of its launch request (the root volume: the
// source image's root size, else 8 GiB), changed by the CreateImage
// mappings.
func (s *Sim) instanceDevices(in *instance, overrides []types.BlockDeviceMapping) ([]instanceDevice, error) {
	launch := map[string]*types.EbsBlockDevice{}
	for _, m := range in.spec.BlockDeviceMappings {
		if m.Ebs != nil {
			launch[aws.ToString(m.DeviceName)] = m.Ebs
		}
	}
	var out []instanceDevice
	for _, v := range in.volumes {
		d := instanceDevice{device: v.device, volID: v.id, size: defaultRootVolumeGiB, volType: types.VolumeTypeGp3,
			deleteOnTermination: v.deleteOnTermination}
		if src := s.img.byID[in.imageID]; src != nil && v.device == rootDevice && len(src.devices) > 0 {
			d.size, d.volType, d.encrypted, d.kms = src.devices[0].size, src.devices[0].volumeType, src.devices[0].encrypted, src.devices[0].kmsKeyID
		}
		if e := launch[v.device]; e != nil {
			if e.VolumeSize != nil {
				d.size = *e.VolumeSize
			}
			if e.VolumeType != "" {
				d.volType = e.VolumeType
			}
			if aws.ToBool(e.Encrypted) {
				d.encrypted, d.kms = true, cmp.Or(aws.ToString(e.KmsKeyId), "alias/aws/ebs")
			}
		}
		out = append(out, d)
	}
	for _, m := range overrides {
		dev := aws.ToString(m.DeviceName)
		i := slices.IndexFunc(out, func(d instanceDevice) bool { return d.device == dev })
		if i < 0 {
			continue // a new empty volume or ephemeral mapping: nothing to snapshot
		}
		if m.NoDevice != nil {
			if dev == rootDevice {
				return nil, apiError(codeInvalidParameter, "The root device %s cannot be excluded.", dev)
			}
			out = slices.Delete(out, i, i+1)
			continue
		}
		if m.Ebs != nil && m.Ebs.VolumeSize != nil {
			if *m.Ebs.VolumeSize < out[i].size {
				return nil, errInvalidValue("VolumeSize", *m.Ebs.VolumeSize, "Volume size cannot be smaller than the snapshot size.")
			}
			out[i].size = *m.Ebs.VolumeSize
		}
	}
	return out, nil
}

// CopyImage copies an available AMI from SourceRegion into the client's
// Region: new snapshots (encrypted if the source is or Encrypted is set,
// with KmsKeyId, whose ARN must name the destination Region), the source's
// user tags when CopyImageTags, TagSpecifications, and ClientToken
// idempotency (same token and parameters: the same image ID again). The
// copy is pending for ImageOptions.Copy + CopyPerGiB x size.
func (c *EC2) CopyImage(ctx context.Context, params *ec2.CopyImageInput, optFns ...func(*ec2.Options)) (*ec2.CopyImageOutput, error) {
	if params == nil {
		params = &ec2.CopyImageInput{}
	}
	s, region := c.sim, c.regionOf()
	var out *ec2.CopyImageOutput
	err := s.call(ctx, svcEC2, "CopyImage", nil, func(now time.Time) error {
		srcID, srcRegion := aws.ToString(params.SourceImageId), aws.ToString(params.SourceRegion)
		switch {
		case srcID == "":
			return errMissing("SourceImageId")
		case srcRegion == "":
			return errMissing("SourceRegion")
		}
		if err := validImageName(aws.ToString(params.Name)); err != nil {
			return err
		}
		if !validID(srcID, "ami-") {
			return errMalformed(codeAMIMalformed, srcID, "ami-...")
		}
		token := aws.ToString(params.ClientToken)
		if len(token) > maxClientToken {
			return errInvalidValue("ClientToken", token, fmt.Sprintf("It must be at most %d characters.", maxClientToken))
		}
		if token != "" {
			if prev := s.img.copyTokens[region+"\x00"+token]; prev != nil {
				if prev.sourceImage != srcID || prev.sourceRegion != srcRegion || prev.name != aws.ToString(params.Name) {
					return apiError(codeIdempotentMismatch, "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
				}
				if aws.ToBool(params.DryRun) {
					return errDryRun()
				}
				out = &ec2.CopyImageOutput{ImageId: ptr(prev.id)}
				return nil
			}
		}
		src := s.liveImage(srcRegion, srcID)
		if src == nil {
			return apiError(codeAMINotFound, "The image id '[%s]' does not exist", srcID)
		}
		if src.state != types.ImageStateAvailable {
			return apiError(codeImageState, "Image %s is not in a state from which it can be copied: %s", srcID, src.state)
		}
		kms := aws.ToString(params.KmsKeyId)
		if kms != "" && !aws.ToBool(params.Encrypted) {
			return apiError(codeInvalidCombination, "KmsKeyId requires Encrypted to be true.")
		}
		if kms != "" {
			if err := validKMSKey(kms, region); err != nil {
				return err
			}
		}
		if s.nameTaken(region, accountID, aws.ToString(params.Name)) != nil {
			return apiError(codeAMINameDuplicate, "AMI name %s is already in use", aws.ToString(params.Name))
		}
		imgTags, snapTags, err := imageTags(params.TagSpecifications)
		if err != nil {
			return err
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		im := s.newImage(now, region)
		im.name, im.desc = aws.ToString(params.Name), aws.ToString(params.Description)
		im.arch, im.virt, im.platform, im.imds = src.arch, src.virt, src.platform, src.imds
		im.sourceImage, im.sourceRegion = src.id, src.region
		if aws.ToBool(params.CopyImageTags) {
			maps.Copy(im.tags, src.tags)
		}
		maps.Copy(im.tags, imgTags)
		for _, d := range src.devices {
			enc, key := d.encrypted, d.kmsKeyID
			if aws.ToBool(params.Encrypted) {
				enc, key = true, cmp.Or(kms, key, "alias/aws/ebs")
			}
			sn := s.newSnapshot(now, region, "vol-ffffffff", d.size, enc, key)
			sn.desc = fmt.Sprintf("Copied for DestinationAmi %s from SourceAmi %s for SourceSnapshot %s.", im.id, src.id, d.snapshotID)
			maps.Copy(sn.tags, snapTags)
			nd := d
			nd.snapshotID, nd.encrypted, nd.kmsKeyID = sn.id, enc, key
			im.devices = append(im.devices, nd)
		}
		if token != "" {
			s.img.copyTokens[region+"\x00"+token] = im
		}
		d, failed := s.imageLatency(im.id, s.img.opts.Copy, s.img.opts.CopyPerGiB, im.totalGiB())
		s.finishImage(now, im, d, failed)
		out = &ec2.CopyImageOutput{ImageId: ptr(im.id)}
		return nil
	})
	return out, err
}

// validKMSKey accepts a key ID, alias/NAME, or a key or alias ARN in region.
func validKMSKey(key, region string) error {
	if strings.HasPrefix(key, "arn:") {
		parts := strings.SplitN(key, ":", 6)
		if len(parts) != 6 || parts[2] != "kms" {
			return apiError(codeInvalidKMSKey, "The KMS key %s is not a valid KMS key ARN.", key)
		}
		if parts[3] != region {
			return apiError(codeInvalidKMSKey, "The KMS key %s is in Region %s; a copy to %s needs a key in %s.", key, parts[3], region, region)
		}
		return nil
	}
	if key == "" || strings.ContainsAny(key, " \t") {
		return apiError(codeInvalidKMSKey, "The KMS key %q is not valid.", key)
	}
	return nil
}

// DescribeImages lists the images of the client's Region visible to the
// account: by ImageIds (a malformed ID fails the call, a never-registered
// one is InvalidAMIID.NotFound, a deregistered one is left out), Owners
// ("self", "amazon" or account IDs), ExecutableUsers ("self": images shared
// with the account; "all": public ones; an account ID: the caller's images
// shared with it), Filters, IncludeDeprecated (another owner's deprecated
// images are left out by default; the owner always sees its own) and
// IncludeDisabled, in creation order, paginated by MaxResults (5..1000)
// and NextToken.
func (c *EC2) DescribeImages(ctx context.Context, params *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	if params == nil {
		params = &ec2.DescribeImagesInput{}
	}
	s, region := c.sim, c.regionOf()
	var out *ec2.DescribeImagesOutput
	err := s.call(ctx, svcEC2, "DescribeImages", nil, func(now time.Time) error {
		fs, err := compileFilters(params.Filters, s.img.fields)
		if err != nil {
			return err
		}
		limit, err := imagePageSize(params.MaxResults)
		if err != nil {
			return err
		}
		start, err := decodeToken(params.NextToken)
		if err != nil {
			return err
		}
		owners, err := ownerSet(params.Owners)
		if err != nil {
			return err
		}
		var ids map[string]bool
		if len(params.ImageIds) > 0 {
			ids = map[string]bool{}
			var missing []string
			for _, id := range params.ImageIds {
				if !validID(id, "ami-") {
					return errMalformed(codeAMIMalformed, id, "ami-...")
				}
				im := s.img.byID[id]
				if im == nil || im.region != region || !im.visibleToSelf() {
					missing = append(missing, id)
				}
				ids[id] = true
			}
			if len(missing) > 0 {
				return apiError(codeAMINotFound, "The image id '[%s]' does not exist", strings.Join(missing, ", "))
			}
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		keep := func(im *image) bool {
			if im.deregistered || im.region != region || !im.visibleToSelf() {
				return false
			}
			if ids != nil && !ids[im.id] {
				return false
			}
			if owners != nil && !owners[im.owner] && !(im.alias != "" && owners[im.alias]) {
				return false
			}
			if len(params.ExecutableUsers) > 0 && !executableBy(im, params.ExecutableUsers) {
				return false
			}
			if im.owner != accountID && im.deprecated(now) && !aws.ToBool(params.IncludeDeprecated) && ids == nil {
				return false
			}
			if im.state == types.ImageStateDisabled && !aws.ToBool(params.IncludeDisabled) {
				return false
			}
			return matchAll(fs, im)
		}
		out = &ec2.DescribeImagesOutput{Images: []types.Image{}}
		i, _ := slices.BinarySearchFunc(s.img.order, start, func(im *image, seq uint64) int { return cmp.Compare(im.seq, seq) })
		for ; i < len(s.img.order); i++ {
			im := s.img.order[i]
			if !keep(im) {
				continue
			}
			if limit > 0 && len(out.Images) == limit {
				out.NextToken = encodeToken(im.seq)
				break
			}
			out.Images = append(out.Images, s.sdkImage(im, now))
		}
		return nil
	})
	return out, err
}

func imagePageSize(maxResults *int32) (int, error) {
	if maxResults == nil {
		return 0, nil
	}
	n := *maxResults
	if n < 5 || n > 1000 {
		return 0, errInvalidValue("maxResults", n, "Expecting a value between 5 and 1000.")
	}
	return int(n), nil
}

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

// ownerSet resolves Owners: "self" is the account, aliases stay aliases.
func ownerSet(owners []string) (map[string]bool, error) {
	if len(owners) == 0 {
		return nil, nil
	}
	m := map[string]bool{}
	for _, o := range owners {
		switch {
		case o == "self":
			m[accountID] = true
		case o == "amazon" || o == "aws-marketplace" || o == "aws-backup-vault":
			m[o] = true
		case accountRE.MatchString(o):
			m[o] = true
		default:
			return nil, errInvalidValue("Owner", o, "Expecting self, amazon, aws-marketplace, aws-backup-vault or a 12-digit account ID.")
		}
	}
	return m, nil
}

func executableBy(im *image, users []string) bool {
	for _, u := range users {
		switch {
		case u == "all":
			if im.public {
				return true
			}
		case u == "self" || u == accountID:
			if im.owner != accountID && im.users[accountID] {
				return true
			}
		default:
			if im.owner == accountID && im.users[u] {
				return true
			}
		}
	}
	return false
}

const isoMillis = "2006-01-02T15:04:05.000Z"

func (s *Sim) sdkImage(im *image, now time.Time) types.Image {
	out := types.Image{
		Architecture:       im.arch,
		CreationDate:       ptr(im.created.UTC().Format(isoMillis)),
		EnaSupport:         ptr(true),
		Hypervisor:         types.HypervisorTypeXen,
		ImageId:            ptr(im.id),
		ImageLocation:      ptr(im.owner + "/" + im.name),
		ImageType:          types.ImageTypeValuesMachine,
		ImdsSupport:        im.imds,
		Name:               ptr(im.name),
		OwnerId:            ptr(im.owner),
		Platform:           im.platform,
		PlatformDetails:    ptr("Linux/UNIX"),
		Public:             ptr(im.public),
		RootDeviceName:     ptr(rootDevice),
		RootDeviceType:     types.DeviceTypeEbs,
		State:              im.state,
		VirtualizationType: im.virt,
		UsageOperation:     ptr("RunInstances"),
		SriovNetSupport:    ptr("simple"),
		BootMode:           types.BootModeValuesUefiPreferred,
	}
	if im.desc != "" {
		out.Description = ptr(im.desc)
	}
	if im.alias != "" {
		out.ImageOwnerAlias = ptr(im.alias)
	}
	if im.platform == types.PlatformValuesWindows {
		out.PlatformDetails = ptr("Windows")
	}
	if im.stateReason != "" {
		out.StateReason = &types.StateReason{Code: ptr(strings.SplitN(im.stateReason, ":", 2)[0]), Message: ptr(im.stateReason)}
	}
	if !im.deprecateAt.IsZero() {
		out.DeprecationTime = ptr(im.deprecateAt.UTC().Format(isoMillis))
	}
	if !im.lastLaunched.IsZero() {
		out.LastLaunchedTime = ptr(im.lastLaunched.UTC().Format(isoMillis))
	}
	if im.sourceInstance != "" {
		out.SourceInstanceId = ptr(im.sourceInstance)
	}
	if im.sourceImage != "" {
		out.SourceImageId, out.SourceImageRegion = ptr(im.sourceImage), ptr(im.sourceRegion)
	}
	for _, d := range im.devices {
		out.BlockDeviceMappings = append(out.BlockDeviceMappings, types.BlockDeviceMapping{
			DeviceName: ptr(d.device),
			Ebs: &types.EbsBlockDevice{
				DeleteOnTermination: ptr(d.deleteOnTermination),
				Encrypted:           ptr(d.encrypted),
				SnapshotId:          ptr(d.snapshotID),
				VolumeSize:          ptr(d.size),
				VolumeType:          d.volumeType,
			},
		})
	}
	out.Tags = sdkTags(im.tags)
	return out
}

// imageFilterFields are the DescribeImages filters supported (a subset of
// the API reference's list); others are refused.
func (s *Sim) imageFilterFields() filterFields[*image] {
	one := func(f func(im *image) string) func(*image) []string {
		return func(im *image) []string {
			if v := f(im); v != "" {
				return []string{v}
			}
			return nil
		}
	}
	devs := func(f func(d imageDevice) string) func(*image) []string {
		return func(im *image) []string {
			out := make([]string, 0, len(im.devices))
			for _, d := range im.devices {
				out = append(out, f(d))
			}
			return out
		}
	}
	return filterFields[*image]{
		tags: func(im *image) map[string]string { return im.tags },
		fields: map[string]func(*image) []string{
			"image-id":            one(func(im *image) string { return im.id }),
			"name":                one(func(im *image) string { return im.name }),
			"description":         one(func(im *image) string { return im.desc }),
			"owner-id":            one(func(im *image) string { return im.owner }),
			"owner-alias":         one(func(im *image) string { return im.alias }),
			"state":               one(func(im *image) string { return string(im.state) }),
			"architecture":        one(func(im *image) string { return string(im.arch) }),
			"virtualization-type": one(func(im *image) string { return string(im.virt) }),
			"platform":            one(func(im *image) string { return string(im.platform) }),
			"is-public":           one(func(im *image) string { return strconv.FormatBool(im.public) }),
			"image-type":          one(func(*image) string { return string(types.ImageTypeValuesMachine) }),
			"root-device-type":    one(func(*image) string { return string(types.DeviceTypeEbs) }),
			"root-device-name":    one(func(*image) string { return rootDevice }),
			"hypervisor":          one(func(*image) string { return string(types.HypervisorTypeXen) }),
			"ena-support":         one(func(*image) string { return "true" }),
			"creation-date":       one(func(im *image) string { return im.created.UTC().Format(isoMillis) }),
			"source-instance-id":  one(func(im *image) string { return im.sourceInstance }),
			"source-image-id":     one(func(im *image) string { return im.sourceImage }),
			"source-image-region": one(func(im *image) string { return im.sourceRegion }),
			"state-reason-code": one(func(im *image) string {
				return strings.SplitN(im.stateReason, ":", 2)[0]
			}),
			"block-device-mapping.snapshot-id": devs(func(d imageDevice) string { return d.snapshotID }),
			"block-device-mapping.device-name": devs(func(d imageDevice) string { return d.device }),
			"block-device-mapping.volume-size": devs(func(d imageDevice) string { return strconv.Itoa(int(d.size)) }),
			"block-device-mapping.volume-type": devs(func(d imageDevice) string { return string(d.volumeType) }),
			"block-device-mapping.encrypted":   devs(func(d imageDevice) string { return strconv.FormatBool(d.encrypted) }),
			"block-device-mapping.delete-on-termination": devs(func(d imageDevice) string {
				return strconv.FormatBool(d.deleteOnTermination)
			}),
		},
	}
}

// lookupOwnImage returns a registered image of the caller in region, or the
// error EC2 gives.
func (s *Sim) lookupOwnImage(region, id string) (*image, error) {
	if id == "" {
		return nil, errMissing("ImageId")
	}
	if !validID(id, "ami-") {
		return nil, errMalformed(codeAMIMalformed, id, "ami-...")
	}
	im := s.liveImage(region, id)
	if im == nil {
		return nil, apiError(codeAMINotFound, "The image id '[%s]' does not exist", id)
	}
	if im.owner != accountID {
		return nil, apiError(codeAuthFailure, "Not authorized for image:%s", id)
	}
	return im, nil
}

// DeregisterImage deregisters an image of the caller. With
// DeleteAssociatedSnapshots it also deletes the image's snapshots, except
// one that another registered image uses ("skipped"), as the SDK documents;
// the result lists every snapshot. Without it the snapshots stay. A
// deregistered image is gone from DescribeImages and RunInstances; a second
// DeregisterImage is InvalidAMIID.NotFound. Deregistering an image that an
// instance (not terminated), a launch template version or an Auto Scaling
// group references is allowed, as in AWS, and recorded: see
// Sim.DeregisteredInUse.
func (c *EC2) DeregisterImage(ctx context.Context, params *ec2.DeregisterImageInput, optFns ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error) {
	if params == nil {
		params = &ec2.DeregisterImageInput{}
	}
	s, region := c.sim, c.regionOf()
	var out *ec2.DeregisterImageOutput
	err := s.call(ctx, svcEC2, "DeregisterImage", nil, func(now time.Time) error {
		im, err := s.lookupOwnImage(region, aws.ToString(params.ImageId))
		if err != nil {
			return err
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		if s.imageInUse(now, im.id) {
			s.img.deregInUse = append(s.img.deregInUse, im.id)
		}
		im.deregistered = true
		out = &ec2.DeregisterImageOutput{Return: ptr(true)}
		if !aws.ToBool(params.DeleteAssociatedSnapshots) {
			return nil
		}
		out.DeleteSnapshotResults = []types.DeleteSnapshotReturnCode{}
		for _, d := range im.devices {
			code := types.SnapshotReturnCodesSuccess
			if sn := s.img.snaps[d.snapshotID]; sn == nil || sn.deleted {
				code = types.SnapshotReturnCodesErrorCodeClientError
			} else if s.snapshotUsers(sn.id) > 0 {
				code = types.SnapshotReturnCodesWarnSkipped
			} else {
				sn.deleted = true
			}
			out.DeleteSnapshotResults = append(out.DeleteSnapshotResults, types.DeleteSnapshotReturnCode{SnapshotId: ptr(d.snapshotID), ReturnCode: code})
		}
		return nil
	})
	return out, err
}

// snapshotUsers counts the registered images that use snapshot id.
func (s *Sim) snapshotUsers(id string) int {
	n := 0
	for _, im := range s.img.order {
		if im.deregistered {
			continue
		}
		for _, d := range im.devices {
			if d.snapshotID == id {
				n++
			}
		}
	}
	return n
}

// imageInUse reports whether an instance that is not terminated, a launch
// template version, an Auto Scaling group or a launch configuration
// references image id (lock held).
func (s *Sim) imageInUse(now time.Time, id string) bool {
	st := &s.img
	if st.byImageSeq != s.ec2.launchSeq || st.byImage == nil {
		// Index the instances by image, again only after new launches (an
		// instance's image never changes).
		st.byImage = map[string][]*instance{}
		for _, in := range s.ec2.order {
			st.byImage[in.imageID] = append(st.byImage[in.imageID], in)
		}
		st.byImageSeq = s.ec2.launchSeq
	}
	for _, in := range st.byImage[id] {
		if !in.expired && in.state != types.InstanceStateNameTerminated {
			return true
		}
	}
	for _, lt := range s.img.lt.order {
		for _, v := range lt.versions {
			if s.resolveImageAlias(aws.ToString(v.data.ImageId)) == id {
				return true
			}
		}
	}
	return s.asgUsesImage(id)
}

// DeregisteredInUse returns, in order, the images that were deregistered
// while an instance, a launch template version, an Auto Scaling group or a
// launch configuration referenced them: the violations of the retention
// invariant (DESIGN.md "Reliability invariants").
func (s *Sim) DeregisteredInUse() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.img.deregInUse)
}

// DisableImage disables an available image of the caller: its state
// becomes "disabled", it leaves DescribeImages (unless IncludeDisabled),
// RunInstances refuses it (InvalidAMIID.Unavailable), and, as AWS
// documents, a public or shared image becomes private.
func (c *EC2) DisableImage(ctx context.Context, params *ec2.DisableImageInput, optFns ...func(*ec2.Options)) (*ec2.DisableImageOutput, error) {
	if params == nil {
		params = &ec2.DisableImageInput{}
	}
	s, region := c.sim, c.regionOf()
	err := s.call(ctx, svcEC2, "DisableImage", nil, func(now time.Time) error {
		im, err := s.lookupOwnImage(region, aws.ToString(params.ImageId))
		if err != nil {
			return err
		}
		if im.state != types.ImageStateAvailable && im.state != types.ImageStateDisabled {
			return apiError(codeImageState, "Image %s is %s and cannot be disabled.", im.id, im.state)
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		im.state = types.ImageStateDisabled
		im.public = false
		clear(im.users)
		clear(im.orgs)
		clear(im.ous)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ec2.DisableImageOutput{Return: ptr(true)}, nil
}

// EnableImage re-enables a disabled image (its sharing is not restored).
func (c *EC2) EnableImage(ctx context.Context, params *ec2.EnableImageInput, optFns ...func(*ec2.Options)) (*ec2.EnableImageOutput, error) {
	if params == nil {
		params = &ec2.EnableImageInput{}
	}
	s, region := c.sim, c.regionOf()
	err := s.call(ctx, svcEC2, "EnableImage", nil, func(now time.Time) error {
		im, err := s.lookupOwnImage(region, aws.ToString(params.ImageId))
		if err != nil {
			return err
		}
		if im.state != types.ImageStateDisabled {
			return apiError(codeImageState, "Image %s is %s, not disabled.", im.id, im.state)
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		im.state = types.ImageStateAvailable
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ec2.EnableImageOutput{Return: ptr(true)}, nil
}

// EnableImageDeprecation sets when an image of the caller becomes
// deprecated. AWS rounds DeprecateAt up to the next minute and refuses a
// time in the past or more than 10 years ahead. Source:
// EnableImageDeprecation API reference.
func (c *EC2) EnableImageDeprecation(ctx context.Context, params *ec2.EnableImageDeprecationInput, optFns ...func(*ec2.Options)) (*ec2.EnableImageDeprecationOutput, error) {
	if params == nil {
		params = &ec2.EnableImageDeprecationInput{}
	}
	s, region := c.sim, c.regionOf()
	err := s.call(ctx, svcEC2, "EnableImageDeprecation", nil, func(now time.Time) error {
		im, err := s.lookupOwnImage(region, aws.ToString(params.ImageId))
		if err != nil {
			return err
		}
		if params.DeprecateAt == nil {
			return errMissing("DeprecateAt")
		}
		at := *params.DeprecateAt
		if r := at.Truncate(time.Minute); !r.Equal(at) {
			at = r.Add(time.Minute)
		}
		if at.Before(now) {
			return errInvalidValue("DeprecateAt", params.DeprecateAt.UTC().Format(time.RFC3339), "The deprecation time cannot be in the past.")
		}
		if at.After(now.Add(maxDeprecationInFuture)) {
			return errInvalidValue("DeprecateAt", params.DeprecateAt.UTC().Format(time.RFC3339), "The deprecation time cannot be more than 10 years in the future.")
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		im.deprecateAt = at
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ec2.EnableImageDeprecationOutput{Return: ptr(true)}, nil
}

// DisableImageDeprecation cancels the deprecation of an image of the caller.
func (c *EC2) DisableImageDeprecation(ctx context.Context, params *ec2.DisableImageDeprecationInput, optFns ...func(*ec2.Options)) (*ec2.DisableImageDeprecationOutput, error) {
	if params == nil {
		params = &ec2.DisableImageDeprecationInput{}
	}
	s, region := c.sim, c.regionOf()
	err := s.call(ctx, svcEC2, "DisableImageDeprecation", nil, func(now time.Time) error {
		im, err := s.lookupOwnImage(region, aws.ToString(params.ImageId))
		if err != nil {
			return err
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		im.deprecateAt = time.Time{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ec2.DisableImageDeprecationOutput{Return: ptr(true)}, nil
}

var (
	orgARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}$`)
	ouARNRE  = regexp.MustCompile(`^arn:aws[a-z-]*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$`)
)

// ModifyImageAttribute changes an attribute of an image of the caller:
// launchPermission (LaunchPermission.Add/Remove with UserId, Group "all",
// OrganizationArn, OrganizationalUnitArn; or OperationType with UserIds,
// UserGroups, OrganizationArns, OrganizationalUnitArns), description, and
// imdsSupport (only "v2.0", which cannot be undone).
func (c *EC2) ModifyImageAttribute(ctx context.Context, params *ec2.ModifyImageAttributeInput, optFns ...func(*ec2.Options)) (*ec2.ModifyImageAttributeOutput, error) {
	if params == nil {
		params = &ec2.ModifyImageAttributeInput{}
	}
	s, region := c.sim, c.regionOf()
	err := s.call(ctx, svcEC2, "ModifyImageAttribute", nil, func(now time.Time) error {
		im, err := s.lookupOwnImage(region, aws.ToString(params.ImageId))
		if err != nil {
			return err
		}
		attr := aws.ToString(params.Attribute)
		switch {
		case params.Description != nil || attr == "description":
			v := aws.ToString(params.Value)
			if params.Description != nil {
				v = aws.ToString(params.Description.Value)
			}
			if aws.ToBool(params.DryRun) {
				return errDryRun()
			}
			im.desc = v
			return nil
		case params.ImdsSupport != nil || attr == "imdsSupport":
			v := aws.ToString(params.Value)
			if params.ImdsSupport != nil {
				v = aws.ToString(params.ImdsSupport.Value)
			}
			if v != string(types.ImdsSupportValuesV20) {
				return errInvalidValue("ImdsSupport", v, "The only valid value is v2.0.")
			}
			if aws.ToBool(params.DryRun) {
				return errDryRun()
			}
			im.imds = types.ImdsSupportValuesV20
			return nil
		}
		if attr != "" && attr != "launchPermission" {
			return errInvalidValue("Attribute", attr, "Expecting launchPermission, description or imdsSupport.")
		}
		var add, remove []types.LaunchPermission
		if lp := params.LaunchPermission; lp != nil {
			add, remove = lp.Add, lp.Remove
		}
		var flat []types.LaunchPermission
		for _, u := range params.UserIds {
			flat = append(flat, types.LaunchPermission{UserId: ptr(u)})
		}
		for _, g := range params.UserGroups {
			flat = append(flat, types.LaunchPermission{Group: types.PermissionGroup(g)})
		}
		for _, o := range params.OrganizationArns {
			flat = append(flat, types.LaunchPermission{OrganizationArn: ptr(o)})
		}
		for _, o := range params.OrganizationalUnitArns {
			flat = append(flat, types.LaunchPermission{OrganizationalUnitArn: ptr(o)})
		}
		if len(flat) > 0 {
			switch params.OperationType {
			case types.OperationTypeAdd:
				add = append(add, flat...)
			case types.OperationTypeRemove:
				remove = append(remove, flat...)
			default:
				return errMissing("OperationType")
			}
		}
		if len(add)+len(remove) == 0 {
			return errMissing("LaunchPermission")
		}
		for _, p := range slices.Concat(add, remove) {
			if err := validLaunchPermission(p); err != nil {
				return err
			}
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		apply := func(ps []types.LaunchPermission, on bool) {
			set := func(m map[string]bool, k string) {
				if on {
					m[k] = true
				} else {
					delete(m, k)
				}
			}
			for _, p := range ps {
				switch {
				case p.UserId != nil:
					set(im.users, *p.UserId)
				case p.OrganizationArn != nil:
					set(im.orgs, *p.OrganizationArn)
				case p.OrganizationalUnitArn != nil:
					set(im.ous, *p.OrganizationalUnitArn)
				case p.Group == types.PermissionGroupAll:
					im.public = on
				}
			}
		}
		apply(add, true)
		apply(remove, false)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ec2.ModifyImageAttributeOutput{}, nil
}

func validLaunchPermission(p types.LaunchPermission) error {
	n := 0
	if p.UserId != nil {
		n++
		if !accountRE.MatchString(*p.UserId) {
			return apiError(codeInvalidUserID, "Invalid user id: %q", *p.UserId)
		}
	}
	if p.OrganizationArn != nil {
		n++
		if !orgARNRE.MatchString(*p.OrganizationArn) {
			return apiError(codeInvalidOrgARN, "The organization ARN %q is not valid.", *p.OrganizationArn)
		}
	}
	if p.OrganizationalUnitArn != nil {
		n++
		if !ouARNRE.MatchString(*p.OrganizationalUnitArn) {
			return apiError(codeInvalidOUARN, "The organizational unit ARN %q is not valid.", *p.OrganizationalUnitArn)
		}
	}
	if p.Group != "" {
		n++
		if p.Group != types.PermissionGroupAll {
			return errInvalidValue("Group", p.Group, "The only valid group is all.")
		}
	}
	if n != 1 {
		return apiError(codeInvalidParameter, "A launch permission names exactly one of UserId, Group, OrganizationArn, OrganizationalUnitArn.")
	}
	return nil
}

// DescribeImageAttribute returns one attribute of an image of the caller:
// launchPermission (accounts, organizations, OUs, and Group "all" for a
// public image), description, imdsSupport, blockDeviceMapping,
// lastLaunchedTime.
func (c *EC2) DescribeImageAttribute(ctx context.Context, params *ec2.DescribeImageAttributeInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImageAttributeOutput, error) {
	if params == nil {
		params = &ec2.DescribeImageAttributeInput{}
	}
	s, region := c.sim, c.regionOf()
	var out *ec2.DescribeImageAttributeOutput
	err := s.call(ctx, svcEC2, "DescribeImageAttribute", nil, func(now time.Time) error {
		im, err := s.lookupOwnImage(region, aws.ToString(params.ImageId))
		if err != nil {
			return err
		}
		if params.Attribute == "" {
			return errMissing("Attribute")
		}
		o := &ec2.DescribeImageAttributeOutput{ImageId: ptr(im.id)}
		switch params.Attribute {
		case types.ImageAttributeNameLaunchPermission:
			o.LaunchPermissions = []types.LaunchPermission{}
			if im.public {
				o.LaunchPermissions = append(o.LaunchPermissions, types.LaunchPermission{Group: types.PermissionGroupAll})
			}
			for _, u := range slices.Sorted(maps.Keys(im.users)) {
				o.LaunchPermissions = append(o.LaunchPermissions, types.LaunchPermission{UserId: ptr(u)})
			}
			for _, a := range slices.Sorted(maps.Keys(im.orgs)) {
				o.LaunchPermissions = append(o.LaunchPermissions, types.LaunchPermission{OrganizationArn: ptr(a)})
			}
			for _, a := range slices.Sorted(maps.Keys(im.ous)) {
				o.LaunchPermissions = append(o.LaunchPermissions, types.LaunchPermission{OrganizationalUnitArn: ptr(a)})
			}
		case types.ImageAttributeNameDescription:
			o.Description = &types.AttributeValue{Value: ptr(im.desc)}
		case types.ImageAttributeNameImdsSupport:
			o.ImdsSupport = &types.AttributeValue{}
			if im.imds != "" {
				o.ImdsSupport.Value = ptr(string(im.imds))
			}
		case types.ImageAttributeNameBlockDeviceMapping:
			o.BlockDeviceMappings = s.sdkImage(im, now).BlockDeviceMappings
		case types.ImageAttributeNameLastLaunchedTime:
			o.LastLaunchedTime = &types.AttributeValue{}
			if !im.lastLaunched.IsZero() {
				o.LastLaunchedTime.Value = ptr(im.lastLaunched.UTC().Format(isoMillis))
			}
		default:
			return errInvalidValue("Attribute", params.Attribute, "Unsupported attribute.")
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		out = o
		return nil
	})
	return out, err
}

// lookupSnapshot returns a snapshot of the caller in region.
func (s *Sim) lookupSnapshot(region, id string) (*snapshot, error) {
	if id == "" {
		return nil, errMissing("SnapshotId")
	}
	if !validID(id, "snap-") {
		return nil, errMalformed(codeSnapshotMalformed, id, "snap-...")
	}
	sn := s.img.snaps[id]
	if sn == nil || sn.deleted || sn.region != region {
		return nil, apiError(codeSnapshotNotFound, "The snapshot '%s' does not exist.", id)
	}
	return sn, nil
}

// ModifySnapshotAttribute adds or removes createVolumePermission for
// accounts (or the group "all") on a snapshot of the caller.
func (c *EC2) ModifySnapshotAttribute(ctx context.Context, params *ec2.ModifySnapshotAttributeInput, optFns ...func(*ec2.Options)) (*ec2.ModifySnapshotAttributeOutput, error) {
	if params == nil {
		params = &ec2.ModifySnapshotAttributeInput{}
	}
	s, region := c.sim, c.regionOf()
	err := s.call(ctx, svcEC2, "ModifySnapshotAttribute", nil, func(now time.Time) error {
		sn, err := s.lookupSnapshot(region, aws.ToString(params.SnapshotId))
		if err != nil {
			return err
		}
		if params.Attribute != "" && params.Attribute != types.SnapshotAttributeNameCreateVolumePermission {
			return errInvalidValue("Attribute", params.Attribute, "Only createVolumePermission can be modified.")
		}
		var add, remove []string
		if p := params.CreateVolumePermission; p != nil {
			for _, x := range p.Add {
				add = append(add, cmp.Or(aws.ToString(x.UserId), string(x.Group)))
			}
			for _, x := range p.Remove {
				remove = append(remove, cmp.Or(aws.ToString(x.UserId), string(x.Group)))
			}
		}
		flat := append(slices.Clone(params.UserIds), params.GroupNames...)
		if len(flat) > 0 {
			switch params.OperationType {
			case types.OperationTypeAdd:
				add = append(add, flat...)
			case types.OperationTypeRemove:
				remove = append(remove, flat...)
			default:
				return errMissing("OperationType")
			}
		}
		if len(add)+len(remove) == 0 {
			return errMissing("CreateVolumePermission")
		}
		for _, u := range slices.Concat(add, remove) {
			if u != "all" && !accountRE.MatchString(u) {
				return apiError(codeInvalidUserID, "Invalid user id: %q", u)
			}
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		for _, u := range add {
			sn.createPerms[u] = true
		}
		for _, u := range remove {
			delete(sn.createPerms, u)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ec2.ModifySnapshotAttributeOutput{}, nil
}

// DeleteSnapshot deletes a snapshot of the caller; one that a registered
// image uses is InvalidSnapshot.InUse.
func (c *EC2) DeleteSnapshot(ctx context.Context, params *ec2.DeleteSnapshotInput, optFns ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error) {
	if params == nil {
		params = &ec2.DeleteSnapshotInput{}
	}
	s, region := c.sim, c.regionOf()
	err := s.call(ctx, svcEC2, "DeleteSnapshot", nil, func(now time.Time) error {
		sn, err := s.lookupSnapshot(region, aws.ToString(params.SnapshotId))
		if err != nil {
			return err
		}
		if s.snapshotUsers(sn.id) > 0 {
			return apiError(codeSnapshotInUse, "The snapshot %s is currently in use by an AMI", sn.id)
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		sn.deleted = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ec2.DeleteSnapshotOutput{}, nil
}

func snapshotFilterFields() filterFields[*snapshot] {
	one := func(f func(sn *snapshot) string) func(*snapshot) []string {
		return func(sn *snapshot) []string {
			if v := f(sn); v != "" {
				return []string{v}
			}
			return nil
		}
	}
	return filterFields[*snapshot]{
		tags: func(sn *snapshot) map[string]string { return sn.tags },
		fields: map[string]func(*snapshot) []string{
			"snapshot-id": one(func(sn *snapshot) string { return sn.id }),
			"volume-id":   one(func(sn *snapshot) string { return sn.volumeID }),
			"volume-size": one(func(sn *snapshot) string { return strconv.Itoa(int(sn.size)) }),
			"status":      one(func(sn *snapshot) string { return string(sn.state) }),
			"owner-id":    one(func(sn *snapshot) string { return sn.owner }),
			"description": one(func(sn *snapshot) string { return sn.desc }),
			"encrypted":   one(func(sn *snapshot) string { return strconv.FormatBool(sn.encrypted) }),
			"kms-key-id":  one(func(sn *snapshot) string { return sn.kmsKeyID }),
		},
	}
}

// DescribeSnapshots lists the client Region's snapshots: by SnapshotIds
// (each must exist), OwnerIds ("self" or account IDs), RestorableByUserIds,
// and filters, paginated by MaxResults (5..1000) and NextToken.
func (c *EC2) DescribeSnapshots(ctx context.Context, params *ec2.DescribeSnapshotsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error) {
	if params == nil {
		params = &ec2.DescribeSnapshotsInput{}
	}
	s, region := c.sim, c.regionOf()
	var out *ec2.DescribeSnapshotsOutput
	err := s.call(ctx, svcEC2, "DescribeSnapshots", nil, func(now time.Time) error {
		fs, err := compileFilters(params.Filters, s.img.snapFields)
		if err != nil {
			return err
		}
		limit, err := imagePageSize(params.MaxResults)
		if err != nil {
			return err
		}
		start, err := decodeToken(params.NextToken)
		if err != nil {
			return err
		}
		owners, err := ownerSet(params.OwnerIds)
		if err != nil {
			return err
		}
		var ids map[string]bool
		if len(params.SnapshotIds) > 0 {
			ids = map[string]bool{}
			for _, id := range params.SnapshotIds {
				if _, err := s.lookupSnapshot(region, id); err != nil {
					return err
				}
				ids[id] = true
			}
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		out = &ec2.DescribeSnapshotsOutput{Snapshots: []types.Snapshot{}}
		i, _ := slices.BinarySearchFunc(s.img.snapOrder, start, func(sn *snapshot, seq uint64) int { return cmp.Compare(sn.seq, seq) })
		for ; i < len(s.img.snapOrder); i++ {
			sn := s.img.snapOrder[i]
			if sn.deleted || sn.region != region || (ids != nil && !ids[sn.id]) || (owners != nil && !owners[sn.owner]) {
				continue
			}
			if len(params.RestorableByUserIds) > 0 && !slices.ContainsFunc(params.RestorableByUserIds, func(u string) bool {
				return sn.createPerms[u] || sn.createPerms["all"] || (u == "self" && sn.owner == accountID)
			}) {
				continue
			}
			if !matchAll(fs, sn) {
				continue
			}
			if limit > 0 && len(out.Snapshots) == limit {
				out.NextToken = encodeToken(sn.seq)
				break
			}
			o := types.Snapshot{
				SnapshotId: ptr(sn.id), VolumeId: ptr(sn.volumeID), VolumeSize: ptr(sn.size), State: sn.state,
				OwnerId: ptr(sn.owner), Encrypted: ptr(sn.encrypted), StartTime: ptr(sn.started),
				Progress: ptr("100%"), Tags: sdkTags(sn.tags), StorageTier: types.StorageTierStandard,
			}
			if sn.state == types.SnapshotStatePending {
				o.Progress = ptr("0%")
			} else {
				o.CompletionTime = ptr(sn.completed)
			}
			if sn.desc != "" {
				o.Description = ptr(sn.desc)
			}
			if sn.encrypted {
				o.KmsKeyId = ptr(sn.kmsKeyID)
			}
			out.Snapshots = append(out.Snapshots, o)
		}
		return nil
	})
	return out, err
}

// imageUsableLocked is the registry side of the imageUsable hook (lock
// held): with a registry, the AMI must be registered in the home Region,
// visible to the account, and available; launching records
// LastLaunchedTime.
func (s *Sim) imageUsableLocked(id string) error {
	if !s.img.registered && !s.img.opts.Strict {
		return nil
	}
	im := s.liveImage(s.opts.Region, id)
	if im == nil {
		return apiError(codeAMINotFound, "The image id '[%s]' does not exist", id)
	}
	if im.state != types.ImageStateAvailable {
		return apiError(codeAMIUnavailable, "The image id '[%s]' is not available (state %s)", id, im.state)
	}
	im.lastLaunched = s.now
	return nil
}

// image and snapshot as tag targets.
func (im *image) resourceID() string               { return im.id }
func (im *image) resourceType() types.ResourceType { return types.ResourceTypeImage }
func (im *image) userTags() map[string]string      { return im.tags }
func (im *image) systemTags() map[string]string    { return nil }
func (im *image) tagsChanged(*Sim, time.Time)      {}

func (sn *snapshot) resourceID() string               { return sn.id }
func (sn *snapshot) resourceType() types.ResourceType { return types.ResourceTypeSnapshot }
func (sn *snapshot) userTags() map[string]string      { return sn.tags }
func (sn *snapshot) systemTags() map[string]string    { return nil }
func (sn *snapshot) tagsChanged(*Sim, time.Time)      {}

func (s *Sim) imageTagKind() tagKind {
	return tagKind{
		prefix: "ami-",
		lookup: func(now time.Time, ids []string) ([]tagTarget, error) {
			out := make([]tagTarget, 0, len(ids))
			for _, id := range ids {
				if !validID(id, "ami-") {
					return nil, errMalformed(codeAMIMalformed, id, "ami-...")
				}
				im := s.img.byID[id]
				if im == nil || im.deregistered || im.owner != accountID {
					return nil, apiError(codeAMINotFound, "The image id '[%s]' does not exist", id)
				}
				out = append(out, im)
			}
			return out, nil
		},
		list: func(now time.Time) []tagTarget {
			var out []tagTarget
			for _, im := range s.img.order {
				if !im.deregistered && im.owner == accountID {
					out = append(out, im)
				}
			}
			return out
		},
	}
}

func (s *Sim) snapshotTagKind() tagKind {
	return tagKind{
		prefix: "snap-",
		lookup: func(now time.Time, ids []string) ([]tagTarget, error) {
			out := make([]tagTarget, 0, len(ids))
			for _, id := range ids {
				sn := s.img.snaps[id]
				if !validID(id, "snap-") {
					return nil, errMalformed(codeSnapshotMalformed, id, "snap-...")
				}
				if sn == nil || sn.deleted {
					return nil, apiError(codeSnapshotNotFound, "The snapshot '%s' does not exist.", id)
				}
				out = append(out, sn)
			}
			return out, nil
		},
		list: func(now time.Time) []tagTarget {
			var out []tagTarget
			for _, sn := range s.img.snapOrder {
				if !sn.deleted {
					out = append(out, sn)
				}
			}
			return out
		},
	}
}

// AddImageInput describes an image that AddImage registers directly (a
// vendor image such as Amazon Linux, or an old image of the account for a
// retention test): it is available at once, with one snapshot per device.
type AddImageInput struct {
	// Region; empty means the Sim's Region.
	Region string
	// Name is required.
	Name        string
	Description string
	// Owner is an account ID; empty means the simulated account
	// (123456789012). "amazon" means Amazon's account with the alias amazon.
	Owner string
	// Architecture defaults to x86_64; Virtualization to hvm.
	Architecture   types.ArchitectureValues
	Virtualization types.VirtualizationType
	Platform       types.PlatformValues
	// ImdsSupport as RegisterImage's ImdsSupport ("v2.0" or empty).
	ImdsSupport types.ImdsSupportValues
	// Created is the creation date; zero means now.
	Created time.Time
	// DeprecateAt, when set, is the deprecation time.
	DeprecateAt time.Time
	// Disabled registers the image disabled.
	Disabled bool
	// Public makes the image public; SharedWith shares it with accounts.
	Public     bool
	SharedWith []string
	// RootGiB is the root volume size; zero means 8.
	RootGiB int32
	// Encrypted encrypts the snapshot.
	Encrypted bool
	// Tags are user tags.
	Tags map[string]string
}

// AddImage registers an image directly, as RegisterImage from a snapshot
// would, and returns its ID. It is a test helper and is not counted as an
// API call. Registering an image turns on AMI validation in RunInstances.
func (s *Sim) AddImage(in AddImageInput) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.advance()
	region := cmp.Or(in.Region, s.opts.Region)
	im := s.newImage(now, region)
	im.name, im.desc = in.Name, in.Description
	switch in.Owner {
	case "", accountID:
	case "amazon":
		im.owner, im.alias = amazonOwnerID, "amazon"
	default:
		im.owner = in.Owner
	}
	if !in.Created.IsZero() {
		im.created = in.Created
	}
	im.arch = cmp.Or(in.Architecture, types.ArchitectureValuesX8664)
	im.virt = cmp.Or(in.Virtualization, types.VirtualizationTypeHvm)
	im.platform, im.imds = in.Platform, in.ImdsSupport
	im.deprecateAt = in.DeprecateAt
	im.public = in.Public
	for _, u := range in.SharedWith {
		im.users[u] = true
	}
	maps.Copy(im.tags, in.Tags)
	size := cmp.Or(in.RootGiB, defaultRootVolumeGiB)
	kms := ""
	if in.Encrypted {
		kms = "alias/aws/ebs"
	}
	sn := s.newSnapshot(now, region, "vol-ffffffff", size, in.Encrypted, kms)
	sn.owner = im.owner
	sn.state, sn.completed = types.SnapshotStateCompleted, now
	im.devices = []imageDevice{{device: rootDevice, snapshotID: sn.id, size: size, volumeType: types.VolumeTypeGp3,
		encrypted: in.Encrypted, kmsKeyID: kms, deleteOnTermination: true}}
	im.state = types.ImageStateAvailable
	if in.Disabled {
		im.state = types.ImageStateDisabled
	}
	return im.id
}

// ImageState returns the state of an image ("pending", "available",
// "failed", "disabled", or "deregistered"), and false if it never existed.
func (s *Sim) ImageState(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	im := s.img.byID[id]
	if im == nil {
		return "", false
	}
	if im.deregistered {
		return string(types.ImageStateDeregistered), true
	}
	return string(im.state), true
}

// ImageSnapshots returns the snapshot IDs of an image and, for each,
// whether it still exists.
func (s *Sim) ImageSnapshots(id string) map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	im := s.img.byID[id]
	if im == nil {
		return nil
	}
	out := map[string]bool{}
	for _, d := range im.devices {
		sn := s.img.snaps[d.snapshotID]
		out[d.snapshotID] = sn != nil && !sn.deleted
	}
	return out
}

// ImageCount returns the number of registered (not deregistered) images
// in all Regions.
func (s *Sim) ImageCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, im := range s.img.order {
		if !im.deregistered {
			n++
		}
	}
	return n
}
