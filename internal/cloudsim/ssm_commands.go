package cloudsim

// Run Command: SendCommand, ListCommands, ListCommandInvocations,
// GetCommandInvocation and CancelCommand on *SSM, and the registry of
// document behaviours (RegisterDocument, at the end of this file).
//
// Model. A command resolves its targets when it is sent (InstanceIds, or
// Targets by tag or by InstanceIds key) into one invocation per managed
// instance, all Pending. It dispatches at most MaxConcurrency of them at
// once, in target order. A dispatched invocation reaches an online agent
// after Latency.SSM.Delivery and starts (InProgress); to an offline agent it
// is Delayed until the agent is back, or DeliveryTimedOut once
// TimeoutSeconds have passed since dispatch. A started invocation ends
// Success or Failed after the document's run time, or TimedOut
// (ExecutionTimedOut) at its execution timeout. Failed and
// ExecutionTimedOut count as errors; once errors exceed MaxErrors the
// command dispatches nothing more and its undispatched invocations end
// Terminated, while those already running finish ("Using error controls",
// Run Command user guide). CancelCommand cancels what has not started at
// once and what runs after Latency.SSM.Cancel.
//
// Statuses follow "Understanding command statuses" (Systems Manager user
// guide): an invocation's Status is Pending, InProgress, Delayed, Success,
// Failed, TimedOut, Cancelling or Cancelled; StatusDetails adds
// DeliveryTimedOut and ExecutionTimedOut (Status TimedOut), Undeliverable
// and Terminated (Status Failed). The command is Success when every
// invocation succeeded (Undeliverable ones aside), Failed when errors
// exceeded MaxErrors (StatusDetails Failed) or some invocation did not
// succeed (Incomplete), TimedOut when more than MaxErrors delivery timeouts
// happened, Cancelled after CancelCommand.

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ec2ops/ec2ops/internal/quantity"
)

// Limits of Run Command. Sources: SSM API reference, SendCommand
// (InstanceIds up to 50; Targets up to 5 keys of up to 50 values;
// TimeoutSeconds 30-2592000; Comment up to 100 characters; MaxConcurrency
// default 50, MaxErrors default 0), ListCommands and ListCommandInvocations
// (MaxResults 1-50), GetCommandInvocation (the first 24,000 characters of
// stdout and 8,000 of stderr); amazon-ssm-agent iohandler
// (MaximumPluginOutputSize 2500 for the combined plugin Output that
// ListCommandInvocations returns, with the "----------ERROR-------"
// separator and the "---Output truncated---" markers).
const (
	maxSendInstanceIDs = 50
	maxTargetKeys      = 5
	maxTargetValues    = 50
	minTimeoutSeconds  = 30
	maxTimeoutSeconds  = 2592000
	defTimeoutSeconds  = 3600
	maxComment         = 100
	maxListResults     = 50
	maxStdout          = 24000
	maxStderr          = 8000
	maxPluginOutput    = 2500
	errorTitle         = "\n----------ERROR-------\n"
	truncOut           = "\n---Output truncated---"
	truncErr           = "\n---Error truncated----"
)

// Patterns SSM validates MaxConcurrency and MaxErrors with (SendCommand API
// reference).
var (
	reMaxConcurrency = regexp.MustCompile(`^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$`)
	reMaxErrors      = regexp.MustCompile(`^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$`)
)

// command is one SendCommand request and its invocations.
type command struct {
	id          string
	in          *ssm.SendCommandInput // normalized copy
	doc         *Document
	requested   time.Time
	timeout     time.Duration // delivery timeout (TimeoutSeconds, scaled)
	execTimeout time.Duration // scaled
	invs        []*invocation
	byInstance  map[string]*invocation
	maxConc     int
	maxErrs     int
	next        int // index of the next invocation to dispatch
	inFlight    int
	peak        int // most invocations in flight at once
	errors      int
	completed   int
	deliveryTO  int
	stopped     bool // MaxErrors exceeded
	cancelled   bool
	status      ssmtypes.CommandStatus
	details     string
}

// invocation is one command on one instance.
type invocation struct {
	cmd          *command
	ag           *agent
	seq          int
	status       ssmtypes.CommandInvocationStatus
	details      string
	dispatched   bool
	dispatchedAt time.Time // when it took one of the command's MaxConcurrency slots
	started      bool
	done         bool
	responseCode int32
	start, end   time.Time
	stdout       string
	stderr       string
	result       DocumentResult // decided when it starts
	rebooting    bool           // the document rebooted the instance and waits for the agent
	interrupted  bool           // the instance rebooted or stopped under it
	rng          *rand.Rand
}

func (inv *invocation) instanceID() string { return inv.ag.in.id }

// SendCommand sends a command. See the file comment for the model.
func (c *SSM) SendCommand(ctx context.Context, params *ssm.SendCommandInput, optFns ...func(*ssm.Options)) (*ssm.SendCommandOutput, error) {
	if params == nil {
		params = &ssm.SendCommandInput{}
	}
	s := c.sim
	var out *ssm.SendCommandOutput
	err := s.call(ctx, svcSSM, "SendCommand", nil, func(now time.Time) error {
		cmd, err := s.sendCommand(now, params)
		if err != nil {
			return err
		}
		c := s.sdkCommand(cmd)
		out = &ssm.SendCommandOutput{Command: &c}
		return nil
	})
	return out, err
}

func validationError(format string, args ...any) error {
	return apiError("ValidationException", format, args...)
}

