package ami

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awsid"
	"github.com/ec2ops/ec2ops/internal/ratelimit"
)

// DistributorOptions configures a Distributor. Zero values are safe
// defaults.
type DistributorOptions struct {
	// Limiter paces EC2 calls of the source Region; nil means a private
	// limiter with the published buckets. Each destination Region gets its
	// own limiter (EC2 throttles per Region).
	Limiter *ratelimit.Limiter
	// Observer receives progress events (Operation "distribute").
	Observer ec2ops.Observer
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// PollInterval is the first delay of the copy pollers. Default 30s.
	PollInterval time.Duration
	// CopyTimeout bounds the wait for the copies. Default 6h (a copy of a
	// large image across Regions takes hours).
	CopyTimeout time.Duration
}

// Distributor copies an image to other Regions, shares it with accounts,
// organizations and OUs (never with everyone), requires IMDSv2 and sets a
// deprecation time.
type Distributor struct {
	src       DistributeAPI
	srcRegion string
	regional  func(region string) DistributeAPI
	opts      DistributorOptions
	c         common

	mu   sync.Mutex
	lims map[string]*ratelimit.Limiter
}

// NewDistributor returns a Distributor for images of sourceRegion (served
// by src); regional returns the client of a destination Region (for the
// simulator: sim.EC2In).
func NewDistributor(src DistributeAPI, sourceRegion string, regional func(region string) DistributeAPI, optFns ...func(*DistributorOptions)) *Distributor {
	o := DistributorOptions{}
	for _, f := range optFns {
		f(&o)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 30 * time.Second
	}
	if o.CopyTimeout <= 0 {
		o.CopyTimeout = 6 * time.Hour
	}
	return &Distributor{src: src, srcRegion: sourceRegion, regional: regional, opts: o,
		c: newCommon("distribute", o.Limiter, o.Observer, o.Logger), lims: map[string]*ratelimit.Limiter{}}
}

// NewDistributorFromConfig returns a Distributor for cfg.Region, with one
// EC2 client per destination Region made from cfg.
func NewDistributorFromConfig(cfg aws.Config, optFns ...func(*DistributorOptions)) *Distributor {
	return NewDistributor(ec2.NewFromConfig(cfg), cfg.Region, func(region string) DistributeAPI {
		return ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.Region = region })
	}, optFns...)
}

// RegionCopy is one destination of a Distribution.
type RegionCopy struct {
	// Region, e.g. "eu-west-1".
	Region string
	// KMSKeyID encrypts the copy's snapshots with this key (ID, alias or
	// ARN; an ARN must be in Region: KMS keys are regional). Empty keeps
	// the source's encryption, or uses the account's default EBS key when
	// Distribution.Encrypt is set.
	KMSKeyID string
}

// Distribution says where an image goes.
type Distribution struct {
	// ImageID is the available source image, in the Distributor's Region.
	ImageID string
	// Regions to copy to.
	Regions []RegionCopy
	// Encrypt encrypts every copy.
	Encrypt bool
	// Accounts, Organizations (ARNs arn:aws:organizations::ACCOUNT:organization/o-...)
	// and OrganizationalUnits (ARNs ...:ou/o-.../ou-...) get launch
	// permission on the source and every copy. Making an image public is
	// refused ("all" is not an account).
	Accounts, Organizations, OrganizationalUnits []string
	// ShareSnapshots also gives Accounts createVolumePermission on the
	// images' snapshots, which an account needs to copy the image or
	// create volumes from it ("Share an AMI with specific AWS accounts",
	// EC2 User Guide). Organizations and OUs cannot be granted snapshot
	// permissions. Encrypted snapshots also need the KMS key shared, which
	// the Distributor does not do.
	ShareSnapshots bool
	// RequireIMDSv2 sets ImdsSupport v2.0: instances launched from the
	// images require IMDSv2 (irreversible for an image).
	RequireIMDSv2 bool
	// DeprecateAt, when set, deprecates the source and every copy then
	// (rounded up to the minute by AWS; at most 10 years ahead).
	DeprecateAt time.Time
}

