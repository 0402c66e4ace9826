package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"go.uber.org/mock/gomock"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/lifecycle"
	"github.com/ec2ops/ec2ops/lifecycle/lifecyclemock"
)

// typeTable is what the mocked DescribeInstanceTypes knows.
var typeTable = map[string]types.InstanceTypeInfo{
	"m4.large":  typeInfo("m4.large", types.ArchitectureTypeX8664, types.InstanceTypeHypervisorXen, types.EnaSupportSupported, types.EbsNvmeSupportUnsupported, types.VirtualizationTypeHvm, types.VirtualizationTypeParavirtual),
	"m5.large":  typeInfo("m5.large", types.ArchitectureTypeX8664, types.InstanceTypeHypervisorNitro, types.EnaSupportRequired, types.EbsNvmeSupportRequired, types.VirtualizationTypeHvm),
	"m5.xlarge": typeInfo("m5.xlarge", types.ArchitectureTypeX8664, types.InstanceTypeHypervisorNitro, types.EnaSupportRequired, types.EbsNvmeSupportRequired, types.VirtualizationTypeHvm),
	"m6g.large": typeInfo("m6g.large", types.ArchitectureTypeArm64, types.InstanceTypeHypervisorNitro, types.EnaSupportRequired, types.EbsNvmeSupportRequired, types.VirtualizationTypeHvm),
}

func typeInfo(name string, arch types.ArchitectureType, hv types.InstanceTypeHypervisor, ena types.EnaSupport, nvme types.EbsNvmeSupport, virt ...types.VirtualizationType) types.InstanceTypeInfo {
	return types.InstanceTypeInfo{InstanceType: types.InstanceType(name), Hypervisor: hv,
		ProcessorInfo:                &types.ProcessorInfo{SupportedArchitectures: []types.ArchitectureType{arch}},
		SupportedVirtualizationTypes: virt, NetworkInfo: &types.NetworkInfo{EnaSupport: ena}, EbsInfo: &types.EbsInfo{NvmeSupport: nvme}}
}

// fakeInstance is the mocked instance's mutable state.
type fakeInstance struct {
	mu    sync.Mutex
	itype string
	state types.InstanceStateName
	mod   func(*types.Instance)
}

func (f *fakeInstance) set(itype string, st types.InstanceStateName) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if itype != "" {
		f.itype = itype
	}
	if st != "" {
		f.state = st
	}
}

