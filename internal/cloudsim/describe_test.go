package cloudsim

import (
	"context"
	"encoding/base64"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func f(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

func TestDescribeInstancesFilters(t *testing.T) {
	s := New(noThrottle)
	c := s.EC2()
	ctx := context.Background()
	subnets := s.Subnets()
	named := map[string]string{} // Name tag -> ID
	resOf := map[string]string{}
	add := func(name, env, az string, itype types.InstanceType, ami string) {
		out, err := c.RunInstances(ctx, runInput(1, withTags("Name", name, "env", env), func(in *ec2.RunInstancesInput) {
			in.SubnetId = aws.String(subnets[az])
			in.InstanceType = itype
			in.ImageId = aws.String(ami)
			in.ClientToken = aws.String("token-" + name)
		}))
		mustOK(t, err)
		named[name] = aws.ToString(out.Instances[0].InstanceId)
		resOf[name] = aws.ToString(out.ReservationId)
	}
	add("web-1", "prod", "us-east-1a", types.InstanceTypeM5Large, "ami-11111111")
	add("web-2", "staging", "us-east-1b", types.InstanceTypeC5Xlarge, "ami-22222222")
	add("db-1", "prod", "us-east-1c", types.InstanceTypeR5Large, "ami-11111111")
	add("*star", "dev", "us-east-1a", types.InstanceTypeT3Micro, "ami-33333333")
	add("xstar", "dev", "us-east-1a", types.InstanceTypeT3Micro, "ami-33333333")
	mustOK(t, func() error {
		_, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{named["xstar"]}})
		return err
	}())

	tests := []struct {
		name    string
		filters []types.Filter
		want    []string // Name tags, in launch order
	}{
		{"none", nil, []string{"web-1", "web-2", "db-1", "*star", "xstar"}},
		{"tag exact", []types.Filter{f("tag:Name", "web-1")}, []string{"web-1"}},
		{"tag star", []types.Filter{f("tag:Name", "web-*")}, []string{"web-1", "web-2"}},
		{"tag question mark", []types.Filter{f("tag:Name", "web-?")}, []string{"web-1", "web-2"}},
		{"question mark is zero or one", []types.Filter{f("tag:Name", "web-1?")}, []string{"web-1"}},
		{"question mark not two", []types.Filter{f("tag:Name", "web?")}, nil},
		{"star in middle", []types.Filter{f("tag:Name", "*eb-*")}, []string{"web-1", "web-2"}},
		{"escaped star", []types.Filter{f("tag:Name", `\*star`)}, []string{"*star"}},
		{"star matches both", []types.Filter{f("tag:Name", `*star`)}, []string{"*star", "xstar"}},
		{"values OR", []types.Filter{f("tag:Name", "web-1", "db-1")}, []string{"web-1", "db-1"}},
		{"filters AND", []types.Filter{f("tag:env", "prod"), f("instance-type", "m5.large")}, []string{"web-1"}},
		{"tag-key", []types.Filter{f("tag-key", "env")}, []string{"web-1", "web-2", "db-1", "*star", "xstar"}},
		{"tag-key wildcard none", []types.Filter{f("tag-key", "Env*")}, nil},
		{"tag-value", []types.Filter{f("tag-value", "prod")}, []string{"web-1", "db-1"}},
		{"missing tag key", []types.Filter{f("tag:team", "*")}, nil},
		{"image-id", []types.Filter{f("image-id", "ami-11111111")}, []string{"web-1", "db-1"}},
		{"instance-type wildcard", []types.Filter{f("instance-type", "c5.*")}, []string{"web-2"}},
		{"availability-zone", []types.Filter{f("availability-zone", "us-east-1a")}, []string{"web-1", "*star", "xstar"}},
		{"subnet-id", []types.Filter{f("subnet-id", subnets["us-east-1c"])}, []string{"db-1"}},
		{"vpc-id", []types.Filter{f("vpc-id", s.VPCID())}, []string{"web-1", "web-2", "db-1", "*star", "xstar"}},
		{"state name", []types.Filter{f("instance-state-name", "pending")}, []string{"web-1", "web-2", "db-1", "*star"}},
		{"state name shutting", []types.Filter{f("instance-state-name", "shutting-down", "terminated")}, []string{"xstar"}},
		{"state code", []types.Filter{f("instance-state-code", "32")}, []string{"xstar"}},
		{"instance-id", []types.Filter{f("instance-id", named["db-1"])}, []string{"db-1"}},
		{"reservation-id", []types.Filter{f("reservation-id", resOf["web-2"])}, []string{"web-2"}},
		{"client-token", []types.Filter{f("client-token", "token-web-*")}, []string{"web-1", "web-2"}},
		{"http tokens", []types.Filter{f("metadata-options.http-tokens", "optional"), f("tag:env", "staging")}, []string{"web-2"}},
		{"case sensitive", []types.Filter{f("tag:name", "web-1")}, nil},
	}
	nameOf := map[string]string{}
	for n, id := range named {
		nameOf[id] = n
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: tt.filters})
			mustOK(t, err)
			var got []string
			for _, id := range describeIDs(out) {
				got = append(got, nameOf[id])
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}

	errTests := []struct {
		name string
		in   *ec2.DescribeInstancesInput
		code string
	}{
		{"unknown filter", &ec2.DescribeInstancesInput{Filters: []types.Filter{f("flavour", "x")}}, "InvalidParameterValue"},
		{"filter without values", &ec2.DescribeInstancesInput{Filters: []types.Filter{f("instance-type")}}, "InvalidParameterValue"},
		{"201 filter values", &ec2.DescribeInstancesInput{Filters: []types.Filter{f("tag:a", seq("v", 150)...), f("tag:b", seq("w", 51)...)}}, "FilterLimitExceeded"},
		{"ids and MaxResults", &ec2.DescribeInstancesInput{InstanceIds: []string{named["web-1"]}, MaxResults: aws.Int32(5)}, "InvalidParameterCombination"},
		{"MaxResults 4", &ec2.DescribeInstancesInput{MaxResults: aws.Int32(4)}, "InvalidParameterValue"},
		{"MaxResults 1001", &ec2.DescribeInstancesInput{MaxResults: aws.Int32(1001)}, "InvalidParameterValue"},
		{"bad token", &ec2.DescribeInstancesInput{NextToken: aws.String("garbage")}, "InvalidPaginationToken"},
		{"malformed id", &ec2.DescribeInstancesInput{InstanceIds: []string{"i-xyz"}}, "InvalidInstanceID.Malformed"},
		{"unknown id", &ec2.DescribeInstancesInput{InstanceIds: []string{named["web-1"], "i-0000000000000000a"}}, "InvalidInstanceID.NotFound"},
		{"dry run", &ec2.DescribeInstancesInput{DryRun: aws.Bool(true)}, "DryRunOperation"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.DescribeInstances(ctx, tt.in)
			wantCode(t, err, tt.code)
		})
	}
	// Exactly 200 values is allowed.
	_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{f("tag:a", seq("v", 150)...), f("tag:b", seq("w", 50)...)}})
	mustOK(t, err)
	// Explicit IDs come back in launch order, once each, with filters.
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{
		InstanceIds: []string{named["db-1"], named["web-1"], named["db-1"], named["web-2"]},
		Filters:     []types.Filter{f("tag:env", "prod")},
	})
	mustOK(t, err)
	if got := describeIDs(out); !slices.Equal(got, []string{named["web-1"], named["db-1"]}) {
		t.Fatalf("ids+filter = %v", got)
	}
}