var (
	regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	orgRE    = regexp.MustCompile(`^arn:aws[a-z-]*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}$`)
	ouRE     = regexp.MustCompile(`^arn:aws[a-z-]*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$`)
	acctRE   = regexp.MustCompile(`^[0-9]{12}$`)
)

func (d *Distributor) validate(x Distribution) error {
	if !awsid.Image(x.ImageID) {
		return ec2ops.InvalidInput("Distribution.ImageID", x.ImageID, "not an AMI ID", "pass the ami-... ID of the source image")
	}
	seen := map[string]bool{}
	for i, r := range x.Regions {
		f := fmt.Sprintf("Distribution.Regions[%d]", i)
		switch {
		case !regionRE.MatchString(r.Region):
			return ec2ops.InvalidInput(f+".Region", r.Region, "not a Region name", `use a name such as "eu-west-1"`)
		case r.Region == d.srcRegion:
			return ec2ops.InvalidInput(f+".Region", r.Region, "the source Region", "leave it out: the source image is already there")
		case seen[r.Region]:
			return ec2ops.InvalidInput(f+".Region", r.Region, "listed twice", "list each Region once")
		}
		seen[r.Region] = true
		if k := r.KMSKeyID; strings.HasPrefix(k, "arn:") {
			if p := strings.SplitN(k, ":", 6); len(p) != 6 || p[2] != "kms" || p[3] != r.Region {
				return ec2ops.InvalidInput(f+".KMSKeyID", k, "not a KMS key ARN in "+r.Region, "KMS keys are regional: use a key of the destination Region")
			}
		}
	}
	for i, a := range x.Accounts {
		if a == "all" {
			return ec2ops.InvalidInput(fmt.Sprintf("Distribution.Accounts[%d]", i), a, "making an image public is refused",
				"share with explicit account IDs, organizations or organizational units")
		}
		if !acctRE.MatchString(a) {
			return ec2ops.InvalidInput(fmt.Sprintf("Distribution.Accounts[%d]", i), a, "not a 12-digit account ID", "use the account ID")
		}
	}
	for i, o := range x.Organizations {
		if !orgRE.MatchString(o) {
			return ec2ops.InvalidInput(fmt.Sprintf("Distribution.Organizations[%d]", i), o, "not an organization ARN", "use arn:aws:organizations::MANAGEMENT-ACCOUNT:organization/o-...")
		}
	}
	for i, o := range x.OrganizationalUnits {
		if !ouRE.MatchString(o) {
			return ec2ops.InvalidInput(fmt.Sprintf("Distribution.OrganizationalUnits[%d]", i), o, "not an OU ARN", "use arn:aws:organizations::MANAGEMENT-ACCOUNT:ou/o-.../ou-...")
		}
	}
	if !x.DeprecateAt.IsZero() {
		now := time.Now()
		if x.DeprecateAt.Before(now) || x.DeprecateAt.After(now.AddDate(10, 0, 0)) {
			return ec2ops.InvalidInput("Distribution.DeprecateAt", x.DeprecateAt.UTC().Format(time.RFC3339), "must be in the future and at most 10 years ahead",
				"pick a time between now and 10 years from now (EnableImageDeprecation API reference)")
		}
	}
	return nil
}

func (x Distribution) shares() bool {
	return len(x.Accounts)+len(x.Organizations)+len(x.OrganizationalUnits) > 0
}

// copyToken is the deterministic ClientToken of the copy of image to region.
func copyToken(imageID, region, kms string, encrypt bool) string {
	return "ec2ops-copy-" + digest(imageID, region, kms, fmt.Sprint(encrypt))
}

