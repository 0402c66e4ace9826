package ami

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.uber.org/mock/gomock"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/ami/amimock"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
)

const (
	testOrg = "arn:aws:organizations::111111111111:organization/o-abcdefghij"
	testOU  = "arn:aws:organizations::111111111111:ou/o-abcdefghij/ou-ab12-cdefghij"
)

func simDistributor(sim *cloudsim.Sim, opts ...func(*DistributorOptions)) *Distributor {
	return NewDistributor(sim.EC2(), "us-east-1", func(r string) DistributeAPI { return sim.EC2In(r) }, opts...)
}

func TestDistributeOnSimulator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := cloudsim.New()
		src := sim.AddImage(cloudsim.AddImageInput{Name: "web-1", RootGiB: 30, Tags: map[string]string{TagFamily: "web"}})
		d := simDistributor(sim)
		x := Distribution{
			ImageID: src,
			Regions: []RegionCopy{{Region: "eu-west-1", KMSKeyID: "arn:aws:kms:eu-west-1:123456789012:key/k1"}, {Region: "ap-southeast-2"}},
			Encrypt: true, Accounts: []string{"222233334444"}, Organizations: []string{testOrg}, OrganizationalUnits: []string{testOU},
			ShareSnapshots: true, RequireIMDSv2: true, DeprecateAt: time.Now().Add(90 * 24 * time.Hour),
		}
		plan, err := d.Plan(x)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		res, err := d.Apply(context.Background(), x)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("distribute to 2 Regions: simulated %v, calls %v\n%s", time.Since(start).Round(time.Second), sim.Calls(), plan)
		if len(res.Images) != 3 {
			t.Fatalf("images %v", res.Images)
		}
		policyCovers(t, sim, d.Policy())
		ctx := context.Background()
		for region, im := range res.Images {
			c := sim.EC2In(region)
			out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{im.ID}})
			if err != nil {
				t.Fatal(err)
			}
			got := out.Images[0]
			if got.ImdsSupport != types.ImdsSupportValuesV20 || got.DeprecationTime == nil {
				t.Errorf("%s: imds %q deprecation %v", region, got.ImdsSupport, got.DeprecationTime)
			}
			attr, _ := c.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{ImageId: aws.String(im.ID), Attribute: types.ImageAttributeNameLaunchPermission})
			if len(attr.LaunchPermissions) != 3 {
				t.Errorf("%s: permissions %+v", region, attr.LaunchPermissions)
			}
			if region != "us-east-1" {
				if !aws.ToBool(got.BlockDeviceMappings[0].Ebs.Encrypted) || im.Tags[TagCopyOf] != "us-east-1/"+src || im.Tags[TagFamily] != "web" {
					t.Errorf("%s copy: %+v tags %v", region, got.BlockDeviceMappings, im.Tags)
				}
				snaps, _ := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{RestorableByUserIds: []string{"222233334444"}})
				if len(snaps.Snapshots) != 1 {
					t.Errorf("%s: snapshots shared: %d", region, len(snaps.Snapshots))
				}
			}
		}

		// A rerun adopts the copies.
		sim.ResetCounters()
		again, err := d.Apply(ctx, x)
		if err != nil || again.Images["eu-west-1"].ID != res.Images["eu-west-1"].ID || sim.Calls()["ec2:CopyImage"] != 0 {
			t.Errorf("rerun: %v %v calls %v", again.Images, err, sim.Calls())
		}
		if err := d.Undeprecate(ctx, "eu-west-1", res.Images["eu-west-1"].ID); err != nil {
			t.Error(err)
		}
	})
}

func TestDistributeRefusesPublicAndBadInput(t *testing.T) {
	d := NewDistributor(nil, "us-east-1", nil)
	for name, x := range map[string]Distribution{
		"public":   {ImageID: "ami-12345678", Accounts: []string{"all"}},
		"account":  {ImageID: "ami-12345678", Accounts: []string{"1234"}},
		"org":      {ImageID: "ami-12345678", Organizations: []string{"o-abc"}},
		"ou":       {ImageID: "ami-12345678", OrganizationalUnits: []string{testOrg}},
		"region":   {ImageID: "ami-12345678", Regions: []RegionCopy{{Region: "mars"}}},
		"source":   {ImageID: "ami-12345678", Regions: []RegionCopy{{Region: "us-east-1"}}},
		"kms":      {ImageID: "ami-12345678", Regions: []RegionCopy{{Region: "eu-west-1", KMSKeyID: "arn:aws:kms:us-east-1:123456789012:key/k"}}},
		"past":     {ImageID: "ami-12345678", DeprecateAt: time.Now().Add(-time.Hour)},
		"image id": {ImageID: "img-1"},
	} {
		if _, err := d.Apply(context.Background(), x); !errors.Is(err, ec2ops.ErrInvalidInput) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCopyImageInput(t *testing.T) {
	ctrl := gomock.NewController(t)
	src, dst := amimock.NewMockDistributeAPI(ctrl), amimock.NewMockDistributeAPI(ctrl)
	src.EXPECT().DescribeImages(gomock.Any(), gomock.Any()).Return(&ec2.DescribeImagesOutput{Images: []types.Image{{
		ImageId: aws.String("ami-0123456789abcdef0"), Name: aws.String("web-1"), State: types.ImageStateAvailable}}}, nil)
	dst.EXPECT().DescribeImages(gomock.Any(), gomock.Any()).Return(&ec2.DescribeImagesOutput{}, nil)
	token := copyToken("ami-0123456789abcdef0", "eu-west-1", "alias/web", false)
	dst.EXPECT().CopyImage(gomock.Any(), gomock.Any()).DoAndReturn(func(_ context.Context, in *ec2.CopyImageInput, _ ...func(*ec2.Options)) (*ec2.CopyImageOutput, error) {
		if aws.ToString(in.ClientToken) != token || aws.ToString(in.SourceRegion) != "us-east-1" || !aws.ToBool(in.Encrypted) ||
			aws.ToString(in.KmsKeyId) != "alias/web" || !aws.ToBool(in.CopyImageTags) || len(in.TagSpecifications) != 2 {
			t.Errorf("CopyImage input %+v", in)
		}
		return &ec2.CopyImageOutput{ImageId: aws.String("ami-0fedcba9876543210")}, nil
	})
	dst.EXPECT().DescribeImages(gomock.Any(), gomock.Any()).Return(&ec2.DescribeImagesOutput{Images: []types.Image{{
		ImageId: aws.String("ami-0fedcba9876543210"), State: types.ImageStateFailed}}}, nil)
	d := NewDistributor(src, "us-east-1", func(string) DistributeAPI { return dst }, func(o *DistributorOptions) { o.PollInterval = time.Millisecond })
	_, err := d.Apply(context.Background(), Distribution{ImageID: "ami-0123456789abcdef0", Regions: []RegionCopy{{Region: "eu-west-1", KMSKeyID: "alias/web"}}})
	var pe *ec2ops.ProgressError
	if !errors.As(err, &pe) || len(pe.Done) != 1 || len(pe.Pending) != 1 || pe.Pending[0] != "eu-west-1" {
		t.Fatalf("failed copy: %v", err)
	}
}
