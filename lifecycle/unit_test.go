package lifecycle_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"go.uber.org/mock/gomock"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/lifecycle"
	"github.com/ec2ops/ec2ops/lifecycle/lifecyclemock"
)

const mockID = "i-0123456789abcdef0"

// described returns the DescribeInstances output of one instance.
func described(mod func(*types.Instance)) *ec2.DescribeInstancesOutput {
	in := types.Instance{
		InstanceId: aws.String(mockID), ImageId: aws.String(oldAMI), InstanceType: types.InstanceTypeM5Large,
		SubnetId: aws.String("subnet-0aaaaaaaaaaaaaaa1"), State: &types.InstanceState{Name: types.InstanceStateNameRunning},
		Placement:      &types.Placement{AvailabilityZone: aws.String("us-east-1a"), Tenancy: types.TenancyDefault},
		SecurityGroups: []types.GroupIdentifier{{GroupId: aws.String("sg-0b")}, {GroupId: aws.String("sg-0a")}},
		RootDeviceName: aws.String("/dev/xvda"), RootDeviceType: types.DeviceTypeEbs,
		BlockDeviceMappings: []types.InstanceBlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"),
			Ebs: &types.EbsInstanceBlockDevice{VolumeId: aws.String("vol-0aaaaaaaaaaaaaaa1"), DeleteOnTermination: aws.Bool(true)}}},
		MetadataOptions: &types.InstanceMetadataOptionsResponse{HttpTokens: types.HttpTokensStateOptional, HttpPutResponseHopLimit: aws.Int32(1)},
		Tags:            []types.Tag{{Key: aws.String("app"), Value: aws.String("web")}, {Key: aws.String("aws:cloudformation:stack-name"), Value: aws.String("s")}},
	}
	if mod != nil {
		mod(&in)
	}
	return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: []types.Instance{in}}}}
}

// expectCapture sets up the read calls of a capture of one instance.
func expectCapture(m *lifecyclemock.MockEC2API, mod func(*types.Instance)) {
	m.EXPECT().DescribeInstances(gomock.Any(), gomock.Any()).DoAndReturn(
		func(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
			if aws.ToString(in.Filters[0].Name) == "tag:"+lifecycle.TagReplaces {
				return &ec2.DescribeInstancesOutput{}, nil
			}
			if aws.ToString(in.Filters[0].Name) != "instance-id" || in.Filters[0].Values[0] != mockID {
				return nil, fmt.Errorf("unexpected filters %v", in.Filters)
			}
			return described(mod), nil
		}).AnyTimes()
	m.EXPECT().DescribeVolumes(gomock.Any(), gomock.Any()).Return(&ec2.DescribeVolumesOutput{Volumes: []types.Volume{{
		VolumeId: aws.String("vol-0aaaaaaaaaaaaaaa1"), VolumeType: types.VolumeTypeGp3, Size: aws.Int32(30),
		Iops: aws.Int32(3000), Throughput: aws.Int32(125), Encrypted: aws.Bool(true), KmsKeyId: aws.String("arn:aws:kms:us-east-1:1:key/k")}}}, nil).AnyTimes()
	m.EXPECT().DescribeAddresses(gomock.Any(), gomock.Any()).Return(&ec2.DescribeAddressesOutput{}, nil).AnyTimes()
	m.EXPECT().DescribeInstanceAttribute(gomock.Any(), &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(mockID), Attribute: types.InstanceAttributeNameUserData}).
		Return(&ec2.DescribeInstanceAttributeOutput{UserData: &types.AttributeValue{Value: aws.String("c2VjcmV0")}}, nil).AnyTimes()
}

