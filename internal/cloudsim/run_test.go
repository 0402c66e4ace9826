package cloudsim

import (
	"context"
	"encoding/base64"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/awserr"
)

func TestRunInstancesValidation(t *testing.T) {
	manyTags := make([]string, 0, 102)
	for i := range 51 {
		manyTags = append(manyTags, "k"+strings.Repeat("x", i), "v")
	}
	tests := []struct {
		name string
		mod  func(*ec2.RunInstancesInput)
		code string
	}{
		{"no MinCount", func(in *ec2.RunInstancesInput) { in.MinCount = nil }, "MissingParameter"},
		{"no MaxCount", func(in *ec2.RunInstancesInput) { in.MaxCount = nil }, "MissingParameter"},
		{"MinCount 0", func(in *ec2.RunInstancesInput) { in.MinCount = aws.Int32(0) }, "InvalidParameterValue"},
		{"MaxCount < MinCount", func(in *ec2.RunInstancesInput) { in.MinCount, in.MaxCount = aws.Int32(3), aws.Int32(2) }, "InvalidParameterValue"},
		{"no ImageId", func(in *ec2.RunInstancesInput) { in.ImageId = nil }, "MissingParameter"},
		{"malformed AMI", func(in *ec2.RunInstancesInput) { in.ImageId = aws.String("ami-xyz") }, "InvalidAMIID.Malformed"},
		{"not an AMI", func(in *ec2.RunInstancesInput) { in.ImageId = aws.String("i-0123456789abcdef0") }, "InvalidAMIID.Malformed"},
		{"bad instance type", func(in *ec2.RunInstancesInput) { in.InstanceType = "large" }, "InvalidParameterValue"},
		{"unknown subnet", func(in *ec2.RunInstancesInput) { in.SubnetId = aws.String("subnet-0123456789abcdef0") }, "InvalidSubnetID.NotFound"},
		{"unknown AZ", func(in *ec2.RunInstancesInput) {
			in.Placement = &types.Placement{AvailabilityZone: aws.String("us-east-1z")}
		}, "InvalidParameterValue"},
		{"aws: tag", withTags("aws:cloudformation:stack-name", "x"), "InvalidParameterValue"},
		{"51 tags", withTags(manyTags...), "TagLimitExceeded"},
		{"bad tag resource type", func(in *ec2.RunInstancesInput) {
			in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeImage, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}}
		}, "InvalidParameterValue"},
		{"user data not base64", func(in *ec2.RunInstancesInput) { in.UserData = aws.String("#!/bin/sh\necho hi") }, "InvalidParameterValue"},
		{"user data too big", func(in *ec2.RunInstancesInput) {
			in.UserData = aws.String(base64.StdEncoding.EncodeToString(make([]byte, 16*1024+1)))
		}, "InvalidParameterValue"},
		{"hop limit 0", func(in *ec2.RunInstancesInput) {
			in.MetadataOptions = &types.InstanceMetadataOptionsRequest{HttpPutResponseHopLimit: aws.Int32(0)}
		}, "InvalidParameterValue"},
		{"long client token", func(in *ec2.RunInstancesInput) { in.ClientToken = aws.String(strings.Repeat("t", 65)) }, "InvalidParameterValue"},
		{"dry run", func(in *ec2.RunInstancesInput) { in.DryRun = aws.Bool(true) }, "DryRunOperation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			_, err := s.EC2().RunInstances(context.Background(), runInput(2, tt.mod))
			wantCode(t, err, tt.code)
			if n := len(s.Instances()); n != 0 {
				t.Fatalf("%d instances launched by a failed call", n)
			}
			if s.Calls()["ec2:RunInstances"] != 1 || s.Errors()[tt.code] != 1 {
				t.Fatalf("calls %v errors %v", s.Calls(), s.Errors())
			}
		})
	}
	// The boundaries are accepted.
	s := New()
	launch(t, s.EC2(), runInput(1, withTags(manyTags[:100]...), func(in *ec2.RunInstancesInput) {
		in.ImageId = aws.String("ami-12345678") // the short format
		in.UserData = aws.String(base64.StdEncoding.EncodeToString(make([]byte, 16*1024)))
		in.ClientToken = aws.String(strings.Repeat("t", 64))
	}))
}

