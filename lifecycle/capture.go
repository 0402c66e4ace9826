package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awserr"
)

// filterChunk is the most values one filter carries. Source: AWS-FACTS.md,
// DescribeInstances "at most 200 filter values a call" (the same limit
// holds for the other EC2 Describe calls with filters).
const filterChunk = 200

// Capture returns the spec of one instance: DescribeInstances,
// DescribeVolumes, DescribeAddresses, DescribeInstanceAttribute (userData),
// DescribeInstanceCreditSpecifications (T-family instance types only) and, for each of Options.TargetGroups, DescribeTargetHealth. An instance
// that cannot be cloned is captured all the same; Spec.Refusal says why.
func (c *Capturer) Capture(ctx context.Context, instanceID string) (*Spec, error) {
	if !strings.HasPrefix(instanceID, "i-") {
		return nil, ec2ops.InvalidInput("instanceID", instanceID, "not an instance ID", "use an ID of the form i-0123456789abcdef0")
	}
	specs, err := c.rt.captureIDs(ctx, []string{instanceID}, true)
	if err != nil {
		return nil, err
	}
	s := specs[instanceID]
	if s == nil {
		return nil, fmt.Errorf("capture %s: %w", instanceID, ec2ops.ErrNotFound)
	}
	return s, nil
}

// CaptureAll captures many instances with batched calls (one
// DescribeInstances, DescribeVolumes and DescribeAddresses call per 200
// instances, one DescribeInstanceCreditSpecifications call per 1000
// T-family instances, one DescribeTargetHealth per target group), plus one
// DescribeInstanceAttribute per instance for user data. Instances that do
// not exist are missing from the result.
func (c *Capturer) CaptureAll(ctx context.Context, instanceIDs []string) (map[string]*Spec, error) {
	return c.rt.captureIDs(ctx, instanceIDs, true)
}

// Capturer captures launch specs. Create it with NewCapturer.
type Capturer struct{ rt *runtime }

// NewCapturer returns a Capturer. Of the Options it uses ELB and
// TargetGroups (registrations), Limiter pacing and Logger.
func NewCapturer(client CaptureAPI, optFns ...func(*Options)) *Capturer {
	return &Capturer{rt: newRuntime(client, optFns)}
}

// captureIDs describes instances by ID through an instance-id filter
// (which, unlike InstanceIds, does not fail the call for one missing ID).
func (rt *runtime) captureIDs(ctx context.Context, ids []string, userData bool) (map[string]*Spec, error) {
	var ins []types.Instance
	for chunk := range slices.Chunk(ids, filterChunk) {
		got, err := rt.describe(ctx, []types.Filter{{Name: aws.String("instance-id"), Values: chunk}})
		if err != nil {
			return nil, err
		}
		ins = append(ins, got...)
	}
	return rt.captureInstances(ctx, ins, userData)
}

