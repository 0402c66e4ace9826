package patching_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ec2ops/ec2ops/internal/mototest"
	"github.com/ec2ops/ec2ops/patching"
)

// TestWireMotoRunCommand checks, against moto_server, the wire shapes the
// runner relies on: SendCommand with tag Targets, ListCommands by ID and
// GetCommandInvocation. moto completes commands at once with Success and,
// when Targets is set and InstanceIds empty, wrongly targets every
// instance in the region (DESIGN.md "Tests"): the untagged instance shows
// up too, which the assertion records.
func TestWireMotoRunCommand(t *testing.T) {
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
	web := launch(ec2types.Tag{Key: aws.String("role"), Value: aws.String("web")})
	other := launch()
	c := ssm.NewFromConfig(cfg)
	out, err := c.SendCommand(ctx, &ssm.SendCommandInput{
		DocumentName: aws.String(patching.DocRunShellScript), Comment: aws.String("wire"),
		Targets:        []ssmtypes.Target{{Key: aws.String("tag:role"), Values: []string{"web"}}},
		MaxConcurrency: aws.String("10%"), MaxErrors: aws.String("0"),
		Parameters: map[string][]string{"commands": {"uptime"}},
	})
	if err != nil {
		t.Fatalf("SendCommand: %v", err)
	}
	id := aws.ToString(out.Command.CommandId)
	if id == "" || len(out.Command.Targets) != 1 || aws.ToString(out.Command.MaxConcurrency) != "10%" {
		t.Fatalf("command %+v", out.Command)
	}
	lc, err := c.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(id)})
	if err != nil || len(lc.Commands) != 1 {
		t.Fatalf("ListCommands: %v %+v", err, lc)
	}
	if aws.ToString(lc.Commands[0].CommandId) != id {
		t.Fatalf("ListCommands returned %s", aws.ToString(lc.Commands[0].CommandId))
	}
	g, err := c.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(id), InstanceId: aws.String(web)})
	if err != nil {
		t.Fatalf("GetCommandInvocation: %v", err)
	}
	if g.Status != ssmtypes.CommandInvocationStatusSuccess || g.ResponseCode != 0 {
		t.Fatalf("invocation %s rc %d", g.Status, g.ResponseCode)
	}
	// moto's bug: the untagged instance was targeted too.
	if _, err := c.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(id), InstanceId: aws.String(other)}); err == nil {
		t.Logf("moto targeted untagged %s as well (known moto bug with Targets)", other)
	}
}

// ssmServer serves the SSM operations moto lacks (and the ones the runner
// needs around them) over the awsJson1.1 protocol the SDK uses: POST /,
// X-Amz-Target "AmazonSSM.<Op>", JSON bodies with epoch-second timestamps.
type ssmServer struct {
	mu    sync.Mutex
	calls map[string][]map[string]any
}

func (s *ssmServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSSM.")
	body, _ := io.ReadAll(r.Body)
	var in map[string]any
	_ = json.Unmarshal(body, &in)
	s.mu.Lock()
	s.calls[op] = append(s.calls[op], in)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	ids := []string{"i-0000000000000000a", "i-0000000000000000b"}
	var resp any
	switch op {
	case "DescribeInstanceInformation":
		resp = map[string]any{"InstanceInformationList": []map[string]any{
			{"InstanceId": ids[0], "PingStatus": "Online", "LastPingDateTime": 1.7e9, "PlatformType": "Linux", "ResourceType": "EC2Instance"},
			{"InstanceId": ids[1], "PingStatus": "Online", "LastPingDateTime": 1.7e9, "PlatformType": "Linux", "ResourceType": "EC2Instance"},
		}}
	case "SendCommand":
		resp = map[string]any{"Command": map[string]any{"CommandId": "11111111-2222-3333-4444-555555555555", "Status": "Pending", "TargetCount": 2, "RequestedDateTime": 1.7e9}}
	case "ListCommands":
		resp = map[string]any{"Commands": []map[string]any{{"CommandId": "11111111-2222-3333-4444-555555555555",
			"Status": "Failed", "StatusDetails": "Failed", "TargetCount": 2, "CompletedCount": 2, "ErrorCount": 1}}}
	case "ListCommandInvocations":
		resp = map[string]any{"CommandInvocations": []map[string]any{
			{"CommandId": "11111111-2222-3333-4444-555555555555", "InstanceId": ids[0], "Status": "Success", "StatusDetails": "Success",
				"CommandPlugins": []map[string]any{{"Name": "aws:runShellScript", "ResponseCode": 0, "Output": "ok",
					"ResponseStartDateTime": 1.7e9, "ResponseFinishDateTime": 1.7e9 + 30}}},
			{"CommandId": "11111111-2222-3333-4444-555555555555", "InstanceId": ids[1], "Status": "TimedOut", "StatusDetails": "ExecutionTimedOut",
				"StandardOutputUrl": "https://s3.us-east-1.amazonaws.com/logs/out",
				"CommandPlugins": []map[string]any{{"Name": "aws:runShellScript", "ResponseCode": -1,
					"Output": strings.Repeat("x", 2400) + "\n---Output truncated---"}}},
		}}
	case "GetCommandInvocation":
		resp = map[string]any{"CommandId": "11111111-2222-3333-4444-555555555555", "InstanceId": ids[1], "Status": "TimedOut",
			"StatusDetails": "ExecutionTimedOut", "ResponseCode": -1, "StandardOutputContent": strings.Repeat("x", 24000),
			"StandardOutputUrl": "https://s3.us-east-1.amazonaws.com/logs/out"}
	case "DescribeInstancePatchStates":
		resp = map[string]any{"InstancePatchStates": []map[string]any{{"InstanceId": ids[0], "BaselineId": "pb-1", "PatchGroup": "",
			"Operation": "Install", "OperationStartTime": 1.7e9, "OperationEndTime": 1.7e9 + 300, "InstalledCount": 400,
			"MissingCount": 0, "FailedCount": 0, "InstalledPendingRebootCount": 2, "NotApplicableCount": 1000}}}
	default:
		w.WriteHeader(http.StatusBadRequest)
		resp = map[string]any{"__type": "UnknownOperationException", "message": op}
	}
	_ = json.NewEncoder(w).Encode(resp)
}

