package lifecycle_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"go.uber.org/mock/gomock"

	"github.com/ec2ops/ec2ops/lifecycle"
	"github.com/ec2ops/ec2ops/lifecycle/lifecyclemock"
)

func t3micro(in *types.Instance) { in.InstanceType = types.InstanceTypeT3Micro }

// launchInput runs one Surge replacement of mockID against m and returns
// the RunInstances input (the launch is answered with a capacity error).
func launchInput(t *testing.T, m *lifecyclemock.MockEC2API, target lifecycle.Target) *ec2.RunInstancesInput {
	t.Helper()
	var got *ec2.RunInstancesInput
	m.EXPECT().RunInstances(gomock.Any(), gomock.Any()).DoAndReturn(
		func(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
			got = in
			return nil, &smithy.GenericAPIError{Code: "InsufficientInstanceCapacity", Message: "no capacity"}
		}).MinTimes(1)
	s := lifecycle.NewSurge(m, target, func(o *lifecycle.Options) { o.DisablePacing = true; o.TimeScale = 1e-3 })
	if _, err := s.Replace(t.Context(), mockID); err == nil {
		t.Fatal("replacement succeeded without a launch")
	}
	return got
}

func TestCaptureCreditsInputAndLaunch(t *testing.T) {
	ctrl := gomock.NewController(t)
	m := lifecyclemock.NewMockEC2API(ctrl)
	expectCapture(m, t3micro)
	m.EXPECT().DescribeInstanceCreditSpecifications(gomock.Any(), &ec2.DescribeInstanceCreditSpecificationsInput{InstanceIds: []string{mockID}}).
		Return(&ec2.DescribeInstanceCreditSpecificationsOutput{InstanceCreditSpecifications: []types.InstanceCreditSpecification{
			{InstanceId: aws.String(mockID), CpuCredits: aws.String("standard")}}}, nil).MinTimes(1)
	got := launchInput(t, m, lifecycle.Target{ImageID: newAMI})
	if got.CreditSpecification == nil || aws.ToString(got.CreditSpecification.CpuCredits) != "standard" {
		t.Fatalf("RunInstances CreditSpecification %+v, want standard", got.CreditSpecification)
	}

	spec, err := lifecycle.NewCapturer(m).Capture(t.Context(), mockID)
	if err != nil || spec.CreditSpecification != "standard" {
		t.Fatalf("captured %q, %v", spec.CreditSpecification, err)
	}
}

func TestCreditsDroppedForNonBurstableTarget(t *testing.T) {
	m := lifecyclemock.NewMockEC2API(gomock.NewController(t))
	expectCapture(m, t3micro)
	m.EXPECT().DescribeInstanceCreditSpecifications(gomock.Any(), gomock.Any()).
		Return(&ec2.DescribeInstanceCreditSpecificationsOutput{InstanceCreditSpecifications: []types.InstanceCreditSpecification{
			{InstanceId: aws.String(mockID), CpuCredits: aws.String("unlimited")}}}, nil).MinTimes(1)
	got := launchInput(t, m, lifecycle.Target{ImageID: newAMI, InstanceType: "m5.large"})
	if got.CreditSpecification != nil {
		t.Fatalf("m5.large launched with CreditSpecification %+v", got.CreditSpecification)
	}
}

func TestNonBurstableMakesNoCreditCall(t *testing.T) {
	// expectCapture describes an m5.large; the mock fails on any
	// DescribeInstanceCreditSpecifications call.
	m := lifecyclemock.NewMockEC2API(gomock.NewController(t))
	expectCapture(m, nil)
	got := launchInput(t, m, lifecycle.Target{ImageID: newAMI})
	if got.CreditSpecification != nil {
		t.Fatalf("m5.large launched with CreditSpecification %+v", got.CreditSpecification)
	}
}

