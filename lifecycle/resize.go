package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awserr"
	"github.com/ec2ops/ec2ops/internal/ec2wait"
	"github.com/ec2ops/ec2ops/internal/poll"
)

// ResizeMode is how Resize changes the instance type.
type ResizeMode int

const (
	// ResizeStopStart stops the instance, changes its type with
	// ModifyInstanceAttribute and starts it again: same instance ID,
	// volumes, network interfaces, private IPs and Elastic IP; out of
	// service for the stop/start (Rollout counts it against
	// MaxUnavailable). EBS-backed instances only.
	ResizeStopStart ResizeMode = iota
	// ResizeSurge launches a replacement of the new type first (the Surge
	// strategy with Target.InstanceType): no capacity dip, a new instance
	// ID.
	ResizeSurge
)

func (m ResizeMode) String() string {
	switch m {
	case ResizeStopStart:
		return "stop-start"
	case ResizeSurge:
		return "surge"
	}
	return fmt.Sprintf("ResizeMode(%d)", int(m))
}

// ResizeOptions configures Resize: the Options every replacer shares and
// what only Resize has. Zero values are safe defaults.
type ResizeOptions struct {
	Options
	// Mode is ResizeStopStart (default) or ResizeSurge.
	Mode ResizeMode
	// NVMeDriversVerified says the instances' images have the AWS NVMe
	// driver (and mount by UUID or label, since EBS device names become
	// /dev/nvme*n1). Without it, moving an instance from a type that does
	// not expose EBS volumes as NVMe to one that requires NVMe is refused:
	// nothing outside the OS shows whether the driver is there.
	NVMeDriversVerified bool
}

// WithOptions applies functions written for Options (shared with Surge,
// RootVolume and Capturer) to ResizeOptions.
func WithOptions(fns ...func(*Options)) func(*ResizeOptions) {
	return func(o *ResizeOptions) {
		for _, f := range fns {
			f(&o.Options)
		}
	}
}

// Limits of the type checks. Sources: DescribeInstanceTypes API reference
// (InstanceTypes: "The instance types", at most 100; MaxResults 5-100) and
// DescribeInstanceTypeOfferings (MaxResults 5-1000).
const (
	maxTypesPerCall   = 100
	maxOfferingsPage  = 1000
	maxTypesPage      = 100
	codeInvalidType   = "InvalidInstanceType"
	stateReasonServer = "Server."
)

// Resize changes the instance type of instances from outside (vertical
// scaling): by stop/modify/start, or through Surge. It checks that the new
// type fits every instance before any mutating call. Create it with
// NewResize.
type Resize struct {
	r        *runtime
	client   ResizeClient
	itype    string
	mode     ResizeMode
	nvmeOK   bool
	surge    *Surge
	insts    *poll.Poller[types.Instance]
	typeInfo *loader[*types.InstanceTypeInfo]
	offered  *loader[map[string]bool]

	mu       sync.Mutex
	facts    map[string]instanceFacts // read by Check/Replace, used once by bringUp
	restored map[*job]bool            // jobs whose old type bringUp already restored
}

var _ Replacer = (*Resize)(nil)

// NewResize returns a Resize replacer onto instanceType.
func NewResize(client ResizeClient, instanceType string, optFns ...func(*ResizeOptions)) *Resize {
	o := ResizeOptions{}
	for _, f := range optFns {
		f(&o)
	}
	shared := func(p *Options) { *p = o.Options }
	z := &Resize{r: newRuntime(client, []func(*Options){shared}), client: client, itype: instanceType, mode: o.Mode,
		nvmeOK: o.NVMeDriversVerified, facts: map[string]instanceFacts{}, restored: map[*job]bool{}}
	rt := z.r
	if o.Mode == ResizeSurge {
		// The Surge shares the runtime: one status poller, one limiter.
		z.surge = &Surge{r: rt, target: Target{InstanceType: instanceType}}
	}
	z.insts = ec2wait.NewInstancePoller(client, rt.lim, func(p *poll.Options) {
		p.Interval, p.MaxInterval = rt.d(rt.opts.PollInterval), rt.d(rt.opts.MaxPollInterval)
		p.NotFoundGrace, p.Seed = rt.d(2*time.Minute), rt.opts.Seed
	})
	z.typeInfo = newLoader(z.fetchTypes)
	z.offered = newLoader(z.fetchOfferings)
	return z
}

// NewResizeFromConfig returns a Resize replacer with EC2 and ELBv2 clients
// made from cfg.
func NewResizeFromConfig(cfg aws.Config, instanceType string, optFns ...func(*ResizeOptions)) *Resize {
	withELB := func(o *ResizeOptions) { o.ELB = elb.NewFromConfig(cfg) }
	return NewResize(ec2.NewFromConfig(cfg), instanceType, append([]func(*ResizeOptions){withELB}, optFns...)...)
}

func (z *Resize) rt() *runtime { return z.r }
func (z *Resize) tgt() Target  { return Target{InstanceType: z.itype} }
func (z *Resize) inPlace() bool {
	return z.mode != ResizeSurge
}

