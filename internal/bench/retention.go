package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/ami"
	"github.com/ec2ops/ec2ops/internal/awserr"
	"github.com/ec2ops/ec2ops/internal/baseline"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
)

// RetentionParams sizes the AMI retention scenario (S5).
type RetentionParams struct {
	ID, Title string
	Images    int // spread over Families families
	Families  int
	Instances int // launched from InUse images of each family
	InUse     int // images of each family instances use (half the newest, half old)
	Seed      int64
}

const (
	keepNewest = 10
	keepAge    = 30 * 24 * time.Hour
	imageEvery = 6 * time.Hour
)

// retentionSim registers the images (family f, image j created
// (per-j)*6h ago), launches the instances from the in-use images and
// returns the image IDs by family, oldest first.
func retentionSim(ctx context.Context, p RetentionParams) (*cloudsim.Sim, [][]string, error) {
	// Six AZs: a default subnet holds 4,091 addresses, 20,000 instances need five.
	sim := cloudsim.New(func(o *cloudsim.Options) {
		o.Seed = p.Seed
		o.AZs = []string{"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"}
	})
	per := p.Images / p.Families
	now := time.Now()
	fams := make([][]string, p.Families)
	for f := range p.Families {
		for j := range per {
			fams[f] = append(fams[f], sim.AddImage(cloudsim.AddImageInput{Name: fmt.Sprintf("app%d-%04d", f, j),
				Created: now.Add(-time.Duration(per-j) * imageEvery)}))
		}
	}
	var used []string
	for f := range p.Families {
		half := p.InUse / 2
		for i := range half { // old ones, spread over the family's history
			used = append(used, fams[f][(i*2+1)*per/(2*half+2)])
		}
		for i := range p.InUse - half { // among the newest
			used = append(used, fams[f][per-1-i])
		}
	}
	each := max(1, p.Instances/len(used))
	for i, im := range used {
		if _, err := launchFleet(ctx, sim, each, im, map[string]string{"Role": "app"}, fmt.Sprint("img-", i), i); err != nil {
			return nil, nil, err
		}
	}
	time.Sleep(10 * time.Minute)
	sim.ResetCounters()
	return sim, fams, nil
}

// retentionState counts deregistered images that are in use (failures)
// and snapshots left behind by deregistered images (orphans).
func retentionState(sim *cloudsim.Sim, fams [][]string) (inUse, snaps, deregistered int) {
	inUse = len(sim.DeregisteredInUse())
	for _, f := range fams {
		for _, id := range f {
			if st, _ := sim.ImageState(id); st != "deregistered" {
				continue
			}
			deregistered++
			for _, alive := range sim.ImageSnapshots(id) {
				if alive {
					snaps++
				}
			}
		}
	}
	return
}

// Retention measures image retention over Images images and Instances
// instances: the library's Retention (Plan then Apply), then
// baseline.Retain on a fresh simulator with the same seed.
func Retention(ctx context.Context, p RetentionParams) (Result, error) {
	res := Result{ID: p.ID, Title: p.Title, N: p.Images,
		Params: fmt.Sprintf("%d images in %d families (one every 6 h), %d instances launched from %d images of each family (half among the newest, half old ones); policy: keep the %d newest and those younger than 30 days, deregister the rest with their snapshots unless in use; seed %d; per-instance figures divide by the number of images",
			p.Images, p.Families, p.Instances, p.InUse, keepNewest, p.Seed),
		Formula: "T >= (D - 100) / 5 s, D the images to deregister: each needs one DeregisterImage call (the snapshots can go in the " +
			"same call, DeleteAssociatedSnapshots), whose bucket holds 100 and refills 5 a second. Listing the images and the " +
			"instances that use them (a few dozen paginated calls) fits in the other buckets' bursts and is left out."}

	sim, fams, err := retentionSim(ctx, p)
	if err != nil {
		return res, err
	}
	var families []ami.Family
	var prefixes []string
	for f := range p.Families {
		prefix := fmt.Sprintf("app%d-", f)
		prefixes = append(prefixes, prefix)
		families = append(families, ami.Family{Name: prefix, NamePrefix: prefix, KeepNewest: keepNewest, KeepYoungerThan: keepAge, DeregisterAfter: keepAge})
	}
	r := ami.NewRetention(sim.EC2(), sim.AutoScaling(), families)
	start := time.Now()
	plan, err := r.Plan(ctx)
	if err != nil {
		return res, fmt.Errorf("library retention plan: %w", err)
	}
	_, err = r.Apply(ctx, plan)
	res.Lib.Makespan = time.Since(start)
	var perr *ec2ops.ProgressError
	switch {
	case errors.As(err, &perr):
		res.Lib.Failures += len(perr.Failed)
		for _, e := range perr.Failed {
			if awserr.IsThrottle(e) {
				res.Lib.Surfaced++
			}
		}
	case err != nil:
		return res, fmt.Errorf("library retention apply: %w", err)
	}
	d := plan.Counts()[ami.Deregister]
	bound := time.Duration(max(0, d-100)) * time.Second / 5
	res.Lib.Calls, res.Lib.Throttled = sim.Calls(), sum(sim.Throttled())
	inUse, snaps, dereg := retentionState(sim, fams)
	res.Lib.Failures += inUse
	res.Lib.Orphans, res.Lib.Done = snaps, dereg
	res.Lib.MinHealthy = -1
	res.Lib.Bound, res.Lib.BoundTerms = bound, fmt.Sprintf("D = %d, (D-100)/5 s = %.1f s", d, bound.Seconds())
	res.Lib.Note = fmt.Sprintf("%d images deregistered, %d in use deregistered, %d snapshots of deregistered images left", dereg, inUse, snaps)

	sim, fams, err = retentionSim(ctx, p)
	if err != nil {
		return res, err
	}
	nr := baseline.Retain(ctx, sim.EC2(), prefixes, keepNewest, keepAge)
	res.Naive.Makespan = nr.Makespan
	res.Naive.Calls, res.Naive.Throttled = sim.Calls(), sum(sim.Throttled())
	inUse, snaps, dereg = retentionState(sim, fams)
	res.Naive.Surfaced, res.Naive.Failures, res.Naive.Orphans = nr.Surfaced, len(nr.Failed)+inUse, snaps
	res.Naive.MinHealthy, res.Naive.Done = -1, dereg
	nb := time.Duration(max(0, nr.Deregistered-100)) * time.Second / 5
	res.Naive.Bound, res.Naive.BoundTerms = nb, fmt.Sprintf("D = %d, (D-100)/5 s = %.1f s", nr.Deregistered, nb.Seconds())
	res.Naive.Note = fmt.Sprintf("%d images deregistered, %d snapshots deleted, %d kept in use, %d failed", nr.Deregistered, nr.SnapshotsDeleted, nr.InUse, len(nr.Failed))
	return res, nil
}
