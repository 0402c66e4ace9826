package ec2ops

import (
	"sync"
	"time"
)

// Event reports the progress of a long operation. Events never carry secrets:
// user data and sensitive command parameters are not put in them.
type Event struct {
	// Operation names the long operation, e.g. "rollout", "bake", "patch".
	Operation string
	// Phase names the step within the operation, e.g. "launch", "wait-healthy".
	Phase string
	// Resource is the ID the event is about (an instance, image, command); empty
	// for events about the operation as a whole.
	Resource string
	// Done and Total count the units of the operation completed so far and in
	// all; Total is 0 when unknown.
	Done, Total int
	// Message is a short human-readable detail.
	Message string
	// Err is set when the event reports a failure.
	Err error
	// Time is when the event happened.
	Time time.Time
}

// Observer receives Events. Implementations must be safe for concurrent use
// and should return quickly: they are called on the operation's goroutines.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// Emit sends e to o, stamping e.Time with the current time when it is zero.
// A nil Observer is valid and discards the event, so strategies can call Emit
// without checking whether the caller supplied one.
func Emit(o Observer, e Event) {
	if o == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	o.Observe(e)
}

// Recorder is an Observer that keeps every Event it sees, for tests and
// summaries.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

// Observe records e.
func (r *Recorder) Observe(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// Events returns a copy of the recorded events in arrival order.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}
