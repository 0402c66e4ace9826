package ami

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/ec2ops/ec2ops"
)

// BalancerLayer is one layer of the machine with its costs. Layers are
// ordered from the bottom (the OS) up: a cut bakes a prefix of them.
type BalancerLayer struct {
	// Layer is the content (name, user data, commands) the recommendation
	// turns into a bake recipe or boot-time user data.
	Layer
	// BakeMinutes is the time to apply the layer on a builder.
	BakeMinutes float64
	// BootMinutes is the time to apply it at boot, on every launch.
	BootMinutes float64
	// ChangesPerWeek is how often the layer changes (a new OS patch, a
	// release of the application, ...). A change to a baked layer means a
	// new bake.
	ChangesPerWeek float64
	// SizeGiB is what the layer adds to the image (for storage and copy
	// costs); optional.
	SizeGiB float64
}

// BalancerInput describes a fleet's machine and how it launches.
type BalancerInput struct {
	// Layers, bottom (OS) first; at least one.
	Layers []BalancerLayer
	// LaunchesPerDay is how many instances start a day (scaling,
	// replacement, recovery).
	LaunchesPerDay float64
	// BootSLOMinutes is the most minutes a launch may take to be in service.
	BootSLOMinutes float64
	// BaseBootMinutes is the time from launch to a booted OS, before any
	// boot-time layer. Default 1 (AWS-FACTS.md "Latencies": pending ->
	// running 5-17 s, to SSH about 26 s; status checks 1-3 min).
	BaseBootMinutes float64
	// BakeOverheadMinutes is the fixed cost of one bake: launching the
	// builder, creating the image. Default 10 (AWS-FACTS.md: Packer and
	// Aminator bakes take about 10 minutes).
	BakeOverheadMinutes float64
	// Regions the image is copied to after each bake.
	Regions []string
	// CopyMinutes is how long a copy to another Region takes (the copies
	// run in parallel). Default 20.
	CopyMinutes float64
	// ImagesKept is how many images of the family retention keeps per
	// Region (storage). Default 3.
	ImagesKept int
	// Prices, when any is set, make the objective the weekly cost in
	// dollars; otherwise it is the weekly instance-hours spent building
	// and booting.
	Prices Prices
}

// Prices are unit prices (any currency, consistently).
type Prices struct {
	// InstanceHour is the hourly price of a fleet instance: boot time is
	// paid before the instance serves.
	InstanceHour float64
	// BuilderHour is the hourly price of the builder; zero means
	// InstanceHour.
	BuilderHour float64
	// SnapshotGiBMonth is the price of a GiB-month of snapshot storage.
	SnapshotGiBMonth float64
	// CopyGiB is the price of a GiB copied between Regions.
	CopyGiB float64
}

func (p Prices) any() bool {
	return p.InstanceHour > 0 || p.BuilderHour > 0 || p.SnapshotGiBMonth > 0 || p.CopyGiB > 0
}

// CutOption is the figures of one cut point.
type CutOption struct {
	// Cut bakes layers 1..Cut and installs the rest at boot.
	Cut      int
	Strategy string
	// Feasible: BootMinutes meets the SLO.
	Feasible bool
	// BuildsPerWeek is the expected number of bakes (a bake per change of
	// a baked layer).
	BuildsPerWeek float64
	// BuildHoursPerWeek is BuildsPerWeek times the bake duration.
	BuildHoursPerWeek float64
	// BootMinutes is the time from launch to in service.
	BootMinutes float64
	// StalenessMinutes is the expected delay between a change and the
	// first launch that has it, over all changes.
	StalenessMinutes float64
	// InstanceHoursPerWeek is build hours plus boot hours.
	InstanceHoursPerWeek float64
	// WeeklyCost is in Prices' currency (zero without prices).
	WeeklyCost float64
	// Objective is the value minimized: WeeklyCost with prices,
	// InstanceHoursPerWeek without.
	Objective float64
}

