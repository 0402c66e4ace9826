package chaos

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/opsworks"
	"github.com/ec2ops/ec2ops/patching"
)

func init() {
	operations = append(operations,
		operation{"patch-waves", chaosPatch},
		operation{"config-run", chaosConfig})
	simOptions["patch-waves"] = func(o *cloudsim.Options) {
		o.Faults.SSM.AgentLostAfterRebootRate = 0.15
		o.Faults.SSM.CommandFailureRate = 0.03
	}
	simOptions["config-run"] = func(o *cloudsim.Options) {
		o.Faults.SSM.UnmanagedRate = 0.05
		o.Faults.SSM.CommandFailureRate = 0.03
	}
	simOptions["bake"] = func(o *cloudsim.Options) {
		o.Faults.SSM.UnmanagedRate = 0.05
	}
}

// azFloor: while a wave runs, no AZ loses all of its healthy instances
// (patching keeps MinHealthyPerAZ of each AZ out of any one wave), unless
// faults took them.
func azFloor(s *seedRun, ids []string) {
	az := map[string]string{}
	per := map[string]int{}
	for _, id := range ids {
		v, _ := s.sim.Instance(id)
		az[id] = v.AZ
		per[v.AZ]++
	}
	for a, n := range per {
		name := "az-" + a
		s.sim.TrackCapacity(name, func(v cloudsim.InstanceView) bool { return az[v.ID] == a })
		if n < 2 {
			continue
		}
		s.sim.AddInvariant("az-floor-"+a, func(c cloudsim.Change, v *cloudsim.View) error {
			lost := 0
			for id := range az {
				if az[id] == a && s.impaired[id] {
					lost++
				}
			}
			if v.Capacity(name) < 1 && lost == 0 {
				return fmt.Errorf("no healthy instance left in %s", a)
			}
			return nil
		})
	}
}

// countAgents counts, as faults, the instances whose agent is offline
// although they run.
func countAgents(s *seedRun, ids []string) {
	for _, id := range ids {
		if v, _ := s.sim.Instance(id); v.State == "running" && !s.sim.AgentOnline(id) {
			s.faults[fAgent]++
		}
	}
}

// chaosPatch: patch waves (canary, 50%, 100%) on 5-8 instances with
// missing patches; agents go offline after the patch reboot, commands
// fail; the first run is cancelled at a random point, fresh runs follow.
// Every instance that runs with an online agent ends compliant; the others
// are reported failed in a typed error; no AZ is ever emptied.
func chaosPatch(t *testing.T, s *seedRun) {
	sim := s.sim
	n := 5 + s.rng.IntN(4)
	ids := launchHealthy(t, s, n, types.InstanceTypeM5Large, map[string]string{"role": "web"})
	for _, id := range ids {
		sim.SetMissingPatches(id, 1+s.rng.IntN(4))
	}
	azFloor(s, ids)
	newPatcher := func() *patching.Patcher {
		return patching.NewPatcher(sim.SSM(), sim.EC2(), func(o *patching.PatchOptions) {
			o.Waves = []string{"50%"}
			o.FailureThreshold = "100%"
			o.SkipUnmanaged = true
			o.HealthTimeout = 15 * time.Minute
			o.Runner = []func(*patching.RunnerOptions){fastRunner}
		})
	}
	var err error
	for s.runs = 1; s.runs <= 4; s.runs++ {
		ctx, cancel := context.Background(), func() {}
		if s.runs == 1 {
			ctx, cancel = s.cancelCtx(30 * time.Minute)
		}
		_, err = newPatcher().Patch(ctx, ids)
		cancel()
		if err == nil {
			break
		}
		var pe *patching.PatchError
		var ue *patching.UnmanagedError
		if !errors.As(err, &pe) && !errors.As(err, &ue) && !errors.Is(err, context.Canceled) {
			s.violate("run %d: untyped error %v", s.runs, err)
			return
		}
		if s.runs > 1 && pe != nil && len(pe.Pending) == 0 {
			break // every wave ran; the failures are reported
		}
		time.Sleep(2 * time.Minute)
	}
	s.runs = min(s.runs, 4)
	time.Sleep(5 * time.Minute)
	countAgents(s, ids)
	for _, id := range ids {
		v, _ := sim.Instance(id)
		if !v.Healthy || !sim.AgentOnline(id) {
			continue
		}
		if p := sim.Patches(id); p.Missing+p.Failed+p.PendingReboot > 0 && !failedBy(sim, id) {
			s.violate("%s healthy and managed but not compliant: %+v (last err %v)", id, p, err)
		}
	}
}