func (s *Sim) sendCommand(now time.Time, p *ssm.SendCommandInput) (*command, error) {
	name := aws.ToString(p.DocumentName)
	if name == "" {
		return nil, validationError("1 validation error detected: Value null at 'documentName' failed to satisfy constraint: Member must not be null")
	}
	doc := s.ssm.docs[name]
	if doc == nil {
		return nil, apiError("InvalidDocument", "Document with name %s does not exist.", name)
	}
	switch v := aws.ToString(p.DocumentVersion); v {
	case "", "$DEFAULT", "$LATEST", "1":
	default:
		return nil, apiError("InvalidDocumentVersion", "Document %s does not have version %s.", name, v)
	}
	if len(p.InstanceIds) > 0 && len(p.Targets) > 0 {
		return nil, validationError("InstanceIds and Targets cannot be specified together.")
	}
	if len(p.InstanceIds) == 0 && len(p.Targets) == 0 {
		return nil, validationError("Either InstanceIds or Targets must be specified.")
	}
	if len(p.InstanceIds) > maxSendInstanceIDs {
		return nil, validationError("1 validation error detected: Value at 'instanceIds' failed to satisfy constraint: Member must have length less than or equal to %d", maxSendInstanceIDs)
	}
	if len(p.Targets) > maxTargetKeys {
		return nil, validationError("1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length less than or equal to %d", maxTargetKeys)
	}
	for _, t := range p.Targets {
		if len(t.Values) == 0 || len(t.Values) > maxTargetValues {
			return nil, validationError("Target %s must have 1 to %d values.", aws.ToString(t.Key), maxTargetValues)
		}
	}
	conc, errs := aws.ToString(p.MaxConcurrency), aws.ToString(p.MaxErrors)
	if conc == "" {
		conc = "50"
	}
	if errs == "" {
		errs = "0"
	}
	if !reMaxConcurrency.MatchString(conc) {
		return nil, validationError("1 validation error detected: Value '%s' at 'maxConcurrency' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", conc, reMaxConcurrency)
	}
	if !reMaxErrors.MatchString(errs) {
		return nil, validationError("1 validation error detected: Value '%s' at 'maxErrors' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", errs, reMaxErrors)
	}
	timeout := int32(defTimeoutSeconds)
	if p.TimeoutSeconds != nil {
		timeout = *p.TimeoutSeconds
		if timeout < minTimeoutSeconds || timeout > maxTimeoutSeconds {
			return nil, validationError("1 validation error detected: Value '%d' at 'timeoutSeconds' failed to satisfy constraint: Member must have value between %d and %d", timeout, minTimeoutSeconds, maxTimeoutSeconds)
		}
	}
	if utf8.RuneCountInString(aws.ToString(p.Comment)) > maxComment {
		return nil, validationError("1 validation error detected: Value at 'comment' failed to satisfy constraint: Member must have length less than or equal to %d", maxComment)
	}
	if err := doc.validate(p.Parameters); err != nil {
		return nil, err
	}
	execTimeout, err := doc.executionTimeout(p.Parameters)
	if err != nil {
		return nil, err
	}
	targets, err := s.resolveTargets(now, p)
	if err != nil {
		return nil, err
	}

	cp := *p
	cp.InstanceIds = slices.Clone(p.InstanceIds)
	cp.Targets = slices.Clone(p.Targets)
	cp.Parameters = maps.Clone(p.Parameters)
	cp.MaxConcurrency, cp.MaxErrors, cp.TimeoutSeconds = aws.String(conc), aws.String(errs), aws.Int32(timeout)
	cmd := &command{
		id:          s.newCommandID(),
		in:          &cp,
		doc:         doc,
		requested:   now,
		timeout:     s.scaled(time.Duration(timeout) * time.Second),
		execTimeout: s.scaled(execTimeout),
		byInstance:  map[string]*invocation{},
		status:      ssmtypes.CommandStatusPending,
		details:     "Pending",
	}
	n := len(targets)
	cmd.maxConc = max(1, quantity.MustParse(conc).Ceil(n))
	cmd.maxErrs = quantity.MustParse(errs).Floor(n)
	for i, ag := range targets {
		inv := &invocation{cmd: cmd, ag: ag, seq: i, status: ssmtypes.CommandInvocationStatusPending,
			details: "Pending", responseCode: -1, rng: s.resourceRand("ssm-invocation/" + cmd.id + "/" + ag.in.id)}
		cmd.invs = append(cmd.invs, inv)
		cmd.byInstance[ag.in.id] = inv
	}
	s.ssm.commands[cmd.id] = cmd
	s.ssm.cmdSeq = append(s.ssm.cmdSeq, cmd)
	s.dispatch(now, cmd)
	s.updateCommand(cmd)
	return cmd, nil
}

// newCommandID returns a deterministic command ID in UUID format.
func (s *Sim) newCommandID() string {
	id := s.newID("cmd-")
	a := mix64(hashString(id))
	b := mix64(a)
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, a>>16&0xffff, 0x4000|a&0x0fff, 0x8000|b>>48&0x3fff, b&0xffffffffffff)
}

