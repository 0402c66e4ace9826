package patching

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awserr"
	"github.com/ec2ops/ec2ops/internal/awsid"
	"github.com/ec2ops/ec2ops/internal/quantity"
	"github.com/ec2ops/ec2ops/internal/ratelimit"
)

// Limits of Run Command. Sources: SSM API reference, SendCommand
// (InstanceIds "up to 50 IDs"; Targets up to 5 keys of up to 50 values;
// TimeoutSeconds 30-2592000; Comment up to 100 characters; MaxConcurrency
// default 50 and MaxErrors default 0, a number or a percentage),
// ListCommandInvocations and DescribeInstanceInformation (MaxResults up to
// 50), GetCommandInvocation (StandardOutputContent is the first 24,000
// characters of stdout, StandardErrorContent the first 8,000 of stderr);
// AWS-RunShellScript's executionTimeout (1-172800 s, default 3600).
const (
	MaxInstanceIDsPerCommand = 50
	maxTargetKeys            = 5
	maxTargetValues          = 50
	minTimeoutSeconds        = 30
	maxTimeoutSeconds        = 2592000
	maxComment               = 100
	pageSize                 = 50
	maxExecutionTimeout      = 172800 * time.Second
	InlineStdoutLimit        = 24000
	InlineStderrLimit        = 8000
	pluginOutputLimit        = 2500
	truncatedMarker          = "---Output truncated---"
	errorTruncatedMarker     = "---Error truncated----"
	errorSeparator           = "\n----------ERROR-------\n"
)

// Documents the runner and the Patcher use.
const (
	DocRunShellScript             = "AWS-RunShellScript"
	DocRunPatchBaseline           = "AWS-RunPatchBaseline"
	DocRunPatchBaselineWithHooks  = "AWS-RunPatchBaselineWithHooks"
	executionTimeoutParameterName = "executionTimeout"
)

// Target selects managed nodes by tag ("tag:Name"), tag key ("tag-key"),
// resource group ("resource-groups:Name") or ID ("InstanceIds"), as SSM's
// Target. Several Targets are ANDed.
type Target struct {
	Key    string
	Values []string
}

// Command is one Run Command request, at fleet scale.
type Command struct {
	// DocumentName is required, e.g. "AWS-RunShellScript".
	DocumentName string
	// DocumentVersion is "$DEFAULT" (empty), "$LATEST" or a number.
	DocumentVersion string
	// Parameters are the document's parameters.
	Parameters map[string][]string
	// Sensitive names parameters whose values are never logged, put in
	// events or in error strings (for example a token passed to a script).
	Sensitive []string

	// InstanceIDs or Targets (exactly one). Instance IDs are sent in
	// commands of at most 50; Targets go in one command that SSM resolves.
	InstanceIDs []string
	Targets     []Target

	// MaxConcurrency and MaxErrors are a count ("10") or a percentage
	// ("10%") of the targets. Empty means SSM's defaults "50" and "0".
	// Percentages apply to each command of 50 as to the whole; counts are
	// shared out between the commands so the whole fleet stays within them.
	MaxConcurrency string
	MaxErrors      string

	// TimeoutSeconds is the delivery timeout: an invocation that has not
	// started this long after it was sent ends DeliveryTimedOut. Zero means
	// SSM's default (3600).
	TimeoutSeconds int32
	// ExecutionTimeout, if set, is passed as the document's
	// executionTimeout parameter (AWS-RunShellScript and documents like it).
	ExecutionTimeout time.Duration

	// Output to S3 (bucket and key prefix) and/or CloudWatch Logs (group;
	// empty uses /aws/ssm/DOCUMENT when CloudWatchOutput is true).
	OutputS3Bucket    string
	OutputS3KeyPrefix string
	CloudWatchOutput  bool
	CloudWatchGroup   string

	// Comment (at most 100 characters), notifications and alarms are
	// passed through.
	Comment            string
	Notification       *ssmtypes.NotificationConfig
	ServiceRoleARN     string
	Alarms             []string
	IgnoreAlarmFailure bool
}

// Invocation is the outcome of a command on one instance.
type Invocation struct {
	InstanceID string
	CommandID  string
	// Status is the detailed status: Success, Failed, TimedOut (an
	// ExecutionTimedOut or DeliveryTimedOut shows as such), Cancelled,
	// Undeliverable, DeliveryTimedOut, ExecutionTimedOut or Terminated
	// (not sent because MaxErrors was exceeded).
	Status string
	// ResponseCode is the exit code; -1 if the command never ran.
	ResponseCode int
	// Output is the plugin output ListCommandInvocations reports (stdout
	// and stderr, at most 2,500 characters).
	Output string
	// Stdout and Stderr are the inline output of GetCommandInvocation (the
	// first 24,000 and 8,000 characters), when fetched (RunnerOptions.FetchOutput).
	Stdout, Stderr string
	// Truncated reports that the inline output is not all of it.
	Truncated bool
	// FullOutput says where the full output is: the S3 URL of stdout, or
	// "cloudwatch-logs:GROUP/COMMAND/INSTANCE/..." ; empty if the command
	// kept it nowhere.
	FullOutput string
	Start, End time.Time
}

// Succeeded reports whether the invocation ran and exited 0.
func (i Invocation) Succeeded() bool { return i.Status == "Success" }

// Result is what Run observed.
type Result struct {
	// CommandIDs are the commands sent, in order.
	CommandIDs []string
	// Invocations by instance ID.
	Invocations map[string]Invocation
	// Unmanaged are the targets whose SSM agent is not registered or not
	// online, with the reason; they were not sent the command.
	Unmanaged map[string]string
	// NotSent are instance IDs never sent because the fleet-wide MaxErrors
	// was exceeded or the run was cancelled first.
	NotSent []string
}

