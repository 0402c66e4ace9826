// Package ami owns every AMI strategy: which image to use (Resolver), how it
// is built (Baker: from an instance, or from a base image plus layers, the
// Aminator/Packer flow), where it goes (copy to Regions, share with accounts
// and organizations, never public), when it dies (Retention with in-use
// protection: an image that an instance, a launch template version or an Auto
// Scaling group references is never deregistered), and how much to bake at
// all (the Balancer between a full AMI, long to build and fast to boot, and an
// OS-only AMI, nothing to build and long to boot with user data).
//
// # Resolver
//
// Resolver.Newest lists the images a Query selects (DescribeImages with
// Owners and filters name, tag:KEY, architecture, virtualization-type and
// state=available, every page of 1,000) and returns the newest by creation
// date; ties break by name, then ID, so the answer never depends on listing
// order. Owners is required: a name search without it also matches public
// images of any account, which is how the "whoAMI" name-confusion attack
// plants images, and the DescribeImages reference recommends Owners.
// Deprecated images are left out unless asked (DescribeImages returns the
// caller's own deprecated images regardless, so the Resolver filters them
// too), and disabled ones unless IncludeDisabled. FromParameter reads an
// SSM parameter such as AWS's public
// /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64, and
// FromPackerManifest a packer-manifest.json (artifact_id
// "region:ami-...,region:ami-...", builds of last_run_uuid); both check the
// image exists and is available. No match is a *NoMatchError naming the
// filters (errors.Is ec2ops.ErrNotFound).
//
// # Baker
//
// Snapshot images a running or stopped instance with CreateImage. By
// default EC2 shuts the instance down and restarts it so the file systems
// are consistent; NoReboot skips that, and the image is then only
// crash-consistent ("Create an Amazon EBS-backed AMI", EC2 User Guide).
// Bake launches a builder from a base image with the layers' cloud-init
// user data (IMDSv2 required, shutdown behaviour terminate, tagged
// ec2ops:role=builder and ec2ops:bake=ID on the instance and its volumes),
// waits for its status checks through the batched poller, waits for its
// SSM agent, runs "cloud-init status --wait" and every layer's Commands
// through a ShellRunner (patching.Runner; Systems Manager Run Command), creates
// the image with tags on the image and its snapshots, waits until it is
// available, and terminates the builder whatever happens: the termination
// runs with context.WithoutCancel(ctx), bounded by CleanupTimeout, so a
// cancelled bake leaves nothing behind unless the termination itself fails
// (the *BakeError says so, and Sweeper finds builders older than MinAge by
// tag). CreateImage has no ClientToken, so idempotency rests on tags: the
// bake ID is a digest of the request, a rerun first adopts an image tagged
// with it (pending or available), then a live builder tagged with it; the
// builder's RunInstances ClientToken is ec2ops-bake-ID-N, N counting
// builders of earlier runs that are gone. Recipe.Spot asks for a one-time
// spot builder and falls back to on-demand on InsufficientInstanceCapacity.
// Image creation takes "several minutes" and up to hours for large volumes
// (AWS-FACTS.md "Latencies"); ImageTimeout defaults to 3 hours.
//
// Passing the status checks does not mean the builder is managed: its SSM
// agent long-polls on a ~20 s cycle and a fresh one can take more than two
// minutes to register (AWS-FACTS.md "Latencies"), and Run Command refuses
// instances without an online agent. So before the first command the
// Baker waits for the agent, for at most BakerOptions.AgentTimeout
// (default 10 minutes): through the Runner's WaitManaged when it
// implements AgentWaiter (patching.Runner polls DescribeInstanceInformation,
// Observer phase "wait-agent"), otherwise by retrying a RunShell refused
// with an error matching ec2ops.ErrUnmanaged (nothing was sent, so nothing
// runs twice) after PollInterval, doubling up to a minute, at most 20
// times. The same retry covers an agent that drops out between layers. An
// agent that never comes online (no instance profile with
// AmazonSSMManagedInstanceCore, no route to the SSM endpoints) fails the
// bake with an error matching ec2ops.ErrTimeout and ec2ops.ErrUnmanaged
// that says what to check, and the builder is terminated.
//
// # Distributor
//
// Apply copies an image to other Regions (CopyImage on a client of the
// destination Region, with a deterministic ClientToken and the tag
// ec2ops:copy-of=REGION/ami-..., which a rerun adopts), encrypted with a KMS
// key of that Region (KMS keys are regional; the CopyImage reference requires
// the key to be in the destination Region), waits for every copy with one
// poller per Region, then shares the source and the copies
// (ModifyImageAttribute launch permissions for accounts, organization ARNs
// and OU ARNs; optionally createVolumePermission on the snapshots for the
// accounts, which they need to copy the image), sets ImdsSupport v2.0 and
// the deprecation time (EnableImageDeprecation: rounded up to the minute, at
// most 10 years ahead). Making an image public is refused. CopyImage has
// its own bucket of 100 requests refilling 1 a second (AWS-FACTS.md), so
// copies are paced per Region.
//
// # Retention
//
// A Family selects images by name prefix and/or tag and sets KeepNewest,
// KeepYoungerThan, DeprecateAfter, DisableAfter and DeregisterAfter. Plan
// lists the account's images once (owner self, deprecated and disabled
// included), decides each by age, then protects the images it would disable
// or deregister:
//
//   - in use: referenced by an instance in any state but terminated
//     (DescribeInstances filtered by image-id, 200 values a call, the
//     filter-value limit), by any version of any launch template
//     (DescribeLaunchTemplateVersions with ResolveAlias, so resolve:ssm:
//     image IDs count), by an Auto Scaling group's mixed instances override,
//     or by any launch configuration;
//   - shared: launch permission for another account, an organization, an OU
//     or everyone (DescribeImageAttribute), unless Options.Force.
//
// A protected image is deprecated instead when its DeprecateAfter has passed
// and kept otherwise; every Decision carries its reasons. Disabling counts
// as retiring because a disabled image cannot launch and loses its sharing
// (DisableImage reference). Apply checks use again (something may have
// started using an image since the plan), then acts image by image, paced by
// the limiter (DeregisterImage: 100, then 5 a second), deregistering with
// DeleteAssociatedSnapshots, which deletes the image's snapshots unless
// another image uses them (DeregisterImage reference). Every action is
// idempotent (an image already gone counts as done), so a cancelled Apply,
// or a new Plan and Apply, continues where it stopped; a stop is an
// *ec2ops.ProgressError.
//
// Sharing has no bulk query: DescribeImages reports only Public, so an
// image's accounts, organizations and OUs take one DescribeImageAttribute
// call each, in the non-mutating bucket (100, then 20 a second). Checked in
// Plan, before Apply starts, 3,760 images cost (3,760-100)/20 = 183 s on top
// of the (3,760-100)/5 = 732 s of DeregisterImage. So by default Plan leaves
// the check to Apply and says so in each decision ("sharing checked at
// apply (kept if shared)", Decision.SharingChecked false), and Apply checks
// every image it would disable or deregister just before acting, in a
// goroutine up to 100 images ahead of the actions: at 4 times the
// DeregisterImage rate the checks finish before the tokens they wait for,
// and Apply takes the DeregisterImage time alone. An image found shared is
// kept, or deprecated instead, like in Plan, and listed in
// ApplyResult.Skipped. Options.PlanSharing makes Plan check (and report)
// sharing too, at the cost above; Apply checks again anyway, since sharing
// may change after the plan. With Force, Apply checks no sharing.
//
// # Balancer
//
// Balance is pure computation. Layers 1..L are ordered bottom up (OS,
// patches, runtime, application, configuration); layer i takes b_i minutes
// to bake, u_i minutes to install at boot, changes c_i times a week and adds
// s_i GiB. A cut k in 1..L bakes layers 1..k into the image and installs
// k+1..L at boot (k = L is FullAMI, k = 1 OSOnly, otherwise Hybrid(k)). With
// N launches a day, base boot time T0, bake overhead O, copy time C (when
// copying to R Regions) and K images kept per Region:
//
//	bake duration      D_k = O + Σ_{i≤k} b_i                 minutes
//	bakes per week     F_k = Σ_{i≤k} c_i                     (every change to a baked layer rebuilds)
//	build hours        H_k = F_k · D_k / 60
//	boot time          T_k = T0 + Σ_{i>k} u_i                minutes
//	boot hours         B_k = 7 · N · T_k / 60               (instances paid while not yet serving)
//	staleness          S_k = F_k · (D_k + C) / Σ_i c_i       minutes a change waits, averaged over changes
//	weekly cost        W_k = H_k·p_build + B_k·p_instance + K·(1+R)·Σ_{i≤k}s_i·p_GiBmonth/4.35 + F_k·R·Σ_{i≤k}s_i·p_copyGiB
//
// The recommendation is the cut with the least W_k (with prices) or
// H_k + B_k instance-hours (without) among those with T_k ≤ the boot SLO;
// ties go to the smaller cut. If even T_L misses the SLO the answer is an
// *InfeasibleError with T_L, the fastest possible boot. Every term is
// linear in N and in a common factor on the change rates, so the answer is
// piecewise constant in them; the thresholds (the launches a day, change
// rate factor and boot SLO where the answer flips) are found by scanning a
// geometric grid from the current value (x2 a step, 30 steps each way) and
// bisecting the first bracket to 1e-6 relative precision. The defaults are
// T0 = 1 minute (pending -> running 5-17 s and status checks 1-3 min,
// AWS-FACTS.md), O = 10 minutes (Packer and Aminator bakes take about 10
// minutes, AWS-FACTS.md), C = 20 minutes, K = 3. The recommendation is
// executable: Recipe returns the Baker recipe of layers 1..k, BootUserData
// the cloud-init user data (a MIME multi-part archive, one part per layer)
// of layers k+1..L.
//
// # IAM
//
// Each strategy's Policy() lists exactly the actions it calls: Resolver
// ec2:DescribeImages, ssm:GetParameter; Baker ec2:DescribeImages,
// DescribeInstances, DescribeInstanceStatus, RunInstances (instances and
// volumes only with the request tag ec2ops:role=builder), CreateTags (only
// when creating), CreateImage, TerminateInstances (only builders); Sweeper
// ec2:DescribeInstances, TerminateInstances (only builders); Distributor
// ec2:DescribeImages, CopyImage, ModifyImageAttribute,
// ModifySnapshotAttribute, EnableImageDeprecation, DisableImageDeprecation,
// CreateTags (when copying) and the KMS actions of encrypted copies;
// Retention ec2:DescribeImages, DescribeImageAttribute, DescribeInstances,
// DescribeLaunchTemplates, DescribeLaunchTemplateVersions,
// EnableImageDeprecation, DisableImage, DeregisterImage, DeleteSnapshot (for
// DeleteAssociatedSnapshots) and autoscaling:DescribeAutoScalingGroups,
// DescribeLaunchConfigurations. The Baker's Runner brings its own Systems
// Manager policy; a recipe's instance profile needs iam:PassRole.
//
// # Sources
//
// EC2 API Reference: CreateImage, CopyImage, DescribeImages,
// DeregisterImage, ModifyImageAttribute, EnableImageDeprecation,
// DisableImage (as in the aws-sdk-go-v2 service/ec2 doc comments); "Request
// throttling for the Amazon EC2 API"; cloud-init "User-data formats";
// Datadog Security Labs, "whoAMI: a cloud image name confusion attack"
// (2025). Numbers are collected in AWS-FACTS.md beside DESIGN.md.
package ami
