package drivers

import (
	"context"
	"fmt"
	"sync"
)

// Outcome is the first verdict a running driver reaches about its
// hardware, for a Probe called while Run holds the port: probing then must
// not open the device a second time (an ELM327 reset mid-session, two
// masters on one RS-485 line). The first Set wins; the zero value is not
// usable, use NewOutcome.
type Outcome struct {
	once sync.Once
	done chan struct{}
	p    Probe
	err  error
}

// NewOutcome returns an Outcome with no verdict yet.
func NewOutcome() *Outcome { return &Outcome{done: make(chan struct{})} }

// Set records the verdict if none was recorded yet.
func (o *Outcome) Set(p Probe, err error) {
	o.once.Do(func() {
		o.p, o.err = p, err
		close(o.done)
	})
}

// Wait returns the verdict, or Failed with ctx's error if none comes first.
func (o *Outcome) Wait(ctx context.Context) (Probe, error) {
	select {
	case <-o.done:
		return o.p, o.err
	case <-ctx.Done():
		return Failed, fmt.Errorf("drivers: no answer from the hardware yet: %w", ctx.Err())
	}
}
