package opsworks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awserr"
	"github.com/ec2ops/ec2ops/internal/awsid"
	"github.com/ec2ops/ec2ops/internal/quantity"
	"github.com/ec2ops/ec2ops/internal/ratelimit"
	"github.com/ec2ops/ec2ops/patching"
)

// Options configures a Configurator. Zero values are safe defaults.
type Options struct {
	// Observer receives progress events (operation "opsworks").
	Observer ec2ops.Observer
	// Logger receives structured logs; nil discards them. Attribute values
	// and sensitive parameters are never logged.
	Logger *slog.Logger
	// Canary is the size of a first wave of each layer's run (0: none).
	Canary int
	// Waves are cumulative shares of a layer's instances run after the
	// canary (patching.Waves). Default "100%": OpsWorks ran an event on
	// all of a layer's instances at once.
	Waves []string
	// MinHealthyPerAZ keeps that many instances of each AZ out of any one
	// wave (patching.Waves). Zero means 0 when Waves is the default
	// single wave, 1 otherwise.
	MinHealthyPerAZ int
	// MaxConcurrency is passed to each command (count or %). Default "50".
	MaxConcurrency string
	// FailureThreshold is how many failed instances (count or % of the
	// deployment) are tolerated; one more stops the deployment after the
	// current wave. Default "0".
	FailureThreshold string
	// SkipUnmanaged runs on the managed instances when some have no online
	// agent, and reports the others as Unmanaged. The default refuses.
	SkipUnmanaged bool
	// AgentWait is how long a lifecycle hook waits for a new instance's SSM
	// agent to come online before it gives up. Default 5m.
	AgentWait time.Duration
	// EC2Limiter paces DescribeInstances; nil uses the EC2 preset.
	EC2Limiter *ratelimit.Limiter
	// Runner adjusts the patching.Runner NewFromConfig builds.
	Runner []func(*patching.RunnerOptions)
}

// Configurator plans and runs lifecycle events on stacks through Run
// Command. It is safe for concurrent use.
type Configurator struct {
	run  CommandRunner
	ec2  EC2API
	opts Options
	log  *slog.Logger
}

