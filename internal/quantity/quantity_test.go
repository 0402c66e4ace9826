package quantity

import (
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Quantity
		wantErr bool
	}{
		{"5", Count(5), false},
		{" 10% ", Percent(10), false},
		{"0", Count(0), false},
		{"0%", Percent(0), false},
		{"100%", Percent(100), false},
		{"12.5%", Percent(12.5), false},
		{"101%", Quantity{}, true},
		{"-1", Quantity{}, true},
		{"-5%", Quantity{}, true},
		{"", Quantity{}, true},
		{"%", Quantity{}, true},
		{"ten", Quantity{}, true},
		{"1.5", Quantity{}, true},
		{"NaN%", Quantity{}, true},
		{"Inf%", Quantity{}, true},
		{"99999999999", Quantity{}, true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("Parse(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		q           string
		total       int
		floor, ceil int
	}{
		{"10%", 1000, 100, 100},
		{"10%", 5, 0, 1},
		{"25%", 10, 2, 3},
		{"100%", 7, 7, 7},
		{"3", 10, 3, 3},
		{"30", 10, 10, 10},
		{"0%", 10, 0, 0},
		{"1%", 0, 0, 0},
		{"10%", 30, 3, 3}, // float error must not round 3.0000000004 up
	}
	for _, tt := range tests {
		q := MustParse(tt.q)
		if f, c := q.Floor(tt.total), q.Ceil(tt.total); f != tt.floor || c != tt.ceil {
			t.Errorf("%s of %d: floor %d ceil %d, want %d %d", tt.q, tt.total, f, c, tt.floor, tt.ceil)
		}
	}
}

func TestStringRoundTrip(t *testing.T) {
	for _, s := range []string{"5", "10%", "12.5%", "0"} {
		if got := MustParse(s).String(); got != s {
			t.Errorf("String(%s) = %s", s, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"5", "10%", " 7 ", "100%", "-1", "1e3%", "0x10", "%", "50 %"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s)
		if err != nil {
			return
		}
		if q.Value < 0 || (q.Percent && q.Value > 100) {
			t.Fatalf("Parse(%q) accepted out-of-range %v", s, q)
		}
		for _, total := range []int{0, 1, 7, 1000} {
			f, c := q.Floor(total), q.Ceil(total)
			if f < 0 || c < f || c > total {
				t.Fatalf("%v of %d: floor %d ceil %d", q, total, f, c)
			}
		}
		if back, err := Parse(q.String()); err != nil || back != q {
			t.Fatalf("round trip of %q: %v -> %q -> %v, %v", s, q, q.String(), back, err)
		}
	})
}
