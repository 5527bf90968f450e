// Package condtest waits in tests for a condition another goroutine or
// process brings about, instead of sleeping a guessed time: on a loaded
// machine a sleep is either too short (a flaky test) or too long (a slow
// one). It is safe for concurrent use.
package condtest

import (
	"testing"
	"time"
)

// poll is how often WaitFor re-checks; short enough that waiting adds little.
const poll = 10 * time.Millisecond

// WaitFor calls cond until it returns true and fails tb (naming what) if it
// has not after timeout. The timeout is a bound for a stuck test, never a
// figure the test asserts.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(poll)
	}
}
