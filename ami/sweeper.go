package ami

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/ratelimit"
)

// SweeperOptions configures a Sweeper. Zero values are safe defaults.
type SweeperOptions struct {
	// MinAge spares builders launched less than MinAge ago (a bake may be
	// running). Default 4h, above the Baker's default builder and image
	// timeouts together.
	MinAge time.Duration
	// Limiter paces EC2 calls; nil means a private limiter.
	Limiter *ratelimit.Limiter
	// Observer receives progress events (Operation "sweep").
	Observer ec2ops.Observer
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

// Sweeper terminates builder instances that crashed bakes left behind: the
// instances tagged ec2ops:role=builder that are not terminated and older
// than MinAge.
type Sweeper struct {
	ec2  SweepAPI
	opts SweeperOptions
	c    common
}

// NewSweeper returns a Sweeper over api.
func NewSweeper(api SweepAPI, optFns ...func(*SweeperOptions)) *Sweeper {
	o := SweeperOptions{}
	for _, f := range optFns {
		f(&o)
	}
	if o.MinAge <= 0 {
		o.MinAge = 4 * time.Hour
	}
	return &Sweeper{ec2: api, opts: o, c: newCommon("sweep", o.Limiter, o.Observer, o.Logger)}
}

// NewSweeperFromConfig returns a Sweeper with an EC2 client made from cfg.
func NewSweeperFromConfig(cfg aws.Config, optFns ...func(*SweeperOptions)) *Sweeper {
	return NewSweeper(ec2.NewFromConfig(cfg), optFns...)
}

// terminateBatch is the number of instances per TerminateInstances call
// (the API takes up to 1000; smaller batches are recommended: AWS-FACTS.md).
const terminateBatch = 100

// Leftovers returns the IDs of the builders the Sweeper would terminate.
func (s *Sweeper) Leftovers(ctx context.Context) ([]string, error) {
	in := &ec2.DescribeInstancesInput{MaxResults: aws.Int32(maxDescribePage), Filters: []types.Filter{
		filter("tag:"+TagRole, RoleBuilder), filter("instance-state-name", liveStates...)}}
	cutoff := time.Now().Add(-s.opts.MinAge)
	var ids []string
	for {
		out, err := do(ctx, s.c, "DescribeInstances", 0, func(ctx context.Context) (*ec2.DescribeInstancesOutput, error) {
			return s.ec2.DescribeInstances(ctx, in)
		})
		if err != nil {
			return nil, fmt.Errorf("sweep: ec2:DescribeInstances: %w", err)
		}
		for _, r := range out.Reservations {
			for _, x := range r.Instances {
				if x.LaunchTime != nil && x.LaunchTime.After(cutoff) {
					continue
				}
				ids = append(ids, aws.ToString(x.InstanceId))
			}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	slices.Sort(ids)
	return ids, nil
}

// Plan returns the dry run of Sweep.
func (s *Sweeper) Plan(ctx context.Context) (ec2ops.Plan, error) {
	ids, err := s.Leftovers(ctx)
	if err != nil {
		return ec2ops.Plan{}, err
	}
	p := ec2ops.Plan{Operation: "sweep"}
	for chunk := range slices.Chunk(ids, terminateBatch) {
		p.Steps = append(p.Steps, ec2ops.Step{Action: "ec2:TerminateInstances", Resources: chunk,
			Reason: fmt.Sprintf("builders (%s=%s) older than %s: left by crashed bakes", TagRole, RoleBuilder, s.opts.MinAge)})
	}
	return p, nil
}

// Sweep terminates the leftover builders and returns their IDs. A partial
// failure is an *ec2ops.ProgressError.
func (s *Sweeper) Sweep(ctx context.Context) ([]string, error) {
	ids, err := s.Leftovers(ctx)
	if err != nil {
		return nil, err
	}
	var done []string
	for chunk := range slices.Chunk(ids, terminateBatch) {
		_, err := do(ctx, s.c, "TerminateInstances", len(chunk), func(ctx context.Context) (*ec2.TerminateInstancesOutput, error) {
			return s.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: chunk})
		})
		if err != nil {
			s.c.emit("terminate", "", len(done), len(ids), "failed", err)
			return done, &ec2ops.ProgressError{Operation: "sweep", Done: done, Pending: ids[len(done):], Err: fmt.Errorf("ec2:TerminateInstances: %w", err)}
		}
		done = append(done, chunk...)
		s.c.emit("terminate", "", len(done), len(ids), "builders terminated", nil)
		s.c.log.InfoContext(ctx, "builders terminated", "count", len(chunk))
	}
	return done, nil
}

// Policy returns the IAM policy the Sweeper needs: it can terminate only
// builders.
func (s *Sweeper) Policy() ec2ops.Policy {
	return ec2ops.NewPolicy(
		ec2ops.Statement{Sid: "FindBuilders", Action: []string{"ec2:DescribeInstances"}},
		ec2ops.Statement{Sid: "TerminateBuilders", Action: []string{"ec2:TerminateInstances"},
			Resource:  []string{"arn:aws:ec2:*:*:instance/*"},
			Condition: map[string]map[string]string{"StringEquals": {"ec2:ResourceTag/" + TagRole: RoleBuilder}}},
	)
}
