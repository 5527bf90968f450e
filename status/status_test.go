package status_test

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/status/statustest"
)

var testNow = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

// serve starts a real server on a socket in a temporary directory and stops
// it at the end of the test.
func serve(tb testing.TB, src status.Source, o status.ServerOpts) *status.Server {
	tb.Helper()
	if o.Socket == "" {
		o.Socket = filepath.Join(tb.TempDir(), "status.sock")
	}
	srv, err := status.Listen(src, o)
	if err != nil {
		tb.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Run(ctx); err != nil {
			tb.Errorf("Run: %v", err)
		}
	}()
	tb.Cleanup(func() { cancel(); wg.Wait() })
	return srv
}

func TestFetchRoundTrip(t *testing.T) {
	src := statustest.NewSource(statustest.Sample(testNow))
	srv := serve(t, src, status.ServerOpts{})
	doc, err := (&status.Client{Socket: srv.Socket()}).Fetch(context.Background())
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if doc.Schema != status.SchemaVersion {
		t.Errorf("schema = %d, want %d", doc.Schema, status.SchemaVersion)
	}
	want := statustest.Sample(testNow)
	if doc.Identity != want.Identity || doc.Store.HeadSeq != want.Store.HeadSeq || len(doc.Drivers) != 3 ||
		doc.Drivers[0].GNSS == nil || doc.Drivers[0].GNSS.Satellites != 9 || doc.Uptime() != 26*time.Hour {
		t.Errorf("document did not round-trip: got %+v", doc)
	}
	if *doc.Drivers[0].GNSS.ClockOffsetSeconds != 0.04 {
		t.Errorf("gnss clock offset = %v, want 0.04", *doc.Drivers[0].GNSS.ClockOffsetSeconds)
	}
}

func TestServerFillsSchemaAndTime(t *testing.T) {
	src := statustest.NewSource(&status.Doc{Identity: status.Identity{DeviceID: "x"}})
	srv := serve(t, src, status.ServerOpts{Now: func() time.Time { return testNow }})
	doc, err := (&status.Client{Socket: srv.Socket()}).Fetch(context.Background())
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if doc.Schema != status.SchemaVersion || !doc.Time.Equal(testNow) {
		t.Errorf("schema %d time %v, want %d %v", doc.Schema, doc.Time, status.SchemaVersion, testNow)
	}
}

func TestSocketMode(t *testing.T) {
	tests := []struct {
		name string
		mode os.FileMode
		want os.FileMode
	}{
		{"default 0660", 0, 0o660},
		{"explicit 0600", 0o600, 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := setUmask(0o022) // a umask that would give 0755 without the chmod
			defer setUmask(old)
			srv := serve(t, statustest.NewSource(statustest.Sample(testNow)), status.ServerOpts{Mode: tt.mode})
			fi, err := os.Lstat(srv.Socket())
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != os.ModeSocket {
				t.Errorf("%s is %v, not a socket", srv.Socket(), fi.Mode())
			}
			if got := fi.Mode().Perm(); got != tt.want {
				t.Errorf("socket mode = %o, want %o", got, tt.want)
			}
			leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(srv.Socket()), ".*tmp"))
			if len(leftovers) != 0 {
				t.Errorf("temporary socket names left behind: %v", leftovers)
			}
		})
	}
}

func TestSocketGroup(t *testing.T) {
	srv := serve(t, statustest.NewSource(statustest.Sample(testNow)), status.ServerOpts{Group: "12345"})
	fi, err := os.Lstat(srv.Socket())
	if err != nil {
		t.Fatal(err)
	}
	if gid := statGID(fi); gid != 12345 {
		t.Errorf("socket gid = %d, want 12345", gid)
	}
	if _, err := status.Listen(statustest.NewSource(nil), status.ServerOpts{
		Socket: filepath.Join(t.TempDir(), "s.sock"), Group: "no-such-group-edge-agent"}); err == nil ||
		!strings.Contains(err.Error(), "no-such-group-edge-agent") {
		t.Errorf("Listen with an unknown group: err = %v, want one naming the group", err)
	}
}

func TestClientErrors(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the file stays, nobody listens: a crashed daemon

	newer := serveRaw(t, `{"schema": 99, "time": "2026-01-01T00:00:00Z"}`)
	notDoc := serveRaw(t, `{"hello": "world"}`)
	failing := serve(t, func() status.Source {
		s := statustest.NewSource(nil)
		s.Set(nil, errors.New("store: stats: outbox is closed"))
		return s
	}(), status.ServerOpts{})

	tests := []struct {
		name   string
		socket string
		is     error
		say    string
	}{
		{"no socket", filepath.Join(dir, "missing.sock"), status.ErrNotRunning, "no socket at " + filepath.Join(dir, "missing.sock")},
		{"stale socket", stale, status.ErrNotRunning, "systemctl start edge-agent"},
		{"newer schema", newer, status.ErrSchema, "schema 99"},
		{"not a document", notDoc, status.ErrSchema, "no schema version"},
		{"source fails", failing.Socket(), nil, "outbox is closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&status.Client{Socket: tt.socket, Timeout: 5 * time.Second}).Fetch(context.Background())
			if err == nil {
				t.Fatal("Fetch succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.say) || !strings.HasPrefix(err.Error(), "status: ") {
				t.Errorf("err = %q, want it to start with \"status: \" and say %q", err, tt.say)
			}
		})
	}
}

// serveRaw answers every request with body, like a foreign or future daemon.
func serveRaw(tb testing.TB, body string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "raw.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(body))
	})}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return path
}

