//go:build unix

package mototest

import (
	"os"
	"syscall"
	"testing"
)

// lock takes an exclusive flock shared by every test process using ep.
func lock(t testing.TB, ep string) func() {
	t.Helper()
	f, err := os.OpenFile(lockPath(ep), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("moto lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("moto lock: %v", err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}