func TestClientTokenIdempotency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		c := s.EC2()
		ctx := context.Background()
		in := runInput(999, withTags("app", "web"), func(in *ec2.RunInstancesInput) { in.ClientToken = aws.String("tok-1") })
		first, err := c.RunInstances(ctx, in)
		mustOK(t, err)
		// The resource bucket holds 1000 tokens and 999 are spent: a repeat
		// that needed them would be throttled.
		again, err := c.RunInstances(ctx, runInput(999, withTags("app", "web"), func(in *ec2.RunInstancesInput) { in.ClientToken = aws.String("tok-1") }))
		mustOK(t, err)
		if aws.ToString(again.ReservationId) != aws.ToString(first.ReservationId) {
			t.Fatalf("repeat got reservation %s, want %s", *again.ReservationId, *first.ReservationId)
		}
		if len(again.Instances) != 999 || aws.ToString(again.Instances[998].InstanceId) != aws.ToString(first.Instances[998].InstanceId) {
			t.Fatal("repeat returned different instances")
		}
		if n := len(s.Instances()); n != 999 {
			t.Fatalf("%d instances after an idempotent repeat, want 999", n)
		}
		// The last resource token is still there.
		launch(t, c, runInput(1))
		// Same token, different parameters.
		_, err = c.RunInstances(ctx, runInput(999, withTags("app", "db"), func(in *ec2.RunInstancesInput) { in.ClientToken = aws.String("tok-1") }))
		wantCode(t, err, "IdempotentParameterMismatch")
		if awserr.Retryable(err) {
			t.Fatal("IdempotentParameterMismatch classified retryable")
		}
		// The token is visible back, and filterable.
		d, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("client-token"), Values: []string{"tok-1"}}}})
		mustOK(t, err)
		if n := len(describeIDs(d)); n != 999 || aws.ToString(d.Reservations[0].Instances[0].ClientToken) != "tok-1" {
			t.Fatalf("client-token filter found %d", n)
		}
		if got := s.Calls()["ec2:RunInstances"]; got != 4 {
			t.Fatalf("RunInstances calls = %d, want 4", got)
		}
	})
}

func TestFailedLaunchDoesNotRecordToken(t *testing.T) {
	s := New(func(o *Options) { o.Faults.CapacityRate = 1 })
	c := s.EC2()
	in := runInput(3, func(in *ec2.RunInstancesInput) { in.ClientToken = aws.String("tok") })
	_, err := c.RunInstances(context.Background(), in)
	wantCode(t, err, "InsufficientInstanceCapacity")
	if !awserr.IsCapacity(err) {
		t.Fatalf("capacity error classified %v", awserr.Classify(err))
	}
	if n := len(s.Instances()); n != 0 {
		t.Fatalf("%d instances launched despite the capacity fault", n)
	}
	// The token was not consumed: the retry fails on capacity again, not
	// as an idempotent replay of nothing.
	_, err = c.RunInstances(context.Background(), in)
	wantCode(t, err, "InsufficientInstanceCapacity")
}

