package ratelimit

import (
	"context"
	"sync"
)

// Rule sizes the buckets of one API action: a request bucket (one token a
// call) and, for some actions, a resource bucket (one token per resource, for
// example per instance launched).
type Rule struct {
	Request  Spec
	Resource *Spec
}

// Preset maps API action names (as the SDK names operations, e.g.
// "RunInstances") to their Rule. Actions not listed use Default.
type Preset struct {
	Name    string
	Default Rule
	Actions map[string]Rule
}

// Rule returns the rule for action.
func (p Preset) Rule(action string) Rule {
	if r, ok := p.Actions[action]; ok {
		return r
	}
	return p.Default
}

var (
	nonMutating   = Spec{100, 20}
	unfilteredDsc = Spec{50, 10}
	mutating      = Spec{50, 5}
	runInstances  = Spec{5, 2}
	terminate     = Spec{100, 5}
	tags          = Spec{100, 10}
	imageOps      = Spec{100, 5}
	copyImage     = Spec{100, 1}
)

// EC2 returns the published EC2 request and resource buckets. Source: "Request
// throttling for the Amazon EC2 API" (Amazon EC2 Developer Guide), request
// token and resource token tables. Actions not listed are treated as
// mutating (50/5), the conservative choice; Describe*/Get*/List* actions
// should be listed explicitly when used.
func EC2() Preset {
	a := map[string]Rule{
		"RunInstances":                {Request: runInstances, Resource: &Spec{1000, 2}},
		"StartInstances":              {Request: runInstances, Resource: &Spec{1000, 2}},
		"TerminateInstances":          {Request: terminate, Resource: &Spec{1000, 20}},
		"StopInstances":               {Request: mutating, Resource: &Spec{1000, 20}},
		"CreateTags":                  {Request: tags},
		"DeleteTags":                  {Request: tags},
		"CreateSnapshot":              {Request: imageOps},
		"DeregisterImage":             {Request: imageOps},
		"ModifyImageAttribute":        {Request: imageOps},
		"CreateLaunchTemplateVersion": {Request: imageOps},
		"CopyImage":                   {Request: copyImage},
	}
	for _, op := range []string{"DescribeInstances", "DescribeInstanceStatus", "DescribeVolumes",
		"DescribeSnapshots", "DescribeNetworkInterfaces", "DescribeSecurityGroups", "DescribeSpotInstanceRequests"} {
		a[op] = Rule{Request: unfilteredDsc}
	}
	for _, op := range []string{"DescribeImages", "DescribeInstanceAttribute", "DescribeInstanceTypes",
		"DescribeInstanceTypeOfferings", "DescribeLaunchTemplates", "DescribeLaunchTemplateVersions",
		"DescribeAddresses", "DescribeReplaceRootVolumeTasks", "DescribeImageAttribute", "DescribeTags",
		"DescribeSubnets", "DescribeAvailabilityZones", "DescribeRegions"} {
		a[op] = Rule{Request: nonMutating}
	}
	return Preset{Name: "ec2", Default: Rule{Request: mutating}, Actions: a}
}

// CloudWatch returns pacing for the CloudWatch actions the library uses:
// PutMetricAlarm and DeleteAlarms about 3 TPS, DescribeAlarms about 9 TPS
// (CloudWatch service quotas; adjustable through Service Quotas). CloudWatch
// throttles per second, so the bucket holds one second's worth.
func CloudWatch() Preset {
	return Preset{
		Name:    "cloudwatch",
		Default: Rule{Request: Spec{3, 3}},
		Actions: map[string]Rule{
			"PutMetricAlarm": {Request: Spec{3, 3}},
			"DeleteAlarms":   {Request: Spec{3, 3}},
			"DescribeAlarms": {Request: Spec{9, 9}},
			"TagResource":    {Request: Spec{3, 3}},
		},
	}
}

