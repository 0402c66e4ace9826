package cloudsim

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ec2ops/ec2ops/internal/awserr"
)

type allowList map[string]bool

func (a allowList) Allows(action string) bool { return a[action] }

// TestEnforcePolicy: a call outside the policy fails with the service's
// authorization code naming the action, before any change; allowed calls
// go through; a nil policy lifts enforcement.
func TestEnforcePolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle)
		ctx := context.Background()
		s.EnforcePolicy(allowList{"ec2:DescribeInstances": true})
		if _, err := s.EC2().DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
			t.Fatalf("allowed call: %v", err)
		}
		cases := []struct {
			call   func() error
			code   string
			action string
		}{
			{func() error { _, err := s.EC2().RunInstances(ctx, runInput(1)); return err }, "UnauthorizedOperation", "ec2:RunInstances"},
			{func() error {
				_, err := s.SSM().DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
				return err
			}, "AccessDeniedException", "ssm:DescribeInstanceInformation"},
			{func() error {
				_, err := s.CloudWatch().DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{})
				return err
			}, "AccessDenied", "cloudwatch:DescribeAlarms"},
		}
		for _, c := range cases {
			err := c.call()
			if awserr.Code(err) != c.code || !awserr.IsAuth(err) || !strings.Contains(err.Error(), c.action) {
				t.Errorf("%s: err %v, want %s naming the action", c.action, err, c.code)
			}
		}
		if n := len(s.Instances()); n != 0 {
			t.Fatalf("a denied RunInstances launched %d instances", n)
		}
		if d := s.Denied(); d["ec2:RunInstances"] != 1 || d["ssm:DescribeInstanceInformation"] != 1 || d["ec2:DescribeInstances"] != 0 {
			t.Fatalf("denied %v", d)
		}
		s.EnforcePolicy(nil)
		if _, err := s.EC2().RunInstances(ctx, runInput(1)); err != nil {
			t.Fatalf("after lifting the policy: %v", err)
		}
	})
}
