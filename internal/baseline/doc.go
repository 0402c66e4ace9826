// Package baseline is what a careful user writes with aws-sdk-go-v2 alone,
// the yardstick the fleet benchmarks compare ec2ops against. It is an honest
// model of that code, not a strawman:
//
//   - every call goes through the SDK's own standard retryer
//     (retry.NewStandard: 3 attempts, exponential backoff with jitter capped
//     at 20 s, the 500-token retry quota), driven the way the SDK's retry
//     middleware drives it (attempt token, retry token, RetryDelay);
//   - waiting uses the SDK's generated waiters (for example
//     ec2.NewInstanceStatusOkWaiter: 15 s minimum and 120 s maximum delay,
//     jittered exponential, one Describe call per waiter per poll), one
//     waiter per instance, as the SDK offers them;
//   - work runs in parallel up to the same concurrency the library gets, and
//     nothing paces calls on the client side.
//
// It models four jobs: Rollout (surge replacement, InstanceStatusOk waiter
// per instance), Patch (SendCommand per 50 IDs, a CommandExecuted waiter
// per instance: 5 s minimum delay, GetCommandInvocation per poll),
// ReconcileAlarms (PutMetricAlarm for every instance on every run,
// DescribeAlarms and DeleteAlarms for the gone) and Retain (a
// DescribeInstances image-id check per image, DeregisterImage, then
// DeleteSnapshot per snapshot).
//
// What it does not do is what the library adds: batched polling, client-side
// pacing to the published buckets, and tolerance of throttling beyond the
// retryer's three attempts.
package baseline
