package opsworks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.uber.org/mock/gomock"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/opsworks"
	"github.com/ec2ops/ec2ops/opsworks/opsworksmock"
	"github.com/ec2ops/ec2ops/patching"
)

func TestMergeAttributesPrecedence(t *testing.T) {
	stack := map[string]any{"app": map[string]any{"port": 80.0, "name": "shop", "tags": []any{"a"}}, "keep": true, "drop": "x"}
	layer := map[string]any{"app": map[string]any{"port": 8080.0, "tags": []any{"b", "c"}}, "layer": "web"}
	deploy := map[string]any{"app": map[string]any{"release": "v2"}, "drop": nil}
	got := opsworks.MergeAttributes(stack, layer, deploy)
	want := map[string]any{"app": map[string]any{"port": 8080.0, "name": "shop", "tags": []any{"b", "c"}, "release": "v2"}, "keep": true, "layer": "web"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("merge\n got %v\nwant %v", got, want)
	}
	// Inputs untouched.
	if stack["app"].(map[string]any)["port"] != 80.0 || stack["drop"] != "x" {
		t.Fatalf("stack modified: %v", stack)
	}
	got["app"].(map[string]any)["tags"].([]any)[0] = "z"
	if layer["app"].(map[string]any)["tags"].([]any)[0] != "b" {
		t.Fatal("merge result aliases its input")
	}
	// A scalar over an object replaces it; an object over a scalar too.
	if g := opsworks.MergeAttributes(map[string]any{"a": map[string]any{"b": 1.0}}, map[string]any{"a": 2.0}); g["a"] != 2.0 {
		t.Fatalf("scalar over object: %v", g)
	}
	if g := opsworks.MergeAttributes(map[string]any{"a": 2.0}, map[string]any{"a": map[string]any{"b": 1.0}}); !reflect.DeepEqual(g["a"], map[string]any{"b": 1.0}) {
		t.Fatalf("object over scalar: %v", g)
	}
}

func instancesOut(ids ...string) *ec2.DescribeInstancesOutput {
	var in []types.Instance
	for i, id := range ids {
		in = append(in, types.Instance{InstanceId: aws.String(id), Placement: &types.Placement{AvailabilityZone: aws.String(fmt.Sprintf("us-east-1%c", 'a'+i%2))}})
	}
	return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: in}}}
}