func (z *Resize) accepts(t Target) error {
	if t.ImageID != "" || t.Image != nil || t.UserData != nil || len(t.Tags) > 0 {
		return ec2ops.InvalidInput("Target", "", "Resize changes the instance type only",
			"use Surge to change the image, user data or tags (with Target.InstanceType for the type at the same time)")
	}
	return z.validType()
}

func (z *Resize) validType() error {
	if a, b, ok := strings.Cut(z.itype, "."); !ok || a == "" || b == "" {
		return ec2ops.InvalidInput("instanceType", z.itype, "not an instance type", "use a type such as m5.xlarge")
	}
	if z.mode != ResizeStopStart && z.mode != ResizeSurge {
		return ec2ops.InvalidInput("ResizeOptions.Mode", z.mode.String(), "unknown mode", "use ResizeStopStart or ResizeSurge")
	}
	return nil
}

// want is the instance as resized. In surge mode it is the replacement
// Surge launches (IMDSv2 required unless AllowIMDSv1).
func (z *Resize) want(cur *Spec, t Target, image string) *Spec {
	if z.surge != nil {
		return z.surge.want(cur, t, image)
	}
	w := cur.clone()
	w.InstanceID, w.State, w.PrivateIP, w.ElasticIP, w.TargetGroups, w.Replaces, w.Rollout = "", "", "", nil, nil, "", ""
	if t.InstanceType != "" {
		w.InstanceType = t.InstanceType
	}
	for i := range w.BlockDevices {
		w.BlockDevices[i].VolumeID = ""
	}
	return w
}

func (z *Resize) prepare(j *job) {
	if z.surge != nil {
		z.surge.prepare(j)
	}
}

// Replace changes the type of instanceID after checking that the new type
// fits (a *ResizeRefusal otherwise, before any change). A stopped
// instance is resized and left stopped. In stop/start mode a new type
// that fails to start or to become healthy is undone: the old type is
// restored and the instance started again (the *ReplaceError then wraps a
// *ResizeError with Restored set).
func (z *Resize) Replace(ctx context.Context, instanceID string) (*Replacement, error) {
	return z.resizeOne(ctx, instanceID, z.tgt())
}

// ReplaceInstance replaces instanceID by an equivalent instance of the
// same type: in stop/start mode a stop and start, which moves an EBS-backed
// instance to new hardware (what AWS advises for an instance on degraded
// hardware) and keeps its ID; in surge mode a Surge replacement (a new
// ID). recovery's Watchdog consumes this method.
func (z *Resize) ReplaceInstance(ctx context.Context, instanceID string) (string, error) {
	r, err := z.resizeOne(ctx, instanceID, Target{})
	if err != nil {
		return "", err
	}
	return r.NewID, nil
}

func (z *Resize) op() string {
	if z.surge != nil {
		return "resize-surge"
	}
	return "resize"
}

// resizeOne is replaceOne with the compatibility check between the
// capture and the first mutating call (and before Spec.Refusal, whose
// reasons are about cloning, not resizing).
func (z *Resize) resizeOne(ctx context.Context, id string, t Target) (*Replacement, error) {
	rt := z.r
	if !strings.HasPrefix(id, "i-") {
		return nil, ec2ops.InvalidInput("instanceID", id, "not an instance ID", "use an ID of the form i-0123456789abcdef0")
	}
	if err := z.validType(); err != nil {
		return nil, err
	}
	cur, f, err := z.captureOne(ctx, id)
	if err != nil {
		return nil, err
	}
	to := cmpOr(t.InstanceType, cur.InstanceType)
	if err := z.check(ctx, f, to); err != nil {
		return nil, err
	}
	if err := z.refusal(cur); err != nil {
		return nil, err
	}
	fs, err := rt.findReplacements(ctx, []string{id}, false)
	if err != nil {
		return nil, err
	}
	rollout := defaultID("resize-", id, targetKey(t, ""), z.mode.String())
	j, stale, err := newJob(z, cur, t, "", rollout, z.op(), fs[id], nil)
	if err != nil {
		return nil, err
	}
	for _, s := range stale {
		if err := rt.terminate(ctx, s); err != nil {
			return nil, err
		}
	}
	z.remember(f)
	if err := runJob(ctx, z, j); err != nil {
		return nil, err
	}
	return &Replacement{OldID: id, NewID: j.newID, Reasons: j.reasons}, nil
}

// refusal is Spec.Refusal where it applies: stop/start keeps the network
// interfaces, so several of them are fine in place.
func (z *Resize) refusal(cur *Spec) error {
	err := cur.Refusal()
	if err != nil && z.surge == nil && cur.NetworkInterfaces > 1 && cur.AutoScalingGroup == "" && cur.Tenancy != string(types.TenancyHost) {
		return nil
	}
	return err
}

