package patching_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
	"go.uber.org/mock/gomock"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/quantity"
	"github.com/ec2ops/ec2ops/patching"
	"github.com/ec2ops/ec2ops/patching/patchingmock"
)

func quick(o *patching.RunnerOptions) {
	o.PollInterval, o.MaxPollInterval, o.ResultsInterval = time.Millisecond, time.Millisecond, time.Millisecond
}

func TestRunTagTargetsExactInputs(t *testing.T) {
	ctrl := gomock.NewController(t)
	m := patchingmock.NewMockCommandAPI(ctrl)
	ctx := context.Background()
	m.EXPECT().DescribeInstanceInformation(gomock.Any(), &ssm.DescribeInstanceInformationInput{
		Filters:    []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("tag:role"), Values: []string{"web"}}},
		MaxResults: aws.Int32(50),
	}).Return(&ssm.DescribeInstanceInformationOutput{InstanceInformationList: []ssmtypes.InstanceInformation{
		{InstanceId: aws.String("i-0000000000000000a"), PingStatus: ssmtypes.PingStatusOnline}}}, nil)
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException"}
	want := &ssm.SendCommandInput{
		DocumentName:           aws.String("AWS-RunShellScript"),
		Targets:                []ssmtypes.Target{{Key: aws.String("tag:role"), Values: []string{"web"}}},
		MaxConcurrency:         aws.String("10%"),
		MaxErrors:              aws.String("1"),
		TimeoutSeconds:         aws.Int32(600),
		Parameters:             map[string][]string{"commands": {"uptime"}, "executionTimeout": {"120"}},
		OutputS3BucketName:     aws.String("logs"),
		OutputS3KeyPrefix:      aws.String("ssm/"),
		CloudWatchOutputConfig: &ssmtypes.CloudWatchOutputConfig{CloudWatchOutputEnabled: true, CloudWatchLogGroupName: aws.String("/ops")},
		Comment:                aws.String("uptime"),
		AlarmConfiguration:     &ssmtypes.AlarmConfiguration{Alarms: []ssmtypes.Alarm{{Name: aws.String("cpu")}}},
	}
	gomock.InOrder(
		m.EXPECT().SendCommand(gomock.Any(), want).Return(nil, throttled),
		m.EXPECT().SendCommand(gomock.Any(), want).Return(&ssm.SendCommandOutput{Command: &ssmtypes.Command{CommandId: aws.String("c1")}}, nil),
	)
	m.EXPECT().ListCommands(gomock.Any(), &ssm.ListCommandsInput{CommandId: aws.String("c1")}).Return(&ssm.ListCommandsOutput{
		Commands: []ssmtypes.Command{{CommandId: aws.String("c1"), Status: ssmtypes.CommandStatusSuccess, CompletedCount: 51, TargetCount: 51}}}, nil)
	page := func(from, n int) []ssmtypes.CommandInvocation {
		var out []ssmtypes.CommandInvocation
		for i := from; i < from+n; i++ {
			out = append(out, ssmtypes.CommandInvocation{InstanceId: aws.String(instanceID(i)), Status: ssmtypes.CommandInvocationStatusSuccess,
				StatusDetails: aws.String("Success"), CommandPlugins: []ssmtypes.CommandPlugin{{Name: aws.String("aws:runShellScript"), Output: aws.String("up")}}})
		}
		return out
	}
	gomock.InOrder(
		m.EXPECT().ListCommandInvocations(gomock.Any(), &ssm.ListCommandInvocationsInput{CommandId: aws.String("c1"), Details: true, MaxResults: aws.Int32(50)}).
			Return(&ssm.ListCommandInvocationsOutput{CommandInvocations: page(0, 50), NextToken: aws.String("t")}, nil),
		m.EXPECT().ListCommandInvocations(gomock.Any(), &ssm.ListCommandInvocationsInput{CommandId: aws.String("c1"), Details: true, MaxResults: aws.Int32(50), NextToken: aws.String("t")}).
			Return(&ssm.ListCommandInvocationsOutput{CommandInvocations: page(50, 1)}, nil),
	)
	r := patching.NewRunner(m, quick)
	res, err := r.Run(ctx, patching.Command{DocumentName: "AWS-RunShellScript", Targets: []patching.Target{{Key: "tag:role", Values: []string{"web"}}},
		MaxConcurrency: "10%", MaxErrors: "1", TimeoutSeconds: 600, ExecutionTimeout: 2 * time.Minute,
		Parameters: map[string][]string{"commands": {"uptime"}}, OutputS3Bucket: "logs", OutputS3KeyPrefix: "ssm/",
		CloudWatchGroup: "/ops", Comment: "uptime", Alarms: []string{"cpu"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Invocations) != 51 {
		t.Fatalf("%d invocations, want 51 over two pages", len(res.Invocations))
	}
}

func instanceID(i int) string { return fmt.Sprintf("i-%017x", i) }

func TestRunBatchesOf50AndFailures(t *testing.T) {
	ctrl := gomock.NewController(t)
	m := patchingmock.NewMockCommandAPI(ctrl)
	var ids []string
	for i := range 120 {
		ids = append(ids, instanceID(i))
	}
	var sent [][]string
	m.EXPECT().SendCommand(gomock.Any(), gomock.Any()).Times(3).DoAndReturn(
		func(_ context.Context, in *ssm.SendCommandInput, _ ...func(*ssm.Options)) (*ssm.SendCommandOutput, error) {
			sent = append(sent, in.InstanceIds)
			if aws.ToString(in.MaxConcurrency) != "10" || aws.ToString(in.MaxErrors) != "0" { // 25 of 30 shared out over 40-ID batches
				t.Errorf("batch limits %s/%s", aws.ToString(in.MaxConcurrency), aws.ToString(in.MaxErrors))
			}
			return &ssm.SendCommandOutput{Command: &ssmtypes.Command{CommandId: aws.String(string(rune('a' + len(sent))))}}, nil
		})
	m.EXPECT().ListCommands(gomock.Any(), gomock.Any()).AnyTimes().DoAndReturn(
		func(_ context.Context, in *ssm.ListCommandsInput, _ ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error) {
			var cs []ssmtypes.Command
			for i := range sent {
				cs = append(cs, ssmtypes.Command{CommandId: aws.String(string(rune('a' + i + 1))), Status: ssmtypes.CommandStatusSuccess, CompletedCount: 40})
			}
			return &ssm.ListCommandsOutput{Commands: cs}, nil
		})
	m.EXPECT().ListCommandInvocations(gomock.Any(), gomock.Any()).Times(3).DoAndReturn(
		func(_ context.Context, in *ssm.ListCommandInvocationsInput, _ ...func(*ssm.Options)) (*ssm.ListCommandInvocationsOutput, error) {
			k := int(aws.ToString(in.CommandId)[0]-'a') - 1
			var out []ssmtypes.CommandInvocation
			for _, id := range sent[k] {
				st, rc := ssmtypes.CommandInvocationStatusSuccess, int32(0)
				if id == ids[0] {
					st, rc = ssmtypes.CommandInvocationStatusFailed, 2
				}
				out = append(out, ssmtypes.CommandInvocation{InstanceId: aws.String(id), Status: st, StatusDetails: aws.String(string(st)),
					CommandPlugins: []ssmtypes.CommandPlugin{{ResponseCode: rc, Output: aws.String("x")}}})
			}
			return &ssm.ListCommandInvocationsOutput{CommandInvocations: out}, nil
		})
	m.EXPECT().GetCommandInvocation(gomock.Any(), &ssm.GetCommandInvocationInput{CommandId: aws.String("b"), InstanceId: aws.String(ids[0])}).
		Return(&ssm.GetCommandInvocationOutput{StandardErrorContent: aws.String("boom"), StandardOutputUrl: aws.String("https://s3/x")}, nil)
	r := patching.NewRunner(m, quick, func(o *patching.RunnerOptions) { o.SkipPreflight = true })
	_, err := r.Run(context.Background(), patching.Command{DocumentName: "AWS-RunShellScript", InstanceIDs: ids, MaxConcurrency: "30"})
	var cerr *patching.CommandError
	if !errors.As(err, &cerr) || len(cerr.Failed) != 1 || cerr.Failed[ids[0]] != "Failed" {
		t.Fatalf("err %v", err)
	}
	if inv := cerr.Result.Invocations[ids[0]]; inv.Stderr != "boom" || inv.ResponseCode != 2 || inv.FullOutput != "https://s3/x" {
		t.Fatalf("failed invocation %+v", inv)
	}
	if len(sent) != 3 || len(sent[0]) != 40 || len(sent[2]) != 40 {
		t.Fatalf("batches %d of %d..%d, want 3 of 40", len(sent), len(sent[0]), len(sent[2]))
	}
}

func TestInvalidInputBeforeAnyCall(t *testing.T) {
	ctrl := gomock.NewController(t)
	m := patchingmock.NewMockCommandAPI(ctrl) // no call expected
	r := patching.NewRunner(m)
	for _, c := range []patching.Command{
		{},
		{DocumentName: "d"},
		{DocumentName: "d", InstanceIDs: []string{"i-1"}},
		{DocumentName: "d", InstanceIDs: []string{"i-0123456789abcdef0"}, MaxConcurrency: "0"},
		{DocumentName: "d", InstanceIDs: []string{"i-0123456789abcdef0"}, MaxErrors: "10.5%"},
		{DocumentName: "d", InstanceIDs: []string{"i-0123456789abcdef0"}, TimeoutSeconds: 5},
		{DocumentName: "d", Targets: []patching.Target{{Key: "bogus", Values: []string{"x"}}}},
		{DocumentName: "d", Targets: make([]patching.Target, 6)},
	} {
		if _, err := r.Run(context.Background(), c); !errors.Is(err, ec2ops.ErrInvalidInput) {
			t.Errorf("%+v: err %v, want invalid input", c, err)
		}
	}
}

func TestWaves(t *testing.T) {
	var ids []string
	az := map[string]string{}
	for i := range 10 {
		id := instanceID(i)
		ids = append(ids, id)
		az[id] = []string{"a", "a", "a", "a", "a", "a", "b", "b", "b", "c"}[i]
	}
	waves := patching.Waves(ids, az, 1, []quantity.Quantity{quantity.MustParse("50%"), quantity.MustParse("100%")}, 1)
	total := 0
	for _, w := range waves {
		per := map[string]int{}
		for _, id := range w {
			per[az[id]]++
		}
		if per["a"] > 5 || per["b"] > 2 || per["c"] > 1 {
			t.Fatalf("wave %v takes an AZ's last healthy instance", w)
		}
		total += len(w)
	}
	if total != 10 || len(waves[0]) != 1 {
		t.Fatalf("waves %v", waves)
	}
}

func FuzzWaves(f *testing.F) {
	f.Add(10, 3, 1, 1)
	f.Add(1, 1, 0, 2)
	f.Fuzz(func(t *testing.T, n, zones, canary, minHealthy int) {
		if n < 0 || n > 500 || zones < 1 || zones > 10 || minHealthy < 1 || minHealthy > 5 {
			return
		}
		var ids []string
		az := map[string]string{}
		per := map[string]int{}
		for i := range n {
			id := instanceID(i)
			ids = append(ids, id)
			az[id] = string(rune('a' + i%zones))
			per[az[id]]++
		}
		waves := patching.Waves(ids, az, canary, []quantity.Quantity{quantity.MustParse("10%"), quantity.MustParse("100%")}, minHealthy)
		seen := map[string]bool{}
		for _, w := range waves {
			if len(w) == 0 {
				t.Fatal("empty wave")
			}
			in := map[string]int{}
			for _, id := range w {
				if seen[id] {
					t.Fatalf("%s twice", id)
				}
				seen[id] = true
				in[az[id]]++
			}
			for z, k := range in {
				if k > max(1, per[z]-minHealthy) {
					t.Fatalf("wave takes %d of %d in %s", k, per[z], z)
				}
			}
		}
		if len(seen) != n {
			t.Fatalf("%d of %d instances in waves", len(seen), n)
		}
	})
}

func TestPolicyJSON(t *testing.T) {
	p := patching.NewPatcher(nil, nil).Policy()
	for _, a := range []string{"ssm:SendCommand", "ssm:CancelCommand", "ssm:ListCommands", "ssm:ListCommandInvocations",
		"ssm:GetCommandInvocation", "ssm:DescribeInstanceInformation", "ssm:DescribeInstancePatchStates",
		"ec2:DescribeInstances", "ec2:DescribeInstanceStatus"} {
		if !p.Allows(a) {
			t.Errorf("policy lacks %s", a)
		}
	}
	if len(p.Actions()) != 9 || p.Version != "2012-10-17" {
		t.Fatalf("policy %s", p.JSON())
	}
}