// New returns a Configurator that runs commands with runner (usually a
// *patching.Runner) and resolves layers with ec2API.
func New(runner CommandRunner, ec2API EC2API, optFns ...func(*Options)) *Configurator {
	o := Options{}
	for _, f := range optFns {
		f(&o)
	}
	if len(o.Waves) == 0 {
		o.Waves = []string{"100%"}
	}
	if o.MaxConcurrency == "" {
		o.MaxConcurrency = "50"
	}
	if o.FailureThreshold == "" {
		o.FailureThreshold = "0"
	}
	if o.AgentWait <= 0 {
		o.AgentWait = 5 * time.Minute
	}
	if o.EC2Limiter == nil {
		o.EC2Limiter = ratelimit.New(ratelimit.EC2())
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Configurator{run: runner, ec2: ec2API, opts: o, log: log}
}

// NewFromConfig returns a Configurator with a patching.Runner over an SSM
// client and an EC2 client made from cfg. The runner shares the
// Configurator's Observer and Logger and skips unmanaged instances when
// SkipUnmanaged is set.
func NewFromConfig(cfg aws.Config, optFns ...func(*Options)) *Configurator {
	o := Options{}
	for _, f := range optFns {
		f(&o)
	}
	base := func(ro *patching.RunnerOptions) {
		ro.Observer, ro.Logger, ro.SkipUnmanaged = o.Observer, o.Logger, o.SkipUnmanaged
	}
	r := patching.NewRunner(ssm.NewFromConfig(cfg), append([]func(*patching.RunnerOptions){base}, o.Runner...)...)
	return New(r, ec2.NewFromConfig(cfg), optFns...)
}

const opOpsWorks = "opsworks"

// LayerRun is one layer's part of a deployment plan.
type LayerRun struct {
	Layer    string
	Tool     string
	Document string
	RunList  []string
	// Attributes are the merged custom JSON with secrets replaced by
	// "[sensitive]".
	Attributes map[string]any
	// Waves are the instance IDs of each wave.
	Waves [][]string
	// AZ of each instance.
	AZ map[string]string

	cmd     patching.Command
	backend Backend
	secrets []string
}

// Instances returns the layer run's instances in wave order.
func (l *LayerRun) Instances() []string {
	var out []string
	for _, w := range l.Waves {
		out = append(out, w...)
	}
	return out
}

// DeploymentPlan is the dry run of a deployment: which layers, instances,
// documents and run lists, in order. Producing it changes nothing; with
// Deployment.DryRun, Apply runs the tools' own dry runs.
type DeploymentPlan struct {
	ec2ops.Plan
	Stack  string
	Event  Event
	DryRun bool
	Layers []LayerRun
	// Empty are the layers whose selector matched no running instance.
	Empty []string
	// Comment is passed to each command.
	Comment string
}

// Plan resolves the deployment's layers to running instances and builds
// each layer's command. It calls only ec2:DescribeInstances.
func (c *Configurator) Plan(ctx context.Context, stack *Stack, d Deployment) (*DeploymentPlan, error) {
	if err := stack.validate(); err != nil {
		return nil, err
	}
	if err := c.validate(stack, d); err != nil {
		return nil, err
	}
	plan := &DeploymentPlan{Stack: stack.Name, Event: d.Event, DryRun: d.DryRun, Comment: d.Comment}
	if plan.Comment == "" {
		plan.Comment = fmt.Sprintf("ec2ops opsworks %s %s", stack.Name, d.Event)
		if utf8.RuneCountInString(plan.Comment) > 100 {
			plan.Comment = string([]rune(plan.Comment)[:100])
		}
	}
	plan.Plan = ec2ops.Plan{Operation: opOpsWorks}
	claimed := map[string]string{}
	want := map[string]bool{}
	for _, id := range d.InstanceIDs {
		want[id] = true
	}
	for i := range stack.Layers {
		l := &stack.Layers[i]
		rl := l.RunLists[d.Event]
		if len(rl) == 0 || (len(d.Layers) > 0 && !slices.Contains(d.Layers, l.Name)) {
			continue
		}
		var insts map[string]string
		var err error
		if d.Explicit {
			insts, err = c.describeIDs(ctx, d.InstanceIDs)
		} else {
			insts, err = c.resolve(ctx, l.Selector)
		}
		if err != nil {
			return nil, fmt.Errorf("plan: layer %s: %w", l.Name, err)
		}
		plan.Plan.Steps = append(plan.Plan.Steps, ec2ops.Step{Action: "ec2:DescribeInstances", Resources: []string{l.Name},
			Reason: fmt.Sprintf("resolve layer %s's selector to running instances", l.Name)})
		var ids []string
		for id := range insts {
			if len(want) > 0 && !want[id] {
				continue
			}
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			if other, dup := claimed[id]; dup && !d.Explicit {
				return nil, ec2ops.InvalidInput("Stack.Layers.Selector", id, fmt.Sprintf("instance is in layers %s and %s", other, l.Name), "make the layers' selectors disjoint (an instance runs one layer's run list per event here)")
			}
			claimed[id] = l.Name
		}
		if len(ids) == 0 {
			plan.Empty = append(plan.Empty, l.Name)
			continue
		}
		b := stack.backendOf(l)
		merged := MergeAttributes(stack.Attributes, l.Attributes, d.Attributes)
		shown, sensitive := redactAttributes(merged, stack.Sensitive)
		spec := RunSpec{Event: d.Event, RunList: slices.Clone(rl), Attributes: merged, Sensitive: sensitive, DryRun: d.DryRun, Timeout: l.Timeouts[d.Event]}
		cmd, err := b.Command(spec)
		if err != nil {
			var ie *ec2ops.InputError
			if asInput(err, &ie) {
				ie.Field = fmt.Sprintf("Stack.Layers[%s].%s", l.Name, ie.Field)
			}
			return nil, err
		}
		cmd.MaxConcurrency, cmd.Comment = c.opts.MaxConcurrency, plan.Comment
		lr := LayerRun{Layer: l.Name, Tool: b.Tool(), Document: cmd.DocumentName, RunList: slices.Clone(rl), Attributes: shown,
			AZ: insts, cmd: cmd, backend: b, secrets: secretValues(merged, stack.Sensitive)}
		for id := range lr.AZ {
			if !slices.Contains(ids, id) {
				delete(lr.AZ, id)
			}
		}
		lr.Waves = patching.Waves(ids, lr.AZ, c.opts.Canary, c.shares(), c.minHealthy())
		plan.Layers = append(plan.Layers, lr)
		mode := ""
		if d.DryRun {
			mode = map[string]string{"chef": " WhyRun=True", "ansible": " Check=True", "puppet": " --noop"}[b.Tool()]
		}
		for wi, w := range lr.Waves {
			plan.Plan.Steps = append(plan.Plan.Steps,
				ec2ops.Step{Action: "ssm:SendCommand", Resources: w, Reason: fmt.Sprintf("layer %s %s wave %d/%d: %s run list %s%s",
					l.Name, d.Event, wi+1, len(lr.Waves), cmd.DocumentName, strings.Join(rl, ","), mode)},
				ec2ops.Step{Action: "ssm:ListCommandInvocations", Resources: w, Reason: "collect per-instance results"})
		}
	}
	if len(plan.Layers) == 0 && len(plan.Empty) == 0 {
		return nil, ec2ops.InvalidInput("Deployment.Event", string(d.Event), "no selected layer has a run list for this event", "add a run list for the event, or select other layers")
	}
	n := 0
	for _, lr := range plan.Layers {
		n += len(lr.Instances())
	}
	ec2ops.Emit(c.opts.Observer, ec2ops.Event{Operation: opOpsWorks, Phase: "plan", Total: n,
		Message: fmt.Sprintf("%s %s: %d layer(s), %d instance(s), %d empty layer(s)", stack.Name, d.Event, len(plan.Layers), n, len(plan.Empty))})
	return plan, nil
}

func (c *Configurator) shares() []quantity.Quantity {
	var out []quantity.Quantity
	for _, w := range c.opts.Waves {
		out = append(out, quantity.MustParse(w)) // validated
	}
	return out
}

func (c *Configurator) minHealthy() int {
	if c.opts.MinHealthyPerAZ > 0 {
		return c.opts.MinHealthyPerAZ
	}
	if c.opts.Canary <= 0 && len(c.opts.Waves) == 1 && c.opts.Waves[0] == "100%" {
		return 0
	}
	return 1
}

func (c *Configurator) validate(stack *Stack, d Deployment) error {
	if !d.Event.valid() {
		return ec2ops.InvalidInput("Deployment.Event", string(d.Event), "is not a lifecycle event", "use Setup, Configure, Deploy, Undeploy or Shutdown")
	}
	for _, n := range d.Layers {
		if _, ok := stack.layer(n); !ok {
			return ec2ops.InvalidInput("Deployment.Layers", n, "is not a layer of the stack", "name one of Stack.Layers")
		}
	}
	for _, id := range d.InstanceIDs {
		if !awsid.Instance(id) {
			return ec2ops.InvalidInput("Deployment.InstanceIDs", id, "is not an instance ID", "use IDs like i-0123456789abcdef0")
		}
	}
	if d.Explicit && len(d.InstanceIDs) == 0 {
		return ec2ops.InvalidInput("Deployment.InstanceIDs", "", "Explicit needs instance IDs", "list the instances, or unset Explicit")
	}
	if utf8.RuneCountInString(d.Comment) > 100 {
		return ec2ops.InvalidInput("Deployment.Comment", "", "SSM takes at most 100 characters", "shorten it")
	}
	for _, f := range []struct{ name, v string }{{"Options.MaxConcurrency", c.opts.MaxConcurrency}, {"Options.FailureThreshold", c.opts.FailureThreshold}} {
		if _, err := quantity.Parse(f.v); err != nil {
			return ec2ops.InvalidInput(f.name, f.v, err.Error(), `give a count like "10" or a percentage like "10%"`)
		}
	}
	for _, w := range c.opts.Waves {
		if q, err := quantity.Parse(w); err != nil || q.IsZero() {
			return ec2ops.InvalidInput("Options.Waves", w, "is not a positive count or percentage", `e.g. "25%"`)
		}
	}
	return nil
}

// resolve returns the running instances a selector matches, with their AZ:
// one paginated DescribeInstances with the selector as filters.
func (c *Configurator) resolve(ctx context.Context, sel []Selector) (map[string]string, error) {
	filters := []ec2types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"running"}}}
	for _, s := range sel {
		filters = append(filters, ec2types.Filter{Name: aws.String(s.Key), Values: slices.Clone(s.Values)})
	}
	return c.describe(ctx, &ec2.DescribeInstancesInput{Filters: filters, MaxResults: aws.Int32(1000)})
}

