// Package awsid checks and lists AWS resource IDs the way every strategy
// needs to: validate a caller's instance or image ID before any call, and
// summarise per-instance failures in an error string without flooding it.
package awsid

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// valid reports whether id is prefix followed by 8 or 17 lowercase hex
// digits, the two ID formats EC2 has used.
func valid(id, prefix string) bool {
	h, ok := strings.CutPrefix(id, prefix)
	if !ok || (len(h) != 8 && len(h) != 17) {
		return false
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Instance reports whether id looks like an EC2 instance ID (i-...).
func Instance(id string) bool { return valid(id, "i-") }

// Image reports whether id looks like an AMI ID (ami-...).
func Image(id string) bool { return valid(id, "ami-") }

// Summary renders "id=reason" pairs in ID order, at most max of them,
// followed by " and N more" when some were left out.
func Summary(reasons map[string]string, max int) string {
	keys := slices.Sorted(maps.Keys(reasons))
	show := keys
	if len(show) > max {
		show = show[:max]
	}
	parts := make([]string, len(show))
	for i, id := range show {
		parts[i] = id + "=" + reasons[id]
	}
	s := strings.Join(parts, ", ")
	if len(keys) > len(show) {
		s += fmt.Sprintf(" and %d more", len(keys)-len(show))
	}
	return s
}