// Failed returns the instances that did not succeed (unmanaged and unsent
// included), sorted.
func (r *Result) Failed() []string {
	var out []string
	for id, inv := range r.Invocations {
		if !inv.Succeeded() {
			out = append(out, id)
		}
	}
	for id := range r.Unmanaged {
		out = append(out, id)
	}
	out = append(out, r.NotSent...)
	sort.Strings(out)
	return out
}

// CommandError is returned when a command did not succeed everywhere. It
// names each instance that did not succeed with its status ("Unmanaged",
// "NotSent" for those never sent). Result holds everything observed.
type CommandError struct {
	Result *Result
	Failed map[string]string
	// Err is the cause when the run stopped early (context cancelled, an
	// API error); nil when every command ran to its end.
	Err error
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("run command: %d instance(s) did not succeed: %s", len(e.Failed), awsid.Summary(e.Failed, 10))
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *CommandError) Unwrap() error { return e.Err }

// UnmanagedError is returned before anything is sent when targets have no
// online SSM agent and RunnerOptions.SkipUnmanaged is false.
type UnmanagedError struct {
	// Unmanaged maps instance ID to the reason (not registered, ConnectionLost...).
	Unmanaged map[string]string
}

func (e *UnmanagedError) Error() string {
	ids := slices.Sorted(maps.Keys(e.Unmanaged))
	if len(ids) > 10 {
		ids = append(ids[:10], fmt.Sprintf("... (%d in all)", len(e.Unmanaged)))
	}
	return fmt.Sprintf("run command: %d target(s) are not managed by SSM (agent not registered or offline): %s; fix the agent or instance profile, or set SkipUnmanaged to send to the others",
		len(e.Unmanaged), strings.Join(ids, ", "))
}

// Is makes errors.Is(err, ec2ops.ErrUnmanaged) true, so callers that do
// not import this package (ami's Baker) can tell "the agent is not online
// yet, nothing was sent" from a failed command.
func (e *UnmanagedError) Is(target error) bool { return target == ec2ops.ErrUnmanaged }

// OutputMode says for which invocations the runner calls
// GetCommandInvocation to get the 24,000/8,000-character inline output.
type OutputMode int

const (
	// OutputFailed fetches the inline output of invocations that did not
	// succeed (the default).
	OutputFailed OutputMode = iota
	// OutputAll fetches it for every invocation (one call each).
	OutputAll
	// OutputNone keeps only the 2,500-character plugin output.
	OutputNone
)

// RunnerOptions configures a Runner. Zero values are safe defaults.
type RunnerOptions struct {
	// Observer receives progress events (operation "run-command").
	Observer ec2ops.Observer
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Limiter paces SSM calls; nil uses a limiter with the SSM preset.
	// Share one between strategies working in the same account.
	Limiter *ratelimit.Limiter
	// PollInterval is the first delay between ListCommands polls; the delay
	// grows by half when nothing changed, up to MaxPollInterval. Defaults
	// 5s (the SDK's CommandExecuted waiter) and 30s.
	PollInterval, MaxPollInterval time.Duration
	// ResultsInterval is the least time between two ListCommandInvocations
	// sweeps of a running command (its last sweep, at the end, is always
	// made). Default 30s. A command whose sweep reads more than 30 pages
	// (1,500 invocations) is swept proportionally less often.
	ResultsInterval time.Duration
	// CancelTimeout bounds the CancelCommand calls made after the context is
	// cancelled. Default 30s.
	CancelTimeout time.Duration
	// SkipUnmanaged sends to the managed targets when some are not, and
	// reports the others in Result.Unmanaged (and as failures). The
	// default refuses to send anything.
	SkipUnmanaged bool
	// SkipPreflight does not check targets with DescribeInstanceInformation.
	SkipPreflight bool
	// FetchOutput selects the invocations whose inline output is fetched.
	FetchOutput OutputMode
	// Retries is how many times a throttled or failed (5xx) call is retried.
	// Default 8.
	Retries int
}

// Runner sends commands through SSM Run Command and tracks them. It is safe
// for concurrent use.
type Runner struct {
	api  CommandAPI
	opts RunnerOptions
	log  *slog.Logger
}

