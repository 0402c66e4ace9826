package lifecycle_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/lifecycle"
)

// FuzzSelectorAndBudgets: tag selectors, filters and the count-or-percent
// budgets of a Rollout are either refused with an ec2ops.InvalidInput
// naming the field, before any call, or planned; Plan never mutates and
// never panics.
func FuzzSelectorAndBudgets(f *testing.F) {
	f.Add("app", "web", "tag:env", "prod", "25%", "0", "1", "i-0123456789abcdef0")
	f.Add("", "", "", "", "", "", "", "")
	f.Add("aws:autoscaling:groupName", "*", "instance-state-name", "running", "150%", "-1", "x", "i-")
	f.Add("k", "v", "tag:k", "", "0", "0", "0%", "i-0123456789abcdef0,i-0123456789abcdef0")
	f.Fuzz(func(t *testing.T, tagKey, tagValue, filterName, filterValue, surge, unavail, canary, ids string) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.DisableThrottling = true })
		sel := lifecycle.Selector{}
		if tagKey != "" || tagValue != "" {
			sel.Tags = map[string]string{tagKey: tagValue}
		}
		if filterName != "" {
			sel.Filters = []types.Filter{{Name: aws.String(filterName), Values: []string{filterValue}}}
		}
		if ids != "" {
			sel.InstanceIDs = strings.Split(ids, ",")
		}
		s := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{ImageID: "ami-0bbbbbbbbbbbbbbb2"})
		ro := lifecycle.NewRollout(s, sel, func(o *lifecycle.RolloutOptions) {
			o.MaxSurge, o.MaxUnavailable, o.Canary = surge, unavail, canary
		})
		_, err := ro.Plan(context.Background())
		if err != nil && errors.Is(err, ec2ops.ErrInvalidInput) && sim.TotalCalls() != 0 {
			t.Fatalf("input refused after %d calls: %v", sim.TotalCalls(), err)
		}
		for k, n := range sim.Calls() {
			if n > 0 && !strings.HasPrefix(k, "ec2:Describe") {
				t.Fatalf("Plan made a mutating call %s", k)
			}
		}
	})
}