// Plan returns the steps Replace would take for instanceID, after the
// compatibility check (read-only calls; a *ResizeRefusal if the type does
// not fit).
func (z *Resize) Plan(ctx context.Context, instanceID string) (ec2ops.Plan, error) {
	p := ec2ops.Plan{Operation: z.op() + " " + instanceID + " to " + z.itype}
	if !strings.HasPrefix(instanceID, "i-") {
		return p, ec2ops.InvalidInput("instanceID", instanceID, "not an instance ID", "use an ID of the form i-0123456789abcdef0")
	}
	if err := z.validType(); err != nil {
		return p, err
	}
	cur, f, err := z.captureOne(ctx, instanceID)
	if err != nil {
		return p, err
	}
	if err := z.check(ctx, f, z.itype); err != nil {
		return p, err
	}
	if err := z.refusal(cur); err != nil {
		return p, err
	}
	j, _, err := newJob(z, cur, z.tgt(), "", "", z.op(), nil, nil)
	if err != nil {
		return p, err
	}
	p.Steps = z.steps(j)
	return p, nil
}

// Check checks, with batched read-only calls, whether the new type fits
// each instance: one DescribeInstances per 200 instances, one
// DescribeInstanceTypes per 100 distinct types and one
// DescribeInstanceTypeOfferings per 100 types, each type described once
// per Resize (cached). It returns the instances that do not fit, each with
// a *ResizeRefusal (or an error matching ec2ops.ErrNotFound); an instance
// missing from the map fits. Run it before a Rollout to leave the
// misfits out of the Selector: Rollout fails them one by one otherwise.
func (z *Resize) Check(ctx context.Context, instanceIDs []string) (map[string]error, error) {
	if err := z.validType(); err != nil {
		return nil, err
	}
	for _, id := range instanceIDs {
		if !strings.HasPrefix(id, "i-") {
			return nil, ec2ops.InvalidInput("instanceIDs", id, "not an instance ID", "use IDs of the form i-0123456789abcdef0")
		}
	}
	var ins []types.Instance
	for chunk := range slices.Chunk(instanceIDs, filterChunk) {
		got, err := z.r.describe(ctx, []types.Filter{{Name: aws.String("instance-id"), Values: chunk}})
		if err != nil {
			return nil, err
		}
		ins = append(ins, got...)
	}
	byID := map[string]instanceFacts{}
	names := []string{z.itype}
	for _, in := range ins {
		f := factsOf(in)
		byID[f.id] = f
		names = append(names, f.itype)
	}
	// One batched fill of both caches for the whole fleet.
	if _, err := z.typeInfo.get(ctx, names); err != nil {
		return nil, err
	}
	if _, err := z.offered.get(ctx, []string{z.itype}); err != nil {
		return nil, err
	}
	out := map[string]error{}
	for _, id := range instanceIDs {
		f, ok := byID[id]
		if !ok {
			out[id] = fmt.Errorf("instance %s: %w", id, ec2ops.ErrNotFound)
			continue
		}
		if err := z.check(ctx, f, z.itype); err != nil {
			var ref *ResizeRefusal
			if !errors.As(err, &ref) {
				return nil, err
			}
			out[id] = err
			continue
		}
		z.remember(f)
	}
	return out, nil
}

// captureOne describes one instance and captures its spec (user data
// included) from the same DescribeInstances answer.
func (z *Resize) captureOne(ctx context.Context, id string) (*Spec, instanceFacts, error) {
	ins, err := z.r.describe(ctx, []types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}})
	if err != nil {
		return nil, instanceFacts{}, err
	}
	if len(ins) == 0 {
		return nil, instanceFacts{}, fmt.Errorf("resize %s: %w", id, ec2ops.ErrNotFound)
	}
	specs, err := z.r.captureInstances(ctx, ins[:1], true)
	if err != nil {
		return nil, instanceFacts{}, err
	}
	return specs[id], factsOf(ins[0]), nil
}

func (z *Resize) remember(f instanceFacts) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.facts[f.id] = f
}

// factsFor returns what the type check needs of an instance: remembered
// from Check/Replace, or read through the batched instance poller (one
// DescribeInstances per tick for every resize in flight).
func (z *Resize) factsFor(ctx context.Context, id string) (instanceFacts, error) {
	z.mu.Lock()
	f, ok := z.facts[id]
	delete(z.facts, id)
	z.mu.Unlock()
	if ok {
		return f, nil
	}
	in, err := z.insts.Wait(ctx, id, func(types.Instance) (bool, error) { return true, nil })
	if err != nil {
		return instanceFacts{}, fmt.Errorf("describe %s: %w", id, err)
	}
	return factsOf(in), nil
}

// instanceFacts is what DescribeInstances says about an instance that the
// type check needs (Spec does not hold all of it).
type instanceFacts struct {
	id, itype, arch, virt, az, root, state string
	ena                                    bool
}

func factsOf(in types.Instance) instanceFacts {
	f := instanceFacts{id: aws.ToString(in.InstanceId), itype: string(in.InstanceType), arch: string(in.Architecture),
		virt: string(in.VirtualizationType), root: string(in.RootDeviceType), ena: aws.ToBool(in.EnaSupport),
		state: string(stateName(in))}
	if in.Placement != nil {
		f.az = aws.ToString(in.Placement.AvailabilityZone)
	}
	return f
}

// ResizeRefusal says why an instance's type cannot be changed to another.
// It is returned before any mutating call and matches
// ec2ops.ErrUnsupported with errors.Is.
type ResizeRefusal struct {
	InstanceID string
	From, To   string
	// Check is the check that failed: "root-device", "unknown-type",
	// "architecture", "virtualization", "ena", "nvme" or "offering".
	Check  string
	Reason string
	Fix    string
}

