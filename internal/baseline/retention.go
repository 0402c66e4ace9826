package baseline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/awserr"
)

// Images is what the baseline retention calls.
type Images interface {
	Instances
	DescribeImages(ctx context.Context, params *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	DeregisterImage(ctx context.Context, params *ec2.DeregisterImageInput, optFns ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error)
	DeleteSnapshot(ctx context.Context, params *ec2.DeleteSnapshotInput, optFns ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error)
}

var _ Images = (*ec2.Client)(nil)

// RetentionResult is what the baseline retention did.
type RetentionResult struct {
	Deregistered, SnapshotsDeleted, InUse int
	Failed                                map[string]error // image or snapshot -> why
	Surfaced                              int              // failures caused by a throttling error
	Makespan                              time.Duration
}

// Retain deregisters the images of the account whose name starts with one
// of prefixes, except the keepNewest newest of each prefix and those younger
// than keepYounger, the way a user writes it with the SDK alone: one
// DescribeImages (Owners self) call, then for each image to retire a
// DescribeInstances filtered by image-id (any instance not terminated
// keeps it), DeregisterImage, and DeleteSnapshot for each snapshot of its
// block device mappings (the classic two-step clean-up). Launch templates
// and Auto Scaling groups are not checked (a careful user with only
// instances to protect). Calls are made one after another through the
// standard retryer, without client-side pacing.
func Retain(ctx context.Context, c Images, prefixes []string, keepNewest int, keepYounger time.Duration) (res RetentionResult) {
	rt := NewRetrier()
	res = RetentionResult{Failed: map[string]error{}}
	start := time.Now()
	defer func() { res.Makespan = time.Since(start) }()
	fail := func(what string, err error) {
		res.Failed[what] = err
		if awserr.IsThrottle(err) {
			res.Surfaced++
		}
	}
	var imgs []types.Image
	in := &ec2.DescribeImagesInput{Owners: []string{"self"}, MaxResults: aws.Int32(1000)}
	for {
		out, err := Do(ctx, rt, func(ctx context.Context) (*ec2.DescribeImagesOutput, error) { return c.DescribeImages(ctx, in) })
		if err != nil {
			fail("list", fmt.Errorf("describe images: %w", err))
			return res
		}
		imgs = append(imgs, out.Images...)
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	now := time.Now()
	for _, p := range prefixes {
		var fam []types.Image
		for _, im := range imgs {
			if strings.HasPrefix(aws.ToString(im.Name), p) && im.State == types.ImageStateAvailable {
				fam = append(fam, im)
			}
		}
		slices.SortFunc(fam, func(a, b types.Image) int {
			return strings.Compare(aws.ToString(b.CreationDate), aws.ToString(a.CreationDate))
		})
		for i, im := range fam {
			created, _ := time.Parse(time.RFC3339, aws.ToString(im.CreationDate))
			if i < keepNewest || now.Sub(created) < keepYounger {
				continue
			}
			id := aws.ToString(im.ImageId)
			used, err := imageUsed(ctx, c, rt, id)
			if err != nil {
				fail(id, err)
				continue
			}
			if used {
				res.InUse++
				continue
			}
			if _, err := Do(ctx, rt, func(ctx context.Context) (*ec2.DeregisterImageOutput, error) {
				return c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(id)})
			}); err != nil {
				fail(id, fmt.Errorf("deregister: %w", err))
				continue
			}
			res.Deregistered++
			for _, bd := range im.BlockDeviceMappings {
				if bd.Ebs == nil || aws.ToString(bd.Ebs.SnapshotId) == "" {
					continue
				}
				snap := aws.ToString(bd.Ebs.SnapshotId)
				if _, err := Do(ctx, rt, func(ctx context.Context) (*ec2.DeleteSnapshotOutput, error) {
					return c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snap)})
				}); err != nil {
					fail(snap, fmt.Errorf("delete snapshot of %s: %w", id, err))
					continue
				}
				res.SnapshotsDeleted++
			}
		}
	}
	return res
}

// imageUsed reports whether an instance that is not terminated uses id.
func imageUsed(ctx context.Context, c Images, rt *Retrier, id string) (bool, error) {
	in := &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("image-id"), Values: []string{id}}}}
	for {
		out, err := Do(ctx, rt, func(ctx context.Context) (*ec2.DescribeInstancesOutput, error) { return c.DescribeInstances(ctx, in) })
		if err != nil {
			return false, fmt.Errorf("describe instances of %s: %w", id, err)
		}
		for _, r := range out.Reservations {
			for _, x := range r.Instances {
				if x.State == nil || x.State.Name != types.InstanceStateNameTerminated {
					return true, nil
				}
			}
		}
		if aws.ToString(out.NextToken) == "" {
			return false, nil
		}
		in.NextToken = out.NextToken
	}
}
