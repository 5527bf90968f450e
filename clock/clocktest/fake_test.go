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
	late := clk.NewTimer(10 * time.Second)
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
	case <-late.C():
		t.Fatal("a 10s timer fired at 2.5s")
	default:
	}
	clk.Advance(10 * time.Second)
	select {
	case at := <-late.C():
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

func TestStopAndReset(t *testing.T) {
	clk := clocktest.NewFake(t0)
	tm := clk.NewTimer(time.Second)
	if !tm.Stop() {
		t.Fatal("Stop of a pending timer = false")
	}
	if tm.Stop() {
		t.Fatal("second Stop = true")
	}
	clk.Advance(time.Hour)
	select {
	case <-tm.C():
		t.Fatal("a stopped timer fired")
	default:
	}
	// A fired, unread tick is dropped by Reset, as time.Timer does.
	tm.Reset(time.Second)
	clk.Advance(time.Second)
	if tm.Reset(time.Minute) {
		t.Fatal("Reset of a fired timer = true")
	}
	clk.Advance(30 * time.Second)
	select {
	case <-tm.C():
		t.Fatal("the tick from before Reset was kept")
	default:
	}
	clk.Advance(30 * time.Second)
	select {
	case <-tm.C():
	default:
		t.Fatal("the reset timer did not fire a minute later")
	}
}

func TestWaitPendingSeesATimerFromAnotherGoroutine(t *testing.T) {
	clk := clocktest.NewFake(t0)
	done := make(chan struct{})
	go func() {
		<-clk.NewTimer(time.Minute).C()
		close(done)
	}()
	if d := clk.AdvanceNext(t); d != time.Minute {
		t.Fatalf("AdvanceNext = %v, want 1m", d)
	}
	<-done
}
