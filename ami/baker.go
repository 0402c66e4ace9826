package ami

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awserr"
	"github.com/ec2ops/ec2ops/internal/awsid"
	"github.com/ec2ops/ec2ops/internal/ec2wait"
	"github.com/ec2ops/ec2ops/internal/poll"
	"github.com/ec2ops/ec2ops/internal/ratelimit"
)

// BakerOptions configures a Baker. Zero values are safe defaults.
type BakerOptions struct {
	// Runner applies the Commands of recipe layers on the builder and waits
	// for cloud-init to finish, through Systems Manager. It is required for
	// recipes with layers; patching.Runner satisfies it, and AgentWaiter
	// too, which lets the Baker wait for the builder's SSM agent.
	Runner ShellRunner
	// Limiter paces EC2 calls; nil means a private limiter with the
	// published EC2 buckets. Share one limiter between strategies.
	Limiter *ratelimit.Limiter
	// Observer receives progress events (Operation "bake").
	Observer ec2ops.Observer
	// Logger receives structured logs; nil discards them. User data and
	// commands are never logged.
	Logger *slog.Logger
	// PollInterval is the first delay of the batched pollers. Default 15s.
	PollInterval time.Duration
	// BuilderTimeout bounds the wait for the builder to pass its status
	// checks. Default 20m.
	BuilderTimeout time.Duration
	// AgentTimeout bounds the wait for the builder's SSM agent to be online
	// before the first command: an instance passes its status checks before
	// its agent registers, which can take more than two minutes
	// (AWS-FACTS.md "Latencies"). If the Runner implements AgentWaiter, the
	// Baker calls WaitManaged for at most AgentTimeout (Observer phase
	// "wait-agent"). Otherwise, and if an agent drops out later, a RunShell
	// refused with ec2ops.ErrUnmanaged (nothing was sent) is retried after
	// PollInterval, the delay doubling up to a minute, for at most
	// AgentTimeout and 20 attempts. Default 10m.
	AgentTimeout time.Duration
	// ImageTimeout bounds the wait for the image to become available.
	// Default 3h (large volumes take hours: AWS-FACTS.md "Latencies").
	ImageTimeout time.Duration
	// CleanupTimeout bounds the builder's termination, which runs even
	// after ctx is cancelled. Default 2m.
	CleanupTimeout time.Duration
	// Now returns the time used in name templates; nil means time.Now.
	Now func() time.Time
}

// Baker builds AMIs: from an existing instance (CreateImage), or from a
// base image plus layers on a temporary builder instance (the
// Aminator/Packer flow).
type Baker struct {
	ec2  BakeAPI
	opts BakerOptions
	c    common
}

