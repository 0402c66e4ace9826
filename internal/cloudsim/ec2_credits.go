package cloudsim

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Credit options of burstable performance instances. Sources:
// DescribeInstanceCreditSpecifications API reference (InstanceIds "Maximum
// 1000 explicitly specified instance IDs"; "If you specify an instance ID
// that is not a burstable performance instance, Amazon EC2 returns the
// standard credit option"; without instance IDs it returns the instances
// with the unlimited credit option) and the EC2 User Guide, "Burstable
// performance instances" (default credit option: standard for T2,
// unlimited for T3, T3a and T4g).
const (
	maxCreditIDs     = 1000
	creditsStandard  = "standard"
	creditsUnlimited = "unlimited"
)

// DescribeInstanceCreditSpecifications returns the CPU credit option of
// instances: the CreditSpecification.CpuCredits of their RunInstances
// request, else the family's default (standard for t2, unlimited for the
// other burstable families), and standard for types that are not
// burstable. With InstanceIds (at most 1000, every one must exist, no
// MaxResults) it returns each of them; without, every visible instance
// whose option is unlimited, paginated (MaxResults 5..1000, NextToken).
// The only filter is instance-id. ModifyInstanceCreditSpecification is not
// modelled: an instance's option is the one it was launched with.
func (c *EC2) DescribeInstanceCreditSpecifications(ctx context.Context, params *ec2.DescribeInstanceCreditSpecificationsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceCreditSpecificationsOutput, error) {
	if params == nil {
		params = &ec2.DescribeInstanceCreditSpecificationsInput{}
	}
	s := c.sim
	var out *ec2.DescribeInstanceCreditSpecificationsOutput
	err := s.call(ctx, svcEC2, "DescribeInstanceCreditSpecifications", nil, func(now time.Time) error {
		if n := len(params.InstanceIds); n > maxCreditIDs {
			return errInvalidValue("InstanceId", n, "The maximum number of instance IDs that can be specified is 1000.")
		}
		for _, f := range params.Filters {
			if aws.ToString(f.Name) != "instance-id" {
				return errInvalidValue("filter", aws.ToString(f.Name), "The filter is invalid.")
			}
		}
		fs, err := compileFilters(params.Filters, s.ec2.fields)
		if err != nil {
			return err
		}
		byID := len(params.InstanceIds) > 0
		page, next, err := s.selectInstances(now, params.InstanceIds, params.MaxResults, params.NextToken, false,
			func(in *instance) bool {
				return matchAll(fs, in) && (byID || cpuCredits(in) == creditsUnlimited)
			})
		if err != nil {
			return err
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		out = &ec2.DescribeInstanceCreditSpecificationsOutput{InstanceCreditSpecifications: []types.InstanceCreditSpecification{}, NextToken: next}
		for _, in := range page {
			out.InstanceCreditSpecifications = append(out.InstanceCreditSpecifications,
				types.InstanceCreditSpecification{InstanceId: ptr(in.id), CpuCredits: ptr(cpuCredits(in))})
		}
		return nil
	})
	return out, err
}

// cpuCredits is in's credit option (see DescribeInstanceCreditSpecifications).
func cpuCredits(in *instance) string {
	if cs := in.spec.CreditSpecification; cs != nil && aws.ToString(cs.CpuCredits) != "" {
		return strings.ToLower(aws.ToString(cs.CpuCredits))
	}
	if !burstable(in.itype) {
		return creditsStandard
	}
	if strings.HasPrefix(in.itype, "t2.") {
		return creditsStandard
	}
	return creditsUnlimited
}

// burstable reports whether instanceType is a burstable performance type:
// the type table's BurstablePerformanceSupported, else (a type the table
// does not list) the T family by name (t2, t3, t3a, t4g, ...).
func burstable(instanceType string) bool {
	if t, ok := lookupInstanceType(instanceType); ok {
		return t.burstable
	}
	family, _, _ := strings.Cut(instanceType, ".")
	return len(family) >= 2 && family[0] == 't' && family[1] >= '0' && family[1] <= '9'
}