// TestCaptureAllCreditBatches captures 1001 T instances and 3 m5 ones: two
// credit calls (1000 and 1 IDs), none with an m5; an instance that vanished
// between the calls fails a call with NotFound, which is bisected.
func TestCaptureAllCreditBatches(t *testing.T) {
	m := lifecyclemock.NewMockCaptureAPI(gomock.NewController(t))
	var ids []string
	itype := map[string]types.InstanceType{}
	for i := range 1004 {
		id := fmt.Sprintf("i-%017x", i+1)
		ids = append(ids, id)
		itype[id] = types.InstanceTypeT3Micro
		if i%400 == 7 {
			itype[id] = types.InstanceTypeM5Large
		}
	}
	gone := ids[500]
	m.EXPECT().DescribeInstances(gomock.Any(), gomock.Any()).DoAndReturn(
		func(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
			var r types.Reservation
			for _, id := range in.Filters[0].Values {
				r.Instances = append(r.Instances, types.Instance{InstanceId: aws.String(id), InstanceType: itype[id], ImageId: aws.String(oldAMI)})
			}
			return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{r}}, nil
		}).Times(6) // 200 filter values a call
	m.EXPECT().DescribeAddresses(gomock.Any(), gomock.Any()).Return(&ec2.DescribeAddressesOutput{}, nil).Times(6)
	m.EXPECT().DescribeInstanceAttribute(gomock.Any(), gomock.Any()).Return(&ec2.DescribeInstanceAttributeOutput{}, nil).Times(1004)
	var sizes []int
	m.EXPECT().DescribeInstanceCreditSpecifications(gomock.Any(), gomock.Any()).DoAndReturn(
		func(_ context.Context, in *ec2.DescribeInstanceCreditSpecificationsInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceCreditSpecificationsOutput, error) {
			sizes = append(sizes, len(in.InstanceIds))
			if in.Filters != nil || in.MaxResults != nil {
				t.Errorf("credit call with filters or MaxResults: %+v", in)
			}
			out := &ec2.DescribeInstanceCreditSpecificationsOutput{}
			for _, id := range in.InstanceIds {
				if itype[id] != types.InstanceTypeT3Micro {
					t.Errorf("credit call for %s (%s)", id, itype[id])
				}
				if id == gone {
					return nil, &smithy.GenericAPIError{Code: "InvalidInstanceID.NotFound", Message: "The instance ID '" + id + "' does not exist"}
				}
				out.InstanceCreditSpecifications = append(out.InstanceCreditSpecifications,
					types.InstanceCreditSpecification{InstanceId: aws.String(id), CpuCredits: aws.String("standard")})
			}
			return out, nil
		}).AnyTimes()
	specs, err := lifecycle.NewCapturer(m, func(o *lifecycle.Options) { o.DisablePacing = true }).CaptureAll(t.Context(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if sizes[0] != 1000 || slices.Max(sizes) != 1000 {
		t.Fatalf("credit call sizes %v", sizes)
	}
	// 1000 IDs fail, bisected down to the missing one: 1 + 2*10 calls, at most, plus the last chunk.
	if len(sizes) > 22 {
		t.Fatalf("%d credit calls: %v", len(sizes), sizes)
	}
	for _, id := range ids {
		want := "standard"
		if itype[id] != types.InstanceTypeT3Micro || id == gone {
			want = ""
		}
		if got := specs[id].CreditSpecification; got != want {
			t.Fatalf("%s (%s): credits %q, want %q", id, itype[id], got, want)
		}
	}
}

func TestCreditsDrift(t *testing.T) {
	cur := &lifecycle.Spec{ImageID: oldAMI, InstanceType: "t3.micro", CreditSpecification: "unlimited"}
	want := &lifecycle.Spec{ImageID: oldAMI, InstanceType: "t3.micro", CreditSpecification: "standard"}
	if cur.Hash() == want.Hash() {
		t.Fatal("the credit option is not part of the drift hash")
	}
	if d := lifecycle.Diff(cur, want); len(d) != 1 || !strings.Contains(d[0], "cpu credits unlimited -> standard") {
		t.Fatalf("Diff %v", d)
	}
}
