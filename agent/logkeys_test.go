package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/config"
)

// lockedBuffer collects log lines from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// duplicateKey returns the first key that occurs twice in one object of
// the JSON document line, or "".
func duplicateKey(line string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	type obj struct {
		keys  map[string]bool
		isKey bool // the next string token is a key
	}
	var stack []*obj
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		var top *obj
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				if top != nil {
					top.isKey = true
				}
				stack = append(stack, &obj{keys: map[string]bool{}, isKey: true})
				continue
			case '[':
				stack = append(stack, nil)
				continue
			case '}', ']':
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1] != nil {
					stack[len(stack)-1].isKey = true
				}
				continue
			}
		case string:
			if top != nil && top.isKey {
				if top.keys[t] {
					return t, nil
				}
				top.keys[t] = true
				top.isKey = false
				continue
			}
		}
		if top != nil {
			top.isKey = true
		}
	}
}

func TestDuplicateKeyFinder(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`, ""},
		{`{"component":"agent","driver":"x","component":"gnss"}`, "component"},
		{`{"x":{"driver":"a","n":[1,2],"driver":"b"}}`, "driver"},
	} {
		if got, err := duplicateKey(tc.line); got != tc.want || err != nil {
			t.Errorf("duplicateKey(%s) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
}

// TestLogLinesCarryEachKeyOnce: every line the daemon writes while its
// drivers look for absent hardware names component and driver once.
func TestLogLinesCarryEachKeyOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := configIn(dir)
	c, err := config.Parse([]byte(fmt.Sprintf(`version = 1
[[drivers.gnss]]
name = "gps"
device = %q
[[drivers.env]]
name = "air"
bus = %q
[[drivers.lora]]
name = "hotspot"
listen = "127.0.0.1:0"
upstreams = []
[[drivers.energy]]
name = "meter"
transport = "tcp"
addr = "127.0.0.1:1"
[[drivers.camera]]
name = "dash"
dir = %q
[[drivers.obd]]
name = "car"
device = %q
[uplinks.mqtt]
enabled = true
servers = ["tcp://127.0.0.1:1"]
`, filepath.Join(dir, "ttyGPS"), "/dev/i2c-97", filepath.Join(dir, "dcim"), filepath.Join(dir, "ttyOBD"))))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Drivers = c.Drivers
	cfg.Uplinks.File.Enabled = true
	var logs lockedBuffer
	a, err := New(Options{Config: &cfg, CreateKey: true, Version: "test",
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	condtest.WaitFor(t, 20*time.Second, "every driver's probe logged", func() bool {
		s := logs.String()
		return strings.Count(s, `"msg":"driver skipped`)+strings.Count(s, `"msg":"driver cannot use`)+strings.Count(s, `"msg":"driver found`) >= 6
	})
	cancel()
	<-done
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	drivers := 0
	for _, l := range lines {
		k, err := duplicateKey(l)
		if err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, l)
		}
		if k != "" {
			t.Errorf("key %q twice: %s", k, l)
		}
		if strings.Contains(l, `"driver":`) {
			drivers++
		}
	}
	if drivers < 6 {
		t.Fatalf("only %d of %d lines name a driver; the test saw too little:\n%s", drivers, len(lines), logs.String())
	}
}
