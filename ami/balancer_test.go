package ami

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ec2ops/ec2ops"
)

// fleet is a typical web fleet: Amazon Linux, weekly patches, a JVM
// runtime, an application released a few times a week, configuration
// changed daily.
func fleet(launchesPerDay float64) BalancerInput {
	return BalancerInput{
		Layers: []BalancerLayer{
			{Layer: Layer{Name: "os"}, BakeMinutes: 0, BootMinutes: 0, ChangesPerWeek: 0.25, SizeGiB: 8},
			{Layer: Layer{Name: "patches", Commands: []string{"dnf -y upgrade --security"}}, BakeMinutes: 6, BootMinutes: 4, ChangesPerWeek: 1, SizeGiB: 1},
			{Layer: Layer{Name: "runtime", Commands: []string{"dnf -y install java-21-amazon-corretto-headless"}}, BakeMinutes: 3, BootMinutes: 2.5, ChangesPerWeek: 0.1, SizeGiB: 0.5},
			{Layer: Layer{Name: "app", Commands: []string{"aws s3 cp s3://artifacts/app.jar /opt/app/app.jar"}}, BakeMinutes: 1, BootMinutes: 1, ChangesPerWeek: 3, SizeGiB: 0.2},
			{Layer: Layer{Name: "config", UserData: "#cloud-config\nwrite_files: [{path: /etc/app.conf, content: 'x'}]\n"}, BakeMinutes: 0.5, BootMinutes: 0.5, ChangesPerWeek: 7},
		},
		LaunchesPerDay: launchesPerDay,
		BootSLOMinutes: 8,
		Regions:        []string{"eu-west-1"},
	}
}

func TestBalanceFlipsWithLaunches(t *testing.T) {
	few, err := Balance(fleet(2))
	if err != nil {
		t.Fatal(err)
	}
	many, err := Balance(fleet(500))
	if err != nil {
		t.Fatal(err)
	}
	if few.Strategy == many.Strategy || many.Cut <= few.Cut {
		t.Errorf("2 launches a day: %s; 500: %s; want more baked with more launches", few.Strategy, many.Strategy)
	}
	t.Logf("2/day: %s\n500/day: %s", few.Reason, many.Reason)
	for _, th := range few.Thresholds {
		t.Logf("  %s", th.Text)
	}
	// Every threshold is where the answer actually changes.
	for _, rec := range []Recommendation{few, many} {
		for _, th := range rec.Thresholds {
			p := paramByName(th.Input)
			base := fleet(2)
			if rec.Strategy == many.Strategy {
				base = fleet(500)
			}
			eps := 1e-3 * math.Max(th.Value, 1e-6)
			before, after := th.Value-eps, th.Value+eps
			if !th.Above {
				before, after = after, before
			}
			if got := strategyOf(p.set(base.withDefaults(), before)); got != rec.Strategy {
				t.Errorf("%s: just before %g the answer is %s, want %s", th.Text, before, got, rec.Strategy)
			}
			if got := strategyOf(p.set(base.withDefaults(), after)); got != th.Becomes {
				t.Errorf("%s: just past %g the answer is %s", th.Text, after, got)
			}
		}
	}
	var flip *Threshold
	for i, th := range few.Thresholds {
		if th.Input == "LaunchesPerDay" && th.Above {
			flip = &few.Thresholds[i]
		}
	}
	if flip == nil || flip.Value <= 2 || flip.Value >= 500 || !strings.Contains(flip.Text, "launches a day") {
		t.Errorf("no launches-per-day threshold between 2 and 500: %+v", few.Thresholds)
	}
}

func paramByName(n string) param {
	for _, p := range params {
		if p.name == n {
			return p
		}
	}
	panic(n)
}

