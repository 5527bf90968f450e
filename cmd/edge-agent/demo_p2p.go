//go:build !nop2p

package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/config"
)

// How long edge-collector gets to listen, and to stop on SIGTERM, before
// the demo gives up on it (a loaded Pi is slow, not this slow).
const (
	collectorStartWait = 30 * time.Second
	collectorStopWait  = 30 * time.Second
)

// startDemoNetwork starts edge-collector as a child process on loopback,
// which the simulated device gossips to over libp2p and which receipts what
// it stored, and points cfg's p2p uplink at it. collect stops it and writes
// its export to outDir. Without edge-collector the demo runs device-only
// and says how to get the network side.
func startDemoNetwork(ctx context.Context, env *cliEnv, dir string, cfg *config.Config) (*demoNetwork, error) {
	bin, err := findCollector(env.getenv)
	if err != nil {
		about := fmt.Sprintf("no network side: %v\n"+
			"  `make demo` builds bin/edge-collector next to bin/edge-agent; or set %s=/path/to/edge-collector\n"+
			"  running device-only: the file uplink spools the records to %s\n",
			err, collectorEnv, filepath.Join(dir, "out"))
		return fileDemoNetwork(dir, cfg, about, "edge-collector was not found"), nil
	}
	colDir := filepath.Join(dir, "collector")
	if err := os.MkdirAll(colDir, 0o750); err != nil {
		return nil, err
	}
	// The key is made here, so the demo knows the collector's peer id: for
	// a file key it is the device id (p2p.HostKey checks they agree).
	keyURI := "file:" + filepath.Join(colDir, "collector.key")
	key, err := attest.OpenSigner(keyURI)
	if errors.Is(err, attest.ErrKeyNotFound) {
		key, err = attest.CreateKey(keyURI, rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("demo: collector key: %w", err)
	}
	peerID := key.DeviceID()
	cfgPath := filepath.Join(dir, "collector.toml")
	logPath := filepath.Join(dir, "collector.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the children hold their own copies
	var col *collectorChild
	var listen string
	// A free port is free only until someone takes it: a collector that
	// exits before it listens gets another port, twice.
	for attempt := 0; col == nil; attempt++ {
		port, err := freeLoopbackPort()
		if err != nil {
			return nil, err
		}
		listen = "/ip4/127.0.0.1/tcp/" + strconv.Itoa(port)
		if err := writeDemoCollectorConfig(cfgPath, colDir, listen); err != nil {
			return nil, err
		}
		c, err := startCollectorChild(bin, logFile, "run", "-c", cfgPath)
		if err != nil {
			return nil, err
		}
		if err := c.waitListening(port); err != nil {
			c.kill()
			if attempt == 2 || ctx.Err() != nil { // a Ctrl-C stops it too: no retry then
				return nil, fmt.Errorf("demo: edge-collector: %w (its log: %s)", err, logPath)
			}
			continue
		}
		col = c
	}

	cfg.Uplinks.P2P.Enabled = true
	cfg.Uplinks.P2P.Network = "demo"
	cfg.Uplinks.P2P.Bootstrap = []string{listen + "/p2p/" + peerID}
	cfg.Uplinks.P2P.Collectors = []string{peerID}
	cfg.Uplinks.P2P.MinReceipts = 1
	cfg.Uplinks.P2P.ResendAfter = config.D(2 * time.Second)
	return &demoNetwork{
		about: fmt.Sprintf("network side: %s, peer id %s, on %s, log in %s\n", bin, peerID, listen, logPath),
		close: col.kill,
		collect: func(w io.Writer, outDir string) error {
			// Stop receiving; the export reads the stopped collector's file.
			if err := col.stop(); err != nil {
				return fmt.Errorf("demo: edge-collector: %w (its log: %s)", err, logPath)
			}
			lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0o640)
			if err != nil {
				return err
			}
			defer lf.Close()
			exp, err := startCollectorChild(bin, lf, "export", "-c", cfgPath, "--out", filepath.Join(outDir, "collected.cbor"))
			if err != nil {
				return err
			}
			if err := exp.wait(); err != nil {
				return fmt.Errorf("demo: edge-collector export: %w (its log: %s)", err, logPath)
			}
			fmt.Fprintf(w, "\ncollector %s accepted these over libp2p gossip on loopback and sent signed receipts for them\n", peerID)
			return nil
		},
	}, nil
}

// writeDemoCollectorConfig writes the demo's collector.toml: the keys it
// sets, the rest edge-collector's defaults (bbolt in data_dir, no MQTT, no
// metrics).
func writeDemoCollectorConfig(path, dataDir, listen string) error {
	doc := fmt.Sprintf(`# edge-agent demo's network side (edge-collector run -c this file)
version = 1
data_dir = %s
network = "demo"
listen = [%s]
memory = "32MiB"
status_interval = "0s"
`, tomlString(dataDir), tomlString(listen))
	return os.WriteFile(path, []byte(doc), 0o640)
}

// tomlString is s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// freeLoopbackPort is a TCP port on 127.0.0.1 nobody listened on a moment ago.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("demo: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// collectorChild is one edge-collector process of the demo. kill is safe to
// call at any time and more than once; the process never outlives the
// demo (and, on Linux, dies with it: childAttr). os.StartProcess, not
// os/exec: this is all the device binary needs of a child, and os/exec
// would cost it 64 KiB.
type collectorChild struct {
	p    *os.Process
	done chan struct{}
	err  error // how it exited (nil: status 0), once done is closed
}

// startCollectorChild starts bin with args, its output appended to log. It
// shares the demo's process group: a Ctrl-C stops it cleanly too.
func startCollectorChild(bin string, log *os.File, args ...string) (*collectorChild, error) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	p, err := os.StartProcess(bin, append([]string{bin}, args...),
		&os.ProcAttr{Files: []*os.File{null, log, log}, Sys: childAttr()})
	if err != nil {
		return nil, fmt.Errorf("demo: start %s: %w", bin, err)
	}
	c := &collectorChild{p: p, done: make(chan struct{})}
	go func() {
		st, err := p.Wait()
		if err == nil && !st.Success() {
			err = errors.New(st.String())
		}
		c.err = err
		close(c.done)
	}()
	return c, nil
}

// waitListening returns once the collector accepts TCP connections on port,
// or an error if it exits or takes too long first.
func (c *collectorChild) waitListening(port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(collectorStartWait)
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-c.done:
			return fmt.Errorf("exited before it listened on %s: %v", addr, c.err)
		case <-time.After(50 * time.Millisecond): // polling another process's socket
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s after %v", addr, collectorStartWait)
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (c *collectorChild) stop() error {
	_ = c.p.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(collectorStopWait):
		c.kill()
		return fmt.Errorf("still running %v after SIGTERM: killed", collectorStopWait)
	}
	if c.err != nil {
		return fmt.Errorf("stopped with %w", c.err)
	}
	return nil
}

// wait waits for the process to exit by itself.
func (c *collectorChild) wait() error {
	<-c.done
	return c.err
}

func (c *collectorChild) kill() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.p.Kill()
	<-c.done
}
