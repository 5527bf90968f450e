// Command drainbench measures the MQTT uplink against a real mosquitto on
// loopback: how fast it drains a backlog, and what it costs at a steady rate
// and idle. It prints records/s, CPU time and peak RSS (getrusage maxrss).
//
//	go run ./uplink/mqtt/internal/drainbench -mode drain -n 1000000
//	go run ./uplink/mqtt/internal/drainbench -mode fill -store /tmp/outbox.db -n 1000000
//	go run ./uplink/mqtt/internal/drainbench -mode drain -store /tmp/outbox.db
//	go run ./uplink/mqtt/internal/drainbench -mode steady -rate 100 -duration 30s
//	go run ./uplink/mqtt/internal/drainbench -mode idle -duration 10s
//
// Without -store the records come from an in-memory generator that holds
// nothing, so the figures are the uplink's and paho's own. With -store they
// come from a real bbolt outbox (fill it in a separate run: peak RSS is per
// process). Concurrency: single main goroutine plus the uplink's Run.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/store"
	"github.com/edge-agent/edge-agent/uplink"
	"github.com/edge-agent/edge-agent/uplink/mqtt"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "drainbench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		mode     = flag.String("mode", "drain", "drain | fill | steady | idle")
		n        = flag.Uint64("n", 1_000_000, "records in the backlog (drain, fill)")
		size     = flag.Int("size", 300, "record size in bytes")
		path     = flag.String("store", "", "bbolt outbox to read (drain) or create (fill); empty: in-memory generator")
		rate     = flag.Int("rate", 100, "records per second (steady)")
		duration = flag.Duration("duration", 30*time.Second, "how long to run (steady, idle)")
		window   = flag.Int("window", 64, "records in flight")
	)
	flag.Parse()
	if *mode == "fill" {
		return fill(*path, *n, *size)
	}

	url, stopBroker, err := startBroker()
	if err != nil {
		return err
	}
	defer stopBroker()

	var (
		q     uplink.Queue
		total = *n
		gen   *genQueue
	)
	switch {
	case *path != "" && *mode == "drain":
		s, err := store.Open(*path, store.Options{Uplinks: []string{"mqtt"}})
		if err != nil {
			return err
		}
		defer s.Close()
		total = s.Head().Seq
		q = s.Queue("mqtt")
	case *mode == "drain":
		gen = newGenQueue(*size, total)
		q = gen
	default:
		gen = newGenQueue(*size, 0)
		q = gen
	}

	o := mqtt.DefaultOpts()
	o.Servers, o.DeviceID, o.Window = []string{url}, "bench", *window
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	u, err := mqtt.New(o)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = u.Run(ctx, q) })

	for !u.Status().Connected {
		time.Sleep(5 * time.Millisecond)
	}
	start, cpu0 := time.Now(), cpuTime()
	var peakAnon int64 // sampled: getrusage's peak also counts the store's mmap'd file pages
	switch *mode {
	case "drain":
		for u.Status().AckedSeq < total {
			time.Sleep(10 * time.Millisecond)
			peakAnon = max(peakAnon, rssAnon())
		}
	case "steady":
		// Catch up from the wall clock: a ticker silently drops ticks.
		var added uint64
		for time.Since(start) < *duration {
			time.Sleep(time.Second / time.Duration(*rate))
			if due := uint64(time.Since(start).Seconds()*float64(*rate)) - added; due > 0 {
				gen.add(due)
				added += due
			}
			if added%uint64(*rate) == 0 { // about once a second: reading /proc costs CPU too
				peakAnon = max(peakAnon, rssAnon())
			}
		}
	case "idle":
		time.Sleep(*duration)
	default:
		cancel()
		wg.Wait()
		return fmt.Errorf("unknown mode %q", *mode)
	}
	wall, cpu := time.Since(start), cpuTime()-cpu0
	rssNow := currentRSS()
	peakAnon = max(peakAnon, rssAnon())
	cancel()
	wg.Wait()
	if runErr != nil {
		return runErr
	}

	st := u.Status()
	fmt.Printf("mode=%s window=%d size=%d store=%q go=%s %s/%s\n", *mode, *window, *size, *path, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Printf("published=%d acked_seq=%d resent=%d wall=%.2fs\n", st.Published, st.AckedSeq, st.Resent, wall.Seconds())
	if *mode == "drain" {
		fmt.Printf("rate=%.0f records/s\n", float64(total)/wall.Seconds())
	}
	fmt.Printf("cpu=%.1f%% of one core  rss_now=%.1f MiB  peak_rss=%.1f MiB  vm_hwm=%.1f MiB  peak_anon_rss(sampled)=%.1f MiB\n",
		100*cpu.Seconds()/wall.Seconds(), float64(rssNow)/(1<<20), float64(maxRSS())/(1<<20), float64(vmHWM())/(1<<20), float64(peakAnon)/(1<<20))
	return nil
}