// describe lists the instances that match filters, every page.
func (rt *runtime) describe(ctx context.Context, filters []types.Filter) ([]types.Instance, error) {
	var out []types.Instance
	var token *string
	for {
		in := &ec2.DescribeInstancesInput{Filters: filters, NextToken: token, MaxResults: aws.Int32(1000)}
		var page *ec2.DescribeInstancesOutput
		err := rt.do(ctx, "DescribeInstances", 0, func(ctx context.Context) (err error) {
			page, err = rt.read.DescribeInstances(ctx, in)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("describe instances: %w", err)
		}
		for _, r := range page.Reservations {
			out = append(out, r.Instances...)
		}
		if token = page.NextToken; aws.ToString(token) == "" {
			return out, nil
		}
	}
}

// captureInstances turns described instances into specs, enriched with
// volumes, Elastic IPs, target registrations and (if userData) user data.
func (rt *runtime) captureInstances(ctx context.Context, ins []types.Instance, userData bool) (map[string]*Spec, error) {
	specs := make(map[string]*Spec, len(ins))
	var ids, volIDs []string
	for _, in := range ins {
		s := specFromInstance(in)
		specs[s.InstanceID] = s
		ids = append(ids, s.InstanceID)
		for _, b := range s.BlockDevices {
			volIDs = append(volIDs, b.VolumeID)
		}
	}
	if len(ids) == 0 {
		return specs, nil
	}
	if err := rt.captureVolumes(ctx, specs, volIDs); err != nil {
		return nil, err
	}
	if err := rt.captureAddresses(ctx, specs, ids); err != nil {
		return nil, err
	}
	if err := rt.captureCredits(ctx, specs, ids); err != nil {
		return nil, err
	}
	if err := rt.captureTargets(ctx, specs); err != nil {
		return nil, err
	}
	if userData {
		for _, id := range ids {
			if err := rt.captureUserData(ctx, specs[id]); err != nil {
				return nil, err
			}
		}
	}
	return specs, nil
}

func (rt *runtime) captureVolumes(ctx context.Context, specs map[string]*Spec, volIDs []string) error {
	vols := map[string]types.Volume{}
	for chunk := range slices.Chunk(volIDs, filterChunk) {
		var out *ec2.DescribeVolumesOutput
		err := rt.do(ctx, "DescribeVolumes", 0, func(ctx context.Context) (err error) {
			out, err = rt.read.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("volume-id"), Values: chunk}}})
			return err
		})
		if err != nil {
			return fmt.Errorf("describe volumes: %w", err)
		}
		for _, v := range out.Volumes {
			vols[aws.ToString(v.VolumeId)] = v
		}
	}
	for _, s := range specs {
		for i := range s.BlockDevices {
			b := &s.BlockDevices[i]
			v, ok := vols[b.VolumeID]
			if !ok {
				continue
			}
			b.VolumeType = string(v.VolumeType)
			b.SizeGiB = aws.ToInt32(v.Size)
			b.IOPS = aws.ToInt32(v.Iops)
			b.Throughput = aws.ToInt32(v.Throughput)
			b.Encrypted = aws.ToBool(v.Encrypted)
			b.KMSKeyID = aws.ToString(v.KmsKeyId)
		}
	}
	return nil
}

func (rt *runtime) captureAddresses(ctx context.Context, specs map[string]*Spec, ids []string) error {
	for chunk := range slices.Chunk(ids, filterChunk) {
		var out *ec2.DescribeAddressesOutput
		err := rt.do(ctx, "DescribeAddresses", 0, func(ctx context.Context) (err error) {
			out, err = rt.read.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: []types.Filter{{Name: aws.String("instance-id"), Values: chunk}}})
			return err
		})
		if err != nil {
			return fmt.Errorf("describe addresses: %w", err)
		}
		for _, a := range out.Addresses {
			if s := specs[aws.ToString(a.InstanceId)]; s != nil && aws.ToString(a.AllocationId) != "" {
				s.ElasticIP = &ElasticIP{AllocationID: aws.ToString(a.AllocationId), PublicIP: aws.ToString(a.PublicIp), AssociationID: aws.ToString(a.AssociationId)}
			}
		}
	}
	return nil
}

// maxCreditIDs is the most instance IDs one DescribeInstanceCreditSpecifications
// call takes. Source: DescribeInstanceCreditSpecifications API reference,
// InstanceIds: "Maximum 1000 explicitly specified instance IDs".
const maxCreditIDs = 1000

// burstable reports whether instanceType is a burstable performance type.
// It goes by name: the T family (t2, t3, t3a, t4g, ...), the only
// burstable performance instances (EC2 User Guide, "Burstable performance
// instances"), which saves a DescribeInstanceTypes call per capture.
func burstable(instanceType string) bool {
	family, _, _ := strings.Cut(instanceType, ".")
	return len(family) >= 2 && family[0] == 't' && family[1] >= '0' && family[1] <= '9'
}