func TestSurgeLaunchInputAndCapacityError(t *testing.T) {
	ctrl := gomock.NewController(t)
	m := lifecyclemock.NewMockEC2API(ctrl)
	expectCapture(m, nil)
	var got *ec2.RunInstancesInput
	m.EXPECT().RunInstances(gomock.Any(), gomock.Any()).DoAndReturn(
		func(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
			if got != nil && aws.ToString(got.ClientToken) != aws.ToString(in.ClientToken) {
				t.Errorf("capacity retry changed the ClientToken: %q then %q", aws.ToString(got.ClientToken), aws.ToString(in.ClientToken))
			}
			got = in
			return nil, &smithy.GenericAPIError{Code: "InsufficientInstanceCapacity", Message: "no capacity"}
		}).Times(4) // the first launch and 3 capacity retries, then the replacement fails
	s := lifecycle.NewSurge(m, lifecycle.Target{ImageID: newAMI}, func(o *lifecycle.Options) { o.DisablePacing = true; o.TimeScale = 1e-3 })
	_, err := s.Replace(t.Context(), mockID)
	var re *lifecycle.ReplaceError
	if !errors.As(err, &re) || re.Phase != "launch" || re.RolledBack {
		t.Fatalf("error %v", err)
	}
	if strings.Contains(err.Error(), "c2VjcmV0") {
		t.Fatal("user data in the error")
	}
	tok := aws.ToString(got.ClientToken)
	if len(tok) > 64 || !strings.HasPrefix(tok, "ec2ops-") {
		t.Fatalf("ClientToken %q", tok)
	}
	if aws.ToString(got.ImageId) != newAMI || got.MetadataOptions.HttpTokens != types.HttpTokensStateRequired ||
		aws.ToString(got.UserData) != "c2VjcmV0" || aws.ToInt32(got.MaxCount) != 1 || aws.ToString(got.SubnetId) != "subnet-0aaaaaaaaaaaaaaa1" {
		t.Fatalf("RunInstances input %+v", got)
	}
	if g := got.SecurityGroupIds; len(g) != 2 || g[0] != "sg-0a" {
		t.Fatalf("security groups %v", g)
	}
	tags := map[string]string{}
	for _, tg := range got.TagSpecifications[0].Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags[lifecycle.TagReplaces] != mockID || tags["app"] != "web" || len(tags[lifecycle.TagSpec]) != 64 ||
		!strings.HasPrefix(tags[lifecycle.TagRollout], "replace-") || tags["aws:cloudformation:stack-name"] != "" {
		t.Fatalf("tags %v", tags)
	}
	b := got.BlockDeviceMappings[0].Ebs
	if aws.ToInt32(b.VolumeSize) != 30 || !aws.ToBool(b.Encrypted) || aws.ToString(b.KmsKeyId) == "" || aws.ToInt32(b.Throughput) != 125 {
		t.Fatalf("root volume %+v", b)
	}
	// The same replacement retried uses the same token.
	m2 := lifecyclemock.NewMockEC2API(ctrl)
	expectCapture(m2, nil)
	m2.EXPECT().RunInstances(gomock.Any(), gomock.Any()).DoAndReturn(
		func(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
			if aws.ToString(in.ClientToken) != tok {
				t.Errorf("retry token %q, want %q", aws.ToString(in.ClientToken), tok)
			}
			return nil, &smithy.GenericAPIError{Code: "InsufficientInstanceCapacity"}
		}).Times(4)
	_, _ = lifecycle.NewSurge(m2, lifecycle.Target{ImageID: newAMI}, func(o *lifecycle.Options) { o.DisablePacing = true; o.TimeScale = 1e-3 }).Replace(t.Context(), mockID)
}

func TestRefusalsBeforeAnyChange(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*types.Instance)
		want string
	}{
		{"asg", func(in *types.Instance) {
			in.Tags = append(in.Tags, types.Tag{Key: aws.String("aws:autoscaling:groupName"), Value: aws.String("web-asg")})
		}, `Auto Scaling group "web-asg"`},
		{"instance-store", func(in *types.Instance) { in.RootDeviceType = types.DeviceTypeInstanceStore }, "instance-store"},
		{"host", func(in *types.Instance) { in.Placement.Tenancy = types.TenancyHost }, "Dedicated Host"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := lifecyclemock.NewMockEC2API(gomock.NewController(t))
			expectCapture(m, c.mod) // no mutating call is expected: gomock fails on one
			_, err := lifecycle.NewSurge(m, lifecycle.Target{ImageID: newAMI}).Replace(t.Context(), mockID)
			if !errors.Is(err, ec2ops.ErrUnsupported) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v", err)
			}
			if c.name == "asg" && !strings.Contains(err.Error(), "Instance Refresh") {
				t.Fatalf("no pointer to Instance Refresh: %v", err)
			}
		})
	}
}

