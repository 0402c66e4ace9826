package cloudsim

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestLaunchTemplatesVersionsAndRunInstances(t *testing.T) {
	s := New(noThrottle)
	c := s.EC2()
	ctx := context.Background()
	a := s.AddImage(AddImageInput{Name: "a"})
	b := s.AddImage(AddImageInput{Name: "b"})
	s.PutParameter("/app/ami", b)
	lt, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("web"), ClientToken: aws.String("t1"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(a), InstanceType: types.InstanceTypeT3Micro}})
	mustOK(t, err)
	again, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("web"), ClientToken: aws.String("t1"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{}})
	mustOK(t, err)
	if *again.LaunchTemplate.LaunchTemplateId != *lt.LaunchTemplate.LaunchTemplateId {
		t.Errorf("ClientToken retry created another template")
	}
	_, err = c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("web"), LaunchTemplateData: &types.RequestLaunchTemplateData{}})
	wantCode(t, err, codeLTNameExists)
	v2, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateName: aws.String("web"), SourceVersion: aws.String("1"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String("resolve:ssm:/app/ami")}, ResolveAlias: aws.Bool(true)})
	mustOK(t, err)
	if d := v2.LaunchTemplateVersion.LaunchTemplateData; aws.ToString(d.ImageId) != b || d.InstanceType != types.InstanceTypeT3Micro {
		t.Errorf("version 2 data: image %s type %s (SourceVersion fields inherited, alias resolved)", aws.ToString(d.ImageId), d.InstanceType)
	}
	out, err := c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId, MaxResults: aws.Int32(1)})
	mustOK(t, err)
	if len(out.LaunchTemplateVersions) != 1 || out.NextToken == nil {
		t.Fatalf("page 1: %+v", out)
	}
	out2, err := c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId, NextToken: out.NextToken, ResolveAlias: aws.Bool(true)})
	mustOK(t, err)
	if len(out2.LaunchTemplateVersions) != 1 || aws.ToString(out2.LaunchTemplateVersions[0].LaunchTemplateData.ImageId) != b {
		t.Errorf("page 2: %+v", out2.LaunchTemplateVersions)
	}
	filtered, err := c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateName: aws.String("web"),
		Filters: []types.Filter{{Name: aws.String("image-id"), Values: []string{a}}}})
	mustOK(t, err)
	if len(filtered.LaunchTemplateVersions) != 1 || *filtered.LaunchTemplateVersions[0].VersionNumber != 1 {
		t.Errorf("image-id filter: %+v", filtered.LaunchTemplateVersions)
	}
	// RunInstances takes the image of the version it names.
	ids := launch(t, c, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateName: aws.String("web"), Version: aws.String("$Latest")}})
	if v, _ := s.Instance(ids[0]); v.ImageID != b {
		t.Errorf("instance from $Latest runs %s, want %s", v.ImageID, b)
	}
	_, err = c.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateName: aws.String("nope")}})
	wantCode(t, err, codeLTNameNotFound)
	_, err = c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateName: aws.String("web"), Versions: []string{"9"}})
	wantCode(t, err, codeLTVersionNotFound)
	all, err := c.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{})
	mustOK(t, err)
	if len(all.LaunchTemplates) != 1 || *all.LaunchTemplates[0].LatestVersionNumber != 2 {
		t.Errorf("templates: %+v", all.LaunchTemplates)
	}
	if got := s.LaunchTemplateImages(); len(got) != 2 {
		t.Errorf("LaunchTemplateImages = %v", got)
	}
}