func TestDescribeInstancesPagination(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle)
		c := s.EC2()
		ctx := context.Background()
		var launched []string
		for _, n := range []int32{1000, 1000, 500} {
			launched = append(launched, launch(t, c, runInput(n))...)
		}
		var got []string
		var pages []int
		var token *string
		for {
			out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(1000), NextToken: token})
			mustOK(t, err)
			ids := describeIDs(out)
			pages = append(pages, len(ids))
			got = append(got, ids...)
			token = out.NextToken
			if token == nil {
				break
			}
		}
		if !slices.Equal(pages, []int{1000, 1000, 500}) {
			t.Fatalf("pages = %v, want [1000 1000 500]", pages)
		}
		if !slices.Equal(got, launched) {
			t.Fatal("pagination lost, duplicated or reordered instances")
		}
		// The SDK's paginator drives it too, with filters.
		p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(700),
			Filters: []types.Filter{f("availability-zone", "us-east-1b")}})
		n, calls := 0, 0
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			mustOK(t, err)
			n += len(describeIDs(out))
			calls++
		}
		if n != 1000 || calls != 2 {
			t.Fatalf("paginator: %d instances in %d pages, want 1000 in 2", n, calls)
		}
		// Without MaxResults everything comes back at once.
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
		mustOK(t, err)
		if len(describeIDs(out)) != 2500 || out.NextToken != nil || len(out.Reservations) != 3 {
			t.Fatalf("unpaginated: %d instances in %d reservations", len(describeIDs(out)), len(out.Reservations))
		}
	})
}

func TestDescribeInstanceStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(noThrottle)
		c := s.EC2()
		ctx := context.Background()
		ids := launch(t, c, runInput(12))

		_, err := c.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: seq("i-", 101)})
		wantCode(t, err, "InvalidParameterValue")
		_, err = c.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{ids[0], "i-0000000000000000b"}})
		wantCode(t, err, "InvalidInstanceID.NotFound")
		_, err = c.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: ids[:1], MaxResults: aws.Int32(5)})
		wantCode(t, err, "InvalidParameterCombination")
		_, err = c.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{Filters: []types.Filter{f("tag:Name", "x")}})
		wantCode(t, err, "InvalidParameterValue")

		// Pending: only with IncludeAllInstances, not-applicable.
		out, err := c.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: ids})
		mustOK(t, err)
		if len(out.InstanceStatuses) != 0 {
			t.Fatalf("pending instances listed without IncludeAllInstances: %d", len(out.InstanceStatuses))
		}
		out, err = c.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: ids[:1], IncludeAllInstances: aws.Bool(true)})
		mustOK(t, err)
		st := out.InstanceStatuses[0]
		if st.InstanceState.Name != "pending" || st.InstanceStatus.Status != types.SummaryStatusNotApplicable ||
			st.SystemStatus.Status != types.SummaryStatusNotApplicable || aws.ToString(st.AvailabilityZone) == "" {
			t.Fatalf("pending status %+v", st)
		}
		// Running, checks initializing.
		time.Sleep(31 * time.Second)
		out, err = c.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: ids})
		mustOK(t, err)
		if len(out.InstanceStatuses) != 12 {
			t.Fatalf("running statuses = %d", len(out.InstanceStatuses))
		}
		for _, st := range out.InstanceStatuses {
			if st.InstanceStatus.Status != types.SummaryStatusInitializing || st.InstanceStatus.Details[0].Status != types.StatusTypeInitializing {
				t.Fatalf("status 31s after launch: %+v", st.InstanceStatus)
			}
		}
		// After the checks: ok, and filterable.
		time.Sleep(3 * time.Minute)
		_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids[:2]})
		mustOK(t, err)
		out, err = c.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{Filters: []types.Filter{f("instance-status.status", "ok"), f("system-status.reachability", "passed")}})
		mustOK(t, err)
		if len(out.InstanceStatuses) != 10 {
			t.Fatalf("ok statuses = %d, want 10", len(out.InstanceStatuses))
		}
		out, err = c.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{IncludeAllInstances: aws.Bool(true),
			Filters: []types.Filter{f("instance-state-name", "shutting-down")}})
		mustOK(t, err)
		if len(out.InstanceStatuses) != 2 || out.InstanceStatuses[0].InstanceStatus.Status != types.SummaryStatusNotApplicable {
			t.Fatalf("shutting-down statuses: %+v", out.InstanceStatuses)
		}
		// Pagination without IDs.
		var sizes []int
		var token *string
		for {
			out, err := c.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{MaxResults: aws.Int32(5), NextToken: token})
			mustOK(t, err)
			sizes = append(sizes, len(out.InstanceStatuses))
			if token = out.NextToken; token == nil {
				break
			}
		}
		if !slices.Equal(sizes, []int{5, 5}) {
			t.Fatalf("status pages = %v, want [5 5]", sizes)
		}
	})
}

