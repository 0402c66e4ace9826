// Package recovery makes sure a failed instance comes back: it detects which
// instances AWS can recover, reconciles CloudWatch alarms with the EC2
// recover action to exactly the desired set, sets simplified automatic
// recovery, and runs a Watchdog that escalates (reboot, stop/start, replace)
// for instances AWS cannot recover, never acting on more than a configured
// share of the fleet at once.
//
// # Two kinds of failure
//
// EC2 runs two status checks a minute. The system status check fails when
// the host does (loss of network connectivity or power, hardware or
// software problems on the physical host): AWS can move the instance to
// healthy hardware. The instance status check fails when the OS does
// (kernel panic, exhausted memory, broken network configuration): only a
// reboot or the owner can fix it. Recovery is for the first kind only.
//
// # Support detection (Detector)
//
// Detect describes the fleet (DescribeInstances, the IDs as an instance-id
// filter of at most 200 values so a missing ID does not fail the call) and
// its instance types (DescribeInstanceTypes, 100 types a call, cached), and
// returns a Support per instance with a Reason for every requirement it
// does not meet:
//
//   - instance-type-unsupported: DescribeInstanceTypes AutoRecoverySupported
//     is false (for example i3, m5d, c5d, g4dn, x2iedn: every type with
//     instance store; Mac instances).
//   - instance-store-volumes / instance-store-root-device: "The instance has
//     an attached instance store storage, which is an unsupported
//     configuration for automatic instance recovery" (Amazon EC2 User
//     Guide, troubleshooting instance recovery failures); the older guide
//     lists "Has only EBS volumes" among the recover action's requirements.
//   - dedicated-host-tenancy: simplified automatic recovery requires
//     default or dedicated tenancy and "Doesn't use host tenancy. For
//     Amazon EC2 Dedicated Hosts, you can use Dedicated Host Auto
//     Recovery" ("Configure simplified automatic recovery", Amazon EC2 User
//     Guide).
//   - elastic-fabric-adapter: an EFA interface is attached. The current user
//     guide lists instances with an EFA among those recovery does not
//     support; the stored excerpts we could check did not show that line,
//     so this is the one exclusion not quoted here.
//   - not-in-vpc: the older user guide requires instances in a VPC.
//
// # Alarm-based recovery (Installer)
//
// For every supported instance the Installer wants one alarm named
// PREFIX + instance ID + "-system-recover": AWS/EC2 StatusCheckFailed_System,
// dimension InstanceId, Maximum over 60 s periods, 2 of 2 datapoints >= 1,
// TreatMissingData missing, action arn:aws:automate:REGION:ec2:recover plus
// the SNS topics (also told on OK). With InstanceCheckReboot every instance
// of the fleet also gets PREFIX + ID + "-instance-reboot" on
// StatusCheckFailed_Instance with the reboot action. Alarms carry the tags
// ec2ops:managed-by=recovery and ec2ops:instance-id plus Options.Tags. "CloudWatch action
// based recovery works with the StatusCheckFailed_System metric" and "provides
// to-the-minute recovery response time granularity and Amazon SNS
// notifications" ("Configure CloudWatch action based recovery", Amazon EC2
// User Guide). A recovered instance keeps its instance ID, private and
// Elastic IP addresses and metadata; in-memory data is lost (the recovery is
// an unplanned reboot); "The automatic recovery process attempts to recover
// your instance for up to three separate failures per day".
//
// Plan reads the fleet and every page of DescribeAlarms under the prefix
// (MaxRecords 100) and compares field by field: missing alarms are
// created, drifted ones rewritten (PutMetricAlarm, then TagResource,
// because "If you are using this operation to update an existing alarm,
// any tags you specify in this parameter are ignored", PutMetricAlarm API
// reference), alarms of instances that left the fleet or can no longer be
// recovered are deleted, 100 names a DeleteAlarms call ("You can delete up
// to 100 alarms in one operation"). Apply makes the calls, paced by a
// client-side limiter at CloudWatch's published rates (PutMetricAlarm and
// DeleteAlarms about 3 a second, DescribeAlarms about 9; AWS-FACTS.md), and
// retries throttling. A second run on an unchanged fleet makes no mutating
// call. The prefix is the ownership marker: use one prefix per fleet.
// PutMetricAlarm is idempotent by name, so there is no ClientToken; a rerun
// after a crash adopts what the first run created.
//
// Cost and time: N supported instances need N PutMetricAlarm calls, so the
// first run takes about N/3 s (10,000 instances: 55 min 33 s simulated
// against a bound of 55 min 33 s; see TestReconcileFigures), and every later
// run about N/100 DescribeAlarms calls (10 s for 10,000). An alarm costs
// money each month; simplified automatic recovery costs nothing.
//
// # Simplified automatic recovery (AutoRecovery)
//
// "Simplified automatic recovery is enabled by default on all supported
// instances during instance launch"; it acts on system status check
// failures of running instances, and it can be disabled or set back to
// default with ModifyInstanceMaintenanceOptions (AutoRecovery disabled |
// default; "The default configuration will not enable simplified automatic
// recovery for an unsupported instance type", API reference). Report shows
// each instance's setting and whether it is effective; Plan/Apply/Set change
// it, one instance a call, skipping instances where "default" would have no
// effect.
//
// Interaction with alarm-based recovery: AWS documents the two as
// alternative mechanisms for the same failure ("there are two mechanisms
// that can automatically restore instance availability—simplified automatic
// recovery and Amazon CloudWatch action based recovery", "Automatic instance
// recovery"), the alarm being the faster and more granular one with SNS
// notifications, and both needing the instance running, capacity, and no
// service event. The documentation we checked does not say which one wins
// when both are configured. This package therefore treats them as
// complementary: the Installer does not touch MaintenanceOptions, and
// leaving AutoRecovery at default keeps a second line for instances whose
// alarm is missing (a failed reconcile, an instance launched since). Set it
// to disabled when you want every recovery to go through the alarm and its
// SNS topics. The simulator (internal/cloudsim) models one recovery at a
// time per instance: whichever mechanism starts first, the other finds the
// recovery in progress, and both share the three-attempts-a-day allowance.
//
// # Watchdog
//
// The Watchdog covers what AWS does not: instance status check failures,
// unsupported instances, and recoveries that failed. Each tick (Interval,
// default 30 s) makes one DescribeInstanceStatus call per 100 instances
// with IncludeAllInstances, for the whole fleet, never a waiter per
// instance; a chunk that fails with InvalidInstanceID.NotFound is bisected
// to drop the instances that are gone. An instance must be impaired for
// ImpairedFor (3 min) before the Watchdog acts, plus AWSRecoveryGrace
// (15 min) when its system check fails and AWS can recover it, so that
// AWS's recovery goes first. The remedies escalate: reboot (instance check
// only: a reboot stays on the same host), stop/start (system check, or a
// reboot that did not help; EBS-backed root only: a start moves the
// instance to new hardware, and the data of instance store volumes is
// lost), then ReplaceInstance through a Replacer (lifecycle's Surge
// strategy satisfies the one-method interface; recovery does not import
// lifecycle). A remedy that does not make the instance healthy within
// ActionTimeout counts as failed and the next one follows. An instance
// impaired more than FlapCount times within FlapWindow is flapping: it is
// replaced rather than rebooted again. MaxConcurrent ("10%" by default,
// parsed by internal/quantity, rounded down and at least 1; "0" watches
// without acting) caps the instances acted on at once; the rest are
// deferred, oldest impairment first. Every impairment and action is an
// ec2ops.Event (Operation "watchdog"); Run returns ctx.Err() once ctx ends
// and the replacements in flight have returned.
//
// # IAM
//
// Each type's Policy() lists exactly the actions it calls:
//
//   - Installer: ec2:DescribeInstances, ec2:DescribeInstanceTypes,
//     cloudwatch:DescribeAlarms, and cloudwatch:PutMetricAlarm,
//     cloudwatch:DeleteAlarms, cloudwatch:TagResource on
//     arn:aws:cloudwatch:*:*:alarm:PREFIX*; iam:CreateServiceLinkedRole for
//     AWSServiceRoleForCloudWatchEvents, which CloudWatch creates the first
//     time an alarm has an EC2 action (PutMetricAlarm API reference).
//   - AutoRecovery: the two describes and ec2:ModifyInstanceMaintenanceOptions.
//   - Watchdog: the two describes, ec2:DescribeInstanceStatus,
//     ec2:RebootInstances, ec2:StopInstances, ec2:StartInstances; merge the
//     Replacer's own policy.
//   - Detector: ec2:DescribeInstances, ec2:DescribeInstanceTypes.
//
// Tests record the calls each makes on the simulator and require them to
// be covered by its policy.
package recovery