// describeIDs returns the AZ of running instances among ids (200 a call).
func (c *Configurator) describeIDs(ctx context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	for chunk := range slices.Chunk(ids, 200) {
		m, err := c.describe(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
			{Name: aws.String("instance-id"), Values: chunk},
			{Name: aws.String("instance-state-name"), Values: []string{"running"}}}, MaxResults: aws.Int32(1000)})
		if err != nil {
			return nil, err
		}
		maps.Copy(out, m)
	}
	return out, nil
}

func (c *Configurator) describe(ctx context.Context, in *ec2.DescribeInstancesInput) (map[string]string, error) {
	out := map[string]string{}
	for {
		var page *ec2.DescribeInstancesOutput
		delay := time.Second
		for attempt := 0; ; attempt++ {
			if err := c.opts.EC2Limiter.Wait(ctx, "DescribeInstances", 0); err != nil {
				return nil, err
			}
			var err error
			page, err = c.ec2.DescribeInstances(ctx, in)
			if err == nil {
				break
			}
			cl := awserr.Classify(err)
			if (cl != awserr.Throttle && cl != awserr.Transient) || attempt >= 8 {
				return nil, fmt.Errorf("describe instances: %w", err)
			}
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
			delay = min(2*delay, 20*time.Second)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				az := ""
				if i.Placement != nil {
					az = aws.ToString(i.Placement.AvailabilityZone)
				}
				out[aws.ToString(i.InstanceId)] = az
			}
		}
		if aws.ToString(page.NextToken) == "" {
			return out, nil
		}
		next := *in
		next.NextToken = page.NextToken
		in = &next
	}
}