// NewRunner returns a Runner over api.
func NewRunner(api CommandAPI, optFns ...func(*RunnerOptions)) *Runner {
	o := RunnerOptions{}
	for _, f := range optFns {
		f(&o)
	}
	if o.Limiter == nil {
		o.Limiter = ratelimit.New(ratelimit.SSM())
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.MaxPollInterval < o.PollInterval {
		o.MaxPollInterval = max(30*time.Second, o.PollInterval)
	}
	if o.ResultsInterval <= 0 {
		o.ResultsInterval = 30 * time.Second
	}
	if o.CancelTimeout <= 0 {
		o.CancelTimeout = 30 * time.Second
	}
	if o.Retries <= 0 {
		o.Retries = 8
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{api: api, opts: o, log: log}
}

// NewRunnerFromConfig returns a Runner with an SSM client made from cfg.
func NewRunnerFromConfig(cfg aws.Config, optFns ...func(*RunnerOptions)) *Runner {
	return NewRunner(ssm.NewFromConfig(cfg), optFns...)
}

// RunShell runs commands with AWS-RunShellScript on instanceIDs and returns
// nil only if every instance succeeded, a *CommandError naming the others
// otherwise. It runs on every instance whatever fails (MaxErrors 100%), so
// the error names every failure; use Run to stop early.
func (r *Runner) RunShell(ctx context.Context, instanceIDs []string, commands []string) error {
	_, err := r.Run(ctx, Command{DocumentName: DocRunShellScript, InstanceIDs: instanceIDs,
		Parameters: map[string][]string{"commands": commands}, MaxErrors: "100%"})
	return err
}

const opRun = "run-command"

// WaitManaged blocks until every instance of instanceIDs has an online SSM
// agent: a fresh instance's agent registers some time after the instance
// passes its status checks (it long-polls on a ~20 s cycle, and a fresh
// agent can take more than two minutes: AWS-FACTS.md "Latencies"). It polls
// DescribeInstanceInformation with the instance IDs still waited on, 50 a
// call, paced by the Limiter like the runner's other calls, at once and
// then every PollInterval, the delay growing by half up to MaxPollInterval
// (an Observer event, phase "wait-managed", after each poll). A chunk
// answered InvalidInstanceId is split to find the IDs SSM does not know;
// those count as not registered yet. ctx bounds the wait (the runner adds
// no deadline of its own): when it ends, the error is an *UnmanagedError
// naming the instances still not online and why (matching
// ec2ops.ErrUnmanaged), wrapped with the context's cause. Bad IDs are an
// ec2ops.InputError before any call. WaitManaged satisfies ami.AgentWaiter.
func (r *Runner) WaitManaged(ctx context.Context, instanceIDs []string) error {
	var ids []string
	seen := map[string]bool{}
	for _, id := range instanceIDs {
		if !awsid.Instance(id) {
			return ec2ops.InvalidInput("instanceIDs", id, "is not an instance ID", "use IDs like i-0123456789abcdef0")
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	why := map[string]string{}
	delay := r.opts.PollInterval
	for {
		var pending []string
		for i := 0; i < len(ids); i += pageSize {
			chunk := ids[i:min(i+pageSize, len(ids))]
			info, err := r.agentsKnown(ctx, chunk)
			if err != nil {
				if ctx.Err() != nil {
					pending = append(pending, ids[i:]...)
					break
				}
				return fmt.Errorf("wait for SSM agents: %w", err)
			}
			for _, id := range chunk {
				switch st, ok := info[id]; {
				case ok && st == ssmtypes.PingStatusOnline:
					continue
				case !ok:
					why[id] = "no registered SSM agent"
				default:
					why[id] = "agent " + string(st)
				}
				pending = append(pending, id)
			}
		}
		ids = pending
		ec2ops.Emit(r.opts.Observer, ec2ops.Event{Operation: opRun, Phase: "wait-managed", Done: len(seen) - len(ids), Total: len(seen),
			Message: fmt.Sprintf("%d of %d SSM agents online", len(seen)-len(ids), len(seen))})
		if len(ids) == 0 {
			return nil
		}
		if ctx.Err() == nil {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
			delay = min(delay*3/2, r.opts.MaxPollInterval)
		}
		if ctx.Err() != nil {
			un := make(map[string]string, len(ids))
			for _, id := range ids {
				un[id] = cmpOr(why[id], "not checked before the wait ended")
			}
			r.log.WarnContext(ctx, "SSM agents not online", "instances", len(un), "cause", context.Cause(ctx).Error())
			return fmt.Errorf("%w: %w", &UnmanagedError{Unmanaged: un}, context.Cause(ctx))
		}
	}
}

// agentsKnown is describeAgents for one chunk of at most 50 IDs, except
// that a chunk SSM refuses with InvalidInstanceId (an ID it does not know)
// is bisected, so one unregistered instance does not hide the others; the
// IDs refused alone are left out of the map (not registered).
func (r *Runner) agentsKnown(ctx context.Context, ids []string) (map[string]ssmtypes.PingStatus, error) {
	info, err := r.describeAgents(ctx, ids)
	if err == nil || awserr.Code(err) != "InvalidInstanceId" {
		return info, err
	}
	if len(ids) == 1 {
		return map[string]ssmtypes.PingStatus{}, nil
	}
	out := map[string]ssmtypes.PingStatus{}
	for _, half := range [][]string{ids[:len(ids)/2], ids[len(ids)/2:]} {
		m, err := r.agentsKnown(ctx, half)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, m)
	}
	return out, nil
}

// Run validates cmd, checks that its targets are managed, sends it (in
// commands of at most 50 instance IDs, or one command for Targets), tracks
// it to the end and returns what every instance did. It returns a
// *CommandError if any instance did not succeed, an *UnmanagedError if
// targets are not managed (nothing sent), an ec2ops.InputError for bad
// input (nothing sent). Cancelling ctx cancels the commands sent.
func (r *Runner) Run(ctx context.Context, cmd Command) (*Result, error) {
	ids, err := r.validate(&cmd)
	if err != nil {
		return nil, err
	}
	res := &Result{Invocations: map[string]Invocation{}, Unmanaged: map[string]string{}}
	if !r.opts.SkipPreflight {
		un, err := r.preflight(ctx, cmd, ids)
		if err != nil {
			return nil, err
		}
		if len(un) > 0 {
			if !r.opts.SkipUnmanaged {
				ec2ops.Emit(r.opts.Observer, ec2ops.Event{Operation: opRun, Phase: "preflight", Total: len(ids) + len(un),
					Message: fmt.Sprintf("%d target(s) unmanaged; nothing sent", len(un))})
				return nil, &UnmanagedError{Unmanaged: un}
			}
			res.Unmanaged = un
			for id, why := range un {
				ec2ops.Emit(r.opts.Observer, ec2ops.Event{Operation: opRun, Phase: "preflight", Resource: id, Message: "unmanaged: " + why})
			}
			ids = slices.DeleteFunc(ids, func(id string) bool { _, bad := un[id]; return bad })
		}
	}
	if len(cmd.InstanceIDs) > 0 && len(ids) == 0 {
		return res, r.outcome(res, nil)
	}
	t := &tracker{r: r, cmd: cmd, res: res}
	runErr := t.run(ctx, ids)
	return res, r.outcome(res, runErr)
}

func (r *Runner) outcome(res *Result, cause error) error {
	failed := map[string]string{}
	for id, inv := range res.Invocations {
		if !inv.Succeeded() {
			failed[id] = inv.Status
		}
	}
	for id := range res.Unmanaged {
		failed[id] = "Unmanaged"
	}
	for _, id := range res.NotSent {
		failed[id] = "NotSent"
	}
	if len(failed) == 0 && cause == nil {
		return nil
	}
	return &CommandError{Result: res, Failed: failed, Err: cause}
}

// validate checks cmd and returns its instance IDs (deduplicated, in order).
func (r *Runner) validate(cmd *Command) ([]string, error) {
	if cmd.DocumentName == "" {
		return nil, ec2ops.InvalidInput("Command.DocumentName", "", "is empty", `name the SSM document, e.g. "AWS-RunShellScript"`)
	}
	if (len(cmd.InstanceIDs) == 0) == (len(cmd.Targets) == 0) {
		return nil, ec2ops.InvalidInput("Command.InstanceIDs", "", "exactly one of InstanceIDs and Targets must be set",
			"list instance IDs, or select instances with Targets (for example tag:Role)")
	}
	var ids []string
	seen := map[string]bool{}
	for _, id := range cmd.InstanceIDs {
		if !awsid.Instance(id) {
			return nil, ec2ops.InvalidInput("Command.InstanceIDs", id, "is not an instance ID", "use IDs like i-0123456789abcdef0")
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(cmd.Targets) > maxTargetKeys {
		return nil, ec2ops.InvalidInput("Command.Targets", strconv.Itoa(len(cmd.Targets)), fmt.Sprintf("SSM takes at most %d target keys", maxTargetKeys), "combine tags, or use instance IDs")
	}
	for _, t := range cmd.Targets {
		ok := t.Key == "InstanceIds" || t.Key == "tag-key" || strings.HasPrefix(t.Key, "resource-groups:") || (strings.HasPrefix(t.Key, "tag:") && len(t.Key) > 4)
		if !ok {
			return nil, ec2ops.InvalidInput("Command.Targets.Key", t.Key, "is not a Run Command target key", `use "tag:NAME", "tag-key", "InstanceIds" or "resource-groups:Name"`)
		}
		if len(t.Values) == 0 || len(t.Values) > maxTargetValues {
			return nil, ec2ops.InvalidInput("Command.Targets.Values", t.Key, fmt.Sprintf("has %d values; SSM takes 1 to %d", len(t.Values), maxTargetValues), "split the command or use a tag")
		}
	}
	for _, f := range []struct {
		field, v string
		zero     bool
	}{{"Command.MaxConcurrency", cmd.MaxConcurrency, false}, {"Command.MaxErrors", cmd.MaxErrors, true}} {
		if f.v == "" {
			continue
		}
		q, err := quantity.Parse(f.v)
		if err != nil {
			return nil, ec2ops.InvalidInput(f.field, f.v, err.Error(), `give a count like "10" or a whole percentage like "10%"`)
		}
		if q.Percent && q.Value != float64(int(q.Value)) {
			return nil, ec2ops.InvalidInput(f.field, f.v, "SSM takes whole percentages only", `round it, e.g. "10%"`)
		}
		if q.IsZero() && !f.zero {
			return nil, ec2ops.InvalidInput(f.field, f.v, "must be at least 1 (or 1%)", `use "1" to run one at a time`)
		}
	}
	if cmd.TimeoutSeconds != 0 && (cmd.TimeoutSeconds < minTimeoutSeconds || cmd.TimeoutSeconds > maxTimeoutSeconds) {
		return nil, ec2ops.InvalidInput("Command.TimeoutSeconds", strconv.Itoa(int(cmd.TimeoutSeconds)),
			fmt.Sprintf("must be from %d to %d", minTimeoutSeconds, maxTimeoutSeconds), "or 0 for SSM's default of 3600")
	}
	if cmd.ExecutionTimeout < 0 || cmd.ExecutionTimeout > maxExecutionTimeout || (cmd.ExecutionTimeout > 0 && cmd.ExecutionTimeout < time.Second) {
		return nil, ec2ops.InvalidInput("Command.ExecutionTimeout", cmd.ExecutionTimeout.String(), "must be from 1s to 48h", "or 0 for the document's default")
	}
	if n := utf8.RuneCountInString(cmd.Comment); n > maxComment {
		return nil, ec2ops.InvalidInput("Command.Comment", "", fmt.Sprintf("is %d characters; SSM takes at most %d", n, maxComment), "shorten it")
	}
	return ids, nil
}

// preflight returns the targets without an online agent. For instance IDs
// it asks DescribeInstanceInformation about them, 50 a call; for tag
// Targets it lists the managed nodes with those tags and reports the
// offline ones (instances without a registered agent are invisible to SSM
// and cannot be reported from a tag).
func (r *Runner) preflight(ctx context.Context, cmd Command, ids []string) (map[string]string, error) {
	un := map[string]string{}
	if len(ids) > 0 {
		info, err := r.describeAgents(ctx, ids)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			st, ok := info[id]
			switch {
			case !ok:
				un[id] = "no registered SSM agent"
			case st != ssmtypes.PingStatusOnline:
				un[id] = "agent " + string(st)
			}
		}
		ec2ops.Emit(r.opts.Observer, ec2ops.Event{Operation: opRun, Phase: "preflight", Done: len(ids) - len(un), Total: len(ids),
			Message: fmt.Sprintf("%d of %d targets managed and online", len(ids)-len(un), len(ids))})
		return un, nil
	}
	var filters []ssmtypes.InstanceInformationStringFilter
	for _, t := range cmd.Targets {
		switch {
		case strings.HasPrefix(t.Key, "tag:"), t.Key == "tag-key":
			filters = append(filters, ssmtypes.InstanceInformationStringFilter{Key: aws.String(t.Key), Values: t.Values})
		case t.Key == "InstanceIds":
			filters = append(filters, ssmtypes.InstanceInformationStringFilter{Key: aws.String("InstanceIds"), Values: t.Values})
		}
	}
	if len(filters) == 0 {
		return un, nil // resource groups: nothing to check against
	}
	total := 0
	var next *string
	for {
		var out *ssm.DescribeInstanceInformationOutput
		err := r.call(ctx, "DescribeInstanceInformation", func(ctx context.Context) (err error) {
			out, err = r.api.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{Filters: filters, MaxResults: aws.Int32(pageSize), NextToken: next})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("preflight: describe instance information: %w", err)
		}
		for _, ii := range out.InstanceInformationList {
			total++
			if ii.PingStatus != ssmtypes.PingStatusOnline {
				un[aws.ToString(ii.InstanceId)] = "agent " + string(ii.PingStatus)
			}
		}
		if next = out.NextToken; aws.ToString(next) == "" {
			break
		}
	}
	ec2ops.Emit(r.opts.Observer, ec2ops.Event{Operation: opRun, Phase: "preflight", Done: total - len(un), Total: total,
		Message: fmt.Sprintf("%d managed node(s) match the targets, %d offline", total, len(un))})
	return un, nil
}

// describeAgents returns the ping status of each ID that SSM knows.
func (r *Runner) describeAgents(ctx context.Context, ids []string) (map[string]ssmtypes.PingStatus, error) {
	info := make(map[string]ssmtypes.PingStatus, len(ids))
	for chunk := range slices.Chunk(ids, pageSize) {
		var next *string
		for {
			var out *ssm.DescribeInstanceInformationOutput
			err := r.call(ctx, "DescribeInstanceInformation", func(ctx context.Context) (err error) {
				out, err = r.api.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{
					Filters:    []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: chunk}},
					MaxResults: aws.Int32(pageSize), NextToken: next})
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("describe instance information: %w", err)
			}
			for _, ii := range out.InstanceInformationList {
				info[aws.ToString(ii.InstanceId)] = ii.PingStatus
			}
			if next = out.NextToken; aws.ToString(next) == "" {
				break
			}
		}
	}
	return info, nil
}

// call paces and retries one SSM call: throttling and server errors are
// retried with backoff (up to Retries), anything else is returned.
func (r *Runner) call(ctx context.Context, action string, fn func(context.Context) error) error {
	delay := time.Second
	for attempt := 0; ; attempt++ {
		if err := r.opts.Limiter.Wait(ctx, action, 0); err != nil {
			return err
		}
		err := fn(ctx)
		if err == nil {
			return nil
		}
		c := awserr.Classify(err)
		if (c != awserr.Throttle && c != awserr.Transient) || attempt >= r.opts.Retries {
			return err
		}
		r.log.DebugContext(ctx, "retrying SSM call", "action", action, "class", c.String(), "attempt", attempt+1)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 20*time.Second)
	}
}

// redact replaces the values of sensitive parameters in s.
func (c *Command) redact(s string) string {
	for _, name := range c.Sensitive {
		for _, v := range c.Parameters[name] {
			if v != "" {
				s = strings.ReplaceAll(s, v, "[redacted]")
			}
		}
	}
	return s
}

// redactedError hides sensitive values from an error's message while
// keeping its chain for errors.As (codes, classes).
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// batch is one SendCommand request of a run.
type batch struct {
	ids        []string // nil for a Targets command
	conc, errs string
	id         string // command ID once sent
	done       bool
	completed  int
	errors     int
	lastSweep  time.Time
	sweepPages int // pages the last sweep read
	reported   map[string]bool
}

// sweepPagesPerInterval is how many ListCommandInvocations pages one
// ResultsInterval pays for: a command with more invocations is swept
// proportionally less often (at the 30s default, a page a second on
// average, a tenth of SSM's read rate of 10 calls a second), so that
// watching a 5,000-instance command does not cost a full 100-page sweep
// every 30s. The final sweep of a finished command is always made.
const sweepPagesPerInterval = 30

// tracker runs one Command: sends its batches within the concurrency and
// error budgets, polls them, collects invocations.
type tracker struct {
	r   *Runner
	cmd Command
	res *Result
	mu  sync.Mutex
}

// plan splits ids into balanced batches of at most 50 and shares out
// MaxConcurrency and MaxErrors; window is how many batches may run at once.
func planBatches(ids []string, conc, errs string) (batches []*batch, window int) {
	if conc == "" {
		conc = "50"
	}
	if errs == "" {
		errs = "0"
	}
	if len(ids) == 0 { // Targets: one command with the limits as given
		return []*batch{{conc: conc, errs: errs, reported: map[string]bool{}}}, 1
	}
	n := (len(ids) + MaxInstanceIDsPerCommand - 1) / MaxInstanceIDsPerCommand
	qc, qe := quantity.MustParse(conc), quantity.MustParse(errs)
	size, extra := len(ids)/n, len(ids)%n
	window = n
	if !qc.Percent && int(qc.Value) < n {
		window = int(qc.Value) // fewer slots than batches: one at a time in each
	}
	at := 0
	for i := range n {
		k := size
		if i < extra {
			k++
		}
		b := &batch{ids: ids[at : at+k], conc: conc, errs: errs, reported: map[string]bool{}}
		at += k
		if !qc.Percent {
			b.conc = strconv.Itoa(max(1, int(qc.Value)*k/len(ids)))
			if window < n {
				b.conc = "1"
			}
		}
		if !qe.Percent {
			b.errs = strconv.Itoa(int(qe.Value) * k / len(ids))
		}
		batches = append(batches, b)
	}
	return batches, window
}

func (t *tracker) run(ctx context.Context, ids []string) error {
	r := t.r
	batches, window := planBatches(ids, t.cmd.MaxConcurrency, t.cmd.MaxErrors)
	maxErrs := -1 // fleet-wide budget for counts; -1: percentages are per batch
	if q, err := quantity.Parse(cmpOr(t.cmd.MaxErrors, "0")); err == nil && !q.Percent {
		maxErrs = int(q.Value)
	}
	total := len(ids)
	ec2ops.Emit(r.opts.Observer, ec2ops.Event{Operation: opRun, Phase: "send", Total: total,
		Message: fmt.Sprintf("%s to %d target(s) in %d command(s)", t.cmd.DocumentName, total, len(batches))})
	next := 0
	runStart := time.Now()
	active := []*batch{}
	delay := r.opts.PollInterval
	errCount := 0
	stopSending := false
	for {
		// Send while the window allows.
		for !stopSending && len(active) < window && next < len(batches) {
			b := batches[next]
			next++
			if err := t.send(ctx, b); err != nil {
				t.notSent(batches[next-1:])
				return t.cancelAll(ctx, active, err)
			}
			active = append(active, b)
		}
		if len(active) == 0 {
			if stopSending {
				t.notSent(batches[next:])
			}
			return nil
		}
		// Wait, then poll every active command.
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			t.notSent(batches[next:])
			return t.cancelAll(ctx, active, ctx.Err())
		case <-timer.C:
		}
		changed := false
		listed, err := t.listAll(ctx, active, runStart)
		if err != nil {
			t.notSent(batches[next:])
			return t.cancelAll(ctx, active, err)
		}
		for _, b := range active {
			ch, err := t.poll(ctx, b, listed[b.id])
			if err != nil {
				if ctx.Err() != nil {
					t.notSent(batches[next:])
					return t.cancelAll(ctx, active, ctx.Err())
				}
				t.notSent(batches[next:])
				return t.cancelAll(ctx, active, err)
			}
			changed = changed || ch
		}
		kept := active[:0]
		errCount = 0
		for _, b := range batches[:next] {
			errCount += b.errors
		}
		for _, b := range active {
			if !b.done {
				kept = append(kept, b)
			}
		}
		active = kept
		if maxErrs >= 0 && errCount > maxErrs && !stopSending && next < len(batches) {
			stopSending = true
			r.log.WarnContext(ctx, "MaxErrors exceeded; sending no more commands", "errors", errCount, "maxErrors", maxErrs)
			ec2ops.Emit(r.opts.Observer, ec2ops.Event{Operation: opRun, Phase: "stop", Done: len(t.res.Invocations), Total: total,
				Message: fmt.Sprintf("%d errors exceed MaxErrors %d: no more commands sent", errCount, maxErrs)})
		}
		if changed {
			delay = r.opts.PollInterval
		} else {
			delay = min(delay*3/2, r.opts.MaxPollInterval)
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (t *tracker) notSent(bs []*batch) {
	for _, b := range bs {
		if b.id == "" {
			t.res.NotSent = append(t.res.NotSent, b.ids...)
		}
	}
}

// send issues one SendCommand.
func (t *tracker) send(ctx context.Context, b *batch) error {
	r, c := t.r, &t.cmd
	in := &ssm.SendCommandInput{
		DocumentName:   aws.String(c.DocumentName),
		InstanceIds:    b.ids,
		MaxConcurrency: aws.String(b.conc),
		MaxErrors:      aws.String(b.errs),
		Parameters:     maps.Clone(c.Parameters),
	}
	if c.DocumentVersion != "" {
		in.DocumentVersion = aws.String(c.DocumentVersion)
	}
	for _, tg := range c.Targets {
		in.Targets = append(in.Targets, ssmtypes.Target{Key: aws.String(tg.Key), Values: tg.Values})
	}
	if c.TimeoutSeconds != 0 {
		in.TimeoutSeconds = aws.Int32(c.TimeoutSeconds)
	}
	if c.ExecutionTimeout > 0 {
		if in.Parameters == nil {
			in.Parameters = map[string][]string{}
		}
		in.Parameters[executionTimeoutParameterName] = []string{strconv.Itoa(int(c.ExecutionTimeout / time.Second))}
	}
	if c.OutputS3Bucket != "" {
		in.OutputS3BucketName = aws.String(c.OutputS3Bucket)
		if c.OutputS3KeyPrefix != "" {
			in.OutputS3KeyPrefix = aws.String(c.OutputS3KeyPrefix)
		}
	}
	if c.CloudWatchOutput || c.CloudWatchGroup != "" {
		in.CloudWatchOutputConfig = &ssmtypes.CloudWatchOutputConfig{CloudWatchOutputEnabled: true}
		if c.CloudWatchGroup != "" {
			in.CloudWatchOutputConfig.CloudWatchLogGroupName = aws.String(c.CloudWatchGroup)
		}
	}
	if c.Comment != "" {
		in.Comment = aws.String(c.Comment)
	}
	in.NotificationConfig = c.Notification
	if c.ServiceRoleARN != "" {
		in.ServiceRoleArn = aws.String(c.ServiceRoleARN)
	}
	if len(c.Alarms) > 0 {
		ac := &ssmtypes.AlarmConfiguration{IgnorePollAlarmFailure: c.IgnoreAlarmFailure}
		for _, a := range c.Alarms {
			ac.Alarms = append(ac.Alarms, ssmtypes.Alarm{Name: aws.String(a)})
		}
		in.AlarmConfiguration = ac
	}
	var out *ssm.SendCommandOutput
	err := r.call(ctx, "SendCommand", func(ctx context.Context) (err error) {
		out, err = r.api.SendCommand(ctx, in)
		return err
	})
	if err != nil {
		return &redactedError{msg: c.redact(fmt.Sprintf("send %s: %v", c.DocumentName, err)), err: err}
	}
	if out.Command == nil || aws.ToString(out.Command.CommandId) == "" {
		return fmt.Errorf("send %s: response without a command ID", c.DocumentName)
	}
	b.id = aws.ToString(out.Command.CommandId)
	t.res.CommandIDs = append(t.res.CommandIDs, b.id)
	r.log.InfoContext(ctx, "command sent", "commandID", b.id, "document", c.DocumentName, "targets", len(b.ids), "maxConcurrency", b.conc, "maxErrors", b.errs)
	ec2ops.Emit(r.opts.Observer, ec2ops.Event{Operation: opRun, Phase: "sent", Resource: b.id, Total: len(b.ids),
		Message: fmt.Sprintf("%s: %d target(s), MaxConcurrency %s, MaxErrors %s", c.DocumentName, len(b.ids), b.conc, b.errs)})
	return nil
}

// listAll reads the counts of many running commands with few calls: one
// ListCommands page (50 commands, newest first) filtered by document and
// by the run's start, until every active command is seen. With a single
// command it returns nothing and poll asks for that command by ID.
func (t *tracker) listAll(ctx context.Context, active []*batch, since time.Time) (map[string]*ssmtypes.Command, error) {
	out := map[string]*ssmtypes.Command{}
	if len(active) < 2 {
		return out, nil
	}
	want := map[string]bool{}
	for _, b := range active {
		want[b.id] = true
	}
	r := t.r
	filters := []ssmtypes.CommandFilter{
		{Key: ssmtypes.CommandFilterKeyInvokedAfter, Value: aws.String(since.Add(-time.Minute).UTC().Format(time.RFC3339))},
		{Key: ssmtypes.CommandFilterKeyDocumentName, Value: aws.String(t.cmd.DocumentName)},
	}
	var next *string
	for len(out) < len(want) {
		var page *ssm.ListCommandsOutput
		err := r.call(ctx, "ListCommands", func(ctx context.Context) (err error) {
			page, err = r.api.ListCommands(ctx, &ssm.ListCommandsInput{Filters: filters, MaxResults: aws.Int32(pageSize), NextToken: next})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("list commands: %w", err)
		}
		for i := range page.Commands {
			if id := aws.ToString(page.Commands[i].CommandId); want[id] {
				out[id] = &page.Commands[i]
			}
		}
		if next = page.NextToken; aws.ToString(next) == "" {
			break
		}
	}
	return out, nil
}

// poll reads a command's counts and, when they moved (paced by
// ResultsInterval) or it finished, sweeps its invocations.
func (t *tracker) poll(ctx context.Context, b *batch, c *ssmtypes.Command) (changed bool, err error) {
	r := t.r
	if c == nil {
		var out *ssm.ListCommandsOutput
		err = r.call(ctx, "ListCommands", func(ctx context.Context) (err error) {
			out, err = r.api.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(b.id)})
			return err
		})
		if err != nil {
			return false, fmt.Errorf("list commands %s: %w", b.id, err)
		}
		if len(out.Commands) == 0 {
			return false, fmt.Errorf("list commands %s: %w", b.id, ec2ops.ErrNotFound)
		}
		c = &out.Commands[0]
	}
	completed := int(c.CompletedCount)
	b.errors = int(c.ErrorCount)
	terminal := commandTerminal(c.Status)
	moved := completed > b.completed
	b.completed = completed
	now := time.Now()
	gap := r.opts.ResultsInterval * time.Duration(max(sweepPagesPerInterval, b.sweepPages)) / sweepPagesPerInterval
	if terminal || (moved && now.Sub(b.lastSweep) >= gap) {
		if err := t.sweep(ctx, b); err != nil {
			return false, err
		}
		b.lastSweep = now
	}
	if terminal {
		b.done = true
		ec2ops.Emit(r.opts.Observer, ec2ops.Event{Operation: opRun, Phase: "command-done", Resource: b.id,
			Done: completed, Total: int(c.TargetCount), Message: fmt.Sprintf("%s (%s)", c.Status, aws.ToString(c.StatusDetails))})
	}
	return moved || terminal, nil
}

// ranOnInstance reports whether an invocation with this final status
// reached the instance (and so may have output).
func ranOnInstance(status string) bool {
	switch status {
	case "Undeliverable", "DeliveryTimedOut", "Terminated", "InvalidPlatform", "AccessDenied":
		return false
	}
	return true
}

func commandTerminal(s ssmtypes.CommandStatus) bool {
	switch s {
	case ssmtypes.CommandStatusSuccess, ssmtypes.CommandStatusFailed, ssmtypes.CommandStatusTimedOut, ssmtypes.CommandStatusCancelled:
		return true
	}
	return false
}

func invocationTerminal(st ssmtypes.CommandInvocationStatus) bool {
	switch st {
	case ssmtypes.CommandInvocationStatusSuccess, ssmtypes.CommandInvocationStatusFailed,
		ssmtypes.CommandInvocationStatusTimedOut, ssmtypes.CommandInvocationStatusCancelled:
		return true
	}
	return false
}

// detailedStatus prefers StatusDetails where it says more than Status.
func detailedStatus(st ssmtypes.CommandInvocationStatus, details string) string {
	switch d := strings.ReplaceAll(details, " ", ""); d {
	case "DeliveryTimedOut", "ExecutionTimedOut", "Undeliverable", "Terminated", "InvalidPlatform", "AccessDenied":
		return d
	}
	return string(st)
}

// sweep lists a command's invocations with details (50 a page) and records
// the ones newly finished.
func (t *tracker) sweep(ctx context.Context, b *batch) error {
	r := t.r
	var next *string
	var fresh []Invocation
	b.sweepPages = 0
	for {
		b.sweepPages++
		var out *ssm.ListCommandInvocationsOutput
		err := r.call(ctx, "ListCommandInvocations", func(ctx context.Context) (err error) {
			out, err = r.api.ListCommandInvocations(ctx, &ssm.ListCommandInvocationsInput{
				CommandId: aws.String(b.id), Details: true, MaxResults: aws.Int32(pageSize), NextToken: next})
			return err
		})
		if err != nil {
			return fmt.Errorf("list command invocations %s: %w", b.id, err)
		}
		for _, ci := range out.CommandInvocations {
			id := aws.ToString(ci.InstanceId)
			if b.reported[id] || !invocationTerminal(ci.Status) {
				continue
			}
			b.reported[id] = true
			fresh = append(fresh, t.invocation(b.id, ci))
		}
		if next = out.NextToken; aws.ToString(next) == "" {
			break
		}
	}
	for i := range fresh {
		inv := &fresh[i]
		mode := r.opts.FetchOutput
		if mode == OutputAll || (mode == OutputFailed && !inv.Succeeded() && ranOnInstance(inv.Status)) {
			if err := t.fetchOutput(ctx, inv); err != nil {
				return err
			}
		}
		t.mu.Lock()
		t.res.Invocations[inv.InstanceID] = *inv
		done := len(t.res.Invocations)
		t.mu.Unlock()
		ev := ec2ops.Event{Operation: opRun, Phase: "invocation", Resource: inv.InstanceID, Done: done,
			Message: fmt.Sprintf("%s exit %d (command %s)", inv.Status, inv.ResponseCode, inv.CommandID)}
		if !inv.Succeeded() {
			ev.Err = fmt.Errorf("%s on %s: %s", t.cmd.DocumentName, inv.InstanceID, inv.Status)
		}
		ec2ops.Emit(r.opts.Observer, ev)
	}
	return nil
}

func (t *tracker) invocation(cmdID string, ci ssmtypes.CommandInvocation) Invocation {
	inv := Invocation{
		InstanceID: aws.ToString(ci.InstanceId), CommandID: cmdID,
		Status:       detailedStatus(ci.Status, aws.ToString(ci.StatusDetails)),
		ResponseCode: -1,
		FullOutput:   aws.ToString(ci.StandardOutputUrl),
	}
	for i, p := range ci.CommandPlugins {
		if i == 0 || p.ResponseCode != 0 {
			inv.ResponseCode = int(p.ResponseCode)
		}
		if inv.Output != "" {
			inv.Output += "\n"
		}
		inv.Output += aws.ToString(p.Output)
		if p.ResponseStartDateTime != nil && (inv.Start.IsZero() || p.ResponseStartDateTime.Before(inv.Start)) {
			inv.Start = *p.ResponseStartDateTime
		}
		if p.ResponseFinishDateTime != nil && p.ResponseFinishDateTime.After(inv.End) {
			inv.End = *p.ResponseFinishDateTime
		}
		if inv.FullOutput == "" {
			inv.FullOutput = aws.ToString(p.StandardOutputUrl)
		}
	}
	if inv.Status == "Success" && inv.ResponseCode == -1 && len(ci.CommandPlugins) == 0 {
		inv.ResponseCode = 0
	}
	inv.Truncated = strings.Contains(inv.Output, truncatedMarker) || strings.Contains(inv.Output, errorTruncatedMarker) ||
		utf8.RuneCountInString(inv.Output) >= pluginOutputLimit
	if inv.FullOutput == "" {
		inv.FullOutput = t.cloudWatchLocation(inv)
	}
	return inv
}

// cloudWatchLocation names the log group and stream prefix of the full
// output when CloudWatch output is on (default group /aws/ssm/DOCUMENT).
func (t *tracker) cloudWatchLocation(inv Invocation) string {
	c := t.cmd
	if !c.CloudWatchOutput && c.CloudWatchGroup == "" {
		return ""
	}
	g := c.CloudWatchGroup
	if g == "" {
		g = "/aws/ssm/" + c.DocumentName
	}
	return "cloudwatch-logs:" + g + "/" + inv.CommandID + "/" + inv.InstanceID
}

// fetchOutput gets the inline output (24,000/8,000 characters) of inv.
func (t *tracker) fetchOutput(ctx context.Context, inv *Invocation) error {
	r := t.r
	var out *ssm.GetCommandInvocationOutput
	err := r.call(ctx, "GetCommandInvocation", func(ctx context.Context) (err error) {
		out, err = r.api.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(inv.CommandID), InstanceId: aws.String(inv.InstanceID)})
		return err
	})
	if err != nil {
		if awserr.Code(err) == "InvalidPluginName" {
			return nil // multi-step documents: keep the plugin output
		}
		return fmt.Errorf("get command invocation %s/%s: %w", inv.CommandID, inv.InstanceID, err)
	}
	inv.Stdout, inv.Stderr = aws.ToString(out.StandardOutputContent), aws.ToString(out.StandardErrorContent)
	if utf8.RuneCountInString(inv.Stdout) >= InlineStdoutLimit || utf8.RuneCountInString(inv.Stderr) >= InlineStderrLimit {
		inv.Truncated = true
	} else if !strings.Contains(inv.Output, truncatedMarker) && !strings.Contains(inv.Output, errorTruncatedMarker) {
		inv.Truncated = false // the inline output is complete
	}
	if u := aws.ToString(out.StandardOutputUrl); u != "" {
		inv.FullOutput = u
	}
	return nil
}

