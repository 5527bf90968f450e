package drivers

import (
	"context"
	"errors"
	"fmt"
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

func TestProbeResult(t *testing.T) {
	absent := errors.New("absent")
	other := errors.New("other")
	for _, tc := range []struct {
		name string
		err  error
		want Probe
	}{
		{"nil", nil, Loaded},
		{"absent, wrapped", fmt.Errorf("x: open: %w", absent), Skipped},
		{"second absent sentinel", other, Skipped},
		{"anything else", errors.New("broken"), Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ProbeResult(tc.err, absent, other); got != tc.want {
				t.Fatalf("ProbeResult(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestSetDefault(t *testing.T) {
	s, n := "", 7
	SetDefault(&s, "def")
	SetDefault(&n, 9)
	if s != "def" || n != 7 {
		t.Fatalf("got %q, %d; want the default for the zero string and 7 kept", s, n)
	}
	type opts struct{ A int }
	in := &opts{A: 3}
	if got := OptsOf(in); got != *in || OptsOf[opts](nil) != (opts{}) {
		t.Fatalf("OptsOf(&%v) = %v, OptsOf(nil) = %v", *in, got, OptsOf[opts](nil))
	}
	got := OptsOf(in)
	got.A = 4
	if in.A != 3 {
		t.Fatal("OptsOf shares the caller's struct instead of copying it")
	}
}
