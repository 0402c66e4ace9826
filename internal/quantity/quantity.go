// Package quantity parses the "count or percentage" values users give for
// MaxUnavailable, MaxSurge, MaxConcurrency, MaxErrors and wave sizes ("10",
// "10%"), with the rounding each use needs.
package quantity

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Quantity is an absolute count or a percentage of a total.
type Quantity struct {
	Value   float64
	Percent bool
}

// Count returns an absolute Quantity.
func Count(n int) Quantity { return Quantity{Value: float64(n)} }

// Percent returns a percentage Quantity.
func Percent(p float64) Quantity { return Quantity{Value: p, Percent: true} }

// Parse reads "N" (a whole count >= 0) or "P%" (a percentage 0..100, decimals
// allowed). Surrounding spaces are ignored; anything else is an error that
// says what is accepted.
func Parse(s string) (Quantity, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return Quantity{}, fmt.Errorf("empty: want a count like 5 or a percentage like 10%%")
	}
	if p, ok := strings.CutSuffix(t, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return Quantity{}, fmt.Errorf("%q is not a percentage: want a number from 0 to 100 followed by %%", s)
		}
		if v < 0 || v > 100 {
			return Quantity{}, fmt.Errorf("%q is out of range: a percentage must be from 0%% to 100%%", s)
		}
		return Percent(v), nil
	}
	n, err := strconv.ParseInt(t, 10, 32)
	if err != nil {
		return Quantity{}, fmt.Errorf("%q is not a count: want a whole number like 5 or a percentage like 10%%", s)
	}
	if n < 0 {
		return Quantity{}, fmt.Errorf("%q is negative: a count must be 0 or more", s)
	}
	return Count(int(n)), nil
}

// MustParse is Parse for constants in examples and tests; it panics on error.
func MustParse(s string) Quantity {
	q, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return q
}

// Floor resolves q against total, rounding a percentage down (as Kubernetes
// does for maxUnavailable: never take away more than asked). A count is
// capped at total.
func (q Quantity) Floor(total int) int {
	if !q.Percent {
		return min(int(q.Value), total)
	}
	return int(math.Floor(q.Value * float64(total) / 100))
}

// Ceil resolves q against total, rounding a percentage up (as Kubernetes
// does for maxSurge, and SSM for MaxConcurrency: a non-zero percentage of a
// non-empty set is at least one). A count is capped at total.
func (q Quantity) Ceil(total int) int {
	if !q.Percent {
		return min(int(q.Value), total)
	}
	return int(math.Ceil(q.Value*float64(total)/100 - 1e-9))
}

// IsZero reports whether q is 0 or 0%.
func (q Quantity) IsZero() bool { return q.Value == 0 }

// String renders q as Parse reads it.
func (q Quantity) String() string {
	if q.Percent {
		return strconv.FormatFloat(q.Value, 'f', -1, 64) + "%"
	}
	return strconv.Itoa(int(q.Value))
}
