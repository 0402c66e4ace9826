package ami

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awserr"
	"github.com/ec2ops/ec2ops/internal/awsid"
	"github.com/ec2ops/ec2ops/internal/ratelimit"
)

// ResolverOptions configures a Resolver. Zero values are safe defaults.
type ResolverOptions struct {
	// Parameters reads SSM parameters for FromParameter; nil makes
	// FromParameter fail with ec2ops.ErrUnsupported.
	Parameters ParameterAPI
	// Limiter paces EC2 calls; nil means a private limiter with the
	// published EC2 buckets.
	Limiter *ratelimit.Limiter
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// Resolver finds the image to use: the newest image matching a Query, the
// image an SSM public parameter names, or the image a Packer manifest
// records.
type Resolver struct {
	ec2  ImagesAPI
	ssm  ParameterAPI
	c    common
	ssmC common
	opts ResolverOptions
}

// NewResolver returns a Resolver over api.
func NewResolver(api ImagesAPI, optFns ...func(*ResolverOptions)) *Resolver {
	o := ResolverOptions{}
	for _, f := range optFns {
		f(&o)
	}
	return &Resolver{ec2: api, ssm: o.Parameters, opts: o, c: newCommon("resolve", o.Limiter, nil, o.Logger),
		ssmC: newCommon("resolve", ratelimit.New(ratelimit.SSM()), nil, o.Logger)}
}

// NewResolverFromConfig returns a Resolver with EC2 and SSM clients made
// from cfg.
func NewResolverFromConfig(cfg aws.Config, optFns ...func(*ResolverOptions)) *Resolver {
	base := func(o *ResolverOptions) { o.Parameters = ssm.NewFromConfig(cfg) }
	return NewResolver(ec2.NewFromConfig(cfg), append([]func(*ResolverOptions){base}, optFns...)...)
}

// Query selects images. Owners is required: a name search without owners
// would also match public images of any account, which is how the
// "whoAMI" name-confusion attack plants an image
// (https://securitylabs.datadoghq.com/articles/whoami-a-cloud-image-name-confusion-attack/);
// AWS recommends the Owners parameter (DescribeImages API reference).
type Query struct {
	// Owners: "self", "amazon", "aws-marketplace" or account IDs.
	Owners []string
	// Name is a name pattern; * and ? are wildcards (EC2 filter syntax).
	Name string
	// Tags must all match (a value may use wildcards).
	Tags map[string]string
	// Architecture: x86_64, arm64, ... ; empty means any.
	Architecture types.ArchitectureValues
	// Virtualization: hvm (the default when empty) or paravirtual; "any"
	// for either.
	Virtualization types.VirtualizationType
	// IncludeDeprecated and IncludeDisabled admit deprecated and disabled
	// images, which are excluded by default.
	IncludeDeprecated, IncludeDisabled bool
}

var ownerRE = regexp.MustCompile(`^(self|amazon|aws-marketplace|aws-backup-vault|[0-9]{12})$`)

func (q Query) validate() error {
	if len(q.Owners) == 0 {
		return ec2ops.InvalidInput("Query.Owners", "", "no owner given: a name search would match public images of any account",
			`set Owners, e.g. []string{"self"} or []string{"amazon"} or the publisher's account ID`)
	}
	for _, o := range q.Owners {
		if !ownerRE.MatchString(o) {
			return ec2ops.InvalidInput("Query.Owners", o, "not an owner", "use self, amazon, aws-marketplace or a 12-digit account ID")
		}
	}
	if q.Name == "" && len(q.Tags) == 0 {
		return ec2ops.InvalidInput("Query.Name", "", "neither a name pattern nor tags given", "set Name (e.g. \"al2023-ami-2023.*-x86_64\") or Tags")
	}
	return nil
}

// input is the DescribeImages request for q, and its description for a
// NoMatchError.
func (q Query) input() (ec2.DescribeImagesInput, []string) {
	in := ec2.DescribeImagesInput{Owners: slices.Clone(q.Owners)}
	desc := []string{"owners=" + strings.Join(q.Owners, "|")}
	add := func(name, value string) {
		in.Filters = append(in.Filters, filter(name, value))
		desc = append(desc, name+"="+value)
	}
	if q.Name != "" {
		add("name", q.Name)
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range q.Tags {
			if !yield(k) {
				return
			}
		}
	}) {
		add("tag:"+k, q.Tags[k])
	}
	if q.Architecture != "" {
		add("architecture", string(q.Architecture))
	}
	switch q.Virtualization {
	case "":
		add("virtualization-type", string(types.VirtualizationTypeHvm))
	case "any":
	default:
		add("virtualization-type", string(q.Virtualization))
	}
	add("state", string(types.ImageStateAvailable))
	if q.IncludeDeprecated {
		in.IncludeDeprecated = aws.Bool(true)
		desc = append(desc, "include-deprecated")
	}
	if q.IncludeDisabled {
		in.IncludeDisabled = aws.Bool(true)
		desc = append(desc, "include-disabled")
	}
	return in, desc
}