func TestPlacementAndLaunchSpec(t *testing.T) {
	s := New(noThrottle)
	c := s.EC2()
	ctx := context.Background()
	subnets := s.Subnets()
	// Round-robin over AZs without a subnet, one AZ per call.
	var azs []string
	for range 4 {
		out, err := c.RunInstances(ctx, runInput(2))
		mustOK(t, err)
		az := aws.ToString(out.Instances[0].Placement.AvailabilityZone)
		if az2 := aws.ToString(out.Instances[1].Placement.AvailabilityZone); az2 != az {
			t.Fatalf("one reservation over two AZs: %s, %s", az, az2)
		}
		azs = append(azs, az)
	}
	if strings.Join(azs, ",") != "us-east-1a,us-east-1b,us-east-1c,us-east-1a" {
		t.Fatalf("AZs = %v", azs)
	}

	ud := base64.StdEncoding.EncodeToString([]byte("#!/bin/bash\necho hello\n"))
	out, err := c.RunInstances(ctx, runInput(1, withTags("Name", "web"), func(in *ec2.RunInstancesInput) {
		in.SubnetId = aws.String(subnets["us-east-1b"])
		in.InstanceType = types.InstanceTypeC6gLarge
		in.SecurityGroupIds = []string{"sg-0123456789abcdef0"}
		in.KeyName = aws.String("ops")
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String("web-role")}
		in.UserData = aws.String(ud)
		in.MetadataOptions = &types.InstanceMetadataOptionsRequest{HttpTokens: types.HttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(2)}
		in.EbsOptimized = aws.Bool(true)
		in.Monitoring = &types.RunInstancesMonitoringEnabled{Enabled: aws.Bool(true)}
		in.Placement = &types.Placement{Tenancy: types.TenancyDedicated}
		in.BlockDeviceMappings = []types.BlockDeviceMapping{
			{DeviceName: aws.String("/dev/xvda"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(30), Encrypted: aws.Bool(true)}},
			{DeviceName: aws.String("/dev/sdf"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(100), DeleteOnTermination: aws.Bool(false)}},
		}
		in.LaunchTemplate = &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String("lt-0123456789abcdef0"), Version: aws.String("7")}
		in.InstanceMarketOptions = &types.InstanceMarketOptionsRequest{MarketType: types.MarketTypeSpot}
	}))
	mustOK(t, err)
	x := out.Instances[0]
	id := aws.ToString(x.InstanceId)
	if !validID(id, "i-") || len(id) != 19 || !strings.HasPrefix(aws.ToString(out.ReservationId), "r-") {
		t.Fatalf("IDs %s / %s", id, aws.ToString(out.ReservationId))
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"az", aws.ToString(x.Placement.AvailabilityZone), "us-east-1b"},
		{"subnet", aws.ToString(x.SubnetId), subnets["us-east-1b"]},
		{"vpc", aws.ToString(x.VpcId), s.VPCID()},
		{"type", x.InstanceType, types.InstanceTypeC6gLarge},
		{"arch", x.Architecture, types.ArchitectureValuesArm64},
		{"image", aws.ToString(x.ImageId), testAMI},
		{"state", x.State.Name, types.InstanceStateNamePending},
		{"code", aws.ToInt32(x.State.Code), int32(0)},
		{"sg", aws.ToString(x.SecurityGroups[0].GroupId), "sg-0123456789abcdef0"},
		{"key", aws.ToString(x.KeyName), "ops"},
		{"profile", aws.ToString(x.IamInstanceProfile.Arn), "arn:aws:iam::123456789012:instance-profile/web-role"},
		{"http tokens", x.MetadataOptions.HttpTokens, types.HttpTokensStateRequired},
		{"hop limit", aws.ToInt32(x.MetadataOptions.HttpPutResponseHopLimit), int32(2)},
		{"endpoint", x.MetadataOptions.HttpEndpoint, types.InstanceMetadataEndpointStateEnabled},
		{"ebs optimized", aws.ToBool(x.EbsOptimized), true},
		{"monitoring", x.Monitoring.State, types.MonitoringStateEnabled},
		{"tenancy", x.Placement.Tenancy, types.TenancyDedicated},
		{"volumes", len(x.BlockDeviceMappings), 2},
		{"root device", aws.ToString(x.RootDeviceName), "/dev/xvda"},
		{"second volume keeps", aws.ToBool(x.BlockDeviceMappings[1].Ebs.DeleteOnTermination), false},
		{"lifecycle", x.InstanceLifecycle, types.InstanceLifecycleTypeSpot},
		{"owner", aws.ToString(out.OwnerId), "123456789012"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	tags := map[string]string{}
	for _, tg := range x.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags["Name"] != "web" || tags["aws:ec2launchtemplate:id"] != "lt-0123456789abcdef0" || tags["aws:ec2launchtemplate:version"] != "7" {
		t.Fatalf("tags = %v", tags)
	}
	ip, err := netip.ParseAddr(aws.ToString(x.PrivateIpAddress))
	mustOK(t, err)
	if !netip.MustParsePrefix("10.0.64.0/18").Contains(ip) {
		t.Fatalf("private IP %s outside the us-east-1b subnet", ip)
	}
	if want := "ip-" + strings.ReplaceAll(ip.String(), ".", "-") + ".ec2.internal"; aws.ToString(x.PrivateDnsName) != want {
		t.Fatalf("private DNS %s, want %s", aws.ToString(x.PrivateDnsName), want)
	}
	// The launch request is kept, user data included.
	spec, ok := s.LaunchInput(id)
	if !ok || aws.ToString(spec.UserData) != ud || aws.ToString(spec.KeyName) != "ops" || spec.ClientToken != nil {
		t.Fatalf("LaunchInput = %+v", spec)
	}
	spec.KeyName = aws.String("changed") // a copy
	if again, _ := s.LaunchInput(id); aws.ToString(again.KeyName) != "ops" {
		t.Fatal("LaunchInput returned shared state")
	}

	// Defaults: m5.large, IMDS optional/enabled/1, default tenancy.
	d := launch(t, c, runInput(1))
	desc, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: d})
	mustOK(t, err)
	y := desc.Reservations[0].Instances[0]
	if y.InstanceType != types.InstanceTypeM5Large || y.MetadataOptions.HttpTokens != types.HttpTokensStateOptional ||
		aws.ToInt32(y.MetadataOptions.HttpPutResponseHopLimit) != 1 || y.Placement.Tenancy != types.TenancyDefault ||
		y.Architecture != types.ArchitectureValuesX8664 || y.InstanceLifecycle != "" {
		t.Fatalf("defaults: type %s tokens %s hop %d tenancy %s arch %s", y.InstanceType, y.MetadataOptions.HttpTokens,
			aws.ToInt32(y.MetadataOptions.HttpPutResponseHopLimit), y.Placement.Tenancy, y.Architecture)
	}
	// Placement.AvailabilityZone picks that AZ's subnet.
	out, err = c.RunInstances(ctx, runInput(1, func(in *ec2.RunInstancesInput) {
		in.Placement = &types.Placement{AvailabilityZone: aws.String("us-east-1c")}
	}))
	mustOK(t, err)
	if aws.ToString(out.Instances[0].SubnetId) != subnets["us-east-1c"] {
		t.Fatalf("AZ placement went to subnet %s", aws.ToString(out.Instances[0].SubnetId))
	}
}

func TestPrivateIPsAreUniqueAndReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Many AZs make small subnets: 64 AZs split 10.0.0.0/16 into /22s,
		// 1019 usable addresses each.
		s := New(noThrottle, func(o *Options) {
			o.AZs = seq("zone-", 64)
			o.Latency.TerminatedVisible = -1
		})
		c := s.EC2()
		sub := s.Subnets()["zone-0"]
		in := runInput(1019, func(in *ec2.RunInstancesInput) { in.SubnetId = aws.String(sub) })
		out, err := c.RunInstances(context.Background(), in)
		mustOK(t, err)
		seen := map[string]bool{}
		for _, x := range out.Instances {
			ip := aws.ToString(x.PrivateIpAddress)
			if seen[ip] || !netip.MustParsePrefix("10.0.0.0/22").Contains(netip.MustParseAddr(ip)) {
				t.Fatalf("bad or duplicate IP %s", ip)
			}
			seen[ip] = true
		}
		_, err = c.RunInstances(context.Background(), runInput(1, func(in *ec2.RunInstancesInput) { in.SubnetId = aws.String(sub) }))
		wantCode(t, err, "InsufficientFreeAddressesInSubnet")
		_, err = c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(out.Instances[0].InstanceId)}})
		mustOK(t, err)
		time.Sleep(time.Minute)
		_, err = c.RunInstances(context.Background(), runInput(1, func(in *ec2.RunInstancesInput) { in.SubnetId = aws.String(sub) }))
		mustOK(t, err)
	})
}

func TestEventualConsistency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(func(o *Options) { o.Faults.EventualConsistency = 10 * time.Second })
		c := s.EC2()
		ctx := context.Background()
		ids := launch(t, c, runInput(1))
		_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
		wantCode(t, err, "InvalidInstanceID.NotFound")
		if !awserr.IsNotFound(err) {
			t.Fatal("NotFound not classified as not found")
		}
		_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}})
		wantCode(t, err, "InvalidInstanceID.NotFound")
		_, err = c.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: ids, IncludeAllInstances: aws.Bool(true)})
		wantCode(t, err, "InvalidInstanceID.NotFound")
		_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
		wantCode(t, err, "InvalidInstanceID.NotFound")
		all, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
		mustOK(t, err)
		if len(all.Reservations) != 0 {
			t.Fatal("listing shows an instance inside its eventual-consistency window")
		}
		// The simulator itself sees it.
		if _, ok := s.Instance(ids[0]); !ok {
			t.Fatal("Instance() hides it")
		}
		time.Sleep(10 * time.Second)
		d, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
		mustOK(t, err)
		if got := describeIDs(d); len(got) != 1 || got[0] != ids[0] {
			t.Fatalf("after the window: %v", got)
		}
		_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}})
		mustOK(t, err)
	})
}