// NewBaker returns a Baker over api.
func NewBaker(api BakeAPI, optFns ...func(*BakerOptions)) *Baker {
	o := BakerOptions{}
	for _, f := range optFns {
		f(&o)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 15 * time.Second
	}
	if o.BuilderTimeout <= 0 {
		o.BuilderTimeout = 20 * time.Minute
	}
	if o.AgentTimeout <= 0 {
		o.AgentTimeout = 10 * time.Minute
	}
	if o.ImageTimeout <= 0 {
		o.ImageTimeout = 3 * time.Hour
	}
	if o.CleanupTimeout <= 0 {
		o.CleanupTimeout = 2 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Baker{ec2: api, opts: o, c: newCommon("bake", o.Limiter, o.Observer, o.Logger)}
}

// NewBakerFromConfig returns a Baker with an EC2 client made from cfg.
func NewBakerFromConfig(cfg aws.Config, optFns ...func(*BakerOptions)) *Baker {
	return NewBaker(ec2.NewFromConfig(cfg), optFns...)
}

// Snapshot asks for an image of an existing instance.
type Snapshot struct {
	// InstanceID is the running or stopped instance to image.
	InstanceID string
	// Name is the AMI name or a name template (see ExpandName).
	Name        string
	Description string
	// Family is recorded in the ec2ops:family tag (Retention selects by it).
	Family string
	// Tags are added to the image and its snapshots.
	Tags map[string]string
	// NoReboot skips the reboot CreateImage does by default. Without the
	// reboot the file systems are imaged while in use: the image is only
	// crash-consistent (as after a power loss), and writes still in the
	// page cache are lost ("Create an Amazon EBS-backed AMI", EC2 User
	// Guide).
	NoReboot bool
}

// Recipe asks for a bake from a base image plus layers.
type Recipe struct {
	// Name is the AMI name or a name template, e.g. "app-{date}-{bake}".
	Name        string
	Description string
	// Family is recorded in the ec2ops:family tag.
	Family string
	// BaseImage is the AMI the builder launches from.
	BaseImage string
	// Layers are applied in order on the builder: every layer's UserData
	// as cloud-init user data at first boot, then every layer's Commands
	// through the Runner.
	Layers []Layer
	// InstanceType of the builder. Default t3.medium.
	InstanceType types.InstanceType
	// SubnetID and SecurityGroupIDs place the builder (defaults: the
	// default VPC's).
	SubnetID         string
	SecurityGroupIDs []string
	// InstanceProfile (name or ARN) gives the builder the role the SSM
	// agent needs (AmazonSSMManagedInstanceCore).
	InstanceProfile string
	// RootVolumeGiB sizes the root volume; zero keeps the base image's.
	RootVolumeGiB int32
	// Spot runs the builder as a one-time spot instance, falling back to
	// on-demand when spot capacity is short. A spot interruption fails the
	// bake (rerun it: it resumes).
	Spot bool
	// Tags are added to the image and its snapshots.
	Tags map[string]string
	// NoReboot: see Snapshot.NoReboot.
	NoReboot bool
}

// Result is a finished bake.
type Result struct {
	// BakeID is the digest of the request; it tags everything the bake made.
	BakeID string
	// Image is the new (or adopted) image, available.
	Image Image
	// BuilderID is the builder instance, terminated ("" for Snapshot).
	BuilderID string
	// Adopted is true when a previous run had made the image already.
	Adopted bool
}

// BakeError reports a bake that stopped: the phase, what it had made so
// far (a rerun with the same request adopts it) and the cause.
type BakeError struct {
	BakeID, Phase      string
	BuilderID, ImageID string
	BuilderLeftBehind  bool // the builder could not be terminated; Sweeper finds it by tag
	Err                error
}

func (e *BakeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "bake %s stopped in %s", e.BakeID, e.Phase)
	if e.BuilderID != "" {
		fmt.Fprintf(&b, " (builder %s", e.BuilderID)
		if e.BuilderLeftBehind {
			b.WriteString(", not terminated: run Sweeper")
		}
		b.WriteString(")")
	}
	if e.ImageID != "" {
		fmt.Fprintf(&b, " (image %s)", e.ImageID)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

// Unwrap returns the cause.
func (e *BakeError) Unwrap() error { return e.Err }

func (s Snapshot) validate() error {
	switch {
	case !strings.HasPrefix(s.InstanceID, "i-"):
		return ec2ops.InvalidInput("Snapshot.InstanceID", s.InstanceID, "not an instance ID", "pass the i-... ID of a running or stopped instance")
	case s.Name == "":
		return ec2ops.InvalidInput("Snapshot.Name", "", "empty", `set an AMI name or template, e.g. "web-{date}-{time}"`)
	}
	_, err := ExpandName(s.Name, NameVars{Family: s.Family, Bake: "000000000000", Time: time.Unix(0, 0)})
	return err
}

// ID returns the bake ID of the request: a digest of the instance and the
// name template.
func (s Snapshot) ID() string { return digest("snapshot", s.InstanceID, s.Name, s.Family) }

func (r Recipe) validate(hasRunner bool) error {
	switch {
	case !awsid.Image(r.BaseImage):
		return ec2ops.InvalidInput("Recipe.BaseImage", r.BaseImage, "not an AMI ID", "resolve the base image first (Resolver.Newest) and pass its ami-... ID")
	case r.Name == "":
		return ec2ops.InvalidInput("Recipe.Name", "", "empty", `set an AMI name or template, e.g. "app-{date}-{bake}"`)
	case r.RootVolumeGiB < 0 || r.RootVolumeGiB > 16384:
		return ec2ops.InvalidInput("Recipe.RootVolumeGiB", fmt.Sprint(r.RootVolumeGiB), "out of range", "use 0 (keep the base image's) or 1..16384")
	}
	if _, err := ExpandName(r.Name, NameVars{Family: r.Family, Bake: "000000000000", Base: r.BaseImage, Time: time.Unix(0, 0)}); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, l := range r.Layers {
		if l.Name == "" || seen[l.Name] {
			return ec2ops.InvalidInput(fmt.Sprintf("Recipe.Layers[%d].Name", i), l.Name, "empty or repeated", "give each layer a distinct name")
		}
		seen[l.Name] = true
		if !l.empty() && !hasRunner {
			return ec2ops.InvalidInput("BakerOptions.Runner", "", "the recipe has layers but no ShellRunner confirms them",
				"set BakerOptions.Runner (patching.Runner satisfies it); the builder needs the SSM agent and an instance profile")
		}
	}
	if _, err := UserData(r.Layers); err != nil {
		return err
	}
	return nil
}

// ID returns the bake ID of the recipe: a digest of everything that shapes
// the image (base, layers, name template, family, root size), so a rerun
// of the same recipe adopts the image or builder of an earlier run.
func (r Recipe) ID() string {
	parts := []string{"recipe", r.BaseImage, r.Name, r.Family, fmt.Sprint(r.RootVolumeGiB)}
	for _, l := range r.Layers {
		parts = append(parts, l.Name, l.UserData, strings.Join(l.Commands, "\x00"))
	}
	return digest(parts...)
}

func (b *Baker) tags(bakeID, family, source string, extra map[string]string) map[string]string {
	t := maps.Clone(extra)
	if t == nil {
		t = map[string]string{}
	}
	t[TagBake] = bakeID
	if family != "" {
		t[TagFamily] = family
	}
	if source != "" {
		t[TagSourceImage] = source
	}
	return t
}

// PlanSnapshot returns the dry run of Snapshot (no API call).
func (b *Baker) PlanSnapshot(req Snapshot) (ec2ops.Plan, error) {
	if err := req.validate(); err != nil {
		return ec2ops.Plan{}, err
	}
	reboot := "reboot the instance for a consistent image"
	if req.NoReboot {
		reboot = "no reboot: the image is crash-consistent only"
	}
	return ec2ops.Plan{Operation: "bake", Steps: []ec2ops.Step{
		{Action: "ec2:DescribeImages", Resources: []string{TagBake + "=" + req.ID()}, Reason: "adopt the image of an earlier run"},
		{Action: "ec2:CreateImage", Resources: []string{req.InstanceID, req.Name}, Reason: reboot + "; tag the image and its snapshots"},
		{Action: "ec2:DescribeImages", Resources: []string{req.Name}, Reason: "wait until available (batched poller)"},
	}}, nil
}

// PlanRecipe returns the dry run of Bake (no API call).
func (b *Baker) PlanRecipe(r Recipe) (ec2ops.Plan, error) {
	if err := r.validate(b.opts.Runner != nil); err != nil {
		return ec2ops.Plan{}, err
	}
	id := r.ID()
	p := ec2ops.Plan{Operation: "bake", Steps: []ec2ops.Step{
		{Action: "ec2:DescribeImages", Resources: []string{TagBake + "=" + id}, Reason: "adopt the image of an earlier run"},
		{Action: "ec2:DescribeInstances", Resources: []string{TagBake + "=" + id}, Reason: "adopt a builder of an earlier run"},
		{Action: "ec2:RunInstances", Resources: []string{r.BaseImage}, Reason: fmt.Sprintf("launch the builder (%s) with the cloud-init layers, tagged %s=%s", builderType(r), TagRole, RoleBuilder)},
		{Action: "ec2:DescribeInstanceStatus", Resources: []string{"builder"}, Reason: "wait until the builder passes its status checks"},
	}}
	if r.runsCommands() {
		p.Steps = append(p.Steps, ec2ops.Step{Action: "ssm:DescribeInstanceInformation", Resources: []string{"builder"},
			Reason: fmt.Sprintf("wait until the builder's SSM agent is online (at most %s)", b.opts.AgentTimeout)})
	}
	ud, _ := UserData(r.Layers)
	if ud != "" {
		p.Steps = append(p.Steps, ec2ops.Step{Action: "ssm:SendCommand", Resources: []string{"builder"}, Reason: "wait for cloud-init to finish (cloud-init status --wait)"})
	}
	for _, l := range r.Layers {
		if len(l.Commands) > 0 {
			p.Steps = append(p.Steps, ec2ops.Step{Action: "ssm:SendCommand", Resources: []string{"builder"}, Reason: fmt.Sprintf("apply layer %s (%d commands)", l.Name, len(l.Commands))})
		}
	}
	p.Steps = append(p.Steps,
		ec2ops.Step{Action: "ec2:CreateImage", Resources: []string{r.Name}, Reason: "image the builder, tagged " + TagBake + "=" + id},
		ec2ops.Step{Action: "ec2:DescribeImages", Resources: []string{r.Name}, Reason: "wait until available"},
		ec2ops.Step{Action: "ec2:TerminateInstances", Resources: []string{"builder"}, Reason: "always, on failure and cancellation too"},
	)
	return p, nil
}

func builderType(r Recipe) string {
	t := string(r.InstanceType)
	if t == "" {
		t = string(types.InstanceTypeT3Medium)
	}
	if r.Spot {
		return t + ", spot"
	}
	return t
}

// findBakeImage returns the image of an earlier run with bakeID, if any.
func (b *Baker) findBakeImage(ctx context.Context, bakeID string) (*Image, error) {
	imgs, _, err := describeImages(ctx, b.c, b.ec2, ec2.DescribeImagesInput{Owners: []string{"self"}, IncludeDisabled: aws.Bool(true),
		Filters: []types.Filter{filter("tag:"+TagBake, bakeID)}})
	if err != nil {
		return nil, err
	}
	for _, x := range imgs {
		im := imageFromSDK(x)
		if im.State == types.ImageStatePending || im.State == types.ImageStateAvailable {
			return &im, nil
		}
		if im.State == types.ImageStateFailed {
			return nil, fmt.Errorf("image %s of an earlier run of this bake failed; deregister it and run again: %w", im.ID, poll.ErrCondition)
		}
	}
	return nil, nil
}

// Snapshot images an existing instance with CreateImage (with a reboot
// unless NoReboot), tags the image and its snapshots, and waits until it
// is available. A rerun with the same request adopts the image of the
// earlier run (found by its ec2ops:bake tag; CreateImage has no
// ClientToken) instead of making a second one.
func (b *Baker) Snapshot(ctx context.Context, req Snapshot) (Result, error) {
	if err := req.validate(); err != nil {
		return Result{}, err
	}
	id := req.ID()
	res := Result{BakeID: id}
	fail := func(phase string, err error) (Result, error) {
		b.c.emit(phase, res.Image.ID, 0, 0, "failed", err)
		return res, &BakeError{BakeID: id, Phase: phase, ImageID: res.Image.ID, Err: err}
	}
	b.c.emit("adopt", "", 0, 0, "look for an earlier run", nil)
	prev, err := b.findBakeImage(ctx, id)
	if err != nil {
		return fail("adopt", err)
	}
	if prev != nil {
		res.Adopted = true
		res.Image = *prev
	} else {
		im, err := b.createImage(ctx, id, req.InstanceID, req.Name, req.Description, b.tags(id, req.Family, "", req.Tags), req.Family, "", req.NoReboot)
		if err != nil {
			return fail("create-image", err)
		}
		res.Image = im
	}
	im, err := b.waitImage(ctx, res.Image.ID)
	if err != nil {
		return fail("wait-image", err)
	}
	res.Image = im
	b.c.emit("done", im.ID, 1, 1, "image available", nil)
	return res, nil
}

// createImage calls CreateImage; a name already taken by an image of the
// same bake (a lost response) is adopted.
func (b *Baker) createImage(ctx context.Context, bakeID, instanceID, nameTmpl, desc string, tags map[string]string, family, base string, noReboot bool) (Image, error) {
	name, err := ExpandName(nameTmpl, NameVars{Family: family, Bake: bakeID, Base: base, Time: b.opts.Now()})
	if err != nil {
		return Image{}, err
	}
	in := &ec2.CreateImageInput{
		InstanceId: aws.String(instanceID), Name: aws.String(name), NoReboot: aws.Bool(noReboot),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeImage, Tags: sdkTags(tags)},
			{ResourceType: types.ResourceTypeSnapshot, Tags: sdkTags(tags)},
		},
	}
	if desc != "" {
		in.Description = aws.String(desc)
	}
	b.c.emit("create-image", instanceID, 0, 1, name, nil)
	out, err := do(ctx, b.c, "CreateImage", 0, func(ctx context.Context) (*ec2.CreateImageOutput, error) {
		return b.ec2.CreateImage(ctx, in)
	})
	if isCode(err, "InvalidAMIName.Duplicate") {
		imgs, _, derr := describeImages(ctx, b.c, b.ec2, ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []types.Filter{filter("name", name)}})
		if derr == nil && len(imgs) == 1 && imageFromSDK(imgs[0]).Tags[TagBake] == bakeID {
			return imageFromSDK(imgs[0]), nil
		}
		return Image{}, fmt.Errorf("ec2:CreateImage: the name %q is taken by another image; change the name template: %w", name, err)
	}
	if err != nil {
		return Image{}, fmt.Errorf("ec2:CreateImage: %w", err)
	}
	b.c.log.InfoContext(ctx, "image creating", "image", aws.ToString(out.ImageId), "name", name, "instance", instanceID)
	return Image{ID: aws.ToString(out.ImageId), Name: name, State: types.ImageStatePending, Tags: tags}, nil
}