// InstanceResult is what a deployment did on one instance.
type InstanceResult struct {
	InstanceID string
	Layer      string
	Outcome    Outcome
	// Wave is 1-based; 0 when the instance's layer never ran.
	Wave int
	// Invocation is the Run Command result (output scrubbed of the
	// deployment's secrets); nil when nothing was sent.
	Invocation *patching.Invocation
	// Reason explains an outcome other than success.
	Reason string
}

// Report is what Apply did.
type Report struct {
	Stack   string
	Event   Event
	DryRun  bool
	Results map[string]InstanceResult
	// CommandIDs are the SSM commands sent, in order.
	CommandIDs []string
}

// Count returns how many instances had outcome o.
func (r *Report) Count(o Outcome) int {
	n := 0
	for _, x := range r.Results {
		if x.Outcome == o {
			n++
		}
	}
	return n
}

// DeployError is returned when a deployment did not succeed everywhere:
// the per-instance outcomes of the failed ones, those not run, and the
// cause when it stopped early.
type DeployError struct {
	Report *Report
	// Failed maps instance ID to its outcome and reason.
	Failed map[string]string
	// NotRun are instances the deployment did not reach.
	NotRun []string
	Err    error
}

func (e *DeployError) Error() string {
	msg := fmt.Sprintf("opsworks %s %s: %d failed (%s), %d not run", e.Report.Stack, e.Report.Event, len(e.Failed), awsid.Summary(e.Failed, 10), len(e.NotRun))
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *DeployError) Unwrap() error { return e.Err }

// ErrThreshold is the cause of a DeployError when failures exceeded
// Options.FailureThreshold.
var ErrThreshold = errors.New("opsworks: failures exceeded the threshold")

// Run plans and applies a deployment in one call.
func (c *Configurator) Run(ctx context.Context, stack *Stack, d Deployment) (*Report, error) {
	plan, err := c.Plan(ctx, stack, d)
	if err != nil {
		return nil, err
	}
	return c.Apply(ctx, plan)
}

