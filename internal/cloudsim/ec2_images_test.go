package cloudsim

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func imageTagSpec(rt types.ResourceType, kv ...string) types.TagSpecification {
	ts := types.TagSpecification{ResourceType: rt}
	for i := 0; i+1 < len(kv); i += 2 {
		ts.Tags = append(ts.Tags, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return ts
}

// runningInstance launches one instance and waits until it runs.
func runningInstance(t *testing.T, s *Sim, mods ...func(*ec2.RunInstancesInput)) string {
	t.Helper()
	id := launch(t, s.EC2(), runInput(1, mods...))[0]
	time.Sleep(time.Minute)
	if st := stateOf(t, s, id); st != "running" {
		t.Fatalf("instance is %s", st)
	}
	return id
}

func describeImage(t *testing.T, c *EC2, id string) types.Image {
	t.Helper()
	out, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	mustOK(t, err)
	if len(out.Images) != 1 {
		t.Fatalf("DescribeImages(%s) = %d images", id, len(out.Images))
	}
	return out.Images[0]
}

func TestCreateImageLatencyGrowsWithSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle)
		c := s.EC2()
		small := runningInstance(t, s)
		big := runningInstance(t, s, func(in *ec2.RunInstancesInput) {
			in.BlockDeviceMappings = []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvdb"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(200)}}}
		})
		ctx := context.Background()
		start := time.Now()
		a, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(small), Name: aws.String("small-1"),
			TagSpecifications: []types.TagSpecification{imageTagSpec(types.ResourceTypeImage, "ec2ops:bake", "b1"), imageTagSpec(types.ResourceTypeSnapshot, "ec2ops:bake", "b1")}})
		mustOK(t, err)
		b, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(big), Name: aws.String("big-1"), NoReboot: aws.Bool(true)})
		mustOK(t, err)
		if img := describeImage(t, c, *a.ImageId); img.State != types.ImageStatePending || len(img.Tags) != 1 {
			t.Fatalf("new image: %+v", img)
		}
		// The reboot re-runs the status check of the first instance only.
		if v, _ := s.Instance(small); v.InstanceStatus != "initializing" {
			t.Errorf("CreateImage with reboot: instance status %s, want initializing", v.InstanceStatus)
		}
		if v, _ := s.Instance(big); v.InstanceStatus == "initializing" && time.Since(start) > 5*time.Minute {
			t.Errorf("NoReboot rebooted the instance")
		}
		var tSmall, tBig time.Duration
		for tSmall == 0 || tBig == 0 {
			time.Sleep(10 * time.Second)
			if st, _ := s.ImageState(*a.ImageId); st == "available" && tSmall == 0 {
				tSmall = time.Since(start)
			}
			if st, _ := s.ImageState(*b.ImageId); st == "available" && tBig == 0 {
				tBig = time.Since(start)
			}
		}
		if tSmall > 6*time.Minute || tBig < tSmall+30*time.Minute {
			t.Errorf("8 GiB image took %v, 208 GiB image %v: want latency growing by about 10 s/GiB", tSmall, tBig)
		}
		img := describeImage(t, c, *b.ImageId)
		if len(img.BlockDeviceMappings) != 2 || aws.ToInt32(img.BlockDeviceMappings[1].Ebs.VolumeSize) != 200 || aws.ToString(img.SourceInstanceId) != big {
			t.Errorf("big image: %+v", img.BlockDeviceMappings)
		}
		snaps, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
			Filters: []types.Filter{{Name: aws.String("tag:ec2ops:bake"), Values: []string{"b1"}}}})
		mustOK(t, err)
		if len(snaps.Snapshots) != 1 || snaps.Snapshots[0].State != types.SnapshotStateCompleted {
			t.Errorf("snapshots tagged at create: %+v", snaps.Snapshots)
		}
		_, err = c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(small), Name: aws.String("small-1")})
		wantCode(t, err, codeAMINameDuplicate)
		_, err = c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(small), Name: aws.String("x")})
		wantCode(t, err, codeAMINameMalformed)
	})
}

func TestRunInstancesValidatesImagesOnceRegistered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle)
		c := s.EC2()
		ctx := context.Background()
		// No registry yet: any well-formed AMI launches.
		launch(t, c, runInput(1))
		id := s.AddImage(AddImageInput{Name: "base"})
		_, err := c.RunInstances(ctx, runInput(1))
		wantCode(t, err, codeAMINotFound)
		launch(t, c, runInput(1, func(in *ec2.RunInstancesInput) { in.ImageId = aws.String(id) }))
		_, err = c.DisableImage(ctx, &ec2.DisableImageInput{ImageId: aws.String(id)})
		mustOK(t, err)
		_, err = c.RunInstances(ctx, runInput(1, func(in *ec2.RunInstancesInput) { in.ImageId = aws.String(id) }))
		wantCode(t, err, codeAMIUnavailable)

		strict := New(noThrottle, func(o *Options) { o.Images.Strict = true })
		_, err = strict.EC2().RunInstances(ctx, runInput(1))
		wantCode(t, err, codeAMINotFound)
	})
}

