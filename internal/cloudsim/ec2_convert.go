package cloudsim

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// armFamily matches Graviton instance families (m6g, c7gn, t4g, ...).
var armFamily = regexp.MustCompile(`^[a-z]+[0-9]+g`)

// sdkInstance describes in as DescribeInstances does. Everything returned
// is freshly allocated: callers may modify it.
func (s *Sim) sdkInstance(in *instance) types.Instance {
	spec := in.spec
	out := types.Instance{
		AmiLaunchIndex:           ptr(in.launchIndex),
		Architecture:             architecture(in.itype),
		ClientToken:              ptr(in.res.token),
		EbsOptimized:             ptr(aws.ToBool(spec.EbsOptimized)),
		EnaSupport:               ptr(true),
		Hypervisor:               types.HypervisorTypeXen,
		ImageId:                  ptr(in.imageID),
		InstanceId:               ptr(in.id),
		InstanceType:             types.InstanceType(in.itype),
		KeyName:                  spec.KeyName,
		LaunchTime:               ptr(in.launchTime),
		MaintenanceOptions:       s.maintenanceOptions(in), // ec2_maintenance.go
		MetadataOptions:          metadataOptions(spec.MetadataOptions),
		Monitoring:               &types.Monitoring{State: types.MonitoringStateDisabled},
		Placement:                s.sdkPlacement(in),
		PlatformDetails:          ptr("Linux/UNIX"),
		PrivateDnsName:           ptr(""),
		RootDeviceName:           ptr(rootDevice),
		RootDeviceType:           types.DeviceTypeEbs,
		SecurityGroups:           slices.Clone(in.sgs),
		SourceDestCheck:          ptr(true),
		State:                    sdkState(in.state),
		StateTransitionReason:    ptr(in.transitionReason),
		SubnetId:                 ptr(in.subnet.id),
		UsageOperation:           ptr("RunInstances"),
		UsageOperationUpdateTime: ptr(in.created),
		VirtualizationType:       types.VirtualizationTypeHvm,
		VpcId:                    ptr(s.ec2.vpcID),
		Tags:                     sdkTags(in.allTags()),
		BlockDeviceMappings:      sdkBlockDevices(in),
	}
	if in.stateReason != nil {
		out.StateReason = &types.StateReason{Code: in.stateReason.Code, Message: in.stateReason.Message}
	}
	if m := spec.Monitoring; m != nil && aws.ToBool(m.Enabled) {
		out.Monitoring.State = types.MonitoringStateEnabled
	}
	if arn := profileARN(spec); arn != "" {
		out.IamInstanceProfile = &types.IamInstanceProfile{Arn: &arn,
			Id: ptr(fmt.Sprintf("AIPA%016X", mix64(hashString(arn))))}
	}
	if in.ip != 0 {
		ip := ipString(in.ip)
		out.PrivateIpAddress = &ip
		out.PrivateDnsName = ptr(s.privateDNS(ip))
	}
	if out.InstanceLifecycle = lifecycle(spec); out.InstanceLifecycle == types.InstanceLifecycleTypeSpot {
		out.SpotInstanceRequestId = ptr(fmt.Sprintf("sir-%08x", uint32(mix64(hashString(in.id)))))
	}
	if in.state == types.InstanceStateNameTerminated {
		out.PrivateIpAddress, out.PrivateDnsName, out.SubnetId, out.VpcId = nil, ptr(""), nil, nil
		out.BlockDeviceMappings = []types.InstanceBlockDeviceMapping{}
		out.SecurityGroups = []types.GroupIdentifier{}
	}
	return out
}

// architecture guesses the CPU architecture from the instance family.
func architecture(itype string) types.ArchitectureValues {
	if armFamily.MatchString(itype) {
		return types.ArchitectureValuesArm64
	}
	return types.ArchitectureValuesX8664
}

// lifecycle is "spot" for spot instances and "" for on-demand ones.
func lifecycle(spec *ec2.RunInstancesInput) types.InstanceLifecycleType {
	if m := spec.InstanceMarketOptions; m != nil && m.MarketType == types.MarketTypeSpot {
		return types.InstanceLifecycleTypeSpot
	}
	return ""
}

// profileARN is the ARN of the instance profile of the launch request.
func profileARN(spec *ec2.RunInstancesInput) string {
	p := spec.IamInstanceProfile
	if p == nil {
		return ""
	}
	if arn := aws.ToString(p.Arn); arn != "" {
		return arn
	}
	return fmt.Sprintf("arn:aws:iam::%s:instance-profile/%s", accountID, aws.ToString(p.Name))
}