// imagePoller waits for images with one DescribeImages call per tick for
// every image in flight.
func (b *Baker) imagePoller() *poll.Poller[Image] {
	return newImagePoller(b.c, b.ec2, b.opts.PollInterval)
}

func newImagePoller(c common, api ImagesAPI, interval time.Duration) *poll.Poller[Image] {
	fetch := func(ctx context.Context, ids []string) (map[string]Image, error) {
		out, err := api.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: ids, IncludeDeprecated: aws.Bool(true), IncludeDisabled: aws.Bool(true)})
		if err != nil {
			return nil, err
		}
		m := make(map[string]Image, len(out.Images))
		for _, x := range out.Images {
			m[aws.ToString(x.ImageId)] = imageFromSDK(x)
		}
		return m, nil
	}
	return poll.New(fetch, func(o *poll.Options) {
		o.ChunkSize = 100
		o.Interval = interval
		o.MaxInterval = max(interval, time.Minute)
		o.Limiter = c.lim
		o.Action = "DescribeImages"
	})
}

func imageAvailable(im Image) (bool, error) {
	switch im.State {
	case types.ImageStateAvailable:
		return true, nil
	case types.ImageStatePending:
		return false, nil
	}
	return false, fmt.Errorf("%w: image %s is %s", poll.ErrCondition, im.ID, im.State)
}