// resolveTargets returns the agents a command runs on (lock held).
// Explicit InstanceIds must all be managed and not terminated, otherwise
// the call fails with InvalidInstanceId, as SSM does for an instance whose
// agent is not registered. Targets select managed instances by tag
// (tag:KEY, tag-key) or ID (InstanceIds); several targets are ANDed.
func (s *Sim) resolveTargets(now time.Time, p *ssm.SendCommandInput) ([]*agent, error) {
	managed := func(id string) *agent {
		ag := s.ssm.agents[id]
		if ag == nil || !ag.registered || ag.in.expired || !s.visible(ag.in, now) {
			return nil
		}
		switch ag.in.state {
		case types.InstanceStateNameShuttingDown, types.InstanceStateNameTerminated:
			return nil
		}
		return ag
	}
	if len(p.InstanceIds) > 0 {
		var bad []string
		var out []*agent
		seen := map[string]bool{}
		for _, id := range p.InstanceIds {
			if seen[id] {
				continue
			}
			seen[id] = true
			ag := managed(id)
			if ag == nil {
				bad = append(bad, id)
				continue
			}
			out = append(out, ag)
		}
		if len(bad) > 0 {
			return nil, apiError("InvalidInstanceId", "Instances [[%s]] not in a valid state for account %s", strings.Join(bad, ", "), accountID)
		}
		return out, nil
	}
	var preds []func(*agent) bool
	for _, t := range p.Targets {
		key := aws.ToString(t.Key)
		set := map[string]bool{}
		for _, v := range t.Values {
			set[v] = true
		}
		switch {
		case key == "InstanceIds" || key == "instanceids":
			preds = append(preds, func(a *agent) bool { return set[a.in.id] })
		case key == "tag-key":
			preds = append(preds, func(a *agent) bool {
				for k := range a.in.allTags() {
					if set[k] {
						return true
					}
				}
				return false
			})
		case strings.HasPrefix(key, "tag:") && len(key) > 4:
			k := key[4:]
			preds = append(preds, func(a *agent) bool {
				v, ok := a.in.allTags()[k]
				return ok && set[v]
			})
		default:
			return nil, apiError("InvalidTarget", "Target key %s is not supported by the simulator (tag:KEY, tag-key, InstanceIds).", key)
		}
	}
	var out []*agent
	for _, in := range s.ec2.order {
		ag := s.ssm.agents[in.id]
		if ag == nil || managed(in.id) == nil {
			continue
		}
		ok := true
		for _, p := range preds {
			if !p(ag) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, ag)
		}
	}
	return out, nil
}

// dispatch sends pending invocations while the concurrency allows (lock held).
func (s *Sim) dispatch(at time.Time, cmd *command) {
	for !cmd.stopped && !cmd.cancelled && cmd.inFlight < cmd.maxConc && cmd.next < len(cmd.invs) {
		inv := cmd.invs[cmd.next]
		cmd.next++
		if inv.done {
			continue
		}
		cmd.inFlight++
		cmd.peak = max(cmd.peak, cmd.inFlight)
		inv.dispatched, inv.dispatchedAt = true, at
		s.deliver(at, inv)
	}
}

// deliver hands a dispatched invocation to its agent (lock held).
func (s *Sim) deliver(at time.Time, inv *invocation) {
	in := inv.ag.in
	if in.expired || in.state == types.InstanceStateNameShuttingDown || in.state == types.InstanceStateNameTerminated {
		s.finish(at, inv, ssmtypes.CommandInvocationStatusFailed, "Undeliverable", -1)
		return
	}
	deadline := at.Add(inv.cmd.timeout)
	s.schedule(deadline, func(due time.Time) {
		if !inv.done && !inv.started {
			s.finish(due, inv, ssmtypes.CommandInvocationStatusTimedOut, "DeliveryTimedOut", -1)
		}
	})
	if !inv.ag.isOnline() {
		inv.status, inv.details = ssmtypes.CommandInvocationStatusDelayed, "Delayed"
		inv.ag.waiting = append(inv.ag.waiting, inv)
		return
	}
	inv.status, inv.details = ssmtypes.CommandInvocationStatusInProgress, "InProgress"
	gen := inv.ag.gen
	s.schedule(at.Add(s.draw(inv.rng, s.opts.Latency.SSM.Delivery)), func(due time.Time) {
		if inv.done || inv.started {
			return
		}
		if inv.ag.gen != gen || !inv.ag.isOnline() {
			inv.status, inv.details = ssmtypes.CommandInvocationStatusDelayed, "Delayed"
			inv.ag.waiting = append(inv.ag.waiting, inv)
			return
		}
		s.startInvocation(due, inv)
	})
}

// agentBack resumes an invocation that waited for its agent (lock held).
func (s *Sim) agentBack(at time.Time, inv *invocation) {
	switch {
	case inv.done:
	case !inv.started:
		inv.status, inv.details = ssmtypes.CommandInvocationStatusInProgress, "InProgress"
		s.startInvocation(at, inv)
	case inv.rebooting:
		// The document asked for the reboot: it finishes after it.
		inv.rebooting = false
		s.complete(at, inv)
	case inv.interrupted:
		inv.stderr += "\nfailed to run commands: the instance restarted while the command ran"
		s.finish(at, inv, ssmtypes.CommandInvocationStatusFailed, "Failed", 1)
	}
}

// interruptRunning marks the running invocations of ag as interrupted by a
// reboot the document did not ask for (lock held).
func (s *Sim) interruptRunning(_ time.Time, ag *agent) {
	for _, cmd := range s.ssm.cmdSeq {
		inv := cmd.byInstance[ag.in.id]
		if inv == nil || inv.done || !inv.started || inv.rebooting || inv.interrupted {
			continue
		}
		inv.interrupted = true
		ag.waiting = append(ag.waiting, inv)
	}
}

// startInvocation runs the document on the instance (lock held).
func (s *Sim) startInvocation(at time.Time, inv *invocation) {
	inv.started = true
	inv.start = at
	inv.status, inv.details = ssmtypes.CommandInvocationStatusInProgress, "InProgress"
	f := s.opts.Faults.SSM
	failed := inv.rng.Float64() < f.CommandFailureRate
	hang := inv.rng.Float64() < f.CommandHangRate
	cmd := inv.cmd
	run := DocumentRun{
		CommandID:    cmd.id,
		InstanceID:   inv.instanceID(),
		DocumentName: aws.ToString(cmd.in.DocumentName),
		Parameters:   maps.Clone(cmd.in.Parameters),
		Tags:         inv.ag.in.allTags(),
		Rand:         inv.rng,
	}
	res := cmd.doc.Run(run)
	if failed {
		res.ExitCode = 1
		res.Reboot = false
		res.Stderr += "simulated failure (Faults.SSM.CommandFailureRate)"
	}
	inv.result = res
	gen := inv.ag.gen
	s.schedule(at.Add(cmd.execTimeout), func(due time.Time) {
		if !inv.done {
			s.finish(due, inv, ssmtypes.CommandInvocationStatusTimedOut, "ExecutionTimedOut", -1)
		}
	})
	if hang {
		return
	}
	s.schedule(at.Add(s.scaled(res.Duration)), func(due time.Time) {
		if inv.done || inv.interrupted {
			return
		}
		if inv.ag.gen != gen || !inv.ag.isOnline() {
			// Stopped (or rebooted) under the command: it fails when the
			// agent is back, or times out.
			inv.interrupted = true
			inv.ag.waiting = append(inv.ag.waiting, inv)
			return
		}
		if res.Reboot {
			inv.rebooting = true
			in := inv.ag.in
			s.reboot(due, in) // runs agentReboot, which leaves rebooting invocations alone
			if inv.ag.unmanaged || inv.ag.lost {
				return // never back: the execution timeout ends it
			}
			inv.ag.waiting = append(inv.ag.waiting, inv)
			return
		}
		s.complete(due, inv)
	})
}

