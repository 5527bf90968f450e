package condtest_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/condtest"
)

// fatalTB records Fatalf and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWaitForReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			time.Sleep(time.Millisecond)
			n.Add(1)
		}
	}()
	condtest.WaitFor(t, time.Minute, "three steps", func() bool { return n.Load() == 3 })
}

func TestWaitForFailsNamingWhatItWaitedFor(t *testing.T) {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		condtest.WaitFor(f, 20*time.Millisecond, "the impossible", func() bool { return false })
	}()
	<-done
	if !strings.Contains(f.msg, "the impossible") || !strings.Contains(f.msg, "timed out") {
		t.Fatalf("Fatalf(%q), want a timeout naming the condition", f.msg)
	}
}