func (s *Sim) sdkPlacement(in *instance) *types.Placement {
	p := &types.Placement{AvailabilityZone: ptr(in.subnet.az), Tenancy: types.TenancyDefault, GroupName: ptr("")}
	if sp := in.spec.Placement; sp != nil {
		if sp.Tenancy != "" {
			p.Tenancy = sp.Tenancy
		}
		if sp.GroupName != nil {
			p.GroupName = ptr(*sp.GroupName)
		}
		if sp.PartitionNumber != nil {
			p.PartitionNumber = ptr(*sp.PartitionNumber)
		}
		if sp.HostId != nil {
			p.HostId = ptr(*sp.HostId)
		}
	}
	return p
}

func (s *Sim) privateDNS(ip string) string {
	name := "ip-" + strings.ReplaceAll(ip, ".", "-")
	if s.opts.Region == "us-east-1" {
		return name + ".ec2.internal"
	}
	return name + "." + s.opts.Region + ".compute.internal"
}

// metadataOptions applies the defaults AWS uses for AMIs that do not set
// their own (everything but AL2023): IMDSv1 and v2 both allowed
// ("optional"), endpoint enabled, hop limit 1.
func metadataOptions(req *types.InstanceMetadataOptionsRequest) *types.InstanceMetadataOptionsResponse {
	m := &types.InstanceMetadataOptionsResponse{
		HttpEndpoint:            types.InstanceMetadataEndpointStateEnabled,
		HttpProtocolIpv6:        types.InstanceMetadataProtocolStateDisabled,
		HttpPutResponseHopLimit: ptr(int32(1)),
		HttpTokens:              types.HttpTokensStateOptional,
		InstanceMetadataTags:    types.InstanceMetadataTagsStateDisabled,
		State:                   types.InstanceMetadataOptionsStateApplied,
	}
	if req == nil {
		return m
	}
	if req.HttpEndpoint != "" {
		m.HttpEndpoint = req.HttpEndpoint
	}
	if req.HttpProtocolIpv6 != "" {
		m.HttpProtocolIpv6 = req.HttpProtocolIpv6
	}
	if req.HttpPutResponseHopLimit != nil {
		m.HttpPutResponseHopLimit = ptr(*req.HttpPutResponseHopLimit)
	}
	if req.HttpTokens != "" {
		m.HttpTokens = req.HttpTokens
	}
	if req.InstanceMetadataTags != "" {
		m.InstanceMetadataTags = req.InstanceMetadataTags
	}
	return m
}

func sdkBlockDevices(in *instance) []types.InstanceBlockDeviceMapping {
	out := make([]types.InstanceBlockDeviceMapping, 0, len(in.volumes))
	for _, v := range in.volumes {
		out = append(out, types.InstanceBlockDeviceMapping{
			DeviceName: ptr(v.device),
			Ebs: &types.EbsInstanceBlockDevice{
				AttachTime:          ptr(in.created),
				DeleteOnTermination: ptr(v.deleteOnTermination),
				Status:              types.AttachmentStatusAttached,
				VolumeId:            ptr(v.id),
			},
		})
	}
	return out
}

// sdkTags returns tags sorted by key (AWS does not promise an order; a
// stable one keeps tests and traces deterministic).
func sdkTags(m map[string]string) []types.Tag {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]types.Tag, len(keys))
	for i, k := range keys {
		out[i] = types.Tag{Key: ptr(k), Value: ptr(m[k])}
	}
	return out
}

// sdkStatus describes in as DescribeInstanceStatus does.
func sdkStatus(in *instance) types.InstanceStatus {
	sum := func(c check) *types.InstanceStatusSummary {
		st := &types.InstanceStatusSummary{Status: c.summary()}
		if c != checkNA {
			d := types.InstanceStatusDetails{Name: types.StatusNameReachability, Status: c.detail()}
			if c == checkFailed {
				d.ImpairedSince = ptr(in.impairedSince)
			}
			st.Details = []types.InstanceStatusDetails{d}
		}
		return st
	}
	return types.InstanceStatus{
		AvailabilityZone: ptr(in.subnet.az),
		InstanceId:       ptr(in.id),
		InstanceState:    sdkState(in.state),
		InstanceStatus:   sum(in.instCheck),
		SystemStatus:     sum(in.sysCheck),
	}
}
