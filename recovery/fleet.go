package recovery

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awserr"
	"github.com/ec2ops/ec2ops/internal/awsid"
	"github.com/ec2ops/ec2ops/internal/ratelimit"
)

// Fleet selects the instances a strategy works on: the listed IDs, the
// instances matching Filters (DescribeInstances filters, e.g. tag:Role), or
// the listed IDs that also match Filters. At least one must be set.
// Terminated and shutting-down instances are never part of a fleet.
type Fleet struct {
	InstanceIDs []string
	Filters     []types.Filter
}

// API limits used for batching. Sources: DescribeInstances API reference
// (MaxResults 5..1000; at most 200 filter values a call, AWS-FACTS.md),
// DescribeInstanceTypes (at most 100 instance types), DescribeInstanceStatus
// (at most 100 instance IDs).
const (
	maxFilterValues  = 200
	maxInstancesPage = 1000
	maxTypesPerCall  = 100
	maxStatusIDs     = 100
)

// validate reports bad input before any call.
func (f Fleet) validate(field string) error {
	if len(f.InstanceIDs) == 0 && len(f.Filters) == 0 {
		return ec2ops.InvalidInput(field, "", "selects no instances",
			"set InstanceIDs or Filters (for example tag:Role=web)")
	}
	n := 0
	for i, fl := range f.Filters {
		if aws.ToString(fl.Name) == "" || len(fl.Values) == 0 {
			return ec2ops.InvalidInput(fmt.Sprintf("%s.Filters[%d]", field, i), aws.ToString(fl.Name),
				"a filter needs a name and at least one value", "for example Name: tag:Role, Values: [web]")
		}
		n += len(fl.Values)
	}
	if n >= maxFilterValues {
		return ec2ops.InvalidInput(field+".Filters", fmt.Sprint(n), "too many filter values",
			fmt.Sprintf("use fewer than %d values in all (EC2 accepts %d per call, including the instance IDs)", maxFilterValues, maxFilterValues))
	}
	for i, id := range f.InstanceIDs {
		if !awsid.Instance(id) {
			return ec2ops.InvalidInput(fmt.Sprintf("%s.InstanceIDs[%d]", field, i), id,
				"not an instance ID", "use IDs like i-0123456789abcdef0")
		}
	}
	return nil
}

// caller paces and retries API calls: it waits on the client-side limiter
// (the published buckets, scaled by a share), then retries throttling and
// transient errors with capped exponential backoff (seeded jitter).
type caller struct {
	ec2, cw    *ratelimit.Limiter
	timeScale  float64 // multiplies retry delays (see Options.TimeScale)
	maxRetries int
	log        *slog.Logger

	mu  sync.Mutex
	rng *rand.Rand // jitter
}

func newCaller(share, timeScale float64, maxRetries int, log *slog.Logger) *caller {
	if timeScale <= 0 {
		timeScale = 1
	}
	if maxRetries <= 0 {
		maxRetries = 8
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sh := func(o *ratelimit.Options) { o.Share = share }
	return &caller{
		ec2:        ratelimit.New(ratelimit.EC2().Compressed(timeScale), sh),
		cw:         ratelimit.New(ratelimit.CloudWatch().Compressed(timeScale), sh),
		timeScale:  timeScale,
		maxRetries: maxRetries, log: log, rng: rand.New(rand.NewPCG(1, 2)),
	}
}

// do runs f for action ("ec2:DescribeInstances", "cloudwatch:PutMetricAlarm")
// until it succeeds, fails for good, retries run out or ctx ends.
func (c *caller) do(ctx context.Context, action string, f func() error) error {
	svc, op, _ := strings.Cut(action, ":")
	lim := c.ec2
	if svc == "cloudwatch" {
		lim = c.cw
	}
	for attempt := 0; ; attempt++ {
		if err := lim.Wait(ctx, op, 0); err != nil {
			return err
		}
		err := f()
		if err == nil || !awserr.Retryable(err) || attempt >= c.maxRetries {
			return err
		}
		d := time.Duration(float64(min(20*time.Second, 250*time.Millisecond<<attempt)) * c.timeScale)
		c.mu.Lock()
		d = d/2 + time.Duration(c.rng.Int64N(int64(d/2)+1))
		c.mu.Unlock()
		c.log.DebugContext(ctx, "retrying", "action", action, "attempt", attempt+1, "after", d, "error", awserr.Code(err))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// describeFleet returns the fleet's instances that are not terminated or
// shutting down, in the order DescribeInstances returns them, and the
// listed IDs that were not found.
func describeFleet(ctx context.Context, api InstanceAPI, c *caller, f Fleet) ([]types.Instance, []string, error) {
	var out []types.Instance
	page := func(in *ec2.DescribeInstancesInput) error {
		for {
			var resp *ec2.DescribeInstancesOutput
			err := c.do(ctx, "ec2:DescribeInstances", func() (err error) {
				resp, err = api.DescribeInstances(ctx, in)
				return err
			})
			if err != nil {
				return fmt.Errorf("describe instances: %w", err)
			}
			for _, r := range resp.Reservations {
				for _, x := range r.Instances {
					if x.State != nil && (x.State.Name == types.InstanceStateNameTerminated || x.State.Name == types.InstanceStateNameShuttingDown) {
						continue
					}
					out = append(out, x)
				}
			}
			if aws.ToString(resp.NextToken) == "" {
				return nil
			}
			in.NextToken = resp.NextToken
		}
	}
	if len(f.InstanceIDs) == 0 {
		in := &ec2.DescribeInstancesInput{Filters: f.Filters, MaxResults: aws.Int32(maxInstancesPage)}
		if err := page(in); err != nil {
			return nil, nil, err
		}
		return out, nil, nil
	}
	// IDs as an instance-id filter: a missing ID is left out instead of
	// failing the whole call (InvalidInstanceID.NotFound).
	used := 0
	for _, fl := range f.Filters {
		used += len(fl.Values)
	}
	ids := slices.Compact(slices.Sorted(slices.Values(f.InstanceIDs)))
	for chunk := range slices.Chunk(ids, maxFilterValues-used) {
		fs := append(slices.Clone(f.Filters), types.Filter{Name: aws.String("instance-id"), Values: chunk})
		if err := page(&ec2.DescribeInstancesInput{Filters: fs}); err != nil {
			return nil, nil, err
		}
	}
	found := map[string]bool{}
	for _, x := range out {
		found[aws.ToString(x.InstanceId)] = true
	}
	var missing []string
	for _, id := range ids {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	return out, missing, nil
}
