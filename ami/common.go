package ami

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"github.com/ec2ops/ec2ops/internal/ratelimit"
)

// Tags the package puts on what it creates, so that a rerun adopts instead
// of duplicating and the Sweeper finds leftovers.
const (
	// TagRole marks a builder instance: "builder".
	TagRole = "ec2ops:role"
	// TagBake carries the bake ID (a digest of the recipe) on the builder,
	// its volumes, the image and its snapshots.
	TagBake = "ec2ops:bake"
	// TagFamily names the image family (for Retention).
	TagFamily = "ec2ops:family"
	// TagSourceImage is the image a bake or copy started from.
	TagSourceImage = "ec2ops:source-image"
	// TagCopyOf marks a copy with "REGION/ami-..." of its source.
	TagCopyOf = "ec2ops:copy-of"
	// RoleBuilder is the TagRole value of builder instances.
	RoleBuilder = "builder"
)

// Image is what the package needs to know of an AMI.
type Image struct {
	ID, Name, Description string
	OwnerID               string
	State                 types.ImageState
	Created               time.Time
	// DeprecationTime is zero when no deprecation is set.
	DeprecationTime time.Time
	Architecture    types.ArchitectureValues
	Virtualization  types.VirtualizationType
	Public          bool
	Tags            map[string]string
	// Snapshots are the EBS snapshot IDs of its block device mappings.
	Snapshots []string
	// SizeGiB is the total size of its EBS volumes.
	SizeGiB int
}

// Deprecated reports whether the image is deprecated at t.
func (im Image) Deprecated(t time.Time) bool {
	return !im.DeprecationTime.IsZero() && !t.Before(im.DeprecationTime)
}

func parseAWSTime(s *string) time.Time {
	if s == nil {
		return time.Time{}
	}
	for _, layout := range []string{"2006-01-02T15:04:05.000Z", time.RFC3339Nano, time.RFC3339} {
		if t, err := time.Parse(layout, *s); err == nil {
			return t
		}
	}
	return time.Time{}
}

func imageFromSDK(x types.Image) Image {
	im := Image{
		ID: aws.ToString(x.ImageId), Name: aws.ToString(x.Name), Description: aws.ToString(x.Description),
		OwnerID: aws.ToString(x.OwnerId), State: x.State, Created: parseAWSTime(x.CreationDate),
		DeprecationTime: parseAWSTime(x.DeprecationTime), Architecture: x.Architecture,
		Virtualization: x.VirtualizationType, Public: aws.ToBool(x.Public), Tags: map[string]string{},
	}
	for _, t := range x.Tags {
		im.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	for _, m := range x.BlockDeviceMappings {
		if m.Ebs == nil {
			continue
		}
		if id := aws.ToString(m.Ebs.SnapshotId); id != "" {
			im.Snapshots = append(im.Snapshots, id)
		}
		im.SizeGiB += int(aws.ToInt32(m.Ebs.VolumeSize))
	}
	return im
}

// digest returns a short deterministic ID of parts (12 hex digits).
func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func sdkTags(m map[string]string) []types.Tag {
	keys := slices.Sorted(maps.Keys(m))
	out := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

// common is what every strategy shares: pacing, progress, logging.
type common struct {
	lim *ratelimit.Limiter
	obs ec2ops.Observer
	log *slog.Logger
	op  string
}

func newCommon(op string, lim *ratelimit.Limiter, obs ec2ops.Observer, log *slog.Logger) common {
	if lim == nil {
		lim = ratelimit.New(ratelimit.EC2())
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return common{lim: lim, obs: obs, log: log, op: op}
}

func (c common) emit(phase, resource string, done, total int, msg string, err error) {
	ec2ops.Emit(c.obs, ec2ops.Event{Operation: c.op, Phase: phase, Resource: resource, Done: done, Total: total, Message: msg, Err: err})
}

// Retry policy for single calls: throttling and transient server errors are
// retried with capped exponential backoff (1 s doubling to 20 s, the cap of
// the SDK's standard retryer), up to maxAttempts. A real *ec2.Client
// retries too; these retries matter for clients without a retryer (the
// simulator, tests).
const maxAttempts = 8

// do paces one call of action with the limiter and retries it on
// throttling and transient errors. resources is the resource-token count
// (instances) for actions that have a resource bucket.
func do[T any](ctx context.Context, c common, action string, resources int, call func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	delay := time.Second
	for attempt := 1; ; attempt++ {
		if err := c.lim.Wait(ctx, action, resources); err != nil {
			return zero, err
		}
		out, err := call(ctx)
		if err == nil {
			return out, nil
		}
		cl := awserr.Classify(err)
		if (cl != awserr.Throttle && cl != awserr.Transient) || attempt == maxAttempts {
			return zero, err
		}
		c.log.DebugContext(ctx, "retrying", "action", action, "attempt", attempt, "class", cl.String())
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return zero, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 20*time.Second)
	}
}

// maxDescribePage is the largest MaxResults of DescribeImages and
// DescribeInstances. Source: EC2 API reference (MaxResults 5..1000).
const maxDescribePage = 1000

// describeImages lists every image that in selects, page by page.
func describeImages(ctx context.Context, c common, api ImagesAPI, in ec2.DescribeImagesInput) ([]types.Image, int, error) {
	if len(in.ImageIds) == 0 {
		in.MaxResults = aws.Int32(maxDescribePage)
	}
	var out []types.Image
	calls := 0
	for {
		page, err := do(ctx, c, "DescribeImages", 0, func(ctx context.Context) (*ec2.DescribeImagesOutput, error) {
			return api.DescribeImages(ctx, &in)
		})
		calls++
		if err != nil {
			return nil, calls, fmt.Errorf("ec2:DescribeImages: %w", err)
		}
		out = append(out, page.Images...)
		if aws.ToString(page.NextToken) == "" {
			return out, calls, nil
		}
		in.NextToken = page.NextToken
	}
}

// describeImage returns one image by ID; a missing one matches
// ec2ops.ErrNotFound.
func describeImage(ctx context.Context, c common, api ImagesAPI, id string) (Image, error) {
	imgs, _, err := describeImages(ctx, c, api, ec2.DescribeImagesInput{ImageIds: []string{id}, IncludeDeprecated: aws.Bool(true), IncludeDisabled: aws.Bool(true)})
	if err != nil {
		if awserr.Classify(err) == awserr.NotFound {
			return Image{}, fmt.Errorf("image %s: %w: %w", id, ec2ops.ErrNotFound, err)
		}
		return Image{}, err
	}
	if len(imgs) == 0 {
		return Image{}, fmt.Errorf("image %s: %w (deregistered)", id, ec2ops.ErrNotFound)
	}
	return imageFromSDK(imgs[0]), nil
}

// NoMatchError says that no image matched a query; it names the filters
// so the caller can see what was asked. It matches ec2ops.ErrNotFound.
type NoMatchError struct {
	// Source is what was searched: "DescribeImages", an SSM parameter name,
	// or a Packer manifest.
	Source string
	// Filters describes the query, one "name=value" per entry.
	Filters []string
}

func (e *NoMatchError) Error() string {
	return fmt.Sprintf("no image matched %s (%s)", e.Source, strings.Join(e.Filters, ", "))
}

// Is makes errors.Is(err, ec2ops.ErrNotFound) true.
func (e *NoMatchError) Is(target error) bool { return target == ec2ops.ErrNotFound }

// isCode reports whether err carries the AWS error code.
func isCode(err error, code string) bool { return err != nil && awserr.Code(err) == code }
