package cloudsim

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// The launch template model: templates and their numbered versions, with a
// default version. RunInstances with a LaunchTemplate and no ImageId takes
// the version's ImageId (other launch template parameters are not merged
// into the launch request). A version's ImageId may be
// "resolve:ssm:PARAMETER", resolved through the Sim's SSM parameters.
//
// Error codes. Source: "Error codes for the Amazon EC2 API".
const (
	codeLTIDNotFound       = "InvalidLaunchTemplateId.NotFound"
	codeLTIDMalformed      = "InvalidLaunchTemplateId.Malformed"
	codeLTNameNotFound     = "InvalidLaunchTemplateName.NotFoundException"
	codeLTNameExists       = "InvalidLaunchTemplateName.AlreadyExistsException"
	codeLTNameMalformed    = "InvalidLaunchTemplateName.MalformedException"
	codeLTVersionNotFound  = "InvalidLaunchTemplateId.VersionNotFound"
	maxLTVersionsPage      = 200
	resolveSSMPrefix       = "resolve:ssm:"
	launchTemplateVersions = "$Latest"
	launchTemplateDefault  = "$Default"
)

type launchTemplateState struct {
	byID   map[string]*launchTemplate
	byName map[string]*launchTemplate
	order  []*launchTemplate
	tokens map[string]string // ClientToken -> "lt-id" or "lt-id/version"
	seq    uint64
}

type launchTemplate struct {
	seq      uint64
	id, name string
	created  time.Time
	tags     map[string]string
	def      int64
	versions []*ltVersion // version n is versions[n-1]
}

type ltVersion struct {
	num     int64
	data    *types.RequestLaunchTemplateData
	desc    string
	created time.Time
}

func (s *Sim) initLaunchTemplates() {
	lt := &s.img.lt
	lt.byID = map[string]*launchTemplate{}
	lt.byName = map[string]*launchTemplate{}
	lt.tokens = map[string]string{}
}

// ltNameRE: 3-128 characters of letters, digits, ( ) . - / _. Source:
// CreateLaunchTemplate API reference, LaunchTemplateName.
var ltNameRE = regexp.MustCompile(`^[a-zA-Z0-9().\-/_]{3,128}$`)

// findTemplate resolves a template by ID or name (lock held).
func (s *Sim) findTemplate(id, name string) (*launchTemplate, error) {
	switch {
	case id != "" && name != "":
		return nil, apiError(codeInvalidCombination, "Specify either a launch template ID or a launch template name, not both.")
	case id != "":
		if !validID(id, "lt-") {
			return nil, errMalformed(codeLTIDMalformed, id, "lt-...")
		}
		if t := s.img.lt.byID[id]; t != nil {
			return t, nil
		}
		return nil, apiError(codeLTIDNotFound, "The specified launch template, with template ID %s, does not exist.", id)
	case name != "":
		if t := s.img.lt.byName[name]; t != nil {
			return t, nil
		}
		return nil, apiError(codeLTNameNotFound, "The specified launch template, with template name %s, does not exist.", name)
	}
	return nil, errMissing("LaunchTemplateId or LaunchTemplateName")
}

