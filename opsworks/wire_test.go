package opsworks_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ec2ops/ec2ops/internal/mototest"
	"github.com/ec2ops/ec2ops/opsworks"
	"github.com/ec2ops/ec2ops/patching"
)

// motoRunner sends a command with the real SSM client and reads each
// instance's result with GetCommandInvocation: moto implements SendCommand
// (any document name, completing at once with Success) but not
// ListCommandInvocations or DescribeInstanceInformation, which
// patching.Runner needs. It sends InstanceIds, never Targets (moto targets
// every instance in the region when Targets is set: DESIGN.md "Tests").
type motoRunner struct {
	c    *ssm.Client
	sent []*ssm.SendCommandInput
}

func (m *motoRunner) Run(ctx context.Context, cmd patching.Command) (*patching.Result, error) {
	in := &ssm.SendCommandInput{DocumentName: aws.String(cmd.DocumentName), InstanceIds: cmd.InstanceIDs, Parameters: cmd.Parameters,
		MaxConcurrency: aws.String(cmd.MaxConcurrency), MaxErrors: aws.String(cmd.MaxErrors), Comment: aws.String(cmd.Comment)}
	m.sent = append(m.sent, in)
	out, err := m.c.SendCommand(ctx, in)
	if err != nil {
		return nil, err
	}
	id := aws.ToString(out.Command.CommandId)
	res := &patching.Result{CommandIDs: []string{id}, Invocations: map[string]patching.Invocation{}}
	for _, iid := range cmd.InstanceIDs {
		g, err := m.c.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(id), InstanceId: aws.String(iid)})
		if err != nil {
			return nil, err
		}
		res.Invocations[iid] = patching.Invocation{InstanceID: iid, CommandID: id, Status: string(g.Status), ResponseCode: int(g.ResponseCode),
			Stdout: aws.ToString(g.StandardOutputContent)}
	}
	return res, nil
}

// TestWireMoto resolves a layer with real DescribeInstances tag filters and
// sends AWS-ApplyChefRecipes with SendCommand to moto_server; moto echoes
// the parameters in ListCommands.
func TestWireMoto(t *testing.T) {
	cfg := mototest.Config(t)
	ctx := context.Background()
	e := ec2.NewFromConfig(cfg)
	launch := func(tags ...ec2types.Tag) string {
		in := &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}
		if len(tags) > 0 {
			in.TagSpecifications = []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: tags}}
		}
		out, err := e.RunInstances(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Instances[0].InstanceId)
	}
	web := []string{launch(ec2types.Tag{Key: aws.String("Layer"), Value: aws.String("web")}), launch(ec2types.Tag{Key: aws.String("Layer"), Value: aws.String("web")})}
	launch(ec2types.Tag{Key: aws.String("Layer"), Value: aws.String("db")})
	launch()
	slices.Sort(web)
	runner := &motoRunner{c: ssm.NewFromConfig(cfg)}
	c := opsworks.New(runner, e)
	plan, err := c.Plan(ctx, chefStack(), opsworks.Deployment{Event: opsworks.Setup, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Layers[0].Instances(); !slices.Equal(slices.Sorted(slices.Values(got)), web) {
		t.Fatalf("layer resolved to %v, want %v", got, web)
	}
	rep, err := c.Apply(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count(opsworks.Applied) != 2 {
		t.Fatalf("outcomes %v", rep.Results)
	}
	lc, err := runner.c.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(rep.CommandIDs[0])})
	if err != nil || len(lc.Commands) != 1 {
		t.Fatalf("ListCommands %v %v", err, lc)
	}
	cmd := lc.Commands[0]
	if aws.ToString(cmd.DocumentName) != "AWS-ApplyChefRecipes" || cmd.Parameters["WhyRun"][0] != "True" ||
		cmd.Parameters["RunList"][0] != "recipe[nginx::default]" || !strings.Contains(cmd.Parameters["SourceInfo"][0], `"path"`) {
		t.Fatalf("command as moto stored it: %s %v", aws.ToString(cmd.DocumentName), cmd.Parameters)
	}
}

// ssmWire serves the SSM JSON protocol (awsJson1.1) with the documented
// responses and records the request bodies.
type ssmWire struct {
	mu     sync.Mutex
	bodies map[string][]map[string]any
	ids    []string
}

