package ami

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.uber.org/mock/gomock"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/ami/amimock"
	"github.com/ec2ops/ec2ops/internal/awsid"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
)

func TestResolverOnSimulator(t *testing.T) {
	sim := cloudsim.New()
	now := time.Now()
	add := func(name string, age time.Duration, mods ...func(*cloudsim.AddImageInput)) string {
		in := cloudsim.AddImageInput{Name: name, Owner: "amazon", Public: true, Created: now.Add(-age)}
		for _, m := range mods {
			m(&in)
		}
		return sim.AddImage(in)
	}
	add("al2023-ami-2023.5-x86_64", 30*day)
	tieA := add("al2023-ami-2023.6.a-x86_64", 2*day)
	tieB := add("al2023-ami-2023.6.b-x86_64", 2*day)
	add("al2023-ami-2023.7-x86_64", time.Hour, func(in *cloudsim.AddImageInput) { in.DeprecateAt = now.Add(-time.Minute) })
	add("al2023-ami-2023.8-x86_64", time.Minute, func(in *cloudsim.AddImageInput) { in.Disabled = true })
	add("al2023-ami-2023.9-arm64", time.Minute, func(in *cloudsim.AddImageInput) { in.Architecture = types.ArchitectureValuesArm64 })
	// A look-alike in another account: never chosen because Owners is required.
	sim.AddImage(cloudsim.AddImageInput{Name: "al2023-ami-2024.0-x86_64", Owner: "666666666666", Public: true})
	mine := sim.AddImage(cloudsim.AddImageInput{Name: "web-7", Tags: map[string]string{TagFamily: "web"}, Created: now.Add(-time.Hour)})

	r := NewResolver(sim.EC2(), func(o *ResolverOptions) { o.Parameters = sim.SSM() })
	ctx := context.Background()
	q := Query{Owners: []string{"amazon"}, Name: "al2023-ami-*", Architecture: types.ArchitectureValuesX8664}
	im, err := r.Newest(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if im.ID != tieB {
		t.Errorf("newest = %s (%s), want %s: deprecated and disabled excluded, ties broken by name (not %s)", im.ID, im.Name, tieB, tieA)
	}
	q.IncludeDeprecated = true
	if im, _ := r.Newest(ctx, q); im.Name != "al2023-ami-2023.7-x86_64" {
		t.Errorf("with deprecated: %s", im.Name)
	}
	got, err := r.Newest(ctx, Query{Owners: []string{"self"}, Tags: map[string]string{TagFamily: "web"}})
	if err != nil || got.ID != mine {
		t.Errorf("by tag: %v %v", got, err)
	}
	_, err = r.Newest(ctx, Query{Owners: []string{"amazon"}, Name: "ubuntu-*"})
	var nm *NoMatchError
	if !errors.As(err, &nm) || !errors.Is(err, ec2ops.ErrNotFound) || !strings.Contains(err.Error(), "name=ubuntu-*") {
		t.Errorf("no match: %v", err)
	}
	if _, err := r.Newest(ctx, Query{Name: "al2023-*"}); !errors.Is(err, ec2ops.ErrInvalidInput) {
		t.Errorf("no owners: %v", err)
	}

	const param = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
	sim.PutParameter(param, tieA)
	if im, err := r.FromParameter(ctx, param, false); err != nil || im.ID != tieA {
		t.Errorf("FromParameter: %v %v", im, err)
	}
	if _, err := r.FromParameter(ctx, "/aws/service/none", false); !errors.Is(err, ec2ops.ErrNotFound) {
		t.Errorf("missing parameter: %v", err)
	}

	manifest := `{"builds":[
	 {"name":"web","builder_type":"amazon-ebs","build_time":1700000000,"artifact_id":"us-east-1:` + tieA + `,eu-west-1:ami-0aaaaaaaaaaaaaaaa","packer_run_uuid":"r1"},
	 {"name":"web","builder_type":"amazon-ebs","build_time":1700000100,"artifact_id":"us-east-1:` + mine + `","packer_run_uuid":"r2"}],
	 "last_run_uuid":"r2"}`
	if im, err := r.FromPackerManifest(ctx, []byte(manifest), "us-east-1", "web"); err != nil || im.ID != mine {
		t.Errorf("packer manifest: %v %v", im, err)
	}
	if _, err := r.FromPackerManifest(ctx, []byte(manifest), "eu-west-1", ""); !errors.Is(err, ec2ops.ErrNotFound) {
		t.Errorf("last run has no eu-west-1 artifact: %v", err)
	}
	policyCovers(t, sim, r.Policy())
}

func TestResolverDescribeImagesInput(t *testing.T) {
	ctrl := gomock.NewController(t)
	m := amimock.NewMockImagesAPI(ctrl)
	page := 0
	m.EXPECT().DescribeImages(gomock.Any(), gomock.Any()).Times(2).DoAndReturn(func(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
		want := []string{"name=app-*", "tag:env=prod", "architecture=arm64", "virtualization-type=hvm", "state=available"}
		var got []string
		for _, f := range in.Filters {
			got = append(got, aws.ToString(f.Name)+"="+strings.Join(f.Values, "|"))
		}
		if strings.Join(got, ",") != strings.Join(want, ",") || in.Owners[0] != "123456789012" || aws.ToInt32(in.MaxResults) != 1000 {
			t.Errorf("input %v owners %v", got, in.Owners)
		}
		page++
		if page == 1 {
			return &ec2.DescribeImagesOutput{NextToken: aws.String("p2"), Images: []types.Image{{ImageId: aws.String("ami-00000001"), CreationDate: aws.String("2025-01-01T00:00:00.000Z")}}}, nil
		}
		if aws.ToString(in.NextToken) != "p2" {
			t.Errorf("second page token %v", in.NextToken)
		}
		return &ec2.DescribeImagesOutput{Images: []types.Image{{ImageId: aws.String("ami-00000002"), CreationDate: aws.String("2025-02-01T00:00:00.000Z")}}}, nil
	})
	r := NewResolver(m)
	im, err := r.Newest(context.Background(), Query{Owners: []string{"123456789012"}, Name: "app-*", Tags: map[string]string{"env": "prod"}, Architecture: types.ArchitectureValuesArm64})
	if err != nil || im.ID != "ami-00000002" {
		t.Errorf("newest across pages: %v %v", im, err)
	}
}

func FuzzParsePackerManifest(f *testing.F) {
	f.Add([]byte(`{"builds":[{"artifact_id":"us-east-1:ami-12345678"}],"last_run_uuid":""}`))
	f.Add([]byte(`{"builds":[{"artifact_id":"us-east-1:ami-12345678,eu-west-1:ami-0123456789abcdef0"}]}`))
	f.Add([]byte(`{"builds":[{"artifact_id":":"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParsePackerManifest(data)
		if err != nil {
			if !errors.Is(err, ec2ops.ErrInvalidInput) {
				t.Fatalf("error %v is not an input error", err)
			}
			return
		}
		for _, b := range m.Builds {
			arts, err := b.Artifacts()
			if err != nil {
				t.Fatalf("accepted manifest with a bad artifact: %v", err)
			}
			for _, id := range arts {
				if !awsid.Image(id) {
					t.Fatalf("bad id %q", id)
				}
			}
		}
	})
}
