package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/ami"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/lifecycle"
	"github.com/ec2ops/ec2ops/opsworks"
	"github.com/ec2ops/ec2ops/patching"
	"github.com/ec2ops/ec2ops/recovery"
)

// without returns p minus one action.
func without(p ec2ops.Policy, action string) ec2ops.Policy {
	out := ec2ops.Policy{Version: p.Version}
	for _, st := range p.Statement {
		st.Action = slices.DeleteFunc(slices.Clone(st.Action), func(a string) bool { return a == action })
		if len(st.Action) > 0 {
			out.Statement = append(out.Statement, st)
		}
	}
	return out
}

// errEvents collects the errors of events, for strategies (the Watchdog)
// that report failures as events and keep going.
type errEvents struct {
	mu   sync.Mutex
	errs []string
}

func (e *errEvents) Observe(ev ec2ops.Event) {
	if ev.Err != nil {
		e.mu.Lock()
		e.errs = append(e.errs, ev.Err.Error())
		e.mu.Unlock()
	}
}

// policyCase is one strategy: its setup (unrestricted), its policy and
// its run under enforcement.
type policyCase struct {
	name  string
	setup func(t *testing.T, sim *cloudsim.Sim) (policy ec2ops.Policy, run func(ctx context.Context) error)
}

func registerInput(tg, id string) *elb.RegisterTargetsInput {
	return &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tg), Targets: []elbtypes.TargetDescription{{Id: aws.String(id)}}}
}

func quietSim(seed int64) *cloudsim.Sim {
	return cloudsim.New(func(o *cloudsim.Options) { o.Seed = seed })
}

// fleetOf launches n healthy instances tagged tags (no faults here).
func fleetOf(t *testing.T, sim *cloudsim.Sim, n int, tags map[string]string) []string {
	s := &seedRun{t: t, sim: sim, faults: map[string]int{}, impaired: map[string]bool{}}
	return launchHealthy(t, s, n, types.InstanceTypeM5Large, tags)
}

