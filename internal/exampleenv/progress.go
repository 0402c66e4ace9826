package exampleenv

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ec2ops/ec2ops"
)

// IsTerminal reports whether f is a character device (a terminal), the
// test the examples use to choose the live view over plain lines.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Progress turns ec2ops events into output: on a terminal (Live) a compact
// view of one line per operation, redrawn in place with ANSI escapes at
// most every RedrawEvery; otherwise plain lines, one when an operation
// changes phase or passes another quarter of its total, and one per
// error. It is an ec2ops.Observer and safe for concurrent use.
type Progress struct {
	W           io.Writer
	Live        bool
	RedrawEvery time.Duration
	// Elapsed returns the simulated time shown on each line.
	Elapsed func() time.Duration

	mu       sync.Mutex
	rows     map[string]*row
	order    []string
	drawn    int // lines of the live view on screen
	lastDraw time.Time
}

type row struct {
	op, phase, resource string
	done, total         int
	errs                int
	quarter             int
	seen                map[string]bool // phases printed (plain mode)
}

// NewProgress returns a Progress writing to w.
func NewProgress(w io.Writer, live bool, elapsed func() time.Duration) *Progress {
	return &Progress{W: w, Live: live, RedrawEvery: 100 * time.Millisecond, Elapsed: elapsed, rows: map[string]*row{}}
}

// Observe implements ec2ops.Observer.
func (p *Progress) Observe(e ec2ops.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	op := e.Operation
	if op == "" {
		op = "-"
	}
	r := p.rows[op]
	if r == nil {
		r = &row{op: op}
		p.rows[op] = r
		p.order = append(p.order, op)
	}
	phaseChanged := e.Phase != "" && e.Phase != r.phase
	newPhase := e.Phase != "" && !r.seen[e.Phase]
	if newPhase {
		if r.seen == nil {
			r.seen = map[string]bool{}
		}
		r.seen[e.Phase] = true
	}
	if e.Phase != "" {
		r.phase = e.Phase
	}
	if e.Resource != "" {
		r.resource = e.Resource
	}
	if e.Total > 0 {
		r.total = e.Total
		if e.Done >= r.done || phaseChanged {
			r.done = e.Done
		}
	}
	if e.Err != nil {
		r.errs++
	}
	if p.Live {
		if e.Err != nil || time.Since(p.lastDraw) >= p.RedrawEvery {
			p.redraw()
		}
		return
	}
	switch {
	case e.Err != nil:
		fmt.Fprintf(p.W, "  %-12s %s %s: %v\n", op, e.Phase, e.Resource, e.Err)
	case newPhase:
		if r.total > 0 {
			r.quarter = r.done * 4 / r.total
		}
		fmt.Fprintf(p.W, "  %s\n", p.line(r))
	case r.total > 0 && r.done*4/r.total > r.quarter:
		r.quarter = r.done * 4 / r.total
		fmt.Fprintf(p.W, "  %s\n", p.line(r))
	}
}

func (p *Progress) line(r *row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %-22s", r.op, trunc(r.phase, 22))
	if r.total > 0 {
		n := min(20, r.done*20/r.total)
		fmt.Fprintf(&b, " [%s%s] %4d/%-4d", strings.Repeat("#", n), strings.Repeat(".", 20-n), r.done, r.total)
	} else {
		fmt.Fprintf(&b, " %-32s", trunc(r.resource, 32))
	}
	if r.errs > 0 {
		fmt.Fprintf(&b, " %d error(s)", r.errs)
	}
	if p.Elapsed != nil {
		fmt.Fprintf(&b, "  t+%s", p.Elapsed())
	}
	return b.String()
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n-1] + "~"
	}
	return s
}

// redraw rewrites the live view (lock held).
func (p *Progress) redraw() {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	for _, op := range p.order {
		fmt.Fprintf(&b, "\x1b[2K  %s\n", p.line(p.rows[op]))
	}
	p.drawn = len(p.order)
	p.lastDraw = time.Now()
	io.WriteString(p.W, b.String())
}

// Println prints a line above the live view (or a plain line), keeping
// the view in place below it.
func (p *Progress) Println(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Live && p.drawn > 0 {
		fmt.Fprintf(p.W, "\x1b[%dA\x1b[J", p.drawn)
		p.drawn = 0
	}
	fmt.Fprintf(p.W, format+"\n", args...)
	if p.Live && len(p.order) > 0 {
		p.redraw()
	}
}

// Done freezes the live view as it stands (its lines stay on screen) and
// starts a new one: the next events draw below it. In plain mode it only
// forgets the rows.
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Live && len(p.order) > 0 {
		p.redraw()
	}
	p.rows, p.order, p.drawn = map[string]*row{}, nil, 0
}

// CallTable renders call counts by operation, most first, a few per line.
func CallTable(calls map[string]int) string {
	type kv struct {
		k string
		v int
	}
	var all []kv
	total := 0
	for k, v := range calls {
		if v > 0 {
			all = append(all, kv{k, v})
			total += v
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].v != all[j].v {
			return all[i].v > all[j].v
		}
		return all[i].k < all[j].k
	})
	var b strings.Builder
	for i, x := range all {
		if i%3 == 0 {
			b.WriteString("\n   ")
		}
		fmt.Fprintf(&b, " %-46s", fmt.Sprintf("%s %d", x.k, x.v))
	}
	return fmt.Sprintf("%d calls:%s", total, strings.TrimRight(b.String(), " "))
}