// Plan returns the dry run of Apply (no API call).
func (d *Distributor) Plan(x Distribution) (ec2ops.Plan, error) {
	if err := d.validate(x); err != nil {
		return ec2ops.Plan{}, err
	}
	p := ec2ops.Plan{Operation: "distribute"}
	add := func(action string, res []string, why string) {
		p.Steps = append(p.Steps, ec2ops.Step{Action: action, Resources: res, Reason: why})
	}
	add("ec2:DescribeImages", []string{x.ImageID}, "check the source is available")
	for _, r := range x.Regions {
		enc := "keep the source's encryption"
		if r.KMSKeyID != "" {
			enc = "encrypt with " + r.KMSKeyID
		} else if x.Encrypt {
			enc = "encrypt with the default EBS key"
		}
		add("ec2:CopyImage", []string{r.Region + "/" + x.ImageID}, enc+"; ClientToken "+copyToken(x.ImageID, r.Region, r.KMSKeyID, x.Encrypt))
	}
	if len(x.Regions) > 0 {
		add("ec2:DescribeImages", []string{"copies"}, "wait until every copy is available (one call per Region per tick)")
	}
	targets := []string{d.srcRegion + "/" + x.ImageID}
	for _, r := range x.Regions {
		targets = append(targets, r.Region+"/copy")
	}
	if x.shares() {
		who := slices.Concat(x.Accounts, x.Organizations, x.OrganizationalUnits)
		add("ec2:ModifyImageAttribute", targets, "launch permission for "+strings.Join(who, ", "))
		if x.ShareSnapshots && len(x.Accounts) > 0 {
			add("ec2:ModifySnapshotAttribute", targets, "createVolumePermission on the snapshots for "+strings.Join(x.Accounts, ", "))
		}
	}
	if x.RequireIMDSv2 {
		add("ec2:ModifyImageAttribute", targets, "ImdsSupport v2.0")
	}
	if !x.DeprecateAt.IsZero() {
		add("ec2:EnableImageDeprecation", targets, "deprecate at "+x.DeprecateAt.UTC().Format(time.RFC3339))
	}
	return p, nil
}

// Distributed is what Apply made: the image per Region (the source
// Region included).
type Distributed struct {
	Images map[string]Image
}

