package awsid

import (
	"fmt"
	"testing"
)

func TestValid(t *testing.T) {
	for _, tt := range []struct {
		id          string
		inst, image bool
	}{
		{"i-0123456789abcdef0", true, false},
		{"i-01234567", true, false},
		{"i-0123456789ABCDEF0", false, false},
		{"i-0123", false, false},
		{"ami-0123456789abcdef0", false, true},
		{"ami-12c6146b", false, true},
		{"ami-12c6146g", false, false},
		{"", false, false},
	} {
		if Instance(tt.id) != tt.inst || Image(tt.id) != tt.image {
			t.Errorf("%q: Instance %v Image %v, want %v %v", tt.id, Instance(tt.id), Image(tt.id), tt.inst, tt.image)
		}
	}
}

func TestSummary(t *testing.T) {
	m := map[string]string{}
	if got := Summary(m, 10); got != "" {
		t.Fatalf("empty: %q", got)
	}
	m["i-b"], m["i-a"] = "Failed", "TimedOut"
	if got := Summary(m, 10); got != "i-a=TimedOut, i-b=Failed" {
		t.Fatalf("got %q", got)
	}
	for i := range 12 {
		m[fmt.Sprintf("i-%02d", i)] = "x"
	}
	if got := Summary(m, 2); got != "i-00=x, i-01=x and 12 more" {
		t.Fatalf("got %q", got)
	}
}
