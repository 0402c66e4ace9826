package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeUpToDate fails when README.md's generated sections differ from
// what the strategies' Policy() methods and BENCHMARKS.md give now.
func TestReadmeUpToDate(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	bench, err := os.ReadFile(filepath.Join(root, "BENCHMARKS.md"))
	if err != nil {
		bench = nil
	}
	want, err := update(readme, bench)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(readme) {
		t.Fatal("README.md is stale: run `go run ./internal/cmd/policies` from the repository root")
	}
}

func TestPoliciesAreValidIAM(t *testing.T) {
	for _, e := range policies() {
		var doc struct {
			Version   string
			Statement []struct {
				Sid      string
				Effect   string
				Action   []string
				Resource []string
			}
		}
		if err := json.Unmarshal([]byte(e.policy.JSON()), &doc); err != nil {
			t.Fatalf("%s: %v", e.name, err)
		}
		if doc.Version != "2012-10-17" || len(doc.Statement) == 0 {
			t.Errorf("%s: %+v", e.name, doc)
		}
		sids := map[string]bool{}
		for _, s := range doc.Statement {
			if s.Sid != "" && sids[s.Sid] {
				t.Errorf("%s: duplicate Sid %q", e.name, s.Sid)
			}
			sids[s.Sid] = true
			if s.Effect != "Allow" || len(s.Action) == 0 || len(s.Resource) == 0 {
				t.Errorf("%s: statement %+v", e.name, s)
			}
			for _, a := range s.Action {
				if !strings.Contains(a, ":") || strings.Contains(a, "*") {
					t.Errorf("%s: action %q is not a single service:Action", e.name, a)
				}
			}
		}
	}
}

func TestBenchTable(t *testing.T) {
	got := benchTable([]byte("# B\n\ntext\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nFields: ...\n\n| t |\n"))
	if got != "\n| a | b |\n|---|---|\n| 1 | 2 |\n" {
		t.Fatalf("%q", got)
	}
}
