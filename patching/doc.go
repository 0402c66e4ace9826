// Package patching reaches instances through Systems Manager Run Command,
// never SSH: a CommandRunner that sends commands at fleet scale (batches of
// at most 50 instance IDs, rate controls, per-instance results, cancellation)
// and wave-based patching with AWS-RunPatchBaseline, a canary, health gates
// between waves and a compliance report.
//
// # CommandRunner
//
// Runner.Run takes a Command (document, parameters, instance IDs or tag
// Targets, MaxConcurrency and MaxErrors, delivery and execution timeouts,
// output to S3 or CloudWatch Logs, comment, notifications, alarms) and:
//
//  1. validates it before any call (ec2ops.InputError naming the field):
//     SendCommand takes at most 50 instance IDs, 5 target keys of 50
//     values, TimeoutSeconds 30-2592000, a comment of 100 characters,
//     and MaxConcurrency / MaxErrors as a count or whole percentage
//     (SendCommand API reference);
//  2. pre-flight: asks DescribeInstanceInformation (50 IDs a call) which
//     targets have an online agent; the others are reported as unmanaged
//     (*UnmanagedError, nothing sent) or, with SkipUnmanaged, left out and
//     reported as failures — never silently dropped;
//  3. sends instance IDs in balanced commands of at most 50. A percentage
//     applies to each command as to the whole; a count is shared out
//     between the commands (and, when smaller than their number, commands
//     are sent a few at a time) so the fleet never has more than
//     MaxConcurrency invocations in flight. SSM itself stops dispatching
//     when a command's errors exceed its MaxErrors and marks the rest
//     Terminated ("Using error controls", Run Command user guide); the
//     runner also sends no further command once the fleet-wide count is
//     exceeded (those instances are NotSent);
//  4. tracks: one paced ListCommands loop (5 s, growing to 30 s while
//     nothing changes; with several commands, one page of 50 commands
//     filtered by document and start time serves them all), and, when a
//     command's CompletedCount moved (at most every ResultsInterval, and
//     proportionally less often for a command of more than 30 pages, so a
//     5,000-instance command costs a page a second, not 100 pages every
//     30 s) or it ended, ListCommandInvocations with Details, 50 a page,
//     recording each finished invocation and streaming it to the Observer;
//  5. collects output: the plugin Output of ListCommandInvocations is at
//     most 2,500 characters (amazon-ssm-agent MaximumPluginOutputSize);
//     for failed invocations (RunnerOptions.FetchOutput) GetCommandInvocation
//     gives the first 24,000 characters of stdout and 8,000 of stderr
//     (GetCommandInvocation API reference). Invocation.Truncated says the
//     inline text is incomplete and FullOutput where the whole is: the S3
//     URL, or the CloudWatch Logs group (/aws/ssm/DOCUMENT by default);
//  6. on ctx cancellation, calls CancelCommand for the running commands
//     with a context that survives the cancellation, bounded by
//     CancelTimeout, and returns what was observed.
//
// Statuses are the detailed ones ("Understanding command statuses"):
// Success, Failed, ExecutionTimedOut and DeliveryTimedOut (Status
// TimedOut), Undeliverable and Terminated (Status Failed), Cancelled.
// Failed and ExecutionTimedOut count against MaxErrors; delivery timeouts
// and undeliverable invocations do not.
//
// Parameters named in Command.Sensitive are never logged, put in events or
// in error strings (errors from SendCommand are redacted; their chain is
// kept for errors.As). Throttling and 5xx errors are retried with backoff
// and every call is paced by an internal/ratelimit Limiter with the SSM
// preset. RunShell(ctx, ids, commands) is the small contract other
// packages use (ami's Baker): AWS-RunShellScript everywhere, nil only if
// every instance succeeded, a *CommandError naming the others.
//
// A new instance passes its status checks before its SSM agent registers
// (a fresh agent can take more than two minutes, AWS-FACTS.md
// "Latencies"), and the pre-flight then refuses it with an
// *UnmanagedError, which matches ec2ops.ErrUnmanaged so that callers
// without an import of this package can tell "not managed yet, nothing
// sent" from a failed command and retry. WaitManaged(ctx, ids) waits for
// the agents instead: one DescribeInstanceInformation poll of the IDs not
// yet online, 50 a call, paced by the Limiter, every PollInterval growing
// by half to MaxPollInterval, until all are Online or ctx ends (then an
// *UnmanagedError names those still offline, with the context's cause).
// ami's Baker calls it (AgentWaiter) before its first command layer. It
// needs no action beyond ssm:DescribeInstanceInformation.
//
// # Patching in waves
//
// Patcher.Plan describes the targets (DescribeInstances for the AZ, 200 a
// call; DescribeInstanceInformation for the agent) and splits the managed
// ones into waves with Waves: a canary (PatchOptions.Canary, default 1),
// then cumulative shares (default 10%, 50%, 100%). Each wave takes
// instances round robin from the AZs with most left, and never more than
// n - MinHealthyPerAZ of an AZ's n instances, adding waves if that holds
// some back, so no AZ loses its last healthy instances at once. Apply
// then, per wave: sends AWS-RunPatchBaseline (or
// AWS-RunPatchBaselineWithHooks) with Operation Install or Scan and
// RebootOption RebootIfNeeded or NoReboot through the Runner (MaxErrors is
// the failure budget left); gates on health — status checks through
// internal/ec2wait's batched poller (one DescribeInstanceStatus per 100
// instances per tick), the agent back Online after the patch reboot (one
// DescribeInstanceInformation per 50 per tick), then the caller's
// HealthCheck; and stops, leaving later waves NotPatched, as soon as
// failures exceed FailureThreshold (default 0: the canary must pass).
// Finally DescribeInstancePatchStates (50 a call) gives the compliance of
// every instance: installed, missing, failed, installed-pending-reboot.
// Apply returns a *PatchError with the outcome of every instance when not
// all were patched.
//
// Pin SnapshotID to install the same patches in every wave (otherwise a
// wave that runs hours later may see newer patches than the canary did).
//
// # In place or immutable
//
// The immutable alternative is to bake a patched image (ami's Baker, which
// runs its layers through this package's RunShell) and roll it out by
// replacement (lifecycle's Rollout). Which is right (the Balancer's view):
//
//   - Patch in place when instances are long-lived or stateful (local data,
//     licences bound to the instance, warm caches), when the fleet has no
//     launch template or ASG to roll, or when a critical CVE must be closed
//     now: patching takes minutes per wave and no capacity is launched.
//     The cost is drift: instances patched at different times differ, and
//     a failed install leaves a half-patched host to repair.
//   - Bake and replace when instances are cattle behind a load balancer or
//     an ASG: every instance then runs the same tested image, rollback is
//     launching the previous AMI, and nothing is mutated in production. It
//     costs a bake (~10 min or more), surge capacity and RunInstances
//     tokens, and is slower for a single urgent fix.
//
// Many fleets do both: bake monthly, patch urgent CVEs in place between
// bakes with a Scan first to see what is missing.
//
// # IAM
//
// Runner.Policy: ssm:SendCommand, ssm:CancelCommand, ssm:ListCommands,
// ssm:ListCommandInvocations, ssm:GetCommandInvocation,
// ssm:DescribeInstanceInformation. Patcher.Policy adds
// ssm:DescribeInstancePatchStates, ec2:DescribeInstances and
// ec2:DescribeInstanceStatus. ssm:SendCommand can be scoped further by the
// caller to document ARNs and to instances with a tag
// (ssm:resourceTag/...); the library creates no resources and tags none.
//
// # Performance
//
// On the simulator, Run with AWS-RunPatchBaseline on 5,000 instances at
// MaxConcurrency 10% (100 commands of 50, 5 in flight each) finishes in
// 1.24 times the lower bound max(sum of invocation times / 500, longest
// invocation), with 100 SendCommand, about 1,950 ListCommands and 3,900
// ListCommandInvocations calls, no throttling (go test -run
// TestFigures5000 -v ./patching/). The gap to the bound is the per-command
// concurrency: each command of 50 runs 5 at a time, so its slowest
// invocations set its end; one tag-Targets command would share one pool.
package patching
