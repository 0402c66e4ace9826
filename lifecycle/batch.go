package lifecycle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awserr"
)

// Batched launches (Rollout with Surge, see the package documentation).
const (
	// TagBatch is the ClientToken of the RunInstances call that launched a
	// batch of replacements (MaxCount > 1).
	TagBatch = "ec2ops:batch"
	// TagBatchMembers lists the old instances of a batch, comma-separated,
	// in launch-index order: the instance with AmiLaunchIndex i replaces
	// the i-th. It lets a rerun map a batch-launched instance to its old
	// instance before it carries its own ec2ops:replaces tag.
	TagBatchMembers = "ec2ops:batch-members"
)

// maxBatch bounds the replacements launched by one RunInstances call; the
// ec2ops:batch-members tag (at most maxTagValue characters) bounds it too
// (12 instance IDs of 19 characters).
const maxBatch = 50

// launchReq is one job waiting for a launch in the batcher.
type launchReq struct {
	ctx  context.Context
	j    *job
	done chan launchRes
}

// launchRes is what the batcher did for one job: launched it in a batch
// (id), launched it alone (single: the job holds the result), failed it,
// or asks it to launch alone (fallback) after the batch was refused for
// capacity or its token returned a terminated instance.
type launchRes struct {
	id, token string
	single    bool
	fallback  bool
	err       error
}

// untagged returns the launch request of w without its tags.
func untagged(w *Spec) *Spec {
	c := *w
	c.Tags = nil
	return &c
}

// batchKey identifies the jobs that one RunInstances call can launch:
// identical requests apart from the tags (the user tags of each instance,
// and the ec2ops:replaces and ec2ops:spec tags).
func batchKey(j *job) string {
	b, err := json.Marshal(runInput(untagged(j.want), "", map[string]string{TagRollout: j.rollout}, false))
	if err != nil {
		return "" // not batchable
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// memberTags are all the tags of a replacement: its user tags and its
// ec2ops tags (what a launch of its own sets).
func memberTags(j *job) map[string]string {
	t := maps.Clone(j.want.Tags)
	if t == nil {
		t = map[string]string{}
	}
	maps.Copy(t, j.launchTags())
	return t
}

// batchToken is the ClientToken of a batch: derived from the sorted old
// instances, their target specs' hashes, the request and the attempt, so
// a retried call never launches twice. It differs in form from a single
// launch's token ("ec2ops-b" prefix).
func batchToken(olds, hashes []string, key string, attempt int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%s|%d", strings.Join(olds, ","), strings.Join(hashes, ","), key, attempt))
	return "ec2ops-b" + hex.EncodeToString(sum[:])[:48]
}

// launchBatched launches j through the batcher: jobs with the same batch
// key queue while a RunInstances call of that key waits for its tokens,
// and the next call takes up to maxBatch of them.
func (rt *runtime) launchBatched(ctx context.Context, j *job) launchRes {
	key := batchKey(j)
	if key == "" {
		return launchRes{fallback: true}
	}
	req := &launchReq{ctx: ctx, j: j, done: make(chan launchRes, 1)}
	rt.bmu.Lock()
	if rt.bq == nil {
		rt.bq, rt.bbusy = map[string][]*launchReq{}, map[string]bool{}
	}
	rt.bq[key] = append(rt.bq[key], req)
	if !rt.bbusy[key] {
		rt.bbusy[key] = true
		go rt.drain(key)
	}
	rt.bmu.Unlock()
	return <-req.done
}

// drain runs the RunInstances calls of one batch key, one at a time,
// until its queue is empty.
func (rt *runtime) drain(key string) {
	for {
		rt.bmu.Lock()
		q := rt.bq[key]
		if len(q) == 0 {
			delete(rt.bq, key)
			delete(rt.bbusy, key)
			rt.bmu.Unlock()
			return
		}
		n, chars := 0, -1
		for n < len(q) && n < maxBatch && chars+1+len(q[n].j.cur.InstanceID) <= maxTagValue {
			chars += 1 + len(q[n].j.cur.InstanceID)
			n++
		}
		n = max(n, 1)
		batch := slices.Clone(q[:n])
		rt.bq[key] = slices.Clone(q[n:])
		rt.bmu.Unlock()
		if len(batch) == 1 {
			r := batch[0]
			r.done <- launchRes{single: true, err: rt.launchSingle(r.ctx, r.j)}
			continue
		}
		rt.launchGroup(batch, key)
	}
}

// launchGroup launches the jobs of batch (same key, at least two) with one
// RunInstances call (MinCount = MaxCount = len(batch)).
func (rt *runtime) launchGroup(batch []*launchReq, key string) {
	slices.SortFunc(batch, func(a, b *launchReq) int { return strings.Compare(a.j.cur.InstanceID, b.j.cur.InstanceID) })
	n := len(batch)
	olds, hashes := make([]string, n), make([]string, n)
	attempt := 0
	var common map[string]string // the tags every member has
	for i, r := range batch {
		olds[i], hashes[i] = r.j.cur.InstanceID, r.j.wantHash
		attempt = max(attempt, r.j.attempt)
		t := memberTags(r.j)
		if common == nil {
			common = t
			continue
		}
		maps.DeleteFunc(common, func(k, v string) bool { w, ok := t[k]; return !ok || w != v })
	}
	deliver := func(f func(i int) launchRes) {
		for i, r := range batch {
			r.done <- f(i)
		}
	}
	token := batchToken(olds, hashes, key, attempt)
	common[TagBatch] = token
	common[TagBatchMembers] = strings.Join(olds, ",")
	in := runInput(untagged(batch[0].j.want), token, common, false)
	in.MinCount, in.MaxCount = aws.Int32(int32(n)), aws.Int32(int32(n))
	ctx := batch[0].ctx
	var out *ec2.RunInstancesOutput
	err := rt.runInstances(ctx, in, n, &out)
	if err != nil {
		if awserr.Classify(err) == awserr.Capacity {
			// Nothing was launched: each member tries alone (smaller
			// requests find capacity more easily), with its own token.
			rt.log.InfoContext(ctx, "batch launch refused for capacity, launching alone", "members", n, "code", awserr.Code(err))
			deliver(func(int) launchRes { return launchRes{fallback: true} })
			return
		}
		deliver(func(int) launchRes { return launchRes{err: err} })
		return
	}
	byIdx := make([]*types.Instance, n)
	for i := range out.Instances {
		in := &out.Instances[i]
		x := int(aws.ToInt32(in.AmiLaunchIndex))
		if x < 0 || x >= n || byIdx[x] != nil {
			byIdx = nil
			break
		}
		byIdx[x] = in
	}
	if len(out.Instances) != n || byIdx == nil {
		err := fmt.Errorf("RunInstances returned %d instances for a batch of %d", len(out.Instances), n)
		deliver(func(int) launchRes { return launchRes{err: err} })
		return
	}
	rt.log.InfoContext(ctx, "launched a batch of replacements", "members", n, "token", token)
	deliver(func(i int) launchRes {
		if st := byIdx[i].State; st != nil && (st.Name == types.InstanceStateNameTerminated || st.Name == types.InstanceStateNameShuttingDown) {
			return launchRes{fallback: true} // an earlier run's batch, since rolled back
		}
		return launchRes{id: aws.ToString(byIdx[i].InstanceId), token: token}
	})
}

// tagReplaces gives a batch-launched replacement its own tags
// (ec2ops:replaces=<old>, ec2ops:spec, its user tags): one CreateTags call.
// EC2 may not know a new instance for a few seconds (eventual
// consistency): NotFound is retried for up to two minutes.
func (rt *runtime) tagReplaces(ctx context.Context, j *job) error {
	all := memberTags(j)
	delete(all, TagHandover) // never batched; kept out of the IAM condition
	tags := make([]types.Tag, 0, len(all))
	for _, k := range slices.Sorted(maps.Keys(all)) {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(all[k])})
	}
	deadline := time.Now().Add(rt.d(2 * time.Minute))
	for n := 1; ; n++ {
		err := rt.do(ctx, "CreateTags", 0, func(ctx context.Context) error {
			_, err := rt.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{j.newID}, Tags: tags})
			return err
		})
		if err == nil {
			j.tagPending = false
			return nil
		}
		if !awserr.IsNotFound(err) || time.Now().After(deadline) {
			return fmt.Errorf("tag %s %s=%s: %w", j.newID, TagReplaces, j.cur.InstanceID, err)
		}
		if err := sleep(ctx, rt.backoff(transientBase, n)); err != nil {
			return err
		}
	}
}