// TestChefCommandOnTheWire checks the exact DescribeInstances filters and
// the exact AWS-ApplyChefRecipes parameters, including why-run and the
// sensitive attribute parameter.
func TestChefCommandOnTheWire(t *testing.T) {
	ctrl := gomock.NewController(t)
	e := opsworksmock.NewMockEC2API(ctrl)
	r := opsworksmock.NewMockCommandRunner(ctrl)
	ids := []string{"i-0000000000000000a", "i-0000000000000000b"}
	e.EXPECT().DescribeInstances(gomock.Any(), gomock.Any()).DoAndReturn(func(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
		want := []types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"running"}}, {Name: aws.String("tag:Layer"), Values: []string{"web"}}}
		if !reflect.DeepEqual(in.Filters, want) || aws.ToInt32(in.MaxResults) != 1000 {
			t.Errorf("filters %v", in.Filters)
		}
		return instancesOut(ids...), nil
	})
	var sent patching.Command
	r.EXPECT().Run(gomock.Any(), gomock.Any()).DoAndReturn(func(_ context.Context, cmd patching.Command) (*patching.Result, error) {
		sent = cmd
		res := &patching.Result{CommandIDs: []string{"c1"}, Invocations: map[string]patching.Invocation{}}
		for _, id := range cmd.InstanceIDs {
			res.Invocations[id] = patching.Invocation{InstanceID: id, Status: "Success", Output: "Chef Infra Client finished, 0/9 resources would have been updated"}
		}
		return res, nil
	})
	c := opsworks.New(r, e)
	rep, err := c.Run(context.Background(), chefStack(), opsworks.Deployment{Event: opsworks.Setup, DryRun: true,
		Attributes: map[string]any{"app": map[string]any{"release": "v2"}}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count(opsworks.Unchanged) != 2 {
		t.Fatalf("outcomes %v", rep.Results)
	}
	p := sent.Parameters
	if sent.DocumentName != "AWS-ApplyChefRecipes" || !slices.Equal(sent.InstanceIDs, ids) || sent.MaxErrors != "0" || sent.MaxConcurrency != "50" {
		t.Fatalf("command %+v", sent)
	}
	checks := map[string]string{
		"SourceType":        "S3",
		"SourceInfo":        `{"path":"https://s3.amazonaws.com/cookbooks/shop.tar.gz"}`,
		"RunList":           "recipe[nginx::default]",
		"WhyRun":            "True",
		"ChefClientVersion": "18",
	}
	for k, v := range checks {
		if len(p[k]) != 1 || p[k][0] != v {
			t.Errorf("%s = %q, want %q", k, p[k], v)
		}
	}
	var attrs map[string]any
	if err := json.Unmarshal([]byte(p["JsonAttributesContent"][0]), &attrs); err != nil {
		t.Fatal(err)
	}
	app := attrs["app"].(map[string]any)
	if app["release"] != "v2" || app["port"] != 8080.0 || app["db"].(map[string]any)["password"] != "s3cr3t-pw" {
		t.Fatalf("attributes %v", attrs)
	}
	if !slices.Equal(sent.Sensitive, []string{"JsonAttributesContent"}) {
		t.Fatalf("sensitive %v", sent.Sensitive)
	}
}

// TestInvalidInputBeforeAnyCall: bad input is an ec2ops.InputError naming
// the field, and no API is called (the mocks expect nothing).
func TestInvalidInputBeforeAnyCall(t *testing.T) {
	ctrl := gomock.NewController(t)
	c := opsworks.New(opsworksmock.NewMockCommandRunner(ctrl), opsworksmock.NewMockEC2API(ctrl))
	mod := func(f func(s *opsworks.Stack)) *opsworks.Stack { s := chefStack(); f(s); return s }
	cases := []struct {
		name  string
		stack *opsworks.Stack
		d     opsworks.Deployment
		field string
	}{
		{"event", chefStack(), opsworks.Deployment{Event: "Boot"}, "Deployment.Event"},
		{"selector", mod(func(s *opsworks.Stack) { s.Layers[0].Selector[0].Key = "Layer" }), opsworks.Deployment{Event: opsworks.Setup}, "Stack.Layers[0].Selector.Key"},
		{"recipe", mod(func(s *opsworks.Stack) { s.Layers[0].RunLists[opsworks.Setup] = []string{"rm -rf /"} }), opsworks.Deployment{Event: opsworks.Setup}, "Stack.Layers[0].RunLists[Setup]"},
		{"source", mod(func(s *opsworks.Stack) { s.Backend = &opsworks.Chef{Source: opsworks.Source{Type: "FTP"}} }), opsworks.Deployment{Event: opsworks.Setup}, "Chef.Source.Type"},
		{"puppet class", mod(func(s *opsworks.Stack) {
			s.Backend = &opsworks.Puppet{}
			s.Layers[0].RunLists = map[opsworks.Event][]string{opsworks.Setup: {"role::web'; reboot; '"}}
		}), opsworks.Deployment{Event: opsworks.Setup}, "Stack.Layers[0].RunLists[Setup]"},
		{"ansible two playbooks", mod(func(s *opsworks.Stack) {
			s.Backend = &opsworks.Ansible{Source: opsworks.Source{Type: "S3", Path: "https://s3.amazonaws.com/b/p"}}
			s.Layers[0].RunLists = map[opsworks.Event][]string{opsworks.Setup: {"a.yml", "b.yml"}}
		}), opsworks.Deployment{Event: opsworks.Setup}, "Stack.Layers[0].RunLists[Setup]"},
		{"layer", chefStack(), opsworks.Deployment{Event: opsworks.Setup, Layers: []string{"nope"}}, "Deployment.Layers"},
		{"instance", chefStack(), opsworks.Deployment{Event: opsworks.Setup, InstanceIDs: []string{"web-1"}}, "Deployment.InstanceIDs"},
		{"token literal", mod(func(s *opsworks.Stack) {
			s.Backend = &opsworks.Chef{Source: opsworks.Source{Type: "GitHub", Owner: "o", Repository: "r", TokenInfo: "ghp_literal"}}
		}), opsworks.Deployment{Event: opsworks.Setup}, "Chef.Source.TokenInfo"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Plan(context.Background(), tc.stack, tc.d)
			var ie *ec2ops.InputError
			if !errors.As(err, &ie) || !errors.Is(err, ec2ops.ErrInvalidInput) || ie.Field != tc.field || ie.Fix == "" {
				t.Fatalf("err %v (field %q)", err, fieldOf(err))
			}
			if strings.Contains(err.Error(), "ghp_literal") {
				t.Fatal("secret in error")
			}
		})
	}
}

func fieldOf(err error) string {
	var ie *ec2ops.InputError
	if errors.As(err, &ie) {
		return ie.Field
	}
	return ""
}