func TestCopyImageAcrossRegions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle)
		ctx := context.Background()
		src := s.AddImage(AddImageInput{Name: "app-1", RootGiB: 20, Tags: map[string]string{"team": "a"}})
		west := s.EC2In("eu-west-1")
		in := &ec2.CopyImageInput{SourceImageId: aws.String(src), SourceRegion: aws.String("us-east-1"), Name: aws.String("app-1"),
			ClientToken: aws.String("tok-1"), Encrypted: aws.Bool(true), CopyImageTags: aws.Bool(true),
			KmsKeyId: aws.String("arn:aws:kms:eu-west-1:123456789012:key/abcd")}
		out, err := west.CopyImage(ctx, in)
		mustOK(t, err)
		again, err := west.CopyImage(ctx, in)
		mustOK(t, err)
		if *again.ImageId != *out.ImageId {
			t.Errorf("ClientToken retry made a second copy")
		}
		// The copy is invisible from the home Region and pending in eu-west-1.
		_, err = s.EC2().DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{*out.ImageId}})
		wantCode(t, err, codeAMINotFound)
		img := describeImage(t, west, *out.ImageId)
		if img.State != types.ImageStatePending || aws.ToString(img.SourceImageId) != src || !aws.ToBool(img.BlockDeviceMappings[0].Ebs.Encrypted) || len(img.Tags) != 1 {
			t.Errorf("copy: %+v", img)
		}
		time.Sleep(15 * time.Minute)
		if img := describeImage(t, west, *out.ImageId); img.State != types.ImageStateAvailable {
			t.Errorf("copy still %s after 15m", img.State)
		}
		bad := *in
		bad.ClientToken, bad.Name = nil, aws.String("app-2")
		bad.KmsKeyId = aws.String("arn:aws:kms:us-east-1:123456789012:key/abcd")
		_, err = west.CopyImage(ctx, &bad)
		wantCode(t, err, codeInvalidKMSKey)
		if s.Calls()["ec2:CopyImage"] != 3 {
			t.Errorf("calls: %v", s.Calls())
		}
	})
}