// SSM returns pacing for Systems Manager. AWS does not publish per-action
// rates for Run Command; these are conservative defaults (a burst of 20 and
// 10 a second for reads, 5 for SendCommand and CancelCommand) that stay
// under the throttling seen in practice. Raise them with a custom Preset if
// Service Quotas shows a higher quota for the account.
func SSM() Preset {
	read := Rule{Request: Spec{20, 10}}
	return Preset{
		Name:    "ssm",
		Default: read,
		Actions: map[string]Rule{
			"SendCommand":   {Request: Spec{10, 5}},
			"CancelCommand": {Request: Spec{10, 5}},
		},
	}
}

// Options configures a Limiter.
type Options struct {
	// Share is the fraction of the account's budget this limiter may spend,
	// in (0, 1]. Other tools in the account spend from the same buckets, so
	// a long-running operation should not claim all of them. Zero means 1.
	Share float64
}

// Limiter paces calls per API action. It is safe for concurrent use; create
// one per service and account and share it between strategies.
type Limiter struct {
	preset Preset
	share  float64

	mu      sync.Mutex
	buckets map[string][2]*Bucket
}

// New returns a Limiter for preset.
func New(preset Preset, optFns ...func(*Options)) *Limiter {
	o := Options{}
	for _, f := range optFns {
		f(&o)
	}
	if o.Share <= 0 || o.Share > 1 {
		o.Share = 1
	}
	return &Limiter{preset: preset, share: o.Share, buckets: map[string][2]*Bucket{}}
}

func (l *Limiter) bucketsFor(action string) [2]*Bucket {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[action]
	if !ok {
		r := l.preset.Rule(action)
		b[0] = NewBucket(r.Request.Scale(l.share))
		if r.Resource != nil {
			b[1] = NewBucket(r.Resource.Scale(l.share))
		}
		l.buckets[action] = b
	}
	return b
}

// Wait blocks until a call to action touching resources resources (instances
// launched, terminated, ...; 0 for actions without a resource bucket) is
// within budget, or returns ctx.Err(). A call that needs more resource tokens
// than the bucket holds returns *ErrTooLarge: split it.
func (l *Limiter) Wait(ctx context.Context, action string, resources int) error {
	if l == nil {
		return ctx.Err()
	}
	b := l.bucketsFor(action)
	if b[1] == nil {
		return waitAll(ctx, b[:1], []float64{1})
	}
	return waitAll(ctx, b[:], []float64{1, float64(resources)})
}

// Allow takes the tokens for one call without waiting and reports whether
// they were there; when it returns false nothing is taken. The simulator
// uses it to answer RequestLimitExceeded as AWS does.
func (l *Limiter) Allow(action string, resources int) bool {
	b := l.bucketsFor(action)
	b[0].mu.Lock()
	defer b[0].mu.Unlock()
	b[0].advance(nowFunc())
	if b[0].tokens < 1 {
		return false
	}
	if b[1] != nil {
		b[1].mu.Lock()
		defer b[1].mu.Unlock()
		b[1].advance(nowFunc())
		if b[1].tokens < float64(resources) {
			return false
		}
		b[1].tokens -= float64(resources)
	}
	b[0].tokens--
	return true
}

// Preset returns the limiter's preset.
func (l *Limiter) Preset() Preset { return l.preset }

// Compressed returns p with every refill rate divided by timeScale, for
// programs that run a simulated cloud with time compressed (a time scale of
// 0.02 runs 50 times faster, so the buckets refill 50 times faster too).
// Capacities are unchanged. A timeScale of 1 or less than or equal to 0
// returns p.
func (p Preset) Compressed(timeScale float64) Preset {
	if timeScale <= 0 || timeScale == 1 {
		return p
	}
	sc := func(r Rule) Rule {
		r.Request.Refill /= timeScale
		if r.Resource != nil {
			res := *r.Resource
			res.Refill /= timeScale
			r.Resource = &res
		}
		return r
	}
	out := Preset{Name: p.Name, Default: sc(p.Default), Actions: make(map[string]Rule, len(p.Actions))}
	for k, r := range p.Actions {
		out.Actions[k] = sc(r)
	}
	return out
}
