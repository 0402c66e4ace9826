// Command quickstart runs the main job of ec2ops on the embedded simulator:
// it launches a simulated fleet of 200 instances and follows it to healthy
// through the batched poller, printing progress and the API calls spent. No
// AWS account or credentials are needed.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/internal/ec2wait"
	"github.com/ec2ops/ec2ops/internal/poll"
	"github.com/ec2ops/ec2ops/internal/ratelimit"
)

type config struct {
	Fleet     int
	Seed      int64
	TimeScale float64 // simulated durations are multiplied by this
}

// summary is what a run did, for the closing lines and for the test.
type summary struct {
	Launched, Healthy int
	SimTime           time.Duration
	Calls             map[string]int
	Poll              poll.Stats
}

func main() {
	cfg := config{}
	flag.IntVar(&cfg.Fleet, "fleet", 200, "number of simulated instances")
	flag.Int64Var(&cfg.Seed, "seed", 42, "simulator seed")
	flag.Float64Var(&cfg.TimeScale, "timescale", 0.02, "simulated durations are multiplied by this (0.02: 50x faster than real)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := run(ctx, os.Stdout, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, cfg config) (summary, error) {
	sim := cloudsim.New(func(o *cloudsim.Options) {
		o.Seed = cfg.Seed
		o.TimeScale = cfg.TimeScale
	})
	client := sim.EC2()
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) * cfg.TimeScale) }
	start := time.Now()
	simNow := func() time.Duration {
		return time.Duration(float64(time.Since(start)) / cfg.TimeScale).Round(time.Second)
	}

	fmt.Fprintf(w, "ec2ops quickstart: a simulated fleet of %d instances in us-east-1 (simulated time runs %.0fx faster)\n",
		cfg.Fleet, 1/cfg.TimeScale)

	// Launch: one RunInstances call per AZ, with a deterministic ClientToken
	// so a retried call never launches twice, and ec2ops tags at launch.
	ids, err := launch(ctx, w, client, sim.Subnets(), cfg.Fleet)
	if err != nil {
		return summary{}, err
	}

	// Follow the fleet to healthy: one goroutine per instance, one batched
	// poller for all of them.
	lim := ratelimit.New(ratelimit.EC2(), func(o *ratelimit.Options) { o.Share = 0.5 })
	p := ec2wait.NewStatusPoller(client, lim, func(o *poll.Options) {
		o.Interval = scale(5 * time.Second)
		o.MaxInterval = scale(30 * time.Second)
		o.Seed = uint64(cfg.Seed)
	})
	progress := newProgress(w, len(ids), simNow)
	var wg sync.WaitGroup
	var mu sync.Mutex
	healthy := 0
	var firstErr error
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := p.Wait(ctx, id, ec2wait.Healthy)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("instance %s: %w", id, err)
				}
				progress.Observe(ec2ops.Event{Operation: "quickstart", Phase: "wait-healthy", Resource: id, Err: err})
				return
			}
			healthy++
			progress.Observe(ec2ops.Event{Operation: "quickstart", Phase: "wait-healthy", Resource: id, Done: healthy, Total: len(ids)})
		}()
	}
	wg.Wait()

	s := summary{Launched: len(ids), Healthy: healthy, SimTime: simNow(), Calls: sim.Calls(), Poll: p.Stats()}
	report(w, s)
	return s, firstErr
}

func launch(ctx context.Context, w io.Writer, client *cloudsim.EC2, subnets map[string]string, n int) ([]string, error) {
	azs := make([]string, 0, len(subnets))
	for az := range subnets {
		azs = append(azs, az)
	}
	sort.Strings(azs)
	var ids []string
	var parts []string
	for i, az := range azs {
		count := n / len(azs)
		if i < n%len(azs) {
			count++
		}
		if count == 0 {
			continue
		}
		out, err := client.RunInstances(ctx, &ec2.RunInstancesInput{
			ImageId:      aws.String("ami-0abcdef1234567890"),
			InstanceType: types.InstanceTypeM5Large,
			MinCount:     aws.Int32(int32(count)),
			MaxCount:     aws.Int32(int32(count)),
			SubnetId:     aws.String(subnets[az]),
			ClientToken:  aws.String("ec2ops-quickstart-" + az),
			MetadataOptions: &types.InstanceMetadataOptionsRequest{
				HttpTokens: types.HttpTokensStateRequired,
			},
			TagSpecifications: []types.TagSpecification{{
				ResourceType: types.ResourceTypeInstance,
				Tags: []types.Tag{
					{Key: aws.String("Name"), Value: aws.String("quickstart-web")},
					{Key: aws.String("ec2ops:fleet"), Value: aws.String("quickstart")},
				},
			}},
		})
		if err != nil {
			return nil, fmt.Errorf("launch in %s: %w", az, err)
		}
		for _, in := range out.Instances {
			ids = append(ids, aws.ToString(in.InstanceId))
		}
		parts = append(parts, fmt.Sprintf("%s: %d", az, len(out.Instances)))
	}
	fmt.Fprintf(w, "launch: %d instances in %d RunInstances calls (%s), IMDSv2 required, tagged ec2ops:fleet=quickstart\n",
		len(ids), len(parts), strings.Join(parts, ", "))
	return ids, nil
}

// progress prints a line each time another tenth of the fleet is healthy.
type progress struct {
	w      io.Writer
	total  int
	next   int
	simNow func() time.Duration
}

func newProgress(w io.Writer, total int, simNow func() time.Duration) *progress {
	return &progress{w: w, total: total, next: 1, simNow: simNow}
}

// Observe is called with the caller's lock held.
func (p *progress) Observe(e ec2ops.Event) {
	if e.Err != nil {
		fmt.Fprintf(p.w, "  %s failed: %v\n", e.Resource, e.Err)
		return
	}
	if e.Done*10 >= p.next*p.total {
		bar := strings.Repeat("#", e.Done*30/p.total) + strings.Repeat(".", 30-e.Done*30/p.total)
		fmt.Fprintf(p.w, "  healthy [%s] %3d/%d  at %s simulated\n", bar, e.Done, p.total, p.simNow())
		for e.Done*10 >= p.next*p.total {
			p.next++
		}
	}
}

func report(w io.Writer, s summary) {
	fmt.Fprintf(w, "done: %d/%d instances healthy after %s simulated\n", s.Healthy, s.Launched, s.SimTime)
	ops := make([]string, 0, len(s.Calls))
	total := 0
	for op, n := range s.Calls {
		ops = append(ops, fmt.Sprintf("%s=%d", op, n))
		total += n
	}
	sort.Strings(ops)
	fmt.Fprintf(w, "API calls: %s (total %d, %.2f per instance)\n", strings.Join(ops, " "), total, float64(total)/float64(max(1, s.Launched)))
	perTick := 0.0
	if s.Poll.Ticks > 0 {
		perTick = float64(s.Poll.Calls) / float64(s.Poll.Ticks)
	}
	fmt.Fprintf(w, "batched poller: %d ticks, %d DescribeInstanceStatus calls (%.1f per tick for %d waiters; one SDK waiter per instance would make %d per round)\n",
		s.Poll.Ticks, s.Poll.Calls, perTick, s.Launched, s.Launched)
}
