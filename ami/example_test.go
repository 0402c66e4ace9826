package ami_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/ami"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
)

// The examples run on the simulator with time compressed 10,000 times, so
// a 10-minute bake takes a few tens of milliseconds.
const scale = 1e-4

func newSim() *cloudsim.Sim {
	return cloudsim.New(func(o *cloudsim.Options) { o.Seed = 42; o.TimeScale = scale })
}

// instantRunner stands in for patching.CommandRunner.
type instantRunner struct{ calls int }

func (r *instantRunner) RunShell(ctx context.Context, ids []string, commands []string) error {
	r.calls++
	return nil
}

func ExampleResolver_Newest() {
	sim := newSim()
	now := time.Now()
	sim.AddImage(cloudsim.AddImageInput{Name: "al2023-ami-2023.6.20250101-x86_64", Owner: "amazon", Public: true, Created: now.Add(-60 * 24 * time.Hour)})
	sim.AddImage(cloudsim.AddImageInput{Name: "al2023-ami-2023.7.20250301-x86_64", Owner: "amazon", Public: true, Created: now.Add(-24 * time.Hour)})
	sim.AddImage(cloudsim.AddImageInput{Name: "al2023-ami-2023.7.20250301-arm64", Owner: "amazon", Public: true, Created: now.Add(-24 * time.Hour),
		Architecture: types.ArchitectureValuesArm64})

	r := ami.NewResolver(sim.EC2())
	im, err := r.Newest(context.Background(), ami.Query{Owners: []string{"amazon"}, Name: "al2023-ami-2023.*", Architecture: types.ArchitectureValuesX8664})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(im.Name, im.Architecture)
	_, err = r.Newest(context.Background(), ami.Query{Owners: []string{"amazon"}, Name: "ubuntu/*"})
	fmt.Println(err)
	// Output:
	// al2023-ami-2023.7.20250301-x86_64 x86_64
	// no image matched DescribeImages (owners=amazon, name=ubuntu/*, virtualization-type=hvm, state=available)
}

