package ami

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awserr"
	"github.com/ec2ops/ec2ops/internal/ratelimit"
)

// Family is the retention policy of one image family: the images whose
// name starts with NamePrefix, or that carry the tag TagKey=TagValue (for
// example ec2ops:family=web, which the Baker sets). Durations count from
// the image's creation date; a zero duration turns its step off.
type Family struct {
	// Name labels the family in plans and events.
	Name string
	// NamePrefix selects by name; TagKey (and TagValue, "" for any value)
	// by tag. At least one is required; with both, both must match.
	NamePrefix       string
	TagKey, TagValue string
	// KeepNewest always keeps the newest KeepNewest images of the family
	// (whatever their age). Zero means 1: the newest image is never
	// retired by age alone.
	KeepNewest int
	// KeepYoungerThan keeps every image younger than this.
	KeepYoungerThan time.Duration
	// DeprecateAfter, DisableAfter and DeregisterAfter retire older
	// images step by step: a deprecated image still launches but no longer
	// shows in other accounts' default listings; a disabled image cannot
	// launch and loses its sharing; a deregistered image is gone, and its
	// snapshots are deleted with it. Each, when set, must not be shorter
	// than the one before.
	DeprecateAfter, DisableAfter, DeregisterAfter time.Duration
}

// RetentionOptions configures Retention. Zero values are safe defaults.
type RetentionOptions struct {
	// Force retires images shared with other accounts, organizations or
	// OUs (or public) too; by default they are kept and reported.
	Force bool
	// PlanSharing makes Plan check the launch permissions of every image
	// it would disable or deregister (one DescribeImageAttribute call per
	// image, 20 a second after a burst of 100), so that the plan reports
	// each image's sharing. By default Plan leaves that check to Apply,
	// which runs it ahead of the actions while DeregisterImage tokens
	// refill (5 a second), and marks those decisions "sharing checked at
	// apply". Apply checks sharing before acting either way (unless
	// Force).
	PlanSharing bool
	// Limiter paces EC2 calls; nil means a private limiter with the
	// published buckets. Apply spends DeregisterImage tokens (100, 5 a
	// second) and the mutating bucket; share the limiter with other tools.
	Limiter *ratelimit.Limiter
	// Observer receives progress events (Operation "retention").
	Observer ec2ops.Observer
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

// Retention retires old images of the account's families, never one that
// is in use: referenced by an instance in any state but terminated, by any
// launch template version, or by an Auto Scaling group (its launch
// configuration, launch template or mixed instances policy overrides).
type Retention struct {
	ec2      RetentionAPI
	asg      AutoScalingAPI
	families []Family
	opts     RetentionOptions
	c, asgC  common
}

// NewRetention returns a Retention for families. asg is required: an image
// an Auto Scaling group launches from must be seen to be protected.
func NewRetention(api RetentionAPI, asg AutoScalingAPI, families []Family, optFns ...func(*RetentionOptions)) *Retention {
	o := RetentionOptions{}
	for _, f := range optFns {
		f(&o)
	}
	r := &Retention{ec2: api, asg: asg, families: slices.Clone(families), opts: o, c: newCommon("retention", o.Limiter, o.Observer, o.Logger)}
	// Auto Scaling publishes no request rates: its calls are not paced
	// (they are retried when throttled).
	r.asgC = r.c
	r.asgC.lim = nil
	return r
}

// NewRetentionFromConfig returns a Retention with EC2 and Auto Scaling
// clients made from cfg.
func NewRetentionFromConfig(cfg aws.Config, families []Family, optFns ...func(*RetentionOptions)) *Retention {
	return NewRetention(ec2.NewFromConfig(cfg), autoscaling.NewFromConfig(cfg), families, optFns...)
}

// Action is what Retention does to an image.
type Action string

// Actions, mildest first.
const (
	Keep       Action = "keep"
	Deprecate  Action = "deprecate"
	Disable    Action = "disable"
	Deregister Action = "deregister"
)

// Decision is the plan for one image.
type Decision struct {
	Image  Image
	Family string
	Action Action
	// Reasons say why, in words ("3rd newest of web, kept",
	// "in use by i-0123...").
	Reasons []string
	// InUse lists what references the image: instance IDs, "lt-.../N"
	// launch template versions, "asg:NAME", "lc:NAME".
	InUse []string
	// SharedWith lists the accounts, organizations and OUs with launch
	// permission ("all" for a public image).
	SharedWith []string
	// SharingChecked says whether SharedWith was looked up: false for an
	// image Plan would disable or deregister without
	// RetentionOptions.PlanSharing (Apply checks it before acting) and for
	// images no step retires.
	SharingChecked bool
	// DeprecateAt is the deprecation time a Deprecate action sets.
	DeprecateAt time.Time
}

// RetentionPlan is the dry run of Retention: a Decision per image of the
// families, in family order, newest first.
type RetentionPlan struct {
	Decisions []Decision
	// At is when the plan was made; ages are measured from it.
	At time.Time
}

// Counts returns how many images get each action.
func (p *RetentionPlan) Counts() map[Action]int {
	m := map[Action]int{}
	for _, d := range p.Decisions {
		m[d.Action]++
	}
	return m
}

// Plan renders the plan's actions as an ec2ops.Plan (kept images are left
// out).
func (p *RetentionPlan) Plan() ec2ops.Plan {
	out := ec2ops.Plan{Operation: "retention"}
	for _, d := range p.Decisions {
		var action, why string
		res := []string{d.Image.ID}
		switch d.Action {
		case Keep:
			continue
		case Deprecate:
			action, why = "ec2:EnableImageDeprecation", "deprecate at "+d.DeprecateAt.UTC().Format(time.RFC3339)
		case Disable:
			action, why = "ec2:DisableImage", "disable"
		case Deregister:
			action, why = "ec2:DeregisterImage", "deregister with its snapshots"
			res = append(res, d.Image.Snapshots...)
		}
		out.Steps = append(out.Steps, ec2ops.Step{Action: action, Resources: res, Reason: why + ": " + strings.Join(d.Reasons, "; ")})
	}
	return out
}

func (r *Retention) validate() error {
	if r.asg == nil {
		return ec2ops.InvalidInput("asg", "nil", "no Auto Scaling client: images that groups launch from would not be protected",
			"pass an Auto Scaling client (autoscaling.NewFromConfig)")
	}
	if len(r.families) == 0 {
		return ec2ops.InvalidInput("families", "", "no family", "give at least one Family with a NamePrefix or TagKey")
	}
	for i, f := range r.families {
		field := fmt.Sprintf("families[%d]", i)
		if f.NamePrefix == "" && f.TagKey == "" {
			return ec2ops.InvalidInput(field, f.Name, "selects every image of the account", "set NamePrefix or TagKey")
		}
		if f.KeepNewest < 0 || f.KeepYoungerThan < 0 || f.DeprecateAfter < 0 || f.DisableAfter < 0 || f.DeregisterAfter < 0 {
			return ec2ops.InvalidInput(field, f.Name, "negative count or duration", "use zero to turn a step off")
		}
		last := time.Duration(0)
		for _, s := range []struct {
			name string
			d    time.Duration
		}{{"DeprecateAfter", f.DeprecateAfter}, {"DisableAfter", f.DisableAfter}, {"DeregisterAfter", f.DeregisterAfter}} {
			if s.d == 0 {
				continue
			}
			if s.d < last {
				return ec2ops.InvalidInput(field+"."+s.name, s.d.String(), "shorter than an earlier step", "order the steps deprecate <= disable <= deregister")
			}
			last = s.d
		}
	}
	return nil
}

func (f Family) matches(im Image) bool {
	if f.NamePrefix != "" && !strings.HasPrefix(im.Name, f.NamePrefix) {
		return false
	}
	if f.TagKey != "" {
		v, ok := im.Tags[f.TagKey]
		if !ok || (f.TagValue != "" && v != f.TagValue) {
			return false
		}
	}
	return true
}

func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return fmt.Sprintf("%d%s", n, suffix)
}

