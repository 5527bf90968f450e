package clocktest_test

import (
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/clock/clocktest"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func TestTimersFireInOrderDuringAdvance(t *testing.T) {
	clk := clocktest.NewFake(t0)
	var fired []time.Duration
	for _, d := range []time.Duration{3 * time.Second, time.Second, 2 * time.Second} {
		clk.AfterFunc(d, func() { fired = append(fired, clk.Now().Sub(t0)) })
	}
	late, _ := clk.NewTimer(10 * time.Second)
	clk.Advance(2500 * time.Millisecond)
	if len(fired) != 2 || fired[0] != time.Second || fired[1] != 2*time.Second {
		t.Fatalf("after 2.5s fired at %v, want [1s 2s]", fired)
	}
	if got := clk.Now().Sub(t0); got != 2500*time.Millisecond {
		t.Fatalf("Now is t0+%v, want t0+2.5s", got)
	}
	if d, ok := clk.Next(); !ok || d != 500*time.Millisecond {
		t.Fatalf("Next = %v, %v; want 500ms, true", d, ok)
	}
	select {
	case <-late:
		t.Fatal("a 10s timer fired at 2.5s")
	default:
	}
	clk.Advance(10 * time.Second)
	select {
	case at := <-late:
		if !at.Equal(t0.Add(10 * time.Second)) {
			t.Errorf("timer ticked %v, want t0+10s", at.Sub(t0))
		}
	default:
		t.Fatal("the 10s timer did not fire by 12.5s")
	}
	if len(fired) != 3 || clk.Pending() != 0 {
		t.Fatalf("fired %v, %d pending; want three and none", fired, clk.Pending())
	}
}

func TestStop(t *testing.T) {
	clk := clocktest.NewFake(t0)
	tick, stop := clk.NewTimer(time.Second)
	if !stop() {
		t.Fatal("stop of a pending timer = false")
	}
	if stop() {
		t.Fatal("second stop = true")
	}
	clk.Advance(time.Hour)
	select {
	case <-tick:
		t.Fatal("a stopped timer fired")
	default:
	}
	// A fired, unread tick is dropped by stop, as time.Timer's Stop does.
	tick, stop = clk.NewTimer(time.Second)
	clk.Advance(time.Second)
	if stop() {
		t.Fatal("stop of a fired timer = true")
	}
	select {
	case <-tick:
		t.Fatal("the tick was kept after stop")
	default:
	}
	ran := false
	stopFn := clk.AfterFunc(time.Second, func() { ran = true })
	if !stopFn() {
		t.Fatal("stop of a pending AfterFunc = false")
	}
	clk.Advance(time.Minute)
	if ran {
		t.Fatal("a stopped AfterFunc ran")
	}
}

func TestWaitPendingSeesATimerFromAnotherGoroutine(t *testing.T) {
	clk := clocktest.NewFake(t0)
	done := make(chan struct{})
	go func() {
		tick, _ := clk.NewTimer(time.Minute)
		<-tick
		close(done)
	}()
	if d := clk.AdvanceNext(t); d != time.Minute {
		t.Fatalf("AdvanceNext = %v, want 1m", d)
	}
	<-done
}
