package patching_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/patching"
)

// The examples run the simulator in real time with every duration
// multiplied by 0.001 (ten simulated minutes take 0.6 s), so they need no
// AWS account.
const exampleScale = 0.001

func exampleFleet(n int) (*cloudsim.Sim, []string) {
	sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 7; o.TimeScale = exampleScale })
	ids, err := launchFleet(sim, n)
	if err != nil {
		panic(err)
	}
	time.Sleep(time.Duration(float64(10*time.Minute) * exampleScale)) // agents register
	return sim, ids
}

func fast(o *patching.RunnerOptions) {
	o.PollInterval, o.MaxPollInterval, o.ResultsInterval = 20*time.Millisecond, 50*time.Millisecond, 20*time.Millisecond
}

func ExampleRunner_RunShell() {
	sim, ids := exampleFleet(100)
	runner := patching.NewRunner(sim.SSM(), fast)
	err := runner.RunShell(context.Background(), ids, []string{"systemctl restart nginx"})
	fmt.Println("error:", err)
	fmt.Println("SendCommand calls:", sim.Calls()["ssm:SendCommand"])
	// Output:
	// error: <nil>
	// SendCommand calls: 2
}

func ExamplePatcher_Patch() {
	sim, ids := exampleFleet(30)
	p := patching.NewPatcher(sim.SSM(), sim.EC2(), func(o *patching.PatchOptions) {
		o.Canary = 1
		o.Waves = []string{"25%", "100%"}
		o.PollInterval = 20 * time.Millisecond
		o.Runner = append(o.Runner, fast)
	})
	plan, err := p.Plan(context.Background(), ids)
	if err != nil {
		panic(err)
	}
	for i, w := range plan.Waves {
		fmt.Printf("wave %d: %d instance(s)\n", i+1, len(w))
	}
	rep, err := p.Apply(context.Background(), plan)
	fmt.Println("error:", err)
	fmt.Println("patched:", rep.Count("Patched"))
	compliant := 0
	for _, c := range rep.Compliance {
		if c.Compliant() {
			compliant++
		}
	}
	fmt.Println("compliant:", compliant)
	// Output:
	// wave 1: 1 instance(s)
	// wave 2: 7 instance(s)
	// wave 3: 22 instance(s)
	// error: <nil>
	// patched: 30
	// compliant: 30
}
