package lifecycle_test

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"go.uber.org/mock/gomock"

	"github.com/ec2ops/ec2ops/lifecycle"
	"github.com/ec2ops/ec2ops/lifecycle/lifecyclemock"
)

var batchOlds = []string{"i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2", "i-0aaaaaaaaaaaaaaa3"}

// batchMock is a fleet of three instances whose launch specs differ only
// in their Name tags, on a mock EC2 that records launches and tags.
type batchMock struct {
	mu       sync.Mutex
	runs     []*ec2.RunInstancesInput
	tags     []*ec2.CreateTagsInput
	launched map[string]string // new instance -> ClientToken
	gate     chan struct{}     // the first RunInstances call waits for it
	batched  []types.Instance  // what a tag:ec2ops:batch-members lookup finds
	runErr   func(call int, in *ec2.RunInstancesInput) error
}

func tagMap(ts []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range ts {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func newBatchMock(t *testing.T) (*batchMock, *lifecyclemock.MockEC2API) {
	ctrl := gomock.NewController(t)
	m := lifecyclemock.NewMockEC2API(ctrl)
	b := &batchMock{launched: map[string]string{}, gate: make(chan struct{})}
	inst := func(id string, i int) types.Instance {
		x := described(nil).Reservations[0].Instances[0]
		x.InstanceId = aws.String(id)
		x.Tags = []types.Tag{{Key: aws.String("app"), Value: aws.String("web")}, {Key: aws.String("Name"), Value: aws.String(fmt.Sprint("web-", i))}}
		return x
	}
	m.EXPECT().DescribeInstances(gomock.Any(), gomock.Any()).DoAndReturn(
		func(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
			out := &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{}}}
			for _, f := range in.Filters {
				switch aws.ToString(f.Name) {
				case "tag:" + lifecycle.TagReplaces:
					return &ec2.DescribeInstancesOutput{}, nil // nothing tagged before
				case "tag:" + lifecycle.TagBatchMembers:
					return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: b.batched}}}, nil
				case "instance-id":
					for i, id := range batchOlds {
						if slices.Contains(f.Values, id) {
							out.Reservations[0].Instances = append(out.Reservations[0].Instances, inst(id, i+1))
						}
					}
				}
			}
			return out, nil
		}).AnyTimes()
	m.EXPECT().DescribeVolumes(gomock.Any(), gomock.Any()).Return(&ec2.DescribeVolumesOutput{Volumes: []types.Volume{{
		VolumeId: aws.String("vol-0aaaaaaaaaaaaaaa1"), VolumeType: types.VolumeTypeGp3, Size: aws.Int32(30)}}}, nil).AnyTimes()
	m.EXPECT().DescribeAddresses(gomock.Any(), gomock.Any()).Return(&ec2.DescribeAddressesOutput{}, nil).AnyTimes()
	m.EXPECT().DescribeInstanceAttribute(gomock.Any(), gomock.Any()).
		Return(&ec2.DescribeInstanceAttributeOutput{UserData: &types.AttributeValue{Value: aws.String("c2VjcmV0")}}, nil).AnyTimes()
	m.EXPECT().RunInstances(gomock.Any(), gomock.Any()).DoAndReturn(
		func(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
			b.mu.Lock()
			b.runs = append(b.runs, in)
			call := len(b.runs)
			b.mu.Unlock()
			if call == 1 {
				<-b.gate
			}
			if b.runErr != nil {
				if err := b.runErr(call, in); err != nil {
					return nil, err
				}
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			out := &ec2.RunInstancesOutput{}
			for i := range int(aws.ToInt32(in.MaxCount)) {
				id := fmt.Sprintf("i-0bbbbbbbbbbbbb%03d", len(b.launched)+1)
				b.launched[id] = aws.ToString(in.ClientToken)
				out.Instances = append(out.Instances, types.Instance{InstanceId: aws.String(id), AmiLaunchIndex: aws.Int32(int32(i)),
					State: &types.InstanceState{Name: types.InstanceStateNamePending}})
			}
			return out, nil
		}).AnyTimes()
	m.EXPECT().CreateTags(gomock.Any(), gomock.Any()).DoAndReturn(
		func(_ context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.tags = append(b.tags, in)
			return &ec2.CreateTagsOutput{}, nil
		}).AnyTimes()
	m.EXPECT().DescribeInstanceStatus(gomock.Any(), gomock.Any()).DoAndReturn(
		func(_ context.Context, in *ec2.DescribeInstanceStatusInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error) {
			out := &ec2.DescribeInstanceStatusOutput{}
			for _, id := range in.InstanceIds {
				out.InstanceStatuses = append(out.InstanceStatuses, types.InstanceStatus{InstanceId: aws.String(id),
					InstanceState:  &types.InstanceState{Name: types.InstanceStateNameRunning},
					InstanceStatus: &types.InstanceStatusSummary{Status: types.SummaryStatusOk},
					SystemStatus:   &types.InstanceStatusSummary{Status: types.SummaryStatusOk}})
			}
			return out, nil
		}).AnyTimes()
	m.EXPECT().TerminateInstances(gomock.Any(), gomock.Any()).Return(&ec2.TerminateInstancesOutput{}, nil).AnyTimes()
	return b, m
}

