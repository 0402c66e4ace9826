package patching_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/patching"
)

// FuzzCommandParameters: a Command with any document, parameters,
// sensitive names, targets and budgets is refused with an
// ec2ops.InvalidInput before SendCommand, or sent; a sensitive value never
// appears in the error.
func FuzzCommandParameters(f *testing.F) {
	f.Add("AWS-RunShellScript", "commands", "echo hi", "token", "canary-7f3a9c", "tag:Role", "web", "10%", "0", int32(600))
	f.Add("", "", "", "", "", "", "", "", "", int32(0))
	f.Add("AWS-RunShellScript", "", "x", "commands", "canary-7f3a9c", "InstanceIds", "i-0123456789abcdef0", "101%", "-1", int32(-5))
	f.Add("../etc/passwd", "commands", strings.Repeat("a", 5000), "commands", "a", "tag:", "", "abc", "1e9", int32(1<<30))
	f.Fuzz(func(t *testing.T, doc, param, value, sensName, sensValue, tkey, tval, conc, maxErr string, timeout int32) {
		sim := cloudsim.New(func(o *cloudsim.Options) { o.DisableThrottling = true })
		cmd := patching.Command{DocumentName: doc, Parameters: map[string][]string{}, MaxConcurrency: conc, MaxErrors: maxErr, TimeoutSeconds: timeout}
		if param != "" {
			cmd.Parameters[param] = []string{value}
		}
		if sensName != "" {
			cmd.Parameters[sensName] = append(cmd.Parameters[sensName], sensValue)
			cmd.Sensitive = []string{sensName}
		}
		if tkey != "" {
			cmd.Targets = []patching.Target{{Key: tkey, Values: []string{tval}}}
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // a valid command stops at the first call; only validation runs
		_, err := patching.NewRunner(sim.SSM()).Run(ctx, cmd)
		if err == nil {
			return
		}
		if errors.Is(err, ec2ops.ErrInvalidInput) && sim.Calls()["ssm:SendCommand"] != 0 {
			t.Fatalf("input refused after SendCommand: %v", err)
		}
		// The other inputs may legitimately appear in the error, raw or quoted
		// (%q escapes control characters, so "0\x00001" contains "0000").
		public := []string{doc, param, value, sensName, tkey, tval, conc, maxErr}
		shown := strings.Join(public, "\n") + fmt.Sprintf("%q", public)
		if len(sensValue) >= 4 && sensName != "" && strings.Contains(err.Error(), sensValue) && !strings.Contains(shown, sensValue) {
			t.Fatalf("sensitive value in error: %v", err)
		}
	})
}