func TestDescribeInstanceAttribute(t *testing.T) {
	s := New()
	c := s.EC2()
	ctx := context.Background()
	ud := base64.StdEncoding.EncodeToString([]byte("#cloud-config\n"))
	ids := launch(t, c, runInput(1, func(in *ec2.RunInstancesInput) {
		in.UserData = aws.String(ud)
		in.InstanceType = types.InstanceTypeT3Small
		in.DisableApiTermination = aws.Bool(true)
		in.InstanceInitiatedShutdownBehavior = types.ShutdownBehaviorTerminate
	}))
	plain := launch(t, c, runInput(1))
	get := func(id string, a types.InstanceAttributeName) *ec2.DescribeInstanceAttributeOutput {
		t.Helper()
		out, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id), Attribute: a})
		mustOK(t, err)
		if aws.ToString(out.InstanceId) != id {
			t.Fatalf("InstanceId = %v", aws.ToString(out.InstanceId))
		}
		return out
	}
	if v := aws.ToString(get(ids[0], types.InstanceAttributeNameUserData).UserData.Value); v != ud {
		t.Fatalf("userData = %q, want %q", v, ud)
	}
	if u := get(plain[0], types.InstanceAttributeNameUserData).UserData; u == nil || u.Value != nil {
		t.Fatalf("userData of an instance without any = %+v", u)
	}
	if v := aws.ToString(get(ids[0], types.InstanceAttributeNameInstanceType).InstanceType.Value); v != "t3.small" {
		t.Fatalf("instanceType = %s", v)
	}
	if v := aws.ToBool(get(ids[0], types.InstanceAttributeNameDisableApiTermination).DisableApiTermination.Value); !v {
		t.Fatal("disableApiTermination = false")
	}
	if v := aws.ToString(get(ids[0], types.InstanceAttributeNameInstanceInitiatedShutdownBehavior).InstanceInitiatedShutdownBehavior.Value); v != "terminate" {
		t.Fatalf("shutdown behavior = %s", v)
	}
	if v := aws.ToString(get(plain[0], types.InstanceAttributeNameInstanceInitiatedShutdownBehavior).InstanceInitiatedShutdownBehavior.Value); v != "stop" {
		t.Fatalf("default shutdown behavior = %s", v)
	}
	if v := aws.ToString(get(ids[0], types.InstanceAttributeNameRootDeviceName).RootDeviceName.Value); v != "/dev/xvda" {
		t.Fatalf("root device = %s", v)
	}
	if m := get(ids[0], types.InstanceAttributeNameBlockDeviceMapping).BlockDeviceMappings; len(m) != 1 || aws.ToString(m[0].Ebs.VolumeId) == "" {
		t.Fatalf("block devices = %+v", m)
	}
	_, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(ids[0]), Attribute: "flavour"})
	wantCode(t, err, "InvalidParameterValue")
	_, err = c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String("i-0000000000000000c"), Attribute: types.InstanceAttributeNameUserData})
	wantCode(t, err, "InvalidInstanceID.NotFound")
	_, err = c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(ids[0])})
	wantCode(t, err, "MissingParameter")
}

