package gnss

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/clock/clocktest"
	"github.com/edge-agent/edge-agent/drivers"
)

// TestReconnectBackoff: a lost receiver is retried after 250 ms, doubling
// to 30 s, and a session that delivered data starts the wait over. The
// fake clock makes the waits take no wall time.
func TestReconnectBackoff(t *testing.T) {
	clk := clocktest.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	d, err := New("gps0", &Opts{Source: SourceSerial, Device: "/dev/null", Baud: 9600, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	session := func(_ context.Context, _ drivers.Emit, healthy *bool) error {
		n++
		*healthy = n == 10
		return errors.New("unplugged")
	}
	done := make(chan error, 1)
	go func() { done <- d.reconnectLoop(ctx, nil, session) }()
	want := []time.Duration{250e6, 500e6, 1e9, 2e9, 4e9, 8e9, 16e9, 30e9, 30e9, 250e6, 500e6}
	if got := clk.Waits(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("reconnects waited %v, want %v", got, want)
	}
	clk.WaitPending(t, 1)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("reconnectLoop after cancel = %v, want nil", err)
	}
}
