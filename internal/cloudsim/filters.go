package cloudsim

import (
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// maxFilterValues is the most filter values one call may carry. Source:
// AWS-FACTS.md (DescribeInstances: at most 200 filter values a call); EC2
// answers FilterLimitExceeded.
const maxFilterValues = 200

// filterFields describes the filters a Describe call accepts on resources
// of type T: named fields (each may have several values), and, when tags is
// set, tag:KEY, tag-key and tag-value.
type filterFields[T any] struct {
	fields map[string]func(T) []string
	tags   func(T) map[string]string
}

// filter is one compiled filter: the resource matches if any of its values
// for the field matches any pattern.
type filter[T any] struct {
	get  func(T) []string
	pats []func(string) bool
}

// compileFilters validates and compiles filters. Unknown names are
// InvalidParameterValue ("The filter 'x' is invalid"), as EC2 answers.
func compileFilters[T any](in []types.Filter, ff filterFields[T]) ([]filter[T], error) {
	total := 0
	for _, f := range in {
		total += len(f.Values)
	}
	if total > maxFilterValues {
		return nil, apiError(codeFilterLimit, "The maximum number of filter values specified on a single call is %d", maxFilterValues)
	}
	out := make([]filter[T], 0, len(in))
	for _, f := range in {
		name := aws.ToString(f.Name)
		get := ff.fields[name]
		if get == nil && ff.tags != nil {
			get = tagField(name, ff.tags)
		}
		if get == nil {
			return nil, apiError(codeInvalidParameter, "The filter '%s' is invalid", name)
		}
		if len(f.Values) == 0 {
			return nil, apiError(codeInvalidParameter, "The filter '%s' must have at least one value", name)
		}
		c := filter[T]{get: get}
		for _, v := range f.Values {
			if !utf8.ValidString(v) {
				return nil, apiError(codeInvalidParameter, "The filter '%s' has a value that is not valid UTF-8", name)
			}
			c.pats = append(c.pats, compilePattern(v))
		}
		out = append(out, c)
	}
	return out, nil
}

func tagField[T any](name string, tags func(T) map[string]string) func(T) []string {
	switch {
	case strings.HasPrefix(name, "tag:") && len(name) > 4:
		key := name[4:]
		return func(x T) []string {
			if v, ok := tags(x)[key]; ok {
				return []string{v}
			}
			return nil
		}
	case name == "tag-key":
		return func(x T) []string {
			m := tags(x)
			out := make([]string, 0, len(m))
			for k := range m {
				out = append(out, k)
			}
			return out
		}
	case name == "tag-value":
		return func(x T) []string {
			m := tags(x)
			out := make([]string, 0, len(m))
			for _, v := range m {
				out = append(out, v)
			}
			return out
		}
	}
	return nil
}

// matchAll reports whether x passes every filter (filters AND, values OR).
func matchAll[T any](fs []filter[T], x T) bool {
	for _, f := range fs {
		if !f.match(x) {
			return false
		}
	}
	return true
}

func (f filter[T]) match(x T) bool {
	for _, v := range f.get(x) {
		for _, p := range f.pats {
			if p(v) {
				return true
			}
		}
	}
	return false
}

// compilePattern compiles an EC2 filter value. "*" matches any run of
// characters and "?" zero or one character; a backslash escapes the next
// character ("\*amazon\?\\" is the literal "*amazon?\"). Source: "List and
// filter your resources", Amazon EC2 User Guide (filter wildcards).
func compilePattern(p string) func(string) bool {
	if !strings.ContainsAny(p, `*?\`) {
		return func(s string) bool { return s == p }
	}
	var b strings.Builder
	b.WriteString(`(?s)^`)
	rs := []rune(p) // by rune: quoting a byte of a multi-byte character breaks it
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.?`)
		case '\\':
			if i+1 < len(rs) {
				i++
			}
			b.WriteString(regexp.QuoteMeta(string(rs[i])))
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`$`)
	re := regexp.MustCompile(b.String())
	return re.MatchString
}

// pageSize validates MaxResults (5..1000 as EC2's paginated Describe calls
// require) and returns it, or 0 for "no limit". withIDs reports that the
// request also lists explicit IDs, which EC2 refuses together with
// MaxResults (InvalidParameterCombination).
func pageSize(maxResults *int32, withIDs bool) (int, error) {
	if maxResults == nil {
		return 0, nil
	}
	if withIDs {
		return 0, apiError(codeInvalidCombination, "The parameter instancesSet cannot be used with the parameter maxResults")
	}
	n := *maxResults
	if n < 5 || n > 1000 {
		return 0, errInvalidValue("maxResults", n, "Expecting a value between 5 and 1000.")
	}
	return int(n), nil
}

// Pagination tokens are opaque to callers; inside they hold a position
// (the sequence number of the next resource, or a row index).
const tokenPrefix = "cloudsim1:"

func encodeToken(pos uint64) *string {
	t := base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + strconv.FormatUint(pos, 10)))
	return &t
}

func decodeToken(tok *string) (uint64, error) {
	if tok == nil || *tok == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(*tok)
	if err == nil {
		if rest, ok := strings.CutPrefix(string(b), tokenPrefix); ok {
			if n, err := strconv.ParseUint(rest, 10, 64); err == nil {
				return n, nil
			}
		}
	}
	return 0, apiError(codeInvalidToken, "The specified pagination token is not valid or is expired.")
}
