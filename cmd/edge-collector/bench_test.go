package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
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

var cpuOf = pgtest.CPUOf

func serverCPU(b *testing.B, pg *pgtest.Server) time.Duration {
	d, err := pg.CPU()
	if err != nil {
		b.Fatal(err)
	}
	return d
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

// childNamed is the pid of a child of this process whose command is name.
func childNamed(b *testing.B, name string) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", os.Getpid()))
	for _, t := range tasks {
		kids, _ := os.ReadFile(t)
		for _, k := range strings.Fields(string(kids)) {
			if comm, err := os.ReadFile("/proc/" + k + "/comm"); err == nil && strings.TrimSpace(string(comm)) == name {
				n, _ := strconv.Atoi(k)
				return n
			}
		}
	}
	b.Fatalf("no child process %s", name)
	return 0
}

// BenchmarkFleet: three edge-collector processes on one shared subscription
// into one PostgreSQL, a fleet over one mosquitto, end-to-end receipts, all
// on this machine. Reports sustained delivered records/s, its ratio to the
// single-core Ed25519 verify rate measured in the same run, publish→receipt
// latency, and the CPU each part used.
//
//	EC_RATE=3000 EC_DEVICES=100 EC_SECONDS=20 go test -run '^$' -bench Fleet -benchtime 1x ./cmd/edge-collector
//
// EC_PRESIGN=0 makes the generator sign each record when it is due (as
// before: the devices' signing then competes with the collectors for the
// cores); by default every record is signed before the clock starts.
// EC_RECEIPT_INTERVAL sets the collectors' [mqtt] receipt_interval (default
// theirs, 250ms; "0s" = a receipt per device per commit). EC_PPROF=DIR writes
// Go CPU profiles of the three collectors (c0..c2.pprof, whole run) and of
// the generator (loadgen.pprof, measured window) there. EC_INFLIGHT is the
// broker's max_inflight_messages (default 2000).
func BenchmarkFleet(b *testing.B) {
	env := func(k string, def int) int {
		if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
			return v
		}
		return def
	}
	rate, devices, seconds := env("EC_RATE", 12000), env("EC_DEVICES", 200), env("EC_SECONDS", 20)
	presign := env("EC_PRESIGN", 1) != 0
	var extra []string
	if iv := os.Getenv("EC_RECEIPT_INTERVAL"); iv != "" {
		extra = append(extra, fmt.Sprintf("receipt_interval = %q", iv))
	}
	prof := os.Getenv("EC_PPROF")
	pg := pgtest.Start(b)
	url := pg.NewDatabase(b)
	// The collectors acknowledge a batch only after its commit, so the
	// broker's per-client in-flight window bounds what one commit can take
	// (docs/collector.md): raised as an operator would.
	broker := mqtttest.Start(b, mqtttest.Config{MaxInflight: env("EC_INFLIGHT", 2000)})
	brokerPID := childNamed(b, "mosquitto")
	var cols []*collector
	var ids []string
	for i := range 3 {
		c := newCollectorTB(b, i, broker.URL(), url, extra...)
		if prof != "" {
			c.args = []string{"--cpuprofile", filepath.Join(prof, fmt.Sprintf("c%d.pprof", i))}
		}
		cols = append(cols, c)
		ids = append(ids, c.id)
		c.startTB(b)
	}
	defer func() {
		for i, c := range cols {
			c.signal(syscall.SIGTERM)
			if prof != "" {
				if log, err := os.ReadFile(c.log); err == nil {
					_ = os.WriteFile(filepath.Join(prof, fmt.Sprintf("c%d.log", i)), log, 0o644)
				}
			}
		}
	}()
	time.Sleep(2 * time.Second)
	colsCPU := func() (d time.Duration) {
		for _, c := range cols {
			d += cpuOf(c.cmd.Process.Pid)
		}
		return d
	}
	for b.Loop() {
		verify := verifyRate(b)
		var cpu0 [4]time.Duration
		var res fleet.Result
		var err error
		o := fleet.LoadOpts{
			Servers: []string{broker.URL()}, Devices: devices, Rate: float64(rate), Duration: time.Duration(seconds) * time.Second,
			Pad: 64, Collectors: ids, MinReceipts: 1, ResendAfter: 30 * time.Second, Window: 256, Drain: 2 * time.Minute,
			Presign: presign, // ResendAfter: the agent's default
			// The clock starts here: after the devices connected and
			// (Presign) every record was signed.
			Started: func() {
				cpu0 = [4]time.Duration{colsCPU(), serverCPU(b, pg), cpuOf(brokerPID), cpuOf(os.Getpid())}
				if prof != "" {
					f, err := os.Create(filepath.Join(prof, "loadgen.pprof"))
					if err == nil {
						err = pprof.StartCPUProfile(f)
					}
					if err != nil {
						b.Error(err)
					}
				}
			},
		}
		res, err = fleet.Run(context.Background(), o)
		if prof != "" {
			pprof.StopCPUProfile()
		}
		if err != nil {
			b.Fatal(err)
		}
		colCPU := colsCPU() - cpu0[0]
		pgCPU := serverCPU(b, pg) - cpu0[1]
		brokerCPU := cpuOf(brokerPID) - cpu0[2]
		// The test process and its children: collectors, broker, generator.
		genCPU := cpuOf(os.Getpid()) - cpu0[3] - colCPU - brokerCPU
		n := float64(res.Delivered)
		got := n / res.Elapsed.Seconds()
		us := func(d time.Duration) float64 { return d.Seconds() * 1e6 / n }
		b.ReportMetric(got, "records/s")
		b.ReportMetric(verify, "verify/s/core")
		b.ReportMetric(got/verify, "ratio")
		b.ReportMetric(float64(res.P99.Milliseconds()), "p99-ms")
		b.ReportMetric(float64(res.P50.Milliseconds()), "p50-ms")
		b.ReportMetric(us(colCPU), "collector-cpu-µs/record")
		b.ReportMetric(us(pgCPU), "postgres-cpu-µs/record")
		b.ReportMetric(us(brokerCPU), "broker-cpu-µs/record")
		b.ReportMetric(us(genCPU), "loadgen-cpu-µs/record")
		b.ReportMetric(float64(res.Receipts)/n, "receipts/record")
		b.ReportMetric(float64(res.Backlog), "backlog")
		b.ReportMetric(float64(res.Resent), "resent")
		// What two cores could sustain if nothing else ran: the CPU one
		// record costs across every part of the setup, and without the
		// generator (which plays the devices, not the network side).
		b.ReportMetric(2/(us(colCPU+pgCPU+brokerCPU+genCPU)/1e6), "cpu-bound-ceiling-records/s")
		b.ReportMetric(2/(us(colCPU+pgCPU+brokerCPU)/1e6), "network-side-ceiling-records/s")
		b.Logf("%+v", res)
	}
}
