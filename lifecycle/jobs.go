package lifecycle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
)

// found is what the ec2ops tags say about earlier replacements of one old
// instance.
type found struct {
	live     []types.Instance // pending, running, stopping or stopped
	dead     map[string]int   // terminated or shutting down, by spec hash
	untagged map[string]bool  // live batch-launched ones without ec2ops:replaces yet
	seen     map[string]bool
}

// addFound records in (a replacement of old); untagged when it was found
// by its batch's member list only. An instance found twice is counted once
// (and as tagged if either lookup saw its tag).
func addFound(out map[string]*found, old string, in types.Instance, untagged bool) {
	f := out[old]
	if f == nil {
		f = &found{dead: map[string]int{}, untagged: map[string]bool{}, seen: map[string]bool{}}
		out[old] = f
	}
	id := aws.ToString(in.InstanceId)
	if f.seen[id] {
		if !untagged {
			delete(f.untagged, id)
		}
		return
	}
	f.seen[id] = true
	switch stateName(in) {
	case types.InstanceStateNameTerminated, types.InstanceStateNameShuttingDown:
		f.dead[tagValue(in.Tags, TagSpec)]++
	default:
		f.live = append(f.live, in)
		if untagged {
			f.untagged[id] = true
		}
	}
}

// findReplacements looks up every instance tagged ec2ops:replaces=<old>
// for the given old instances (one DescribeInstances call per 200) and,
// with batched, the batch-launched ones not tagged yet (one more per 200,
// made first so that an instance tagged in between is not missed).
func (rt *runtime) findReplacements(ctx context.Context, olds []string, batched bool) (map[string]*found, error) {
	out := map[string]*found{}
	if batched {
		if err := rt.findBatched(ctx, olds, out); err != nil {
			return nil, err
		}
	}
	for chunk := range slices.Chunk(olds, filterChunk) {
		ins, err := rt.describe(ctx, []types.Filter{{Name: aws.String("tag:" + TagReplaces), Values: chunk}})
		if err != nil {
			return nil, err
		}
		for _, in := range ins {
			addFound(out, tagValue(in.Tags, TagReplaces), in, false)
		}
	}
	for _, f := range out {
		slices.SortFunc(f.live, func(a, b types.Instance) int {
			return strings.Compare(aws.ToString(a.InstanceId), aws.ToString(b.InstanceId))
		})
	}
	return out, nil
}