// Threshold is an input value at which the recommendation flips.
type Threshold struct {
	// Input is "LaunchesPerDay", "ChangeRate" (a factor on every layer's
	// ChangesPerWeek) or "BootSLOMinutes".
	Input string
	// Value is where the answer flips; Above reports whether the new
	// answer holds above Value (or below).
	Value float64
	Above bool
	// Becomes is the strategy past Value ("infeasible" when no cut meets
	// the SLO).
	Becomes string
	// Text says it in words, e.g. "becomes FullAMI above 41.3 launches a day".
	Text string
}

// Recommendation is the Balancer's answer.
type Recommendation struct {
	CutOption
	// Baked and AtBoot name the layers of each side of the cut.
	Baked, AtBoot []string
	// ObjectiveUnit is "cost" or "instance-hours".
	ObjectiveUnit string
	// Reason says why, in words.
	Reason string
	// Thresholds are the input values where the answer changes.
	Thresholds []Threshold
	// Options are the figures of every cut, 1..len(Layers).
	Options []CutOption

	layers []BalancerLayer
}

// InfeasibleError says no cut meets the boot SLO; FastestBootMinutes is
// the boot time of the full AMI, the fastest possible. It matches
// ec2ops.ErrInvalidInput.
type InfeasibleError struct {
	SLOMinutes, FastestBootMinutes float64
}

func (e *InfeasibleError) Error() string {
	return fmt.Sprintf("no cut meets the %.3g-minute boot SLO: the fastest possible boot (everything baked) takes %.3g minutes; raise BootSLOMinutes to at least %.3g or shorten BaseBootMinutes", e.SLOMinutes, e.FastestBootMinutes, e.FastestBootMinutes)
}

// Is makes errors.Is(err, ec2ops.ErrInvalidInput) true.
func (e *InfeasibleError) Is(target error) bool { return target == ec2ops.ErrInvalidInput }

// maxBalancerLayers bounds the input (the search is exhaustive over cuts).
const maxBalancerLayers = 64

var balancerRegionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

func finiteNonNeg(field string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return ec2ops.InvalidInput(field, fmt.Sprint(v), "must be a finite number >= 0", "give a non-negative number")
	}
	return nil
}

// Validate checks the input and reports the first problem as an
// *ec2ops.InputError.
func (in BalancerInput) Validate() error {
	if len(in.Layers) == 0 || len(in.Layers) > maxBalancerLayers {
		return ec2ops.InvalidInput("Layers", fmt.Sprint(len(in.Layers)), fmt.Sprintf("need 1 to %d layers", maxBalancerLayers), "list the layers bottom (OS) first")
	}
	seen := map[string]bool{}
	for i, l := range in.Layers {
		f := fmt.Sprintf("Layers[%d]", i)
		if l.Name == "" || seen[l.Name] {
			return ec2ops.InvalidInput(f+".Name", l.Name, "empty or repeated", "give each layer a distinct name")
		}
		seen[l.Name] = true
		for _, x := range []struct {
			n string
			v float64
		}{{".BakeMinutes", l.BakeMinutes}, {".BootMinutes", l.BootMinutes}, {".ChangesPerWeek", l.ChangesPerWeek}, {".SizeGiB", l.SizeGiB}} {
			if err := finiteNonNeg(f+x.n, x.v); err != nil {
				return err
			}
		}
	}
	for _, x := range []struct {
		n string
		v float64
	}{{"LaunchesPerDay", in.LaunchesPerDay}, {"BaseBootMinutes", in.BaseBootMinutes}, {"BakeOverheadMinutes", in.BakeOverheadMinutes},
		{"CopyMinutes", in.CopyMinutes}, {"Prices.InstanceHour", in.Prices.InstanceHour}, {"Prices.BuilderHour", in.Prices.BuilderHour},
		{"Prices.SnapshotGiBMonth", in.Prices.SnapshotGiBMonth}, {"Prices.CopyGiB", in.Prices.CopyGiB}} {
		if err := finiteNonNeg(x.n, x.v); err != nil {
			return err
		}
	}
	if math.IsNaN(in.BootSLOMinutes) || math.IsInf(in.BootSLOMinutes, 0) || in.BootSLOMinutes <= 0 {
		return ec2ops.InvalidInput("BootSLOMinutes", fmt.Sprint(in.BootSLOMinutes), "must be a finite number > 0", "give the most minutes a launch may take to be in service")
	}
	if in.ImagesKept < 0 {
		return ec2ops.InvalidInput("ImagesKept", fmt.Sprint(in.ImagesKept), "negative", "use 0 for the default (3)")
	}
	rs := map[string]bool{}
	for i, r := range in.Regions {
		if !balancerRegionRE.MatchString(r) || rs[r] {
			return ec2ops.InvalidInput(fmt.Sprintf("Regions[%d]", i), r, "not a Region name, or repeated", `list distinct Regions such as "eu-west-1"`)
		}
		rs[r] = true
	}
	return nil
}