// newestFirst orders images newest first; ties break by name (descending,
// so "app-10" after "app-9" is not assumed) and then ID, so the answer
// never depends on the order AWS lists images in.
func newestFirst(a, b Image) int {
	return cmp.Or(b.Created.Compare(a.Created), strings.Compare(b.Name, a.Name), strings.Compare(a.ID, b.ID))
}

// Newest returns the newest available image that q selects. Deprecated
// images are excluded unless q.IncludeDeprecated (DescribeImages returns
// the caller's own deprecated images regardless, so they are filtered here
// as well), disabled ones unless q.IncludeDisabled. No match is a
// *NoMatchError naming the filters.
func (r *Resolver) Newest(ctx context.Context, q Query) (Image, error) {
	all, err := r.Matching(ctx, q)
	if err != nil {
		return Image{}, err
	}
	return all[0], nil
}

// Matching returns every image q selects, newest first.
func (r *Resolver) Matching(ctx context.Context, q Query) ([]Image, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	in, desc := q.input()
	raw, _, err := describeImages(ctx, r.c, r.ec2, in)
	if err != nil {
		return nil, fmt.Errorf("resolve: %w", err)
	}
	now := time.Now()
	var out []Image
	for _, x := range raw {
		im := imageFromSDK(x)
		if im.Deprecated(now) && !q.IncludeDeprecated {
			continue
		}
		out = append(out, im)
	}
	if len(out) == 0 {
		return nil, &NoMatchError{Source: "DescribeImages", Filters: desc}
	}
	slices.SortFunc(out, newestFirst)
	return out, nil
}

// FromParameter returns the image an SSM parameter names, for example the
// public /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64
// (AWS publishes the newest Amazon Linux AMI of each Region there), after
// checking the image exists and is available (deprecated or disabled
// images are refused unless allowed).
func (r *Resolver) FromParameter(ctx context.Context, name string, allowDeprecated bool) (Image, error) {
	if r.ssm == nil {
		return Image{}, fmt.Errorf("resolve: no SSM client (set ResolverOptions.Parameters): %w", ec2ops.ErrUnsupported)
	}
	if !strings.HasPrefix(name, "/") {
		return Image{}, ec2ops.InvalidInput("name", name, "an SSM parameter name starts with /", "use the full path, e.g. /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")
	}
	out, err := do(ctx, r.ssmC, "GetParameter", 0, func(ctx context.Context) (*ssm.GetParameterOutput, error) {
		return r.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	})
	if err != nil {
		if awserr.Classify(err) == awserr.NotFound {
			return Image{}, &NoMatchError{Source: "ssm:" + name, Filters: []string{"parameter not found"}}
		}
		return Image{}, fmt.Errorf("resolve: ssm:GetParameter %s: %w", name, err)
	}
	id := aws.ToString(out.Parameter.Value)
	if !awsid.Image(id) {
		return Image{}, fmt.Errorf("resolve: parameter %s holds %q, not an AMI ID: %w", name, id, ec2ops.ErrInvalidInput)
	}
	return r.check(ctx, id, "ssm:"+name, allowDeprecated)
}