// complete ends a started invocation with its document's result (lock held).
func (s *Sim) complete(at time.Time, inv *invocation) {
	res := inv.result
	inv.stdout, inv.stderr = res.Stdout, inv.stderr+res.Stderr
	if res.done != nil {
		res.done(at, inv.ag.in)
	}
	if res.ExitCode == 0 {
		s.finish(at, inv, ssmtypes.CommandInvocationStatusSuccess, "Success", 0)
		return
	}
	s.finish(at, inv, ssmtypes.CommandInvocationStatusFailed, "Failed", int32(res.ExitCode))
}

// finish puts inv in a terminal state and updates its command (lock held).
func (s *Sim) finish(at time.Time, inv *invocation, st ssmtypes.CommandInvocationStatus, details string, rc int32) {
	if inv.done {
		return
	}
	cmd := inv.cmd
	inv.done = true
	inv.status, inv.details, inv.responseCode, inv.end = st, details, rc, at
	if inv.dispatched {
		cmd.inFlight--
	}
	cmd.completed++
	switch details {
	case "Failed", "ExecutionTimedOut":
		cmd.errors++
	case "DeliveryTimedOut":
		cmd.deliveryTO++
	}
	if cmd.errors > cmd.maxErrs && !cmd.stopped {
		cmd.stopped = true
		for _, x := range cmd.invs[cmd.next:] {
			if !x.done {
				x.done = true
				x.status, x.details, x.end = ssmtypes.CommandInvocationStatusFailed, "Terminated", at
				cmd.completed++
			}
		}
		cmd.next = len(cmd.invs)
	}
	s.dispatch(at, cmd)
	s.updateCommand(cmd)
}

// updateCommand recomputes the command's aggregate status (lock held).
func (s *Sim) updateCommand(cmd *command) {
	n := len(cmd.invs)
	switch {
	case cmd.completed < n && cmd.cancelled:
		cmd.status, cmd.details = ssmtypes.CommandStatusCancelling, "Cancelling"
	case cmd.completed < n && cmd.next == 0:
		cmd.status, cmd.details = ssmtypes.CommandStatusPending, "Pending"
	case cmd.completed < n:
		cmd.status, cmd.details = ssmtypes.CommandStatusInProgress, "InProgress"
	case cmd.cancelled:
		cmd.status, cmd.details = ssmtypes.CommandStatusCancelled, "Cancelled"
	case cmd.errors > cmd.maxErrs:
		cmd.status, cmd.details = ssmtypes.CommandStatusFailed, "Failed"
	case cmd.deliveryTO > cmd.maxErrs:
		cmd.status, cmd.details = ssmtypes.CommandStatusTimedOut, "DeliveryTimedOut"
	default:
		ok := true
		for _, inv := range cmd.invs {
			if inv.details != "Success" && inv.details != "Undeliverable" {
				ok = false
				break
			}
		}
		if ok {
			cmd.status, cmd.details = ssmtypes.CommandStatusSuccess, "Success"
		} else {
			cmd.status, cmd.details = ssmtypes.CommandStatusFailed, "Incomplete"
		}
	}
}

