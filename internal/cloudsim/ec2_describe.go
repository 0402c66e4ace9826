package cloudsim

import (
	"cmp"
	"context"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// maxStatusIDs is the most instance IDs DescribeInstanceStatus accepts.
// Source: DescribeInstanceStatus API reference, InstanceIds: "Maximum 100
// explicitly specified instance IDs".
const maxStatusIDs = 100

// DescribeInstances describes instances by ID (every ID must exist) or all
// visible ones, filtered, grouped into their reservations, in launch order,
// paginated by MaxResults (5..1000, not with InstanceIds) and NextToken.
func (c *EC2) DescribeInstances(ctx context.Context, params *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	if params == nil {
		params = &ec2.DescribeInstancesInput{}
	}
	s := c.sim
	var out *ec2.DescribeInstancesOutput
	err := s.call(ctx, svcEC2, "DescribeInstances", nil, func(now time.Time) error {
		fs, err := compileFilters(params.Filters, s.ec2.fields)
		if err != nil {
			return err
		}
		page, next, err := s.selectInstances(now, params.InstanceIds, params.MaxResults, params.NextToken, false,
			func(in *instance) bool { return matchAll(fs, in) })
		if err != nil {
			return err
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		out = &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{}, NextToken: next}
		for _, in := range page {
			if n := len(out.Reservations); n > 0 && aws.ToString(out.Reservations[n-1].ReservationId) == in.res.id {
				out.Reservations[n-1].Instances = append(out.Reservations[n-1].Instances, s.sdkInstance(in))
				continue
			}
			out.Reservations = append(out.Reservations, types.Reservation{
				Groups:        []types.GroupIdentifier{},
				Instances:     []types.Instance{s.sdkInstance(in)},
				OwnerId:       ptr(accountID),
				ReservationId: ptr(in.res.id),
			})
		}
		return nil
	})
	return out, err
}

// selectInstances picks the instances of one page of a Describe call:
// explicit ids (all must exist; no pagination) or every visible instance
// from the NextToken position on, in launch order, that keep accepts, at
// most MaxResults of them. It returns the token of the next page, if any.
func (s *Sim) selectInstances(now time.Time, ids []string, maxResults *int32, token *string, maxIDs100 bool,
	keep func(*instance) bool) ([]*instance, *string, error) {
	if maxIDs100 && len(ids) > maxStatusIDs {
		return nil, nil, errInvalidValue("InstanceId", len(ids), "The maximum number of instance IDs that can be specified is 100.")
	}
	limit, err := pageSize(maxResults, len(ids) > 0)
	if err != nil {
		return nil, nil, err
	}
	start, err := decodeToken(token)
	if err != nil {
		return nil, nil, err
	}
	if len(ids) > 0 {
		ins, err := s.lookupInstances(now, ids)
		if err != nil {
			return nil, nil, err
		}
		slices.SortFunc(ins, func(a, b *instance) int { return cmp.Compare(a.seq, b.seq) })
		out := ins[:0]
		for _, in := range ins {
			if keep(in) {
				out = append(out, in)
			}
		}
		return out, nil, nil
	}
	order := s.ec2.order
	i := sort.Search(len(order), func(i int) bool { return order[i].seq >= start })
	var page []*instance
	for ; i < len(order); i++ {
		in := order[i]
		if !s.visible(in, now) || !keep(in) {
			continue
		}
		if limit > 0 && len(page) == limit {
			return page, encodeToken(in.seq), nil
		}
		page = append(page, in)
	}
	return page, nil, nil
}

// instanceFilterFields are the DescribeInstances filters the simulator
// supports (a subset of the API reference's list); any other name is
// refused, so that a test never silently gets unfiltered results.
func (s *Sim) instanceFilterFields() filterFields[*instance] {
	one := func(f func(in *instance) string) func(*instance) []string {
		return func(in *instance) []string {
			if v := f(in); v != "" {
				return []string{v}
			}
			return nil
		}
	}
	attached := func(f func(in *instance) string) func(*instance) []string {
		return one(func(in *instance) string {
			if in.state == types.InstanceStateNameTerminated {
				return ""
			}
			return f(in)
		})
	}
	meta := func(in *instance) *types.InstanceMetadataOptionsResponse {
		return metadataOptions(in.spec.MetadataOptions)
	}
	return filterFields[*instance]{
		tags: func(in *instance) map[string]string { return in.allTags() },
		fields: map[string]func(*instance) []string{
			"instance-id":         one(func(in *instance) string { return in.id }),
			"instance-state-name": one(func(in *instance) string { return string(in.state) }),
			"instance-state-code": one(func(in *instance) string { return strconv.Itoa(int(stateCodes[in.state])) }),
			"image-id":            one(func(in *instance) string { return in.imageID }),
			"instance-type":       one(func(in *instance) string { return in.itype }),
			"availability-zone":   one(func(in *instance) string { return in.subnet.az }),
			"subnet-id":           attached(func(in *instance) string { return in.subnet.id }),
			"vpc-id":              attached(func(in *instance) string { return s.ec2.vpcID }),
			"private-ip-address": attached(func(in *instance) string {
				if in.ip == 0 {
					return ""
				}
				return ipString(in.ip)
			}),
			"reservation-id":           one(func(in *instance) string { return in.res.id }),
			"client-token":             one(func(in *instance) string { return in.res.token }),
			"key-name":                 one(func(in *instance) string { return aws.ToString(in.spec.KeyName) }),
			"ami-launch-index":         one(func(in *instance) string { return strconv.Itoa(int(in.launchIndex)) }),
			"launch-time":              one(func(in *instance) string { return in.launchTime.UTC().Format("2006-01-02T15:04:05.000Z") }),
			"root-device-type":         one(func(in *instance) string { return string(types.DeviceTypeEbs) }),
			"root-device-name":         one(func(in *instance) string { return rootDevice }),
			"tenancy":                  one(func(in *instance) string { return string(s.sdkPlacement(in).Tenancy) }),
			"architecture":             one(func(in *instance) string { return string(architecture(in.itype)) }),
			"instance-lifecycle":       one(func(in *instance) string { return string(lifecycle(in.spec)) }),
			"iam-instance-profile.arn": one(func(in *instance) string { return profileARN(in.spec) }),
			"instance.group-id": func(in *instance) []string {
				var out []string
				for _, g := range in.sgs {
					out = append(out, aws.ToString(g.GroupId))
				}
				return out
			},
			"block-device-mapping.volume-id": func(in *instance) []string {
				var out []string
				for _, v := range in.volumes {
					out = append(out, v.id)
				}
				return out
			},
			"metadata-options.http-tokens":   one(func(in *instance) string { return string(meta(in).HttpTokens) }),
			"metadata-options.http-endpoint": one(func(in *instance) string { return string(meta(in).HttpEndpoint) }),
			"metadata-options.http-put-response-hop-limit": one(func(in *instance) string {
				return strconv.Itoa(int(aws.ToInt32(meta(in).HttpPutResponseHopLimit)))
			}),
		},
	}
}

// statusFilterFields are the DescribeInstanceStatus filters supported.
func (s *Sim) statusFilterFields() filterFields[*instance] {
	one := func(f func(in *instance) string) func(*instance) []string {
		return func(in *instance) []string {
			if v := f(in); v != "" {
				return []string{v}
			}
			return nil
		}
	}
	return filterFields[*instance]{fields: map[string]func(*instance) []string{
		"instance-state-name":          one(func(in *instance) string { return string(in.state) }),
		"instance-state-code":          one(func(in *instance) string { return strconv.Itoa(int(stateCodes[in.state])) }),
		"availability-zone":            one(func(in *instance) string { return in.subnet.az }),
		"instance-status.status":       one(func(in *instance) string { return string(in.instCheck.summary()) }),
		"system-status.status":         one(func(in *instance) string { return string(in.sysCheck.summary()) }),
		"instance-status.reachability": one(func(in *instance) string { return string(in.instCheck.detail()) }),
		"system-status.reachability":   one(func(in *instance) string { return string(in.sysCheck.detail()) }),
	}}
}

// DescribeInstanceStatus describes status checks: running instances only
// unless IncludeAllInstances; at most 100 InstanceIds (all must exist); or
// paginated by MaxResults/NextToken without IDs.
func (c *EC2) DescribeInstanceStatus(ctx context.Context, params *ec2.DescribeInstanceStatusInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error) {
	if params == nil {
		params = &ec2.DescribeInstanceStatusInput{}
	}
	s := c.sim
	var out *ec2.DescribeInstanceStatusOutput
	err := s.call(ctx, svcEC2, "DescribeInstanceStatus", nil, func(now time.Time) error {
		fs, err := compileFilters(params.Filters, s.ec2.statusF)
		if err != nil {
			return err
		}
		all := aws.ToBool(params.IncludeAllInstances)
		page, next, err := s.selectInstances(now, params.InstanceIds, params.MaxResults, params.NextToken, true,
			func(in *instance) bool {
				return (all || in.state == types.InstanceStateNameRunning) && matchAll(fs, in)
			})
		if err != nil {
			return err
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		out = &ec2.DescribeInstanceStatusOutput{InstanceStatuses: make([]types.InstanceStatus, 0, len(page)), NextToken: next}
		for _, in := range page {
			out.InstanceStatuses = append(out.InstanceStatuses, sdkStatus(in))
		}
		return nil
	})
	return out, err
}

// DescribeInstanceAttribute returns one attribute of an instance.
func (c *EC2) DescribeInstanceAttribute(ctx context.Context, params *ec2.DescribeInstanceAttributeInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error) {
	if params == nil {
		params = &ec2.DescribeInstanceAttributeInput{}
	}
	s := c.sim
	var out *ec2.DescribeInstanceAttributeOutput
	err := s.call(ctx, svcEC2, "DescribeInstanceAttribute", nil, func(now time.Time) error {
		id := aws.ToString(params.InstanceId)
		if id == "" {
			return errMissing("InstanceId")
		}
		if params.Attribute == "" {
			return errMissing("Attribute")
		}
		ins, err := s.lookupInstances(now, []string{id})
		if err != nil {
			return err
		}
		in := ins[0]
		spec := in.spec
		o := &ec2.DescribeInstanceAttributeOutput{InstanceId: ptr(id)}
		boolAttr := func(b *bool) *types.AttributeBooleanValue {
			return &types.AttributeBooleanValue{Value: ptr(aws.ToBool(b))}
		}
		switch params.Attribute {
		case types.InstanceAttributeNameInstanceType:
			o.InstanceType = &types.AttributeValue{Value: ptr(in.itype)}
		case types.InstanceAttributeNameUserData:
			o.UserData = &types.AttributeValue{}
			if spec.UserData != nil {
				o.UserData.Value = ptr(*spec.UserData)
			}
		case types.InstanceAttributeNameDisableApiTermination:
			o.DisableApiTermination = boolAttr(spec.DisableApiTermination)
		case types.InstanceAttributeNameDisableApiStop:
			o.DisableApiStop = boolAttr(spec.DisableApiStop)
		case types.InstanceAttributeNameInstanceInitiatedShutdownBehavior:
			b := spec.InstanceInitiatedShutdownBehavior
			if b == "" {
				b = types.ShutdownBehaviorStop
			}
			o.InstanceInitiatedShutdownBehavior = &types.AttributeValue{Value: ptr(string(b))}
		case types.InstanceAttributeNameRootDeviceName:
			o.RootDeviceName = &types.AttributeValue{Value: ptr(rootDevice)}
		case types.InstanceAttributeNameBlockDeviceMapping:
			o.BlockDeviceMappings = sdkBlockDevices(in)
		case types.InstanceAttributeNameEbsOptimized:
			o.EbsOptimized = boolAttr(spec.EbsOptimized)
		case types.InstanceAttributeNameGroupSet:
			o.Groups = slices.Clone(in.sgs)
		case types.InstanceAttributeNameSourceDestCheck:
			o.SourceDestCheck = boolAttr(ptr(true))
		case types.InstanceAttributeNameEnaSupport:
			o.EnaSupport = boolAttr(ptr(true))
		case types.InstanceAttributeNameKernel:
			o.KernelId = &types.AttributeValue{Value: spec.KernelId}
		case types.InstanceAttributeNameRamdisk:
			o.RamdiskId = &types.AttributeValue{Value: spec.RamdiskId}
		case types.InstanceAttributeNameProductCodes:
			o.ProductCodes = []types.ProductCode{}
		default:
			return errInvalidValue("attribute", params.Attribute, "Unknown attribute.")
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		out = o
		return nil
	})
	return out, err
}