// failedBy reports whether id's patch install was failed by the
// simulator's command-failure fault (the patcher reports it; a human
// looks).
func failedBy(sim *cloudsim.Sim, id string) bool { return sim.Patches(id).Failed > 0 }

func chefStack() *opsworks.Stack {
	return &opsworks.Stack{
		Name: "shop",
		Backend: &opsworks.Chef{Source: opsworks.Source{Type: "S3", Path: "https://s3.amazonaws.com/cookbooks/shop.tar.gz"},
			ChefClientVersion: "18"},
		Attributes: map[string]any{"app": map[string]any{"port": 8080.0, "db": map[string]any{"password": canary}}},
		Sensitive:  []string{"app.db.password"},
		Layers: []opsworks.Layer{{
			Name:     "web",
			Selector: []opsworks.Selector{{Key: "tag:Layer", Values: []string{"web"}}},
			RunLists: map[opsworks.Event][]string{
				opsworks.Setup:     {"nginx::default"},
				opsworks.Configure: {"recipe[shop::configure]"},
			},
		}},
	}
}

func newConfigurator(sim *cloudsim.Sim, optFns ...func(*opsworks.Options)) *opsworks.Configurator {
	var o opsworks.Options
	for _, f := range optFns {
		f(&o)
	}
	r := patching.NewRunner(sim.SSM(), fastRunner, func(ro *patching.RunnerOptions) {
		ro.Observer, ro.SkipUnmanaged, ro.Logger = o.Observer, o.SkipUnmanaged, o.Logger
	})
	return opsworks.New(r, sim.EC2(), optFns...)
}

// chaosConfig: a Chef Setup run on a layer of 4-7 instances (some agents
// never register, commands fail), cancelled at a random point, then rerun.
// Every managed instance ends with the configuration applied, at most once
// per change (a rerun changes nothing), and failures are typed.
func chaosConfig(t *testing.T, s *seedRun) {
	sim := s.sim
	n := 4 + s.rng.IntN(4)
	ids := launchHealthy(t, s, n, types.InstanceTypeM5Large, map[string]string{"Layer": "web"})
	time.Sleep(5 * time.Minute) // agents register
	azFloor(s, ids)
	stack := chefStack()
	var err error
	for s.runs = 1; s.runs <= 6; s.runs++ {
		ctx, cancel := context.Background(), func() {}
		if s.runs == 1 {
			ctx, cancel = s.cancelCtx(3 * time.Minute)
		}
		_, err = newConfigurator(sim, func(o *opsworks.Options) {
			o.SkipUnmanaged = true
			o.FailureThreshold = "100%"
		}).Run(ctx, stack, opsworks.Deployment{Event: opsworks.Setup})
		cancel()
		if err == nil {
			break
		}
		var de *opsworks.DeployError
		if !errors.As(err, &de) && !errors.Is(err, context.Canceled) {
			s.violate("run %d: untyped error %v", s.runs, err)
			return
		}
		time.Sleep(time.Minute)
	}
	s.runs = min(s.runs, 6)
	countAgents(s, ids)
	applied := 0
	for _, id := range ids {
		node := sim.ConfigNode(id)
		if node.Runs["chef"] > 1 {
			s.violate("%s configured %d times", id, node.Runs["chef"])
		}
		if sim.AgentOnline(id) && len(node.Applied) == 0 && err == nil {
			s.violate("%s managed, run succeeded, nothing applied", id)
		}
		if len(node.Applied) > 0 {
			applied++
		}
	}
	if applied == 0 && err == nil {
		s.violate("no instance configured")
	}
}