func (d *Distributor) limiter(region string) common {
	if region == d.srcRegion {
		return d.c
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.lims[region]
	if l == nil {
		l = ratelimit.New(ratelimit.EC2())
		d.lims[region] = l
	}
	c := d.c
	c.lim = l
	return c
}

func (d *Distributor) client(region string) DistributeAPI {
	if region == d.srcRegion {
		return d.src
	}
	return d.regional(region)
}

// Apply copies, shares, requires IMDSv2 and deprecates, in that order.
// Every step is idempotent: copies carry deterministic ClientTokens and
// the ec2ops:copy-of tag (a rerun adopts them), permissions and
// attributes are set to the same values again. A failure is an
// *ec2ops.ProgressError listing the Regions done and pending.
func (d *Distributor) Apply(ctx context.Context, x Distribution) (Distributed, error) {
	if err := d.validate(x); err != nil {
		return Distributed{}, err
	}
	res := Distributed{Images: map[string]Image{}}
	src, err := describeImage(ctx, d.c, d.src, x.ImageID)
	if err != nil {
		return res, fmt.Errorf("distribute: %w", err)
	}
	if src.State != types.ImageStateAvailable {
		return res, fmt.Errorf("distribute: source image %s is %s, not available: %w", src.ID, src.State, ec2ops.ErrUnsupported)
	}
	res.Images[d.srcRegion] = src
	regions := []string{d.srcRegion}
	for _, r := range x.Regions {
		regions = append(regions, r.Region)
	}
	progress := func(err error) error {
		var done, pending []string
		for _, r := range regions {
			if im, ok := res.Images[r]; ok && im.State == types.ImageStateAvailable {
				done = append(done, r)
			} else {
				pending = append(pending, r)
			}
		}
		return &ec2ops.ProgressError{Operation: "distribute", Done: done, Pending: pending, Err: err}
	}

	// Copies: start them all, then wait for them all.
	copies := map[string]string{}
	for i, r := range x.Regions {
		id, err := d.copy(ctx, src, r, x.Encrypt)
		if err != nil {
			return res, progress(fmt.Errorf("copy to %s: %w", r.Region, err))
		}
		copies[r.Region] = id
		d.c.emit("copy", r.Region+"/"+id, i+1, len(x.Regions), "copy started", nil)
	}
	if len(copies) > 0 {
		wctx, cancel := context.WithTimeoutCause(ctx, d.opts.CopyTimeout, ec2ops.ErrTimeout)
		defer cancel()
		type result struct {
			region string
			im     Image
			err    error
		}
		ch := make(chan result, len(copies))
		for region, id := range copies {
			go func() {
				p := newImagePoller(d.limiter(region), d.client(region), d.opts.PollInterval)
				im, err := p.Wait(wctx, id, imageAvailable)
				ch <- result{region, im, err}
			}()
		}
		var errs []error
		for range copies {
			r := <-ch
			if r.err != nil {
				errs = append(errs, fmt.Errorf("copy %s in %s: %w", copies[r.region], r.region, r.err))
				continue
			}
			res.Images[r.region] = r.im
			d.c.emit("wait-copy", r.region+"/"+r.im.ID, len(res.Images)-1, len(copies), "copy available", nil)
		}
		if len(errs) > 0 {
			if errs[0] != nil && context.Cause(wctx) == ec2ops.ErrTimeout && ctx.Err() == nil {
				errs = append(errs, ec2ops.ErrTimeout)
			}
			return res, progress(joinErrs(errs))
		}
	}

	for _, region := range regions {
		im := res.Images[region]
		if err := d.configure(ctx, region, im, x); err != nil {
			return res, progress(fmt.Errorf("configure %s in %s: %w", im.ID, region, err))
		}
	}
	d.c.emit("done", x.ImageID, len(regions), len(regions), "distributed", nil)
	return res, nil
}

func joinErrs(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("%w (and: %s)", errs[0], strings.Join(msgs[1:], "; "))
}

// copy adopts an earlier copy (tag ec2ops:copy-of) or starts one.
func (d *Distributor) copy(ctx context.Context, src Image, r RegionCopy, encrypt bool) (string, error) {
	c, api := d.limiter(r.Region), d.client(r.Region)
	copyOf := d.srcRegion + "/" + src.ID
	prev, _, err := describeImages(ctx, c, api, ec2.DescribeImagesInput{Owners: []string{"self"}, IncludeDisabled: aws.Bool(true),
		Filters: []types.Filter{filter("tag:"+TagCopyOf, copyOf)}})
	if err != nil {
		return "", err
	}
	for _, p := range prev {
		if p.State == types.ImageStateAvailable || p.State == types.ImageStatePending {
			return aws.ToString(p.ImageId), nil
		}
	}
	tags := sdkTags(map[string]string{TagCopyOf: copyOf, TagSourceImage: src.ID})
	in := &ec2.CopyImageInput{
		SourceImageId: aws.String(src.ID), SourceRegion: aws.String(d.srcRegion), Name: aws.String(src.Name),
		ClientToken:   aws.String(copyToken(src.ID, r.Region, r.KMSKeyID, encrypt)),
		CopyImageTags: aws.Bool(true),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeImage, Tags: tags},
			{ResourceType: types.ResourceTypeSnapshot, Tags: tags},
		},
	}
	if src.Description != "" {
		in.Description = aws.String(src.Description)
	}
	if encrypt || r.KMSKeyID != "" {
		in.Encrypted = aws.Bool(true)
	}
	if r.KMSKeyID != "" {
		in.KmsKeyId = aws.String(r.KMSKeyID)
	}
	out, err := do(ctx, c, "CopyImage", 0, func(ctx context.Context) (*ec2.CopyImageOutput, error) {
		return api.CopyImage(ctx, in)
	})
	if err != nil {
		return "", fmt.Errorf("ec2:CopyImage: %w", err)
	}
	d.c.log.InfoContext(ctx, "copy started", "image", src.ID, "region", r.Region, "copy", aws.ToString(out.ImageId))
	return aws.ToString(out.ImageId), nil
}