// CancelCommand cancels a command on all its instances or on InstanceIds.
// What has not started is Cancelled at once; what runs is Cancelling, then
// Cancelled after Latency.SSM.Cancel.
func (c *SSM) CancelCommand(ctx context.Context, params *ssm.CancelCommandInput, optFns ...func(*ssm.Options)) (*ssm.CancelCommandOutput, error) {
	if params == nil {
		params = &ssm.CancelCommandInput{}
	}
	s := c.sim
	err := s.call(ctx, svcSSM, "CancelCommand", nil, func(now time.Time) error {
		cmd := s.ssm.commands[aws.ToString(params.CommandId)]
		if cmd == nil {
			return apiError("InvalidCommandId", "Command ID %s is not valid.", aws.ToString(params.CommandId))
		}
		invs := cmd.invs
		if len(params.InstanceIds) > 0 {
			invs = nil
			for _, id := range params.InstanceIds {
				inv := cmd.byInstance[id]
				if inv == nil {
					return apiError("InvalidInstanceId", "Instance %s is not part of command %s.", id, cmd.id)
				}
				invs = append(invs, inv)
			}
		} else {
			cmd.cancelled = true
		}
		for _, inv := range invs {
			s.cancelInvocation(now, inv)
		}
		s.updateCommand(cmd)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ssm.CancelCommandOutput{}, nil
}

func (s *Sim) cancelInvocation(at time.Time, inv *invocation) {
	if inv.done {
		return
	}
	if !inv.started {
		s.finish(at, inv, ssmtypes.CommandInvocationStatusCancelled, "Cancelled", -1)
		return
	}
	inv.status, inv.details = ssmtypes.CommandInvocationStatusCancelling, "Cancelling"
	s.schedule(at.Add(s.draw(inv.rng, s.opts.Latency.SSM.Cancel)), func(due time.Time) {
		s.finish(due, inv, ssmtypes.CommandInvocationStatusCancelled, "Cancelled", -1)
	})
}

func (s *Sim) sdkCommand(cmd *command) ssmtypes.Command {
	p := cmd.in
	expires := cmd.requested.Add(cmd.timeout + cmd.execTimeout)
	return ssmtypes.Command{
		CommandId:              aws.String(cmd.id),
		DocumentName:           p.DocumentName,
		DocumentVersion:        aws.String(cmpOr(aws.ToString(p.DocumentVersion), "$DEFAULT")),
		Comment:                p.Comment,
		InstanceIds:            slices.Clone(p.InstanceIds),
		Targets:                slices.Clone(p.Targets),
		Parameters:             maps.Clone(p.Parameters),
		MaxConcurrency:         p.MaxConcurrency,
		MaxErrors:              p.MaxErrors,
		TimeoutSeconds:         p.TimeoutSeconds,
		OutputS3BucketName:     p.OutputS3BucketName,
		OutputS3KeyPrefix:      p.OutputS3KeyPrefix,
		OutputS3Region:         aws.String(s.opts.Region),
		CloudWatchOutputConfig: p.CloudWatchOutputConfig,
		NotificationConfig:     p.NotificationConfig,
		AlarmConfiguration:     p.AlarmConfiguration,
		ServiceRole:            p.ServiceRoleArn,
		RequestedDateTime:      aws.Time(cmd.requested),
		ExpiresAfter:           aws.Time(expires),
		Status:                 cmd.status,
		StatusDetails:          aws.String(cmd.details),
		TargetCount:            int32(len(cmd.invs)),
		CompletedCount:         int32(cmd.completed),
		ErrorCount:             int32(cmd.errors),
		DeliveryTimedOutCount:  int32(cmd.deliveryTO),
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// commandsFor returns the command with id, or every command newest first
// when id is empty, as ListCommands and ListCommandInvocations list them
// (lock held).
func (s *Sim) commandsFor(id *string) ([]*command, error) {
	if id := aws.ToString(id); id != "" {
		cmd := s.ssm.commands[id]
		if cmd == nil {
			return nil, apiError("InvalidCommandId", "Command ID %s is not valid.", id)
		}
		return []*command{cmd}, nil
	}
	cmds := make([]*command, 0, len(s.ssm.cmdSeq))
	for i := len(s.ssm.cmdSeq) - 1; i >= 0; i-- {
		cmds = append(cmds, s.ssm.cmdSeq[i])
	}
	return cmds, nil
}

// ListCommands lists commands, newest first: one (CommandId), those that
// target InstanceId, or all, with filters Status, DocumentName,
// InvokedAfter and InvokedBefore, MaxResults 1-50 (default 50) and
// NextToken.
func (c *SSM) ListCommands(ctx context.Context, params *ssm.ListCommandsInput, optFns ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error) {
	if params == nil {
		params = &ssm.ListCommandsInput{}
	}
	s := c.sim
	var out *ssm.ListCommandsOutput
	err := s.call(ctx, svcSSM, "ListCommands", nil, func(now time.Time) error {
		limit, start, err := listPage(params.MaxResults, params.NextToken)
		if err != nil {
			return err
		}
		match, err := commandFilter(params.Filters)
		if err != nil {
			return err
		}
		cmds, err := s.commandsFor(params.CommandId)
		if err != nil {
			return err
		}
		out = &ssm.ListCommandsOutput{Commands: []ssmtypes.Command{}}
		k := 0
		for _, cmd := range cmds {
			if iid := aws.ToString(params.InstanceId); iid != "" && cmd.byInstance[iid] == nil {
				continue
			}
			if !match(cmd, cmd.status, cmd.requested) {
				continue
			}
			if k >= start {
				if len(out.Commands) == limit {
					out.NextToken = aws.String(pageToken(k))
					break
				}
				out.Commands = append(out.Commands, s.sdkCommand(cmd))
			}
			k++
		}
		return nil
	})
	return out, err
}

func listPage(maxResults *int32, next *string) (limit, start int, err error) {
	limit = maxListResults
	if maxResults != nil {
		limit = int(*maxResults)
		if limit < 1 || limit > maxListResults {
			return 0, 0, validationError("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and %d", limit, maxListResults)
		}
	}
	start, err = pageStart(next)
	return limit, start, err
}

// commandFilter builds the filter of ListCommands / ListCommandInvocations.
func commandFilter(fs []ssmtypes.CommandFilter) (func(cmd *command, status any, at time.Time) bool, error) {
	var preds []func(cmd *command, status any, at time.Time) bool
	for _, f := range fs {
		v := aws.ToString(f.Value)
		switch f.Key {
		case ssmtypes.CommandFilterKeyStatus:
			preds = append(preds, func(_ *command, st any, _ time.Time) bool { return fmt.Sprint(st) == v })
		case ssmtypes.CommandFilterKeyDocumentName:
			preds = append(preds, func(cmd *command, _ any, _ time.Time) bool { return aws.ToString(cmd.in.DocumentName) == v })
		case ssmtypes.CommandFilterKeyInvokedAfter, ssmtypes.CommandFilterKeyInvokedBefore:
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return nil, apiError("InvalidFilterValue", "The filter value %s is not a valid timestamp.", v)
			}
			after := f.Key == ssmtypes.CommandFilterKeyInvokedAfter
			preds = append(preds, func(_ *command, _ any, at time.Time) bool {
				if after {
					return !at.Before(t)
				}
				return !at.After(t)
			})
		default:
			return nil, apiError("InvalidFilterKey", "The filter key %s is not supported.", f.Key)
		}
	}
	return func(cmd *command, st any, at time.Time) bool {
		for _, p := range preds {
			if !p(cmd, st, at) {
				return false
			}
		}
		return true
	}, nil
}

// ListCommandInvocations lists invocations in target order, of one command
// (CommandId) or of all, optionally of one instance, with Details (the
// plugin's combined output, at most 2,500 characters as the agent reports
// it), filters, MaxResults 1-50 (default 50) and NextToken.
func (c *SSM) ListCommandInvocations(ctx context.Context, params *ssm.ListCommandInvocationsInput, optFns ...func(*ssm.Options)) (*ssm.ListCommandInvocationsOutput, error) {
	if params == nil {
		params = &ssm.ListCommandInvocationsInput{}
	}
	s := c.sim
	var out *ssm.ListCommandInvocationsOutput
	err := s.call(ctx, svcSSM, "ListCommandInvocations", nil, func(now time.Time) error {
		limit, start, err := listPage(params.MaxResults, params.NextToken)
		if err != nil {
			return err
		}
		match, err := commandFilter(params.Filters)
		if err != nil {
			return err
		}
		cmds, err := s.commandsFor(params.CommandId)
		if err != nil {
			return err
		}
		out = &ssm.ListCommandInvocationsOutput{CommandInvocations: []ssmtypes.CommandInvocation{}}
		k := 0
	loop:
		for _, cmd := range cmds {
			for _, inv := range cmd.invs {
				if iid := aws.ToString(params.InstanceId); iid != "" && inv.instanceID() != iid {
					continue
				}
				if !match(cmd, inv.status, cmd.requested) {
					continue
				}
				if k >= start {
					if len(out.CommandInvocations) == limit {
						out.NextToken = aws.String(pageToken(k))
						break loop
					}
					out.CommandInvocations = append(out.CommandInvocations, s.sdkInvocation(inv, params.Details))
				}
				k++
			}
		}
		return nil
	})
	return out, err
}

func (s *Sim) outputURLs(inv *invocation) (stdoutURL, stderrURL string) {
	p := inv.cmd.in
	bucket := aws.ToString(p.OutputS3BucketName)
	if bucket == "" || !inv.done || !inv.started {
		return "", ""
	}
	dir := strings.ReplaceAll(inv.cmd.doc.Plugin, ":", "")
	key := strings.Trim(aws.ToString(p.OutputS3KeyPrefix), "/")
	if key != "" {
		key += "/"
	}
	base := fmt.Sprintf("https://s3.%s.amazonaws.com/%s/%s%s/%s/%s/0.%s/", s.opts.Region, bucket, key, inv.cmd.id, inv.instanceID(), dir, dir)
	return base + "stdout", base + "stderr"
}

func (s *Sim) sdkInvocation(inv *invocation, details bool) ssmtypes.CommandInvocation {
	cmd := inv.cmd
	outURL, errURL := s.outputURLs(inv)
	ci := ssmtypes.CommandInvocation{
		CommandId:              aws.String(cmd.id),
		InstanceId:             aws.String(inv.instanceID()),
		DocumentName:           cmd.in.DocumentName,
		DocumentVersion:        aws.String(cmpOr(aws.ToString(cmd.in.DocumentVersion), "$DEFAULT")),
		Comment:                cmd.in.Comment,
		RequestedDateTime:      aws.Time(cmd.requested),
		Status:                 inv.status,
		StatusDetails:          aws.String(inv.details),
		StandardOutputUrl:      aws.String(outURL),
		StandardErrorUrl:       aws.String(errURL),
		CloudWatchOutputConfig: cmd.in.CloudWatchOutputConfig,
		NotificationConfig:     cmd.in.NotificationConfig,
		ServiceRole:            cmd.in.ServiceRoleArn,
		TraceOutput:            aws.String(""),
		CommandPlugins:         []ssmtypes.CommandPlugin{},
	}
	if details {
		pl := ssmtypes.CommandPlugin{
			Name:               aws.String(cmd.doc.Plugin),
			Status:             ssmtypes.CommandPluginStatus(pluginStatus(inv)),
			StatusDetails:      aws.String(inv.details),
			ResponseCode:       inv.responseCode,
			Output:             aws.String(pluginOutput(inv.stdout, inv.stderr)),
			OutputS3BucketName: cmd.in.OutputS3BucketName,
			OutputS3KeyPrefix:  cmd.in.OutputS3KeyPrefix,
			OutputS3Region:     aws.String(s.opts.Region),
			StandardOutputUrl:  aws.String(outURL),
			StandardErrorUrl:   aws.String(errURL),
		}
		if inv.started {
			pl.ResponseStartDateTime = aws.Time(inv.start)
		}
		if inv.done && inv.started {
			pl.ResponseFinishDateTime = aws.Time(inv.end)
		}
		ci.CommandPlugins = []ssmtypes.CommandPlugin{pl}
	}
	return ci
}

func pluginStatus(inv *invocation) string {
	switch inv.status {
	case ssmtypes.CommandInvocationStatusDelayed:
		return string(ssmtypes.CommandPluginStatusPending)
	case ssmtypes.CommandInvocationStatusCancelling:
		return string(ssmtypes.CommandPluginStatusInProgress)
	}
	return string(inv.status)
}

// prefix returns the first n characters (runes) of s and whether it cut.
func prefix(s string, n int) (string, bool) {
	if n <= 0 {
		return "", s != ""
	}
	if len(s) <= n { // bytes >= runes
		return s, false
	}
	i := 0
	for k := range s {
		if i == n {
			return s[:k], true
		}
		i++
	}
	return s, false
}

// pluginOutput combines stdout and stderr as the agent does for the
// plugin Output field: stdout, an error title, stderr, the whole at most
// maxPluginOutput characters, each part marked when cut.
func pluginOutput(stdout, stderr string) string {
	title := ""
	if stderr != "" {
		title = errorTitle
	}
	room := maxPluginOutput - utf8.RuneCountInString(title)
	no, ne := utf8.RuneCountInString(stdout), utf8.RuneCountInString(stderr)
	if no+ne <= room {
		return stdout + title + stderr
	}
	switch {
	case no > room/2 && ne > room/2:
		each := (room - len(truncOut) - len(truncErr)) / 2
		o, _ := prefix(stdout, each)
		e, _ := prefix(stderr, each)
		return o + truncOut + title + e + truncErr
	case no <= room/2:
		e, _ := prefix(stderr, room-len(truncErr)-no)
		return stdout + title + e + truncErr
	default:
		o, _ := prefix(stdout, room-len(truncOut)-ne)
		return o + truncOut + title + stderr
	}
}

// GetCommandInvocation returns one invocation with the first 24,000
// characters of stdout and 8,000 of stderr. PluginName, if set, must be
// the document's step name.
func (c *SSM) GetCommandInvocation(ctx context.Context, params *ssm.GetCommandInvocationInput, optFns ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error) {
	if params == nil {
		params = &ssm.GetCommandInvocationInput{}
	}
	s := c.sim
	var out *ssm.GetCommandInvocationOutput
	err := s.call(ctx, svcSSM, "GetCommandInvocation", nil, func(now time.Time) error {
		cmd := s.ssm.commands[aws.ToString(params.CommandId)]
		if cmd == nil {
			return apiError("InvalidCommandId", "Command ID %s is not valid.", aws.ToString(params.CommandId))
		}
		inv := cmd.byInstance[aws.ToString(params.InstanceId)]
		if inv == nil {
			return apiError("InvocationDoesNotExist", "An invocation for instance %s of command %s does not exist.", aws.ToString(params.InstanceId), cmd.id)
		}
		if pn := aws.ToString(params.PluginName); pn != "" && pn != cmd.doc.Plugin {
			return apiError("InvalidPluginName", "Plugin %s is not part of document %s.", pn, aws.ToString(cmd.in.DocumentName))
		}
		stdout, _ := prefix(inv.stdout, maxStdout)
		stderr, _ := prefix(inv.stderr, maxStderr)
		outURL, errURL := s.outputURLs(inv)
		out = &ssm.GetCommandInvocationOutput{
			CommandId:              aws.String(cmd.id),
			InstanceId:             aws.String(inv.instanceID()),
			Comment:                cmd.in.Comment,
			DocumentName:           cmd.in.DocumentName,
			DocumentVersion:        aws.String(cmpOr(aws.ToString(cmd.in.DocumentVersion), "$DEFAULT")),
			PluginName:             aws.String(cmd.doc.Plugin),
			ResponseCode:           inv.responseCode,
			Status:                 inv.status,
			StatusDetails:          aws.String(inv.details),
			StandardOutputContent:  aws.String(stdout),
			StandardErrorContent:   aws.String(stderr),
			StandardOutputUrl:      aws.String(outURL),
			StandardErrorUrl:       aws.String(errURL),
			CloudWatchOutputConfig: cmd.in.CloudWatchOutputConfig,
			ExecutionStartDateTime: aws.String(""),
			ExecutionEndDateTime:   aws.String(""),
			ExecutionElapsedTime:   aws.String(""),
		}
		if inv.started {
			out.ExecutionStartDateTime = aws.String(inv.start.UTC().Format(time.RFC3339))
			end := now
			if inv.done {
				end = inv.end
				out.ExecutionEndDateTime = aws.String(inv.end.UTC().Format(time.RFC3339))
			}
			out.ExecutionElapsedTime = aws.String(isoDuration(end.Sub(inv.start)))
		}
		return nil
	})
	return out, err
}

// isoDuration renders d as ISO 8601 (PT1M30.5S), as ExecutionElapsedTime.
func isoDuration(d time.Duration) string {
	return "PT" + strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "S"
}

// CommandView is a read-only snapshot of a command, for tests.
type CommandView struct {
	ID, Document, Status, StatusDetails string
	Targets, Completed, Errors          int
	MaxConcurrency, MaxErrors           int
	// PeakInFlight is the most invocations dispatched and not finished at
	// once, over the command's life.
	PeakInFlight int
	Invocations  map[string]InvocationView
}

// InvocationView is one invocation of a CommandView.
type InvocationView struct {
	Status, StatusDetails string
	ResponseCode          int
	// Dispatched is when the invocation took one of the command's
	// MaxConcurrency slots (delivery to the agent follows); Start is when the
	// agent started it; End is when it finished.
	Dispatched, Start, End time.Time
	Stdout, Stderr         string // full, untruncated
}

// Command returns a snapshot of command id, for tests.
func (s *Sim) Command(id string) (CommandView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	cmd := s.ssm.commands[id]
	if cmd == nil {
		return CommandView{}, false
	}
	v := CommandView{ID: cmd.id, Document: aws.ToString(cmd.in.DocumentName), Status: string(cmd.status),
		StatusDetails: cmd.details, Targets: len(cmd.invs), Completed: cmd.completed, Errors: cmd.errors,
		MaxConcurrency: cmd.maxConc, MaxErrors: cmd.maxErrs, PeakInFlight: cmd.peak, Invocations: map[string]InvocationView{}}
	for _, inv := range cmd.invs {
		v.Invocations[inv.instanceID()] = InvocationView{Status: string(inv.status), StatusDetails: inv.details,
			ResponseCode: int(inv.responseCode), Dispatched: inv.dispatchedAt, Start: inv.start, End: inv.end, Stdout: inv.stdout, Stderr: inv.stderr}
	}
	return v, true
}

// CommandIDs returns the IDs of every command sent, in send order.
func (s *Sim) CommandIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.ssm.cmdSeq))
	for i, c := range s.ssm.cmdSeq {
		out[i] = c.id
	}
	return out
}

