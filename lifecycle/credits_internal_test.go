package lifecycle

import (
	"encoding/json"
	"strings"
	"testing"
)

// An empty credit option (every non-burstable instance) is left out of the
// canonical encoding, so that such instances keep the drift hash (and the
// ec2ops:spec tags and ClientTokens derived from it) they had before the
// field existed.
func TestEmptyCreditsKeepHash(t *testing.T) {
	s := &Spec{ImageID: "ami-0aaaaaaaaaaaaaaa1", InstanceType: "m5.large"}
	b, _ := json.Marshal(s.canonical(true))
	if strings.Contains(string(b), "Credits") {
		t.Fatalf("empty credit option in the canonical encoding: %s", b)
	}
	s.CreditSpecification = "unlimited"
	b, _ = json.Marshal(s.canonical(true))
	if !strings.Contains(string(b), `"Credits":"unlimited"`) {
		t.Fatalf("credit option missing from the canonical encoding: %s", b)
	}
}

func TestBurstableByName(t *testing.T) {
	for it, want := range map[string]bool{"t2.micro": true, "t3.large": true, "t3a.nano": true, "t4g.small": true,
		"m5.large": false, "trn1.2xlarge": false, "c7g.large": false, "": false} {
		if got := burstable(it); got != want {
			t.Errorf("burstable(%q) = %v, want %v", it, got, want)
		}
	}
}