func (b *Baker) waitImage(ctx context.Context, id string) (Image, error) {
	b.c.emit("wait-image", id, 0, 1, "waiting for available", nil)
	wctx, cancel := context.WithTimeoutCause(ctx, b.opts.ImageTimeout, ec2ops.ErrTimeout)
	defer cancel()
	im, err := b.imagePoller().Wait(wctx, id, imageAvailable)
	if err != nil {
		if c := context.Cause(wctx); errors.Is(c, ec2ops.ErrTimeout) && ctx.Err() == nil {
			return Image{}, fmt.Errorf("image %s not available after %s: %w", id, b.opts.ImageTimeout, ec2ops.ErrTimeout)
		}
		return Image{}, err
	}
	return im, nil
}

// Bake builds an image from r: it adopts the image of an earlier run of
// the same recipe if there is one; otherwise it launches a builder from
// r.BaseImage (or adopts a live builder of an earlier run) tagged
// ec2ops:role=builder and ec2ops:bake=ID, with the layers' cloud-init user
// data, waits until it passes its status checks and its SSM agent is
// online (AgentTimeout), waits for cloud-init and runs each layer's
// Commands through the Runner, creates the image (tagged,
// with its snapshots), waits until it is available, and always terminates
// the builder, on failure and cancellation too (with a context that
// survives cancellation, bounded by CleanupTimeout). If even that fails,
// the *BakeError says so and Sweeper finds the builder by its tags.
func (b *Baker) Bake(ctx context.Context, r Recipe) (res Result, err error) {
	if err := r.validate(b.opts.Runner != nil); err != nil {
		return Result{}, err
	}
	id := r.ID()
	res.BakeID = id
	phase := "adopt"
	defer func() {
		if err != nil {
			b.c.emit(phase, res.BuilderID, 0, 0, "failed", err)
			var be *BakeError
			if !errors.As(err, &be) {
				err = &BakeError{BakeID: id, Phase: phase, BuilderID: res.BuilderID, ImageID: res.Image.ID, Err: err}
			}
		}
	}()
	b.c.emit("adopt", "", 0, 0, "look for an earlier run", nil)
	prev, err := b.findBakeImage(ctx, id)
	if err != nil {
		return res, err
	}
	if prev == nil {
		phase = "launch-builder"
		var builder string
		if builder, err = b.builder(ctx, r, id); err != nil {
			return res, err
		}
		res.BuilderID = builder
		defer func() {
			if terr := b.terminate(ctx, builder); terr != nil {
				res.BuilderID = builder
				err = &BakeError{BakeID: id, Phase: "terminate-builder", BuilderID: builder, ImageID: res.Image.ID, BuilderLeftBehind: true, Err: errors.Join(err, terr)}
			}
		}()
		phase = "wait-builder"
		if err = b.waitBuilder(ctx, builder); err != nil {
			return res, err
		}
		phase = "wait-agent"
		if err = b.waitAgent(ctx, r, builder); err != nil {
			return res, err
		}
		phase = "layers"
		if err = b.applyLayers(ctx, r, builder); err != nil {
			return res, err
		}
		phase = "create-image"
		if res.Image, err = b.createImage(ctx, id, builder, r.Name, r.Description, b.tags(id, r.Family, r.BaseImage, r.Tags), r.Family, r.BaseImage, r.NoReboot); err != nil {
			return res, err
		}
		phase = "wait-image"
		var im Image
		if im, err = b.waitImage(ctx, res.Image.ID); err != nil {
			return res, err
		}
		res.Image = im
		b.c.emit("done", im.ID, 1, 1, "image available", nil)
		return res, nil
	} else {
		res.Adopted, res.Image = true, *prev
	}
	phase = "wait-image"
	im, err := b.waitImage(ctx, res.Image.ID)
	if err != nil {
		return res, err
	}
	res.Image = im
	b.c.emit("done", im.ID, 1, 1, "image available", nil)
	return res, nil
}

