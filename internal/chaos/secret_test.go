package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/ami"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/lifecycle"
	"github.com/ec2ops/ec2ops/opsworks"
	"github.com/ec2ops/ec2ops/patching"
)

// capture is a debug-level slog handler that keeps every record, and an
// observer that keeps every event.
type capture struct {
	mu  sync.Mutex
	buf bytes.Buffer
	rec ec2ops.Recorder
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *capture) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(c, &slog.HandlerOptions{Level: slog.LevelDebug, AddSource: false}))
}

// check fails if the canary (or the base64 of the user data carrying it)
// is in a log line, an event or any of errs.
func (c *capture) check(t *testing.T, what string, errs ...error) {
	t.Helper()
	c.mu.Lock()
	logs := c.buf.String()
	c.mu.Unlock()
	for _, needle := range []string{canary, canaryUserData} {
		if strings.Contains(logs, needle) {
			t.Errorf("%s: secret in the logs", what)
		}
		for _, e := range c.rec.Events() {
			if strings.Contains(fmt.Sprintf("%+v %v", e, e.Err), needle) {
				t.Errorf("%s: secret in event %+v", what, e)
			}
		}
		for _, err := range errs {
			if err != nil && strings.Contains(err.Error(), needle) {
				t.Errorf("%s: secret in error %v", what, err)
			}
		}
	}
	if logs == "" && len(c.rec.Events()) == 0 {
		t.Errorf("%s: nothing logged or observed: the check could not fail", what)
	}
}