// Document is the simulated behaviour of an SSM document. Register one with
// Sim.RegisterDocument; SendCommand answers InvalidDocument for a name
// that is not registered. AWS-RunShellScript, AWS-RunPatchBaseline and
// AWS-RunPatchBaselineWithHooks are built in.
//
// To add a document (for example AWS-ApplyChefRecipes or
// AWS-ApplyAnsiblePlaybooks), add a file ssm_doc_NAME.go with a function
// that calls s.RegisterDocument(name, Document{...}) and call it from
// registerBuiltinDocuments, or register it from a test with
// sim.RegisterDocument. Run decides the outcome of one invocation from the
// parameters, the instance's tags and a seeded source.
type Document struct {
	// Plugin is the step name ListCommandInvocations reports and
	// GetCommandInvocation accepts as PluginName, e.g. "aws:runShellScript".
	// Empty means "aws:runShellScript".
	Plugin string
	// Parameters are the parameter names the document accepts; SendCommand
	// fails with InvalidParameters for any other. Nil accepts any name.
	Parameters []string
	// Required are the parameters SendCommand must carry.
	Required []string
	// ExecutionTimeout is the default execution timeout; a parameter
	// "executionTimeout" (seconds, 1-172800) overrides it when the document
	// accepts it. Zero means 1h (AWS-RunShellScript's default).
	ExecutionTimeout time.Duration
	// Run decides what one invocation does. It runs with the Sim locked and
	// must not call the Sim. Nil runs for Latency.SSM.Shell and succeeds.
	Run func(DocumentRun) DocumentResult

	check func(params map[string][]string) error // extra validation of built-ins
}

