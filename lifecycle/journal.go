package lifecycle

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// Record is one journal entry: the phase one replacement reached.
// Records never hold user data or other secrets.
type Record struct {
	Rollout     string `json:"rollout"`
	Instance    string `json:"instance"`              // the old instance
	Replacement string `json:"replacement,omitempty"` // the new one, once launched
	Phase       string `json:"phase"`                 // launched, handover, in-service, done, failed, rolled-back
	Attempt     int    `json:"attempt"`
	// Batch is the ClientToken of the batched RunInstances call that
	// launched Replacement ("" for a launch of its own).
	Batch string    `json:"batch,omitempty"`
	Time  time.Time `json:"time"`
}

// Journal records the progress of a rollout so a rerun resumes where it
// stopped. The ec2ops tags on the instances are the source of truth; the
// journal adds what tags cannot say (attempts, failures) and sees a launch
// before EC2's eventual consistency does. Implementations must be safe for
// concurrent use.
type Journal interface {
	// Append records r durably before returning.
	Append(ctx context.Context, r Record) error
	// Records returns the records of one rollout in the order appended.
	Records(ctx context.Context, rollout string) ([]Record, error)
}

// MemoryJournal keeps records in memory (one process; tests).
type MemoryJournal struct {
	mu   sync.Mutex
	recs []Record
}

// NewMemoryJournal returns an empty in-memory journal.
func NewMemoryJournal() *MemoryJournal { return &MemoryJournal{} }

// Append records r.
func (m *MemoryJournal) Append(ctx context.Context, r Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, r)
	return nil
}

// Records returns the records of rollout.
func (m *MemoryJournal) Records(ctx context.Context, rollout string) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for _, r := range m.recs {
		if r.Rollout == rollout {
			out = append(out, r)
		}
	}
	return out, nil
}

// FileJournal appends JSON lines to a file and fsyncs after each record,
// so a record returned from Append survives a crash.
type FileJournal struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

// OpenFileJournal opens (creating if needed) a JSON-lines journal.
func OpenFileJournal(path string) (*FileJournal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	return &FileJournal{path: path, f: f}, nil
}

// Append writes r as one line and syncs the file.
func (j *FileJournal) Append(ctx context.Context, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal %s: sync: %w", j.path, err)
	}
	return nil
}

// Records reads the records of rollout. A torn last line (a crash in the
// middle of a write) is ignored.
func (j *FileJournal) Records(ctx context.Context, rollout string) ([]Record, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f, err := os.Open(j.path)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", j.path, err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var r Record
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		if r.Rollout == rollout {
			out = append(out, r)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("journal %s: %w", j.path, err)
	}
	return out, nil
}

// Close closes the file.
func (j *FileJournal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.f.Close()
}

// NoJournal records nothing: a rerun resumes from the ec2ops tags on the
// instances alone.
type NoJournal struct{}

// Append does nothing.
func (NoJournal) Append(context.Context, Record) error { return nil }

// Records returns nothing.
func (NoJournal) Records(context.Context, string) ([]Record, error) { return nil, nil }

var (
	_ Journal = (*MemoryJournal)(nil)
	_ Journal = (*FileJournal)(nil)
	_ Journal = NoJournal{}
)
