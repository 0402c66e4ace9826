// Package cloudsim is a deterministic in-memory model of the AWS behaviour
// ec2ops relies on. Behaviour tests run it inside testing/synctest bubbles
// (hours of fleet time in milliseconds), benchmarks use it to count API
// calls and throttling, and examples run it with time compressed.
//
// # Model
//
// A Sim owns everything the services share: one lock, the clock, the seeded
// random sources, call accounting, observers and the resources. Service
// clients are thin views of it; (*Sim).EC2 returns an *EC2 whose methods
// have the exact signatures of *ec2.Client (see EC2InstanceAPI), so it can
// stand behind any of the library's narrow interfaces.
//
// The EC2 instance model covers RunInstances, DescribeInstances,
// DescribeInstanceStatus, DescribeInstanceAttribute, TerminateInstances,
// StopInstances, StartInstances, CreateTags, DeleteTags and DescribeTags:
//
//   - State machine: pending (0) -> running (16) after
//     Latency.PendingToRunning; status checks "initializing" from running,
//     then "ok" after Latency.StatusInit, or "impaired" (instance check) for
//     the share Faults.ImpairedRate, or both checks after Sim.Impair (a host
//     failure, cleared by stop/start). Terminate: -> shutting-down (32) ->
//     terminated (48) after Latency.ShuttingDown, visible for
//     Latency.TerminatedVisible, then gone (InvalidInstanceID.NotFound).
//     Stop: running -> stopping (64) -> stopped (80); Start: stopped ->
//     pending -> running with the status checks run again.
//   - Requests as EC2 checks them: Min/MaxCount, AMI ID format, subnets and
//     AZs, ClientToken idempotency (same token and parameters: the same
//     reservation again, no launch, no resource tokens; different
//     parameters: IdempotentParameterMismatch), tags at launch, user data,
//     metadata options with AWS's defaults, DryRun (DryRunOperation), ID
//     formats (Malformed) and existence (NotFound for the whole call),
//     invalid state changes (IncorrectInstanceState), tag rules (aws:
//     prefix, 50 tags), filters with * and ? wildcards, the 200
//     filter-value limit, MaxResults 5..1000 and NextToken pagination.
//   - Throttling: the published EC2 token buckets (internal/ratelimit's
//     EC2 preset) per action, with resource buckets for Run, Start, Stop and
//     TerminateInstances; an empty bucket answers RequestLimitExceeded. A
//     call that needs more resource tokens than the bucket holds (say
//     RunInstances with MaxCount 1500) is always throttled: split it.
//   - Faults, all seeded: random throttling and InternalError on any call,
//     InsufficientInstanceCapacity on RunInstances, instances that never
//     pass status checks, and eventual consistency (a new instance is
//     NotFound, and missing from listings, for a while).
//
// Errors have the shape an aws-sdk-go-v2 client returns: a
// *smithy.OperationError wrapping an *awshttp.ResponseError (HTTP status,
// request ID) wrapping a *smithy.GenericAPIError with the AWS error code,
// so internal/awserr classifies them as it classifies real ones. A call
// whose context is done returns ctx.Err() and is not counted.
//
// Not modelled (yet): images, launch templates (recorded as the aws:
// system tags only; ImageId stays required), SSM, CloudWatch, network
// interfaces beyond the primary private IP, public IPs, EBS volumes as
// resources, spot interruptions, reboots, scheduled events, quotas such as
// InstanceLimitExceeded, and the ec2.Options passed per call (ignored).
//
// # Time
//
// The Sim uses the time package as it is: inside a synctest bubble
// time.Now is the bubble's fake clock. It starts no goroutines and no
// timers. Every API call and every inspection helper first applies, in time
// order, the scheduled transitions due by time.Now() (a min-heap of events,
// ties broken by scheduling order), each with its own due time. A test
// therefore sleeps, then looks; nothing happens "in the background".
// Options.TimeScale multiplies every simulated duration (and speeds up the
// token buckets by the same factor) for examples that run in real time.
// Create the Sim inside the bubble that uses it: the Sim never lets its
// clock go back, so a Sim made outside a bubble (real time) would see the
// bubble's clock (year 2000) as standing still.
//
// Randomness is seeded by Options.Seed. Every per-instance draw (latencies,
// impairment) comes from a source seeded by the seed and the instance ID,
// so it does not depend on how calls about other instances interleave.
// Instance, reservation, volume, subnet and VPC IDs depend only on the seed
// and the order of creation. Fault draws (throttling, server errors,
// capacity) share one source and so follow the order of calls.
//
// # Observing
//
// Calls, Throttled, Errors and TotalCalls count calls by "service:Op"
// (throttled calls included). Instance, Instances and Healthy give
// snapshots. OnChange hooks and AddInvariant checks run at every change
// (launch, state transition, status-check change, tag change) with a *View
// of the state at that moment; they run with the lock held and must use
// only the View. TrackCapacity records the healthy count of a selected set
// over time (Trace, MinHealthy), incrementally.
//
// # Extending
//
// A new service or resource goes into its own files: a client type (for
// example SSM) with the SDK's signatures whose methods wrap their work in
// s.call(ctx, service{...}, "Op", resources, fn); its state as a field of
// Sim next to ec2 with an init function called from New; timed
// transitions scheduled with s.schedule (or s.later for instances) and
// reported with s.emit; taggable resources registered as a tagKind. The
// hooks imageUsable and launchTemplateImage are where an image and launch
// template registry plug into RunInstances.
//
// # Sources
//
// The numbers (token buckets, batch and page limits, latencies) and their
// sources are collected in AWS-FACTS.md beside DESIGN.md; the code cites
// the source next to each limit.
package cloudsim
