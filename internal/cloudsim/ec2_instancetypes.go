package cloudsim

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Limits of the instance type calls. Sources: DescribeInstanceTypes API
// reference (InstanceTypes: "The instance types", at most 100 names per the
// Query API's InstanceType.N list; MaxResults 5..100) and
// DescribeInstanceTypeOfferings (MaxResults 5..1000).
const (
	maxInstanceTypeNames  = 100
	maxInstanceTypesPage  = 100
	maxTypeOfferingsPage  = 1000
	codeInvalidInstanceTy = "InvalidInstanceType"
)

// itypeSpec is one row of the simulated instance type table. The values
// are those DescribeInstanceTypes returns in us-east-1 for these types
// (rounded where AWS reports many decimals); the table is a realistic
// sample, not the full catalogue.
type itypeSpec struct {
	name        string
	arch        []types.ArchitectureType
	vcpus       int32
	memMiB      int64
	hypervisor  types.InstanceTypeHypervisor // "" for bare metal
	ena         types.EnaSupport
	efa         bool
	nvme        types.EbsNvmeSupport
	storeGB     int64 // per disk; 0: EBS only
	storeDisks  int32
	storeType   types.DiskType
	autoRecover bool
	bareMetal   bool
	burstable   bool
	freeTier    bool
	dedicatedHS bool
	currentGen  bool
	virt        []types.VirtualizationType
	network     string
	// zones limits the offering to the first zones AZs of the Sim (0: all).
	zones int
}

var (
	x86   = []types.ArchitectureType{types.ArchitectureTypeX8664}
	x86_i = []types.ArchitectureType{types.ArchitectureTypeI386, types.ArchitectureTypeX8664}
	arm   = []types.ArchitectureType{types.ArchitectureTypeArm64}
	mac   = []types.ArchitectureType{types.ArchitectureTypeX8664Mac}
	hvm   = []types.VirtualizationType{types.VirtualizationTypeHvm}
	hvmPV = []types.VirtualizationType{types.VirtualizationTypeHvm, types.VirtualizationTypeParavirtual}
)

const (
	nitro = types.InstanceTypeHypervisorNitro
	xen   = types.InstanceTypeHypervisorXen
	enaR  = types.EnaSupportRequired
	enaS  = types.EnaSupportSupported
	enaU  = types.EnaSupportUnsupported
	nvmeR = types.EbsNvmeSupportRequired
	nvmeU = types.EbsNvmeSupportUnsupported
	ssd   = types.DiskTypeSsd
)