func TestBalanceFormulas(t *testing.T) {
	in := BalancerInput{
		Layers: []BalancerLayer{
			{Layer: Layer{Name: "os"}, BakeMinutes: 2, BootMinutes: 0, ChangesPerWeek: 1},
			{Layer: Layer{Name: "app"}, BakeMinutes: 4, BootMinutes: 3, ChangesPerWeek: 2},
		},
		LaunchesPerDay: 10, BootSLOMinutes: 10, BaseBootMinutes: 1, BakeOverheadMinutes: 10,
	}
	rec, err := Balance(in)
	if err != nil {
		t.Fatal(err)
	}
	os, full := rec.Options[0], rec.Options[1]
	// OSOnly: 1 bake a week of 10+2 min; boot 1+3 min; 70 launches a week.
	if os.BuildsPerWeek != 1 || os.BuildHoursPerWeek != 12.0/60 || os.BootMinutes != 4 || math.Abs(os.InstanceHoursPerWeek-(0.2+70*4.0/60)) > 1e-12 {
		t.Errorf("OSOnly %+v", os)
	}
	// FullAMI: 3 bakes a week of 16 min; boot 1 min.
	if full.BuildsPerWeek != 3 || full.BuildHoursPerWeek != 48.0/60 || full.BootMinutes != 1 {
		t.Errorf("FullAMI %+v", full)
	}
	// Staleness: OSOnly 1 change of 3 waits 12 min; FullAMI every change waits 16.
	if math.Abs(os.StalenessMinutes-4) > 1e-12 || math.Abs(full.StalenessMinutes-16) > 1e-12 {
		t.Errorf("staleness %g %g", os.StalenessMinutes, full.StalenessMinutes)
	}
	if rec.Strategy != "FullAMI" || rec.ObjectiveUnit != "instance-hours" {
		t.Errorf("rec %s %s", rec.Strategy, rec.ObjectiveUnit)
	}
	in.Prices = Prices{InstanceHour: 0.1, BuilderHour: 10}
	priced, _ := Balance(in)
	if priced.ObjectiveUnit != "cost" || priced.Strategy != "OSOnly" {
		t.Errorf("expensive builders: %s (%s)", priced.Strategy, priced.Reason)
	}
}

func TestBalanceInfeasibleAndRecipe(t *testing.T) {
	in := fleet(100)
	in.BootSLOMinutes = 0.5
	_, err := Balance(in)
	var ie *InfeasibleError
	if !errors.As(err, &ie) || ie.FastestBootMinutes != 1 || !errors.Is(err, ec2ops.ErrInvalidInput) {
		t.Fatalf("infeasible: %v", err)
	}
	rec, err := Balance(fleet(50))
	if err != nil {
		t.Fatal(err)
	}
	r := rec.Recipe("ami-0123456789abcdef0", "web-{date}-{bake}", "web")
	if len(r.Layers) != rec.Cut || r.Layers[0].Name != "os" {
		t.Errorf("recipe layers %+v for cut %d", r.Layers, rec.Cut)
	}
	ud, err := rec.BootUserData()
	if err != nil {
		t.Fatal(err)
	}
	if rec.Cut < 5 && !strings.Contains(ud, "write_files") {
		t.Errorf("boot user data lacks the config layer: %q", ud)
	}
	if err := r.validate(true); err != nil {
		t.Errorf("recipe is not bakeable: %v", err)
	}
}

func FuzzBalancerInput(f *testing.F) {
	f.Add(2, 1.5, 3.0, 0.5, 10.0, 5.0, 0.0, 1, "eu-west-1")
	f.Add(5, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0, "")
	f.Add(1, math.NaN(), 1.0, 1.0, 1.0, 1.0, 1.0, 3, "x")
	f.Add(70, 1e308, -1.0, 1e-300, math.Inf(1), 2.0, 0.1, -1, "us-east-1")
	f.Fuzz(func(t *testing.T, n int, bake, boot, rate, launches, slo, price float64, kept int, region string) {
		if n < 0 || n > 100 {
			n %= 101
			if n < 0 {
				n = -n
			}
		}
		in := BalancerInput{LaunchesPerDay: launches, BootSLOMinutes: slo, ImagesKept: kept, Prices: Prices{InstanceHour: price}}
		if region != "" {
			in.Regions = []string{region}
		}
		for i := range n {
			in.Layers = append(in.Layers, BalancerLayer{Layer: Layer{Name: string(rune('a'+i%26)) + strings.Repeat("x", i/26)},
				BakeMinutes: bake * float64(i+1), BootMinutes: boot, ChangesPerWeek: rate})
		}
		rec, err := Balance(in)
		if err != nil {
			if !errors.Is(err, ec2ops.ErrInvalidInput) {
				t.Fatalf("error %v is not an input error", err)
			}
			return
		}
		if rec.Cut < 1 || rec.Cut > n || !rec.Feasible || rec.BootMinutes > slo*(1+1e-9) || math.IsNaN(rec.Objective) {
			t.Fatalf("inconsistent recommendation %+v for %+v", rec.CutOption, in)
		}
		again, _ := Balance(in)
		if again.Strategy != rec.Strategy || len(again.Thresholds) != len(rec.Thresholds) {
			t.Fatalf("not deterministic")
		}
	})
}

func BenchmarkBalance(b *testing.B) {
	in := fleet(40)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Balance(in); err != nil {
			b.Fatal(err)
		}
	}
}
