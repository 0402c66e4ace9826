package exampleenv

import (
	"bytes"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
)

// TestWaitAgents: WaitAgents returns once the agents are online, and its
// timeout bounds it when an agent never registers.
func TestWaitAgents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, never := range []bool{false, true} {
			env, err := New(t.Context(), Flags{Seed: 1, TimeScale: 1}, nil, &bytes.Buffer{}, func(o *cloudsim.Options) {
				if never {
					o.Faults.SSM.UnmanagedRate = 1
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			img := env.AddImage(cloudsim.AddImageInput{Name: "base"})
			out, err := env.EC2().RunInstances(t.Context(), &ec2.RunInstancesInput{ImageId: aws.String(img), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
			if err != nil {
				t.Fatal(err)
			}
			launched := []string{aws.ToString(out.Instances[0].InstanceId)}
			start := time.Now()
			err = WaitAgents(t.Context(), env.SSM(), launched, env.D(10*time.Second), env.D(5*time.Minute))
			took := time.Since(start)
			switch {
			case !never && (err != nil || !env.Sim.AgentOnline(launched[0])):
				t.Fatalf("agent online: %v", err)
			case never && (!errors.Is(err, ec2ops.ErrTimeout) || !errors.Is(err, ec2ops.ErrUnmanaged) || took != 5*time.Minute):
				t.Fatalf("agent never online: %v after %v", err, took)
			}
			t.Logf("never=%v: %v after %v", never, err, took)
		}
	})
}