var liveStates = []string{"pending", "running", "stopping", "stopped"}

// builder adopts a live builder of an earlier run of the bake or launches
// one. The ClientToken is ec2ops-bake-ID-N, where N counts the builders of
// earlier runs that are gone, so a rerun after a terminated builder
// launches a fresh one while a retried call never launches two.
func (b *Baker) builder(ctx context.Context, r Recipe, bakeID string) (string, error) {
	var live []string
	gone := 0
	in := &ec2.DescribeInstancesInput{Filters: []types.Filter{filter("tag:"+TagBake, bakeID), filter("tag:"+TagRole, RoleBuilder)}, MaxResults: aws.Int32(maxDescribePage)}
	for {
		out, err := do(ctx, b.c, "DescribeInstances", 0, func(ctx context.Context) (*ec2.DescribeInstancesOutput, error) {
			return b.ec2.DescribeInstances(ctx, in)
		})
		if err != nil {
			return "", fmt.Errorf("ec2:DescribeInstances: %w", err)
		}
		for _, rsv := range out.Reservations {
			for _, x := range rsv.Instances {
				st := ""
				if x.State != nil {
					st = string(x.State.Name)
				}
				if slices.Contains(liveStates, st) {
					live = append(live, aws.ToString(x.InstanceId))
				} else {
					gone++
				}
			}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	if len(live) > 0 {
		b.c.emit("launch-builder", live[0], 1, 1, "adopted the builder of an earlier run", nil)
		return live[0], nil
	}
	ud, err := UserData(r.Layers)
	if err != nil {
		return "", err
	}
	tags := map[string]string{TagRole: RoleBuilder, TagBake: bakeID, "Name": "ec2ops-builder-" + bakeID}
	if r.Family != "" {
		tags[TagFamily] = r.Family
	}
	itype := r.InstanceType
	if itype == "" {
		itype = types.InstanceTypeT3Medium
	}
	run := &ec2.RunInstancesInput{
		ImageId: aws.String(r.BaseImage), InstanceType: itype, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		ClientToken:                       aws.String(fmt.Sprintf("ec2ops-bake-%s-%d", bakeID, gone)),
		InstanceInitiatedShutdownBehavior: types.ShutdownBehaviorTerminate,
		MetadataOptions:                   &types.InstanceMetadataOptionsRequest{HttpTokens: types.HttpTokensStateRequired, HttpEndpoint: types.InstanceMetadataEndpointStateEnabled},
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: sdkTags(tags)},
			{ResourceType: types.ResourceTypeVolume, Tags: sdkTags(tags)},
		},
	}
	if ud != "" {
		run.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(ud)))
	}
	if r.SubnetID != "" {
		run.SubnetId = aws.String(r.SubnetID)
	}
	run.SecurityGroupIds = r.SecurityGroupIDs
	if p := r.InstanceProfile; p != "" {
		if strings.HasPrefix(p, "arn:") {
			run.IamInstanceProfile = &types.IamInstanceProfileSpecification{Arn: aws.String(p)}
		} else {
			run.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String(p)}
		}
	}
	if r.RootVolumeGiB > 0 {
		run.BlockDeviceMappings = []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"),
			Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(r.RootVolumeGiB), VolumeType: types.VolumeTypeGp3, DeleteOnTermination: aws.Bool(true)}}}
	}
	if r.Spot {
		spot := *run
		spot.ClientToken = aws.String(aws.ToString(run.ClientToken) + "-spot")
		spot.InstanceMarketOptions = &types.InstanceMarketOptionsRequest{MarketType: types.MarketTypeSpot,
			SpotOptions: &types.SpotMarketOptions{SpotInstanceType: types.SpotInstanceTypeOneTime, InstanceInterruptionBehavior: types.InstanceInterruptionBehaviorTerminate}}
		id, err := b.runBuilder(ctx, &spot)
		if err == nil {
			return id, nil
		}
		if awserr.Classify(err) != awserr.Capacity {
			return "", err
		}
		b.c.log.InfoContext(ctx, "no spot capacity for the builder; falling back to on-demand", "bake", bakeID)
	}
	return b.runBuilder(ctx, run)
}