// launched records a launch of j.
func (rt *runtime) launched(ctx context.Context, j *job) {
	j.step("launched")
	rt.emit(ec2ops.Event{Operation: j.op, Phase: "launch", Resource: j.cur.InstanceID, Message: "launched " + j.newID})
	rt.log.InfoContext(ctx, "launched replacement", "old", j.cur.InstanceID, "new", j.newID, "image", j.want.ImageID, "attempt", j.attempt, "batch", j.batchToken)
}

// findBatched finds the instances launched in batches for olds that do
// not carry ec2ops:replaces yet (a run stopped between the launch and the
// tagging): one DescribeInstances call per 200, wildcards on the
// ec2ops:batch-members tag, the old instance taken at the launch index.
func (rt *runtime) findBatched(ctx context.Context, olds []string, out map[string]*found) error {
	for chunk := range slices.Chunk(olds, filterChunk) {
		vals := make([]string, len(chunk))
		want := make(map[string]bool, len(chunk))
		for i, o := range chunk {
			vals[i] = "*" + o + "*"
			want[o] = true
		}
		ins, err := rt.describe(ctx, []types.Filter{{Name: aws.String("tag:" + TagBatchMembers), Values: vals}})
		if err != nil {
			return err
		}
		for _, in := range ins {
			if tagValue(in.Tags, TagReplaces) != "" {
				continue // found by its own tag
			}
			members := strings.Split(tagValue(in.Tags, TagBatchMembers), ",")
			x := int(aws.ToInt32(in.AmiLaunchIndex))
			if x < 0 || x >= len(members) || !want[members[x]] {
				continue
			}
			addFound(out, members[x], in, true)
		}
	}
	return nil
}
