package cloudsim

// Patch states and the patching documents AWS-RunPatchBaseline and
// AWS-RunPatchBaselineWithHooks.

import (
	"context"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// patchState is the patch compliance of one instance as Patch Manager
// reports it after a Scan or Install.
type patchState struct {
	installed, installedOther, missing, failed, pendingReboot, notApplicable int
	reported                                                                 bool // a Scan or Install has run
	operation                                                                ssmtypes.PatchOperationType
	rebootOption                                                             ssmtypes.RebootOption
	start, end                                                               time.Time
	lastNoReboot                                                             time.Time
	snapshotID                                                               string
}

// patchesOf returns id's patch state, drawing the initial counts on first
// use from a source private to the instance (lock held): 300..450 installed,
// 0..12 missing (none for a fifth of the fleet), 1000..1500 not applicable.
func (s *Sim) patchesOf(id string) *patchState {
	ps := s.ssm.patches[id]
	if ps == nil {
		r := s.resourceRand("ssm-patch/" + id)
		ps = &patchState{installed: 300 + r.IntN(151), notApplicable: 1000 + r.IntN(501), installedOther: r.IntN(20)}
		if r.Float64() >= 0.2 {
			ps.missing = 1 + r.IntN(12)
		}
		s.ssm.patches[id] = ps
	}
	return ps
}

// Parameters of the patching documents. Source: the AWS-RunPatchBaseline
// and AWS-RunPatchBaselineWithHooks documents ("About the
// AWS-RunPatchBaseline SSM document", Systems Manager user guide):
// Operation Scan|Install (required), RebootOption RebootIfNeeded (default)
// |NoReboot, SnapshotId, InstallOverrideList, BaselineOverride; WithHooks
// adds PreInstallHookDocName, PostInstallHookDocName, OnExitHookDocName.
var (
	patchParams     = []string{"Operation", "SnapshotId", "InstallOverrideList", "BaselineOverride", "RebootOption", "AssociationId"}
	withHooksParams = append(slices.Clone(patchParams), "PreInstallHookDocName", "PostInstallHookDocName", "OnExitHookDocName")
)

// patchExecutionTimeout models the time limit of the patching steps (two
// hours in the simulator).
const patchExecutionTimeout = 2 * time.Hour

func checkPatchParams(p map[string][]string) error {
	switch op := first(p["Operation"]); op {
	case "Scan", "Install":
	default:
		return apiError("InvalidParameters", "Parameter \"Operation\" must be Scan or Install, not %q.", op)
	}
	switch ro := first(p["RebootOption"]); ro {
	case "", "RebootIfNeeded", "NoReboot":
	default:
		return apiError("InvalidParameters", "Parameter \"RebootOption\" must be RebootIfNeeded or NoReboot, not %q.", ro)
	}
	return nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func (s *Sim) registerPatchDocuments() {
	run := func(hooks bool) func(DocumentRun) DocumentResult {
		return func(r DocumentRun) DocumentResult { return s.runPatchBaseline(r, hooks) }
	}
	s.registerDocument("AWS-RunPatchBaseline", Document{
		Plugin: "PatchLinux", Parameters: patchParams, Required: []string{"Operation"},
		ExecutionTimeout: patchExecutionTimeout, Run: run(false), check: checkPatchParams,
	})
	s.registerDocument("AWS-RunPatchBaselineWithHooks", Document{
		Plugin: "PatchLinux", Parameters: withHooksParams, Required: []string{"Operation"},
		ExecutionTimeout: patchExecutionTimeout, Run: run(true), check: checkPatchParams,
	})
}

// runPatchBaseline decides one patching invocation (lock held). Scan
// reports the missing patches. Install installs them (a share fail under
// Faults.SSM.PatchFailureRate), then with RebootIfNeeded reboots when
// patches were installed or were pending a reboot, and finishes after the
// reboot with nothing pending; with NoReboot the installed patches stay
// pending a reboot.
func (s *Sim) runPatchBaseline(r DocumentRun, hooks bool) DocumentResult {
	lat := &s.opts.Latency.SSM
	op := first(r.Parameters["Operation"])
	reboot := first(r.Parameters["RebootOption"]) != "NoReboot"
	snapshot := first(r.Parameters["SnapshotId"])
	ps := s.patchesOf(r.InstanceID)
	if op == "Scan" {
		d := s.drawRaw(r.Rand, lat.Scan)
		return DocumentResult{
			Duration: d,
			Stdout:   "Scan found missing patches.\n",
			done: func(at time.Time, _ *instance) {
				ps.reported, ps.operation, ps.snapshotID = true, ssmtypes.PatchOperationTypeScan, snapshot
				ps.start, ps.end = at.Add(-s.scaled(d)), at
			},
		}
	}
	d := s.drawRaw(r.Rand, lat.Install)
	if hooks {
		d += 2 * s.drawRaw(r.Rand, lat.Shell) // pre- and post-install hooks
	}
	failed := 0
	if ps.missing > 0 && r.Rand.Float64() < s.opts.Faults.SSM.PatchFailureRate {
		failed = 1 + r.Rand.IntN(ps.missing)
	}
	installing := ps.missing - failed
	res := DocumentResult{Duration: d, Stdout: "Installing patches.\n"}
	if failed > 0 {
		res.ExitCode = 1
		res.Stderr = "Failed to install package(s).\n"
	}
	needReboot := reboot && failed == 0 && (installing > 0 || ps.pendingReboot > 0)
	res.Reboot = needReboot
	res.done = func(at time.Time, _ *instance) {
		ps.reported, ps.operation, ps.snapshotID = true, ssmtypes.PatchOperationTypeInstall, snapshot
		ps.start, ps.end = at.Add(-s.scaled(d)), at
		ps.installed += installing
		ps.missing, ps.failed = 0, failed
		ps.rebootOption = ssmtypes.RebootOptionRebootIfNeeded
		if !reboot {
			ps.rebootOption = ssmtypes.RebootOptionNoReboot
			ps.pendingReboot += installing
			ps.lastNoReboot = at
		} else if needReboot {
			ps.pendingReboot = 0
		} else {
			ps.pendingReboot += installing
		}
	}
	return res
}

// Limits of DescribeInstancePatchStates. Source: SSM API reference
// (InstanceIds 1-50 items, MaxResults 10-100).
const (
	maxPatchStateIDs  = 50
	defPatchStateRes  = 50
	minPatchStateRes  = 10
	maxPatchStateRes  = 100
	defaultBaselineID = "arn:aws:ssm:us-east-1:075727635805:patchbaseline/pb-0e392de35e7c563b7"
)

// DescribeInstancePatchStates returns the patch state of each of
// InstanceIds that has reported one (a Scan or Install ran on it), in the
// order given, with MaxResults and NextToken.
func (c *SSM) DescribeInstancePatchStates(ctx context.Context, params *ssm.DescribeInstancePatchStatesInput, optFns ...func(*ssm.Options)) (*ssm.DescribeInstancePatchStatesOutput, error) {
	if params == nil {
		params = &ssm.DescribeInstancePatchStatesInput{}
	}
	s := c.sim
	var out *ssm.DescribeInstancePatchStatesOutput
	err := s.call(ctx, svcSSM, "DescribeInstancePatchStates", nil, func(now time.Time) error {
		if len(params.InstanceIds) == 0 || len(params.InstanceIds) > maxPatchStateIDs {
			return validationError("1 validation error detected: Value at 'instanceIds' failed to satisfy constraint: Member must have length between 1 and %d", maxPatchStateIDs)
		}
		limit := defPatchStateRes
		if params.MaxResults != nil {
			limit = int(*params.MaxResults)
			if limit < minPatchStateRes || limit > maxPatchStateRes {
				return validationError("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between %d and %d", limit, minPatchStateRes, maxPatchStateRes)
			}
		}
		start, err := pageStart(params.NextToken)
		if err != nil {
			return err
		}
		out = &ssm.DescribeInstancePatchStatesOutput{InstancePatchStates: []ssmtypes.InstancePatchState{}}
		k := 0
		for _, id := range params.InstanceIds {
			ps := s.ssm.patches[id]
			if ps == nil || !ps.reported {
				continue
			}
			if k >= start {
				if len(out.InstancePatchStates) == limit {
					out.NextToken = aws.String(pageToken(k))
					break
				}
				out.InstancePatchStates = append(out.InstancePatchStates, sdkPatchState(id, ps))
			}
			k++
		}
		return nil
	})
	return out, err
}

func sdkPatchState(id string, ps *patchState) ssmtypes.InstancePatchState {
	st := ssmtypes.InstancePatchState{
		InstanceId:                  aws.String(id),
		BaselineId:                  aws.String(defaultBaselineID),
		PatchGroup:                  aws.String(""),
		Operation:                   ps.operation,
		OperationStartTime:          aws.Time(ps.start),
		OperationEndTime:            aws.Time(ps.end),
		InstalledCount:              int32(ps.installed),
		InstalledOtherCount:         int32(ps.installedOther),
		InstalledPendingRebootCount: aws.Int32(int32(ps.pendingReboot)),
		InstalledRejectedCount:      aws.Int32(0),
		MissingCount:                int32(ps.missing),
		FailedCount:                 int32(ps.failed),
		NotApplicableCount:          int32(ps.notApplicable),
		RebootOption:                ps.rebootOption,
	}
	if ps.snapshotID != "" {
		st.SnapshotId = aws.String(ps.snapshotID)
	}
	if !ps.lastNoReboot.IsZero() {
		st.LastNoRebootInstallOperationTime = aws.Time(ps.lastNoReboot)
	}
	return st
}

// PatchView is an instance's patch counts, for tests.
type PatchView struct {
	Installed, Missing, Failed, PendingReboot int
	Reported                                  bool
}

// Patches returns instance id's patch counts (drawing them on first use).
func (s *Sim) Patches(id string) PatchView {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	ps := s.patchesOf(id)
	return PatchView{Installed: ps.installed, Missing: ps.missing, Failed: ps.failed, PendingReboot: ps.pendingReboot, Reported: ps.reported}
}

// SetMissingPatches sets how many patches instance id is missing, for tests.
func (s *Sim) SetMissingPatches(id string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.patchesOf(id).missing = n
}