func (b *Baker) runBuilder(ctx context.Context, in *ec2.RunInstancesInput) (string, error) {
	out, err := do(ctx, b.c, "RunInstances", 1, func(ctx context.Context) (*ec2.RunInstancesOutput, error) {
		return b.ec2.RunInstances(ctx, in)
	})
	if err != nil {
		return "", fmt.Errorf("ec2:RunInstances: %w", err)
	}
	if len(out.Instances) != 1 {
		return "", fmt.Errorf("ec2:RunInstances returned %d instances, want 1", len(out.Instances))
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	b.c.emit("launch-builder", id, 1, 1, "builder launched", nil)
	b.c.log.InfoContext(ctx, "builder launched", "instance", id, "image", aws.ToString(in.ImageId))
	return id, nil
}

func (b *Baker) waitBuilder(ctx context.Context, id string) error {
	b.c.emit("wait-builder", id, 0, 1, "waiting for status checks", nil)
	wctx, cancel := context.WithTimeoutCause(ctx, b.opts.BuilderTimeout, ec2ops.ErrTimeout)
	defer cancel()
	p := ec2wait.NewStatusPoller(b.ec2, b.c.lim, func(o *poll.Options) { o.Interval = b.opts.PollInterval })
	if _, err := p.Wait(wctx, id, ec2wait.Healthy); err != nil {
		if errors.Is(context.Cause(wctx), ec2ops.ErrTimeout) && ctx.Err() == nil {
			return fmt.Errorf("builder %s not healthy after %s: %w", id, b.opts.BuilderTimeout, ec2ops.ErrTimeout)
		}
		return err
	}
	return nil
}

// runsCommands reports whether the bake sends anything through the Runner:
// "cloud-init status --wait" when a layer has user data, and every layer's
// Commands.
func (r Recipe) runsCommands() bool {
	for _, l := range r.Layers {
		if l.UserData != "" || len(l.Commands) > 0 {
			return true
		}
	}
	return false
}

// waitAgent waits, when the Runner implements AgentWaiter and the recipe
// has something to run, for the builder's SSM agent to be online, for at
// most AgentTimeout.
func (b *Baker) waitAgent(ctx context.Context, r Recipe, builder string) error {
	w, ok := b.opts.Runner.(AgentWaiter)
	if !ok || !r.runsCommands() {
		return nil
	}
	b.c.emit("wait-agent", builder, 0, 1, "waiting for the SSM agent", nil)
	start := time.Now()
	wctx, cancel := context.WithTimeoutCause(ctx, b.opts.AgentTimeout, ec2ops.ErrTimeout)
	defer cancel()
	if err := w.WaitManaged(wctx, []string{builder}); err != nil {
		if errors.Is(context.Cause(wctx), ec2ops.ErrTimeout) && ctx.Err() == nil {
			if !errors.Is(err, ec2ops.ErrTimeout) {
				err = fmt.Errorf("%w: %w", ec2ops.ErrTimeout, err)
			}
			return fmt.Errorf("builder %s: SSM agent not online after %s (AgentTimeout)%s: %w", builder, b.opts.AgentTimeout, agentHint(r), err)
		}
		return fmt.Errorf("builder %s: wait for the SSM agent: %w", builder, err)
	}
	b.c.emit("wait-agent", builder, 1, 1, "SSM agent online after "+time.Since(start).Round(time.Second).String(), nil)
	return nil
}

// agentHint says what to check when the builder's agent never comes online.
func agentHint(r Recipe) string {
	if r.InstanceProfile == "" {
		return "; Recipe.InstanceProfile is empty: the agent needs a role with AmazonSSMManagedInstanceCore"
	}
	return "; check that instance profile " + r.InstanceProfile + " grants AmazonSSMManagedInstanceCore and that the builder reaches the SSM endpoints"
}

// maxUnmanagedAttempts bounds the RunShell calls of one step refused with
// ec2ops.ErrUnmanaged, beside AgentTimeout.
const maxUnmanagedAttempts = 20

// runShell runs commands on the builder through the Runner. A refusal
// because the builder's agent is not online yet (ec2ops.ErrUnmanaged:
// nothing was sent, so a retry cannot run anything twice) is retried after
// PollInterval, the delay doubling up to a minute, for at most AgentTimeout
// and maxUnmanagedAttempts attempts; then the error says so and matches
// both ec2ops.ErrTimeout and ec2ops.ErrUnmanaged.
func (b *Baker) runShell(ctx context.Context, r Recipe, builder string, commands []string) error {
	start := time.Now()
	delay := b.opts.PollInterval
	for attempt := 1; ; attempt++ {
		err := b.opts.Runner.RunShell(ctx, []string{builder}, commands)
		if err == nil || !errors.Is(err, ec2ops.ErrUnmanaged) || ctx.Err() != nil {
			return err
		}
		waited := time.Since(start)
		if attempt >= maxUnmanagedAttempts || waited >= b.opts.AgentTimeout {
			return fmt.Errorf("builder %s: SSM agent still not online after %d attempts over %s (AgentTimeout %s)%s: %w: %w",
				builder, attempt, waited.Round(time.Second), b.opts.AgentTimeout, agentHint(r), ec2ops.ErrTimeout, err)
		}
		d := min(delay, b.opts.AgentTimeout-waited)
		b.c.emit("wait-agent", builder, 0, 1, fmt.Sprintf("SSM agent not online yet; attempt %d, next in %s", attempt, d.Round(time.Second)), nil)
		b.c.log.InfoContext(ctx, "builder's SSM agent not online yet; retrying", "instance", builder, "attempt", attempt, "delay", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, max(b.opts.PollInterval, time.Minute))
	}
}

// cloudInitWait blocks until cloud-init has run every part of the user
// data and fails if one failed ("cloud-init status --wait" exits non-zero
// on error; cloud-init CLI documentation).
const cloudInitWait = "cloud-init status --wait"

func (b *Baker) applyLayers(ctx context.Context, r Recipe, builder string) error {
	var steps []Layer
	for _, l := range r.Layers {
		if len(l.Commands) > 0 {
			steps = append(steps, l)
		}
	}
	ud, _ := UserData(r.Layers)
	total := len(steps)
	if ud != "" {
		total++
	}
	done := 0
	if ud != "" {
		b.c.emit("layers", builder, done, total, "waiting for cloud-init", nil)
		if err := b.runShell(ctx, r, builder, []string{cloudInitWait}); err != nil {
			return fmt.Errorf("cloud-init layers: %w", err)
		}
		done++
	}
	for _, l := range steps {
		b.c.emit("layers", builder, done, total, "layer "+l.Name, nil)
		if err := b.runShell(ctx, r, builder, l.Commands); err != nil {
			return fmt.Errorf("layer %s: %w", l.Name, err)
		}
		done++
	}
	if total > 0 {
		b.c.emit("layers", builder, done, total, "layers applied", nil)
	}
	return nil
}

// terminate ends the builder with a context that outlives ctx's
// cancellation, bounded by CleanupTimeout.
func (b *Baker) terminate(ctx context.Context, id string) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opts.CleanupTimeout)
	defer cancel()
	_, err := do(cctx, b.c, "TerminateInstances", 1, func(ctx context.Context) (*ec2.TerminateInstancesOutput, error) {
		return b.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	})
	if err != nil && awserr.Classify(err) != awserr.NotFound {
		b.c.log.ErrorContext(ctx, "builder not terminated", "instance", id, "err", err)
		return fmt.Errorf("ec2:TerminateInstances %s: %w", id, err)
	}
	b.c.emit("terminate-builder", id, 1, 1, "builder terminated", nil)
	return nil
}

