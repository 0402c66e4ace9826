package lifecycle_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/lifecycle"
)

// TestSurgeKeepsCreditOption replaces a t3.micro launched with "standard"
// (T3's default is unlimited): the replacement is launched with
// "standard" too, is not drifted, and every call is in the policy.
func TestSurgeKeepsCreditOption(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New()
		ids := fleet(t, sim, 1, func(in *ec2.RunInstancesInput) {
			in.InstanceType = types.InstanceTypeT3Micro
			in.CreditSpecification = &types.CreditSpecificationRequest{CpuCredits: aws.String("standard")}
		})
		ctx := context.Background()
		sim.ResetCounters()
		s := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{ImageID: newAMI}, fast)
		r, err := s.Replace(ctx, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		in, _ := sim.LaunchInput(r.NewID)
		if in.CreditSpecification == nil || aws.ToString(in.CreditSpecification.CpuCredits) != "standard" {
			t.Fatalf("replacement launched with CreditSpecification %+v, want standard", in.CreditSpecification)
		}
		calls := sim.Calls()
		t.Logf("one t3.micro replacement: %d DescribeInstanceCreditSpecifications, %d DescribeInstances calls",
			calls["ec2:DescribeInstanceCreditSpecifications"], calls["ec2:DescribeInstances"])
		if calls["ec2:DescribeInstanceCreditSpecifications"] == 0 {
			t.Fatalf("no credit call: %v", calls)
		}
		if u := s.Policy().Uncovered(calls); len(u) > 0 {
			t.Fatalf("calls outside the policy: %v", u)
		}
		out, err := sim.EC2().DescribeInstanceCreditSpecifications(ctx, &ec2.DescribeInstanceCreditSpecificationsInput{InstanceIds: []string{r.NewID}})
		if err != nil || aws.ToString(out.InstanceCreditSpecifications[0].CpuCredits) != "standard" {
			t.Fatalf("replacement credits %+v, %v", out, err)
		}
		plan, err := lifecycle.NewRollout(s, lifecycle.Selector{InstanceIDs: []string{r.NewID}}).Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Drifted) != 0 || len(plan.UpToDate) != 1 {
			t.Fatalf("replacement is drifted: %+v", plan.Drifted)
		}
	})
}

// TestNonBurstableFleetMakesNoCreditCall replaces m5 instances through a
// rollout: no DescribeInstanceCreditSpecifications call, no credit option
// on the launches.
func TestNonBurstableFleetMakesNoCreditCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New()
		ids := fleet(t, sim, 2)
		sim.ResetCounters()
		s := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{ImageID: newAMI}, fast)
		res, err := lifecycle.NewRollout(s, lifecycle.Selector{InstanceIDs: ids}).Apply(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n := sim.Calls()["ec2:DescribeInstanceCreditSpecifications"]; n != 0 {
			t.Fatalf("%d credit calls for m5 instances", n)
		}
		for _, newID := range res.Replaced {
			if in, _ := sim.LaunchInput(newID); in.CreditSpecification != nil {
				t.Fatalf("m5 launched with CreditSpecification %+v", in.CreditSpecification)
			}
		}
		if len(res.Replaced) != 2 {
			t.Fatalf("replaced %d of 2", len(res.Replaced))
		}
	})
}

// TestRolloutCreditDiff: an instance whose credit option differs
// from its target's is drifted, with a Diff line naming it.
func TestRolloutCreditDiff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New()
		ids := fleet(t, sim, 1, func(in *ec2.RunInstancesInput) { in.InstanceType = types.InstanceTypeT2Micro })
		spec, err := lifecycle.NewCapturer(sim.EC2()).Capture(context.Background(), ids[0])
		if err != nil {
			t.Fatal(err)
		}
		if spec.CreditSpecification != "standard" {
			t.Fatalf("t2.micro default captured as %q, want standard", spec.CreditSpecification)
		}
		want := *spec
		want.CreditSpecification = "unlimited"
		if d := lifecycle.Diff(spec, &want); len(d) != 1 || d[0] != "cpu credits standard -> unlimited" {
			t.Fatalf("Diff %v", d)
		}
	})
}
