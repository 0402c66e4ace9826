package cloudsim

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

var bg = context.Background()

// managedFleet launches n instances and waits until their agents are online.
func managedFleet(t *testing.T, s *Sim, n int32, mods ...func(*ec2.RunInstancesInput)) []string {
	t.Helper()
	ids := launch(t, s.EC2(), runInput(n, mods...))
	time.Sleep(10*time.Second + 2*time.Minute)
	return ids
}

func shell(ids []string, mods ...func(*ssm.SendCommandInput)) *ssm.SendCommandInput {
	in := &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: ids,
		Parameters: map[string][]string{"commands": {"true"}}}
	for _, m := range mods {
		m(in)
	}
	return in
}

func send(t *testing.T, c *SSM, in *ssm.SendCommandInput) string {
	t.Helper()
	out, err := c.SendCommand(bg, in)
	mustOK(t, err)
	return aws.ToString(out.Command.CommandId)
}

func TestSendCommandValidation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle, fixedSSM, func(o *Options) { o.Faults.SSM.UnmanagedRate = 0 })
		c := s.SSM()
		ids := managedFleet(t, s, 51)
		cases := []struct {
			name string
			in   *ssm.SendCommandInput
			code string
		}{
			{"51 ids", shell(ids), "ValidationException"},
			{"no targets", shell(nil), "ValidationException"},
			{"unknown document", shell(ids[:1], func(i *ssm.SendCommandInput) { i.DocumentName = aws.String("Nope") }), "InvalidDocument"},
			{"bad concurrency", shell(ids[:1], func(i *ssm.SendCommandInput) { i.MaxConcurrency = aws.String("0") }), "ValidationException"},
			{"bad errors", shell(ids[:1], func(i *ssm.SendCommandInput) { i.MaxErrors = aws.String("101%") }), "ValidationException"},
			{"timeout", shell(ids[:1], func(i *ssm.SendCommandInput) { i.TimeoutSeconds = aws.Int32(29) }), "ValidationException"},
			{"comment", shell(ids[:1], func(i *ssm.SendCommandInput) { i.Comment = aws.String(strings.Repeat("x", 101)) }), "ValidationException"},
			{"unknown parameter", shell(ids[:1], func(i *ssm.SendCommandInput) { i.Parameters["nope"] = []string{"1"} }), "InvalidParameters"},
			{"missing commands", shell(ids[:1], func(i *ssm.SendCommandInput) { delete(i.Parameters, "commands") }), "InvalidParameters"},
			{"unmanaged", shell([]string{ids[0], "i-0123456789abcdef0"}), "InvalidInstanceId"},
			{"six target keys", shell(nil, func(i *ssm.SendCommandInput) {
				for k := range 6 {
					i.Targets = append(i.Targets, ssmtypes.Target{Key: aws.String("tag:k" + string(rune('a'+k))), Values: []string{"v"}})
				}
			}), "ValidationException"},
		}
		for _, tc := range cases {
			_, err := c.SendCommand(bg, tc.in)
			if err == nil {
				t.Errorf("%s: no error", tc.name)
				continue
			}
			wantCode(t, err, tc.code)
		}
		if n := len(s.CommandIDs()); n != 0 {
			t.Fatalf("%d commands created by invalid requests", n)
		}
	})
}

func TestConcurrencyErrorsAndTargets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle, fixedSSM)
		c := s.SSM()
		ids := managedFleet(t, s, 40, withTags("role", "web"))
		s.ScriptShell(func(id string, _ []string) (int, string, string) {
			if id == ids[3] || id == ids[5] {
				return 2, "", "boom"
			}
			return 0, "ok " + id, ""
		})
		// Tag targets reach all 40 in one command, 10% at a time.
		start := time.Now()
		id := send(t, c, shell(nil, func(i *ssm.SendCommandInput) {
			i.Targets = []ssmtypes.Target{{Key: aws.String("tag:role"), Values: []string{"web"}}}
			i.MaxConcurrency, i.MaxErrors = aws.String("10%"), aws.String("5")
		}))
		time.Sleep(10 * time.Minute)
		v, _ := s.Command(id)
		if v.Targets != 40 || v.MaxConcurrency != 4 || v.PeakInFlight != 4 {
			t.Fatalf("targets %d, concurrency %d, peak %d; want 40, 4, 4", v.Targets, v.MaxConcurrency, v.PeakInFlight)
		}
		if v.Status != "Failed" || v.StatusDetails != "Incomplete" || v.Errors != 2 {
			t.Fatalf("command %s/%s errors %d, want Failed/Incomplete with 2", v.Status, v.StatusDetails, v.Errors)
		}
		if iv := v.Invocations[ids[3]]; iv.Status != "Failed" || iv.ResponseCode != 2 {
			t.Fatalf("failing invocation: %+v", iv)
		}
		// 10 rounds of 4 (2 s delivery + 10 s run): the concurrency bounds the makespan.
		var last time.Time
		for _, iv := range v.Invocations {
			if iv.End.After(last) {
				last = iv.End
			}
		}
		if got := last.Sub(start); got != 120*time.Second {
			t.Fatalf("makespan %v, want 2m0s", got)
		}

		// MaxErrors 0 with concurrency 1: the first failure stops dispatching.
		id = send(t, c, shell(ids[3:10], func(i *ssm.SendCommandInput) { i.MaxConcurrency = aws.String("1") }))
		time.Sleep(5 * time.Minute)
		v, _ = s.Command(id)
		if v.Status != "Failed" || v.StatusDetails != "Failed" {
			t.Fatalf("status %s/%s, want Failed/Failed", v.Status, v.StatusDetails)
		}
		for _, x := range ids[4:10] {
			if iv := v.Invocations[x]; iv.StatusDetails != "Terminated" || iv.Status != "Failed" {
				t.Fatalf("invocation after MaxErrors: %+v, want Failed/Terminated", iv)
			}
		}
	})
}

func TestDeliveryAndExecutionTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle, fixedSSM, func(o *Options) { o.Faults.SSM.AgentLostAfterRebootRate = 1 })
		c, e := s.SSM(), s.EC2()
		ids := managedFleet(t, s, 3)
		_, err := e.RebootInstances(bg, &ec2.RebootInstancesInput{InstanceIds: ids[:1]})
		mustOK(t, err)
		id := send(t, c, shell(ids, func(i *ssm.SendCommandInput) {
			i.TimeoutSeconds = aws.Int32(60)
			i.Parameters["executionTimeout"] = []string{"5"}
			i.MaxErrors = aws.String("100%")
		}))
		time.Sleep(2 * time.Second)
		inv, err := c.GetCommandInvocation(bg, &ssm.GetCommandInvocationInput{CommandId: aws.String(id), InstanceId: aws.String(ids[0])})
		mustOK(t, err)
		if inv.Status != ssmtypes.CommandInvocationStatusDelayed {
			t.Fatalf("invocation to an offline agent: %s", inv.Status)
		}
		time.Sleep(2 * time.Minute)
		out, err := c.ListCommands(bg, &ssm.ListCommandsInput{CommandId: aws.String(id)})
		mustOK(t, err)
		cmd := out.Commands[0]
		if cmd.DeliveryTimedOutCount != 1 || cmd.ErrorCount != 2 || cmd.CompletedCount != 3 || cmd.Status != ssmtypes.CommandStatusFailed {
			t.Fatalf("command counts: %+v", cmd)
		}
		v, _ := s.Command(id)
		if v.Invocations[ids[0]].StatusDetails != "DeliveryTimedOut" || v.Invocations[ids[1]].StatusDetails != "ExecutionTimedOut" {
			t.Fatalf("invocations: %+v", v.Invocations)
		}
	})
}

func TestCancelCommand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle, fixedSSM)
		c := s.SSM()
		ids := managedFleet(t, s, 6)
		id := send(t, c, shell(ids, func(i *ssm.SendCommandInput) { i.MaxConcurrency = aws.String("2") }))
		time.Sleep(5 * time.Second) // two running
		_, err := c.CancelCommand(bg, &ssm.CancelCommandInput{CommandId: aws.String(id)})
		mustOK(t, err)
		v, _ := s.Command(id)
		if v.Status != "Cancelling" {
			t.Fatalf("status %s right after cancel, want Cancelling", v.Status)
		}
		time.Sleep(5 * time.Second)
		v, _ = s.Command(id)
		if v.Status != "Cancelled" || v.Completed != 6 {
			t.Fatalf("status %s completed %d, want Cancelled 6", v.Status, v.Completed)
		}
		_, err = c.CancelCommand(bg, &ssm.CancelCommandInput{CommandId: aws.String("nope")})
		wantCode(t, err, "InvalidCommandId")
	})
}

func TestOutputTruncationAndPaging(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle, fixedSSM)
		c := s.SSM()
		ids := managedFleet(t, s, 120, withTags("app", "x"))
		big := strings.Repeat("é", 30000)
		s.ScriptShell(func(string, []string) (int, string, string) { return 1, big, strings.Repeat("e", 9000) })
		id := send(t, c, shell(nil, func(i *ssm.SendCommandInput) {
			i.Targets = []ssmtypes.Target{{Key: aws.String("tag:app"), Values: []string{"x"}}}
			i.MaxConcurrency, i.MaxErrors = aws.String("100%"), aws.String("100%")
			i.OutputS3BucketName, i.OutputS3KeyPrefix = aws.String("logs"), aws.String("run")
		}))
		time.Sleep(time.Minute)
		g, err := c.GetCommandInvocation(bg, &ssm.GetCommandInvocationInput{CommandId: aws.String(id), InstanceId: aws.String(ids[0])})
		mustOK(t, err)
		if n := utf8.RuneCountInString(aws.ToString(g.StandardOutputContent)); n != 24000 {
			t.Fatalf("stdout %d characters, want 24000", n)
		}
		if n := len(aws.ToString(g.StandardErrorContent)); n != 8000 {
			t.Fatalf("stderr %d characters, want 8000", n)
		}
		if !strings.HasPrefix(aws.ToString(g.StandardOutputUrl), "https://s3.us-east-1.amazonaws.com/logs/run/"+id+"/"+ids[0]+"/") {
			t.Fatalf("stdout URL %q", aws.ToString(g.StandardOutputUrl))
		}
		pages, total := 0, 0
		p := ssm.NewListCommandInvocationsPaginator(c, &ssm.ListCommandInvocationsInput{CommandId: aws.String(id), Details: true})
		for p.HasMorePages() {
			out, err := p.NextPage(bg)
			mustOK(t, err)
			pages++
			total += len(out.CommandInvocations)
			pl := out.CommandInvocations[0].CommandPlugins[0]
			if o := aws.ToString(pl.Output); utf8.RuneCountInString(o) > 2500 || !strings.Contains(o, "---Output truncated---") {
				t.Fatalf("plugin output %d characters, markers missing", utf8.RuneCountInString(o))
			}
		}
		if pages != 3 || total != 120 {
			t.Fatalf("%d pages, %d invocations; want 3, 120", pages, total)
		}
	})
}