// genQueue makes records on demand and keeps none, so the measured memory is
// the uplink's own.
type genQueue struct {
	size int

	mu      sync.Mutex
	head    uint64
	acked   uint64
	changed chan struct{}
}

func newGenQueue(size int, head uint64) *genQueue {
	return &genQueue{size: size, head: head, changed: make(chan struct{})}
}

func (g *genQueue) add(k uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.head += k
	close(g.changed)
	g.changed = make(chan struct{})
}

func (g *genQueue) Pending(after uint64, max int) ([]store.Record, error) {
	g.mu.Lock()
	head := g.head
	g.mu.Unlock()
	var out []store.Record
	for seq := after + 1; seq <= head && len(out) < max; seq++ {
		d := make([]byte, g.size) // a fresh copy per record, as the store hands out
		binary.BigEndian.PutUint64(d, seq)
		out = append(out, store.Record{Seq: seq, Data: d})
	}
	return out, nil
}

func (g *genQueue) Ack(upTo uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if upTo < g.acked || upTo > g.head {
		return errors.New("genQueue: bad ack")
	}
	g.acked = upTo
	return nil
}

func (g *genQueue) Acked() (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.acked, nil
}

func (g *genQueue) Changed() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changed
}

// fill creates a bbolt outbox with n records of size bytes.
func fill(path string, n uint64, size int) error {
	if path == "" {
		return errors.New("fill needs -store")
	}
	s, err := store.Open(path, store.Options{Uplinks: []string{"mqtt"}})
	if err != nil {
		return err
	}
	defer s.Close()
	const batch = 4096
	for from := s.Head().Seq + 1; from <= n; from += batch {
		es := make([]store.Entry, 0, batch)
		for seq := from; seq < from+batch && seq <= n; seq++ {
			d := make([]byte, size)
			binary.BigEndian.PutUint64(d, seq)
			es = append(es, store.Entry{Seq: seq, Hash: sha256.Sum256(d), Data: d})
		}
		if _, err := s.Append(es, nil); err != nil {
			return err
		}
	}
	fmt.Printf("filled %s with %d records\n", path, s.Head().Seq)
	return nil
}

// startBroker runs mosquitto on a free loopback port.
func startBroker() (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "drainbench")
	if err != nil {
		return "", nil, err
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	user := "root"
	if u := os.Getenv("USER"); u != "" {
		user = u
	}
	body := fmt.Sprintf("user %s\npersistence false\nallow_anonymous true\nlog_dest none\nlistener %d 127.0.0.1\n", user, port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return "", nil, err
	}
	cmd := exec.Command("/usr/sbin/mosquitto", "-c", conf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start mosquitto (apt-get install -y mosquitto): %w", err)
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i > 500 {
			stop()
			return "", nil, fmt.Errorf("mosquitto not listening on %s", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "tcp://" + addr, stop, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// maxRSS is the process's peak resident set in bytes (Linux reports KiB).
func maxRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Maxrss) * 1024
}

// currentRSS reads VmRSS from /proc; 0 where that is not available.
func currentRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, rss int64
	if _, err := fmt.Sscan(string(b), &size, &rss); err != nil {
		return 0
	}
	return rss * int64(os.Getpagesize())
}

// rssAnon reads RssAnon from /proc/self/status: resident memory that is not
// a mapped file, i.e. what the kernel cannot simply drop under pressure.
func rssAnon() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			var kb int64
			if _, err := fmt.Sscan(v, &kb); err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// vmHWM is the peak resident set of this process's memory map, from
// /proc/self/status; unlike getrusage's maxrss it is not carried over from
// whatever the process was before an exec.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb * 1024
		}
	}
	return 0
}
