package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// agentBin is the edge-agent binary built once for the tests that need a
// real child process.
var agentBin string

// binDir holds agentBin; edge-collector is built under it on first use.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "edge-agent-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	agentBin = filepath.Join(dir, "edge-agent")
	build := exec.Command("go", "build", "-o", agentBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building edge-agent for the tests: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	collectorOnce sync.Once
	collectorPath string
	collectorErr  error
)

// collectorBinary is cmd/edge-collector, built once, in a directory of its
// own: not next to agentBin, where edge-agent would find it unasked.
func collectorBinary(t testing.TB) string {
	t.Helper()
	collectorOnce.Do(func() {
		collectorPath = filepath.Join(binDir, "collector", "edge-collector")
		build := exec.Command("go", "build", "-o", collectorPath, "../edge-collector")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			collectorErr = fmt.Errorf("building edge-collector for the tests: %v\n%s", err, out)
		}
	})
	if collectorErr != nil {
		t.Fatal(collectorErr)
	}
	return collectorPath
}

// cli runs a command in-process and returns exit code, stdout, stderr.
func cli(t testing.TB, args ...string) (int, string, string) {
	t.Helper()
	return cliEnvVars(t, nil, args...)
}

// cliEnvVars is cli with these environment variables (and no others).
func cliEnvVars(t testing.TB, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := runCLI(ctx, env, args)
	return code, out.String(), errb.String()
}

// writeConfig writes a daemon config under dir with the given extra TOML.
func writeConfig(t testing.TB, dir, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`version = 1
[device]
key = "file:%[1]s/device.key"
data_dir = "%[1]s"
[log]
format = "json"
[status]
socket = "%[1]s/status.sock"
metrics_listen = ""
%[2]s
`, dir, extra)
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