// captureCredits reads the CPU credit option of the burstable instances
// among ids, up to maxCreditIDs per DescribeInstanceCreditSpecifications
// call; other instances make no call. Without it a replacement would get
// the AWS default (standard for T2, unlimited for T3, T3a and T4g) and
// silently change its billing.
func (rt *runtime) captureCredits(ctx context.Context, specs map[string]*Spec, ids []string) error {
	var want []string
	for _, id := range ids {
		if burstable(specs[id].InstanceType) {
			want = append(want, id)
		}
	}
	for chunk := range slices.Chunk(want, maxCreditIDs) {
		if err := rt.describeCredits(ctx, specs, chunk); err != nil {
			return err
		}
	}
	return nil
}

// describeCredits makes one call for ids. InstanceIds fails the whole call
// when one instance no longer exists: the chunk is then halved until the
// missing instance is alone, and left without a credit option.
func (rt *runtime) describeCredits(ctx context.Context, specs map[string]*Spec, ids []string) error {
	var out *ec2.DescribeInstanceCreditSpecificationsOutput
	err := rt.do(ctx, "DescribeInstanceCreditSpecifications", 0, func(ctx context.Context) (err error) {
		out, err = rt.read.DescribeInstanceCreditSpecifications(ctx, &ec2.DescribeInstanceCreditSpecificationsInput{InstanceIds: ids})
		return err
	})
	switch {
	case err == nil:
	case awserr.IsNotFound(err) && len(ids) > 1:
		half := len(ids) / 2
		if err := rt.describeCredits(ctx, specs, ids[:half]); err != nil {
			return err
		}
		return rt.describeCredits(ctx, specs, ids[half:])
	case awserr.IsNotFound(err):
		return nil
	default:
		return fmt.Errorf("describe credit specifications: %w", err)
	}
	for _, c := range out.InstanceCreditSpecifications {
		if s := specs[aws.ToString(c.InstanceId)]; s != nil {
			s.CreditSpecification = aws.ToString(c.CpuCredits)
		}
	}
	return nil
}

// captureTargets reads the registrations in the configured target groups:
// ELBv2 has no "which groups is this instance in" call, so the caller
// names the groups to look at.
func (rt *runtime) captureTargets(ctx context.Context, specs map[string]*Spec) error {
	if rt.elb == nil {
		return nil
	}
	for _, arn := range rt.opts.TargetGroups {
		var out *elb.DescribeTargetHealthOutput
		err := rt.do(ctx, "elb:DescribeTargetHealth", 0, func(ctx context.Context) (err error) {
			out, err = rt.elb.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
			return err
		})
		if err != nil {
			return fmt.Errorf("describe target health of %s: %w", arn, err)
		}
		for _, d := range out.TargetHealthDescriptions {
			if d.Target == nil || d.TargetHealth == nil {
				continue
			}
			switch d.TargetHealth.State {
			case elbtypes.TargetHealthStateEnumDraining, elbtypes.TargetHealthStateEnumUnused:
				continue
			}
			if s := specs[aws.ToString(d.Target.Id)]; s != nil {
				s.TargetGroups = append(s.TargetGroups, TargetRegistration{TargetGroupARN: arn, Port: aws.ToInt32(d.Target.Port)})
			}
		}
	}
	return nil
}

// captureUserData reads the user data. It goes into the spec only; it is
// never logged, put in an event or in an error.
func (rt *runtime) captureUserData(ctx context.Context, s *Spec) error {
	if s.userDataKnown {
		return nil
	}
	var out *ec2.DescribeInstanceAttributeOutput
	err := rt.do(ctx, "DescribeInstanceAttribute", 0, func(ctx context.Context) (err error) {
		out, err = rt.read.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
			InstanceId: aws.String(s.InstanceID), Attribute: types.InstanceAttributeNameUserData})
		return err
	})
	if err != nil {
		return fmt.Errorf("read user data of %s: %w", s.InstanceID, err)
	}
	if out.UserData != nil {
		s.UserData = UserData{b64: aws.ToString(out.UserData.Value)}
	}
	s.userDataKnown = true
	return nil
}