// apply runs a rollout of the three instances (all in flight at once),
// releasing the first RunInstances call once every replacement waits for
// its launch, so that the next call takes all of them.
func (b *batchMock) apply(t *testing.T, m *lifecyclemock.MockEC2API, optFns ...func(*lifecycle.RolloutOptions)) (*lifecycle.RolloutResult, string, error) {
	s := lifecycle.NewSurge(m, lifecycle.Target{ImageID: newAMI}, func(o *lifecycle.Options) { o.DisablePacing = true })
	ro := lifecycle.NewRollout(s, lifecycle.Selector{InstanceIDs: batchOlds}, append([]func(*lifecycle.RolloutOptions){
		func(o *lifecycle.RolloutOptions) { o.MaxSurge = "3" }}, optFns...)...)
	p, err := ro.Plan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var (
		res  *lifecycle.RolloutResult
		aerr error
		done = make(chan struct{})
	)
	go func() { res, aerr = ro.Apply(t.Context()); close(done) }()
	synctest.Wait()
	close(b.gate)
	<-done
	return res, p.ID, aerr
}

var (
	singleToken = regexp.MustCompile(`^ec2ops-[0-9a-f]{48}$`)
	batchTok    = regexp.MustCompile(`^ec2ops-b[0-9a-f]{48}$`)
)

// TestRolloutBatchLaunchInputs checks the batched RunInstances call (the
// count, the ClientToken, the tags every member shares, the member list
// in launch-index order, no per-instance tag) and the CreateTags call per
// member (its ec2ops:replaces, ec2ops:spec and Name).
func TestRolloutBatchLaunchInputs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, m := newBatchMock(t)
		res, id, err := b.apply(t, m)
		if err != nil || len(res.Replaced) != 3 {
			t.Fatalf("apply: %v %v", res, err)
		}
		byNew := map[string]string{} // batch-launched instance -> its batch token
		batched := 0
		for _, in := range b.runs {
			n := int(aws.ToInt32(in.MaxCount))
			tok := aws.ToString(in.ClientToken)
			it := tagMap(in.TagSpecifications[0].Tags)
			vt := tagMap(in.TagSpecifications[1].Tags)
			if aws.ToInt32(in.MinCount) != int32(n) || it["app"] != "web" || it[lifecycle.TagRollout] != id || aws.ToString(in.ImageId) != newAMI ||
				aws.ToString(in.UserData) != "c2VjcmV0" || in.MetadataOptions.HttpTokens != types.HttpTokensStateRequired {
				t.Fatalf("RunInstances input %+v, tags %v", in, it)
			}
			if n == 1 {
				if !singleToken.MatchString(tok) || it[lifecycle.TagReplaces] == "" || it["Name"] == "" || it[lifecycle.TagBatch] != "" {
					t.Fatalf("single launch: token %q tags %v", tok, it)
				}
				continue
			}
			batched += n
			members := strings.Split(it[lifecycle.TagBatchMembers], ",")
			if !batchTok.MatchString(tok) || it[lifecycle.TagBatch] != tok || len(members) != n || !slices.IsSorted(members) {
				t.Fatalf("batch launch: token %q tags %v", tok, it)
			}
			// Per-instance tags are not in the batch's request: every member
			// has its own Name and spec hash.
			want := []string{"app", lifecycle.TagBatch, lifecycle.TagBatchMembers, lifecycle.TagRollout}
			if got := slices.Sorted(maps.Keys(it)); !slices.Equal(got, want) {
				t.Fatalf("batch instance tags %v, want keys %v", it, want)
			}
			if got := slices.Sorted(maps.Keys(vt)); !slices.Equal(got, want[1:]) {
				t.Fatalf("batch volume tags %v", vt)
			}
			for nid, tk := range b.launched {
				if tk == tok {
					byNew[nid] = tok
				}
			}
		}
		if batched < 2 {
			t.Fatalf("no batch: %d calls", len(b.runs))
		}
		// One CreateTags call per batch member, with all its own tags.
		if len(b.tags) != batched {
			t.Fatalf("%d CreateTags calls for %d batch members", len(b.tags), batched)
		}
		for _, in := range b.tags {
			if len(in.Resources) != 1 {
				t.Fatalf("CreateTags resources %v", in.Resources)
			}
			nid := in.Resources[0]
			tg := tagMap(in.Tags)
			old := tg[lifecycle.TagReplaces]
			i := slices.Index(batchOlds, old)
			if _, ok := byNew[nid]; !ok || i < 0 || res.Replaced[old] != nid || tg["Name"] != fmt.Sprint("web-", i+1) || tg["app"] != "web" ||
				len(tg[lifecycle.TagSpec]) != 64 || tg[lifecycle.TagRollout] != id || len(tg) != 5 {
				t.Fatalf("CreateTags %s %v (replaced %v)", nid, tg, res.Replaced)
			}
			if !slices.IsSortedFunc(in.Tags, func(a, b types.Tag) int { return strings.Compare(*a.Key, *b.Key) }) {
				t.Fatalf("CreateTags tags not sorted: %v", tg)
			}
		}
	})
}

