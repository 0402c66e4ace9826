package exampleenv

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/patching"
)

// FleetSpec describes a simulated starting fleet.
type FleetSpec struct {
	// N instances, spread over the simulator's AZs.
	N int
	// ImageID to launch; Name and Tags register it first when ImageName is
	// set.
	ImageID string
	// InstanceType defaults to m5.large.
	InstanceType types.InstanceType
	// Tags on every instance; Layers, when set, tags instance i with
	// Layer=Layers[i%len(Layers)].
	Tags   map[string]string
	Layers []string
}

// LaunchFleet launches a starting fleet on the simulator (one RunInstances
// call per AZ and layer, with deterministic ClientTokens) and waits until
// every instance is healthy and its SSM agent online. It is set-up, not a
// strategy: with -aws the examples work on the fleet you select.
func (e *Env) LaunchFleet(ctx context.Context, spec FleetSpec) ([]string, error) {
	sim := e.Sim
	if sim == nil {
		return nil, errors.New("LaunchFleet needs the simulator")
	}
	if spec.InstanceType == "" {
		spec.InstanceType = types.InstanceTypeM5Large
	}
	layers := spec.Layers
	if len(layers) == 0 {
		layers = []string{""}
	}
	subnets := sim.Subnets()
	azs := make([]string, 0, len(subnets))
	for az := range subnets {
		azs = append(azs, az)
	}
	sort.Strings(azs)
	groups := len(azs) * len(layers)
	var ids []string
	for g := 0; g < groups; g++ {
		n := spec.N / groups
		if g < spec.N%groups {
			n++
		}
		if n == 0 {
			continue
		}
		az, layer := azs[g/len(layers)], layers[g%len(layers)]
		tags := []types.Tag{}
		for k, v := range spec.Tags {
			tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		if layer != "" {
			tags = append(tags, types.Tag{Key: aws.String("Layer"), Value: aws.String(layer)})
		}
		sort.Slice(tags, func(i, j int) bool { return *tags[i].Key < *tags[j].Key })
		if err := e.ec2Lim.Wait(ctx, "RunInstances", n); err != nil {
			return nil, err
		}
		out, err := sim.EC2().RunInstances(ctx, &ec2.RunInstancesInput{
			ImageId: aws.String(spec.ImageID), InstanceType: spec.InstanceType,
			MinCount: aws.Int32(int32(n)), MaxCount: aws.Int32(int32(n)),
			SubnetId:          aws.String(subnets[az]),
			ClientToken:       aws.String(fmt.Sprintf("example-fleet-%s-%s", az, layer)),
			UserData:          aws.String("IyEvYmluL3NoCnN5c3RlbWN0bCBzdGFydCBhcHAK"), // #!/bin/sh systemctl start app
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tags}},
		})
		if err != nil {
			return nil, fmt.Errorf("launch the starting fleet in %s: %w", az, err)
		}
		for _, in := range out.Instances {
			ids = append(ids, aws.ToString(in.InstanceId))
		}
	}
	return ids, e.WaitReady(ctx, ids)
}

// WaitReady waits on the simulator until every instance of ids is healthy
// and its SSM agent online (a fresh agent registers some time after boot).
// It reads the simulator directly: no API call is made or counted.
func (e *Env) WaitReady(ctx context.Context, ids []string) error {
	for {
		ready := 0
		for _, id := range ids {
			if v, ok := e.Sim.Instance(id); ok && v.Healthy && e.Sim.AgentOnline(id) {
				ready++
			}
		}
		if ready == len(ids) {
			return nil
		}
		if err := Sleep(ctx, e.D(10*time.Second)); err != nil {
			return err
		}
	}
}

// Sleep waits d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// AddImage registers an image on the simulator.
func (e *Env) AddImage(in cloudsim.AddImageInput) string { return e.Sim.AddImage(in) }

// Instances lists the IDs of the pending, running, stopping and stopped
// instances carrying every tag of tags, sorted.
func Instances(ctx context.Context, api EC2, tags map[string]string) ([]string, error) {
	filters := []types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}}}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		filters = append(filters, types.Filter{Name: aws.String("tag:" + k), Values: []string{tags[k]}})
	}
	var ids []string
	p := ec2.NewDescribeInstancesPaginator(api, &ec2.DescribeInstancesInput{Filters: filters, MaxResults: aws.Int32(1000)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list instances: %w", err)
		}
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				ids = append(ids, aws.ToString(in.InstanceId))
			}
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// WaitAgents waits until every instance of ids has an online SSM agent, or
// timeout passes, with patching.Runner.WaitManaged polling every interval
// (DescribeInstanceInformation, 50 IDs a call).
func WaitAgents(ctx context.Context, api patching.CommandAPI, ids []string, interval, timeout time.Duration) error {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, ec2ops.ErrTimeout)
	defer cancel()
	r := patching.NewRunner(api, func(o *patching.RunnerOptions) { o.PollInterval, o.MaxPollInterval = interval, interval })
	if err := r.WaitManaged(ctx, ids); err != nil {
		return fmt.Errorf("wait for SSM agents: %w", err)
	}
	return nil
}