// DocumentRun is what a document's Run sees of one invocation.
type DocumentRun struct {
	CommandID, InstanceID, DocumentName string
	// Parameters are the command's parameters (a copy).
	Parameters map[string][]string
	// Tags are the instance's tags (a copy).
	Tags map[string]string
	// Rand is seeded by the Sim's seed, the command and the instance.
	Rand *rand.Rand
}

// DocumentResult is what one invocation does.
type DocumentResult struct {
	// Duration is the run time in simulated time (multiplied by
	// Options.TimeScale). Past the execution timeout the invocation ends
	// TimedOut.
	Duration time.Duration
	// ExitCode 0 is Success; anything else is Failed with that response code.
	ExitCode int
	// Stdout and Stderr are the full output; the API truncates them.
	Stdout, Stderr string
	// Reboot reboots the instance when Duration has passed; the invocation
	// finishes when the agent is back online (the agent's exit-code-3010
	// behaviour), or times out if it never comes back.
	Reboot bool

	done func(at time.Time, in *instance) // state changes of built-ins, applied on completion
}

// RegisterDocument adds or replaces the behaviour of document name.
func (s *Sim) RegisterDocument(name string, d Document) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.registerDocument(name, d)
}

func (s *Sim) registerDocument(name string, d Document) {
	if d.Plugin == "" {
		d.Plugin = "aws:runShellScript"
	}
	if d.ExecutionTimeout <= 0 {
		d.ExecutionTimeout = time.Hour
	}
	if d.Run == nil {
		d.Run = func(r DocumentRun) DocumentResult {
			return DocumentResult{Duration: s.drawRaw(r.Rand, s.opts.Latency.SSM.Shell)}
		}
	}
	s.ssm.docs[name] = &d
}