// TestRolloutBatchCapacityFallback: a batch refused for capacity is
// retried with the same ClientToken, then its members launch alone, each
// with its own token of the single-launch format and all its tags.
func TestRolloutBatchCapacityFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, m := newBatchMock(t)
		b.runErr = func(call int, in *ec2.RunInstancesInput) error {
			if aws.ToInt32(in.MaxCount) > 1 {
				return &smithy.GenericAPIError{Code: "InsufficientInstanceCapacity", Message: "no capacity"}
			}
			return nil
		}
		res, _, err := b.apply(t, m)
		if err != nil || len(res.Replaced) != 3 {
			t.Fatalf("apply: %v %v", res, err)
		}
		var batchCalls []string
		singles := 0
		for _, in := range b.runs {
			if aws.ToInt32(in.MaxCount) > 1 {
				batchCalls = append(batchCalls, aws.ToString(in.ClientToken))
				continue
			}
			singles++
			if !singleToken.MatchString(aws.ToString(in.ClientToken)) || tagMap(in.TagSpecifications[0].Tags)[lifecycle.TagReplaces] == "" {
				t.Fatalf("single launch %+v", in)
			}
		}
		// The first launch and 3 capacity retries, one token.
		if len(batchCalls) != 4 || slices.Compact(slices.Clone(batchCalls))[0] != batchCalls[0] || len(slices.Compact(batchCalls)) != 1 {
			t.Fatalf("batch calls %v", batchCalls)
		}
		if singles != 3 || len(b.tags) != 0 {
			t.Fatalf("%d single launches, %d CreateTags", singles, len(b.tags))
		}
	})
}

// TestRolloutResumesUntaggedBatchMember: a run stopped between a batch's
// launch and its tagging left a replacement without ec2ops:replaces. With
// no journal, the rerun finds it by ec2ops:batch-members at its launch
// index, adopts it (no second launch for its old instance), tags it and
// goes on.
func TestRolloutResumesUntaggedBatchMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, m := newBatchMock(t)
		const adopted = "i-0ccccccccccccccc2"
		b.batched = []types.Instance{{InstanceId: aws.String(adopted), AmiLaunchIndex: aws.Int32(1), ImageId: aws.String(newAMI),
			State: &types.InstanceState{Name: types.InstanceStateNameRunning},
			Tags: []types.Tag{{Key: aws.String("app"), Value: aws.String("web")}, {Key: aws.String(lifecycle.TagRollout), Value: aws.String("r1")},
				{Key: aws.String(lifecycle.TagBatch), Value: aws.String("ec2ops-bxyz")},
				{Key: aws.String(lifecycle.TagBatchMembers), Value: aws.String(strings.Join(batchOlds, ","))}}}}
		res, _, err := b.apply(t, m, func(o *lifecycle.RolloutOptions) { o.ID = "r1" })
		if err != nil || len(res.Replaced) != 3 || res.Replaced[batchOlds[1]] != adopted {
			t.Fatalf("apply: %v %v", res, err)
		}
		launched := 0
		for _, in := range b.runs {
			launched += int(aws.ToInt32(in.MaxCount))
			it := tagMap(in.TagSpecifications[0].Tags)
			if it[lifecycle.TagReplaces] == batchOlds[1] || strings.Contains(it[lifecycle.TagBatchMembers], batchOlds[1]) {
				t.Fatalf("%s launched again: %v", batchOlds[1], it)
			}
		}
		if launched != 2 {
			t.Fatalf("%d launched, want 2", launched)
		}
		var tagged bool
		for _, in := range b.tags {
			if in.Resources[0] == adopted {
				tg := tagMap(in.Tags)
				tagged = tg[lifecycle.TagReplaces] == batchOlds[1] && tg["Name"] == "web-2" && len(tg[lifecycle.TagSpec]) == 64
			}
		}
		if !tagged {
			t.Fatalf("adopted instance not tagged: %v", b.tags)
		}
	})
}