func TestDescribeImagesFiltersOwnersDeprecation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle)
		c := s.EC2()
		ctx := context.Background()
		now := time.Now()
		al1 := s.AddImage(AddImageInput{Name: "al2023-ami-2023.1-x86_64", Owner: "amazon", Public: true, Created: now.Add(-48 * time.Hour)})
		al2 := s.AddImage(AddImageInput{Name: "al2023-ami-2023.2-x86_64", Owner: "amazon", Public: true, Created: now.Add(-24 * time.Hour)})
		s.AddImage(AddImageInput{Name: "al2023-ami-2023.2-arm64", Owner: "amazon", Public: true, Architecture: types.ArchitectureValuesArm64})
		old := s.AddImage(AddImageInput{Name: "al2023-ami-2023.0-x86_64", Owner: "amazon", Public: true, DeprecateAt: now.Add(-time.Hour)})
		s.AddImage(AddImageInput{Name: "private-other", Owner: "210987654321"})
		mine := s.AddImage(AddImageInput{Name: "app-1", Tags: map[string]string{"ec2ops:family": "app"}})
		s.AddImage(AddImageInput{Name: "app-0", Disabled: true, Tags: map[string]string{"ec2ops:family": "app"}})

		ids := func(in *ec2.DescribeImagesInput) []string {
			out, err := c.DescribeImages(ctx, in)
			mustOK(t, err)
			var r []string
			for _, im := range out.Images {
				r = append(r, *im.ImageId)
			}
			return r
		}
		f := func(name string, v ...string) types.Filter { return types.Filter{Name: aws.String(name), Values: v} }
		got := ids(&ec2.DescribeImagesInput{Owners: []string{"amazon"}, Filters: []types.Filter{f("name", "al2023-ami-*"), f("architecture", "x86_64")}})
		if len(got) != 2 || got[0] != al1 || got[1] != al2 {
			t.Errorf("amazon x86_64 = %v, want [%s %s] (deprecated %s left out)", got, al1, al2, old)
		}
		if got := ids(&ec2.DescribeImagesInput{Owners: []string{"amazon"}, IncludeDeprecated: aws.Bool(true), Filters: []types.Filter{f("name", "al2023-ami-2023.0*")}}); len(got) != 1 {
			t.Errorf("IncludeDeprecated: %v", got)
		}
		if got := ids(&ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []types.Filter{f("tag:ec2ops:family", "app")}}); len(got) != 1 || got[0] != mine {
			t.Errorf("self family = %v (disabled excluded)", got)
		}
		if got := ids(&ec2.DescribeImagesInput{Owners: []string{"self"}, IncludeDisabled: aws.Bool(true), Filters: []types.Filter{f("state", "disabled")}}); len(got) != 1 {
			t.Errorf("IncludeDisabled: %v", got)
		}
		if got := ids(&ec2.DescribeImagesInput{Filters: []types.Filter{f("is-public", "false")}}); len(got) != 1 {
			t.Errorf("another account's private image is visible: %v", got)
		}
		_, err := c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(mine), LaunchPermission: &types.LaunchPermissionModifications{
			Add: []types.LaunchPermission{{UserId: aws.String("111122223333")}, {OrganizationalUnitArn: aws.String("arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-abcdefgh")}}}})
		mustOK(t, err)
		if got := ids(&ec2.DescribeImagesInput{ExecutableUsers: []string{"111122223333"}}); len(got) != 1 || got[0] != mine {
			t.Errorf("ExecutableUsers: %v", got)
		}
		attr, err := c.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{ImageId: aws.String(mine), Attribute: types.ImageAttributeNameLaunchPermission})
		mustOK(t, err)
		if len(attr.LaunchPermissions) != 2 {
			t.Errorf("launch permissions: %+v", attr.LaunchPermissions)
		}
		_, err = c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(mine), OperationType: types.OperationTypeAdd, UserIds: []string{"12"}})
		wantCode(t, err, codeInvalidUserID)
		_, err = c.EnableImageDeprecation(ctx, &ec2.EnableImageDeprecationInput{ImageId: aws.String(mine), DeprecateAt: aws.Time(now.Add(-time.Minute))})
		wantCode(t, err, codeInvalidParameter)
		_, err = c.EnableImageDeprecation(ctx, &ec2.EnableImageDeprecationInput{ImageId: aws.String(mine), DeprecateAt: aws.Time(now.Add(90 * time.Second))})
		mustOK(t, err)
		if img := describeImage(t, c, mine); aws.ToString(img.DeprecationTime) != now.Add(2*time.Minute).UTC().Format(isoMillis) {
			t.Errorf("deprecation time %v, want rounded up to the minute", aws.ToString(img.DeprecationTime))
		}
		out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{MaxResults: aws.Int32(5), IncludeDeprecated: aws.Bool(true), IncludeDisabled: aws.Bool(true)})
		mustOK(t, err)
		if len(out.Images) != 5 || out.NextToken == nil {
			t.Errorf("page: %d images, token %v", len(out.Images), out.NextToken)
		}
	})
}

func TestDeregisterImageSnapshots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle)
		c := s.EC2()
		ctx := context.Background()
		a := s.AddImage(AddImageInput{Name: "a"})
		// b shares a's snapshot: register it through the registry directly.
		b := s.AddImage(AddImageInput{Name: "b"})
		s.mu.Lock()
		s.img.byID[b].devices[0].snapshotID = s.img.byID[a].devices[0].snapshotID
		s.mu.Unlock()
		snap := s.img.byID[a].devices[0].snapshotID
		_, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snap)})
		wantCode(t, err, codeSnapshotInUse)
		out, err := c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(a), DeleteAssociatedSnapshots: aws.Bool(true)})
		mustOK(t, err)
		if r := out.DeleteSnapshotResults; len(r) != 1 || r[0].ReturnCode != types.SnapshotReturnCodesWarnSkipped {
			t.Errorf("shared snapshot: %+v", r)
		}
		out, err = c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(b), DeleteAssociatedSnapshots: aws.Bool(true)})
		mustOK(t, err)
		if r := out.DeleteSnapshotResults; len(r) != 1 || r[0].ReturnCode != types.SnapshotReturnCodesSuccess {
			t.Errorf("last user: %+v", r)
		}
		if s.ImageSnapshots(b)[snap] {
			t.Errorf("snapshot survived its last image")
		}
		_, err = c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(b)})
		wantCode(t, err, codeAMINotFound)
		if out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{b}}); err != nil || len(out.Images) != 0 {
			t.Errorf("deregistered image described: %v %v", out, err)
		}
		// Deregistering an image an instance uses is allowed and recorded.
		used := s.AddImage(AddImageInput{Name: "used"})
		launch(t, c, runInput(1, func(in *ec2.RunInstancesInput) { in.ImageId = aws.String(used) }))
		_, err = c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(used)})
		mustOK(t, err)
		if got := s.DeregisteredInUse(); len(got) != 1 || got[0] != used {
			t.Errorf("DeregisteredInUse = %v", got)
		}
	})
}