// expectResizeReads mocks the read calls: capture, the batched pollers
// (DescribeInstances, DescribeInstanceStatus) answered from f, and the
// type calls from typeTable with offerings in azs. Each type call checks
// its exact input.
func expectResizeReads(t *testing.T, m *lifecyclemock.MockResizeClient, f *fakeInstance, azs ...string) {
	// The batched instance poller pages with the SDK paginator, which
	// passes an option: the third matcher takes any options.
	m.EXPECT().DescribeInstances(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(
		func(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
			if aws.ToString(in.Filters[0].Name) == "tag:"+lifecycle.TagReplaces {
				return &ec2.DescribeInstancesOutput{}, nil
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			return described(func(i *types.Instance) {
				i.InstanceType, i.State = types.InstanceType(f.itype), &types.InstanceState{Name: f.state}
				i.Architecture, i.VirtualizationType, i.EnaSupport = types.ArchitectureValuesX8664, types.VirtualizationTypeHvm, aws.Bool(true)
				if f.mod != nil {
					f.mod(i)
				}
			}), nil
		}).AnyTimes()
	m.EXPECT().DescribeVolumes(gomock.Any(), gomock.Any()).Return(&ec2.DescribeVolumesOutput{}, nil).AnyTimes()
	m.EXPECT().DescribeAddresses(gomock.Any(), gomock.Any()).Return(&ec2.DescribeAddressesOutput{}, nil).AnyTimes()
	m.EXPECT().DescribeInstanceAttribute(gomock.Any(), gomock.Any()).Return(&ec2.DescribeInstanceAttributeOutput{}, nil).AnyTimes()
	m.EXPECT().DescribeInstanceStatus(gomock.Any(), gomock.Any()).DoAndReturn(
		func(_ context.Context, in *ec2.DescribeInstanceStatusInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			st := types.InstanceStatus{InstanceId: aws.String(mockID), InstanceState: &types.InstanceState{Name: f.state},
				SystemStatus: &types.InstanceStatusSummary{Status: types.SummaryStatusOk}, InstanceStatus: &types.InstanceStatusSummary{Status: types.SummaryStatusOk}}
			return &ec2.DescribeInstanceStatusOutput{InstanceStatuses: []types.InstanceStatus{st}}, nil
		}).AnyTimes()
	m.EXPECT().DescribeInstanceTypes(gomock.Any(), gomock.Any()).DoAndReturn(
		func(_ context.Context, in *ec2.DescribeInstanceTypesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
			if aws.ToInt32(in.MaxResults) != 100 || len(in.InstanceTypes) == 0 || len(in.InstanceTypes) > 100 || len(in.Filters) != 0 {
				t.Errorf("DescribeInstanceTypes input %+v", in)
			}
			out := &ec2.DescribeInstanceTypesOutput{}
			for _, n := range in.InstanceTypes {
				info, ok := typeTable[string(n)]
				if !ok {
					return nil, &smithy.GenericAPIError{Code: "InvalidInstanceType", Message: "The following supplied instance types do not exist: [" + string(n) + "]"}
				}
				out.InstanceTypes = append(out.InstanceTypes, info)
			}
			return out, nil
		}).AnyTimes()
	m.EXPECT().DescribeInstanceTypeOfferings(gomock.Any(), gomock.Any()).DoAndReturn(
		func(_ context.Context, in *ec2.DescribeInstanceTypeOfferingsInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceTypeOfferingsOutput, error) {
			if in.LocationType != types.LocationTypeAvailabilityZone || len(in.Filters) != 1 || aws.ToString(in.Filters[0].Name) != "instance-type" {
				t.Errorf("DescribeInstanceTypeOfferings input %+v", in)
			}
			out := &ec2.DescribeInstanceTypeOfferingsOutput{}
			for _, n := range in.Filters[0].Values {
				for _, az := range azs {
					out.InstanceTypeOfferings = append(out.InstanceTypeOfferings, types.InstanceTypeOffering{
						InstanceType: types.InstanceType(n), Location: aws.String(az), LocationType: types.LocationTypeAvailabilityZone})
				}
			}
			return out, nil
		}).AnyTimes()
}

func mockOpts(o *lifecycle.ResizeOptions) {
	o.DisablePacing = true
	o.PollInterval = time.Second
}

// TestResizeChecksBeforeAnyChange: every incompatibility is refused with
// a *ResizeRefusal before any mutating call (the mock has none
// expected, so one would fail the test).
func TestResizeChecksBeforeAnyChange(t *testing.T) {
	cases := []struct {
		name, from, to, check string
		mod                   func(*types.Instance)
		azs                   []string
		nvme                  bool
	}{
		{"architecture", "m5.large", "m6g.large", "architecture", nil, []string{"us-east-1a"}, false},
		{"architecture-of-type", "m5.large", "m6g.large", "architecture", func(i *types.Instance) { i.Architecture = "" }, []string{"us-east-1a"}, false},
		{"virtualization", "m4.large", "m5.large", "virtualization", func(i *types.Instance) { i.VirtualizationType = types.VirtualizationTypeParavirtual }, []string{"us-east-1a"}, true},
		{"ena", "m4.large", "m5.large", "ena", func(i *types.Instance) { i.EnaSupport = aws.Bool(false) }, []string{"us-east-1a"}, true},
		{"nvme", "m4.large", "m5.large", "nvme", nil, []string{"us-east-1a"}, false},
		{"offering", "m5.large", "m5.xlarge", "offering", nil, []string{"us-east-1b", "us-east-1c"}, false},
		{"unknown", "m5.large", "m5.huge", "unknown-type", nil, []string{"us-east-1a"}, false},
		{"instance-store", "m5.large", "m5.xlarge", "root-device", func(i *types.Instance) { i.RootDeviceType = types.DeviceTypeInstanceStore }, []string{"us-east-1a"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := lifecyclemock.NewMockResizeClient(gomock.NewController(t))
			expectResizeReads(t, m, &fakeInstance{itype: c.from, state: types.InstanceStateNameRunning, mod: c.mod}, c.azs...)
			z := lifecycle.NewResize(m, c.to, mockOpts, func(o *lifecycle.ResizeOptions) { o.NVMeDriversVerified = c.nvme })
			_, err := z.Replace(t.Context(), mockID)
			var ref *lifecycle.ResizeRefusal
			if !errors.As(err, &ref) || ref.Check != c.check || ref.From != c.from || ref.To != c.to || ref.InstanceID != mockID || !errors.Is(err, ec2ops.ErrUnsupported) {
				t.Fatalf("error %v", err)
			}
			if !strings.Contains(err.Error(), mockID) || !strings.Contains(err.Error(), c.from) || !strings.Contains(err.Error(), c.to) {
				t.Fatalf("error does not name instance and types: %v", err)
			}
		})
	}
	// NVMeDriversVerified lets a Xen -> Nitro move through; Plan shows the steps.
	m := lifecyclemock.NewMockResizeClient(gomock.NewController(t))
	expectResizeReads(t, m, &fakeInstance{itype: "m4.large", state: types.InstanceStateNameRunning}, "us-east-1a")
	p, err := lifecycle.NewResize(m, "m5.large", mockOpts, func(o *lifecycle.ResizeOptions) { o.NVMeDriversVerified = true }).Plan(t.Context(), mockID)
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, s := range p.Steps {
		acts = append(acts, s.Action)
	}
	want := []string{"ec2:DescribeInstanceTypes", "ec2:DescribeInstanceTypeOfferings", "ec2:StopInstances", "ec2:DescribeInstances",
		"ec2:ModifyInstanceAttribute", "ec2:StartInstances", "ec2:DescribeInstanceStatus"}
	if !slices.Equal(acts, want) {
		t.Fatalf("plan %v", acts)
	}
	if _, err := lifecycle.NewResize(m, "huge").Check(t.Context(), []string{mockID}); !errors.Is(err, ec2ops.ErrInvalidInput) {
		t.Fatalf("bad type: %v", err)
	}
	if _, err := lifecycle.NewResize(m, "m5.xlarge").Replace(t.Context(), "web-1"); !errors.Is(err, ec2ops.ErrInvalidInput) {
		t.Fatalf("bad id: %v", err)
	}
	ro := lifecycle.NewRollout(lifecycle.NewResize(m, "m5.xlarge", mockOpts), lifecycle.Selector{InstanceIDs: []string{mockID}})
	var ie *ec2ops.InputError
	if _, err := ro.Apply(t.Context()); !errors.As(err, &ie) || ie.Field != "RolloutOptions.MaxUnavailable" {
		t.Fatalf("in-place rollout without MaxUnavailable: %v", err)
	}
}

// TestResizeStopModifyStartInputs checks the exact mutating calls, in
// order: StopInstances, ModifyInstanceAttribute InstanceType,
// StartInstances.
func TestResizeStopModifyStartInputs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := lifecyclemock.NewMockResizeClient(gomock.NewController(t))
		f := &fakeInstance{itype: "m5.large", state: types.InstanceStateNameRunning}
		expectResizeReads(t, m, f, "us-east-1a")
		gomock.InOrder(
			m.EXPECT().StopInstances(gomock.Any(), &ec2.StopInstancesInput{InstanceIds: []string{mockID}}).DoAndReturn(
				func(context.Context, *ec2.StopInstancesInput, ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error) {
					f.set("", types.InstanceStateNameStopped)
					return &ec2.StopInstancesOutput{}, nil
				}),
			m.EXPECT().ModifyInstanceAttribute(gomock.Any(), &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(mockID),
				InstanceType: &types.AttributeValue{Value: aws.String("m5.xlarge")}}).DoAndReturn(
				func(context.Context, *ec2.ModifyInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error) {
					f.set("m5.xlarge", "")
					return &ec2.ModifyInstanceAttributeOutput{}, nil
				}),
			m.EXPECT().StartInstances(gomock.Any(), &ec2.StartInstancesInput{InstanceIds: []string{mockID}}).DoAndReturn(
				func(context.Context, *ec2.StartInstancesInput, ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error) {
					f.set("", types.InstanceStateNameRunning)
					return &ec2.StartInstancesOutput{}, nil
				}),
		)
		r, err := lifecycle.NewResize(m, "m5.xlarge", mockOpts).Replace(context.Background(), mockID)
		if err != nil || r.NewID != mockID || len(r.Reasons) != 1 {
			t.Fatalf("%+v %v", r, err)
		}
	})
}

