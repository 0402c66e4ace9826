package cloudsim

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Tag limits. Source: "Tag your Amazon EC2 resources", tag restrictions:
// at most 50 user tags per resource, keys up to 128 and values up to 256
// characters, the "aws:" prefix reserved for AWS.
const (
	maxTagsPerResource = 50
	maxTagKey          = 128
	maxTagValue        = 256
	maxTagResources    = 1000
)

type tagKV struct{ key, value string }

func errTagLimit() error {
	return apiError(codeTagLimit, "The maximum number of Tags for a resource has been reached.")
}

// validateTags checks user tags as CreateTags, DeleteTags and
// TagSpecifications do; a missing Value counts as "".
func validateTags(tags []types.Tag) ([]tagKV, error) {
	out := make([]tagKV, 0, len(tags))
	for _, t := range tags {
		k := aws.ToString(t.Key)
		if k == "" {
			return nil, errMissing("Tag.Key")
		}
		if len(k) > maxTagKey {
			return nil, errInvalidValue("Tag.Key", k, "Tag keys are limited to 128 characters.")
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, apiError(codeInvalidParameter, "Value ( %s ) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use", k)
		}
		v := aws.ToString(t.Value)
		if len(v) > maxTagValue {
			return nil, errInvalidValue("Tag.Value", v, "Tag values are limited to 256 characters.")
		}
		out = append(out, tagKV{key: k, value: v})
	}
	return out, nil
}

// tagTarget is a taggable resource. Images, snapshots and others join by
// registering a tagKind in their own file.
type tagTarget interface {
	resourceID() string
	resourceType() types.ResourceType
	// userTags is the live, mutable map of user tags.
	userTags() map[string]string
	// systemTags are aws:* tags (read-only; may be nil).
	systemTags() map[string]string
	// tagsChanged is called (lock held) after the user tags changed.
	tagsChanged(s *Sim, at time.Time)
}

// tagKind resolves and lists the taggable resources of one ID prefix.
type tagKind struct {
	prefix string
	// lookup returns the resources with ids, or the error EC2 gives for a
	// malformed or missing one (eventual consistency included).
	lookup func(now time.Time, ids []string) ([]tagTarget, error)
	// list returns every visible resource in a stable order.
	list func(now time.Time) []tagTarget
}

// instance as a tagTarget.
func (in *instance) resourceID() string               { return in.id }
func (in *instance) resourceType() types.ResourceType { return types.ResourceTypeInstance }
func (in *instance) userTags() map[string]string      { return in.tags }
func (in *instance) systemTags() map[string]string    { return in.sysTags }
func (in *instance) tagsChanged(s *Sim, at time.Time) {
	s.emit(Change{Time: at, InstanceID: in.id, Kind: ChangeTags}, in)
}

func (s *Sim) instanceTagKind() tagKind {
	return tagKind{
		prefix: "i-",
		lookup: func(now time.Time, ids []string) ([]tagTarget, error) {
			ins, err := s.lookupInstances(now, ids)
			if err != nil {
				return nil, err
			}
			out := make([]tagTarget, len(ins))
			for i, in := range ins {
				out[i] = in
			}
			return out, nil
		},
		list: func(now time.Time) []tagTarget {
			var out []tagTarget
			for _, in := range s.ec2.order {
				if s.visible(in, now) {
					out = append(out, in)
				}
			}
			return out
		},
	}
}

