package obd

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkELM327At38400 samples 4 PIDs as fast as an adapter at 38400 baud
// allows: the simulator paces every byte at 10 bits (8N1), so the figure is
// the serial line's limit plus the driver's own cost; a real car adds its
// ECUs' answer time (tens of ms per request on CAN). CPU per sample
// includes the simulator, which runs in the same process.
func BenchmarkELM327At38400(b *testing.B) {
	c := &car{pids: map[byte][]byte{0x0D: {0x32}, 0x0C: {0x1A, 0xF8}, 0x05: {0x7B}, 0x2F: {0x80}},
		offered: map[byte]bool{0x05: true, 0x0C: true, 0x0D: true, 0x2F: true}}
	sim := newELMSim(b, c, clone{pace: true})
	d, _ := New("car", &Opts{Device: sim.path(), Interval: time.Microsecond, PIDs: []string{PIDSpeed, PIDRPM, PIDCoolant, PIDFuel},
		NoVIN: true, Timeout: time.Second, SearchTimeout: 2 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan struct{}, 1<<16)
	var started bool
	var t0 time.Time
	var cpu0 time.Duration
	emit := func(_ context.Context, o drivers.Observation) error {
		if o.Kind == drivers.KindVehicleOBD {
			got <- struct{}{}
		}
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, emit) }()
	<-got // connected, searched, first sample
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !started {
			started, t0, cpu0 = true, time.Now(), cpuTime()
		}
		<-got
	}
	b.StopTimer()
	wall, cpu := time.Since(t0), cpuTime()-cpu0
	b.ReportMetric(float64(b.N)/wall.Seconds(), "samples/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/sample")
	cancel()
	<-done
}