func (in BalancerInput) withDefaults() BalancerInput {
	if in.BaseBootMinutes == 0 {
		in.BaseBootMinutes = 1
	}
	if in.BakeOverheadMinutes == 0 {
		in.BakeOverheadMinutes = 10
	}
	if in.CopyMinutes == 0 {
		in.CopyMinutes = 20
	}
	if in.ImagesKept == 0 {
		in.ImagesKept = 3
	}
	if in.Prices.BuilderHour == 0 {
		in.Prices.BuilderHour = in.Prices.InstanceHour
	}
	return in
}

func strategyName(k, n int) string {
	switch {
	case k == n:
		return "FullAMI"
	case k == 1:
		return "OSOnly"
	}
	return fmt.Sprintf("Hybrid(%d)", k)
}

// weeksPerMonth converts monthly storage prices: 365.25/12/7.
const weeksPerMonth = 365.25 / 12 / 7

// evaluate computes every cut's figures (see doc.go for the formulas).
func evaluate(in BalancerInput) []CutOption {
	n := len(in.Layers)
	var totalChanges float64
	for _, l := range in.Layers {
		totalChanges += l.ChangesPerWeek
	}
	copyMin := 0.0
	if len(in.Regions) > 0 {
		copyMin = in.CopyMinutes
	}
	withPrices := in.Prices.any()
	out := make([]CutOption, n)
	var bakeMin, rate, size, bootAll float64
	for _, l := range in.Layers {
		bootAll += l.BootMinutes
	}
	boot := in.BaseBootMinutes + bootAll
	for k := 1; k <= n; k++ {
		l := in.Layers[k-1]
		bakeMin += l.BakeMinutes
		rate += l.ChangesPerWeek
		size += l.SizeGiB
		boot -= l.BootMinutes
		bake := in.BakeOverheadMinutes + bakeMin
		o := CutOption{Cut: k, Strategy: strategyName(k, n)}
		o.BootMinutes = math.Max(boot, in.BaseBootMinutes) // guard rounding
		o.Feasible = o.BootMinutes <= in.BootSLOMinutes*(1+1e-12)
		o.BuildsPerWeek = rate
		o.BuildHoursPerWeek = rate * bake / 60
		if totalChanges > 0 {
			o.StalenessMinutes = rate * (bake + copyMin) / totalChanges
		}
		bootHours := in.LaunchesPerDay * 7 * o.BootMinutes / 60
		o.InstanceHoursPerWeek = o.BuildHoursPerWeek + bootHours
		regions := float64(1 + len(in.Regions))
		o.WeeklyCost = o.BuildHoursPerWeek*in.Prices.BuilderHour + bootHours*in.Prices.InstanceHour +
			float64(in.ImagesKept)*size*regions*in.Prices.SnapshotGiBMonth/weeksPerMonth +
			rate*size*float64(len(in.Regions))*in.Prices.CopyGiB
		o.Objective = o.InstanceHoursPerWeek
		if withPrices {
			o.Objective = o.WeeklyCost
		}
		out[k-1] = o
	}
	return out
}