func (e *ResizeRefusal) Error() string {
	return fmt.Sprintf("cannot resize instance %s from %s to %s: %s; %s", e.InstanceID, e.From, e.To, e.Reason, e.Fix)
}

// Is makes errors.Is(err, ec2ops.ErrUnsupported) true.
func (e *ResizeRefusal) Is(target error) bool { return target == ec2ops.ErrUnsupported }

// ResizeError reports a stop/start resize whose new type failed to start
// or to become healthy, and whether the old type was restored (the
// instance then runs as before).
type ResizeError struct {
	InstanceID string
	From, To   string
	Restored   bool
	Err        error
}

func (e *ResizeError) Error() string {
	s := fmt.Sprintf("resize %s from %s to %s: %v", e.InstanceID, e.From, e.To, e.Err)
	if e.Restored {
		s += fmt.Sprintf(" (restored %s and started it again)", e.From)
	}
	return s
}

// Unwrap returns the cause.
func (e *ResizeError) Unwrap() error { return e.Err }

// check runs the compatibility checks of f against type to. Same type:
// only the root device matters (a stop/start).
func (z *Resize) check(ctx context.Context, f instanceFacts, to string) error {
	if f.root == string(types.DeviceTypeInstanceStore) {
		return &ResizeRefusal{f.id, f.itype, to, "root-device",
			"its root device is an instance-store volume: such an instance cannot be stopped, so its type cannot change, and its data would not survive a replacement",
			"move the data to EBS or S3 and launch an EBS-backed instance of the new type"}
	}
	if to == f.itype {
		return nil
	}
	infos, err := z.typeInfo.get(ctx, []string{f.itype, to})
	if err != nil {
		return fmt.Errorf("describe instance types: %w", err)
	}
	offered, err := z.offered.get(ctx, []string{to})
	if err != nil {
		return fmt.Errorf("describe instance type offerings: %w", err)
	}
	if ref := compatible(f, infos[f.itype], infos[to], offered[to], z.nvmeOK); ref != nil {
		ref.To = to
		return ref
	}
	return nil
}

// compatible applies AWS's rules for changing the instance type ("Amazon
// EC2 instance type changes" / "Compatibility for changing the instance
// type", Amazon EC2 User Guide) in this order:
//   - the root device must be EBS (an instance-store-backed instance cannot
//     be stopped; checked by the caller);
//   - the type must exist (DescribeInstanceTypes answers
//     InvalidInstanceType otherwise);
//   - architecture: "AMIs are specific to the architecture of the
//     processor": the instance's Architecture (its image's) must be in the
//     new type's ProcessorInfo.SupportedArchitectures (arm64 vs x86_64;
//     i386 only on the few types that list it);
//   - virtualization: an instance launched from a PV image cannot move to an
//     HVM-only type: its VirtualizationType must be in the type's
//     SupportedVirtualizationTypes;
//   - enhanced networking: a type whose NetworkInfo.EnaSupport is
//     "required" (every Nitro type) needs the instance's EnaSupport
//     attribute on (EC2 refuses ModifyInstanceAttribute or start
//     otherwise);
//   - NVMe: "EBS volumes are exposed as NVMe block devices on instances
//     built on the Nitro System ... you must first install the NVMe drivers".
//     No API shows whether an image has them, so the rule is: a type whose
//     EbsInfo.NvmeSupport is "required" is accepted when the current type's
//     is "required" too (the OS already boots on NVMe) or when the caller
//     set NVMeDriversVerified; otherwise (say a Xen m4 to a Nitro m5) it is
//     refused;
//   - offering: the type must be offered in the instance's Availability
//     Zone (DescribeInstanceTypeOfferings, LocationType
//     availability-zone).
func compatible(f instanceFacts, cur, want *types.InstanceTypeInfo, azs map[string]bool, nvmeOK bool) *ResizeRefusal {
	ref := func(check, reason, fix string) *ResizeRefusal {
		return &ResizeRefusal{InstanceID: f.id, From: f.itype, Check: check, Reason: reason, Fix: fix}
	}
	if want == nil {
		return ref("unknown-type", "the new type does not exist in this Region (DescribeInstanceTypes: InvalidInstanceType)",
			"check the spelling and the Region (aws ec2 describe-instance-types)")
	}
	name := string(want.InstanceType)
	if archs := archsOf(want); len(archs) > 0 {
		// The image's architecture; when DescribeInstances does not say,
		// the current type's architectures (the image runs on one of them).
		mine := []string{f.arch}
		if f.arch == "" {
			mine = archsOf(cur)
		}
		if len(mine) > 0 && !slices.ContainsFunc(mine, func(a string) bool { return slices.Contains(archs, a) }) {
			what := strings.Join(mine, "/")
			return ref("architecture", fmt.Sprintf("the instance's image is %s and %s supports %s only", what, name, strings.Join(archs, ", ")),
				fmt.Sprintf("choose a type with %s processors, or launch a replacement from an image built for %s (Surge with Target.ImageID)", what, strings.Join(archs, "/")))
		}
	}
	if f.virt != "" && len(want.SupportedVirtualizationTypes) > 0 {
		var virts []string
		for _, v := range want.SupportedVirtualizationTypes {
			virts = append(virts, string(v))
		}
		if !slices.Contains(virts, f.virt) {
			return ref("virtualization", fmt.Sprintf("the instance uses %s virtualization and %s supports %s only", f.virt, name, strings.Join(virts, ", ")),
				"choose a type that supports "+f.virt+", or launch a replacement from an HVM image")
		}
	}
	if n := want.NetworkInfo; n != nil && n.EnaSupport == types.EnaSupportRequired && !f.ena {
		return ref("ena", fmt.Sprintf("%s requires enhanced networking (ENA) and the instance's EnaSupport attribute is off", name),
			"install the ENA driver in the instance, then, while it is stopped, turn the attribute on (ec2:ModifyInstanceAttribute EnaSupport)")
	}
	if e := want.EbsInfo; e != nil && e.NvmeSupport == types.EbsNvmeSupportRequired && !nvmeOK {
		if cur == nil || cur.EbsInfo == nil || cur.EbsInfo.NvmeSupport != types.EbsNvmeSupportRequired {
			hv := string(want.Hypervisor)
			if hv == "" {
				hv = "bare metal"
			}
			from := "unknown"
			if cur != nil && cur.EbsInfo != nil {
				from = string(cur.EbsInfo.NvmeSupport)
			}
			return ref("nvme", fmt.Sprintf("%s (%s) exposes EBS volumes as NVMe devices (NvmeSupport required) and the current type's NvmeSupport is %s: the image may lack the NVMe driver", name, hv, from),
				"install the AWS NVMe driver and mount by UUID or label (device names become /dev/nvme*n1), then set ResizeOptions.NVMeDriversVerified")
		}
	}
	if f.az != "" && !azs[f.az] {
		where := slices.Sorted(maps.Keys(azs))
		return ref("offering", fmt.Sprintf("%s is not offered in %s (DescribeInstanceTypeOfferings; offered in %s)", name, f.az, orNone(strings.Join(where, ", "))),
			"choose a type offered in "+f.az+", or replace the instance in a zone that offers it")
	}
	return nil
}