func age(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
	return d.Round(time.Minute).String()
}

// decide is the age-based decision of the i-th newest image (before the
// in-use and sharing checks).
func decide(f Family, i int, im Image, now time.Time) Decision {
	d := Decision{Image: im, Family: f.Name, Action: Keep}
	a := now.Sub(im.Created)
	keepN := max(f.KeepNewest, 1)
	switch {
	case i < keepN:
		d.Reasons = append(d.Reasons, fmt.Sprintf("%s newest of %s (keeps %d)", ordinal(i+1), f.Name, keepN))
	case f.KeepYoungerThan > 0 && a < f.KeepYoungerThan:
		d.Reasons = append(d.Reasons, fmt.Sprintf("%s old, younger than %s", age(a), age(f.KeepYoungerThan)))
	case f.DeregisterAfter > 0 && a >= f.DeregisterAfter:
		d.Action = Deregister
		d.Reasons = append(d.Reasons, fmt.Sprintf("%s old, past DeregisterAfter %s", age(a), age(f.DeregisterAfter)))
	case f.DisableAfter > 0 && a >= f.DisableAfter:
		d.Action = Disable
		d.Reasons = append(d.Reasons, fmt.Sprintf("%s old, past DisableAfter %s", age(a), age(f.DisableAfter)))
		if im.State == types.ImageStateDisabled {
			d.Action = Keep
			d.Reasons = append(d.Reasons, "already disabled")
		}
	case f.DeprecateAfter > 0 && a >= f.DeprecateAfter:
		d.Action = Deprecate
		d.Reasons = append(d.Reasons, fmt.Sprintf("%s old, past DeprecateAfter %s", age(a), age(f.DeprecateAfter)))
	default:
		d.Reasons = append(d.Reasons, fmt.Sprintf("%s old, below every threshold", age(a)))
	}
	if d.Action == Deprecate {
		d = deprecation(d, now)
	}
	return d
}