// choose returns the index of the best feasible option, or -1. Ties (within
// a relative 1e-9) go to the smaller cut: less to bake, fresher images.
func choose(opts []CutOption) int {
	best := -1
	for i, o := range opts {
		if !o.Feasible {
			continue
		}
		if best < 0 || o.Objective < opts[best].Objective-1e-9*math.Max(1, math.Abs(opts[best].Objective)) {
			best = i
		}
	}
	return best
}

func strategyOf(in BalancerInput) string {
	opts := evaluate(in)
	if i := choose(opts); i >= 0 {
		return opts[i].Strategy
	}
	return "infeasible"
}

// Balance recommends where to cut the layers: bake 1..k into the image,
// install k+1..L at boot. It picks the feasible cut (boot time within the
// SLO) with the least weekly cost (with Prices) or instance-hours
// (without), and finds the input values where the answer flips. It is pure
// and deterministic. An SLO that no cut meets is an *InfeasibleError with
// the fastest possible boot.
func Balance(in BalancerInput) (Recommendation, error) {
	if err := in.Validate(); err != nil {
		return Recommendation{}, err
	}
	in = in.withDefaults()
	opts := evaluate(in)
	i := choose(opts)
	if i < 0 {
		return Recommendation{}, &InfeasibleError{SLOMinutes: in.BootSLOMinutes, FastestBootMinutes: opts[len(opts)-1].BootMinutes}
	}
	rec := Recommendation{CutOption: opts[i], Options: opts, ObjectiveUnit: "instance-hours", layers: slices.Clone(in.Layers)}
	if in.Prices.any() {
		rec.ObjectiveUnit = "cost"
	}
	for j, l := range in.Layers {
		if j < rec.Cut {
			rec.Baked = append(rec.Baked, l.Name)
		} else {
			rec.AtBoot = append(rec.AtBoot, l.Name)
		}
	}
	rec.Thresholds = thresholds(in, rec.Strategy)
	rec.Reason = reason(in, rec)
	return rec, nil
}

func reason(in BalancerInput, rec Recommendation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s bakes %s", rec.Strategy, strings.Join(rec.Baked, ", "))
	if len(rec.AtBoot) > 0 {
		fmt.Fprintf(&b, " and installs %s at boot", strings.Join(rec.AtBoot, ", "))
	}
	fmt.Fprintf(&b, ": boot %.3g min (SLO %.3g), %.3g bakes a week (%.3g build hours), %.3g boot hours a week for %.3g launches a day",
		rec.BootMinutes, in.BootSLOMinutes, rec.BuildsPerWeek, rec.BuildHoursPerWeek, in.LaunchesPerDay*7*rec.BootMinutes/60, in.LaunchesPerDay)
	unit := "instance-hours"
	if rec.ObjectiveUnit == "cost" {
		unit = "a week in cost"
	}
	var infeasible []string
	nextBest := -1
	for j, o := range rec.Options {
		if !o.Feasible {
			infeasible = append(infeasible, o.Strategy)
			continue
		}
		if o.Cut != rec.Cut && (nextBest < 0 || o.Objective < rec.Options[nextBest].Objective) {
			nextBest = j
		}
	}
	if nextBest >= 0 {
		nb := rec.Options[nextBest]
		fmt.Fprintf(&b, "; the next best, %s, costs %.3g more %s", nb.Strategy, nb.Objective-rec.Objective, unit)
	}
	if len(infeasible) > 0 {
		verb := "misses"
		if len(infeasible) > 1 {
			verb = "miss"
		}
		fmt.Fprintf(&b, "; %s %s the boot SLO", strings.Join(infeasible, ", "), verb)
	}
	return b.String()
}