// Apply runs the plan: layer by layer in stack order, wave by wave, each
// wave one patching.Command; it stops after a wave once failures exceed
// FailureThreshold. It returns a *DeployError unless every instance
// succeeded.
func (c *Configurator) Apply(ctx context.Context, plan *DeploymentPlan) (*Report, error) {
	if plan == nil {
		return nil, ec2ops.InvalidInput("plan", "", "is nil", "call Plan first")
	}
	rep := &Report{Stack: plan.Stack, Event: plan.Event, DryRun: plan.DryRun, Results: map[string]InstanceResult{}}
	total := 0
	for _, lr := range plan.Layers {
		total += len(lr.Instances())
	}
	threshold := quantity.MustParse(c.opts.FailureThreshold).Floor(total)
	failures, done := 0, 0
	var stopErr error
	for li := range plan.Layers {
		lr := &plan.Layers[li]
		for wi, wave := range lr.Waves {
			if stopErr != nil {
				break
			}
			if err := ctx.Err(); err != nil {
				stopErr = err
				break
			}
			ec2ops.Emit(c.opts.Observer, ec2ops.Event{Operation: opOpsWorks, Phase: "wave", Resource: lr.Layer, Done: done, Total: total,
				Message: fmt.Sprintf("layer %s %s wave %d/%d: %s on %d instance(s)", lr.Layer, plan.Event, wi+1, len(lr.Waves), lr.Document, len(wave))})
			c.log.InfoContext(ctx, "running lifecycle event", "stack", plan.Stack, "layer", lr.Layer, "event", string(plan.Event),
				"document", lr.Document, "wave", wi+1, "instances", len(wave), "dryRun", plan.DryRun)
			cmd := lr.cmd
			cmd.Parameters = maps.Clone(cmd.Parameters)
			cmd.InstanceIDs = wave
			cmd.MaxErrors = fmt.Sprint(max(0, threshold-failures))
			if len(wave) > 0 && threshold-failures >= len(wave) {
				cmd.MaxErrors = "100%"
			}
			res, err := c.run.Run(ctx, cmd)
			if res != nil {
				rep.CommandIDs = append(rep.CommandIDs, res.CommandIDs...)
			}
			var cerr *patching.CommandError
			var uerr *patching.UnmanagedError
			switch {
			case err == nil, errors.As(err, &cerr):
			case errors.As(err, &uerr):
				for _, id := range wave {
					r := InstanceResult{InstanceID: id, Layer: lr.Layer, Wave: wi + 1, Outcome: NotRun, Reason: "wave not sent: some instances are unmanaged"}
					if why, bad := uerr.Unmanaged[id]; bad {
						r.Outcome, r.Reason = Unmanaged, why
						failures++
					}
					rep.Results[id] = r
				}
				stopErr = fmt.Errorf("layer %s wave %d: %w", lr.Layer, wi+1, err)
				continue
			default:
				stopErr = fmt.Errorf("layer %s wave %d: %s", lr.Layer, wi+1, scrub(err.Error(), lr.secrets))
			}
			for _, id := range wave {
				r := c.result(lr, wi+1, id, res, plan.DryRun)
				rep.Results[id] = r
				done++
				if r.Outcome != NotRun && !r.Outcome.Succeeded() {
					failures++
				}
				ev := ec2ops.Event{Operation: opOpsWorks, Phase: "instance", Resource: id, Done: done, Total: total,
					Message: fmt.Sprintf("layer %s %s: %s", lr.Layer, plan.Event, r.Outcome)}
				if !r.Outcome.Succeeded() {
					ev.Err = fmt.Errorf("%s on %s: %s: %s", plan.Event, id, r.Outcome, r.Reason)
				}
				ec2ops.Emit(c.opts.Observer, ev)
			}
			if cerr != nil && cerr.Err != nil && stopErr == nil {
				stopErr = fmt.Errorf("layer %s wave %d: %s", lr.Layer, wi+1, scrub(cerr.Err.Error(), lr.secrets))
				if errors.Is(cerr.Err, context.Canceled) || errors.Is(cerr.Err, context.DeadlineExceeded) {
					stopErr = fmt.Errorf("layer %s wave %d: %w", lr.Layer, wi+1, cerr.Err)
				}
			}
			if stopErr == nil && failures > threshold {
				stopErr = fmt.Errorf("%w: %d failed after layer %s wave %d, threshold %d", ErrThreshold, failures, lr.Layer, wi+1, threshold)
			}
		}
	}
	derr := &DeployError{Report: rep, Failed: map[string]string{}, Err: stopErr}
	for _, lr := range plan.Layers {
		for _, id := range lr.Instances() {
			r, seen := rep.Results[id]
			if !seen {
				r = InstanceResult{InstanceID: id, Layer: lr.Layer, Outcome: NotRun, Reason: "deployment stopped before its wave"}
				rep.Results[id] = r
			}
			switch {
			case r.Outcome == NotRun:
				derr.NotRun = append(derr.NotRun, id)
			case !r.Outcome.Succeeded():
				derr.Failed[id] = string(r.Outcome) + cond(r.Reason != "", ": "+r.Reason, "")
			}
		}
	}
	sort.Strings(derr.NotRun)
	ec2ops.Emit(c.opts.Observer, ec2ops.Event{Operation: opOpsWorks, Phase: "done", Done: total - len(derr.Failed) - len(derr.NotRun), Total: total,
		Message: fmt.Sprintf("%s %s: %d ok, %d failed, %d not run", plan.Stack, plan.Event, total-len(derr.Failed)-len(derr.NotRun), len(derr.Failed), len(derr.NotRun)),
		Err:     stopErr})
	if len(derr.Failed) == 0 && len(derr.NotRun) == 0 && stopErr == nil {
		return rep, nil
	}
	return rep, derr
}

