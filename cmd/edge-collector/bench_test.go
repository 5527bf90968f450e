package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/collect/fleet"
	"github.com/edge-agent/edge-agent/collect/pgstore/pgtest"
	"github.com/edge-agent/edge-agent/uplink/mqtt/mqtttest"
)

// cpuOf is the user+system CPU time of pid and its descendants so far
// (from /proc; ticks of 10 ms).
func cpuOf(pid int) time.Duration {
	var total int64
	var walk func(int)
	walk = func(p int) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			return
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		total += u + s
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p))
		for _, t := range tasks {
			kids, _ := os.ReadFile(t)
			for _, k := range strings.Fields(string(kids)) {
				if n, err := strconv.Atoi(k); err == nil {
					walk(n)
				}
			}
		}
	}
	walk(pid)
	return time.Duration(total) * 10 * time.Millisecond
}

func postmasterPID(b *testing.B, pg *pgtest.Server) int {
	data, err := os.ReadFile(filepath.Join(pg.Dir, "data", "postmaster.pid"))
	if err != nil {
		b.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.SplitN(string(data), "\n", 2)[0])
	return pid
}

// threadCPU is this OS thread's CPU time.
func threadCPU() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

// verifyRate is Ed25519 record verifications per CPU-second on one core,
// measured in thread CPU time so that other load on the machine does not
// count.
func verifyRate(b *testing.B) float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	d, _ := fleet.NewDevice(rand.Reader)
	raw, _, _ := d.Next(time.Now(), 64)
	rec, err := attest.Decode(raw)
	if err != nil {
		b.Fatal(err)
	}
	n, c0 := 0, threadCPU()
	for threadCPU()-c0 < time.Second {
		for range 100 {
			if err := rec.Verify(); err != nil {
				b.Fatal(err)
			}
		}
		n += 100
	}
	return float64(n) / (threadCPU() - c0).Seconds()
}

// BenchmarkFleet: three edge-collector processes on one shared subscription
// into one PostgreSQL, a fleet over one mosquitto, end-to-end receipts, all
// on this machine. Reports sustained delivered records/s, its ratio to the
// single-core Ed25519 verify rate measured in the same run, publish→receipt
// latency, and the CPU each part used.
//
//	EC_RATE=12000 EC_DEVICES=200 EC_SECONDS=20 go test -run '^$' -bench Fleet -benchtime 1x ./cmd/edge-collector
func BenchmarkFleet(b *testing.B) {
	env := func(k string, def int) int {
		if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
			return v
		}
		return def
	}
	rate, devices, seconds := env("EC_RATE", 12000), env("EC_DEVICES", 200), env("EC_SECONDS", 20)
	pg := pgtest.Start(b)
	url := pg.NewDatabase(b)
	broker := mqtttest.Start(b, mqtttest.Config{})
	var cols []*collector
	var ids []string
	for i := range 3 {
		c := newCollectorTB(b, i, broker.URL(), url)
		cols = append(cols, c)
		ids = append(ids, c.id)
		c.startTB(b)
	}
	defer func() {
		for _, c := range cols {
			c.signal(syscall.SIGTERM)
		}
	}()
	time.Sleep(2 * time.Second)
	for b.Loop() {
		verify := verifyRate(b)
		pgPID := postmasterPID(b, pg)
		cpu0 := [3]time.Duration{cpuOf(cols[0].cmd.Process.Pid) + cpuOf(cols[1].cmd.Process.Pid) + cpuOf(cols[2].cmd.Process.Pid), cpuOf(pgPID), cpuOf(os.Getpid())}
		res, err := fleet.Run(context.Background(), fleet.LoadOpts{
			Servers: []string{broker.URL()}, Devices: devices, Rate: float64(rate), Duration: time.Duration(seconds) * time.Second,
			Pad: 64, Collectors: ids, MinReceipts: 1, ResendAfter: 10 * time.Second, Window: 256, Drain: 2 * time.Minute,
		})
		if err != nil {
			b.Fatal(err)
		}
		colCPU := cpuOf(cols[0].cmd.Process.Pid) + cpuOf(cols[1].cmd.Process.Pid) + cpuOf(cols[2].cmd.Process.Pid) - cpu0[0]
		pgCPU := cpuOf(pgPID) - cpu0[1]
		selfCPU := cpuOf(os.Getpid()) - cpu0[2] - colCPU // the test process: load generator (and the broker, a child)
		got := float64(res.Delivered) / res.Elapsed.Seconds()
		b.ReportMetric(got, "records/s")
		b.ReportMetric(verify, "verify/s/core")
		b.ReportMetric(got/verify, "ratio")
		b.ReportMetric(float64(res.P99.Milliseconds()), "p99-ms")
		b.ReportMetric(float64(res.P50.Milliseconds()), "p50-ms")
		b.ReportMetric(colCPU.Seconds()*1e6/float64(res.Delivered), "collector-cpu-µs/record")
		b.ReportMetric(pgCPU.Seconds()*1e6/float64(res.Delivered), "postgres-cpu-µs/record")
		b.ReportMetric(selfCPU.Seconds()*1e6/float64(res.Delivered), "loadgen+broker-cpu-µs/record")
		b.ReportMetric(float64(res.Backlog), "backlog")
		// What two cores could sustain if nothing else ran: the CPU one
		// record costs across every part of the setup.
		per := (colCPU + pgCPU + selfCPU).Seconds() / float64(res.Delivered)
		b.ReportMetric(2/per, "cpu-bound-ceiling-records/s")
		b.Logf("%+v", res)
	}
}