var policyCases = []policyCase{
	{"lifecycle.Surge+Rollout", func(t *testing.T, sim *cloudsim.Sim) (ec2ops.Policy, func(context.Context) error) {
		ids := fleetOf(t, sim, 2, map[string]string{"app": "web"})
		ctx := context.Background()
		tg := sim.CreateTargetGroup("web", 80)
		if _, err := sim.ELBv2().RegisterTargets(ctx, registerInput(tg, ids[0])); err != nil {
			t.Fatal(err)
		}
		alloc, _ := sim.EC2().AllocateAddress(ctx, &ec2.AllocateAddressInput{})
		if _, err := sim.EC2().AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: aws.String(ids[0])}); err != nil {
			t.Fatal(err)
		}
		sg := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{ImageID: newAMI}, func(o *lifecycle.Options) {
			o.RequestShare = 1
			o.ELB, o.TargetGroups = sim.ELBv2(), []string{tg}
		})
		ro := lifecycle.NewRollout(sg, lifecycle.Selector{Tags: map[string]string{"app": "web"}}, func(o *lifecycle.RolloutOptions) { o.MaxFailures = "0" })
		return ro.Policy(), func(ctx context.Context) error { _, err := ro.Apply(ctx); return err }
	}},
	{"lifecycle.Surge(handover)", func(t *testing.T, sim *cloudsim.Sim) (ec2ops.Policy, func(context.Context) error) {
		ids := fleetOf(t, sim, 1, map[string]string{"app": "web"})
		sg := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{ImageID: newAMI}, func(o *lifecycle.Options) {
			o.RequestShare = 1
			o.HandoverDataVolumes = true
		})
		return sg.Policy(), func(ctx context.Context) error { _, err := sg.Replace(ctx, ids[0]); return err }
	}},
	{"lifecycle.RootVolume", func(t *testing.T, sim *cloudsim.Sim) (ec2ops.Policy, func(context.Context) error) {
		ids := fleetOf(t, sim, 1, map[string]string{"app": "web"})
		v := lifecycle.NewRootVolume(sim.EC2(), lifecycle.Target{ImageID: newAMI}, func(o *lifecycle.Options) { o.RequestShare = 1 })
		return v.Policy(), func(ctx context.Context) error { _, err := v.Replace(ctx, ids[0]); return err }
	}},
	{"ami.Baker", func(t *testing.T, sim *cloudsim.Sim) (ec2ops.Policy, func(context.Context) error) {
		base := sim.AddImage(cloudsim.AddImageInput{Name: "al2023-base", Owner: "amazon", Public: true})
		runner := patching.NewRunner(sim.SSM(), fastRunner)
		b := ami.NewBaker(sim.EC2(), func(o *ami.BakerOptions) {
			o.Runner = runner // waits for the builder's agent (ami.AgentWaiter)
			o.PollInterval = 5 * time.Second
		})
		return b.Policy().Merge(runner.Policy()), func(ctx context.Context) error { _, err := b.Bake(ctx, bakeRecipe(base)); return err }
	}},
	{"ami.Retention", func(t *testing.T, sim *cloudsim.Sim) (ec2ops.Policy, func(context.Context) error) {
		now := time.Now()
		var imgs []string
		for i := range 8 {
			imgs = append(imgs, sim.AddImage(cloudsim.AddImageInput{Name: fmt.Sprintf("web-%03d", i),
				Created: now.Add(-time.Duration(5+20*i) * day), Tags: map[string]string{ami.TagFamily: "web"}}))
		}
		if _, err := sim.EC2().RunInstances(context.Background(), &ec2.RunInstancesInput{ImageId: aws.String(imgs[7]), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		fam := ami.Family{Name: "web", TagKey: ami.TagFamily, TagValue: "web", KeepNewest: 2, DeprecateAfter: 30 * day, DisableAfter: 60 * day, DeregisterAfter: 90 * day}
		r := ami.NewRetention(sim.EC2(), sim.AutoScaling(), []ami.Family{fam})
		return r.Policy(), func(ctx context.Context) error {
			plan, err := r.Plan(ctx)
			if err != nil {
				return err
			}
			_, err = r.Apply(ctx, plan)
			return err
		}
	}},
	{"ami.Distributor", func(t *testing.T, sim *cloudsim.Sim) (ec2ops.Policy, func(context.Context) error) {
		img := sim.AddImage(cloudsim.AddImageInput{Name: "web-1"})
		d := ami.NewDistributor(sim.EC2(), "us-east-1", func(r string) ami.DistributeAPI { return sim.EC2In(r) })
		x := ami.Distribution{ImageID: img, Regions: []ami.RegionCopy{{Region: "eu-west-1"}}, Accounts: []string{"111122223333"}}
		return d.Policy(), func(ctx context.Context) error { _, err := d.Apply(ctx, x); return err }
	}},
	{"recovery.Installer", func(t *testing.T, sim *cloudsim.Sim) (ec2ops.Policy, func(context.Context) error) {
		ids := fleetOf(t, sim, 2, map[string]string{"Role": "web"})
		inst := newInstaller(sim)
		stale := alarmInput(inst.AlarmName("i-0123456789abcdef0", "StatusCheckFailed_System"), "i-0123456789abcdef0")
		if _, err := sim.CloudWatch().PutMetricAlarm(context.Background(), stale); err != nil {
			t.Fatal(err)
		}
		_ = ids
		return inst.Policy(), func(ctx context.Context) error { _, err := inst.Reconcile(ctx, webFleet); return err }
	}},
	{"recovery.AutoRecovery", func(t *testing.T, sim *cloudsim.Sim) (ec2ops.Policy, func(context.Context) error) {
		fleetOf(t, sim, 2, map[string]string{"Role": "web"})
		a := recovery.NewAutoRecovery(sim.EC2())
		return a.Policy(), func(ctx context.Context) error {
			_, err := a.Set(ctx, webFleet, types.InstanceAutoRecoveryStateDisabled)
			return err
		}
	}},
	{"recovery.Watchdog", func(t *testing.T, sim *cloudsim.Sim) (ec2ops.Policy, func(context.Context) error) {
		ids := fleetOf(t, sim, 3, map[string]string{"Role": "web"})
		sim.ImpairSystem(ids[0])
		sim.ImpairInstance(ids[1])
		ev := &errEvents{}
		sg := lifecycle.NewSurge(sim.EC2(), lifecycle.Target{}, func(o *lifecycle.Options) { o.RequestShare = 1 })
		w := recovery.NewWatchdog(sim.EC2(), sg, func(o *recovery.WatchdogOptions) { o.Observer = ev; o.AWSRecoveryGrace = -1 })
		return w.Policy(), func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 40*time.Minute)
			defer cancel()
			err := w.Run(ctx, webFleet)
			if !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			if len(ev.errs) > 0 {
				return errors.New(strings.Join(ev.errs, "; "))
			}
			for _, id := range ids[:2] {
				if v, _ := sim.Instance(id); !v.Healthy {
					return fmt.Errorf("%s not healed", id)
				}
			}
			return nil
		}
	}},
	{"patching.Patcher", func(t *testing.T, sim *cloudsim.Sim) (ec2ops.Policy, func(context.Context) error) {
		ids := fleetOf(t, sim, 3, map[string]string{"role": "web"})
		for _, id := range ids {
			sim.SetMissingPatches(id, 2)
		}
		p := patching.NewPatcher(sim.SSM(), sim.EC2(), func(o *patching.PatchOptions) { o.Runner = []func(*patching.RunnerOptions){fastRunner} })
		return p.Policy(), func(ctx context.Context) error { _, err := p.Patch(ctx, ids); return err }
	}},
	{"opsworks.Configurator", func(t *testing.T, sim *cloudsim.Sim) (ec2ops.Policy, func(context.Context) error) {
		fleetOf(t, sim, 3, map[string]string{"Layer": "web"})
		time.Sleep(5 * time.Minute)
		c := newConfigurator(sim)
		return c.Policy(), func(ctx context.Context) error {
			_, err := c.Run(ctx, chefStack(), opsworks.Deployment{Event: opsworks.Setup})
			return err
		}
	}},
}

