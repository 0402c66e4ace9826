package chaos

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2ops/ec2ops/internal/cloudsim"
)

// TestInvariantsCatchBadOperations: the checks the chaos suite relies on
// do fail on what they forbid (a naive termination of an original without
// a replacement drops capacity under the floor and is a wrong termination).
func TestInvariantsCatchBadOperations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := quietSim(2)
		ids := fleetOf(t, sim, 3, map[string]string{"app": "web"})
		replacementInvariants(sim, "web", func(v cloudsim.InstanceView) bool { return v.Tags["app"] == "web" }, 3)
		if _, err := sim.EC2().TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: ids[:1]}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		v := sim.Violations()
		var floor, term bool
		for _, s := range v {
			floor = floor || len(s) > 5 && s[:5] == "floor"
			term = term || len(s) > 11 && s[:11] == "termination"
		}
		if !floor || !term {
			t.Fatalf("violations %v: want floor and termination", v)
		}
	})
}
