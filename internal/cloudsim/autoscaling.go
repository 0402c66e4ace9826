package cloudsim

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

// The Auto Scaling model is read-only: a test registers groups and launch
// configurations with AddAutoScalingGroup and AddLaunchConfiguration, and
// DescribeAutoScalingGroups and DescribeLaunchConfigurations list them, so
// that the library can see which images groups reference (through a
// launch configuration, a launch template, or a mixed instances policy's
// launch template and overrides). Groups launch no instances.

// Limits. Source: DescribeAutoScalingGroups and
// DescribeLaunchConfigurations API references (MaxRecords default 50,
// maximum 100).
const (
	asgDefaultPage = 50
	asgMaxPage     = 100
	codeValidation = "ValidationError"
)

type autoScalingState struct {
	groups  []*astypes.AutoScalingGroup
	configs []*astypes.LaunchConfiguration
}

func (s *Sim) initAutoScaling() {}

func cloneJSON[T any](v *T) *T {
	out := new(T)
	if b, err := json.Marshal(v); err == nil {
		_ = json.Unmarshal(b, out) // SDK shapes round-trip through JSON
	}
	return out
}

// AddAutoScalingGroup registers (or replaces, by name) an Auto Scaling
// group as DescribeAutoScalingGroups will return it. It is a test helper,
// not an API call. The group needs AutoScalingGroupName.
func (s *Sim) AddAutoScalingGroup(g astypes.AutoScalingGroup) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.advance()
	c := cloneJSON(&g)
	if c.CreatedTime == nil {
		c.CreatedTime = ptr(now)
	}
	if c.AutoScalingGroupARN == nil {
		c.AutoScalingGroupARN = ptr("arn:aws:autoscaling:" + s.opts.Region + ":" + accountID + ":autoScalingGroup:" + aws.ToString(c.AutoScalingGroupName))
	}
	st := &s.img.asg
	if i := slices.IndexFunc(st.groups, func(x *astypes.AutoScalingGroup) bool {
		return aws.ToString(x.AutoScalingGroupName) == aws.ToString(g.AutoScalingGroupName)
	}); i >= 0 {
		st.groups[i] = c
		return
	}
	st.groups = append(st.groups, c)
}

// AddLaunchConfiguration registers (or replaces, by name) a launch
// configuration. It is a test helper, not an API call.
func (s *Sim) AddLaunchConfiguration(lc astypes.LaunchConfiguration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.advance()
	c := cloneJSON(&lc)
	if c.CreatedTime == nil {
		c.CreatedTime = ptr(now)
	}
	st := &s.img.asg
	if i := slices.IndexFunc(st.configs, func(x *astypes.LaunchConfiguration) bool {
		return aws.ToString(x.LaunchConfigurationName) == aws.ToString(lc.LaunchConfigurationName)
	}); i >= 0 {
		st.configs[i] = c
		return
	}
	st.configs = append(st.configs, c)
}

// asgUsesImage reports whether a group references image id through its
// launch configuration, launch template (the version it names) or mixed
// instances policy (template and overrides) (lock held).
func (s *Sim) asgUsesImage(id string) bool {
	ltImage := func(spec *astypes.LaunchTemplateSpecification) string {
		if spec == nil {
			return ""
		}
		t, err := s.findTemplate(aws.ToString(spec.LaunchTemplateId), aws.ToString(spec.LaunchTemplateName))
		if err != nil {
			return ""
		}
		v, err := t.version(aws.ToString(spec.Version))
		if err != nil {
			return ""
		}
		return s.resolveImageAlias(aws.ToString(v.data.ImageId))
	}
	for _, g := range s.img.asg.groups {
		if n := aws.ToString(g.LaunchConfigurationName); n != "" {
			for _, lc := range s.img.asg.configs {
				if aws.ToString(lc.LaunchConfigurationName) == n && aws.ToString(lc.ImageId) == id {
					return true
				}
			}
		}
		if ltImage(g.LaunchTemplate) == id {
			return true
		}
		if m := g.MixedInstancesPolicy; m != nil && m.LaunchTemplate != nil {
			if ltImage(m.LaunchTemplate.LaunchTemplateSpecification) == id {
				return true
			}
			for _, o := range m.LaunchTemplate.Overrides {
				if aws.ToString(o.ImageId) == id || ltImage(o.LaunchTemplateSpecification) == id {
					return true
				}
			}
		}
	}
	return false
}

