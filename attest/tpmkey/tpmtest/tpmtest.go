// Package tpmtest runs a software TPM (swtpm, Debian packages swtpm and
// swtpm-tools, installed by make test-deps) on free loopback ports for tests
// of tpm: keys.
package tpmtest

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// SWTPM is one swtpm child process. It serves one connection at a time, so
// close a key before another process opens it.
type SWTPM struct {
	tb     testing.TB
	dir    string
	port   int
	ctrl   int
	cmd    *exec.Cmd
	stderr bytes.Buffer
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start starts swtpm with a fresh state directory; it is SIGKILLed at
// cleanup.
func Start(tb testing.TB) *SWTPM {
	tb.Helper()
	s := &SWTPM{tb: tb, dir: tb.TempDir(), port: freePort(tb), ctrl: freePort(tb)}
	s.Restart()
	tb.Cleanup(s.Kill)
	return s
}

// URI is the tpm: key URI of the simulator (default handle).
func (s *SWTPM) URI() string { return fmt.Sprintf("tpm:tcp://127.0.0.1:%d", s.port) }

// Restart starts swtpm again on the same state and ports (after Kill).
func (s *SWTPM) Restart() {
	s.tb.Helper()
	path, err := exec.LookPath("swtpm")
	if err != nil {
		s.tb.Fatalf("swtpm is not installed (make test-deps installs swtpm and swtpm-tools): %v", err)
	}
	s.cmd = exec.Command(path, "socket", "--tpm2", "--tpmstate", "dir="+s.dir,
		"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", s.port),
		"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", s.ctrl),
		"--flags", "not-need-init,startup-clear")
	s.stderr.Reset()
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err == nil {
			c.Close()
			return
		}
	}
	s.tb.Fatalf("swtpm did not listen on %d: %s", s.port, s.stderr.String())
}

// Kill SIGKILLs swtpm: the TPM vanishes.
func (s *SWTPM) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGKILL)
		s.cmd.Wait()
		s.cmd = nil
	}
}

// PID is the process id, for CPU accounting (0 when not running).
func (s *SWTPM) PID() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}
