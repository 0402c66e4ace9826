package cloudsim

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/awserr"
)

const testAMI = "ami-0123456789abcdef0"

// noThrottle is an option for tests that launch more than the buckets allow.
func noThrottle(o *Options) { o.DisableThrottling = true }

// runInput returns a RunInstances request for n instances.
func runInput(n int32, mods ...func(*ec2.RunInstancesInput)) *ec2.RunInstancesInput {
	in := &ec2.RunInstancesInput{ImageId: aws.String(testAMI), MinCount: aws.Int32(n), MaxCount: aws.Int32(n)}
	for _, m := range mods {
		m(in)
	}
	return in
}

func withTags(kv ...string) func(*ec2.RunInstancesInput) {
	return func(in *ec2.RunInstancesInput) {
		var tags []types.Tag
		for i := 0; i+1 < len(kv); i += 2 {
			tags = append(tags, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
		}
		in.TagSpecifications = append(in.TagSpecifications, types.TagSpecification{ResourceType: types.ResourceTypeInstance, Tags: tags})
	}
}

// launch runs a RunInstances request that must succeed and returns the IDs.
func launch(t testing.TB, c *EC2, in *ec2.RunInstancesInput) []string {
	t.Helper()
	out, err := c.RunInstances(context.Background(), in)
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	ids := make([]string, len(out.Instances))
	for i, x := range out.Instances {
		ids[i] = aws.ToString(x.InstanceId)
	}
	return ids
}

// wantCode fails unless err carries the API error code want.
func wantCode(t testing.TB, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", want)
	}
	if got := awserr.Code(err); got != want {
		t.Fatalf("got error %v (code %q), want code %q", err, got, want)
	}
}

func mustOK(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// describeIDs returns the instance IDs a DescribeInstances output lists.
func describeIDs(out *ec2.DescribeInstancesOutput) []string {
	var ids []string
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			ids = append(ids, aws.ToString(in.InstanceId))
		}
	}
	return ids
}

func stateOf(t testing.TB, s *Sim, id string) string {
	t.Helper()
	v, ok := s.Instance(id)
	if !ok {
		t.Fatalf("instance %s does not exist", id)
	}
	return v.State
}

func seq(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// legalTransitions are the instance state changes EC2 makes.
var legalTransitions = map[[2]string]bool{
	{"", "pending"}: true, {"pending", "running"}: true, {"pending", "shutting-down"}: true,
	{"running", "shutting-down"}: true, {"running", "stopping"}: true,
	{"stopping", "stopped"}: true, {"stopping", "shutting-down"}: true,
	{"stopped", "pending"}: true, {"stopped", "shutting-down"}: true,
	{"shutting-down", "terminated"}: true,
}

// checkStateMachine registers an invariant that every change is legal:
// state changes follow legalTransitions, and status checks report anything
// but not-applicable only while the instance is running.
func checkStateMachine(t testing.TB, s *Sim) {
	s.AddInvariant("state machine", func(c Change, v *View) error {
		iv, ok := v.Instance(c.InstanceID)
		switch {
		case !ok:
			return fmt.Errorf("change for a missing instance")
		case c.Kind == ChangeState && !legalTransitions[[2]string{c.From, c.To}]:
			return fmt.Errorf("illegal transition")
		case iv.State != "running" && (iv.InstanceStatus != "not-applicable" || iv.SystemStatus != "not-applicable"):
			return fmt.Errorf("status %s/%s while %s", iv.InstanceStatus, iv.SystemStatus, iv.State)
		case iv.Healthy && iv.State != "running":
			return fmt.Errorf("healthy while %s", iv.State)
		}
		return nil
	})
	t.Cleanup(func() {
		if v := s.Violations(); len(v) > 0 {
			t.Errorf("state machine violations: %v", v)
		}
	})
}