// TestLeastPrivilege runs every strategy under its own Policy() (it must
// succeed, and its policy must be valid IAM JSON), then under the policy
// minus each action it used (it must fail with an error naming the
// action), and prints the policy matrix.
func TestLeastPrivilege(t *testing.T) {
	matrix := map[string]map[string]string{}
	for _, pc := range policyCases {
		matrix[pc.name] = map[string]string{}
		var used []string
		t.Run(pc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sim := quietSim(11)
				pol, run := pc.setup(t, sim)
				checkPolicyJSON(t, pol)
				sim.ResetCounters()
				sim.EnforcePolicy(pol)
				if err := run(context.Background()); err != nil {
					t.Fatalf("under its own policy: %v (denied %v)", err, sim.Denied())
				}
				for a, n := range sim.Calls() {
					if n > 0 {
						used = append(used, a)
					}
				}
				sort.Strings(used)
				for _, a := range pol.Actions() {
					matrix[pc.name][a] = "listed"
				}
			})
			for _, a := range used {
				matrix[pc.name][a] = "used"
				ok := t.Run("without "+a, func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						sim := quietSim(11)
						pol, run := pc.setup(t, sim)
						sim.EnforcePolicy(without(pol, a))
						err := run(context.Background())
						if err == nil || !strings.Contains(err.Error(), a) {
							t.Errorf("without %s: err %v, want an error naming the action", a, err)
						}
					})
				})
				if ok {
					matrix[pc.name][a] = "used+required"
				}
			}
		})
	}
	if testing.Verbose() || os.Getenv("EC2OPS_POLICY_MATRIX") != "" {
		printMatrix(matrix)
	}
}

func checkPolicyJSON(t *testing.T, p ec2ops.Policy) {
	t.Helper()
	var doc struct {
		Version   string
		Statement []struct {
			Effect    string
			Action    []string
			Resource  []string
			Condition map[string]map[string]string
		}
	}
	if err := json.Unmarshal([]byte(p.JSON()), &doc); err != nil || doc.Version != "2012-10-17" || len(doc.Statement) == 0 {
		t.Fatalf("policy JSON: %v\n%s", err, p.JSON())
	}
	for _, st := range doc.Statement {
		if st.Effect != "Allow" || len(st.Action) == 0 || len(st.Resource) == 0 {
			t.Fatalf("statement %+v", st)
		}
		for _, a := range st.Action {
			if strings.Contains(a, "*") || !strings.Contains(a, ":") {
				t.Fatalf("action %q is not one exact action", a)
			}
		}
	}
}

func printMatrix(m map[string]map[string]string) {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		var acts []string
		for a := range m[n] {
			acts = append(acts, a)
		}
		sort.Strings(acts)
		var cells []string
		for _, a := range acts {
			mark := map[string]string{"listed": "L", "used": "U!", "used+required": "R"}[m[n][a]]
			cells = append(cells, a+"="+mark)
		}
		fmt.Printf("POLICY %s: %s\n", n, strings.Join(cells, " "))
	}
}