func archsOf(t *types.InstanceTypeInfo) []string {
	if t == nil || t.ProcessorInfo == nil {
		return nil
	}
	var out []string
	for _, a := range t.ProcessorInfo.SupportedArchitectures {
		out = append(out, string(a))
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// fetchTypes describes up to 100 types a call. A name EC2 does not know
// fails the whole call (InvalidInstanceType); the batch is then described
// one by one and the unknown names map to nil.
func (z *Resize) fetchTypes(ctx context.Context, names []string) (map[string]*types.InstanceTypeInfo, error) {
	out := map[string]*types.InstanceTypeInfo{}
	for chunk := range slices.Chunk(names, maxTypesPerCall) {
		got, err := z.describeTypes(ctx, chunk)
		if awserr.Code(err) == codeInvalidType && len(chunk) > 1 {
			for _, n := range chunk {
				one, err := z.describeTypes(ctx, []string{n})
				if awserr.Code(err) == codeInvalidType {
					out[n] = nil
					continue
				}
				if err != nil {
					return nil, err
				}
				maps.Copy(out, one)
			}
			continue
		}
		if awserr.Code(err) == codeInvalidType {
			out[chunk[0]] = nil
			continue
		}
		if err != nil {
			return nil, err
		}
		maps.Copy(out, got)
	}
	return out, nil
}

func (z *Resize) describeTypes(ctx context.Context, names []string) (map[string]*types.InstanceTypeInfo, error) {
	in := &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(maxTypesPage)}
	for _, n := range names {
		in.InstanceTypes = append(in.InstanceTypes, types.InstanceType(n))
	}
	out := map[string]*types.InstanceTypeInfo{}
	for {
		var page *ec2.DescribeInstanceTypesOutput
		err := z.r.do(ctx, "DescribeInstanceTypes", 0, func(ctx context.Context) (err error) {
			page, err = z.client.DescribeInstanceTypes(ctx, in)
			return err
		})
		if err != nil {
			return nil, err
		}
		for i := range page.InstanceTypes {
			info := page.InstanceTypes[i]
			out[string(info.InstanceType)] = &info
		}
		if aws.ToString(page.NextToken) == "" {
			return out, nil
		}
		in.NextToken = page.NextToken
	}
}

// fetchOfferings lists the Availability Zones that offer each type (all
// zones of the Region in one answer per type batch).
func (z *Resize) fetchOfferings(ctx context.Context, names []string) (map[string]map[string]bool, error) {
	out := map[string]map[string]bool{}
	for _, n := range names {
		out[n] = map[string]bool{}
	}
	for chunk := range slices.Chunk(names, maxTypesPerCall) {
		in := &ec2.DescribeInstanceTypeOfferingsInput{LocationType: types.LocationTypeAvailabilityZone,
			Filters:    []types.Filter{{Name: aws.String("instance-type"), Values: slices.Clone(chunk)}},
			MaxResults: aws.Int32(maxOfferingsPage)}
		for {
			var page *ec2.DescribeInstanceTypeOfferingsOutput
			err := z.r.do(ctx, "DescribeInstanceTypeOfferings", 0, func(ctx context.Context) (err error) {
				page, err = z.client.DescribeInstanceTypeOfferings(ctx, in)
				return err
			})
			if err != nil {
				return nil, err
			}
			for _, o := range page.InstanceTypeOfferings {
				if m := out[string(o.InstanceType)]; m != nil {
					m[aws.ToString(o.Location)] = true
				}
			}
			if aws.ToString(page.NextToken) == "" {
				break
			}
			in.NextToken = page.NextToken
		}
	}
	return out, nil
}

// loader caches values by key, loads missing keys in one batch and lets
// concurrent callers of the same keys wait for one load instead of making
// their own calls. Failed loads are not cached.
type loader[V any] struct {
	fetch func(ctx context.Context, keys []string) (map[string]V, error)
	mu    sync.Mutex
	m     map[string]*entry[V]
}

type entry[V any] struct {
	done chan struct{}
	v    V
	err  error
}

func newLoader[V any](fetch func(context.Context, []string) (map[string]V, error)) *loader[V] {
	return &loader[V]{fetch: fetch, m: map[string]*entry[V]{}}
}

func (l *loader[V]) get(ctx context.Context, keys []string) (map[string]V, error) {
	l.mu.Lock()
	var mine []string
	wait := map[string]*entry[V]{}
	for _, k := range keys {
		if _, ok := wait[k]; ok {
			continue
		}
		e := l.m[k]
		if e == nil {
			e = &entry[V]{done: make(chan struct{})}
			l.m[k] = e
			mine = append(mine, k)
		}
		wait[k] = e
	}
	l.mu.Unlock()
	if len(mine) > 0 {
		got, err := l.fetch(ctx, mine)
		l.mu.Lock()
		for _, k := range mine {
			e := l.m[k]
			e.v, e.err = got[k], err
			if err != nil {
				delete(l.m, k) // the next caller tries again
			}
			close(e.done)
		}
		l.mu.Unlock()
	}
	out := make(map[string]V, len(wait))
	for k, e := range wait {
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err != nil {
			return nil, e.err
		}
		out[k] = e.v
	}
	return out, nil
}

// bringUp checks the type first (no change before it passes), then
// resizes: in surge mode through Surge; in stop/start mode drain, stop,
// modify, start, wait healthy, put back in service. From the stop to the
// start the caller's cancellation is held back (bounded by HealthTimeout
// per wait), so a cancelled resize never leaves the instance stopped: a
// Rollout rerun does not pick stopped instances up.
func (z *Resize) bringUp(ctx context.Context, j *job) error {
	rt := z.r
	id := j.cur.InstanceID
	to := j.want.InstanceType
	j.phase = "compatibility"
	f, err := z.factsFor(ctx, id)
	if err != nil {
		return err
	}
	if err := z.check(ctx, f, to); err != nil {
		return err
	}
	rt.emit(ec2ops.Event{Operation: j.op, Phase: "compatibility", Resource: id, Message: f.itype + " -> " + to + " fits"})
	if z.surge != nil {
		return z.surge.bringUp(ctx, j)
	}
	j.newID = id
	if f.state == string(types.InstanceStateNameStopped) {
		// Stopped by its owner: change the type and leave it stopped.
		j.phase = "modify"
		if err := z.modify(ctx, id, f.itype, to); err != nil {
			return err
		}
		j.step("done")
		return nil
	}
	j.phase = "deregister"
	if err := rt.deregister(ctx, j.op, id, j.cur.TargetGroups); err != nil {
		return err
	}
	j.phase = "before-stop hook"
	if err := runHook(ctx, "BeforeTerminate", rt.opts.Hooks.BeforeTerminate, id); err != nil {
		return err
	}
	nc := context.WithoutCancel(ctx)
	j.phase = "stop"
	if err := z.stop(ctx, nc, j.op, id); err != nil {
		return err
	}
	j.step("stopped")
	j.phase = "modify"
	if err := z.modify(nc, id, f.itype, to); err != nil {
		return z.failed(ctx, j, err)
	}
	j.phase = "start"
	if err := z.start(nc, j.op, id); err != nil {
		return z.failed(ctx, j, err)
	}
	if err := ctx.Err(); err != nil {
		return err // started: a rerun finds it running (on the new type)
	}
	if err := runHook(ctx, "AfterLaunch", rt.opts.Hooks.AfterLaunch, id); err != nil {
		return z.failed(ctx, j, err)
	}
	j.phase = "wait-healthy"
	rt.emit(ec2ops.Event{Operation: j.op, Phase: "wait-healthy", Resource: id})
	if err := rt.waitHealthy(ctx, id); err != nil {
		return z.failed(ctx, j, err)
	}
	if rt.opts.HealthCheck != nil {
		j.phase = "health-check"
		if err := rt.opts.HealthCheck(ctx, id); err != nil {
			return z.failed(ctx, j, fmt.Errorf("%w: health check: %w", ErrUnhealthy, err))
		}
	}
	j.phase = "before-in-service hook"
	if err := runHook(ctx, "BeforeInService", rt.opts.Hooks.BeforeInService, id); err != nil {
		return z.failed(ctx, j, err)
	}
	j.phase = "register"
	if err := rt.register(ctx, j); err != nil {
		return err
	}
	j.step("done")
	rt.emit(ec2ops.Event{Operation: j.op, Phase: "resized", Resource: id, Message: f.itype + " -> " + to})
	return runHook(ctx, "AfterInService", rt.opts.Hooks.AfterInService, id)
}

// failed restores the old type after the new one failed (unless the
// caller cancelled: then the rollback, or a rerun, does it).
func (z *Resize) failed(ctx context.Context, j *job, cause error) error {
	e := &ResizeError{InstanceID: j.cur.InstanceID, From: j.cur.InstanceType, To: j.want.InstanceType, Err: cause}
	if ctx.Err() != nil {
		return e
	}
	if err := z.restore(ctx, j); err != nil {
		e.Err = errors.Join(cause, fmt.Errorf("restore %s: %w", e.From, err))
		return e
	}
	e.Restored = true
	z.mu.Lock()
	z.restored[j] = true
	z.mu.Unlock()
	return e
}

// restore puts the old type back and starts the instance, from whatever
// state the instance is in (read first), and waits until it is healthy.
func (z *Resize) restore(ctx context.Context, j *job) error {
	rt := z.r
	id, old := j.cur.InstanceID, j.cur.InstanceType
	ins, err := rt.describe(ctx, []types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}})
	if err != nil {
		return err
	}
	if len(ins) == 0 {
		return fmt.Errorf("instance %s: %w", id, ec2ops.ErrNotFound)
	}
	f := factsOf(ins[0])
	rt.emit(ec2ops.Event{Operation: j.op, Phase: "rollback", Resource: id, Message: "restore " + old})
	nc := context.WithoutCancel(ctx)
	if f.itype != old {
		if f.state != string(types.InstanceStateNameStopped) {
			if err := z.stop(ctx, nc, j.op, id); err != nil {
				return err
			}
		}
		if err := z.modify(nc, id, f.itype, old); err != nil {
			return err
		}
		f.state = string(types.InstanceStateNameStopped)
	}
	if f.state == string(types.InstanceStateNameStopped) || f.state == string(types.InstanceStateNameStopping) {
		if f.state == string(types.InstanceStateNameStopping) {
			if err := z.waitStopped(nc, id); err != nil {
				return err
			}
		}
		if err := z.start(nc, j.op, id); err != nil {
			return err
		}
	}
	return rt.waitHealthy(ctx, id)
}

