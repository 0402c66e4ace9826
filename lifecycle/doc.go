// Package lifecycle replaces instances: it captures the launch spec of a
// running instance (everything needed to launch an equivalent one, with a
// drift hash that includes user data), replaces one instance through Replacer
// strategies (surge, root volume, data-volume handover, resize), and rolls a
// fleet with MaxUnavailable/MaxSurge, a canary and a journal that lets a
// cancelled run resume without a duplicate launch or a wrong termination.
// Instances owned by an Auto Scaling group are refused: use Instance Refresh.
//
// # Capture and drift
//
// Capturer reads DescribeInstances (image, type, subnet, security groups,
// instance profile, key, tags without aws:* and ec2ops:*, metadata options,
// placement, EBS optimization, monitoring, launch template, network
// interfaces), DescribeVolumes (type, size, IOPS, throughput, encryption and
// KMS key of every EBS volume), DescribeAddresses (Elastic IP),
// DescribeInstanceCreditSpecifications (the CPU credit option, standard or
// unlimited, of T-family instances only, recognised by the type name's
// family; up to 1000 instance IDs a call, the API's maximum: without it a
// replacement would get the family default, standard for T2 and unlimited
// for T3, T3a and T4g, per the EC2 User Guide's "Burstable performance
// instances", and silently change its billing; a type change to a
// non-burstable type drops it), DescribeTargetHealth for each target group named in Options.TargetGroups
// (ELBv2 has no reverse lookup) and DescribeInstanceAttribute for the user
// data. Spec.Hash is a sha256 over a canonical encoding of what defines the
// instance, rendered user data included: Auto Scaling's Instance Refresh
// skip matching compares launch templates and misses a change of rendered
// user data; this hash does not. User data lives in a UserData value that
// never prints, logs or marshals its content; events and errors never hold
// it.
//
// Refused before any change (Spec.Refusal, matching ec2ops.ErrUnsupported):
// an instance of an Auto Scaling group (tag aws:autoscaling:groupName; the
// error names the group and points to Instance Refresh, because a rollout
// must never fight an ASG), an instance-store root device, tenancy "host"
// (Dedicated Hosts), and more than one network interface.
//
// # Strategies
//
// Surge launches the replacement first (ClientToken = hash of the old
// instance, the target spec's hash and the attempt, at most the 64 ASCII
// characters RunInstances accepts, so a retried call never launches twice),
// requires IMDSv2 unless Options.AllowIMDSv1, tags it ec2ops:replaces,
// ec2ops:rollout and ec2ops:spec, waits for both status checks through one
// batched DescribeInstanceStatus poller shared by every replacement in
// flight, runs the caller's HealthCheck, registers it in the old instance's
// target groups and waits until it is healthy there, moves the Elastic IP
// (AssociateAddress with AllowReassociation), deregisters the old instance
// and waits for draining, then terminates it. A failure rolls back: the
// Elastic IP goes back, the replacement leaves the target groups and is
// terminated; the old instance keeps serving. Trade-off: one extra
// instance per slot for a few minutes, no capacity dip.
//
// Data-volume handover (Options.HandoverDataVolumes): DeleteOnTermination is
// turned off on the old instance's data volumes first, the old instance is
// stopped, the volumes are detached and attached to the replacement at the
// same devices before it goes into service (volumes attached after launch
// keep DeleteOnTermination off). The ec2ops:handover tag on the replacement
// lists the volumes, so an interrupted handover is finished or undone from
// tags alone; an instance that may hold handed-over volumes is never
// terminated. Trade-off: a capacity dip per slot (counted against
// MaxUnavailable). By default a replacement gets new, empty volumes of the
// same shape: keep data outside the instance (S3, EFS, a database), as the
// AWS Well-Architected reliability pillar recommends.
//
// RootVolume runs CreateReplaceRootVolumeTask with the target image and
// DeleteReplacedRootVolume false: instance ID, network interfaces, private
// IPs, Elastic IP and data volumes stay; the instance reboots, so it is
// drained from its target groups first and counted against MaxUnavailable
// ("Replace a root volume", Amazon EC2 User Guide). It changes the image
// only.
//
// Resize changes the instance type (vertical scaling from outside). It
// checks first, before any mutating call, and refuses with a
// *ResizeRefusal (matching ec2ops.ErrUnsupported, naming the instance,
// both types and the reason) what "Compatibility for changing the instance
// type" (Amazon EC2 User Guide) rules out: an instance-store root (it cannot
// be stopped), a type that does not exist, another processor architecture
// (the instance's, i.e. its image's, against ProcessorInfo.SupportedArchitectures),
// PV virtualization on an HVM-only type, a type that requires ENA
// (NetworkInfo.EnaSupport) when the instance's EnaSupport attribute is off,
// a type that exposes EBS as NVMe (EbsInfo.NvmeSupport required, every
// Nitro type) when the current type does not, unless
// ResizeOptions.NVMeDriversVerified (no API shows whether an image has the
// NVMe driver), and a type not offered in the instance's zone
// (DescribeInstanceTypeOfferings, LocationType availability-zone). Types are
// described at most 100 a call and once per Resize (cached, concurrent
// lookups share one call); Check sorts a fleet with a few batched calls.
// ResizeStopStart (default) drains the instance, stops it, waits through
// the batched instance poller, changes the type (ModifyInstanceAttribute),
// starts it and waits for the status checks, HealthCheck and hooks
// (BeforeTerminate before the stop, as OpsWorks runs Shutdown on a stop;
// AfterLaunch after the start): same ID, volumes, IPs and Elastic IP; a new
// type that does not start (say InsufficientInstanceCapacity) or is not
// healthy is undone (old type, started again; ResizeError.Restored). Once
// stopped, the instance is started again even if the caller cancels: a
// Rollout rerun skips stopped instances. A stopped instance is resized and
// left stopped. ResizeSurge resizes through Surge (Target.InstanceType): no
// capacity dip, a new ID. Resize is a Replacer: a Rollout resizes a fleet,
// in-place mode within MaxUnavailable; its ReplaceInstance is a stop and
// start on new hardware with the same type (surge mode: a Surge
// replacement).
//
// Hooks (AfterLaunch, BeforeInService, AfterInService, BeforeTerminate,
// AfterTerminate) run around the steps; the opsworks package plugs its
// Setup and Shutdown events in there. ReplaceInstance replaces by an
// equivalent instance (same spec and image), for recovery's Watchdog.
//
// # Rollout
//
// A Rollout selects instances by IDs or tags, keeps the drifted ones, orders
// them round-robin over the AZs, replaces a canary batch and keeps its old
// instances until the bake time passed, then runs at most InFlight
// replacements at a time: MaxSurge for Surge (healthy capacity never drops
// below the fleet size), min(MaxSurge, MaxUnavailable minus instances
// already unhealthy) for handover, MaxUnavailable for in-place strategies.
// MaxFailures failures are tolerated; one more stops the rollout and rolls
// back every replacement in flight. All calls are paced by the published
// EC2 token buckets (Options.RequestShare of them). Since pacing already
// keeps within the buckets, a throttled call is retried after a short
// jittered delay (100-300 ms, doubling only while the same call stays
// throttled; a throttled status poll is retried within its tick), a
// transient server error after 1 s doubling, and a launch refused for
// capacity (InsufficientInstanceCapacity) up to 3 times after 2 s
// doubling, as EC2 advises, before the replacement fails. A Journal (NewMemoryJournal, OpenFileJournal with
// an fsync per record, or NoJournal) records phases and attempts; with or
// without it, a rerun after a cancellation adopts the replacements it finds
// by tag (and, before EC2's eventual consistency shows them, by the
// idempotent ClientToken), so nothing is launched twice and only an old
// instance whose replacement serves is terminated.
//
// # Batched launches
//
// A Rollout with Surge (without data-volume handover) launches several
// replacements with one RunInstances call (MinCount = MaxCount = n) when
// they are ready together: RunInstances has a request bucket (5, then 2 a
// second) besides its resource bucket (1,000 instances, then 2 a second),
// so one instance a call would cap the initial burst of a large rollout at
// 2 launches a second instead of 1,000 at once ("Request throttling for
// the Amazon EC2 API", Amazon EC2 Developer Guide). Replacements whose
// requests are identical apart from their tags (same image, type, subnet,
// security groups, user data, volumes, rollout) share a queue; one call
// per queue is in flight, and the next takes up to n of the replacements
// that queued meanwhile - batches form exactly when the request bucket is
// the bottleneck, and a lone replacement launches alone as before (same
// request, same ClientToken). n is at most 50 and at most what fits in one
// tag value (256 characters: 12 IDs of 19 characters).
//
// Linkage. TagSpecifications apply to every instance of a call, so a batch
// is tagged at launch with what its members share (ec2ops:rollout, the
// common user tags, ec2ops:spec when equal), ec2ops:batch (its
// ClientToken) and ec2ops:batch-members: the sorted old instance IDs,
// comma-separated. RunInstances numbers the instances of a call by
// AmiLaunchIndex, 0 to n-1 ("the AMI launch index, which can be used to
// find this instance in the launch group", types.Instance), so the instance with launch index i replaces
// the i-th member, from the tags alone. Right after the launch each member
// gets its own tags with one CreateTags call (a call tags many resources
// only with the same tags): ec2ops:replaces, ec2ops:spec and its user
// tags (a Name, say), paced by the CreateTags bucket and retried while EC2
// does not know the new ID yet (eventual consistency). The journal records
// the batch token with the launch. A run stopped between the launch and
// the tagging is resumed by the next Plan/Apply: it looks up
// ec2ops:batch-members with wildcards on the old instance IDs (one more
// DescribeInstances call per 200 instances, made before the
// ec2ops:replaces lookup so that nothing tagged in between is missed),
// maps each untagged instance to members[AmiLaunchIndex], adopts it and
// tags it; a rollback tags it before terminating it.
//
// The batch ClientToken ("ec2ops-b" and 48 hex digits) is a hash of the
// sorted old IDs, their target spec hashes, the request and the attempt
// (the highest of the members'), so the same batch retried never launches
// twice. A batch refused for capacity is retried with the same token (3
// times, 2 s doubling), then each member launches alone with its own
// token; a member that does not become healthy is rolled back alone.
// Limitation: the token protects a batch only while it groups the same
// members. A rerun within EC2's eventual-consistency window of a crash
// (seconds), before the batch is visible to DescribeInstances and before
// the journal recorded it, may group differently and launch again; a rerun
// after that window (or one that finds the launch in the journal) adopts
// the batch.
//
// Measured on internal/cloudsim (TestFigures, go test -run TestFigures -v):
// N=1,000 with K=100 finishes in about 2.05x the lower bound
// max(ceil(N/K)*L, (N-1000)/2 s + L) with L the shortest slot latency
// (75 s); N=10,000 with K=1,000 in about 1.09x (1.14x with one instance a
// call). Per replaced instance: one TerminateInstances, one
// DescribeInstanceAttribute (user data), about 0.5 DescribeInstanceStatus
// calls (one per 100 waited-on instances every 3 s) and, at N=10,000,
// 0.09 RunInstances and one CreateTags (at N=1,000: 0.9 RunInstances and
// 0.1 CreateTags). make bench (BENCHMARKS.md) has the fleet scenarios.
//
// # IAM
//
// Policy() lists exactly the actions a strategy calls: ec2:DescribeInstances,
// ec2:DescribeInstanceAttribute, ec2:DescribeInstanceStatus,
// ec2:DescribeVolumes, ec2:DescribeAddresses,
// ec2:DescribeInstanceCreditSpecifications, ec2:RunInstances,
// ec2:CreateTags (with ec2:CreateAction RunInstances, for tags at launch,
// and on instances tagged ec2ops:batch, for the members of a batch),
// iam:PassRole (to ec2.amazonaws.com, for instance profiles),
// ec2:AssociateAddress, ec2:TerminateInstances; with handover
// ec2:StopInstances, ec2:StartInstances, ec2:DetachVolume,
// ec2:AttachVolume, ec2:ModifyInstanceAttribute; with target groups
// elasticloadbalancing:RegisterTargets and DeregisterTargets (on those
// groups) and DescribeTargetHealth; RootVolume adds
// ec2:CreateReplaceRootVolumeTask and ec2:DescribeReplaceRootVolumeTasks;
// Resize adds ec2:DescribeInstanceTypes and
// ec2:DescribeInstanceTypeOfferings to ec2:StopInstances,
// ec2:ModifyInstanceAttribute and ec2:StartInstances (stop/start) or to
// Surge's actions (surge mode).
package lifecycle
