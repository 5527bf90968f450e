package energy

import (
	"context"
	"syscall"
	"testing"
	"time"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchPoll runs full SDM630 polls (two requests: 54 and 6 input
// registers) and reports their round trip and CPU (the slave simulator
// included, as it runs in this process).
func benchPoll(b *testing.B, o *Opts) {
	d, err := New("meter", o)
	if err != nil {
		b.Fatal(err)
	}
	t, err := d.open(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer t.close()
	ctx := context.Background()
	if _, err := d.poll(ctx, t, sunspecModel{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	t0, cpu0 := time.Now(), cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := d.poll(ctx, t, sunspecModel{}); err != nil {
			b.Fatal(err)
		}
	}
	wall, cpu := time.Since(t0), cpuTime()-cpu0
	b.ReportMetric(float64(wall.Microseconds())/float64(b.N)/1000, "ms/poll")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/poll")
}

// BenchmarkPollRTU9600 paces the slave's bytes at 9600 baud, 11 bits each
// (8E1 or 8N2 framing, Modbus over Serial Line 2.5.1).
func BenchmarkPollRTU9600(b *testing.B) {
	s := newSlave(1)
	sdm630(s)
	s.baud = 9600
	o := opts(TransportRTU, serveRTU(b, s), ProfileSDM630)
	o.Timeout = 2 * time.Second
	benchPoll(b, o)
}

func BenchmarkPollTCP(b *testing.B) {
	s := newSlave(1)
	sdm630(s)
	benchPoll(b, opts(TransportTCP, serveTCP(b, s), ProfileSDM630))
}
