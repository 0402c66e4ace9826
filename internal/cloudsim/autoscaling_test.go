package cloudsim

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestAutoScalingGroupsReferenceImages(t *testing.T) {
	s := New(noThrottle)
	ctx := context.Background()
	lcImage := s.AddImage(AddImageInput{Name: "lc"})
	ltImage := s.AddImage(AddImageInput{Name: "lt"})
	ovImage := s.AddImage(AddImageInput{Name: "override"})
	free := s.AddImage(AddImageInput{Name: "free"})
	_, err := s.EC2().CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("mixed"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(ltImage)}})
	mustOK(t, err)
	s.AddLaunchConfiguration(astypes.LaunchConfiguration{LaunchConfigurationName: aws.String("old"), ImageId: aws.String(lcImage)})
	s.AddAutoScalingGroup(astypes.AutoScalingGroup{AutoScalingGroupName: aws.String("legacy"), LaunchConfigurationName: aws.String("old")})
	s.AddAutoScalingGroup(astypes.AutoScalingGroup{AutoScalingGroupName: aws.String("mixed"),
		Tags: []astypes.TagDescription{{Key: aws.String("team"), Value: aws.String("a")}},
		MixedInstancesPolicy: &astypes.MixedInstancesPolicy{LaunchTemplate: &astypes.LaunchTemplate{
			LaunchTemplateSpecification: &astypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String("mixed"), Version: aws.String("$Default")},
			Overrides:                   []astypes.LaunchTemplateOverrides{{InstanceType: aws.String("m7g.large"), ImageId: aws.String(ovImage)}},
		}}})
	for i := range 120 {
		s.AddAutoScalingGroup(astypes.AutoScalingGroup{AutoScalingGroupName: aws.String(fmt.Sprintf("g%03d", i))})
	}
	s.mu.Lock()
	for _, id := range []string{lcImage, ltImage, ovImage} {
		if !s.asgUsesImage(id) {
			t.Errorf("%s not seen as used by a group", id)
		}
	}
	if s.asgUsesImage(free) {
		t.Errorf("unused image seen as used")
	}
	s.mu.Unlock()

	as := s.AutoScaling()
	var names []string
	in := &autoscaling.DescribeAutoScalingGroupsInput{MaxRecords: aws.Int32(100)}
	for {
		out, err := as.DescribeAutoScalingGroups(ctx, in)
		mustOK(t, err)
		for _, g := range out.AutoScalingGroups {
			names = append(names, *g.AutoScalingGroupName)
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	if len(names) != 122 || s.Calls()["autoscaling:DescribeAutoScalingGroups"] != 2 {
		t.Errorf("%d groups in %d calls", len(names), s.Calls()["autoscaling:DescribeAutoScalingGroups"])
	}
	out, err := as.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{Filters: []astypes.Filter{{Name: aws.String("tag:team"), Values: []string{"a"}}}})
	mustOK(t, err)
	if len(out.AutoScalingGroups) != 1 || out.AutoScalingGroups[0].MixedInstancesPolicy == nil {
		t.Errorf("tag filter: %+v", out.AutoScalingGroups)
	}
	_, err = as.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{MaxRecords: aws.Int32(101)})
	wantCode(t, err, codeValidation)
	lcs, err := as.DescribeLaunchConfigurations(ctx, &autoscaling.DescribeLaunchConfigurationsInput{})
	mustOK(t, err)
	if len(lcs.LaunchConfigurations) != 1 || aws.ToString(lcs.LaunchConfigurations[0].ImageId) != lcImage {
		t.Errorf("launch configurations: %+v", lcs.LaunchConfigurations)
	}
}
