package opsworks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/opsworks"
	"github.com/ec2ops/ec2ops/patching"
)

// The examples run the simulator in real time with every duration
// multiplied by 0.001, so they need no AWS account.
const exampleScale = 0.001

func exampleSim(layer string, n int) *cloudsim.Sim {
	sim := cloudsim.New(func(o *cloudsim.Options) { o.Seed = 7; o.TimeScale = exampleScale })
	_, err := sim.EC2().RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(int32(n)), MaxCount: aws.Int32(int32(n)),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance,
			Tags: []types.Tag{{Key: aws.String("Layer"), Value: aws.String(layer)}}}},
	})
	if err != nil {
		panic(err)
	}
	time.Sleep(time.Duration(float64(10*time.Minute) * exampleScale)) // agents register
	return sim
}

func exampleRunner(sim *cloudsim.Sim) *patching.Runner {
	return patching.NewRunner(sim.SSM(), func(o *patching.RunnerOptions) {
		o.PollInterval, o.MaxPollInterval, o.ResultsInterval = 20*time.Millisecond, 50*time.Millisecond, 20*time.Millisecond
	})
}

// A Chef run list on one layer: a why-run first (nothing changes), then
// for real.
func ExampleConfigurator_Plan() {
	sim := exampleSim("web", 6)
	c := opsworks.New(exampleRunner(sim), sim.EC2())
	stack := &opsworks.Stack{
		Name:    "shop",
		Backend: &opsworks.Chef{Source: opsworks.Source{Type: "S3", Path: "https://s3.amazonaws.com/acme-cookbooks/shop.tar.gz"}},
		Layers: []opsworks.Layer{{
			Name:     "web",
			Selector: []opsworks.Selector{{Key: "tag:Layer", Values: []string{"web"}}},
			RunLists: map[opsworks.Event][]string{opsworks.Deploy: {"nginx::default", "shop::deploy"}},
		}},
	}
	ctx := context.Background()
	plan, err := c.Plan(ctx, stack, opsworks.Deployment{Event: opsworks.Deploy, DryRun: true})
	if err != nil {
		panic(err)
	}
	lr := plan.Layers[0]
	fmt.Printf("layer %s: %s on %d instance(s), run list %v\n", lr.Layer, lr.Document, len(lr.Instances()), lr.RunList)
	dry, err := c.Apply(ctx, plan)
	fmt.Println("why-run:", dry.Count(opsworks.WouldChange), "would change, error:", err)
	rep, err := c.Run(ctx, stack, opsworks.Deployment{Event: opsworks.Deploy})
	fmt.Println("run:", rep.Count(opsworks.Changed), "changed, error:", err)
	rep, err = c.Run(ctx, stack, opsworks.Deployment{Event: opsworks.Deploy})
	fmt.Println("rerun:", rep.Count(opsworks.Unchanged), "unchanged, error:", err)
	// Output:
	// layer web: AWS-ApplyChefRecipes on 6 instance(s), run list [nginx::default shop::deploy]
	// why-run: 6 would change, error: <nil>
	// run: 6 changed, error: <nil>
	// rerun: 6 unchanged, error: <nil>
}

// Puppet's detailed exit codes become per-instance outcomes.
func ExamplePuppet() {
	sim := exampleSim("app", 4)
	c := opsworks.New(exampleRunner(sim), sim.EC2(), func(o *opsworks.Options) { o.FailureThreshold = "100%" })
	bad := sim.Instances()[0].ID // the script runs with the simulator locked: no Sim calls inside
	sim.ScriptConfigManagement(func(r cloudsim.ConfigRun) bool { return r.Tool == "puppet" && r.InstanceID == bad })
	stack := &opsworks.Stack{Name: "pup", Backend: &opsworks.Puppet{},
		Layers: []opsworks.Layer{{Name: "app", Selector: []opsworks.Selector{{Key: "tag:Layer", Values: []string{"app"}}},
			RunLists: map[opsworks.Event][]string{opsworks.Configure: {"role::app"}}}}}
	rep, err := c.Run(context.Background(), stack, opsworks.Deployment{Event: opsworks.Configure})
	fmt.Println("changed:", rep.Count(opsworks.Changed), "failed:", rep.Count(opsworks.Failed)+rep.Count(opsworks.ChangedWithFailures))
	fmt.Println(err != nil)
	// Output:
	// changed: 3 failed: 1
	// true
}

// Import a stack saved with the AWS CLI before OpsWorks was retired.
func ExampleImport() {
	read := func(n string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "export", n+".json"))
		if err != nil {
			panic(err)
		}
		return b
	}
	res, err := opsworks.Import(opsworks.ImportInput{Stacks: read("stacks"), Layers: read("layers"), Apps: read("apps"), Instances: read("instances")})
	if err != nil {
		panic(err)
	}
	for _, l := range res.Stack.Layers {
		fmt.Println(l.Name, "Setup:", l.RunLists[opsworks.Setup], "instances:", res.Instances[l.Name])
	}
	fmt.Println("not carried over:", len(res.NotCarried), "items; first:", res.NotCarried[0].Item)
	// Output:
	// web Setup: [recipe[nginx::default] recipe[shop::setup]] instances: [i-0aaaaaaaaaaaaaaa1 i-0aaaaaaaaaaaaaaa2]
	// db-master Setup: [recipe[shop::db_tuning]] instances: [i-0aaaaaaaaaaaaaaa3]
	// not carried over: 18 items; first: Berkshelf
}

// Custom JSON precedence: stack < layer < deployment; null removes a key.
func ExampleMergeAttributes() {
	stack := map[string]any{"app": map[string]any{"port": 80, "log": "info"}, "debug": true}
	layer := map[string]any{"app": map[string]any{"port": 8080}}
	deployment := map[string]any{"app": map[string]any{"release": "v2"}, "debug": nil}
	b, _ := json.Marshal(opsworks.MergeAttributes(stack, layer, deployment))
	fmt.Println(string(b))
	// Output:
	// {"app":{"log":"info","port":8080,"release":"v2"}}
}