// deprecation fills DeprecateAt for a Deprecate decision, or keeps an image
// that is already deprecated.
func deprecation(d Decision, now time.Time) Decision {
	im := d.Image
	if !im.DeprecationTime.IsZero() && !im.DeprecationTime.After(now.Add(time.Minute)) {
		d.Action = Keep
		d.Reasons = append(d.Reasons, "already deprecated")
		return d
	}
	// EnableImageDeprecation refuses a time in the past: deprecate a
	// minute from now.
	d.DeprecateAt = now.Add(time.Minute).Truncate(time.Minute).Add(time.Minute)
	return d
}

// usage is what references images: image ID -> referrers.
type usage map[string][]string

// scanUsage finds, for the images ids, what references them: instances
// (not terminated) through DescribeInstances filtered by image-id in
// chunks of 200 values (the filter-value limit), and every launch template
// version, Auto Scaling group and launch configuration (all listed, since
// they cannot be filtered by image).
func (r *Retention) scanUsage(ctx context.Context, ids []string) (usage, error) {
	u := usage{}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	add := func(img, who string) {
		if want[img] && !slices.Contains(u[img], who) {
			u[img] = append(u[img], who)
		}
	}
	for chunk := range slices.Chunk(ids, filterValueLimit) {
		in := &ec2.DescribeInstancesInput{Filters: []types.Filter{filter("image-id", chunk...)}, MaxResults: aws.Int32(maxDescribePage)}
		for {
			out, err := do(ctx, r.c, "DescribeInstances", 0, func(ctx context.Context) (*ec2.DescribeInstancesOutput, error) {
				return r.ec2.DescribeInstances(ctx, in)
			})
			if err != nil {
				return nil, fmt.Errorf("ec2:DescribeInstances: %w", err)
			}
			for _, res := range out.Reservations {
				for _, x := range res.Instances {
					if x.State != nil && x.State.Name == types.InstanceStateNameTerminated {
						continue
					}
					add(aws.ToString(x.ImageId), aws.ToString(x.InstanceId))
				}
			}
			if aws.ToString(out.NextToken) == "" {
				break
			}
			in.NextToken = out.NextToken
		}
	}
	// Launch templates: every version of every template.
	ltIn := &ec2.DescribeLaunchTemplatesInput{MaxResults: aws.Int32(ltPage)}
	for {
		out, err := do(ctx, r.c, "DescribeLaunchTemplates", 0, func(ctx context.Context) (*ec2.DescribeLaunchTemplatesOutput, error) {
			return r.ec2.DescribeLaunchTemplates(ctx, ltIn)
		})
		if err != nil {
			return nil, fmt.Errorf("ec2:DescribeLaunchTemplates: %w", err)
		}
		for _, t := range out.LaunchTemplates {
			vIn := &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: t.LaunchTemplateId, ResolveAlias: aws.Bool(true), MaxResults: aws.Int32(ltPage)}
			for {
				vs, err := do(ctx, r.c, "DescribeLaunchTemplateVersions", 0, func(ctx context.Context) (*ec2.DescribeLaunchTemplateVersionsOutput, error) {
					return r.ec2.DescribeLaunchTemplateVersions(ctx, vIn)
				})
				if err != nil {
					return nil, fmt.Errorf("ec2:DescribeLaunchTemplateVersions %s: %w", aws.ToString(t.LaunchTemplateId), err)
				}
				for _, v := range vs.LaunchTemplateVersions {
					if v.LaunchTemplateData != nil {
						add(aws.ToString(v.LaunchTemplateData.ImageId), fmt.Sprintf("%s/%d", aws.ToString(v.LaunchTemplateId), aws.ToInt64(v.VersionNumber)))
					}
				}
				if aws.ToString(vs.NextToken) == "" {
					break
				}
				vIn.NextToken = vs.NextToken
			}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		ltIn.NextToken = out.NextToken
	}
	// Auto Scaling: mixed instances overrides may name an image directly;
	// launch configurations (all of them: a group may be created from one
	// at any time) name one.
	gIn := &autoscaling.DescribeAutoScalingGroupsInput{MaxRecords: aws.Int32(asgPage)}
	for {
		out, err := do(ctx, r.asgC, "DescribeAutoScalingGroups", 0, func(ctx context.Context) (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
			return r.asg.DescribeAutoScalingGroups(ctx, gIn)
		})
		if err != nil {
			return nil, fmt.Errorf("autoscaling:DescribeAutoScalingGroups: %w", err)
		}
		for _, g := range out.AutoScalingGroups {
			if m := g.MixedInstancesPolicy; m != nil && m.LaunchTemplate != nil {
				for _, o := range m.LaunchTemplate.Overrides {
					add(aws.ToString(o.ImageId), "asg:"+aws.ToString(g.AutoScalingGroupName))
				}
			}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		gIn.NextToken = out.NextToken
	}
	lcIn := &autoscaling.DescribeLaunchConfigurationsInput{MaxRecords: aws.Int32(asgPage)}
	for {
		out, err := do(ctx, r.asgC, "DescribeLaunchConfigurations", 0, func(ctx context.Context) (*autoscaling.DescribeLaunchConfigurationsOutput, error) {
			return r.asg.DescribeLaunchConfigurations(ctx, lcIn)
		})
		if err != nil {
			return nil, fmt.Errorf("autoscaling:DescribeLaunchConfigurations: %w", err)
		}
		for _, lc := range out.LaunchConfigurations {
			add(aws.ToString(lc.ImageId), "lc:"+aws.ToString(lc.LaunchConfigurationName))
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		lcIn.NextToken = out.NextToken
	}
	return u, nil
}

// Page sizes. Sources: DescribeInstances accepts at most 200 filter
// values (AWS-FACTS.md); DescribeLaunchTemplates and
// DescribeLaunchTemplateVersions MaxResults 1..200; DescribeAutoScalingGroups
// and DescribeLaunchConfigurations MaxRecords at most 100 (API
// references).
const (
	filterValueLimit = 200
	ltPage           = 200
	asgPage          = 100
)

// sharedWith returns the principals with launch permission on an image.
func (r *Retention) sharedWith(ctx context.Context, im Image) ([]string, error) {
	out, err := do(ctx, r.c, "DescribeImageAttribute", 0, func(ctx context.Context) (*ec2.DescribeImageAttributeOutput, error) {
		return r.ec2.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{ImageId: aws.String(im.ID), Attribute: types.ImageAttributeNameLaunchPermission})
	})
	if err != nil {
		return nil, fmt.Errorf("ec2:DescribeImageAttribute %s: %w", im.ID, err)
	}
	var who []string
	if im.Public {
		who = append(who, "all")
	}
	for _, p := range out.LaunchPermissions {
		switch {
		case p.Group == types.PermissionGroupAll:
			if !slices.Contains(who, "all") {
				who = append(who, "all")
			}
		default:
			if w := cmp.Or(aws.ToString(p.UserId), aws.ToString(p.OrganizationArn), aws.ToString(p.OrganizationalUnitArn)); w != "" {
				who = append(who, w)
			}
		}
	}
	return who, nil
}

// protect applies the in-use and sharing protections to the decisions
// that disable or deregister. A protected image is deprecated instead when
// its family's DeprecateAfter has passed, and kept otherwise.
func (r *Retention) protect(ctx context.Context, ds []Decision, now time.Time, sharing bool, check func(Decision) bool) error {
	var ids []string
	for _, d := range ds {
		if check(d) {
			ids = append(ids, d.Image.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	u, err := r.scanUsage(ctx, ids)
	if err != nil {
		return err
	}
	fams := r.familyMap()
	for i := range ds {
		d := &ds[i]
		if !check(*d) {
			continue
		}
		if refs := u[d.Image.ID]; len(refs) > 0 {
			slices.Sort(refs)
			d.InUse = refs
			d.Reasons = append(d.Reasons, "in use by "+summarize(refs))
			*d = fallBack(fams[d.Family], *d, now)
			continue
		}
		if !sharing {
			continue
		}
		who, err := r.sharedWith(ctx, d.Image)
		if err != nil {
			return err
		}
		r.applySharing(d, who, fams[d.Family], now)
	}
	return nil
}

// applySharing records an image's launch permissions in its decision and
// keeps (or deprecates instead) a shared image unless Force.
func (r *Retention) applySharing(d *Decision, who []string, f Family, now time.Time) {
	d.SharedWith, d.SharingChecked = who, true
	if len(who) == 0 {
		return
	}
	if r.opts.Force {
		d.Reasons = append(d.Reasons, "shared with "+summarize(who)+", retired anyway (Force)")
		return
	}
	d.Reasons = append(d.Reasons, "shared with "+summarize(who)+" (set Force to retire it)")
	*d = fallBack(f, *d, now)
}

func (r *Retention) familyMap() map[string]Family {
	fams := map[string]Family{}
	for _, f := range r.families {
		fams[f.Name] = f
	}
	return fams
}

func retires(d Decision) bool { return d.Action == Disable || d.Action == Deregister }

// needsSharingCheck says whether Apply looks up d's launch permissions
// before acting.
func (r *Retention) needsSharingCheck(d Decision) bool { return !r.opts.Force && retires(d) }

func fallBack(f Family, d Decision, now time.Time) Decision {
	if f.DeprecateAfter > 0 && now.Sub(d.Image.Created) >= f.DeprecateAfter {
		d.Action = Deprecate
		d = deprecation(d, now)
		if d.Action == Deprecate {
			d.Reasons = append(d.Reasons, "deprecated instead")
		}
		return d
	}
	d.Action = Keep
	return d
}

func summarize(s []string) string {
	if len(s) <= 3 {
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(s[:3], ", "), len(s)-3)
}

// Plan lists the families' images (one paginated DescribeImages for all
// families; an image belongs to the first family that selects it),
// decides by age, then checks the images to disable or deregister for use,
// and for sharing with RetentionOptions.PlanSharing (otherwise their
// reasons say "sharing checked at apply": Apply checks before acting). It
// changes nothing.
func (r *Retention) Plan(ctx context.Context) (*RetentionPlan, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	now := time.Now()
	r.c.emit("list", "", 0, 0, "listing images", nil)
	raw, _, err := describeImages(ctx, r.c, r.ec2, ec2.DescribeImagesInput{Owners: []string{"self"}, IncludeDeprecated: aws.Bool(true), IncludeDisabled: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	byFamily := make([][]Image, len(r.families))
	for _, x := range raw {
		im := imageFromSDK(x)
		if im.State != types.ImageStateAvailable && im.State != types.ImageStateDisabled {
			continue // pending and failed images are not retired by age
		}
		for i, f := range r.families {
			if f.matches(im) {
				byFamily[i] = append(byFamily[i], im)
				break
			}
		}
	}
	plan := &RetentionPlan{At: now}
	for i, f := range r.families {
		imgs := byFamily[i]
		slices.SortFunc(imgs, newestFirst)
		for j, im := range imgs {
			plan.Decisions = append(plan.Decisions, decide(f, j, im, now))
		}
	}
	msg := "checking use (sharing at apply)"
	if r.opts.PlanSharing {
		msg = "checking use and sharing"
	}
	r.c.emit("check", "", 0, len(plan.Decisions), msg, nil)
	if err := r.protect(ctx, plan.Decisions, now, r.opts.PlanSharing, retires); err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	for i := range plan.Decisions {
		d := &plan.Decisions[i]
		if !retires(*d) || d.SharingChecked {
			continue
		}
		if r.opts.Force {
			d.Reasons = append(d.Reasons, "sharing not checked (Force retires shared images)")
		} else {
			d.Reasons = append(d.Reasons, "sharing checked at apply (kept if shared)")
		}
	}
	c := plan.Counts()
	r.c.emit("planned", "", len(plan.Decisions), len(plan.Decisions), fmt.Sprintf("keep %d, deprecate %d, disable %d, deregister %d", c[Keep], c[Deprecate], c[Disable], c[Deregister]), nil)
	return plan, nil
}

// ApplyResult is what Apply did.
type ApplyResult struct {
	// Done lists "action image" for every action taken (or found already
	// taken, on a rerun).
	Done []string
	// Skipped lists images whose action was dropped because they came into
	// use after the plan or were found shared at apply, with the reason.
	Skipped map[string]string
	// SnapshotsKept lists snapshots that DeregisterImage did not delete
	// (another image uses them), by image.
	SnapshotsKept map[string][]string
}

// shareLookahead bounds how many images Apply checks for sharing ahead of
// the one it acts on: 100, the DeregisterImage burst, so that a check is at
// most ~20 s older than its action once the bucket paces at 5 a second.
const shareLookahead = 100

type shareResult struct {
	who []string
	err error
}

// checkSharing looks up the launch permissions of the actions that need it
// (needsSharingCheck), in order, one result each on the returned channel,
// at most shareLookahead ahead of the reader. It stops when ctx ends.
func (r *Retention) checkSharing(ctx context.Context, wg *sync.WaitGroup, acts []Decision) <-chan shareResult {
	ch := make(chan shareResult, shareLookahead)
	wg.Go(func() {
		defer close(ch)
		for _, d := range acts {
			if !r.needsSharingCheck(d) {
				continue
			}
			who, err := r.sharedWith(ctx, d.Image)
			if err != nil && awserr.IsNotFound(err) {
				who, err = nil, nil // gone: the action finds it gone too
			}
			select {
			case ch <- shareResult{who, err}:
			case <-ctx.Done():
				return
			}
		}
	})
	return ch
}

// Apply carries out a plan, paced by the limiter. It checks the images to
// disable or deregister for use again first (something may have started
// using one since the plan), then acts image by image. Before disabling or
// deregistering an image it checks the image's launch permissions (unless
// Force) and keeps a shared image (or deprecates it, as Plan would have):
// the checks run in a goroutine up to 100 images ahead of the actions, at
// the non-mutating rate (20 a second), 4 times the DeregisterImage rate (5
// a second), so they do not slow Apply down. Every action is idempotent
// (deregistering an image that is already gone counts as done), so Apply,
// or Plan and Apply, can be run again after a cancellation or a failure and
// continue where it stopped. A stop is an *ec2ops.ProgressError listing
// done, failed and pending images.
func (r *Retention) Apply(ctx context.Context, plan *RetentionPlan) (ApplyResult, error) {
	res := ApplyResult{Skipped: map[string]string{}, SnapshotsKept: map[string][]string{}}
	if plan == nil {
		return res, ec2ops.InvalidInput("plan", "nil", "no plan", "call Plan first")
	}
	if err := r.validate(); err != nil {
		return res, err
	}
	todo := slices.Clone(plan.Decisions)
	before := map[string]Action{}
	for _, d := range todo {
		before[d.Image.ID] = d.Action
	}
	if err := r.protect(ctx, todo, time.Now(), false, retires); err != nil {
		return res, &ec2ops.ProgressError{Operation: "retention", Err: err}
	}
	var acts []Decision
	for _, d := range todo {
		if d.Action != before[d.Image.ID] && before[d.Image.ID] != Keep {
			res.Skipped[d.Image.ID] = fmt.Sprintf("%s dropped: %s", before[d.Image.ID], d.Reasons[len(d.Reasons)-1])
		}
		if d.Action != Keep {
			acts = append(acts, d)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	shares := r.checkSharing(cctx, &wg, acts)
	fams := r.familyMap()
	failed := map[string]error{}
	for i, d := range acts {
		if err := ctx.Err(); err != nil {
			return res, r.progress(acts[i:], res, failed, err)
		}
		if r.needsSharingCheck(d) {
			var sr shareResult
			select {
			case sr = <-shares:
			case <-ctx.Done():
				return res, r.progress(acts[i:], res, failed, ctx.Err())
			}
			if sr.err != nil {
				if ctx.Err() != nil {
					return res, r.progress(acts[i:], res, failed, ctx.Err())
				}
				err := fmt.Errorf("%s %s: %w", d.Action, d.Image.ID, sr.err)
				failed[d.Image.ID] = err
				r.c.emit(string(d.Action), d.Image.ID, len(res.Done), len(acts), "failed", err)
				r.c.log.WarnContext(ctx, "retention sharing check failed", "image", d.Image.ID, "err", sr.err)
				continue
			}
			was, n := d.Action, len(d.Reasons)
			r.applySharing(&d, sr.who, fams[d.Family], time.Now())
			if d.Action != was {
				res.Skipped[d.Image.ID] = fmt.Sprintf("%s dropped: %s", was, d.Reasons[n])
				r.c.emit("skip", d.Image.ID, len(res.Done), len(acts), res.Skipped[d.Image.ID], nil)
				if d.Action == Keep {
					continue
				}
			}
		}
		err := r.act(ctx, d, &res)
		switch {
		case err == nil:
			res.Done = append(res.Done, string(d.Action)+" "+d.Image.ID)
			r.c.emit(string(d.Action), d.Image.ID, len(res.Done), len(acts), strings.Join(d.Reasons, "; "), nil)
		case ctx.Err() != nil:
			return res, r.progress(acts[i:], res, failed, ctx.Err())
		default:
			failed[d.Image.ID] = err
			r.c.emit(string(d.Action), d.Image.ID, len(res.Done), len(acts), "failed", err)
			r.c.log.WarnContext(ctx, "retention action failed", "image", d.Image.ID, "action", string(d.Action), "err", err)
		}
	}
	if len(failed) > 0 {
		first := slices.Sorted(maps.Keys(failed))[0] // name the first cause, so the message says why
		return res, r.progress(nil, res, failed, fmt.Errorf("%d of %d actions failed (first: %w)", len(failed), len(acts), failed[first]))
	}
	return res, nil
}

func (r *Retention) progress(pending []Decision, res ApplyResult, failed map[string]error, err error) error {
	pe := &ec2ops.ProgressError{Operation: "retention", Done: slices.Clone(res.Done), Failed: maps.Clone(failed), Err: err}
	for _, d := range pending {
		pe.Pending = append(pe.Pending, string(d.Action)+" "+d.Image.ID)
	}
	return pe
}

func (r *Retention) act(ctx context.Context, d Decision, res *ApplyResult) error {
	id := aws.String(d.Image.ID)
	var err error
	switch d.Action {
	case Deprecate:
		at := d.DeprecateAt
		if min := time.Now().Add(time.Minute); at.Before(min) {
			at = min
		}
		_, err = do(ctx, r.c, "EnableImageDeprecation", 0, func(ctx context.Context) (*ec2.EnableImageDeprecationOutput, error) {
			return r.ec2.EnableImageDeprecation(ctx, &ec2.EnableImageDeprecationInput{ImageId: id, DeprecateAt: aws.Time(at)})
		})
	case Disable:
		_, err = do(ctx, r.c, "DisableImage", 0, func(ctx context.Context) (*ec2.DisableImageOutput, error) {
			return r.ec2.DisableImage(ctx, &ec2.DisableImageInput{ImageId: id})
		})
	case Deregister:
		var out *ec2.DeregisterImageOutput
		out, err = do(ctx, r.c, "DeregisterImage", 0, func(ctx context.Context) (*ec2.DeregisterImageOutput, error) {
			return r.ec2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: id, DeleteAssociatedSnapshots: aws.Bool(true)})
		})
		if err == nil {
			for _, sr := range out.DeleteSnapshotResults {
				if sr.ReturnCode != types.SnapshotReturnCodesSuccess {
					res.SnapshotsKept[d.Image.ID] = append(res.SnapshotsKept[d.Image.ID], aws.ToString(sr.SnapshotId)+" ("+string(sr.ReturnCode)+")")
				}
			}
		}
	}
	if err != nil && awserr.Classify(err) == awserr.NotFound {
		return nil // already gone: a rerun
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", d.Action, d.Image.ID, err)
	}
	return nil
}

// Policy returns the IAM policy Retention needs.
func (r *Retention) Policy() ec2ops.Policy {
	return ec2ops.NewPolicy(
		ec2ops.Statement{Sid: "FindImagesAndUse", Action: []string{"ec2:DescribeImages", "ec2:DescribeImageAttribute", "ec2:DescribeInstances",
			"ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions",
			"autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeLaunchConfigurations"}},
		ec2ops.Statement{Sid: "RetireImages", Action: []string{"ec2:EnableImageDeprecation", "ec2:DisableImage", "ec2:DeregisterImage"},
			Resource: []string{"arn:aws:ec2:*::image/*"}},
		ec2ops.Statement{Sid: "DeleteSnapshotsWithImages", Action: []string{"ec2:DeleteSnapshot"},
			Resource: []string{"arn:aws:ec2:*::snapshot/*"}},
	)
}