func ExampleBaker_Bake() {
	sim := newSim()
	base := sim.AddImage(cloudsim.AddImageInput{Name: "al2023-ami-2023.7-x86_64", Owner: "amazon", Public: true})
	runner := &instantRunner{}
	b := ami.NewBaker(sim.EC2(), func(o *ami.BakerOptions) {
		o.Runner = runner
		o.PollInterval = 2 * time.Millisecond
		o.Now = func() time.Time { return time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC) }
	})
	res, err := b.Bake(context.Background(), ami.Recipe{
		Name: "web-{date}", Family: "web", BaseImage: base, InstanceProfile: "ec2ops-builder",
		Layers: []ami.Layer{
			{Name: "patches", UserData: "#!/bin/bash\ndnf -y upgrade --security\n"},
			{Name: "app", Commands: []string{"dnf -y install nginx", "systemctl enable nginx"}},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Image.Name, res.Image.State, "family:", res.Image.Tags[ami.TagFamily])
	fmt.Println("runner calls:", runner.calls)
	time.Sleep(10 * time.Millisecond) // the builder shuts down
	v, _ := sim.Instance(res.BuilderID)
	fmt.Println("builder:", v.State)
	// Output:
	// web-20250301 available family: web
	// runner calls: 2
	// builder: terminated
}

func ExampleRetention_Plan() {
	sim := newSim()
	now := time.Now()
	var ids []string
	for i, age := range []int{3, 20, 45, 100, 200} {
		ids = append(ids, sim.AddImage(cloudsim.AddImageInput{Name: fmt.Sprintf("web-%d", i), Created: now.Add(-time.Duration(age) * 24 * time.Hour),
			Tags: map[string]string{ami.TagFamily: "web"}}))
	}
	// An instance still runs the 100-day-old image.
	if _, err := sim.EC2().RunInstances(context.Background(), &ec2.RunInstancesInput{ImageId: aws.String(ids[3]), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}); err != nil {
		fmt.Println(err)
		return
	}
	r := ami.NewRetention(sim.EC2(), sim.AutoScaling(), []ami.Family{{
		Name: "web", TagKey: ami.TagFamily, TagValue: "web", KeepNewest: 2,
		DeprecateAfter: 30 * 24 * time.Hour, DeregisterAfter: 90 * 24 * time.Hour,
	}})
	plan, err := r.Plan(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range plan.Decisions {
		fmt.Printf("%s %-10s %s\n", d.Image.Name, d.Action, strings.Join(d.Reasons, "; "))
	}
	// Output:
	// web-0 keep       1st newest of web (keeps 2)
	// web-1 keep       2nd newest of web (keeps 2)
	// web-2 deprecate  45d old, past DeprecateAfter 30d
	// web-3 deprecate  100d old, past DeregisterAfter 90d; in use by i-0bc42052d1fae9470; deprecated instead
	// web-4 deregister 200d old, past DeregisterAfter 90d; sharing checked at apply (kept if shared)
}

func ExampleBalance() {
	rec, err := ami.Balance(ami.BalancerInput{
		Layers: []ami.BalancerLayer{
			{Layer: ami.Layer{Name: "os"}, ChangesPerWeek: 0.25},
			{Layer: ami.Layer{Name: "patches", Commands: []string{"dnf -y upgrade --security"}}, BakeMinutes: 6, BootMinutes: 4, ChangesPerWeek: 1},
			{Layer: ami.Layer{Name: "runtime", Commands: []string{"dnf -y install java-21-amazon-corretto-headless"}}, BakeMinutes: 3, BootMinutes: 2.5, ChangesPerWeek: 0.1},
			{Layer: ami.Layer{Name: "app", Commands: []string{"aws s3 cp s3://artifacts/app.jar /opt/app/"}}, BakeMinutes: 1, BootMinutes: 1, ChangesPerWeek: 3},
			{Layer: ami.Layer{Name: "config", UserData: "#cloud-config\nruncmd: [systemctl restart app]\n"}, BakeMinutes: 0.5, BootMinutes: 0.5, ChangesPerWeek: 7},
		},
		LaunchesPerDay: 40,
		BootSLOMinutes: 5,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rec.Strategy, "bakes", rec.Baked, "installs at boot", rec.AtBoot)
	fmt.Printf("boot %.1f min, %.2f build hours a week\n", rec.BootMinutes, rec.BuildHoursPerWeek)
	for _, t := range rec.Thresholds {
		if t.Input == "LaunchesPerDay" {
			fmt.Println(t.Text)
		}
	}
	ud, _ := rec.BootUserData()
	fmt.Println(strings.SplitN(ud, "\n", 2)[0])
	// Output:
	// Hybrid(4) bakes [os patches runtime app] installs at boot [config]
	// boot 1.5 min, 1.45 build hours a week
	// becomes FullAMI above 41.6 launches a day
	// becomes Hybrid(3) below 8.76 launches a day
	// #cloud-config
}

func ExampleDistributor_Apply() {
	sim := newSim()
	src := sim.AddImage(cloudsim.AddImageInput{Name: "web-20250301", RootGiB: 20})
	d := ami.NewDistributor(sim.EC2(), "us-east-1", func(region string) ami.DistributeAPI { return sim.EC2In(region) },
		func(o *ami.DistributorOptions) { o.PollInterval = 3 * time.Millisecond })
	res, err := d.Apply(context.Background(), ami.Distribution{
		ImageID:             src,
		Regions:             []ami.RegionCopy{{Region: "eu-west-1", KMSKeyID: "alias/web"}},
		Accounts:            []string{"111122223333"},
		OrganizationalUnits: []string{"arn:aws:organizations::111111111111:ou/o-abcdefghij/ou-ab12-cdefghij"},
		RequireIMDSv2:       true,
		DeprecateAt:         time.Now().Add(180 * 24 * time.Hour),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	copied := res.Images["eu-west-1"]
	fmt.Println(copied.Name, copied.State, copied.Tags[ami.TagCopyOf] == "us-east-1/"+src)
	_, err = d.Apply(context.Background(), ami.Distribution{ImageID: src, Accounts: []string{"all"}})
	fmt.Println(err)
	// Output:
	// web-20250301 available true
	// invalid Distribution.Accounts[0] "all": making an image public is refused; share with explicit account IDs, organizations or organizational units
}
