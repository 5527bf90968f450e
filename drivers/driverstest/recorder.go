// Package driverstest holds fakes for testing drivers: Recorder is a
// drivers.Emit that keeps what a driver emits and can be made to block or
// fail, as the pipeline does when it is full or stopped; Start runs a driver
// for the length of a test. A Recorder is safe for concurrent use.
package driverstest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
)

// Recorder records observations. The zero value records everything and
// never blocks or fails.
type Recorder struct {
	mu      sync.Mutex
	obs     []drivers.Observation
	err     error
	blocked chan struct{} // non-nil while Block holds Emit; closed by Unblock
	limit   int
	atLimit func()
}

var _ drivers.Emit = (*Recorder)(nil).Emit

// Emit records o. While blocked it waits for Unblock or ctx (returning
// ctx.Err() without recording); after Fail it returns that error without
// recording.
func (r *Recorder) Emit(ctx context.Context, o drivers.Observation) error {
	r.mu.Lock()
	for r.blocked != nil {
		b := r.blocked
		r.mu.Unlock()
		select {
		case <-b:
		case <-ctx.Done():
			return ctx.Err()
		}
		r.mu.Lock()
	}
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.obs = append(r.obs, o)
	if r.atLimit != nil && len(r.obs) == r.limit {
		r.atLimit()
	}
	return nil
}

// Block makes Emit wait until Unblock, as a full pipeline does.
func (r *Recorder) Block() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.blocked == nil {
		r.blocked = make(chan struct{})
	}
}

// Unblock releases Emits waiting since Block.
func (r *Recorder) Unblock() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.blocked != nil {
		close(r.blocked)
		r.blocked = nil
	}
}

// Fail makes every later Emit return err (nil: record again), as a stopped
// pipeline does.
func (r *Recorder) Fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

// After calls fn (typically a context's cancel) once n observations are
// recorded, from the Emit that records the nth, before it returns.
func (r *Recorder) After(n int, fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.limit, r.atLimit = n, fn
}

// All is a copy of what was recorded, in order.
func (r *Recorder) All() []drivers.Observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]drivers.Observation(nil), r.obs...)
}

// Len is the number recorded.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.obs)
}

// Kind is what was recorded of kind k, in order.
func (r *Recorder) Kind(k string) []drivers.Observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []drivers.Observation
	for _, o := range r.obs {
		if o.Kind == k {
			out = append(out, o)
		}
	}
	return out
}

// Runner is what Start runs: a drivers.Driver, or anything with its Run.
type Runner interface {
	Run(ctx context.Context, emit drivers.Emit) error
}

// Start runs d with emit until the test ends; cleanup cancels it and fails
// tb if Run does not return nil (cancellation is a clean exit) within
// five seconds.
func Start(tb testing.TB, d Runner, emit drivers.Emit) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, emit) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(5 * time.Second):
			tb.Errorf("Run did not return within 5s of cancel")
		}
	})
}