// param is an input the thresholds vary.
type param struct {
	name, unit string
	get        func(BalancerInput) float64
	set        func(BalancerInput, float64) BalancerInput
}

var params = []param{
	{"LaunchesPerDay", "launches a day",
		func(in BalancerInput) float64 { return in.LaunchesPerDay },
		func(in BalancerInput, v float64) BalancerInput { in.LaunchesPerDay = v; return in }},
	{"ChangeRate", "x the given change rates",
		func(BalancerInput) float64 { return 1 },
		func(in BalancerInput, v float64) BalancerInput {
			ls := slices.Clone(in.Layers)
			for i := range ls {
				ls[i].ChangesPerWeek *= v
			}
			in.Layers = ls
			return in
		}},
	{"BootSLOMinutes", "minutes of boot SLO",
		func(in BalancerInput) float64 { return in.BootSLOMinutes },
		func(in BalancerInput, v float64) BalancerInput { in.BootSLOMinutes = v; return in }},
}

// thresholds finds, for each param, the nearest value above and below the
// current one where the strategy changes: it scans a geometric grid (x2
// per step, 30 steps each way) from the current value and bisects the
// first bracket to a relative precision of 1e-6. The answer is piecewise
// constant in each input, so the nearest flip on each side is exact to
// that precision; flips closer together than a factor of 2 beyond the
// first are not reported.
func thresholds(in BalancerInput, current string) []Threshold {
	var out []Threshold
	for _, p := range params {
		x0 := p.get(in)
		for _, up := range []bool{true, false} {
			if !up && x0 == 0 {
				continue
			}
			lo, hi, other, found := x0, x0, "", false
			for step := 1; step <= 30; step++ {
				var x float64
				switch {
				case up && x0 == 0:
					x = math.Ldexp(1e-3, step)
				case up:
					x = x0 * math.Ldexp(1, step)
				default:
					x = x0 / math.Ldexp(1, step)
				}
				if s := strategyOf(p.set(in, x)); s != current {
					hi, other, found = x, s, true
					break
				}
				lo = x
			}
			if !found {
				continue
			}
			for range 80 {
				mid := (lo + hi) / 2
				if math.Abs(hi-lo) <= 1e-6*math.Max(math.Abs(mid), 1e-9) {
					break
				}
				if s := strategyOf(p.set(in, mid)); s == current {
					lo = mid
				} else {
					hi, other = mid, s
				}
			}
			v := (lo + hi) / 2
			dir := "above"
			if !up {
				dir = "below"
			}
			t := Threshold{Input: p.name, Value: v, Above: up, Becomes: other}
			switch p.name {
			case "ChangeRate":
				t.Text = fmt.Sprintf("becomes %s %s %.3gx the given change rates", other, dir, v)
			default:
				t.Text = fmt.Sprintf("becomes %s %s %.3g %s", other, dir, v, p.unit)
			}
			out = append(out, t)
		}
	}
	return out
}

// Recipe returns the bake recipe of the recommendation: the baked layers
// on top of base, named by the name template.
func (r Recommendation) Recipe(base, name, family string) Recipe {
	rec := Recipe{Name: name, Family: family, BaseImage: base}
	for _, l := range r.layers[:r.Cut] {
		rec.Layers = append(rec.Layers, l.Layer)
	}
	return rec
}

// NeedsBake reports whether the baked layers have content (an OSOnly cut
// whose OS layer is the vendor image as it is needs no bake: launch the
// base image).
func (r Recommendation) NeedsBake() bool {
	for _, l := range r.layers[:r.Cut] {
		if !l.empty() {
			return true
		}
	}
	return false
}

// BootUserData returns the cloud-init user data that installs the
// boot-time layers (see UserData), "" when everything is baked.
func (r Recommendation) BootUserData() (string, error) {
	var ls []Layer
	for _, l := range r.layers[r.Cut:] {
		ls = append(ls, l.Layer)
	}
	return UserData(ls)
}