// stop stops id and waits until it is stopped. Once StopInstances went
// out, the wait uses nc (the caller's cancellation held back).
func (z *Resize) stop(ctx, nc context.Context, op, id string) error {
	rt := z.r
	rt.emit(ec2ops.Event{Operation: op, Phase: "stop", Resource: id})
	err := rt.do(ctx, "StopInstances", 1, func(ctx context.Context) error {
		_, err := rt.ec2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}})
		return err
	})
	if err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	return z.waitStopped(nc, id)
}

func (z *Resize) waitStopped(ctx context.Context, id string) error {
	rt := z.r
	wctx, cancel := context.WithTimeout(ctx, rt.d(rt.opts.HealthTimeout))
	defer cancel()
	_, err := z.insts.Wait(wctx, id, ec2wait.Stopped)
	return rt.timeout(ctx, err, "wait for "+id+" to stop")
}

func (z *Resize) modify(ctx context.Context, id, from, to string) error {
	if from == to {
		return nil
	}
	rt := z.r
	err := rt.do(ctx, "ModifyInstanceAttribute", 0, func(ctx context.Context) error {
		_, err := rt.ec2.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id),
			InstanceType: &types.AttributeValue{Value: aws.String(to)}})
		return err
	})
	if err != nil {
		return fmt.Errorf("change the type of %s from %s to %s: %w", id, from, to, err)
	}
	rt.emit(ec2ops.Event{Operation: "resize", Phase: "modify", Resource: id, Message: from + " -> " + to})
	rt.log.InfoContext(ctx, "changed instance type", "instance", id, "from", from, "to", to)
	return nil
}

