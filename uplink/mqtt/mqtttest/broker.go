// Package mqtttest runs a real mosquitto for tests: one broker process per
// test on a free loopback port, generated configuration, optional password
// file and TLS listener with certificates made on the fly (see PKI), and a
// recording subscriber.
//
// Concurrency: a Broker is driven by the test goroutine (Stop, Start);
// URL and Port may be read from any goroutine. A Recorder is safe for
// concurrent use.
package mqtttest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Paths of the Debian package's binaries.
const (
	MosquittoBin = "/usr/sbin/mosquitto"
	PasswdBin    = "/usr/bin/mosquitto_passwd"
)

// Config describes one broker.
type Config struct {
	// Users maps username to password; when set, anonymous clients are
	// refused.
	Users map[string]string
	// TLS, when set, makes the listener ssl://.
	TLS *TLS
	// Persistence keeps sessions across Stop/Start (a file in the test's
	// temporary directory). Without it a restart forgets every session.
	Persistence bool
	// MaxInflight is mosquitto's max_inflight_messages (QoS 1 messages
	// sent to one client and not yet PUBACKed); 0 = 200.
	MaxInflight int
}

// TLS is the broker side of a TLS listener.
type TLS struct {
	CAFile, CertFile, KeyFile string
	// RequireClientCert makes the broker demand a client certificate
	// signed by CAFile (mutual TLS).
	RequireClientCert bool
}

// Broker is a running (or stopped) mosquitto.
type Broker struct {
	tb   testing.TB
	cfg  Config
	dir  string
	port int
	conf string
	log  string

	mu        sync.Mutex
	cmd       *exec.Cmd
	cmdExited chan error
}

// Start writes the configuration, starts mosquitto, waits until it accepts
// connections and stops it at the end of the test. It fails the test (it
// never skips) when mosquitto is not installed.
func Start(tb testing.TB, cfg Config) *Broker {
	tb.Helper()
	RequireMosquitto(tb)
	b := &Broker{tb: tb, cfg: cfg, dir: tb.TempDir(), port: freePort(tb)}
	b.conf = filepath.Join(b.dir, "mosquitto.conf")
	b.log = filepath.Join(b.dir, "mosquitto.log")
	if err := os.WriteFile(b.conf, []byte(b.config(tb)), 0o600); err != nil {
		tb.Fatalf("mqtttest: write mosquitto.conf: %v", err)
	}
	tb.Cleanup(func() {
		b.Stop()
		if tb.Failed() {
			if out, err := os.ReadFile(b.log); err == nil {
				tb.Logf("mosquitto log:\n%s", out)
			}
		}
	})
	b.Restart()
	return b
}

// RequireMosquitto fails the test with the install command when the
// mosquitto package is absent.
func RequireMosquitto(tb testing.TB) {
	tb.Helper()
	for _, p := range []string{MosquittoBin, PasswdBin} {
		if _, err := os.Stat(p); err != nil {
			tb.Fatalf("mqtttest: %s not found: install mosquitto: apt-get install -y mosquitto", p)
		}
	}
}

func (b *Broker) config(tb testing.TB) string {
	tb.Helper()
	var c strings.Builder
	fmt.Fprintf(&c, "per_listener_settings false\n")
	// mosquitto started as root drops to the "mosquitto" user, which could
	// not read the test's private temporary directory.
	if u, err := user.Current(); err == nil {
		fmt.Fprintf(&c, "user %s\n", u.Username)
	}
	// Subscribers in tests must never lose QoS 1 messages to a queue limit.
	inflight := b.cfg.MaxInflight
	if inflight == 0 {
		inflight = 200
	}
	fmt.Fprintf(&c, "max_queued_messages 0\nmax_inflight_messages %d\nset_tcp_nodelay true\n", inflight)
	fmt.Fprintf(&c, "log_dest file %s\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\nconnection_messages true\n", b.log)
	if b.cfg.Persistence {
		fmt.Fprintf(&c, "persistence true\npersistence_location %s/\n", b.dir)
	} else {
		fmt.Fprintf(&c, "persistence false\n")
	}
	if len(b.cfg.Users) > 0 {
		pw := filepath.Join(b.dir, "passwd")
		if err := os.WriteFile(pw, nil, 0o600); err != nil {
			tb.Fatalf("mqtttest: create password file: %v", err)
		}
		for name, pass := range b.cfg.Users {
			out, err := exec.Command(PasswdBin, "-b", pw, name, pass).CombinedOutput()
			if err != nil {
				tb.Fatalf("mqtttest: mosquitto_passwd %s: %v: %s", name, err, out)
			}
		}
		fmt.Fprintf(&c, "allow_anonymous false\npassword_file %s\n", pw)
	} else {
		fmt.Fprintf(&c, "allow_anonymous true\n")
	}
	fmt.Fprintf(&c, "listener %d 127.0.0.1\n", b.port)
	if t := b.cfg.TLS; t != nil {
		fmt.Fprintf(&c, "cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate %t\n", t.CAFile, t.CertFile, t.KeyFile, t.RequireClientCert)
	}
	return c.String()
}

// URL is the broker's address for the client: tcp:// or ssl://.
func (b *Broker) URL() string {
	scheme := "tcp"
	if b.cfg.TLS != nil {
		scheme = "ssl"
	}
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, b.port)
}

// Port is the loopback port, kept across restarts.
func (b *Broker) Port() int { return b.port }

// Restart starts mosquitto again on the same port (after Stop), waiting until
// it accepts connections.
func (b *Broker) Restart() {
	b.tb.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		b.tb.Fatalf("mqtttest: Restart while mosquitto is running")
	}
	var stderr bytes.Buffer
	cmd := exec.Command(MosquittoBin, "-c", b.conf)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.tb.Fatalf("mqtttest: start mosquitto: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(b.log)
			b.tb.Fatalf("mqtttest: mosquitto exited at start: %v\nstderr: %s\nlog: %s", err, stderr.String(), log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			b.tb.Fatalf("mqtttest: mosquitto not accepting connections on port %d after 10s", b.port)
		}
	}
	b.cmd = cmd
	b.cmdExited = exited
}

// Stop ends mosquitto gracefully (SIGTERM, so a persistent broker saves its
// sessions) and waits for it. Stopping a stopped broker does nothing.
func (b *Broker) Stop() { b.end(syscall.SIGTERM) }

// Kill ends mosquitto with SIGKILL: a broker that dies without saving.
func (b *Broker) Kill() { b.end(syscall.SIGKILL) }

func (b *Broker) end(sig syscall.Signal) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(sig)
	var err error
	select {
	case err = <-b.cmdExited:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		err = <-b.cmdExited
	}
	if err != nil && !isKilled(err) {
		b.tb.Logf("mqtttest: mosquitto exited: %v", err)
	}
	b.cmd = nil
}

func isKilled(err error) bool {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			return ws.Signaled()
		}
	}
	return false
}

// freePort asks the kernel for an unused loopback port.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("mqtttest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
