package cloudsim

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

func TestRebootInstances(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle, func(o *Options) {
			o.Latency.PendingToRunning = Dist{Min: 10 * time.Second, Max: 10 * time.Second}
			o.Latency.StatusInit = Dist{Min: time.Minute, Max: time.Minute}
			o.Latency.Reboot = Dist{Min: 40 * time.Second, Max: 40 * time.Second}
		})
		c := s.EC2()
		ids := launch(t, c, runInput(2))
		var rebooted []string
		s.ec2.onReboot = append(s.ec2.onReboot, func(_ time.Time, in *instance) { rebooted = append(rebooted, in.id) })

		// Pending: refused, nothing changes.
		_, err := c.RebootInstances(context.Background(), &ec2.RebootInstancesInput{InstanceIds: ids})
		wantCode(t, err, "IncorrectInstanceState")

		time.Sleep(2 * time.Minute)
		if iv, _ := s.Instance(ids[0]); !iv.Healthy {
			t.Fatalf("not healthy before reboot: %+v", iv)
		}
		_, err = c.RebootInstances(context.Background(), &ec2.RebootInstancesInput{InstanceIds: ids[:1]})
		mustOK(t, err)
		iv, _ := s.Instance(ids[0])
		if iv.State != "running" || iv.InstanceStatus != "initializing" || iv.SystemStatus != "ok" || iv.Healthy {
			t.Fatalf("right after reboot: %+v", iv)
		}
		if len(rebooted) != 1 || rebooted[0] != ids[0] {
			t.Fatalf("reboot hooks saw %v", rebooted)
		}
		time.Sleep(39 * time.Second)
		if iv, _ := s.Instance(ids[0]); iv.Healthy {
			t.Fatal("healthy before the reboot latency")
		}
		time.Sleep(time.Second)
		if iv, _ := s.Instance(ids[0]); !iv.Healthy {
			t.Fatalf("not healthy after the reboot latency: %+v", iv)
		}

		// A host failure survives a reboot (same host) but not stop/start.
		s.Impair(ids[1])
		_, err = c.RebootInstances(context.Background(), &ec2.RebootInstancesInput{InstanceIds: ids[1:]})
		mustOK(t, err)
		time.Sleep(time.Minute)
		if iv, _ := s.Instance(ids[1]); !iv.Impaired {
			t.Fatalf("reboot cured a host failure: %+v", iv)
		}

		// Terminated: ignored.
		_, err = c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: ids[1:]})
		mustOK(t, err)
		time.Sleep(2 * time.Minute)
		_, err = c.RebootInstances(context.Background(), &ec2.RebootInstancesInput{InstanceIds: ids[1:]})
		mustOK(t, err)
		if got := s.Calls()["ec2:RebootInstances"]; got != 4 {
			t.Fatalf("counted %d RebootInstances calls, want 4", got)
		}
		checkStateMachine(t, s)
	})
}