func TestInvalidInputBeforeAnyCall(t *testing.T) {
	m := lifecyclemock.NewMockEC2API(gomock.NewController(t)) // no call expected
	s := lifecycle.NewSurge(m, lifecycle.Target{ImageID: "not-an-ami"})
	if _, err := s.Replace(t.Context(), mockID); !errors.Is(err, ec2ops.ErrInvalidInput) {
		t.Fatalf("bad image: %v", err)
	}
	if _, err := s.Replace(t.Context(), "web-1"); !errors.Is(err, ec2ops.ErrInvalidInput) {
		t.Fatalf("bad id: %v", err)
	}
	ok := lifecycle.NewSurge(m, lifecycle.Target{ImageID: newAMI})
	for _, c := range []struct {
		sel lifecycle.Selector
		opt func(*lifecycle.RolloutOptions)
		fld string
	}{
		{lifecycle.Selector{}, nil, "Selector"},
		{lifecycle.Selector{Tags: map[string]string{"app": "web"}}, func(o *lifecycle.RolloutOptions) { o.MaxSurge = "ten" }, "RolloutOptions.MaxSurge"},
		{lifecycle.Selector{Tags: map[string]string{"app": "web"}}, func(o *lifecycle.RolloutOptions) { o.MaxUnavailable = "120%" }, "RolloutOptions.MaxUnavailable"},
		{lifecycle.Selector{Tags: map[string]string{"app": "web"}}, func(o *lifecycle.RolloutOptions) { o.Canary = "-1" }, "RolloutOptions.Canary"},
	} {
		opts := []func(*lifecycle.RolloutOptions){}
		if c.opt != nil {
			opts = append(opts, c.opt)
		}
		_, err := lifecycle.NewRollout(ok, c.sel, opts...).Apply(t.Context())
		var ie *ec2ops.InputError
		if !errors.As(err, &ie) || ie.Field != c.fld {
			t.Fatalf("%s: %v", c.fld, err)
		}
	}
	rv := lifecycle.NewRootVolume(struct {
		lifecycle.EC2API
		lifecycle.RootVolumeAPI
	}{m, lifecyclemock.NewMockRootVolumeAPI(gomock.NewController(t))}, lifecycle.Target{ImageID: newAMI, InstanceType: "c5.large"})
	if _, err := rv.Replace(t.Context(), mockID); !errors.Is(err, ec2ops.ErrInvalidInput) {
		t.Fatalf("root volume with a type change: %v", err)
	}
}

func TestUserDataNeverShown(t *testing.T) {
	u := lifecycle.NewUserData([]byte("password=hunter2"))
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("x", "ud", u)
	j, _ := json.Marshal(struct{ U lifecycle.UserData }{u})
	for _, s := range []string{u.String(), fmt.Sprintf("%v %+v %#v %s", u, u, u, u), sb.String(), string(j)} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "cGFzc3dvcmQ") {
			t.Fatalf("user data shown: %s", s)
		}
	}
	if raw, _ := u.Raw(); string(raw) != "password=hunter2" {
		t.Fatalf("raw %q", raw)
	}
}

func TestFileJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, err := lifecycle.OpenFileJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_ = j.Append(ctx, lifecycle.Record{Rollout: "a", Instance: "i-1", Phase: "launched", Replacement: "i-2"})
	_ = j.Append(ctx, lifecycle.Record{Rollout: "b", Instance: "i-3", Phase: "launched"})
	_ = j.Append(ctx, lifecycle.Record{Rollout: "a", Instance: "i-1", Phase: "done", Replacement: "i-2"})
	j.Close()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"rollout":"a","instance":"i-9","pha`) // a torn write
	f.Close()
	j, _ = lifecycle.OpenFileJournal(path)
	defer j.Close()
	recs, err := j.Records(ctx, "a")
	if err != nil || len(recs) != 2 || recs[1].Phase != "done" {
		t.Fatalf("records %v %v", recs, err)
	}
}