func (s *ssmWire) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSSM.")
	b, _ := io.ReadAll(r.Body)
	var in map[string]any
	_ = json.Unmarshal(b, &in)
	s.mu.Lock()
	s.bodies[op] = append(s.bodies[op], in)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	const cid = "11111111-2222-3333-4444-555555555555"
	var resp any
	switch op {
	case "DescribeInstanceInformation":
		var l []map[string]any
		for _, id := range s.ids {
			l = append(l, map[string]any{"InstanceId": id, "PingStatus": "Online", "PlatformType": "Linux", "ResourceType": "EC2Instance"})
		}
		resp = map[string]any{"InstanceInformationList": l}
	case "SendCommand":
		resp = map[string]any{"Command": map[string]any{"CommandId": cid, "DocumentName": in["DocumentName"], "Status": "Pending", "TargetCount": len(s.ids), "RequestedDateTime": 1.7e9}}
	case "ListCommands":
		resp = map[string]any{"Commands": []map[string]any{{"CommandId": cid, "Status": "Success", "StatusDetails": "Success", "TargetCount": len(s.ids), "CompletedCount": len(s.ids)}}}
	case "ListCommandInvocations":
		var l []map[string]any
		for _, id := range s.ids {
			l = append(l, map[string]any{"CommandId": cid, "InstanceId": id, "Status": "Success", "StatusDetails": "Success",
				"CommandPlugins": []map[string]any{{"Name": "runShellScript", "ResponseCode": 0,
					"Output": "PLAY RECAP ****\nlocalhost : ok=5 changed=2 unreachable=0 failed=0", "ResponseStartDateTime": 1.7e9, "ResponseFinishDateTime": 1.7e9 + 40}}})
		}
		resp = map[string]any{"CommandInvocations": l}
	default:
		w.WriteHeader(http.StatusBadRequest)
		resp = map[string]any{"__type": "UnknownOperationException", "message": op}
	}
	_ = json.NewEncoder(w).Encode(resp)
}

type fakeEC2 struct{ ids []string }

func (f fakeEC2) DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return instancesOut(f.ids...), nil
}

// TestWireHTTPAnsibleParameters runs an Ansible deployment through
// patching.Runner and the real SSM client, and checks the
// AWS-ApplyAnsiblePlaybooks parameters as they are on the wire.
func TestWireHTTPAnsibleParameters(t *testing.T) {
	ids := []string{"i-0000000000000000a", "i-0000000000000000b"}
	srv := &ssmWire{bodies: map[string][]map[string]any{}, ids: ids}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(hs.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}
	r := patching.NewRunner(ssm.NewFromConfig(cfg), func(o *patching.RunnerOptions) { o.PollInterval = time.Millisecond })
	stack := &opsworks.Stack{Name: "api", Backend: &opsworks.Ansible{Source: opsworks.Source{Type: "GitHub", Owner: "acme", Repository: "plays",
		Path: "ansible", GetOptions: "branch:main", TokenInfo: "{{ssm-secure:gh-token}}"}, InstallDependencies: true, Verbose: "-v"},
		Attributes: map[string]any{"env": "prod"},
		Layers: []opsworks.Layer{{Name: "api", Selector: []opsworks.Selector{{Key: "tag:Layer", Values: []string{"api"}}},
			RunLists: map[opsworks.Event][]string{opsworks.Deploy: {"site.yml"}}, Timeouts: map[opsworks.Event]time.Duration{opsworks.Deploy: 10 * time.Minute}}}}
	rep, err := opsworks.New(r, fakeEC2{ids}).Run(context.Background(), stack, opsworks.Deployment{Event: opsworks.Deploy, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count(opsworks.WouldChange) != 2 {
		t.Fatalf("outcomes %v", rep.Results)
	}
	body := srv.bodies["SendCommand"][0]
	got, _ := json.Marshal(body["Parameters"])
	want := `{"Check":["True"],"ExtraVariables":["env=prod"],"InstallDependencies":["True"],"PlaybookFile":["site.yml"],` +
		`"SourceInfo":["{\"getOptions\":\"branch:main\",\"owner\":\"acme\",\"path\":\"ansible\",\"repository\":\"plays\",\"tokenInfo\":\"{{ssm-secure:gh-token}}\"}"],` +
		`"SourceType":["GitHub"],"TimeoutSeconds":["600"],"Verbose":["-v"]}`
	if string(got) != want {
		t.Fatalf("parameters on the wire:\n got %s\nwant %s", got, want)
	}
	if body["DocumentName"] != "AWS-ApplyAnsiblePlaybooks" || body["MaxErrors"] != "0" || len(body["InstanceIds"].([]any)) != 2 || body["Comment"] != "ec2ops opsworks api Deploy" {
		t.Fatalf("SendCommand body %v", body)
	}
}
