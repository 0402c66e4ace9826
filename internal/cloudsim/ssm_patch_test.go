package cloudsim

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

func patchCmd(ids []string, op, reboot string) *ssm.SendCommandInput {
	return &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunPatchBaseline"), InstanceIds: ids,
		Parameters: map[string][]string{"Operation": {op}, "RebootOption": {reboot}}}
}

func TestPatchBaseline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle, fixedSSM)
		c := s.SSM()
		ids := managedFleet(t, s, 3)
		for _, id := range ids {
			s.SetMissingPatches(id, 4)
		}
		out, err := c.DescribeInstancePatchStates(bg, &ssm.DescribeInstancePatchStatesInput{InstanceIds: ids})
		mustOK(t, err)
		if len(out.InstancePatchStates) != 0 {
			t.Fatal("patch states before any scan")
		}
		send(t, c, patchCmd(ids, "Scan", "NoReboot"))
		time.Sleep(2 * time.Minute)
		out, err = c.DescribeInstancePatchStates(bg, &ssm.DescribeInstancePatchStatesInput{InstanceIds: ids})
		mustOK(t, err)
		if len(out.InstancePatchStates) != 3 || out.InstancePatchStates[0].MissingCount != 4 {
			t.Fatalf("after scan: %+v", out.InstancePatchStates)
		}

		// Install with NoReboot: pending reboot, no reboot.
		id := send(t, c, patchCmd(ids[:1], "Install", "NoReboot"))
		time.Sleep(6 * time.Minute)
		if v := s.Patches(ids[0]); v.Missing != 0 || v.PendingReboot != 4 {
			t.Fatalf("NoReboot install: %+v", v)
		}
		if v, _ := s.Command(id); v.Status != "Success" {
			t.Fatalf("NoReboot install: %s", v.Status)
		}

		// Install with RebootIfNeeded: the instance reboots, the agent goes
		// offline, the invocation finishes after it is back.
		id = send(t, c, patchCmd(ids[1:2], "Install", "RebootIfNeeded"))
		time.Sleep(2*time.Second + 5*time.Minute + time.Second)
		if s.AgentOnline(ids[1]) {
			t.Fatal("agent online during the patch reboot")
		}
		if v, _ := s.Command(id); v.Status != "InProgress" {
			t.Fatalf("status %s during reboot, want InProgress", v.Status)
		}
		time.Sleep(time.Minute)
		v, _ := s.Command(id)
		if v.Status != "Success" {
			t.Fatalf("status %s after reboot", v.Status)
		}
		if p := s.Patches(ids[1]); p.Missing != 0 || p.PendingReboot != 0 || p.Installed == 0 {
			t.Fatalf("after reboot install: %+v", p)
		}
	})
}

func TestPatchFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle, fixedSSM, func(o *Options) { o.Faults.SSM.PatchFailureRate = 1 })
		c := s.SSM()
		ids := managedFleet(t, s, 2)
		for _, id := range ids {
			s.SetMissingPatches(id, 3)
		}
		id := send(t, c, patchCmd(ids, "Install", "RebootIfNeeded"))
		time.Sleep(10 * time.Minute)
		v, _ := s.Command(id)
		if v.Status != "Failed" || v.Invocations[ids[0]].ResponseCode != 1 {
			t.Fatalf("failed install: %+v", v)
		}
		if p := s.Patches(ids[0]); p.Failed == 0 {
			t.Fatalf("no failed patches: %+v", p)
		}
	})
}