func asgPage(maxRecords *int32) (int, error) {
	if maxRecords == nil {
		return asgDefaultPage, nil
	}
	if n := *maxRecords; n < 1 || n > asgMaxPage {
		return 0, apiError(codeValidation, "1 validation error detected: Value '%d' at 'maxRecords' failed to satisfy constraint: Member must have value less than or equal to 100", n)
	}
	return int(*maxRecords), nil
}

// DescribeAutoScalingGroups lists groups by name (unknown names are left
// out, as AWS does) or all, with the filters tag-key, tag-value and
// tag:KEY, paginated by MaxRecords (default 50, at most 100) and NextToken.
func (c *AutoScaling) DescribeAutoScalingGroups(ctx context.Context, params *autoscaling.DescribeAutoScalingGroupsInput, optFns ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
	if params == nil {
		params = &autoscaling.DescribeAutoScalingGroupsInput{}
	}
	s := c.sim
	var out *autoscaling.DescribeAutoScalingGroupsOutput
	err := s.call(ctx, svcAutoScaling, "DescribeAutoScalingGroups", nil, func(now time.Time) error {
		limit, err := asgPage(params.MaxRecords)
		if err != nil {
			return err
		}
		start, err := decodeToken(params.NextToken)
		if err != nil {
			return apiError("InvalidNextToken", "The token is not valid.")
		}
		for _, f := range params.Filters {
			n := aws.ToString(f.Name)
			if n != "tag-key" && n != "tag-value" && !strings.HasPrefix(n, "tag:") {
				return apiError(codeValidation, "Filter name %s is not supported.", n)
			}
		}
		match := func(g *astypes.AutoScalingGroup) bool {
			if len(params.AutoScalingGroupNames) > 0 && !slices.Contains(params.AutoScalingGroupNames, aws.ToString(g.AutoScalingGroupName)) {
				return false
			}
			for _, f := range params.Filters {
				n, ok := aws.ToString(f.Name), false
				for _, t := range g.Tags {
					k, v := aws.ToString(t.Key), aws.ToString(t.Value)
					switch {
					case n == "tag-key":
						ok = ok || slices.Contains(f.Values, k)
					case n == "tag-value":
						ok = ok || slices.Contains(f.Values, v)
					default:
						ok = ok || (k == n[4:] && slices.Contains(f.Values, v))
					}
				}
				if !ok {
					return false
				}
			}
			return true
		}
		out = &autoscaling.DescribeAutoScalingGroupsOutput{AutoScalingGroups: []astypes.AutoScalingGroup{}}
		for i := int(start); i < len(s.img.asg.groups); i++ {
			g := s.img.asg.groups[i]
			if !match(g) {
				continue
			}
			if len(out.AutoScalingGroups) == limit {
				out.NextToken = encodeToken(uint64(i))
				break
			}
			out.AutoScalingGroups = append(out.AutoScalingGroups, *cloneJSON(g))
		}
		return nil
	})
	return out, err
}

// DescribeLaunchConfigurations lists launch configurations by name or all,
// paginated by MaxRecords (default 50, at most 100) and NextToken.
func (c *AutoScaling) DescribeLaunchConfigurations(ctx context.Context, params *autoscaling.DescribeLaunchConfigurationsInput, optFns ...func(*autoscaling.Options)) (*autoscaling.DescribeLaunchConfigurationsOutput, error) {
	if params == nil {
		params = &autoscaling.DescribeLaunchConfigurationsInput{}
	}
	s := c.sim
	var out *autoscaling.DescribeLaunchConfigurationsOutput
	err := s.call(ctx, svcAutoScaling, "DescribeLaunchConfigurations", nil, func(now time.Time) error {
		limit, err := asgPage(params.MaxRecords)
		if err != nil {
			return err
		}
		start, err := decodeToken(params.NextToken)
		if err != nil {
			return apiError("InvalidNextToken", "The token is not valid.")
		}
		out = &autoscaling.DescribeLaunchConfigurationsOutput{LaunchConfigurations: []astypes.LaunchConfiguration{}}
		for i := int(start); i < len(s.img.asg.configs); i++ {
			lc := s.img.asg.configs[i]
			if len(params.LaunchConfigurationNames) > 0 && !slices.Contains(params.LaunchConfigurationNames, aws.ToString(lc.LaunchConfigurationName)) {
				continue
			}
			if len(out.LaunchConfigurations) == limit {
				out.NextToken = encodeToken(uint64(i))
				break
			}
			out.LaunchConfigurations = append(out.LaunchConfigurations, *cloneJSON(lc))
		}
		return nil
	})
	return out, err
}
