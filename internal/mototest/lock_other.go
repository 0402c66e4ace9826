//go:build !unix

package mototest

import "testing"

// lock is a no-op where flock is unavailable; run wire tests with -p 1 there.
func lock(testing.TB, string) func() { return func() {} }