// configure shares one image, requires IMDSv2 and sets its deprecation.
func (d *Distributor) configure(ctx context.Context, region string, im Image, x Distribution) error {
	c, api := d.limiter(region), d.client(region)
	if x.shares() {
		var add []types.LaunchPermission
		for _, a := range x.Accounts {
			add = append(add, types.LaunchPermission{UserId: aws.String(a)})
		}
		for _, o := range x.Organizations {
			add = append(add, types.LaunchPermission{OrganizationArn: aws.String(o)})
		}
		for _, o := range x.OrganizationalUnits {
			add = append(add, types.LaunchPermission{OrganizationalUnitArn: aws.String(o)})
		}
		if _, err := do(ctx, c, "ModifyImageAttribute", 0, func(ctx context.Context) (*ec2.ModifyImageAttributeOutput, error) {
			return api.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(im.ID),
				LaunchPermission: &types.LaunchPermissionModifications{Add: add}})
		}); err != nil {
			return fmt.Errorf("ec2:ModifyImageAttribute launchPermission: %w", err)
		}
		d.c.emit("share", region+"/"+im.ID, 0, 0, fmt.Sprintf("shared with %d principals", len(add)), nil)
		if x.ShareSnapshots && len(x.Accounts) > 0 {
			var perms []types.CreateVolumePermission
			for _, a := range x.Accounts {
				perms = append(perms, types.CreateVolumePermission{UserId: aws.String(a)})
			}
			for _, sn := range im.Snapshots {
				if _, err := do(ctx, c, "ModifySnapshotAttribute", 0, func(ctx context.Context) (*ec2.ModifySnapshotAttributeOutput, error) {
					return api.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{SnapshotId: aws.String(sn),
						Attribute:              types.SnapshotAttributeNameCreateVolumePermission,
						CreateVolumePermission: &types.CreateVolumePermissionModifications{Add: perms}})
				}); err != nil {
					return fmt.Errorf("ec2:ModifySnapshotAttribute %s: %w", sn, err)
				}
			}
		}
	}
	if x.RequireIMDSv2 {
		if _, err := do(ctx, c, "ModifyImageAttribute", 0, func(ctx context.Context) (*ec2.ModifyImageAttributeOutput, error) {
			return api.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(im.ID),
				ImdsSupport: &types.AttributeValue{Value: aws.String(string(types.ImdsSupportValuesV20))}})
		}); err != nil {
			return fmt.Errorf("ec2:ModifyImageAttribute imdsSupport: %w", err)
		}
	}
	if !x.DeprecateAt.IsZero() {
		if _, err := do(ctx, c, "EnableImageDeprecation", 0, func(ctx context.Context) (*ec2.EnableImageDeprecationOutput, error) {
			return api.EnableImageDeprecation(ctx, &ec2.EnableImageDeprecationInput{ImageId: aws.String(im.ID), DeprecateAt: aws.Time(x.DeprecateAt)})
		}); err != nil {
			return fmt.Errorf("ec2:EnableImageDeprecation: %w", err)
		}
	}
	return nil
}

// Undeprecate cancels the deprecation of an image in region (for example
// when a deprecated image has to stay in service longer).
func (d *Distributor) Undeprecate(ctx context.Context, region, imageID string) error {
	if !awsid.Image(imageID) {
		return ec2ops.InvalidInput("imageID", imageID, "not an AMI ID", "pass the ami-... ID")
	}
	if region == "" {
		region = d.srcRegion
	}
	_, err := do(ctx, d.limiter(region), "DisableImageDeprecation", 0, func(ctx context.Context) (*ec2.DisableImageDeprecationOutput, error) {
		return d.client(region).DisableImageDeprecation(ctx, &ec2.DisableImageDeprecationInput{ImageId: aws.String(imageID)})
	})
	if err != nil {
		return fmt.Errorf("ec2:DisableImageDeprecation %s: %w", imageID, err)
	}
	return nil
}

// Policy returns the IAM policy the Distributor needs. Encrypted copies
// also need the KMS actions on the source and destination keys.
func (d *Distributor) Policy() ec2ops.Policy {
	return ec2ops.NewPolicy(
		ec2ops.Statement{Sid: "Images", Action: []string{"ec2:DescribeImages", "ec2:CopyImage", "ec2:ModifyImageAttribute",
			"ec2:ModifySnapshotAttribute", "ec2:EnableImageDeprecation", "ec2:DisableImageDeprecation"}},
		ec2ops.Statement{Sid: "TagCopies", Action: []string{"ec2:CreateTags"},
			Condition: map[string]map[string]string{"StringEquals": {"ec2:CreateAction": "CopyImage"}}},
		ec2ops.Statement{Sid: "EncryptCopies", Action: []string{"kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey",
			"kms:Encrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"},
			Resource: []string{"arn:aws:kms:*:*:key/*"}},
	)
}