// TestAnsibleExtraVariables: flat attributes become key=value pairs;
// nested or shell-unsafe values are refused with a fix.
func TestAnsibleExtraVariables(t *testing.T) {
	a := &opsworks.Ansible{Source: opsworks.Source{Type: "S3", Path: "https://s3.amazonaws.com/b/play"}, Verbose: "-vv"}
	cmd, err := a.Command(opsworks.RunSpec{Event: opsworks.Deploy, RunList: []string{"site.yml"}, DryRun: true,
		Attributes: map[string]any{"env": "prod", "workers": 4.0, "debug": false}, Sensitive: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"SourceType": {"S3"}, "SourceInfo": {`{"path":"https://s3.amazonaws.com/b/play"}`}, "InstallDependencies": {"False"},
		"PlaybookFile": {"site.yml"}, "Check": {"True"}, "ExtraVariables": {"debug=false env=prod workers=4"}, "Verbose": {"-vv"}}
	if !reflect.DeepEqual(cmd.Parameters, want) || !slices.Equal(cmd.Sensitive, []string{"ExtraVariables"}) {
		t.Fatalf("params %v sensitive %v", cmd.Parameters, cmd.Sensitive)
	}
	for _, bad := range []map[string]any{{"x": map[string]any{"y": 1.0}}, {"x": "a b"}, {"x": "$(reboot)"}, {"bad-name": "1"}} {
		if _, err := a.Command(opsworks.RunSpec{RunList: []string{"site.yml"}, Attributes: bad}); !errors.Is(err, ec2ops.ErrInvalidInput) {
			t.Fatalf("%v: %v", bad, err)
		}
	}
}

// TestPuppetOutcomes maps detailed exit codes as the script reports them.
func TestPuppetOutcomes(t *testing.T) {
	p := &opsworks.Puppet{}
	inv := func(status string, rc, marker int) patching.Invocation {
		return patching.Invocation{Status: status, ResponseCode: rc, Output: fmt.Sprintf("ec2ops-puppet-exitcode=%d\nNotice: done", marker)}
	}
	cases := []struct {
		inv  patching.Invocation
		dry  bool
		want opsworks.Outcome
	}{
		{inv("Success", 0, 0), false, opsworks.Unchanged},
		{inv("Success", 0, 2), false, opsworks.Changed},
		{inv("Success", 0, 2), true, opsworks.WouldChange},
		{inv("Failed", 4, 4), false, opsworks.Failed},
		{inv("Failed", 6, 6), false, opsworks.ChangedWithFailures},
		{inv("Failed", 1, 1), false, opsworks.Failed},
		{patching.Invocation{Status: "ExecutionTimedOut", ResponseCode: -1}, false, opsworks.Failed},
		{patching.Invocation{Status: "Failed", ResponseCode: 6, Output: strings.Repeat("x", 2500)}, false, opsworks.ChangedWithFailures},
	}
	for i, tc := range cases {
		if got := p.Outcome(tc.inv, tc.dry); got != tc.want {
			t.Errorf("case %d: %s, want %s", i, got, tc.want)
		}
	}
	cmd, err := p.Command(opsworks.RunSpec{Event: opsworks.Configure, RunList: []string{"role::web", "profile::base"}, DryRun: true,
		Attributes: map[string]any{"tier": "web"}})
	if err != nil {
		t.Fatal(err)
	}
	script := strings.Join(cmd.Parameters["commands"], "\n")
	for _, want := range []string{"puppet apply --detailed-exitcodes --noop -e 'include role::web, profile::base'", "ec2ops-puppet-exitcode=$rc", "case $rc in 0|2) exit 0"} {
		if !strings.Contains(script, want) {
			t.Fatalf("script lacks %q:\n%s", want, script)
		}
	}
}

// TestSecretsScrubbed: a runner error echoing the secret is scrubbed
// from the DeployError, and the Bootstrap validation error carries none.
func TestSecretsScrubbed(t *testing.T) {
	ctrl := gomock.NewController(t)
	e := opsworksmock.NewMockEC2API(ctrl)
	r := opsworksmock.NewMockCommandRunner(ctrl)
	e.EXPECT().DescribeInstances(gomock.Any(), gomock.Any()).Return(instancesOut("i-0000000000000000a"), nil)
	r.EXPECT().Run(gomock.Any(), gomock.Any()).Return(nil, errors.New(`ValidationException: parameter value {"password":"s3cr3t-pw"} too long`))
	_, err := opsworks.New(r, e).Run(context.Background(), chefStack(), opsworks.Deployment{Event: opsworks.Setup})
	var derr *opsworks.DeployError
	if !errors.As(err, &derr) || strings.Contains(err.Error(), "s3cr3t-pw") || !strings.Contains(err.Error(), "[sensitive]") {
		t.Fatalf("err %v", err)
	}
	b := opsworks.Bootstrap{Tool: "chef", Server: "https://chef.example.com/organizations/acme", ValidationClientName: "acme-validator",
		Secret: "-----BEGIN RSA PRIVATE KEY-----", SecretParameter: "/chef/key"}
	if _, err := b.Script(); !errors.Is(err, ec2ops.ErrInvalidInput) || strings.Contains(err.Error(), "PRIVATE") {
		t.Fatalf("bootstrap err %v", err)
	}
}

func TestPolicyJSON(t *testing.T) {
	p := opsworks.New(nil, nil).Policy()
	var doc map[string]any
	if err := json.Unmarshal([]byte(p.JSON()), &doc); err != nil || doc["Version"] != "2012-10-17" {
		t.Fatalf("policy %s %v", p.JSON(), err)
	}
	want := []string{"ec2:DescribeInstances", "ssm:CancelCommand", "ssm:DescribeInstanceInformation", "ssm:GetCommandInvocation",
		"ssm:ListCommandInvocations", "ssm:ListCommands", "ssm:SendCommand"}
	if !slices.Equal(p.Actions(), want) {
		t.Fatalf("actions %v", p.Actions())
	}
}