// cancelAll cancels the commands still running with a context that
// survives ctx's cancellation, bounded by CancelTimeout, then collects
// what they did.
func (t *tracker) cancelAll(ctx context.Context, active []*batch, cause error) error {
	r := t.r
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.CancelTimeout)
	defer cancel()
	var errs []error
	for _, b := range active {
		if b.done || b.id == "" {
			continue
		}
		err := r.call(cctx, "CancelCommand", func(ctx context.Context) error {
			_, err := r.api.CancelCommand(ctx, &ssm.CancelCommandInput{CommandId: aws.String(b.id)})
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("cancel %s: %w", b.id, err))
			continue
		}
		r.log.WarnContext(cctx, "command cancelled", "commandID", b.id, "cause", cause.Error())
		ec2ops.Emit(r.opts.Observer, ec2ops.Event{Operation: opRun, Phase: "cancel", Resource: b.id, Message: "CancelCommand sent", Err: cause})
		_ = t.sweep(cctx, b) // best effort: what finished before the cancel
		for _, id := range b.ids {
			if _, ok := t.res.Invocations[id]; !ok {
				t.res.Invocations[id] = Invocation{InstanceID: id, CommandID: b.id, Status: "Cancelled", ResponseCode: -1}
			}
		}
	}
	return errors.Join(append([]error{cause}, errs...)...)
}
