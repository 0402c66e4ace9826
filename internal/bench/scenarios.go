package bench

import (
	"context"

	"github.com/ec2ops/ec2ops/internal/cloudsim"
)

// Scenario is one benchmark scenario.
type Scenario struct {
	ID  string
	Run func(ctx context.Context) (Result, error)
}

// Scenarios returns S1-S6 with their sizes divided by div (1: the sizes of
// issue 8; larger: a quick smoke run of the same code).
func Scenarios(div int) []Scenario {
	n := func(x int) int { return max(1, x/div) }
	rollout := func(p RolloutParams) Scenario {
		return Scenario{ID: p.ID, Run: func(ctx context.Context) (Result, error) { return Rollout(ctx, p) }}
	}
	return []Scenario{
		rollout(RolloutParams{ID: "S1", Title: "rolling replacement, N=1,000, K=100", N: n(1000), K: n(100), Seed: 1}),
		rollout(RolloutParams{ID: "S2", Title: "rolling replacement, N=10,000, K=1,000", N: n(10000), K: n(1000), Seed: 2}),
		{ID: "S3", Run: func(ctx context.Context) (Result, error) {
			return Patch(ctx, PatchParams{ID: "S3", Title: "patching, N=5,000, MaxConcurrency 10%", N: n(5000), Percent: 10, Seed: 3})
		}},
		{ID: "S4", Run: func(ctx context.Context) (Result, error) {
			return Alarms(ctx, AlarmParams{ID: "S4", Title: "recovery alarm reconcile, N=10,000, then a second unchanged run", N: n(10000), Seed: 4})
		}},
		{ID: "S5", Run: func(ctx context.Context) (Result, error) {
			return Retention(ctx, RetentionParams{ID: "S5", Title: "AMI retention over 5,000 images and 20,000 instances",
				Images: n(5000), Families: max(1, 10/div), Instances: n(20000), InUse: 10, Seed: 5})
		}},
		rollout(RolloutParams{ID: "S6", Title: "S1 with 10% throttling and 2% capacity errors", N: n(1000), K: n(100), Seed: 1,
			Faults: cloudsim.Faults{ThrottleRate: 0.10, CapacityRate: 0.02}}),
	}
}