func TestListenReplacesStaleAndRefusesLive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "status.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()

	srv := serve(t, statustest.NewSource(statustest.Sample(testNow)), status.ServerOpts{Socket: path})
	if _, err := (&status.Client{Socket: srv.Socket()}).Fetch(context.Background()); err != nil {
		t.Fatalf("Fetch after replacing a stale socket: %v", err)
	}
	_, err = status.Listen(statustest.NewSource(nil), status.ServerOpts{Socket: path})
	if !errors.Is(err, status.ErrInUse) {
		t.Errorf("second Listen on a live socket: err = %v, want ErrInUse", err)
	}

	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("x"), 0o644)
	if _, err := status.Listen(statustest.NewSource(nil), status.ServerOpts{Socket: plain}); err == nil ||
		!strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: err = %v, want \"not a socket\"", err)
	}
	if data, _ := os.ReadFile(plain); string(data) != "x" {
		t.Error("Listen damaged a regular file at the socket path")
	}
}

func TestRunRemovesSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.sock")
	srv, err := status.Listen(statustest.NewSource(statustest.Sample(testNow)), status.ServerOpts{Socket: path})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	if _, err := (&status.Client{Socket: path}).Fetch(context.Background()); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket still there after Run returned: %v", err)
	}
	if _, err := (&status.Client{Socket: path}).Fetch(context.Background()); !errors.Is(err, status.ErrNotRunning) {
		t.Errorf("Fetch after stop: err = %v, want ErrNotRunning", err)
	}
}

func TestMethodAndPath(t *testing.T) {
	srv := serve(t, statustest.NewSource(statustest.Sample(testNow)), status.ServerOpts{})
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", srv.Socket())
	}}}
	tests := []struct {
		name, method, path string
		code               int
	}{
		{"get", http.MethodGet, status.DocPath, http.StatusOK},
		{"post", http.MethodPost, status.DocPath, http.StatusMethodNotAllowed},
		{"unknown path", http.MethodGet, "/v2/status", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://x"+tt.path, nil)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
		})
	}
}

func TestHost(t *testing.T) {
	c, err := status.KernelClock()
	if err != nil {
		t.Fatalf("KernelClock: %v", err)
	}
	if c.Synced == nil || c.MaxErrorSeconds < 0 {
		t.Errorf("KernelClock = %+v", c)
	}
	d, err := status.StatDisk(t.TempDir())
	if err != nil {
		t.Fatalf("StatDisk: %v", err)
	}
	if d.TotalBytes <= 0 || d.FreeBytes < 0 || d.FreeBytes > d.TotalBytes || d.ReadOnly {
		t.Errorf("StatDisk(tempdir) = %+v", d)
	}
	if _, err := status.StatDisk(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("StatDisk of a missing path succeeded")
	}
}

// A document JSON cannot carry (a NaN from a driver) is a loud 500 with a
// reason, never a 200 with an empty body.
func TestServerFailsLoudlyOnUnencodableDoc(t *testing.T) {
	doc := statustest.Sample(testNow)
	doc.Clock.MaxErrorSeconds = math.NaN()
	srv := serve(t, statustest.NewSource(doc), status.ServerOpts{})
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", srv.Socket())
	}}}
	resp, err := c.Get("http://x" + status.DocPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status code %d, want 500", resp.StatusCode)
	}
	_, err = (&status.Client{Socket: srv.Socket()}).Fetch(context.Background())
	if !errors.Is(err, status.ErrDaemonFailed) || !strings.Contains(err.Error(), "cannot encode its status document") {
		t.Errorf("Fetch = %v, want it to say the daemon cannot encode its document", err)
	}
}

// Idle local clients cannot take the daemon's descriptors: beyond MaxConns
// they wait in the kernel's backlog, and an idle one loses its slot.
func TestServerLimitsConnections(t *testing.T) {
	srv := serve(t, statustest.NewSource(statustest.Sample(testNow)), status.ServerOpts{})
	before := openFDs(t)
	const n = 200
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("unix", srv.Socket())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, c)
	}
	time.Sleep(200 * time.Millisecond) // let the server accept what it will
	if extra := openFDs(t) - before - n; extra > status.MaxConns+2 {
		t.Errorf("server holds %d descriptors for %d idle clients, want at most %d", extra, n, status.MaxConns)
	}
	for _, c := range conns {
		c.Close()
	}
	// Fill every slot with a client that sends nothing: the header timeout
	// frees them and a real client gets its answer.
	for range status.MaxConns {
		c, err := net.Dial("unix", srv.Socket())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	start := time.Now()
	if _, err := (&status.Client{Socket: srv.Socket(), Timeout: 15 * time.Second}).Fetch(context.Background()); err != nil {
		t.Fatalf("Fetch behind %d idle clients: %v", status.MaxConns, err)
	}
	t.Logf("answered after %v behind %d idle clients", time.Since(start).Round(time.Millisecond), status.MaxConns)
}

func openFDs(tb testing.TB) int {
	tb.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatal(err)
	}
	return len(ents)
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain\tline\n":        "plain\tline\n",
		"°C, 42 %RH":           "°C, 42 %RH",
		"a\x1b[2Jb":            `a\x1b[2Jb`,
		"csi\u009b31m":         `csi\u009b31m`,
		"bad\xffutf8\r":        `bad\xffutf8\x0d`,
		"del\x7f and nul\x00.": `del\x7f and nul\x00.`,
	} {
		if got := status.Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}