// check describes id and refuses an image that is not usable.
func (r *Resolver) check(ctx context.Context, id, source string, allowDeprecated bool) (Image, error) {
	im, err := describeImage(ctx, r.c, r.ec2, id)
	if err != nil {
		return Image{}, fmt.Errorf("resolve %s: %w", source, err)
	}
	switch {
	case im.State != types.ImageStateAvailable:
		return Image{}, &NoMatchError{Source: source, Filters: []string{"image-id=" + id, "state=" + string(im.State) + " (want available)"}}
	case im.Deprecated(time.Now()) && !allowDeprecated:
		return Image{}, &NoMatchError{Source: source, Filters: []string{"image-id=" + id, "deprecated since " + im.DeprecationTime.Format(time.RFC3339)}}
	}
	return im, nil
}

// PackerManifest is the manifest file Packer's manifest post-processor
// writes (packer-manifest.json).
type PackerManifest struct {
	Builds []PackerBuild `json:"builds"`
	// LastRunUUID identifies the builds of the most recent run.
	LastRunUUID string `json:"last_run_uuid"`
}

// PackerBuild is one build of a manifest. ArtifactID holds
// "region:ami-id" pairs separated by commas for the amazon-ebs builder.
type PackerBuild struct {
	Name          string            `json:"name"`
	BuilderType   string            `json:"builder_type"`
	BuildTime     int64             `json:"build_time"`
	ArtifactID    string            `json:"artifact_id"`
	PackerRunUUID string            `json:"packer_run_uuid"`
	CustomData    map[string]string `json:"custom_data"`
}

// ParsePackerManifest parses a manifest and checks every artifact ID.
func ParsePackerManifest(data []byte) (PackerManifest, error) {
	var m PackerManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return m, ec2ops.InvalidInput("manifest", "", "not a Packer manifest: "+err.Error(), "pass the packer-manifest.json the manifest post-processor wrote")
	}
	for i, b := range m.Builds {
		if _, err := b.Artifacts(); err != nil {
			return m, ec2ops.InvalidInput(fmt.Sprintf("builds[%d].artifact_id", i), b.ArtifactID, err.Error(), `expect "region:ami-id[,region:ami-id...]"`)
		}
	}
	return m, nil
}

// Artifacts returns the AMI ID per Region of a build.
func (b PackerBuild) Artifacts() (map[string]string, error) {
	out := map[string]string{}
	for part := range strings.SplitSeq(b.ArtifactID, ",") {
		region, id, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || region == "" || !awsid.Image(id) {
			return nil, fmt.Errorf("artifact %q is not region:ami-id", part)
		}
		out[region] = id
	}
	return out, nil
}

// Image returns the AMI of region from the newest build (of the last run
// when LastRunUUID is set, and with build name name when not empty).
func (m PackerManifest) Image(region, name string) (string, error) {
	var best *PackerBuild
	for i := range m.Builds {
		b := &m.Builds[i]
		if (m.LastRunUUID != "" && b.PackerRunUUID != m.LastRunUUID) || (name != "" && b.Name != name) {
			continue
		}
		arts, err := b.Artifacts()
		if err != nil || arts[region] == "" {
			continue
		}
		if best == nil || b.BuildTime >= best.BuildTime {
			best = b
		}
	}
	if best == nil {
		f := []string{"region=" + region}
		if name != "" {
			f = append(f, "build="+name)
		}
		if m.LastRunUUID != "" {
			f = append(f, "packer_run_uuid="+m.LastRunUUID)
		}
		return "", &NoMatchError{Source: "packer manifest", Filters: f}
	}
	arts, _ := best.Artifacts()
	return arts[region], nil
}

// FromPackerManifest returns the image a Packer manifest records for
// region (build name optional), after checking it exists and is
// available.
func (r *Resolver) FromPackerManifest(ctx context.Context, manifest []byte, region, build string) (Image, error) {
	m, err := ParsePackerManifest(manifest)
	if err != nil {
		return Image{}, err
	}
	id, err := m.Image(region, build)
	if err != nil {
		return Image{}, err
	}
	return r.check(ctx, id, "packer manifest", false)
}

// Policy returns the IAM policy the Resolver needs.
func (r *Resolver) Policy() ec2ops.Policy {
	return ec2ops.NewPolicy(
		ec2ops.Statement{Sid: "ResolveImages", Action: []string{"ec2:DescribeImages"}},
		ec2ops.Statement{Sid: "ReadAMIParameters", Action: []string{"ssm:GetParameter"},
			Resource: []string{"arn:aws:ssm:*::parameter/aws/service/*", "arn:aws:ssm:*:*:parameter/*"}},
	)
}
