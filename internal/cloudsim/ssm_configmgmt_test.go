package cloudsim

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

func cmFleet(t *testing.T, s *Sim, n int) []string {
	t.Helper()
	out, err := s.EC2().RunInstances(context.Background(), &ec2.RunInstancesInput{ImageId: aws.String("ami-0123456789abcdef0"),
		MinCount: aws.Int32(int32(n)), MaxCount: aws.Int32(int32(n))})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range out.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	time.Sleep(5 * time.Minute)
	return ids
}

func cmSend(t *testing.T, s *Sim, doc string, ids []string, p map[string][]string) CommandView {
	t.Helper()
	out, err := s.SSM().SendCommand(context.Background(), &ssm.SendCommandInput{DocumentName: aws.String(doc), InstanceIds: ids,
		Parameters: p, MaxErrors: aws.String("100%")})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Minute)
	v, _ := s.Command(aws.ToString(out.Command.CommandId))
	return v
}

func TestConfigMgmtChefWhyRunThenConverge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(func(o *Options) { o.Seed = 3 })
		ids := cmFleet(t, s, 3)
		p := map[string][]string{"SourceType": {"S3"}, "SourceInfo": {`{"path":"https://s3.amazonaws.com/b/c.tgz"}`},
			"RunList": {"recipe[a::b],recipe[c]"}, "WhyRun": {"True"}, "JsonAttributesContent": {`{"x":1}`}}
		v := cmSend(t, s, DocApplyChefRecipes, ids, p)
		if v.Status != "Success" || !strings.Contains(v.Invocations[ids[0]].Stdout, "would have been updated") || s.ConfigNode(ids[0]).Applied["chef"] != "" {
			t.Fatalf("why-run %+v", v)
		}
		p["WhyRun"] = []string{"False"}
		v = cmSend(t, s, DocApplyChefRecipes, ids, p)
		if v.Status != "Success" || s.ConfigNode(ids[0]).Applied["chef"] == "" {
			t.Fatalf("converge %+v", v)
		}
		v = cmSend(t, s, DocApplyChefRecipes, ids, p)
		if !strings.Contains(v.Invocations[ids[1]].Stdout, " 0/") {
			t.Fatalf("second converge changed: %q", v.Invocations[ids[1]].Stdout)
		}
	})
}

func TestConfigMgmtParameterValidation(t *testing.T) {
	s := New()
	bad := []struct {
		doc string
		p   map[string][]string
	}{
		{DocApplyChefRecipes, map[string][]string{"SourceType": {"FTP"}, "SourceInfo": {"{}"}, "RunList": {"recipe[a]"}}},
		{DocApplyChefRecipes, map[string][]string{"SourceType": {"S3"}, "SourceInfo": {"not json"}, "RunList": {"recipe[a]"}}},
		{DocApplyChefRecipes, map[string][]string{"SourceType": {"S3"}, "SourceInfo": {`{"url":"x"}`}, "RunList": {"recipe[a]"}}},
		{DocApplyChefRecipes, map[string][]string{"SourceType": {"S3"}, "SourceInfo": {`{"path":"x"}`}, "RunList": {"recipe[a], recipe[b]"}}},
		{DocApplyChefRecipes, map[string][]string{"SourceType": {"S3"}, "SourceInfo": {`{"path":"x"}`}, "RunList": {"recipe[a]"}, "ChefClientVersion": {"19"}}},
		{DocApplyChefRecipes, map[string][]string{"SourceType": {"S3"}, "SourceInfo": {`{"path":"x"}`}, "RunList": {"recipe[a]"}, "Bogus": {"1"}}},
		{DocApplyAnsiblePlaybooks, map[string][]string{"SourceType": {"HTTP"}, "SourceInfo": {`{"url":"x"}`}, "PlaybookFile": {"a.yml"}}},
		{DocApplyAnsiblePlaybooks, map[string][]string{"SourceType": {"S3"}, "SourceInfo": {`{"path":"x"}`}, "PlaybookFile": {"a.yml"}, "Check": {"maybe"}}},
		{DocApplyAnsiblePlaybooks, map[string][]string{"SourceType": {"S3"}, "SourceInfo": {`{"path":"x"}`}}},
	}
	for i, b := range bad {
		_, err := s.SSM().SendCommand(context.Background(), &ssm.SendCommandInput{DocumentName: aws.String(b.doc), InstanceIds: []string{"i-0123456789abcdef0"}, Parameters: b.p})
		if err == nil || !strings.Contains(err.Error(), "InvalidParameters") {
			t.Errorf("case %d: %v", i, err)
		}
	}
}

func TestConfigMgmtPuppetExitCodesAndShellFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(func(o *Options) { o.Seed = 5 })
		ids := cmFleet(t, s, 6)
		s.ScriptConfigManagement(func(r ConfigRun) bool { return r.InstanceID == ids[0] })
		script := []string{"#!/bin/bash", PuppetMarker + " mode=apply", "puppet apply --detailed-exitcodes -e 'include role::x' > /var/log/p.log 2>&1"}
		v := cmSend(t, s, "AWS-RunShellScript", ids, map[string][]string{"commands": script})
		if inv := v.Invocations[ids[0]]; inv.Status != "Failed" || (inv.ResponseCode != 4 && inv.ResponseCode != 6) {
			t.Fatalf("failing puppet %+v", inv)
		}
		if inv := v.Invocations[ids[1]]; inv.Status != "Success" || !strings.HasPrefix(inv.Stdout, PuppetExitMarker+"2") {
			t.Fatalf("changing puppet %+v", inv)
		}
		s.ScriptConfigManagement(nil)
		v = cmSend(t, s, "AWS-RunShellScript", ids[1:], map[string][]string{"commands": script})
		if inv := v.Invocations[ids[1]]; !strings.HasPrefix(inv.Stdout, PuppetExitMarker+"0") {
			t.Fatalf("converged puppet %+v", inv)
		}
		// Agent mode needs a bootstrapped agent.
		v = cmSend(t, s, "AWS-RunShellScript", ids[:1], map[string][]string{"commands": {PuppetMarker + " mode=agent", "puppet agent --test --detailed-exitcodes"}})
		if inv := v.Invocations[ids[0]]; inv.ResponseCode != 1 {
			t.Fatalf("agent without bootstrap %+v", inv)
		}
		// Plain shell commands keep ScriptShell.
		s.ScriptShell(func(string, []string) (int, string, string) { return 0, "plain", "" })
		v = cmSend(t, s, "AWS-RunShellScript", ids[:1], map[string][]string{"commands": {"uptime"}})
		if v.Invocations[ids[0]].Stdout != "plain" {
			t.Fatalf("shell fallback %+v", v.Invocations[ids[0]])
		}
	})
}