func httptestConfig(t *testing.T, h http.Handler) aws.Config {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}
}

// TestWireHTTPRunner runs the Runner over the real SDK client against the
// documented JSON of DescribeInstanceInformation, ListCommandInvocations
// and GetCommandInvocation.
func TestWireHTTPRunner(t *testing.T) {
	srv := &ssmServer{calls: map[string][]map[string]any{}}
	cfg := httptestConfig(t, srv)
	r := patching.NewRunnerFromConfig(cfg, quick)
	_, err := r.Run(context.Background(), patching.Command{DocumentName: patching.DocRunShellScript,
		InstanceIDs: []string{"i-0000000000000000a", "i-0000000000000000b"}, Parameters: map[string][]string{"commands": {"uptime"}}})
	var cerr *patching.CommandError
	if !errors.As(err, &cerr) || cerr.Failed["i-0000000000000000b"] != "ExecutionTimedOut" || len(cerr.Failed) != 1 {
		t.Fatalf("err %v", err)
	}
	inv := cerr.Result.Invocations["i-0000000000000000b"]
	if !inv.Truncated || inv.FullOutput != "https://s3.us-east-1.amazonaws.com/logs/out" || len(inv.Stdout) != 24000 {
		t.Fatalf("truncated invocation: truncated=%v full=%q stdout=%d", inv.Truncated, inv.FullOutput, len(inv.Stdout))
	}
	ok := cerr.Result.Invocations["i-0000000000000000a"]
	if ok.Output != "ok" || ok.End.Sub(ok.Start).Seconds() != 30 {
		t.Fatalf("ok invocation %+v", ok)
	}
	lci := srv.calls["ListCommandInvocations"][0]
	if lci["Details"] != true || lci["MaxResults"] != float64(50) {
		t.Fatalf("ListCommandInvocations input %v", lci)
	}
	dii := srv.calls["DescribeInstanceInformation"][0]
	if f := dii["Filters"].([]any)[0].(map[string]any); f["Key"] != "InstanceIds" {
		t.Fatalf("DescribeInstanceInformation input %v", dii)
	}
}

// TestWireHTTPPatchStates decodes DescribeInstancePatchStates.
func TestWireHTTPPatchStates(t *testing.T) {
	srv := &ssmServer{calls: map[string][]map[string]any{}}
	c := ssm.NewFromConfig(httptestConfig(t, srv))
	out, err := c.DescribeInstancePatchStates(context.Background(), &ssm.DescribeInstancePatchStatesInput{InstanceIds: []string{"i-0000000000000000a"}})
	if err != nil {
		t.Fatal(err)
	}
	st := out.InstancePatchStates[0]
	if st.InstalledCount != 400 || aws.ToInt32(st.InstalledPendingRebootCount) != 2 || st.Operation != ssmtypes.PatchOperationTypeInstall {
		t.Fatalf("patch state %+v", st)
	}
}