// version resolves "", "$Default", "$Latest" or a number.
func (t *launchTemplate) version(v string) (*ltVersion, error) {
	switch v {
	case "", launchTemplateDefault:
		return t.versions[t.def-1], nil
	case launchTemplateVersions:
		return t.versions[len(t.versions)-1], nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || n > int64(len(t.versions)) {
		return nil, apiError(codeLTVersionNotFound, "Could not find launch template version %s for launch template %s.", v, t.id)
	}
	return t.versions[n-1], nil
}

// resolveImageAlias resolves "resolve:ssm:NAME" through the SSM parameters
// (lock held); other values are returned as they are.
func (s *Sim) resolveImageAlias(imageID string) string {
	name, ok := strings.CutPrefix(imageID, resolveSSMPrefix)
	if !ok {
		return imageID
	}
	if p := s.img.params[name]; p != nil {
		return p.value
	}
	return ""
}

// cloneLTData deep-copies launch template data.
func cloneLTData(d *types.RequestLaunchTemplateData) (*types.RequestLaunchTemplateData, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	out := new(types.RequestLaunchTemplateData)
	return out, json.Unmarshal(b, out)
}

// mergeLTData overlays the fields set in over onto base (SourceVersion).
func mergeLTData(base, over *types.RequestLaunchTemplateData) (*types.RequestLaunchTemplateData, error) {
	var mb, mo map[string]any
	bb, err := json.Marshal(base)
	if err != nil {
		return nil, err
	}
	bo, err := json.Marshal(over)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(bb, &mb); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(bo, &mo); err != nil {
		return nil, err
	}
	for k, v := range mo {
		switch x := v.(type) {
		case nil:
			continue
		case string:
			if x == "" {
				continue
			}
		case []any:
			if len(x) == 0 {
				continue
			}
		}
		mb[k] = v
	}
	b, err := json.Marshal(mb)
	if err != nil {
		return nil, err
	}
	out := new(types.RequestLaunchTemplateData)
	return out, json.Unmarshal(b, out)
}

// responseLTData converts request data to the response shape (the fields
// have the same JSON names) and resolves an ssm alias when resolve is set.
func (s *Sim) responseLTData(d *types.RequestLaunchTemplateData, resolve bool) *types.ResponseLaunchTemplateData {
	out := new(types.ResponseLaunchTemplateData)
	if b, err := json.Marshal(d); err == nil {
		_ = json.Unmarshal(b, out) // fields that differ in shape are left out
	}
	if resolve && d.ImageId != nil {
		out.ImageId = ptr(s.resolveImageAlias(*d.ImageId))
	}
	return out
}

// CreateLaunchTemplate creates a template with version 1 as its default:
// unique names (InvalidLaunchTemplateName.AlreadyExistsException),
// ClientToken idempotency, tags on the template from TagSpecifications.
func (c *EC2) CreateLaunchTemplate(ctx context.Context, params *ec2.CreateLaunchTemplateInput, optFns ...func(*ec2.Options)) (*ec2.CreateLaunchTemplateOutput, error) {
	if params == nil {
		params = &ec2.CreateLaunchTemplateInput{}
	}
	s := c.sim
	var out *ec2.CreateLaunchTemplateOutput
	err := s.call(ctx, svcEC2, "CreateLaunchTemplate", nil, func(now time.Time) error {
		name := aws.ToString(params.LaunchTemplateName)
		if name == "" {
			return errMissing("LaunchTemplateName")
		}
		if params.LaunchTemplateData == nil {
			return errMissing("LaunchTemplateData")
		}
		token := aws.ToString(params.ClientToken)
		if prev, ok := s.img.lt.tokens[token]; token != "" && ok {
			t := s.img.lt.byID[prev]
			if t == nil || t.name != name {
				return apiError(codeIdempotentMismatch, "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
			}
			out = &ec2.CreateLaunchTemplateOutput{LaunchTemplate: sdkLaunchTemplate(t)}
			return nil
		}
		if !ltNameRE.MatchString(name) {
			return apiError(codeLTNameMalformed, "A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.")
		}
		if s.img.lt.byName[name] != nil {
			return apiError(codeLTNameExists, "Launch template name already in use.")
		}
		tags := map[string]string{}
		for _, ts := range params.TagSpecifications {
			if ts.ResourceType != types.ResourceTypeLaunchTemplate {
				return apiError(codeInvalidParameter, "'%s' is not a valid taggable resource type for this operation.", ts.ResourceType)
			}
			kv, err := validateTags(ts.Tags)
			if err != nil {
				return err
			}
			for _, t := range kv {
				tags[t.key] = t.value
			}
		}
		data, err := cloneLTData(params.LaunchTemplateData)
		if err != nil {
			return apiError(codeInvalidParameter, "The launch template data cannot be encoded: %v", err)
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		lt := &s.img.lt
		lt.seq++
		t := &launchTemplate{seq: lt.seq, id: s.newID("lt-"), name: name, created: now, tags: tags, def: 1}
		t.versions = []*ltVersion{{num: 1, data: data, desc: aws.ToString(params.VersionDescription), created: now}}
		lt.byID[t.id], lt.byName[name] = t, t
		lt.order = append(lt.order, t)
		if token != "" {
			lt.tokens[token] = t.id
		}
		out = &ec2.CreateLaunchTemplateOutput{LaunchTemplate: sdkLaunchTemplate(t)}
		return nil
	})
	return out, err
}

// CreateLaunchTemplateVersion adds a version to a template, starting from
// SourceVersion's data when given (the new data's fields override), with
// ClientToken idempotency.
func (c *EC2) CreateLaunchTemplateVersion(ctx context.Context, params *ec2.CreateLaunchTemplateVersionInput, optFns ...func(*ec2.Options)) (*ec2.CreateLaunchTemplateVersionOutput, error) {
	if params == nil {
		params = &ec2.CreateLaunchTemplateVersionInput{}
	}
	s := c.sim
	var out *ec2.CreateLaunchTemplateVersionOutput
	err := s.call(ctx, svcEC2, "CreateLaunchTemplateVersion", nil, func(now time.Time) error {
		t, err := s.findTemplate(aws.ToString(params.LaunchTemplateId), aws.ToString(params.LaunchTemplateName))
		if err != nil {
			return err
		}
		if params.LaunchTemplateData == nil {
			return errMissing("LaunchTemplateData")
		}
		token := aws.ToString(params.ClientToken)
		if prev, ok := s.img.lt.tokens[token]; token != "" && ok {
			id, num, _ := strings.Cut(prev, "/")
			n, _ := strconv.ParseInt(num, 10, 64)
			if id != t.id || n < 1 {
				return apiError(codeIdempotentMismatch, "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
			}
			out = &ec2.CreateLaunchTemplateVersionOutput{LaunchTemplateVersion: s.sdkLTVersion(t, t.versions[n-1], false)}
			return nil
		}
		data, err := cloneLTData(params.LaunchTemplateData)
		if err != nil {
			return apiError(codeInvalidParameter, "The launch template data cannot be encoded: %v", err)
		}
		if sv := aws.ToString(params.SourceVersion); sv != "" {
			src, err := t.version(sv)
			if err != nil {
				return err
			}
			if data, err = mergeLTData(src.data, params.LaunchTemplateData); err != nil {
				return apiError(codeInvalidParameter, "The launch template data cannot be merged: %v", err)
			}
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		v := &ltVersion{num: int64(len(t.versions) + 1), data: data, desc: aws.ToString(params.VersionDescription), created: now}
		t.versions = append(t.versions, v)
		if token != "" {
			s.img.lt.tokens[token] = fmt.Sprintf("%s/%d", t.id, v.num)
		}
		out = &ec2.CreateLaunchTemplateVersionOutput{LaunchTemplateVersion: s.sdkLTVersion(t, v, aws.ToBool(params.ResolveAlias))}
		return nil
	})
	return out, err
}

func sdkLaunchTemplate(t *launchTemplate) *types.LaunchTemplate {
	return &types.LaunchTemplate{
		CreateTime:           ptr(t.created),
		CreatedBy:            ptr("arn:aws:iam::" + accountID + ":root"),
		DefaultVersionNumber: ptr(t.def),
		LatestVersionNumber:  ptr(int64(len(t.versions))),
		LaunchTemplateId:     ptr(t.id),
		LaunchTemplateName:   ptr(t.name),
		Tags:                 sdkTags(t.tags),
	}
}

func (s *Sim) sdkLTVersion(t *launchTemplate, v *ltVersion, resolve bool) *types.LaunchTemplateVersion {
	out := &types.LaunchTemplateVersion{
		CreateTime:         ptr(v.created),
		CreatedBy:          ptr("arn:aws:iam::" + accountID + ":root"),
		DefaultVersion:     ptr(v.num == t.def),
		LaunchTemplateData: s.responseLTData(v.data, resolve),
		LaunchTemplateId:   ptr(t.id),
		LaunchTemplateName: ptr(t.name),
		VersionNumber:      ptr(v.num),
	}
	if v.desc != "" {
		out.VersionDescription = ptr(v.desc)
	}
	return out
}

func ltPageSize(maxResults *int32, most int32) (int, error) {
	if maxResults == nil {
		return 0, nil
	}
	if n := *maxResults; n < 1 || n > most {
		return 0, errInvalidValue("MaxResults", n, fmt.Sprintf("Expecting a value between 1 and %d.", most))
	}
	return int(*maxResults), nil
}

// DescribeLaunchTemplates lists templates by IDs or names (each must
// exist) or all, with the filters launch-template-name, create-time and
// tags, paginated by MaxResults (1..200) and NextToken.
func (c *EC2) DescribeLaunchTemplates(ctx context.Context, params *ec2.DescribeLaunchTemplatesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplatesOutput, error) {
	if params == nil {
		params = &ec2.DescribeLaunchTemplatesInput{}
	}
	s := c.sim
	var out *ec2.DescribeLaunchTemplatesOutput
	err := s.call(ctx, svcEC2, "DescribeLaunchTemplates", nil, func(now time.Time) error {
		fs, err := compileFilters(params.Filters, filterFields[*launchTemplate]{
			tags: func(t *launchTemplate) map[string]string { return t.tags },
			fields: map[string]func(*launchTemplate) []string{
				"launch-template-name": func(t *launchTemplate) []string { return []string{t.name} },
				"create-time":          func(t *launchTemplate) []string { return []string{t.created.UTC().Format(isoMillis)} },
			},
		})
		if err != nil {
			return err
		}
		limit, err := ltPageSize(params.MaxResults, maxLTVersionsPage)
		if err != nil {
			return err
		}
		start, err := decodeToken(params.NextToken)
		if err != nil {
			return err
		}
		want := map[string]bool{}
		for _, id := range params.LaunchTemplateIds {
			t, err := s.findTemplate(id, "")
			if err != nil {
				return err
			}
			want[t.id] = true
		}
		for _, n := range params.LaunchTemplateNames {
			t, err := s.findTemplate("", n)
			if err != nil {
				return err
			}
			want[t.id] = true
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		out = &ec2.DescribeLaunchTemplatesOutput{LaunchTemplates: []types.LaunchTemplate{}}
		for _, t := range s.img.lt.order {
			if t.seq < start || (len(want) > 0 && !want[t.id]) || !matchAll(fs, t) {
				continue
			}
			if limit > 0 && len(out.LaunchTemplates) == limit {
				out.NextToken = encodeToken(t.seq)
				break
			}
			out.LaunchTemplates = append(out.LaunchTemplates, *sdkLaunchTemplate(t))
		}
		return nil
	})
	return out, err
}

// DescribeLaunchTemplateVersions lists the versions of one template (by ID
// or name): Versions (numbers, $Latest, $Default), or the range
// MinVersion..MaxVersion, or all; without a template, Versions must be
// $Latest and/or $Default and every template's are listed. Filters:
// image-id, instance-type, is-default-version. ResolveAlias resolves
// resolve:ssm: image IDs. Paginated by MaxResults (1..200) and NextToken.
func (c *EC2) DescribeLaunchTemplateVersions(ctx context.Context, params *ec2.DescribeLaunchTemplateVersionsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplateVersionsOutput, error) {
	if params == nil {
		params = &ec2.DescribeLaunchTemplateVersionsInput{}
	}
	s := c.sim
	var out *ec2.DescribeLaunchTemplateVersionsOutput
	err := s.call(ctx, svcEC2, "DescribeLaunchTemplateVersions", nil, func(now time.Time) error {
		type row struct {
			t *launchTemplate
			v *ltVersion
		}
		fs, err := compileFilters(params.Filters, filterFields[row]{fields: map[string]func(row) []string{
			"image-id": func(r row) []string {
				return []string{aws.ToString(r.v.data.ImageId), s.resolveImageAlias(aws.ToString(r.v.data.ImageId))}
			},
			"instance-type":      func(r row) []string { return []string{string(r.v.data.InstanceType)} },
			"is-default-version": func(r row) []string { return []string{strconv.FormatBool(r.v.num == r.t.def)} },
		}})
		if err != nil {
			return err
		}
		limit, err := ltPageSize(params.MaxResults, maxLTVersionsPage)
		if err != nil {
			return err
		}
		start, err := decodeToken(params.NextToken)
		if err != nil {
			return err
		}
		var rows []row
		id, name := aws.ToString(params.LaunchTemplateId), aws.ToString(params.LaunchTemplateName)
		if id == "" && name == "" {
			if len(params.Versions) == 0 {
				return apiError(codeMissingParameter, "Specify a launch template, or Versions $Latest or $Default.")
			}
			for _, v := range params.Versions {
				if v != launchTemplateVersions && v != launchTemplateDefault {
					return errInvalidValue("Versions", v, "Without a launch template only $Latest and $Default are allowed.")
				}
			}
			for _, t := range s.img.lt.order {
				seen := map[int64]bool{}
				for _, v := range params.Versions {
					ver, _ := t.version(v)
					if !seen[ver.num] {
						seen[ver.num] = true
						rows = append(rows, row{t, ver})
					}
				}
			}
		} else {
			t, err := s.findTemplate(id, name)
			if err != nil {
				return err
			}
			switch {
			case len(params.Versions) > 0:
				seen := map[int64]bool{}
				for _, v := range params.Versions {
					ver, err := t.version(v)
					if err != nil {
						return err
					}
					if !seen[ver.num] {
						seen[ver.num] = true
						rows = append(rows, row{t, ver})
					}
				}
			default:
				lo, hi := int64(1), int64(len(t.versions))
				if mv := aws.ToString(params.MinVersion); mv != "" {
					if lo, err = strconv.ParseInt(mv, 10, 64); err != nil {
						return errInvalidValue("MinVersion", mv, "Expecting a version number.")
					}
				}
				if mv := aws.ToString(params.MaxVersion); mv != "" {
					if hi, err = strconv.ParseInt(mv, 10, 64); err != nil {
						return errInvalidValue("MaxVersion", mv, "Expecting a version number.")
					}
				}
				for _, v := range t.versions {
					if v.num >= lo && v.num <= hi {
						rows = append(rows, row{t, v})
					}
				}
			}
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		out = &ec2.DescribeLaunchTemplateVersionsOutput{LaunchTemplateVersions: []types.LaunchTemplateVersion{}}
		var kept []row
		for _, r := range rows {
			if matchAll(fs, r) {
				kept = append(kept, r)
			}
		}
		if start > uint64(len(kept)) {
			start = uint64(len(kept))
		}
		kept = kept[start:]
		if limit > 0 && len(kept) > limit {
			kept = kept[:limit]
			out.NextToken = encodeToken(start + uint64(limit))
		}
		for _, r := range kept {
			out.LaunchTemplateVersions = append(out.LaunchTemplateVersions, *s.sdkLTVersion(r.t, r.v, aws.ToBool(params.ResolveAlias)))
		}
		return nil
	})
	return out, err
}

// launchTemplateImageLocked is the registry side of the
// launchTemplateImage hook (lock held): the ImageId of the requested
// version, "resolve:ssm:" resolved. Before any template exists it supplies
// nothing, as without a registry.
func (s *Sim) launchTemplateImageLocked(spec *types.LaunchTemplateSpecification) (string, error) {
	if spec == nil || len(s.img.lt.order) == 0 {
		return "", nil
	}
	t, err := s.findTemplate(aws.ToString(spec.LaunchTemplateId), aws.ToString(spec.LaunchTemplateName))
	if err != nil {
		return "", err
	}
	v, err := t.version(aws.ToString(spec.Version))
	if err != nil {
		return "", err
	}
	return s.resolveImageAlias(aws.ToString(v.data.ImageId)), nil
}

// LaunchTemplateImages returns the image ID of every version of every
// launch template, "resolve:ssm:" resolved, by "lt-id/version".
func (s *Sim) LaunchTemplateImages() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for _, t := range s.img.lt.order {
		for _, v := range t.versions {
			out[fmt.Sprintf("%s/%d", t.id, v.num)] = s.resolveImageAlias(aws.ToString(v.data.ImageId))
		}
	}
	return out
}