// instanceTypeTable is sorted by name (lookups binary-search it). AutoRecoverySupported follows AWS:
// false for every type with instance store volumes (i3, m5d, c5d, g4dn,
// x2iedn) and for Mac instances (Dedicated Hosts only).
var instanceTypeTable = []itypeSpec{
	{name: "c5.large", arch: x86, vcpus: 2, memMiB: 4096, hypervisor: nitro, ena: enaR, nvme: nvmeR, autoRecover: true, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 10 Gigabit"},
	{name: "c5.xlarge", arch: x86, vcpus: 4, memMiB: 8192, hypervisor: nitro, ena: enaR, nvme: nvmeR, autoRecover: true, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 10 Gigabit"},
	{name: "c5d.large", arch: x86, vcpus: 2, memMiB: 4096, hypervisor: nitro, ena: enaR, nvme: nvmeR, storeGB: 50, storeDisks: 1, storeType: ssd, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 10 Gigabit"},
	{name: "c5n.18xlarge", arch: x86, vcpus: 72, memMiB: 196608, hypervisor: nitro, ena: enaR, efa: true, nvme: nvmeR, autoRecover: true, dedicatedHS: true, currentGen: true, virt: hvm, network: "100 Gigabit"},
	{name: "c6g.large", arch: arm, vcpus: 2, memMiB: 4096, hypervisor: nitro, ena: enaR, nvme: nvmeR, autoRecover: true, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 10 Gigabit"},
	{name: "c7g.large", arch: arm, vcpus: 2, memMiB: 4096, hypervisor: nitro, ena: enaR, nvme: nvmeR, autoRecover: true, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 12.5 Gigabit"},
	{name: "g4dn.xlarge", arch: x86, vcpus: 4, memMiB: 16384, hypervisor: nitro, ena: enaR, nvme: nvmeR, storeGB: 125, storeDisks: 1, storeType: ssd, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 25 Gigabit", zones: 2},
	{name: "i3.large", arch: x86, vcpus: 2, memMiB: 15616, hypervisor: xen, ena: enaS, nvme: nvmeU, storeGB: 475, storeDisks: 1, storeType: ssd, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 10 Gigabit"},
	{name: "m1.small", arch: x86_i, vcpus: 1, memMiB: 1740, hypervisor: xen, ena: enaU, nvme: nvmeU, storeGB: 160, storeDisks: 1, storeType: types.DiskTypeHdd, virt: hvmPV, network: "Low"},
	{name: "m5.2xlarge", arch: x86, vcpus: 8, memMiB: 32768, hypervisor: nitro, ena: enaR, nvme: nvmeR, autoRecover: true, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 10 Gigabit"},
	{name: "m5.large", arch: x86, vcpus: 2, memMiB: 8192, hypervisor: nitro, ena: enaR, nvme: nvmeR, autoRecover: true, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 10 Gigabit"},
	{name: "m5.metal", arch: x86, vcpus: 96, memMiB: 393216, ena: enaR, nvme: nvmeR, autoRecover: true, bareMetal: true, dedicatedHS: true, currentGen: true, virt: hvm, network: "25 Gigabit"},
	{name: "m5.xlarge", arch: x86, vcpus: 4, memMiB: 16384, hypervisor: nitro, ena: enaR, nvme: nvmeR, autoRecover: true, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 10 Gigabit"},
	{name: "m5d.large", arch: x86, vcpus: 2, memMiB: 8192, hypervisor: nitro, ena: enaR, nvme: nvmeR, storeGB: 75, storeDisks: 1, storeType: ssd, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 10 Gigabit"},
	{name: "m6g.large", arch: arm, vcpus: 2, memMiB: 8192, hypervisor: nitro, ena: enaR, nvme: nvmeR, autoRecover: true, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 10 Gigabit"},
	{name: "m6i.large", arch: x86, vcpus: 2, memMiB: 8192, hypervisor: nitro, ena: enaR, nvme: nvmeR, autoRecover: true, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 12.5 Gigabit"},
	{name: "m7g.large", arch: arm, vcpus: 2, memMiB: 8192, hypervisor: nitro, ena: enaR, nvme: nvmeR, autoRecover: true, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 12.5 Gigabit"},
	{name: "mac1.metal", arch: mac, vcpus: 12, memMiB: 32768, ena: enaR, nvme: nvmeR, bareMetal: true, dedicatedHS: true, currentGen: true, virt: hvm, network: "25 Gigabit", zones: 1},
	{name: "p3.2xlarge", arch: x86, vcpus: 8, memMiB: 62464, hypervisor: xen, ena: enaR, nvme: nvmeU, autoRecover: true, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 10 Gigabit", zones: 2},
	{name: "r5.large", arch: x86, vcpus: 2, memMiB: 16384, hypervisor: nitro, ena: enaR, nvme: nvmeR, autoRecover: true, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 10 Gigabit"},
	{name: "r6g.large", arch: arm, vcpus: 2, memMiB: 16384, hypervisor: nitro, ena: enaR, nvme: nvmeR, autoRecover: true, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 10 Gigabit"},
	{name: "t2.micro", arch: x86_i, vcpus: 1, memMiB: 1024, hypervisor: xen, ena: enaU, nvme: nvmeU, autoRecover: true, burstable: true, freeTier: true, currentGen: true, virt: hvm, network: "Low to Moderate"},
	{name: "t3.medium", arch: x86, vcpus: 2, memMiB: 4096, hypervisor: nitro, ena: enaR, nvme: nvmeR, autoRecover: true, burstable: true, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 5 Gigabit"},
	{name: "t3.micro", arch: x86, vcpus: 2, memMiB: 1024, hypervisor: nitro, ena: enaR, nvme: nvmeR, autoRecover: true, burstable: true, freeTier: true, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 5 Gigabit"},
	{name: "t4g.micro", arch: arm, vcpus: 2, memMiB: 1024, hypervisor: nitro, ena: enaR, nvme: nvmeR, autoRecover: true, burstable: true, currentGen: true, virt: hvm, network: "Up to 5 Gigabit"},
	{name: "x2iedn.xlarge", arch: x86, vcpus: 4, memMiB: 131072, hypervisor: nitro, ena: enaR, nvme: nvmeR, storeGB: 118, storeDisks: 1, storeType: ssd, dedicatedHS: true, currentGen: true, virt: hvm, network: "Up to 25 Gigabit", zones: 2},
}

// instanceTypeState holds the per-Sim overrides of the type table (lock
// held). A nil map means the table's own offerings.
type instanceTypeState struct {
	offerings map[string][]string // instance type -> AZs where it is offered
}

func lookupInstanceType(name string) (itypeSpec, bool) {
	i, ok := slices.BinarySearchFunc(instanceTypeTable, name, func(s itypeSpec, n string) int { return strings.Compare(s.name, n) })
	if !ok {
		return itypeSpec{}, false
	}
	return instanceTypeTable[i], true
}

// InstanceTypes returns the names of the simulated instance types, sorted.
func InstanceTypes() []string {
	out := make([]string, len(instanceTypeTable))
	for i, t := range instanceTypeTable {
		out[i] = t.name
	}
	return out
}

// AutoRecoverySupported reports what DescribeInstanceTypes says of an
// instance type's AutoRecoverySupported, and whether the type is known.
func AutoRecoverySupported(instanceType string) (supported, known bool) {
	t, ok := lookupInstanceType(instanceType)
	return t.autoRecover, ok
}

// SetOfferings makes instanceType offered in exactly the given AZs (none:
// not offered anywhere in the Region), for tests of placement and resize
// decisions. Unknown types are ignored.
func (s *Sim) SetOfferings(instanceType string, azs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := lookupInstanceType(instanceType); !ok {
		return
	}
	if s.itypes.offerings == nil {
		s.itypes.offerings = map[string][]string{}
	}
	s.itypes.offerings[instanceType] = append([]string{}, azs...)
}

// offeredIn returns the AZs where t is offered (lock held).
func (s *Sim) offeredIn(t itypeSpec) []string {
	if azs, ok := s.itypes.offerings[t.name]; ok {
		return azs
	}
	if t.zones > 0 && t.zones < len(s.opts.AZs) {
		return s.opts.AZs[:t.zones]
	}
	return s.opts.AZs
}

// azID returns the zone ID of az, e.g. use1-az1 for us-east-1a: the
// Region's prefix, initials and digit, then the AZ's position (AWS maps names to
// IDs per account; a fixed mapping keeps the Sim deterministic).
func (s *Sim) azID(az string) string {
	var b strings.Builder
	for i, part := range strings.Split(s.opts.Region, "-") {
		switch {
		case part == "":
		case i == 0 || part[0] >= '0' && part[0] <= '9':
			b.WriteString(part) // "us", "1"
		default:
			b.WriteByte(part[0]) // "east" -> "e"
		}
	}
	return fmt.Sprintf("%s-az%d", b.String(), slices.Index(s.opts.AZs, az)+1)
}

func (t itypeSpec) sdk() types.InstanceTypeInfo {
	info := types.InstanceTypeInfo{
		InstanceType:                  types.InstanceType(t.name),
		AutoRecoverySupported:         ptr(t.autoRecover),
		BareMetal:                     ptr(t.bareMetal),
		BurstablePerformanceSupported: ptr(t.burstable),
		CurrentGeneration:             ptr(t.currentGen),
		DedicatedHostsSupported:       ptr(t.dedicatedHS),
		FreeTierEligible:              ptr(t.freeTier),
		HibernationSupported:          ptr(!t.bareMetal && t.storeGB == 0),
		Hypervisor:                    t.hypervisor,
		InstanceStorageSupported:      ptr(t.storeGB > 0),
		MemoryInfo:                    &types.MemoryInfo{SizeInMiB: ptr(t.memMiB)},
		ProcessorInfo:                 &types.ProcessorInfo{SupportedArchitectures: slices.Clone(t.arch)},
		SupportedInRegion:             ptr(true),
		SupportedRootDeviceTypes:      []types.RootDeviceType{types.RootDeviceTypeEbs},
		SupportedUsageClasses:         []types.UsageClassType{types.UsageClassTypeOnDemand, types.UsageClassTypeSpot},
		SupportedVirtualizationTypes:  slices.Clone(t.virt),
		VCpuInfo:                      &types.VCpuInfo{DefaultVCpus: ptr(t.vcpus)},
		EbsInfo: &types.EbsInfo{
			NvmeSupport:         t.nvme,
			EncryptionSupport:   types.EbsEncryptionSupportSupported,
			EbsOptimizedSupport: types.EbsOptimizedSupportDefault,
		},
		NetworkInfo: &types.NetworkInfo{
			EnaSupport:         t.ena,
			EfaSupported:       ptr(t.efa),
			Ipv6Supported:      ptr(true),
			NetworkPerformance: ptr(t.network),
		},
	}
	if t.efa {
		info.NetworkInfo.EfaInfo = &types.EfaInfo{MaximumEfaInterfaces: ptr(int32(1))}
	}
	if t.storeGB > 0 {
		nv := types.EphemeralNvmeSupportRequired
		if t.hypervisor == xen && t.name != "i3.large" {
			nv = types.EphemeralNvmeSupportUnsupported
		}
		info.InstanceStorageInfo = &types.InstanceStorageInfo{
			Disks:             []types.DiskInfo{{Count: ptr(t.storeDisks), SizeInGB: ptr(t.storeGB), Type: t.storeType}},
			NvmeSupport:       nv,
			EncryptionSupport: types.InstanceStorageEncryptionSupportRequired,
			TotalSizeInGB:     ptr(t.storeGB * int64(t.storeDisks)),
		}
		info.SupportedRootDeviceTypes = append(info.SupportedRootDeviceTypes, types.RootDeviceTypeInstanceStore)
	}
	return info
}

// instanceTypeFilterFields are the DescribeInstanceTypes filters supported.
func instanceTypeFilterFields() filterFields[itypeSpec] {
	one := func(f func(t itypeSpec) string) func(itypeSpec) []string {
		return func(t itypeSpec) []string {
			if v := f(t); v != "" {
				return []string{v}
			}
			return nil
		}
	}
	b := strconv.FormatBool
	return filterFields[itypeSpec]{fields: map[string]func(itypeSpec) []string{
		"instance-type":                   one(func(t itypeSpec) string { return t.name }),
		"auto-recovery-supported":         one(func(t itypeSpec) string { return b(t.autoRecover) }),
		"bare-metal":                      one(func(t itypeSpec) string { return b(t.bareMetal) }),
		"burstable-performance-supported": one(func(t itypeSpec) string { return b(t.burstable) }),
		"current-generation":              one(func(t itypeSpec) string { return b(t.currentGen) }),
		"dedicated-hosts-supported":       one(func(t itypeSpec) string { return b(t.dedicatedHS) }),
		"free-tier-eligible":              one(func(t itypeSpec) string { return b(t.freeTier) }),
		"hypervisor":                      one(func(t itypeSpec) string { return string(t.hypervisor) }),
		"instance-storage-supported":      one(func(t itypeSpec) string { return b(t.storeGB > 0) }),
		"network-info.ena-support":        one(func(t itypeSpec) string { return string(t.ena) }),
		"network-info.efa-supported":      one(func(t itypeSpec) string { return b(t.efa) }),
		"ebs-info.nvme-support":           one(func(t itypeSpec) string { return string(t.nvme) }),
		"vcpu-info.default-vcpus":         one(func(t itypeSpec) string { return strconv.Itoa(int(t.vcpus)) }),
		"memory-info.size-in-mib":         one(func(t itypeSpec) string { return strconv.FormatInt(t.memMiB, 10) }),
		"processor-info.supported-architecture": func(t itypeSpec) []string {
			out := make([]string, len(t.arch))
			for i, a := range t.arch {
				out[i] = string(a)
			}
			return out
		},
		"supported-virtualization-type": func(t itypeSpec) []string {
			out := make([]string, len(t.virt))
			for i, v := range t.virt {
				out[i] = string(v)
			}
			return out
		},
		"supported-root-device-type": func(t itypeSpec) []string {
			if t.storeGB > 0 {
				return []string{"ebs", "instance-store"}
			}
			return []string{"ebs"}
		},
	}}
}

// pageSizeRange validates MaxResults against [lo, hi]; nil means "up to hi".
func pageSizeRange(maxResults *int32, lo, hi int) (int, error) {
	if maxResults == nil {
		return hi, nil
	}
	n := int(*maxResults)
	if n < lo || n > hi {
		return 0, errInvalidValue("maxResults", n, fmt.Sprintf("Expecting a value between %d and %d.", lo, hi))
	}
	return n, nil
}

// DescribeInstanceTypes describes instance types from the simulated table:
// the named ones (at most 100; an unknown name is InvalidInstanceType) or
// all, filtered, sorted by name, paginated by MaxResults (5..100) and
// NextToken.
func (c *EC2) DescribeInstanceTypes(ctx context.Context, params *ec2.DescribeInstanceTypesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
	if params == nil {
		params = &ec2.DescribeInstanceTypesInput{}
	}
	s := c.sim
	var out *ec2.DescribeInstanceTypesOutput
	err := s.call(ctx, svcEC2, "DescribeInstanceTypes", nil, func(now time.Time) error {
		if len(params.InstanceTypes) > maxInstanceTypeNames {
			return errInvalidValue("InstanceType", len(params.InstanceTypes), fmt.Sprintf("At most %d instance types can be specified.", maxInstanceTypeNames))
		}
		var missing []string
		want := map[string]bool{}
		for _, n := range params.InstanceTypes {
			if _, ok := lookupInstanceType(string(n)); !ok {
				missing = append(missing, string(n))
			}
			want[string(n)] = true
		}
		if len(missing) > 0 {
			return apiError(codeInvalidInstanceTy, "The following supplied instance types do not exist: [%s]", strings.Join(missing, ", "))
		}
		fs, err := compileFilters(params.Filters, instanceTypeFilterFields())
		if err != nil {
			return err
		}
		limit, err := pageSizeRange(params.MaxResults, 5, maxInstanceTypesPage)
		if err != nil {
			return err
		}
		start, err := decodeToken(params.NextToken)
		if err != nil {
			return err
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		out = &ec2.DescribeInstanceTypesOutput{InstanceTypes: []types.InstanceTypeInfo{}}
		for i := int(start); i < len(instanceTypeTable); i++ {
			t := instanceTypeTable[i]
			if len(want) > 0 && !want[t.name] || !matchAll(fs, t) {
				continue
			}
			if len(out.InstanceTypes) == limit {
				out.NextToken = encodeToken(uint64(i))
				break
			}
			out.InstanceTypes = append(out.InstanceTypes, t.sdk())
		}
		return nil
	})
	return out, err
}

// offeringRow is one row of DescribeInstanceTypeOfferings.
type offeringRow struct{ itype, location string }

// DescribeInstanceTypeOfferings lists where instance types are offered:
// LocationType region (default), availability-zone or availability-zone-id;
// filters instance-type and location (with wildcards); sorted by location,
// then type; paginated by MaxResults (5..1000) and NextToken.
func (c *EC2) DescribeInstanceTypeOfferings(ctx context.Context, params *ec2.DescribeInstanceTypeOfferingsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceTypeOfferingsOutput, error) {
	if params == nil {
		params = &ec2.DescribeInstanceTypeOfferingsInput{}
	}
	s := c.sim
	var out *ec2.DescribeInstanceTypeOfferingsOutput
	err := s.call(ctx, svcEC2, "DescribeInstanceTypeOfferings", nil, func(now time.Time) error {
		lt := params.LocationType
		if lt == "" {
			lt = types.LocationTypeRegion
		}
		switch lt {
		case types.LocationTypeRegion, types.LocationTypeAvailabilityZone, types.LocationTypeAvailabilityZoneId:
		default:
			return errInvalidValue("LocationType", lt, "Expecting region, availability-zone or availability-zone-id.")
		}
		fs, err := compileFilters(params.Filters, filterFields[offeringRow]{fields: map[string]func(offeringRow) []string{
			"instance-type": func(r offeringRow) []string { return []string{r.itype} },
			"location":      func(r offeringRow) []string { return []string{r.location} },
		}})
		if err != nil {
			return err
		}
		limit, err := pageSizeRange(params.MaxResults, 5, maxTypeOfferingsPage)
		if err != nil {
			return err
		}
		start, err := decodeToken(params.NextToken)
		if err != nil {
			return err
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		var rows []offeringRow
		for _, t := range instanceTypeTable {
			azs := s.offeredIn(t)
			switch lt {
			case types.LocationTypeRegion:
				if len(azs) > 0 {
					rows = append(rows, offeringRow{t.name, s.opts.Region})
				}
			case types.LocationTypeAvailabilityZone:
				for _, az := range azs {
					rows = append(rows, offeringRow{t.name, az})
				}
			default:
				for _, az := range azs {
					rows = append(rows, offeringRow{t.name, s.azID(az)})
				}
			}
		}
		slices.SortFunc(rows, func(a, b offeringRow) int {
			if c := strings.Compare(a.location, b.location); c != 0 {
				return c
			}
			return strings.Compare(a.itype, b.itype)
		})
		out = &ec2.DescribeInstanceTypeOfferingsOutput{InstanceTypeOfferings: []types.InstanceTypeOffering{}}
		for i := int(start); i < len(rows); i++ {
			r := rows[i]
			if !matchAll(fs, r) {
				continue
			}
			if len(out.InstanceTypeOfferings) == limit {
				out.NextToken = encodeToken(uint64(i))
				break
			}
			out.InstanceTypeOfferings = append(out.InstanceTypeOfferings, types.InstanceTypeOffering{
				InstanceType: types.InstanceType(r.itype), Location: ptr(r.location), LocationType: lt,
			})
		}
		return nil
	})
	return out, err
}