func TestCompilePattern(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"abc", "abc", true},
		{"abc", "abcd", false},
		{"a*", "a", true},
		{"a*", "abc", true},
		{"*c", "abc", true},
		{"a?c", "abc", true},
		{"a?c", "ac", true},
		{"a?c", "abbc", false},
		{`a\*c`, "a*c", true},
		{`a\*c`, "abc", false},
		{`\*amazon\?\\`, `*amazon?\`, true},
		{"a.c", "abc", false}, // regexp metacharacters are literal
		{"(x)+", "(x)+", true},
		{"*", "", true},
		{"a*b*c", "a--b--c", true},
		{"line*", "line1\nline2", true},
	}
	for _, tt := range tests {
		if got := compilePattern(tt.pat)(tt.s); got != tt.want {
			t.Errorf("pattern %q on %q = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}

func TestDescribeInstancesMoreFilters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		c := s.EC2()
		ctx := context.Background()
		out, err := c.RunInstances(ctx, runInput(1, func(in *ec2.RunInstancesInput) {
			in.KeyName = aws.String("ops")
			in.InstanceType = types.InstanceTypeM7gLarge
			in.SecurityGroupIds = []string{"sg-0123456789abcdef0"}
			in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Arn: aws.String("arn:aws:iam::123456789012:instance-profile/app")}
			in.InstanceMarketOptions = &types.InstanceMarketOptionsRequest{MarketType: types.MarketTypeSpot}
			in.Placement = &types.Placement{Tenancy: types.TenancyDedicated}
			in.MetadataOptions = &types.InstanceMetadataOptionsRequest{HttpTokens: types.HttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(2)}
		}))
		mustOK(t, err)
		x := out.Instances[0]
		other := launch(t, c, runInput(1))
		time.Sleep(time.Hour)
		id := aws.ToString(x.InstanceId)
		tests := []types.Filter{
			f("key-name", "ops"),
			f("private-ip-address", aws.ToString(x.PrivateIpAddress)),
			f("instance-lifecycle", "spot"),
			f("architecture", "arm64"),
			f("iam-instance-profile.arn", "*/app"),
			f("instance.group-id", "sg-0123456789abcdef0"),
			f("block-device-mapping.volume-id", aws.ToString(x.BlockDeviceMappings[0].Ebs.VolumeId)),
			f("launch-time", "2000-01-01T00:00:00*"),
			f("tenancy", "dedicated"),
			f("ami-launch-index", "0"),
			f("root-device-type", "ebs"),
			f("root-device-name", "/dev/xvda"),
			f("metadata-options.http-tokens", "required"),
			f("metadata-options.http-endpoint", "enabled"),
			f("metadata-options.http-put-response-hop-limit", "2"),
			f("instance-state-code", "16"),
		}
		for _, flt := range tests {
			d, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{flt}})
			mustOK(t, err)
			got := describeIDs(d)
			want := []string{id}
			switch aws.ToString(flt.Name) {
			case "launch-time", "ami-launch-index", "root-device-type", "root-device-name",
				"metadata-options.http-endpoint", "instance-state-code":
				want = append(want, other...)
			}
			if !slices.Equal(got, want) {
				t.Errorf("filter %s=%v: got %v, want %v", *flt.Name, flt.Values, got, want)
			}
		}
		st, err := c.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{Filters: []types.Filter{
			f("availability-zone", "us-east-1a"), f("instance-state-code", "16"), f("instance-status.reachability", "passed"),
			f("system-status.status", "ok"), f("instance-state-name", "running")}})
		mustOK(t, err)
		if len(st.InstanceStatuses) != 1 || aws.ToString(st.InstanceStatuses[0].InstanceId) != id {
			t.Fatalf("status filters: %+v", st.InstanceStatuses)
		}
	})
}

func TestFilterPatternsUnicode(t *testing.T) {
	for _, tt := range []struct {
		pat, s string
		want   bool
	}{
		{"café*", "café-1", true},
		{"*é", "xé", true},
		{"é?x", "éx", true},
		{"日本*", "日本語", true},
		{"日本*", "日x", false},
		{`\*é`, "*é", true},
	} {
		if got := compilePattern(tt.pat)(tt.s); got != tt.want {
			t.Errorf("pattern %q on %q = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}

func TestFilterValueInvalidUTF8(t *testing.T) {
	s := New(noThrottle)
	_, err := s.EC2().DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{
		Filters: []types.Filter{{Name: aws.String("tag:k"), Values: []string{"\xf4*"}}},
	})
	wantCode(t, err, "InvalidParameterValue")
}