// start starts id and waits until it runs. An instance that falls back
// to stopped with a Server.* state reason (for example
// Server.InsufficientInstanceCapacity) fails the wait at once.
func (z *Resize) start(ctx context.Context, op, id string) error {
	rt := z.r
	rt.emit(ec2ops.Event{Operation: op, Phase: "start", Resource: id})
	err := rt.do(ctx, "StartInstances", 1, func(ctx context.Context) error {
		_, err := rt.ec2.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
		return err
	})
	if err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	wctx, cancel := context.WithTimeout(ctx, rt.d(rt.opts.HealthTimeout))
	defer cancel()
	_, err = z.insts.Wait(wctx, id, func(in types.Instance) (bool, error) {
		st := stateName(in)
		if st == types.InstanceStateNameStopped && in.StateReason != nil && strings.HasPrefix(aws.ToString(in.StateReason.Code), stateReasonServer) {
			return false, fmt.Errorf("%w: %s did not start: %s", ErrUnhealthy, id, aws.ToString(in.StateReason.Code))
		}
		return ec2wait.Running(in)
	})
	return rt.timeout(ctx, err, "wait for "+id+" to run")
}

// retire has nothing to do in place; in surge mode the old instance is
// terminated.
func (z *Resize) retire(ctx context.Context, j *job) error {
	if z.surge != nil {
		return z.surge.retire(ctx, j)
	}
	return nil
}

