//go:build steady

package main

// The whole-daemon steady-state benchmark (`make bench-steady`): the real
// daemon binary, a loopback load generator playing a Semtech UDP packet
// forwarder, the MQTT uplink to a real mosquitto. It measures the daemon
// process from the outside — CPU from /proc/PID/stat, bytes written from
// /proc/PID/io, peak RSS from /proc/PID/status, commits (two fdatasyncs
// each) from its status socket — and checks that every record reached the
// broker (the uplink's PUBACKed seq reaches the head). It prints figures and
// fails only when delivery fails: figures are for docs/benchmarks.md.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/uplink/mqtt/mqtttest"
)

func TestSteadyState(t *testing.T) {
	for _, sc := range []struct {
		rate     int
		duration time.Duration
	}{
		{1000, 20 * time.Second},
		{100, 20 * time.Second},
		{10, 40 * time.Second},
		{1, 90 * time.Second}, // the window stretches here (pipeline.commit_min_records)
	} {
		t.Run(fmt.Sprintf("%d_pkt_per_s", sc.rate), func(t *testing.T) { steadyLoRa(t, sc.rate, sc.duration) })
	}
	t.Run("idle_gnss_1hz", steadyIdle)
}

func steadyLoRa(t *testing.T, rate int, dur time.Duration) {
	broker := mqtttest.Start(t, mqtttest.Config{})
	dir := t.TempDir()
	port := freeUDPPort(t)
	interval := os.Getenv("COMMIT_INTERVAL") // compare windows: COMMIT_INTERVAL=0s make bench-steady
	extra := ""
	if interval != "" {
		extra = fmt.Sprintf("[pipeline]\ncommit_interval = %q\n", interval)
	}
	cfgPath := writeConfig(t, dir, extra+fmt.Sprintf(`
[[drivers.lora]]
name = "hotspot"
mode = "udp"
listen = "127.0.0.1:%d"
receive_buffer = "32MiB"
upstreams = []

[uplinks.mqtt]
enabled = true
servers = [%q]
`, port, broker.URL()))
	cmd := startAgent(t, cfgPath, dir)
	defer stopAgent(t, cmd)
	client := &status.Client{Socket: filepath.Join(dir, "status.sock"), Timeout: 5 * time.Second}
	waitMQTT(t, client)

	conn, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go drainAcks(conn) // the PUSH_ACKs; a forwarder reads and counts them

	warm := 3 * time.Second
	eui := []byte{0xB8, 0x27, 0xEB, 0xFF, 0xFE, 0x5A, 0x17, 0x01}
	var sent int
	send := func() {
		phy := make([]byte, 24)
		binary.BigEndian.PutUint64(phy, uint64(sent))
		body := fmt.Sprintf(`{"rxpk":[{"tmst":%d,"chan":2,"rfch":0,"freq":868.500000,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","rssi":-57,"lsnr":9.2,"size":24,"data":%q}]}`,
			1000*sent, base64.StdEncoding.EncodeToString(phy))
		pkt := append([]byte{2, byte(sent >> 8), byte(sent), 0}, eui...)
		if _, err := conn.Write(append(pkt, body...)); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	// Paced on a schedule, a few packets per 10 ms tick at high rates, as a
	// forwarder's own loop sends them.
	start := time.Now()
	var from, to procSample
	var fromDoc, toDoc *status.Doc
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for now := range tick.C {
		el := now.Sub(start)
		for want := int(el.Seconds() * float64(rate)); sent < want; {
			send()
		}
		if from.at.IsZero() && el >= warm {
			from, fromDoc = sampleProc(t, cmd.Process.Pid), fetch(t, client)
			from.sent = sent
			if out := os.Getenv("STEADY_PERF"); out != "" && rate == 1000 {
				perf := perfRecord(t, cmd.Process.Pid, out, dur)
				defer perf.Wait()
			}
		}
		if el >= warm+dur {
			to, toDoc = sampleProc(t, cmd.Process.Pid), fetch(t, client)
			to.sent = sent
			break
		}
	}
	// Everything sent must reach the broker: PUBACKed seq = head.
	deadline := time.Now().Add(60 * time.Second)
	for {
		d := fetch(t, client)
		if len(d.Uplinks) == 1 && d.Uplinks[0].AckedSeq == d.Store.HeadSeq && d.Pipeline.Stored >= uint64(sent) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered 60s after the load stopped: sent %d, stored %d, head %d, PUBACKed %+v", sent, d.Pipeline.Stored, d.Store.HeadSeq, d.Uplinks)
		}
		time.Sleep(100 * time.Millisecond)
	}
	reportSteady(t, fmt.Sprintf("%d pkt/s lora → mqtt", rate), from, to, fromDoc, toDoc)
}

