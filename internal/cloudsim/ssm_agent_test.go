package cloudsim

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// fixedSSM makes every SSM latency a constant, for exact timing tests.
func fixedSSM(o *Options) {
	fix := func(d time.Duration) Dist { return Dist{Min: d, Max: d} }
	o.Latency.PendingToRunning = fix(10 * time.Second)
	o.Latency.StatusInit = fix(time.Minute)
	o.Latency.Reboot = fix(40 * time.Second)
	o.Latency.SSM = SSMLatencies{Register: fix(2 * time.Minute), Reconnect: fix(20 * time.Second),
		Delivery: fix(2 * time.Second), Shell: fix(10 * time.Second), Scan: fix(time.Minute),
		Install: fix(5 * time.Minute), Cancel: fix(3 * time.Second)}
}

func pingOf(t *testing.T, c *SSM, id string) ssmtypes.PingStatus {
	t.Helper()
	out, err := c.DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{
		Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{id}}}})
	mustOK(t, err)
	if len(out.InstanceInformationList) == 0 {
		return ""
	}
	return out.InstanceInformationList[0].PingStatus
}

func TestAgentLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle, fixedSSM)
		c, e := s.SSM(), s.EC2()
		id := launch(t, e, runInput(1))[0]
		time.Sleep(10*time.Second + 2*time.Minute - time.Second)
		if got := pingOf(t, c, id); got != "" {
			t.Fatalf("registered before Latency.SSM.Register: %q", got)
		}
		time.Sleep(time.Second)
		if got := pingOf(t, c, id); got != ssmtypes.PingStatusOnline {
			t.Fatalf("ping %q after registration, want Online", got)
		}
		_, err := e.RebootInstances(context.Background(), &ec2.RebootInstancesInput{InstanceIds: []string{id}})
		mustOK(t, err)
		if got := pingOf(t, c, id); got != ssmtypes.PingStatusConnectionLost {
			t.Fatalf("ping %q during reboot, want ConnectionLost", got)
		}
		time.Sleep(40*time.Second + 20*time.Second)
		if !s.AgentOnline(id) {
			t.Fatal("agent not back after reboot + reconnect")
		}
		_, err = e.StopInstances(context.Background(), &ec2.StopInstancesInput{InstanceIds: []string{id}})
		mustOK(t, err)
		if s.AgentOnline(id) {
			t.Fatal("agent online while stopping")
		}
		time.Sleep(2 * time.Minute)
		_, err = e.StartInstances(context.Background(), &ec2.StartInstancesInput{InstanceIds: []string{id}})
		mustOK(t, err)
		time.Sleep(10*time.Second + 20*time.Second) // running, then Reconnect (not Register again)
		if !s.AgentOnline(id) {
			t.Fatal("agent not back after start")
		}
	})
}

func TestAgentFaultsAndListing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle, fixedSSM, func(o *Options) {
			o.Faults.SSM.UnmanagedRate = 0.3
			o.Faults.SSM.AgentLostAfterRebootRate = 1
		})
		c, e := s.SSM(), s.EC2()
		ids := launch(t, e, runInput(40))
		time.Sleep(5 * time.Minute)
		var listed []string
		p := ssm.NewDescribeInstanceInformationPaginator(c, &ssm.DescribeInstanceInformationInput{MaxResults: aws.Int32(5)})
		pages := 0
		for p.HasMorePages() {
			out, err := p.NextPage(context.Background())
			mustOK(t, err)
			pages++
			for _, ii := range out.InstanceInformationList {
				listed = append(listed, aws.ToString(ii.InstanceId))
			}
		}
		if len(listed) == 0 || len(listed) >= 40 {
			t.Fatalf("listed %d managed of 40 with UnmanagedRate 0.3", len(listed))
		}
		if want := (len(listed) + 4) / 5; pages != want {
			t.Fatalf("%d pages of 5 for %d nodes, want %d", pages, len(listed), want)
		}
		_, err := e.RebootInstances(context.Background(), &ec2.RebootInstancesInput{InstanceIds: listed[:1]})
		mustOK(t, err)
		time.Sleep(time.Hour)
		out, err := c.DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{
			Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("PingStatus"), Values: []string{"ConnectionLost"}}}})
		mustOK(t, err)
		if len(out.InstanceInformationList) != 1 || aws.ToString(out.InstanceInformationList[0].InstanceId) != listed[0] {
			t.Fatalf("ConnectionLost after a losing reboot: %+v", out.InstanceInformationList)
		}
		_, err = c.DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{
			Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: seq("i-", 51)}}})
		wantCode(t, err, "InvalidInstanceInformationFilterValue")
		_ = ids
	})
}