// specFromInstance maps DescribeInstances output to a Spec (volumes,
// addresses, registrations and user data are filled in later).
func specFromInstance(in types.Instance) *Spec {
	s := &Spec{
		InstanceID:     aws.ToString(in.InstanceId),
		ImageID:        aws.ToString(in.ImageId),
		InstanceType:   string(in.InstanceType),
		Architecture:   string(in.Architecture),
		SubnetID:       aws.ToString(in.SubnetId),
		KeyName:        aws.ToString(in.KeyName),
		EBSOptimized:   aws.ToBool(in.EbsOptimized),
		PrivateIP:      aws.ToString(in.PrivateIpAddress),
		RootDeviceType: string(in.RootDeviceType),
		Tags:           map[string]string{},
	}
	if in.State != nil {
		s.State = string(in.State.Name)
	}
	for _, g := range in.SecurityGroups {
		s.SecurityGroupIDs = append(s.SecurityGroupIDs, aws.ToString(g.GroupId))
	}
	slices.Sort(s.SecurityGroupIDs)
	if in.IamInstanceProfile != nil {
		s.IAMInstanceProfileARN = aws.ToString(in.IamInstanceProfile.Arn)
	}
	if p := in.Placement; p != nil {
		s.AvailabilityZone = aws.ToString(p.AvailabilityZone)
		s.Tenancy = string(p.Tenancy)
		if s.Tenancy == string(types.TenancyDefault) {
			s.Tenancy = ""
		}
		s.PlacementGroup = aws.ToString(p.GroupName)
		s.PartitionNumber = aws.ToInt32(p.PartitionNumber)
	}
	if m := in.Monitoring; m != nil {
		s.Monitoring = m.State == types.MonitoringStateEnabled || m.State == types.MonitoringStatePending
	}
	if m := in.MetadataOptions; m != nil {
		s.Metadata = Metadata{HTTPTokens: string(m.HttpTokens), HTTPEndpoint: string(m.HttpEndpoint),
			HopLimit: aws.ToInt32(m.HttpPutResponseHopLimit), InstanceTags: string(m.InstanceMetadataTags), IPv6: string(m.HttpProtocolIpv6)}
	}
	s.NetworkInterfaces = len(in.NetworkInterfaces)
	for _, ni := range in.NetworkInterfaces {
		if ni.Attachment != nil && aws.ToInt32(ni.Attachment.DeviceIndex) == 0 {
			s.SecondaryPrivateIPs = max(0, len(ni.PrivateIpAddresses)-1)
		}
	}
	var lt LaunchTemplateRef
	for _, t := range in.Tags {
		k, v := aws.ToString(t.Key), aws.ToString(t.Value)
		switch {
		case k == tagASG:
			s.AutoScalingGroup = v
		case k == "aws:ec2launchtemplate:id":
			lt.ID = v
		case k == "aws:ec2launchtemplate:version":
			lt.Version = v
		case k == TagReplaces:
			s.Replaces = v
		case k == TagRollout:
			s.Rollout = v
		case strings.HasPrefix(k, "aws:"), strings.HasPrefix(k, "ec2ops:"):
		default:
			s.Tags[k] = v
		}
	}
	if lt.ID != "" {
		s.LaunchTemplate = &lt
	}
	root := aws.ToString(in.RootDeviceName)
	for _, m := range in.BlockDeviceMappings {
		if m.Ebs == nil {
			continue
		}
		s.BlockDevices = append(s.BlockDevices, BlockDevice{
			DeviceName: aws.ToString(m.DeviceName), VolumeID: aws.ToString(m.Ebs.VolumeId),
			Root: aws.ToString(m.DeviceName) == root, DeleteOnTermination: aws.ToBool(m.Ebs.DeleteOnTermination),
		})
	}
	slices.SortFunc(s.BlockDevices, func(a, b BlockDevice) int {
		if a.Root != b.Root {
			if a.Root {
				return -1
			}
			return 1
		}
		return strings.Compare(a.DeviceName, b.DeviceName)
	})
	return s
}