func cond(b bool, x, y string) string {
	if b {
		return x
	}
	return y
}

// result reads one instance's outcome from a wave's result.
func (c *Configurator) result(lr *LayerRun, wave int, id string, res *patching.Result, dry bool) InstanceResult {
	r := InstanceResult{InstanceID: id, Layer: lr.Layer, Wave: wave}
	switch {
	case res == nil:
		r.Outcome, r.Reason = NotRun, "wave not run"
	case res.Unmanaged[id] != "":
		r.Outcome, r.Reason = Unmanaged, res.Unmanaged[id]
	case slices.Contains(res.NotSent, id):
		r.Outcome, r.Reason = NotRun, "not sent: MaxErrors exceeded or cancelled"
	default:
		inv, ok := res.Invocations[id]
		if !ok {
			r.Outcome, r.Reason = NotRun, "no result"
			return r
		}
		inv.Output, inv.Stdout, inv.Stderr = scrub(inv.Output, lr.secrets), scrub(inv.Stdout, lr.secrets), scrub(inv.Stderr, lr.secrets)
		r.Invocation = &inv
		r.Outcome = lr.backend.Outcome(inv, dry)
		if !r.Outcome.Succeeded() {
			r.Reason = fmt.Sprintf("%s, exit code %d", inv.Status, inv.ResponseCode)
		}
	}
	return r
}

// scrub replaces secret values in s.
func scrub(s string, secrets []string) string {
	for _, v := range secrets {
		s = strings.ReplaceAll(s, v, sensitiveMark)
	}
	return s
}

// Policy returns the least-privilege IAM policy of the Configurator: the
// Run Command actions of patching's Runner and ec2:DescribeInstances.
// ssm:SendCommand can be narrowed to the document ARNs (AWS-ApplyChefRecipes,
// AWS-ApplyAnsiblePlaybooks, AWS-RunShellScript) and to instances with a
// tag (ssm:resourceTag/...).
func (c *Configurator) Policy() ec2ops.Policy {
	return ec2ops.NewPolicy(
		ec2ops.Statement{Sid: "RunCommand", Action: []string{"ssm:SendCommand", "ssm:CancelCommand"}},
		ec2ops.Statement{Sid: "TrackCommands", Action: []string{"ssm:ListCommands", "ssm:ListCommandInvocations",
			"ssm:GetCommandInvocation", "ssm:DescribeInstanceInformation"}},
		ec2ops.Statement{Sid: "ResolveLayers", Action: []string{"ec2:DescribeInstances"}},
	)
}
