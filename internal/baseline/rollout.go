package baseline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/awserr"
)

// EC2 is what the baseline rollout calls.
type EC2 interface {
	DescribeInstances(ctx context.Context, params *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeInstanceStatus(ctx context.Context, params *ec2.DescribeInstanceStatusInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error)
	RunInstances(ctx context.Context, params *ec2.RunInstancesInput, optFns ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	TerminateInstances(ctx context.Context, params *ec2.TerminateInstancesInput, optFns ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
}

var _ EC2 = (*ec2.Client)(nil)

// retrying puts the standard retryer in front of DescribeInstanceStatus, so
// the SDK waiter's polls are retried as they are on a real client.
type retrying struct {
	EC2
	rt *Retrier
}

func (c retrying) DescribeInstanceStatus(ctx context.Context, in *ec2.DescribeInstanceStatusInput, o ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error) {
	return Do(ctx, c.rt, func(ctx context.Context) (*ec2.DescribeInstanceStatusOutput, error) {
		return c.EC2.DescribeInstanceStatus(ctx, in, o...)
	})
}

// RolloutResult is what the baseline rollout achieved.
type RolloutResult struct {
	Replaced int
	Failed   map[string]error // old instance -> why it was not replaced
	Surfaced int              // errors that reached the caller because of throttling
	Makespan time.Duration
	Launched []string // every instance the baseline launched
	// Replacements maps each old instance to the replacement launched for
	// it (replaced or not).
	Replacements map[string]string
	Orphans      []string // launched, not terminated, yet not counted as replaced
	WaitLimit    time.Duration
}

// Rollout replaces instances in batches of k, the way a user writes it with
// the SDK: for each old instance (k at a time, in parallel) describe it,
// launch a copy with the new image (one RunInstances per instance, a
// ClientToken for safety), wait with the SDK's InstanceStatusOk waiter (one
// per instance), then terminate the old one. A failed replacement's new
// instance is terminated, so failures leave the old instance serving.
func Rollout(ctx context.Context, c EC2, ids []string, k int, imageID string) RolloutResult {
	rt := NewRetrier()
	rc := retrying{EC2: c, rt: rt}
	res := RolloutResult{Failed: map[string]error{}, Replacements: map[string]string{}, WaitLimit: 30 * time.Minute}
	var mu sync.Mutex
	start := time.Now()
	for i := 0; i < len(ids); i += k {
		batch := ids[i:min(i+k, len(ids))]
		var wg sync.WaitGroup
		for _, old := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				newID, err := replaceOne(ctx, rc, rt, old, imageID, res.WaitLimit)
				mu.Lock()
				defer mu.Unlock()
				if newID != "" {
					res.Launched = append(res.Launched, newID)
					res.Replacements[old] = newID
				}
				if err != nil {
					res.Failed[old] = err
					if awserr.IsThrottle(err) {
						res.Surfaced++
					}
					return
				}
				res.Replaced++
			}()
		}
		wg.Wait()
	}
	res.Makespan = time.Since(start)
	return res
}

func replaceOne(ctx context.Context, c retrying, rt *Retrier, old, imageID string, limit time.Duration) (string, error) {
	desc, err := Do(ctx, rt, func(ctx context.Context) (*ec2.DescribeInstancesOutput, error) {
		return c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{old}})
	})
	if err != nil {
		return "", fmt.Errorf("describe %s: %w", old, err)
	}
	if len(desc.Reservations) == 0 || len(desc.Reservations[0].Instances) == 0 {
		return "", fmt.Errorf("describe %s: not found", old)
	}
	in := desc.Reservations[0].Instances[0]
	var tags []types.Tag
	for _, t := range in.Tags {
		if k := aws.ToString(t.Key); len(k) < 4 || k[:4] != "aws:" {
			tags = append(tags, t)
		}
	}
	run := &ec2.RunInstancesInput{
		ImageId:      aws.String(imageID),
		InstanceType: in.InstanceType,
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
		SubnetId:     in.SubnetId,
		ClientToken:  aws.String("baseline-" + old),
	}
	if len(tags) > 0 {
		run.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tags}}
	}
	out, err := Do(ctx, rt, func(ctx context.Context) (*ec2.RunInstancesOutput, error) { return c.RunInstances(ctx, run) })
	if err != nil {
		return "", fmt.Errorf("launch replacement of %s: %w", old, err)
	}
	newID := aws.ToString(out.Instances[0].InstanceId)
	w := ec2.NewInstanceStatusOkWaiter(c)
	if err := w.Wait(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{newID}}, limit); err != nil {
		// Clean up the replacement; the old instance keeps serving.
		_, _ = Do(ctx, rt, func(ctx context.Context) (*ec2.TerminateInstancesOutput, error) {
			return c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{newID}})
		})
		return newID, fmt.Errorf("wait for %s: %w", newID, err)
	}
	if _, err := Do(ctx, rt, func(ctx context.Context) (*ec2.TerminateInstancesOutput, error) {
		return c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{old}})
	}); err != nil {
		return newID, fmt.Errorf("terminate %s: %w", old, err)
	}
	return newID, nil
}
