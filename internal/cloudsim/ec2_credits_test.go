package cloudsim

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func withType(it string, credits string) func(*ec2.RunInstancesInput) {
	return func(in *ec2.RunInstancesInput) {
		in.InstanceType = types.InstanceType(it)
		if credits != "" {
			in.CreditSpecification = &types.CreditSpecificationRequest{CpuCredits: aws.String(credits)}
		}
	}
}

func creditsOf(out *ec2.DescribeInstanceCreditSpecificationsOutput) map[string]string {
	m := map[string]string{}
	for _, c := range out.InstanceCreditSpecifications {
		m[aws.ToString(c.InstanceId)] = aws.ToString(c.CpuCredits)
	}
	return m
}

func TestDescribeInstanceCreditSpecifications(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := New(noThrottle)
		c := s.EC2()
		t2 := launch(t, c, runInput(1, withType("t2.micro", "")))[0]
		t2u := launch(t, c, runInput(1, withType("t2.micro", "unlimited")))[0]
		t3 := launch(t, c, runInput(1, withType("t3.micro", "")))[0]
		t3s := launch(t, c, runInput(1, withType("t3.micro", "standard")))[0]
		t4g := launch(t, c, runInput(1, withType("t4g.micro", "")))[0]
		m5 := launch(t, c, runInput(1, withType("m5.large", "")))[0]

		// By ID: every instance, defaults per family, standard for m5.
		out, err := c.DescribeInstanceCreditSpecifications(ctx, &ec2.DescribeInstanceCreditSpecificationsInput{
			InstanceIds: []string{t2, t2u, t3, t3s, t4g, m5}})
		mustOK(t, err)
		want := map[string]string{t2: "standard", t2u: "unlimited", t3: "unlimited", t3s: "standard", t4g: "unlimited", m5: "standard"}
		if got := creditsOf(out); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("by ID: got %v, want %v", got, want)
		}

		// Without IDs: only the unlimited ones, paginated.
		var all []string
		var token *string
		for pages := 0; ; pages++ {
			out, err := c.DescribeInstanceCreditSpecifications(ctx, &ec2.DescribeInstanceCreditSpecificationsInput{
				MaxResults: aws.Int32(5), NextToken: token})
			mustOK(t, err)
			for _, cs := range out.InstanceCreditSpecifications {
				if aws.ToString(cs.CpuCredits) != "unlimited" {
					t.Fatalf("listing returned %s with %s", aws.ToString(cs.InstanceId), aws.ToString(cs.CpuCredits))
				}
				all = append(all, aws.ToString(cs.InstanceId))
			}
			if token = out.NextToken; token == nil {
				break
			}
		}
		if fmt.Sprint(all) != fmt.Sprint([]string{t2u, t3, t4g}) {
			t.Fatalf("listing: got %v, want %v", all, []string{t2u, t3, t4g})
		}

		// instance-id filter; any other filter is refused.
		out, err = c.DescribeInstanceCreditSpecifications(ctx, &ec2.DescribeInstanceCreditSpecificationsInput{
			Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{t3, t3s}}}})
		mustOK(t, err)
		if got := creditsOf(out); len(got) != 1 || got[t3] != "unlimited" {
			t.Fatalf("filtered listing: %v", got)
		}
		_, err = c.DescribeInstanceCreditSpecifications(ctx, &ec2.DescribeInstanceCreditSpecificationsInput{
			Filters: []types.Filter{{Name: aws.String("instance-type"), Values: []string{"t3.micro"}}}})
		wantCode(t, err, codeInvalidParameter)

		// Errors: an unknown ID fails the call; too many IDs; IDs with MaxResults.
		_, err = c.DescribeInstanceCreditSpecifications(ctx, &ec2.DescribeInstanceCreditSpecificationsInput{
			InstanceIds: []string{t3, "i-0000000000000dead"}})
		wantCode(t, err, codeInstanceNotFound)
		many := make([]string, maxCreditIDs+1)
		for i := range many {
			many[i] = fmt.Sprintf("i-%017x", i+1)
		}
		_, err = c.DescribeInstanceCreditSpecifications(ctx, &ec2.DescribeInstanceCreditSpecificationsInput{InstanceIds: many})
		wantCode(t, err, codeInvalidParameter)
		_, err = c.DescribeInstanceCreditSpecifications(ctx, &ec2.DescribeInstanceCreditSpecificationsInput{
			InstanceIds: []string{t3}, MaxResults: aws.Int32(5)})
		wantCode(t, err, codeInvalidCombination)
		_, err = c.DescribeInstanceCreditSpecifications(ctx, &ec2.DescribeInstanceCreditSpecificationsInput{
			InstanceIds: []string{t3}, DryRun: aws.Bool(true)})
		wantCode(t, err, codeDryRun)
		if n := s.Calls()["ec2:DescribeInstanceCreditSpecifications"]; n == 0 {
			t.Fatalf("calls not accounted: %v", s.Calls())
		}
	})
}

func TestBurstableByName(t *testing.T) {
	for it, want := range map[string]bool{"t3.micro": true, "t3a.nano": true, "t2.xlarge": true, "m5.large": false, "trn1.2xlarge": false, "c7g.large": false} {
		if got := burstable(it); got != want {
			t.Errorf("burstable(%q) = %v, want %v", it, got, want)
		}
	}
}
