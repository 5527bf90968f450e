package drivers

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestOutcome(t *testing.T) {
	o := NewOutcome()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if p, err := o.Wait(ctx); p != Failed || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("no verdict yet: %v %v", p, err)
	}
	errGone := errors.New("gone")
	o.Set(Skipped, errGone)
	o.Set(Loaded, nil) // the first verdict stays
	if p, err := o.Wait(context.Background()); p != Skipped || err != errGone {
		t.Errorf("verdict %v %v, want skipped", p, err)
	}
}