// resolveTagTargets groups ids by kind and resolves them; the first error
// fails the whole call, before anything changed.
func (s *Sim) resolveTagTargets(now time.Time, ids []string) ([]tagTarget, error) {
	byKind := make([][]string, len(s.ec2.tagKinds))
	for _, id := range ids {
		k := -1
		for i, tk := range s.ec2.tagKinds {
			if strings.HasPrefix(id, tk.prefix) && (k < 0 || len(tk.prefix) > len(s.ec2.tagKinds[k].prefix)) {
				k = i
			}
		}
		if k < 0 {
			return nil, apiError(codeInvalidID, "The ID '%s' is not valid", id)
		}
		byKind[k] = append(byKind[k], id)
	}
	var out []tagTarget
	for i, ids := range byKind {
		if len(ids) == 0 {
			continue
		}
		ts, err := s.ec2.tagKinds[i].lookup(now, ids)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	return out, nil
}

// CreateTags adds or overwrites user tags on resources (instances for now).
func (c *EC2) CreateTags(ctx context.Context, params *ec2.CreateTagsInput, optFns ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	if params == nil {
		params = &ec2.CreateTagsInput{}
	}
	s := c.sim
	err := s.call(ctx, svcEC2, "CreateTags", nil, func(now time.Time) error {
		if len(params.Resources) == 0 {
			return errMissing("ResourceId")
		}
		if len(params.Resources) > maxTagResources {
			return errInvalidValue("ResourceId", len(params.Resources), "At most 1000 resources can be tagged in one call.")
		}
		if len(params.Tags) == 0 {
			return errMissing("Tag")
		}
		kv, err := validateTags(params.Tags)
		if err != nil {
			return err
		}
		targets, err := s.resolveTagTargets(now, params.Resources)
		if err != nil {
			return err
		}
		for _, t := range targets {
			m := t.userTags()
			n := len(m)
			for _, p := range kv {
				if _, ok := m[p.key]; !ok {
					n++
				}
			}
			if n > maxTagsPerResource {
				return errTagLimit()
			}
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		for _, t := range targets {
			m := t.userTags()
			for _, p := range kv {
				m[p.key] = p.value
			}
			t.tagsChanged(s, now)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ec2.CreateTagsOutput{}, nil
}

// DeleteTags removes user tags. A tag with a nil Value is removed whatever
// its value; with a Value, only if the value matches; no Tags removes every
// user tag.
func (c *EC2) DeleteTags(ctx context.Context, params *ec2.DeleteTagsInput, optFns ...func(*ec2.Options)) (*ec2.DeleteTagsOutput, error) {
	if params == nil {
		params = &ec2.DeleteTagsInput{}
	}
	s := c.sim
	err := s.call(ctx, svcEC2, "DeleteTags", nil, func(now time.Time) error {
		if len(params.Resources) == 0 {
			return errMissing("ResourceId")
		}
		if len(params.Resources) > maxTagResources {
			return errInvalidValue("ResourceId", len(params.Resources), "At most 1000 resources can be untagged in one call.")
		}
		if _, err := validateTags(params.Tags); err != nil {
			return err
		}
		targets, err := s.resolveTagTargets(now, params.Resources)
		if err != nil {
			return err
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		for _, t := range targets {
			m := t.userTags()
			before := len(m)
			changed := false
			if len(params.Tags) == 0 {
				clear(m)
			}
			for _, tag := range params.Tags {
				k := aws.ToString(tag.Key)
				if v, ok := m[k]; ok && (tag.Value == nil || *tag.Value == v) {
					delete(m, k)
					changed = true
				}
			}
			if changed || len(m) != before {
				t.tagsChanged(s, now)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ec2.DeleteTagsOutput{}, nil
}

// tagRow is one row of DescribeTags.
type tagRow struct {
	t          tagTarget
	key, value string
}

func tagRowFields() filterFields[tagRow] {
	one := func(f func(r tagRow) string) func(tagRow) []string {
		return func(r tagRow) []string { return []string{f(r)} }
	}
	return filterFields[tagRow]{fields: map[string]func(tagRow) []string{
		"key":           one(func(r tagRow) string { return r.key }),
		"value":         one(func(r tagRow) string { return r.value }),
		"resource-id":   one(func(r tagRow) string { return r.t.resourceID() }),
		"resource-type": one(func(r tagRow) string { return string(r.t.resourceType()) }),
	}}
}

// DescribeTags lists tags (user and aws:* system tags) of every visible
// taggable resource, in resource order then key order, with the filters
// key, value, resource-id and resource-type and MaxResults/NextToken
// pagination.
func (c *EC2) DescribeTags(ctx context.Context, params *ec2.DescribeTagsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeTagsOutput, error) {
	if params == nil {
		params = &ec2.DescribeTagsInput{}
	}
	s := c.sim
	var out *ec2.DescribeTagsOutput
	err := s.call(ctx, svcEC2, "DescribeTags", nil, func(now time.Time) error {
		fs, err := compileFilters(params.Filters, tagRowFields())
		if err != nil {
			return err
		}
		limit, err := pageSize(params.MaxResults, false)
		if err != nil {
			return err
		}
		start, err := decodeToken(params.NextToken)
		if err != nil {
			return err
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		var rows []tagRow
		for _, k := range s.ec2.tagKinds {
			for _, t := range k.list(now) {
				all := cloneMap(t.systemTags())
				for k, v := range t.userTags() {
					all[k] = v
				}
				keys := make([]string, 0, len(all))
				for k := range all {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				for _, k := range keys {
					if r := (tagRow{t: t, key: k, value: all[k]}); matchAll(fs, r) {
						rows = append(rows, r)
					}
				}
			}
		}
		out = &ec2.DescribeTagsOutput{Tags: []types.TagDescription{}}
		if start > uint64(len(rows)) {
			start = uint64(len(rows))
		}
		rows = rows[start:]
		if limit > 0 && len(rows) > limit {
			rows = rows[:limit]
			out.NextToken = encodeToken(start + uint64(limit))
		}
		for _, r := range rows {
			out.Tags = append(out.Tags, types.TagDescription{Key: ptr(r.key), Value: ptr(r.value),
				ResourceId: ptr(r.t.resourceID()), ResourceType: r.t.resourceType()})
		}
		return nil
	})
	return out, err
}
