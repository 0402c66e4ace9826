package ami_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/ami"
	"github.com/ec2ops/ec2ops/internal/mototest"
)

// motoCreateImage works around moto 5.2.1, which answers HTTP 500 to
// CreateImage with snapshot TagSpecifications (EC2 accepts them: CreateImage
// API reference, TagSpecifications "image" and "snapshot"): it drops the
// snapshot tags and passes everything else to the real client over HTTP.
type motoCreateImage struct{ *ec2.Client }

func (m motoCreateImage) CreateImage(ctx context.Context, in *ec2.CreateImageInput, optFns ...func(*ec2.Options)) (*ec2.CreateImageOutput, error) {
	cp := *in
	cp.TagSpecifications = nil
	for _, ts := range in.TagSpecifications {
		if ts.ResourceType != types.ResourceTypeSnapshot {
			cp.TagSpecifications = append(cp.TagSpecifications, ts)
		}
	}
	return m.Client.CreateImage(ctx, &cp, optFns...)
}

func wireInstance(t *testing.T, c *ec2.Client) string {
	t.Helper()
	out, err := c.RunInstances(t.Context(), &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), InstanceType: types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	return aws.ToString(out.Instances[0].InstanceId)
}

// TestWireSnapshotResolveDistributeRetire drives the strategies over HTTP
// against moto_server: CreateImage (Baker.Snapshot), DescribeImages filters
// (Resolver), CopyImage and ModifyImageAttribute (Distributor),
// DeregisterImage (Retention).
func TestWireSnapshotResolveDistributeRetire(t *testing.T) {
	cfg := mototest.Config(t)
	c := ec2.NewFromConfig(cfg)
	ctx := t.Context()
	id := wireInstance(t, c)

	b := ami.NewBaker(motoCreateImage{c}, func(o *ami.BakerOptions) { o.PollInterval = 20 * time.Millisecond })
	res, err := b.Snapshot(ctx, ami.Snapshot{InstanceID: id, Name: "wire-web-{date}", Family: "web", Tags: map[string]string{"team": "wire"}})
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if res.Image.State != types.ImageStateAvailable || res.Image.Tags[ami.TagFamily] != "web" {
		t.Fatalf("image %+v", res.Image)
	}
	again, err := b.Snapshot(ctx, ami.Snapshot{InstanceID: id, Name: "wire-web-{date}", Family: "web", Tags: map[string]string{"team": "wire"}})
	if err != nil || !again.Adopted || again.Image.ID != res.Image.ID {
		t.Fatalf("rerun did not adopt: %+v %v", again, err)
	}

	r := ami.NewResolver(c)
	im, err := r.Newest(ctx, ami.Query{Owners: []string{"self"}, Name: "wire-web-*", Tags: map[string]string{ami.TagFamily: "web"}, Architecture: types.ArchitectureValuesX8664,
		Virtualization: types.VirtualizationTypeParavirtual}) // moto images inherit ami-12c6146b's paravirtual
	if err != nil || im.ID != res.Image.ID {
		t.Fatalf("Resolver.Newest: %+v %v", im, err)
	}
	if _, err := r.Newest(ctx, ami.Query{Owners: []string{"self"}, Name: "wire-db-*"}); !errors.Is(err, ec2ops.ErrNotFound) {
		t.Errorf("no match: %v", err)
	}

	d := ami.NewDistributorFromConfig(cfg, func(o *ami.DistributorOptions) { o.PollInterval = 20 * time.Millisecond })
	dist, err := d.Apply(ctx, ami.Distribution{ImageID: res.Image.ID, Regions: []ami.RegionCopy{{Region: "us-west-2"}}, Accounts: []string{"111122223333"}})
	if err != nil {
		t.Fatalf("Distributor.Apply: %v", err)
	}
	west := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.Region = "us-west-2" })
	copyID := dist.Images["us-west-2"].ID
	attr, err := west.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{ImageId: aws.String(copyID), Attribute: types.ImageAttributeNameLaunchPermission})
	if err != nil || len(attr.LaunchPermissions) != 1 || aws.ToString(attr.LaunchPermissions[0].UserId) != "111122223333" {
		t.Errorf("copy %s permissions: %+v %v", copyID, attr, err)
	}

	// Retire: an image nobody uses goes; the shared one stays unless forced.
	id2 := wireInstance(t, c)
	_, err = c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(id2), Name: aws.String("wire-web-old"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeImage, Tags: []types.Tag{{Key: aws.String(ami.TagFamily), Value: aws.String("web")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id, id2}}); err != nil {
		t.Fatal(err)
	}
	ret := ami.NewRetention(c, autoscaling.NewFromConfig(cfg), []ami.Family{{Name: "web", TagKey: ami.TagFamily, TagValue: "web", KeepNewest: 1, DeregisterAfter: time.Nanosecond}},
		func(o *ami.RetentionOptions) { o.Force = true })
	plan, err := ret.Plan(ctx)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if c := plan.Counts(); c[ami.Deregister] != 1 || c[ami.Keep] != 1 {
		t.Fatalf("plan %v:\n%s", c, plan.Plan())
	}
	if _, err := ret.Apply(ctx, plan); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []types.Filter{{Name: aws.String("tag:" + ami.TagFamily), Values: []string{"web"}}}})
	if err != nil || len(out.Images) != 1 {
		t.Errorf("after retention: %+v %v", out, err)
	}
}

// TestWireImageDeprecationShape checks the wire shape of
// EnableImageDeprecation and DisableImageDeprecation, which moto does not
// implement, against an httptest server answering the documented EC2
// query response.
func TestWireImageDeprecationShape(t *testing.T) {
	var got []url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		v, _ := url.ParseQuery(string(body))
		got = append(got, v)
		action := v.Get("Action")
		w.Header().Set("Content-Type", "text/xml")
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>
<`+action+`Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <return>true</return>
</`+action+`Response>`)
	}))
	defer srv.Close()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""), BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1}
	c := ec2.NewFromConfig(cfg)
	ctx := context.Background()

	at := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Minute)
	ret := ami.NewRetention(c, autoscaling.NewFromConfig(cfg), []ami.Family{{Name: "web", NamePrefix: "web-"}})
	plan := &ami.RetentionPlan{Decisions: []ami.Decision{{Image: ami.Image{ID: "ami-0123456789abcdef0"}, Family: "web", Action: ami.Deprecate, DeprecateAt: at}}}
	if _, err := ret.Apply(ctx, plan); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	d := ami.NewDistributorFromConfig(cfg)
	if err := d.Undeprecate(ctx, "", "ami-0123456789abcdef0"); err != nil {
		t.Fatalf("Undeprecate: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("%d requests", len(got))
	}
	if v := got[0]; v.Get("Action") != "EnableImageDeprecation" || v.Get("ImageId") != "ami-0123456789abcdef0" || v.Get("DeprecateAt") != at.Format("2006-01-02T15:04:05Z") {
		t.Errorf("EnableImageDeprecation request %v", v)
	}
	if v := got[1]; v.Get("Action") != "DisableImageDeprecation" || v.Get("ImageId") != "ami-0123456789abcdef0" {
		t.Errorf("DisableImageDeprecation request %v", v)
	}
}