func tagValue(tags []types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

func stateName(in types.Instance) types.InstanceStateName {
	if in.State == nil {
		return ""
	}
	return in.State.Name
}

// newJob prepares the replacement of cur: the desired spec and its hash,
// the attempt number, and an earlier replacement to adopt. Live
// replacements of another target (stale, from an abandoned rollout) are
// returned for termination: the old instance still serves, so nothing is
// lost; one that may hold handed-over data volumes is never returned.
func newJob(r Replacer, cur *Spec, t Target, image, rollout, op string, f *found, rec *Record) (*job, []string, error) {
	want := r.want(cur, t, image)
	j := &job{op: op, rollout: rollout, cur: cur, want: want, wantHash: want.Hash(), reasons: Diff(cur, want),
		target: t, image: image, found: f}
	var stale []string
	if f != nil {
		j.attempt = f.dead[j.wantHash]
		for _, in := range f.live {
			id := aws.ToString(in.InstanceId)
			if j.newID == "" && (tagValue(in.Tags, TagSpec) == j.wantHash || tagValue(in.Tags, TagRollout) == rollout) {
				j.newID = id
				j.tagPending = f.untagged[id]
				if h := tagValue(in.Tags, TagHandover); h != "" {
					j.handover = parseHandover(h)
				}
				continue
			}
			if tagValue(in.Tags, TagHandover) != "" {
				return nil, nil, fmt.Errorf("%w: instance %s, an earlier replacement of %s for another target, may hold its data volumes: finish or undo that handover first",
					ec2ops.ErrUnsupported, id, cur.InstanceID)
			}
			stale = append(stale, id)
		}
	}
	if rec != nil {
		a := rec.Attempt
		if rec.Phase == "failed" || rec.Phase == "rolled-back" {
			a++
		}
		j.attempt = max(j.attempt, a)
		if j.newID == "" && rec.Replacement != "" && rec.Replacement != cur.InstanceID && !terminalPhase(rec.Phase) {
			j.newID = rec.Replacement // not visible by tag yet (eventual consistency)
			if rec.Batch != "" {
				j.batchToken, j.tagPending = rec.Batch, true // tagging it again is harmless
			}
		}
	}
	r.prepare(j)
	return j, stale, nil
}

// finalize reads the user data if the plan did not need it (it did not
// when something else already differed) and fixes the desired spec, its
// hash (the ClientToken's input) and the attempt number.
func finalize(ctx context.Context, r Replacer, j *job) error {
	if j.cur.userDataKnown {
		return nil
	}
	if err := r.rt().captureUserData(ctx, j.cur); err != nil {
		return err
	}
	j.want = r.want(j.cur, j.target, j.image)
	j.wantHash = j.want.Hash()
	if j.found != nil {
		j.attempt = max(j.attempt, j.found.dead[j.wantHash])
	}
	return nil
}

func terminalPhase(p string) bool {
	return p == "done" || p == "failed" || p == "rolled-back"
}

// defaultID derives a rollout ID from what defines the rollout.
func defaultID(prefix string, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return prefix + hex.EncodeToString(sum[:])[:16]
}

// targetKey renders a target for IDs and hashes (user data as a hash).
func targetKey(t Target, image string) string {
	ud := ""
	if t.UserData != nil {
		ud = hashOf(t.UserData.b64)
	}
	return fmt.Sprintf("%s|%s|%s|%v", image, t.InstanceType, ud, t.Tags)
}

// replaceOne is Replace/ReplaceInstance of every strategy.
func replaceOne(ctx context.Context, r Replacer, t Target, id, op string) (*Replacement, error) {
	rt := r.rt()
	if !strings.HasPrefix(id, "i-") {
		return nil, ec2ops.InvalidInput("instanceID", id, "not an instance ID", "use an ID of the form i-0123456789abcdef0")
	}
	image, err := t.resolveImage(ctx)
	if err != nil {
		return nil, err
	}
	if err := t.validate(image); err != nil {
		return nil, err
	}
	if err := r.accepts(t); err != nil {
		return nil, err
	}
	specs, err := rt.captureIDs(ctx, []string{id}, true)
	if err != nil {
		return nil, err
	}
	cur := specs[id]
	if cur == nil {
		return nil, fmt.Errorf("replace %s: %w", id, ec2ops.ErrNotFound)
	}
	if err := cur.Refusal(); err != nil {
		return nil, err
	}
	fs, err := rt.findReplacements(ctx, []string{id}, false)
	if err != nil {
		return nil, err
	}
	rollout := defaultID("replace-", id, targetKey(t, image))
	j, stale, err := newJob(r, cur, t, image, rollout, op, fs[id], nil)
	if err != nil {
		return nil, err
	}
	for _, s := range stale {
		if err := rt.terminate(ctx, s); err != nil {
			return nil, err
		}
	}
	if err := runJob(ctx, r, j); err != nil {
		return nil, err
	}
	return &Replacement{OldID: id, NewID: j.newID, Reasons: j.reasons}, nil
}

// runJob brings the replacement up and retires the old instance; on a
// failure (not a cancellation) it rolls back.
func runJob(ctx context.Context, r Replacer, j *job) error {
	err := finalize(ctx, r, j)
	if err == nil {
		err = r.bringUp(ctx, j)
	}
	if err == nil {
		err = r.retire(ctx, j)
	}
	if err == nil {
		return nil
	}
	return failJob(ctx, r, j, err)
}

// failJob rolls back a failed job unless the caller cancelled (a rerun
// then resumes) and returns a *ReplaceError.
func failJob(ctx context.Context, r Replacer, j *job, err error) error {
	rerr := &ReplaceError{InstanceID: j.cur.InstanceID, ReplacementID: j.newID, Phase: j.phase, Err: err}
	if ctx.Err() != nil {
		return rerr
	}
	r.rt().emit(ec2ops.Event{Operation: j.op, Phase: "failed", Resource: j.cur.InstanceID, Err: rerr})
	r.rt().log.WarnContext(ctx, "replacement failed", "old", j.cur.InstanceID, "new", j.newID, "phase", j.phase, "err", err)
	if rbErr := r.rollback(ctx, j); rbErr != nil {
		rerr.Err = errors.Join(err, fmt.Errorf("rollback: %w", rbErr))
		return rerr
	}
	rerr.RolledBack = !r.inPlace() && j.newID != ""
	if j.note != nil {
		j.note("failed")
	}
	return rerr
}

// planOne is Plan of every strategy.
func planOne(ctx context.Context, r Replacer, t Target, id string) (ec2ops.Plan, error) {
	rt := r.rt()
	p := ec2ops.Plan{Operation: "replace"}
	image, err := t.resolveImage(ctx)
	if err != nil {
		return p, err
	}
	if err := t.validate(image); err != nil {
		return p, err
	}
	if err := r.accepts(t); err != nil {
		return p, err
	}
	specs, err := rt.captureIDs(ctx, []string{id}, t.UserData != nil)
	if err != nil {
		return p, err
	}
	cur := specs[id]
	if cur == nil {
		return p, fmt.Errorf("plan %s: %w", id, ec2ops.ErrNotFound)
	}
	if err := cur.Refusal(); err != nil {
		return p, err
	}
	j, _, err := newJob(r, cur, t, image, "", "replace", nil, nil)
	if err != nil {
		return p, err
	}
	p.Steps = r.steps(j)
	return p, nil
}
