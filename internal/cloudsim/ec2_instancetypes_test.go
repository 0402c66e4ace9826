package cloudsim

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// InstanceTypeAPI is the part of *ec2.Client the instance type model serves.
type instanceTypeAPI interface {
	DescribeInstanceTypes(ctx context.Context, params *ec2.DescribeInstanceTypesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error)
	DescribeInstanceTypeOfferings(ctx context.Context, params *ec2.DescribeInstanceTypeOfferingsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceTypeOfferingsOutput, error)
}

var (
	_ instanceTypeAPI = (*ec2.Client)(nil)
	_ instanceTypeAPI = (*EC2)(nil)
)

func TestInstanceTypeTableSorted(t *testing.T) {
	if !slices.IsSortedFunc(instanceTypeTable, func(a, b itypeSpec) int { return strings.Compare(a.name, b.name) }) {
		t.Fatal("instanceTypeTable must be sorted by name")
	}
	if len(instanceTypeTable) < 20 {
		t.Fatalf("table has %d types, want at least 20", len(instanceTypeTable))
	}
}

func TestDescribeInstanceTypes(t *testing.T) {
	s := New()
	c := s.EC2()
	ctx := context.Background()
	out, err := c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{
		InstanceTypes: []types.InstanceType{"m5.large", "i3.large", "m6g.large", "m5d.large", "mac1.metal", "t2.micro"},
	})
	mustOK(t, err)
	got := map[string]types.InstanceTypeInfo{}
	for _, it := range out.InstanceTypes {
		got[string(it.InstanceType)] = it
	}
	if len(got) != 6 {
		t.Fatalf("got %d types: %v", len(got), got)
	}
	cases := []struct {
		name      string
		recover   bool
		store     bool
		arch      types.ArchitectureType
		hyper     types.InstanceTypeHypervisor
		bareMetal bool
	}{
		{"m5.large", true, false, types.ArchitectureTypeX8664, types.InstanceTypeHypervisorNitro, false},
		{"i3.large", false, true, types.ArchitectureTypeX8664, types.InstanceTypeHypervisorXen, false},
		{"m6g.large", true, false, types.ArchitectureTypeArm64, types.InstanceTypeHypervisorNitro, false},
		{"m5d.large", false, true, types.ArchitectureTypeX8664, types.InstanceTypeHypervisorNitro, false},
		{"mac1.metal", false, false, types.ArchitectureTypeX8664Mac, "", true},
		{"t2.micro", true, false, types.ArchitectureTypeX8664, types.InstanceTypeHypervisorXen, false},
	}
	for _, tc := range cases {
		it := got[tc.name]
		if aws.ToBool(it.AutoRecoverySupported) != tc.recover || aws.ToBool(it.InstanceStorageSupported) != tc.store ||
			!slices.Contains(it.ProcessorInfo.SupportedArchitectures, tc.arch) || it.Hypervisor != tc.hyper ||
			aws.ToBool(it.BareMetal) != tc.bareMetal {
			t.Errorf("%s: recover=%v store=%v arch=%v hyper=%q metal=%v", tc.name, aws.ToBool(it.AutoRecoverySupported),
				aws.ToBool(it.InstanceStorageSupported), it.ProcessorInfo.SupportedArchitectures, it.Hypervisor, aws.ToBool(it.BareMetal))
		}
		if tc.store && (it.InstanceStorageInfo == nil || aws.ToInt64(it.InstanceStorageInfo.TotalSizeInGB) == 0) {
			t.Errorf("%s: no InstanceStorageInfo", tc.name)
		}
		if !slices.Contains(it.SupportedVirtualizationTypes, types.VirtualizationTypeHvm) || it.NetworkInfo == nil || it.EbsInfo == nil {
			t.Errorf("%s: incomplete info %+v", tc.name, it)
		}
	}
	if got["m5.large"].NetworkInfo.EnaSupport != types.EnaSupportRequired || got["m5.large"].EbsInfo.NvmeSupport != types.EbsNvmeSupportRequired {
		t.Errorf("m5.large ENA/NVMe: %+v %+v", got["m5.large"].NetworkInfo, got["m5.large"].EbsInfo)
	}

	// Unknown type, too many names, bad MaxResults, bad filter, DryRun.
	_, err = c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"m5.large", "zz9.huge"}})
	wantCode(t, err, "InvalidInstanceType")
	many := make([]types.InstanceType, 101)
	for i := range many {
		many[i] = "m5.large"
	}
	_, err = c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: many})
	wantCode(t, err, "InvalidParameterValue")
	_, err = c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(101)})
	wantCode(t, err, "InvalidParameterValue")
	_, err = c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{Filters: []types.Filter{{Name: aws.String("nope"), Values: []string{"x"}}}})
	wantCode(t, err, "InvalidParameterValue")
	_, err = c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{DryRun: aws.Bool(true)})
	wantCode(t, err, "DryRunOperation")
}

