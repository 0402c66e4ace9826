package ami

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ec2ops/ec2ops"
)

func TestExpandName(t *testing.T) {
	v := NameVars{Family: "web", Bake: "0123456789ab", Base: "ami-12345678", Time: time.Date(2025, 3, 1, 7, 8, 9, 0, time.UTC)}
	for tmpl, want := range map[string]string{
		"web-{date}-{time}":       "web-20250301-070809",
		"{family} ({bake})":       "web (0123456789ab)",
		"from-{base}-{timestamp}": "from-ami-12345678-1740812889",
		"plain-name":              "plain-name",
	} {
		got, err := ExpandName(tmpl, v)
		if err != nil || got != want {
			t.Errorf("ExpandName(%q) = %q, %v; want %q", tmpl, got, err, want)
		}
	}
	for _, bad := range []string{"x-{when}", "x-{date", "x}", "ab", "web:{date}", "{family}"} {
		if _, err := ExpandName(bad, NameVars{Time: v.Time}); !errors.Is(err, ec2ops.ErrInvalidInput) {
			t.Errorf("ExpandName(%q): %v, want invalid input", bad, err)
		}
	}
}

func FuzzExpandName(f *testing.F) {
	for _, s := range []string{"web-{date}-{bake}", "{", "}", "{x}", "a{family}b", "ünïcode-{time}", "{{date}}"} {
		f.Add(s, "fam")
	}
	f.Fuzz(func(t *testing.T, tmpl, family string) {
		name, err := ExpandName(tmpl, NameVars{Family: family, Bake: "0123456789ab", Base: "ami-12345678", Time: time.Unix(1700000000, 0)})
		if err != nil {
			if !errors.Is(err, ec2ops.ErrInvalidInput) {
				t.Fatalf("error %v is not an input error", err)
			}
			return
		}
		if !ValidImageName(name) {
			t.Fatalf("ExpandName(%q) = %q, not a valid AMI name", tmpl, name)
		}
	})
}

func TestUserData(t *testing.T) {
	one, err := UserData([]Layer{{Name: "a", UserData: "#cloud-config\npackages: [git]\n"}})
	if err != nil || one != "#cloud-config\npackages: [git]\n" {
		t.Errorf("one part: %q %v", one, err)
	}
	multi, err := UserData([]Layer{{Name: "a", UserData: "#cloud-config\npackages: [git]\n"}, {Name: "b", Commands: []string{"echo hi"}}})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := UserData([]Layer{{Name: "a", UserData: "#cloud-config\npackages: [git]\n"}, {Name: "b", Commands: []string{"echo hi"}}})
	for _, want := range []string{"Content-Type: multipart/mixed", "text/cloud-config", "text/x-shellscript", "set -eu\necho hi\n"} {
		if !strings.Contains(multi, want) {
			t.Errorf("multipart lacks %q:\n%s", want, multi)
		}
	}
	if multi != again {
		t.Errorf("user data is not deterministic")
	}
	if s, _ := UserData(nil); s != "" {
		t.Errorf("no layers: %q", s)
	}
}