// TestResizeRestoresAfterCapacityError: the new type cannot start
// (InsufficientInstanceCapacity); the old type is put back and the
// instance started again.
func TestResizeRestoresAfterCapacityError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := lifecyclemock.NewMockResizeClient(gomock.NewController(t))
		f := &fakeInstance{itype: "m5.large", state: types.InstanceStateNameRunning}
		expectResizeReads(t, m, f, "us-east-1a")
		modify := func(to string) *gomock.Call {
			return m.EXPECT().ModifyInstanceAttribute(gomock.Any(), &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(mockID),
				InstanceType: &types.AttributeValue{Value: aws.String(to)}}).DoAndReturn(
				func(context.Context, *ec2.ModifyInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error) {
					f.set(to, "")
					return &ec2.ModifyInstanceAttributeOutput{}, nil
				})
		}
		gomock.InOrder(
			m.EXPECT().StopInstances(gomock.Any(), gomock.Any()).DoAndReturn(
				func(context.Context, *ec2.StopInstancesInput, ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error) {
					f.set("", types.InstanceStateNameStopped)
					return &ec2.StopInstancesOutput{}, nil
				}),
			modify("m5.xlarge"),
			m.EXPECT().StartInstances(gomock.Any(), gomock.Any()).Return(nil,
				&smithy.GenericAPIError{Code: "InsufficientInstanceCapacity", Message: "We currently do not have sufficient m5.xlarge capacity"}),
			modify("m5.large"),
			m.EXPECT().StartInstances(gomock.Any(), gomock.Any()).DoAndReturn(
				func(context.Context, *ec2.StartInstancesInput, ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error) {
					f.set("", types.InstanceStateNameRunning)
					return &ec2.StartInstancesOutput{}, nil
				}),
		)
		_, err := lifecycle.NewResize(m, "m5.xlarge", mockOpts).Replace(context.Background(), mockID)
		var re *lifecycle.ReplaceError
		var ze *lifecycle.ResizeError
		var api smithy.APIError
		if !errors.As(err, &re) || re.Phase != "start" || !errors.As(err, &ze) || !ze.Restored || ze.From != "m5.large" ||
			!errors.As(err, &api) || api.ErrorCode() != "InsufficientInstanceCapacity" {
			t.Fatalf("error %v", err)
		}
		if f.itype != "m5.large" || f.state != types.InstanceStateNameRunning {
			t.Fatalf("instance %s %s", f.itype, f.state)
		}
	})
}