// rollback undoes what bringUp did: nothing before the check passed; in
// surge mode Surge's rollback (the old instance is kept); in stop/start
// mode the old type back, the instance started and back in its target
// groups.
func (z *Resize) rollback(ctx context.Context, j *job) error {
	if j.phase == "compatibility" {
		return nil
	}
	if z.surge != nil {
		return z.surge.rollback(ctx, j)
	}
	z.mu.Lock()
	done := z.restored[j]
	delete(z.restored, j)
	z.mu.Unlock()
	if !done && j.phase != "deregister" && j.phase != "before-stop hook" {
		if err := z.restore(ctx, j); err != nil {
			return err
		}
	}
	if z.r.elb == nil || len(j.cur.TargetGroups) == 0 {
		return nil
	}
	return z.r.register(ctx, j)
}

func (z *Resize) steps(j *job) []ec2ops.Step {
	id := j.cur.InstanceID
	from, to := j.cur.InstanceType, j.want.InstanceType
	var st []ec2ops.Step
	add := func(action, reason string, res ...string) {
		st = append(st, ec2ops.Step{Action: action, Resources: res, Reason: reason})
	}
	if from != to {
		add("ec2:DescribeInstanceTypes", fmt.Sprintf("check that %s fits %s (%s): architecture, virtualization, ENA, NVMe", to, id, from), to, from)
		add("ec2:DescribeInstanceTypeOfferings", fmt.Sprintf("check that %s is offered in %s", to, j.cur.AvailabilityZone), to)
	}
	if z.surge != nil {
		return append(st, surgeSteps(z.r, j)...)
	}
	why := fmt.Sprintf("change the type %s -> %s", from, to)
	if from == to {
		why = "stop and start on new hardware (same type)"
	}
	if j.cur.State == string(types.InstanceStateNameStopped) {
		if from != to {
			add("ec2:ModifyInstanceAttribute", why+" (the instance is stopped and stays stopped)", id)
		}
		return st
	}
	for _, tg := range j.cur.TargetGroups {
		add("elasticloadbalancing:DeregisterTargets", "drain "+id+" before it stops", tg.TargetGroupARN)
	}
	add("ec2:StopInstances", "stop "+id+" (EBS volumes, network interfaces, private IPs and Elastic IP stay)", id)
	add("ec2:DescribeInstances", "wait until it is stopped (batched poller)", id)
	if from != to {
		add("ec2:ModifyInstanceAttribute", why, id)
	}
	add("ec2:StartInstances", "start it as "+to+" (on failure: restore "+from+" and start again)", id)
	add("ec2:DescribeInstanceStatus", "wait until both status checks pass", id)
	for _, tg := range j.cur.TargetGroups {
		add("elasticloadbalancing:RegisterTargets", "put "+id+" back in service", tg.TargetGroupARN)
	}
	return st
}

// Policy returns the least-privilege IAM policy of Resize: in stop/start
// mode ec2:StopInstances, ec2:StartInstances and
// ec2:ModifyInstanceAttribute besides the reads; in surge mode Surge's
// policy; both with ec2:DescribeInstanceTypes and
// ec2:DescribeInstanceTypeOfferings (neither supports resource-level
// permissions).
func (z *Resize) Policy() ec2ops.Policy {
	typeReads := ec2ops.Statement{Sid: "InstanceTypes", Action: []string{"ec2:DescribeInstanceTypes", "ec2:DescribeInstanceTypeOfferings"}}
	if z.surge != nil {
		p := surgePolicy(z.r)
		return ec2ops.NewPolicy(append(p.Statement, typeReads)...)
	}
	st := []ec2ops.Statement{
		{Sid: "Describe", Action: []string{"ec2:DescribeInstances", "ec2:DescribeInstanceAttribute", "ec2:DescribeInstanceStatus",
			"ec2:DescribeVolumes", "ec2:DescribeAddresses", "ec2:DescribeInstanceCreditSpecifications"}},
		typeReads,
		{Sid: "Resize", Action: []string{"ec2:StopInstances", "ec2:StartInstances", "ec2:ModifyInstanceAttribute"}},
	}
	if len(z.r.opts.TargetGroups) > 0 {
		st = append(st, ec2ops.Statement{Sid: "TargetGroups", Action: []string{"elasticloadbalancing:RegisterTargets",
			"elasticloadbalancing:DeregisterTargets"}, Resource: slices.Clone(z.r.opts.TargetGroups)},
			ec2ops.Statement{Sid: "TargetHealth", Action: []string{"elasticloadbalancing:DescribeTargetHealth"}})
	}
	return ec2ops.NewPolicy(st...)
}