// Policy returns the IAM policy the Baker needs. Launching is limited to
// instances and volumes tagged ec2ops:role=builder at launch, tagging to
// the creating calls, and termination to builders. The Runner's Systems
// Manager permissions are the Runner's (patching.Runner.Policy);
// iam:PassRole is needed for Recipe.InstanceProfile's role.
func (b *Baker) Policy() ec2ops.Policy {
	return ec2ops.NewPolicy(
		ec2ops.Statement{Sid: "Describe", Action: []string{"ec2:DescribeImages", "ec2:DescribeInstances", "ec2:DescribeInstanceStatus"}},
		ec2ops.Statement{Sid: "LaunchBuilder", Action: []string{"ec2:RunInstances"},
			Resource:  []string{"arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:*:*:volume/*"},
			Condition: map[string]map[string]string{"StringEquals": {"aws:RequestTag/" + TagRole: RoleBuilder}}},
		ec2ops.Statement{Sid: "LaunchFrom", Action: []string{"ec2:RunInstances"},
			Resource: []string{"arn:aws:ec2:*::image/*", "arn:aws:ec2:*:*:subnet/*", "arn:aws:ec2:*:*:network-interface/*", "arn:aws:ec2:*:*:security-group/*", "arn:aws:ec2:*:*:key-pair/*", "arn:aws:ec2:*:*:spot-instances-request/*"}},
		ec2ops.Statement{Sid: "TagBuilderOnLaunch", Action: []string{"ec2:CreateTags"},
			Condition: map[string]map[string]string{"StringEquals": {"ec2:CreateAction": "RunInstances"}}},
		ec2ops.Statement{Sid: "TagImageOnCreate", Action: []string{"ec2:CreateTags"},
			Condition: map[string]map[string]string{"StringEquals": {"ec2:CreateAction": "CreateImage"}}},
		ec2ops.Statement{Sid: "CreateImage", Action: []string{"ec2:CreateImage"}},
		ec2ops.Statement{Sid: "TerminateBuilder", Action: []string{"ec2:TerminateInstances"},
			Resource:  []string{"arn:aws:ec2:*:*:instance/*"},
			Condition: map[string]map[string]string{"StringEquals": {"ec2:ResourceTag/" + TagRole: RoleBuilder}}},
	)
}
