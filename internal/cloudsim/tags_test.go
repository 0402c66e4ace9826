package cloudsim

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestCreateAndDeleteTags(t *testing.T) {
	s := New(noThrottle)
	c := s.EC2()
	ctx := context.Background()
	ids := launch(t, c, runInput(2, withTags("Name", "web", "env", "prod"), func(in *ec2.RunInstancesInput) {
		in.LaunchTemplate = &types.LaunchTemplateSpecification{LaunchTemplateName: aws.String("web")}
	}))
	tagsOf := func(id string) map[string]string {
		t.Helper()
		return mustView(t, s, id).Tags
	}
	mustOK(t, func() error {
		_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: tagList("env", "staging", "team", "ops")})
		return err
	}())
	if got := tagsOf(ids[1]); got["env"] != "staging" || got["team"] != "ops" || got["Name"] != "web" || got["aws:ec2launchtemplate:version"] != "1" {
		t.Fatalf("tags after CreateTags: %v", got)
	}

	errTests := []struct {
		name string
		in   *ec2.CreateTagsInput
		code string
	}{
		{"aws: prefix", &ec2.CreateTagsInput{Resources: ids, Tags: tagList("aws:owner", "me")}, "InvalidParameterValue"},
		{"AWS: prefix", &ec2.CreateTagsInput{Resources: ids, Tags: tagList("AWS:owner", "me")}, "InvalidParameterValue"},
		{"no resources", &ec2.CreateTagsInput{Tags: tagList("a", "b")}, "MissingParameter"},
		{"no tags", &ec2.CreateTagsInput{Resources: ids}, "MissingParameter"},
		{"unknown instance", &ec2.CreateTagsInput{Resources: []string{ids[0], "i-0000000000000000d"}, Tags: tagList("a", "b")}, "InvalidInstanceID.NotFound"},
		{"unknown resource kind", &ec2.CreateTagsInput{Resources: []string{"web-1"}, Tags: tagList("a", "b")}, "InvalidID"},
		{"long key", &ec2.CreateTagsInput{Resources: ids, Tags: tagList(fmt.Sprintf("%0129d", 0), "b")}, "InvalidParameterValue"},
		{"dry run", &ec2.CreateTagsInput{Resources: ids, Tags: tagList("a", "b"), DryRun: aws.Bool(true)}, "DryRunOperation"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			before := tagsOf(ids[0])
			_, err := c.CreateTags(ctx, tt.in)
			wantCode(t, err, tt.code)
			if after := tagsOf(ids[0]); !maps.Equal(before, after) {
				t.Fatalf("failed call changed tags: %v -> %v", before, after)
			}
		})
	}

	// 50 user tags per resource; the aws: system tags do not count.
	var kv []string
	for i := range 47 { // 3 user tags already
		kv = append(kv, fmt.Sprintf("k%d", i), "v")
	}
	_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids[:1], Tags: tagList(kv...)})
	mustOK(t, err)
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids[:1], Tags: tagList("one-more", "v")})
	wantCode(t, err, "TagLimitExceeded")
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids[:1], Tags: tagList("env", "overwrite")})
	mustOK(t, err) // overwriting does not add a tag

	// DeleteTags: nil value deletes whatever the value, a value only if it
	// matches, no tags deletes every user tag.
	del := func(id string, tags ...types.Tag) {
		t.Helper()
		_, err := c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{id}, Tags: tags})
		mustOK(t, err)
	}
	del(ids[1], types.Tag{Key: aws.String("team")})
	del(ids[1], types.Tag{Key: aws.String("env"), Value: aws.String("prod")}) // value differs: kept
	if got := tagsOf(ids[1]); got["team"] != "" || got["env"] != "staging" {
		t.Fatalf("after DeleteTags: %v", got)
	}
	del(ids[1], types.Tag{Key: aws.String("env"), Value: aws.String("staging")})
	if _, ok := tagsOf(ids[1])["env"]; ok {
		t.Fatal("env not deleted by a matching value")
	}
	del(ids[0])
	if got := tagsOf(ids[0]); len(got) != 2 || got["aws:ec2launchtemplate:id"] == "" {
		t.Fatalf("after deleting all user tags: %v (system tags must stay)", got)
	}
	_, err = c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: ids[:1], Tags: []types.Tag{{Key: aws.String("aws:ec2launchtemplate:id")}}})
	wantCode(t, err, "InvalidParameterValue")
	_, err = c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{"i-0000000000000000e"}})
	wantCode(t, err, "InvalidInstanceID.NotFound")

	// DescribeInstances shows tags; DescribeTags lists and filters them.
	d, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids[1:]})
	mustOK(t, err)
	if n := len(d.Reservations[0].Instances[0].Tags); n != 3 {
		t.Fatalf("described tags = %v", d.Reservations[0].Instances[0].Tags)
	}
	dt, err := c.DescribeTags(ctx, &ec2.DescribeTagsInput{Filters: []types.Filter{f("resource-id", ids[1]), f("key", "Name", "aws:*")}})
	mustOK(t, err)
	if len(dt.Tags) != 3 || aws.ToString(dt.Tags[0].Key) != "Name" || dt.Tags[0].ResourceType != types.ResourceTypeInstance ||
		aws.ToString(dt.Tags[0].ResourceId) != ids[1] {
		t.Fatalf("DescribeTags = %+v", dt.Tags)
	}
	// Paginated: ids[0] has its 2 system tags, ids[1] Name and 2 system
	// tags; add 3 more to get 8 rows, 5 + 3 in pages of 5.
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids[:1], Tags: tagList("x", "1", "y", "2", "z", "3")})
	mustOK(t, err)
	p := ec2.NewDescribeTagsPaginator(c, &ec2.DescribeTagsInput{MaxResults: aws.Int32(5)})
	var pages []int
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		mustOK(t, err)
		pages = append(pages, len(page.Tags))
	}
	if len(pages) != 2 || pages[0] != 5 || pages[1] != 3 {
		t.Fatalf("DescribeTags pages = %v, want [5 3]", pages)
	}
	_, err = c.DescribeTags(ctx, &ec2.DescribeTagsInput{Filters: []types.Filter{f("tag:Name", "x")}})
	wantCode(t, err, "InvalidParameterValue")
}