// drawRaw draws from d without the time scale (Run returns unscaled
// durations; the command model scales them).
func (s *Sim) drawRaw(r *rand.Rand, d Dist) time.Duration {
	v := d.Min
	if d.Max > d.Min {
		v += time.Duration(r.Int64N(int64(d.Max-d.Min) + 1))
	}
	return v
}

func (d *Document) validate(params map[string][]string) error {
	if d.Parameters != nil {
		for k := range params {
			if !slices.Contains(d.Parameters, k) {
				return apiError("InvalidParameters", "Parameter %q is not defined in the document.", k)
			}
		}
	}
	for _, k := range d.Required {
		if len(params[k]) == 0 {
			return apiError("InvalidParameters", "Parameter %q is required.", k)
		}
	}
	if d.check != nil {
		return d.check(params)
	}
	return nil
}

func (d *Document) executionTimeout(params map[string][]string) (time.Duration, error) {
	v := params["executionTimeout"]
	if len(v) == 0 || (d.Parameters != nil && !slices.Contains(d.Parameters, "executionTimeout")) {
		return d.ExecutionTimeout, nil
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || n < 1 || n > 172800 {
		return 0, apiError("InvalidParameters", "Parameter \"executionTimeout\" must be a number of seconds from 1 to 172800.")
	}
	return time.Duration(n) * time.Second, nil
}

// ScriptShell scripts AWS-RunShellScript for tests: fn decides the exit
// code and output of each invocation from the instance and the commands;
// the run time is still drawn from Latency.SSM.Shell. Nil restores the
// default (exit 0, no output).
func (s *Sim) ScriptShell(fn func(instanceID string, commands []string) (exitCode int, stdout, stderr string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ssm.shell = fn
}

// registerBuiltinDocuments registers the documents the Sim knows (lock
// held or during New). Source for the parameters: the AWS-owned documents
// in the Systems Manager console (AWS-RunShellScript: commands,
// workingDirectory, executionTimeout with default 3600 and maximum 172800).
func (s *Sim) registerBuiltinDocuments() {
	s.registerDocument("AWS-RunShellScript", Document{
		Plugin:           "aws:runShellScript",
		Parameters:       []string{"commands", "workingDirectory", "executionTimeout"},
		Required:         []string{"commands"},
		ExecutionTimeout: time.Hour,
		Run: func(r DocumentRun) DocumentResult {
			res := DocumentResult{Duration: s.drawRaw(r.Rand, s.opts.Latency.SSM.Shell)}
			if s.ssm.shell != nil {
				res.ExitCode, res.Stdout, res.Stderr = s.ssm.shell(r.InstanceID, r.Parameters["commands"])
			}
			return res
		},
	})
	s.registerPatchDocuments()
}