// TestResizeTypeBatchingAndCache: Check on 150 instances of 130 distinct
// types describes them in two DescribeInstanceTypes calls (100 + 31 with
// the target) and one offerings call; a second Check makes neither.
func TestResizeTypeBatchingAndCache(t *testing.T) {
	m := lifecyclemock.NewMockResizeClient(gomock.NewController(t))
	var ids []string
	var fleet []types.Instance
	for i := range 150 {
		id := fmt.Sprintf("i-%017x", i+1)
		ids = append(ids, id)
		fleet = append(fleet, types.Instance{InstanceId: aws.String(id), InstanceType: types.InstanceType(fmt.Sprintf("x%d.large", i%130)),
			Architecture: types.ArchitectureValuesX8664, VirtualizationType: types.VirtualizationTypeHvm, EnaSupport: aws.Bool(true),
			RootDeviceType: types.DeviceTypeEbs, State: &types.InstanceState{Name: types.InstanceStateNameRunning},
			Placement: &types.Placement{AvailabilityZone: aws.String("us-east-1a")}})
	}
	m.EXPECT().DescribeInstances(gomock.Any(), gomock.Any()).DoAndReturn(
		func(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
			if aws.ToString(in.Filters[0].Name) != "instance-id" || len(in.Filters[0].Values) != 150 {
				t.Errorf("filters %+v", in.Filters)
			}
			return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: fleet}}}, nil
		}).Times(2)
	described := map[string]int{}
	m.EXPECT().DescribeInstanceTypes(gomock.Any(), gomock.Any()).DoAndReturn(
		func(_ context.Context, in *ec2.DescribeInstanceTypesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
			if len(in.InstanceTypes) > 100 {
				t.Errorf("%d types in one call", len(in.InstanceTypes))
			}
			out := &ec2.DescribeInstanceTypesOutput{}
			for _, n := range in.InstanceTypes {
				described[string(n)]++
				out.InstanceTypes = append(out.InstanceTypes, typeInfo(string(n), types.ArchitectureTypeX8664, types.InstanceTypeHypervisorNitro,
					types.EnaSupportRequired, types.EbsNvmeSupportRequired, types.VirtualizationTypeHvm))
			}
			return out, nil
		}).Times(2)
	m.EXPECT().DescribeInstanceTypeOfferings(gomock.Any(), gomock.Any()).Return(&ec2.DescribeInstanceTypeOfferingsOutput{
		InstanceTypeOfferings: []types.InstanceTypeOffering{{InstanceType: "m7i.large", Location: aws.String("us-east-1a")}}}, nil).Times(1)
	z := lifecycle.NewResize(m, "m7i.large", mockOpts)
	for range 2 {
		refused, err := z.Check(t.Context(), ids)
		if err != nil || len(refused) != 0 {
			t.Fatalf("%v %v", refused, err)
		}
	}
	if len(described) != 131 {
		t.Fatalf("%d types described", len(described))
	}
	for n, c := range described {
		if c != 1 {
			t.Fatalf("%s described %d times", n, c)
		}
	}
}

// TestResizeUnknownTypeInBatch: InvalidInstanceType fails a whole
// DescribeInstanceTypes call; the batch is described one by one and only
// the unknown name is refused.
func TestResizeUnknownTypeInBatch(t *testing.T) {
	m := lifecyclemock.NewMockResizeClient(gomock.NewController(t))
	f := &fakeInstance{itype: "m5.large", state: types.InstanceStateNameRunning}
	expectResizeReads(t, m, f, "us-east-1a")
	refused, err := lifecycle.NewResize(m, "m5.gigantic", mockOpts).Check(t.Context(), []string{mockID})
	var ref *lifecycle.ResizeRefusal
	if err != nil || !errors.As(refused[mockID], &ref) || ref.Check != "unknown-type" {
		t.Fatalf("%v %v", refused, err)
	}
}