func steadyIdle(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Config{})
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, fmt.Sprintf(`
[[drivers.sim]]
name = "gps"
kind = "gnss"
interval = "1s"

[uplinks.mqtt]
enabled = true
servers = [%q]
`, broker.URL()))
	cmd := startAgent(t, cfgPath, dir)
	defer stopAgent(t, cmd)
	client := &status.Client{Socket: filepath.Join(dir, "status.sock"), Timeout: 5 * time.Second}
	waitMQTT(t, client)
	time.Sleep(5 * time.Second)
	from, fromDoc := sampleProc(t, cmd.Process.Pid), fetch(t, client)
	time.Sleep(60 * time.Second)
	to, toDoc := sampleProc(t, cmd.Process.Pid), fetch(t, client)
	from.sent, to.sent = int(fromDoc.Pipeline.Stored), int(toDoc.Pipeline.Stored)
	reportSteady(t, "idle: 1 Hz gnss → mqtt", from, to, fromDoc, toDoc)
}

// perfRecord samples the daemon's stacks with perf for d
// (STEADY_PERF=/tmp/steady.perf make bench-steady; then perf report -i).
func perfRecord(t *testing.T, pid int, out string, d time.Duration) *exec.Cmd {
	t.Helper()
	c := exec.Command("perf", "record", "-F", "1999", "-g", "-p", strconv.Itoa(pid), "-o", out, "--", "sleep", strconv.Itoa(int(d.Seconds())))
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	if err := c.Start(); err != nil {
		t.Fatalf("perf: %v", err)
	}
	return c
}

// procSample is the daemon process seen from outside at one moment.
type procSample struct {
	at         time.Time
	cpu        time.Duration // utime + stime
	writeBytes uint64
	hwmKiB     int64
	sent       int
}

func sampleProc(t *testing.T, pid int) procSample {
	t.Helper()
	s := procSample{at: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: utime is
	// field 14 and stime 15 of the whole line, in clock ticks (100 Hz).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	s.cpu = time.Duration(ut+st) * 10 * time.Millisecond
	s.writeBytes = uint64(procField(t, fmt.Sprintf("/proc/%d/io", pid), "write_bytes:"))
	s.hwmKiB = procField(t, fmt.Sprintf("/proc/%d/status", pid), "VmHWM:")
	return s
}

func procField(t *testing.T, path, key string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in %s", key, path)
	return 0
}

func reportSteady(t *testing.T, what string, from, to procSample, fromDoc, toDoc *status.Doc) {
	secs := to.at.Sub(from.at).Seconds()
	n := to.sent - from.sent
	cpu := to.cpu - from.cpu
	commits := toDoc.Store.Commits - fromDoc.Store.Commits
	line := fmt.Sprintf("%s: %d records in %.1fs; CPU %.1f%% of one core", what, n, secs, 100*cpu.Seconds()/secs)
	if n > 0 {
		line += fmt.Sprintf(", %.0f µs per record; %.0f bytes written per record", float64(cpu.Microseconds())/float64(n), float64(to.writeBytes-from.writeBytes)/float64(n))
	}
	line += fmt.Sprintf("; %.0f B/s written; %.2f commits/s (%.2f fdatasync/s); peak RSS %.1f MiB",
		float64(to.writeBytes-from.writeBytes)/secs, float64(commits)/secs, 2*float64(commits)/secs, float64(to.hwmKiB)/1024)
	t.Log(line)
	fmt.Println("STEADY", line)
}

func fetch(t *testing.T, c *status.Client) *status.Doc {
	t.Helper()
	d, err := c.Fetch(context.Background())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return d
}

func waitMQTT(t *testing.T, c *status.Client) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if d, err := c.Fetch(context.Background()); err == nil && len(d.Uplinks) == 1 && d.Uplinks[0].Connected {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon's MQTT uplink did not connect within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func drainAcks(conn *net.UDPConn) {
	buf := make([]byte, 64)
	for {
		if _, err := conn.Read(buf); err != nil {
			return
		}
	}
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func stopAgent(t *testing.T, cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("daemon exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Error("daemon did not stop within 15s of SIGTERM")
	}
}
