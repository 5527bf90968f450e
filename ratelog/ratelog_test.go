package ratelog

import (
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type step struct {
	at         time.Duration // after t0
	ok         bool
	suppressed int
}

func run(t *testing.T, l *Limiter, steps []step) {
	t.Helper()
	for i, s := range steps {
		ok, n := l.Allow(t0.Add(s.at))
		if ok != s.ok || n != s.suppressed {
			t.Fatalf("step %d at +%v: Allow = %v, %d; want %v, %d", i, s.at, ok, n, s.ok, s.suppressed)
		}
	}
}

// One line per interval: the first at once, the next exactly an interval
// after the last allowed one (not after the last refused one), each saying
// how many were held back.
func TestOnePerInterval(t *testing.T) {
	run(t, New(10*time.Second, 1), []step{
		{0, true, 0},
		{time.Second, false, 0},
		{10*time.Second - 1, false, 0},
		{10 * time.Second, true, 2},
		{15 * time.Second, false, 0},
		{19 * time.Second, false, 0},
		{21 * time.Second, true, 2},
		{31*time.Second - 1, false, 0},
		{time.Hour, true, 1},
		{time.Hour, false, 0},
	})
}

// A burst goes through at once, then the bucket refills one line per
// interval, up to the burst again after a quiet spell.
func TestBurst(t *testing.T) {
	run(t, New(5*time.Second, 3), []step{
		{0, true, 0},
		{0, true, 0},
		{0, true, 0},
		{0, false, 0},
		{4 * time.Second, false, 0},
		{5 * time.Second, true, 2},
		{6 * time.Second, false, 0},
		{10 * time.Second, true, 1},
		{time.Hour, true, 0},
		{time.Hour, true, 0},
		{time.Hour, true, 0},
		{time.Hour, false, 0},
	})
}

func TestNoLimit(t *testing.T) {
	l := New(0, 0)
	for range 5 {
		if ok, _ := l.Allow(t0); !ok {
			t.Fatal("every 0 must let everything through")
		}
	}
}

// Concurrent callers (the lora driver's reader, worker and upstreams share
// one) get exactly the burst through and the rest counted.
func TestConcurrent(t *testing.T) {
	l := New(time.Hour, 4)
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if ok, _ := l.Allow(t0); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed != 4 {
		t.Fatalf("%d lines through, want the burst of 4", allowed)
	}
	if ok, n := l.Allow(t0.Add(time.Hour)); !ok || n != 796 {
		t.Fatalf("after an hour: Allow = %v, %d; want true, 796", ok, n)
	}
}
