package ami

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ec2ops/ec2ops/internal/cloudsim"
)

// Compile-time checks against the simulator (the library does not import
// it).
var (
	_ ImagesAPI      = (*cloudsim.EC2)(nil)
	_ ParameterAPI   = (*cloudsim.SSM)(nil)
	_ BakeAPI        = (*cloudsim.EC2)(nil)
	_ SweepAPI       = (*cloudsim.EC2)(nil)
	_ DistributeAPI  = (*cloudsim.EC2)(nil)
	_ RetentionAPI   = (*cloudsim.EC2)(nil)
	_ AutoScalingAPI = (*cloudsim.AutoScaling)(nil)
)

// fakeRunner stands in for patching.CommandRunner: it records every
// RunShell call, takes Took of simulated time, and fails the calls whose
// first command is in Fail.
type fakeRunner struct {
	mu    sync.Mutex
	Took  time.Duration
	Fail  map[string]bool
	Calls [][]string
	IDs   [][]string
}

func (f *fakeRunner) RunShell(ctx context.Context, ids []string, commands []string) error {
	f.mu.Lock()
	f.Calls = append(f.Calls, slices.Clone(commands))
	f.IDs = append(f.IDs, slices.Clone(ids))
	fail := f.Fail[commands[0]]
	f.mu.Unlock()
	if f.Took > 0 {
		t := time.NewTimer(f.Took)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	if fail {
		return fmt.Errorf("command %q failed on %v", commands[0], ids)
	}
	return nil
}

var _ ShellRunner = (*fakeRunner)(nil)

// policyCovers fails the test when the simulator saw a call the policy
// does not allow.
func policyCovers(t *testing.T, sim *cloudsim.Sim, p interface{ Uncovered(map[string]int) []string }) {
	t.Helper()
	if u := p.Uncovered(sim.Calls()); len(u) > 0 {
		t.Errorf("calls outside the policy: %v (calls %v)", u, sim.Calls())
	}
}