func TestDescribeInstanceTypesFiltersAndPages(t *testing.T) {
	s := New()
	c := s.EC2()
	ctx := context.Background()
	// Every page of 5 until done: all types, each once, in order.
	var names []string
	var tok *string
	pages := 0
	for {
		out, err := c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(5), NextToken: tok})
		mustOK(t, err)
		pages++
		for _, it := range out.InstanceTypes {
			names = append(names, string(it.InstanceType))
		}
		if tok = out.NextToken; tok == nil {
			break
		}
	}
	if !slices.Equal(names, InstanceTypes()) || pages != (len(names)+4)/5 {
		t.Fatalf("paged %d pages: %v", pages, names)
	}
	// The SDK paginator works on it too.
	p := ec2.NewDescribeInstanceTypesPaginator(c, &ec2.DescribeInstanceTypesInput{
		MaxResults: aws.Int32(5),
		Filters:    []types.Filter{{Name: aws.String("auto-recovery-supported"), Values: []string{"false"}}},
	})
	var noRecover []string
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		mustOK(t, err)
		for _, it := range out.InstanceTypes {
			noRecover = append(noRecover, string(it.InstanceType))
		}
	}
	want := []string{"c5d.large", "g4dn.xlarge", "i3.large", "m1.small", "m5d.large", "mac1.metal", "x2iedn.xlarge"}
	if !slices.Equal(noRecover, want) {
		t.Fatalf("auto-recovery-supported=false: %v, want %v", noRecover, want)
	}
	out, err := c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{Filters: []types.Filter{
		{Name: aws.String("processor-info.supported-architecture"), Values: []string{"arm64"}},
		{Name: aws.String("instance-type"), Values: []string{"*.large"}},
	}})
	mustOK(t, err)
	var arm []string
	for _, it := range out.InstanceTypes {
		arm = append(arm, string(it.InstanceType))
	}
	if !slices.Equal(arm, []string{"c6g.large", "c7g.large", "m6g.large", "m7g.large", "r6g.large"}) {
		t.Fatalf("arm64 *.large: %v", arm)
	}
	_, err = c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{NextToken: aws.String("garbage")})
	wantCode(t, err, "InvalidPaginationToken")
}

func TestDescribeInstanceTypeOfferings(t *testing.T) {
	s := New()
	c := s.EC2()
	ctx := context.Background()
	list := func(in *ec2.DescribeInstanceTypeOfferingsInput) []string {
		t.Helper()
		var out []string
		p := ec2.NewDescribeInstanceTypeOfferingsPaginator(c, in)
		for p.HasMorePages() {
			pg, err := p.NextPage(ctx)
			mustOK(t, err)
			for _, o := range pg.InstanceTypeOfferings {
				if o.LocationType != in.LocationType && !(in.LocationType == "" && o.LocationType == types.LocationTypeRegion) {
					t.Fatalf("location type %q in answer to %q", o.LocationType, in.LocationType)
				}
				out = append(out, aws.ToString(o.Location)+"/"+string(o.InstanceType))
			}
		}
		return out
	}
	az := types.LocationTypeAvailabilityZone
	got := list(&ec2.DescribeInstanceTypeOfferingsInput{LocationType: az, Filters: []types.Filter{
		{Name: aws.String("instance-type"), Values: []string{"mac1.metal", "m5.large", "x2iedn.xlarge"}},
	}})
	want := []string{"us-east-1a/m5.large", "us-east-1a/mac1.metal", "us-east-1a/x2iedn.xlarge",
		"us-east-1b/m5.large", "us-east-1b/x2iedn.xlarge", "us-east-1c/m5.large"}
	if !slices.Equal(got, want) {
		t.Fatalf("offerings:\n got %v\nwant %v", got, want)
	}
	got = list(&ec2.DescribeInstanceTypeOfferingsInput{LocationType: az, MaxResults: aws.Int32(5), Filters: []types.Filter{
		{Name: aws.String("location"), Values: []string{"us-east-1c"}},
	}})
	if len(got) == 0 || slices.Contains(got, "us-east-1c/mac1.metal") {
		t.Fatalf("us-east-1c offerings: %v", got)
	}
	if got := list(&ec2.DescribeInstanceTypeOfferingsInput{Filters: []types.Filter{{Name: aws.String("instance-type"), Values: []string{"m5.large"}}}}); !slices.Equal(got, []string{"us-east-1/m5.large"}) {
		t.Fatalf("region offering: %v", got)
	}
	if got := list(&ec2.DescribeInstanceTypeOfferingsInput{LocationType: types.LocationTypeAvailabilityZoneId,
		Filters: []types.Filter{{Name: aws.String("instance-type"), Values: []string{"mac1.metal"}}}}); !slices.Equal(got, []string{"use1-az1/mac1.metal"}) {
		t.Fatalf("zone ID offering: %v", got)
	}

	// Overrides: m5.large only in us-east-1b.
	s.SetOfferings("m5.large", "us-east-1b")
	if got := list(&ec2.DescribeInstanceTypeOfferingsInput{LocationType: az, Filters: []types.Filter{{Name: aws.String("instance-type"), Values: []string{"m5.large"}}}}); !slices.Equal(got, []string{"us-east-1b/m5.large"}) {
		t.Fatalf("after SetOfferings: %v", got)
	}
	_, err := c.DescribeInstanceTypeOfferings(ctx, &ec2.DescribeInstanceTypeOfferingsInput{LocationType: "outpost"})
	wantCode(t, err, "InvalidParameterValue")
	_, err = c.DescribeInstanceTypeOfferings(ctx, &ec2.DescribeInstanceTypeOfferingsInput{MaxResults: aws.Int32(2)})
	wantCode(t, err, "InvalidParameterValue")
	if n := s.Calls()["ec2:DescribeInstanceTypeOfferings"]; n == 0 {
		t.Fatal("calls not counted")
	}
}