// TestSecretsNeverLeak runs every strategy that handles user data or
// sensitive parameters, with faults (so error paths run too), a debug
// logger and an observer.
func TestSecretsNeverLeak(t *testing.T) {
	faulty := func(o *cloudsim.Options) {
		o.Seed = 5
		o.Faults.ThrottleRate, o.Faults.ServerErrorRate = 0.1, 0.02
	}
	t.Run("surge-rollout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sim := cloudsim.New(faulty)
			ids := fleetOf(t, sim, 3, map[string]string{"app": "web"})
			c := &capture{}
			sg := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{ImageID: newAMI}, func(o *lifecycle.Options) {
				o.RequestShare, o.Logger, o.Observer = 1, c.logger(), &c.rec
			})
			ro := lifecycle.NewRollout(sg, lifecycle.Selector{InstanceIDs: ids}, func(o *lifecycle.RolloutOptions) { o.MaxSurge = "2" })
			plan, err := ro.Plan(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			_, err = ro.Apply(context.Background())
			c.check(t, "rollout", err, fmt.Errorf("%+v", plan))
			// Safe defaults on every replacement: IMDSv2 required, the data
			// volume's encryption and KMS key carried over.
			for _, v := range sim.Instances() {
				if v.Tags[lifecycle.TagReplaces] == "" || !live(v) {
					continue
				}
				in, _ := sim.LaunchInput(v.ID)
				if in.MetadataOptions == nil || in.MetadataOptions.HttpTokens != types.HttpTokensStateRequired {
					t.Errorf("replacement %s does not require IMDSv2", v.ID)
				}
				ok := false
				for _, b := range in.BlockDeviceMappings {
					if aws.ToString(b.DeviceName) == "/dev/sdf" && b.Ebs != nil && aws.ToBool(b.Ebs.Encrypted) &&
						strings.HasSuffix(aws.ToString(b.Ebs.KmsKeyId), "key/1234abcd-12ab-34cd-56ef-1234567890ab") {
						ok = true
					}
				}
				if !ok {
					t.Errorf("replacement %s: data volume encryption or KMS key lost: %+v", v.ID, in.BlockDeviceMappings)
				}
			}
			// Opting out keeps the old instance's metadata setting.
			sg2 := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{ImageID: oldAMI}, func(o *lifecycle.Options) { o.RequestShare, o.AllowIMDSv1 = 1, true })
			var cur []string
			for _, v := range sim.Instances() {
				if live(v) && v.Tags["app"] == "web" {
					cur = append(cur, v.ID)
				}
			}
			r, err := sg2.Replace(context.Background(), cur[0])
			if err != nil {
				t.Fatal(err)
			}
			if in, _ := sim.LaunchInput(r.NewID); in.MetadataOptions != nil && in.MetadataOptions.HttpTokens == types.HttpTokensStateRequired {
				// The replaced instance required IMDSv2 itself, so keeping its setting keeps "required".
				t.Logf("AllowIMDSv1 kept the old instance's setting: %v", in.MetadataOptions.HttpTokens)
			}
		})
	})
	t.Run("bake", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sim := cloudsim.New(faulty)
			base := sim.AddImage(cloudsim.AddImageInput{Name: "al2023-base", Owner: "amazon", Public: true})
			c := &capture{}
			runner := patching.NewRunner(sim.SSM(), fastRunner, func(o *patching.RunnerOptions) { o.Logger, o.Observer = c.logger(), &c.rec })
			b := ami.NewBaker(sim.EC2(), func(o *ami.BakerOptions) {
				o.Runner, o.Logger, o.Observer = runner, c.logger(), &c.rec
			})
			r := bakeRecipe(base)
			plan, perr := b.PlanRecipe(r)
			_, err := b.Bake(context.Background(), r)
			c.check(t, "bake", err, perr, errors.New(plan.String()))
		})
	})
	t.Run("run-command-sensitive", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sim := cloudsim.New(func(o *cloudsim.Options) { faulty(o); o.Faults.SSM.CommandFailureRate = 1 })
			ids := fleetOf(t, sim, 2, map[string]string{"role": "web"})
			time.Sleep(5 * time.Minute)
			c := &capture{}
			r := patching.NewRunner(sim.SSM(), fastRunner, func(o *patching.RunnerOptions) {
				o.Logger, o.Observer, o.FetchOutput = c.logger(), &c.rec, patching.OutputAll
			})
			_, err := r.Run(context.Background(), patching.Command{DocumentName: "AWS-RunShellScript", InstanceIDs: ids,
				Parameters: map[string][]string{"commands": {"login --token " + canary}, "token": {canary}}, Sensitive: []string{"commands", "token"}})
			if err == nil {
				t.Fatal("every invocation was set to fail")
			}
			c.check(t, "run command", err)
		})
	})
	t.Run("opsworks-sensitive-attributes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sim := cloudsim.New(func(o *cloudsim.Options) { faulty(o); o.Faults.SSM.CommandFailureRate = 0.5 })
			fleetOf(t, sim, 3, map[string]string{"Layer": "web"})
			time.Sleep(5 * time.Minute)
			c := &capture{}
			cf := newConfigurator(sim, func(o *opsworks.Options) { o.Logger, o.Observer, o.FailureThreshold = c.logger(), &c.rec, "100%" })
			plan, perr := cf.Plan(context.Background(), chefStack(), opsworks.Deployment{Event: opsworks.Setup})
			_, err := cf.Run(context.Background(), chefStack(), opsworks.Deployment{Event: opsworks.Setup})
			c.check(t, "opsworks", err, perr, errors.New(plan.String()))
		})
	})
}

// TestPublicSharingRefused: the Distributor refuses to make an AMI public,
// before any call.
func TestPublicSharingRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := quietSim(3)
		img := sim.AddImage(cloudsim.AddImageInput{Name: "web-1"})
		sim.ResetCounters()
		d := ami.NewDistributor(sim.EC2(), "us-east-1", func(r string) ami.DistributeAPI { return sim.EC2In(r) })
		for _, acct := range []string{"all", "ALL", "*"} {
			_, err := d.Apply(context.Background(), ami.Distribution{ImageID: img, Accounts: []string{acct}})
			if !errors.Is(err, ec2ops.ErrInvalidInput) {
				t.Errorf("sharing with %q: %v, want an input error", acct, err)
			}
		}
		if n := sim.Calls()["ec2:ModifyImageAttribute"]; n != 0 {
			t.Fatalf("%d ModifyImageAttribute calls", n)
		}
	})
}
