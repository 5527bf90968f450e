package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fakeCollector writes an edge-collector into dir that prints its pid and
// arguments and exits 7.
func fakeCollector(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, collectorBin)
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho \"pid=$$ args=$*\"\nexit 7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// runAgent runs bin (edge-agent) with args and exactly env, returning its
// pid, exit status, stdout and stderr.
func runAgent(t *testing.T, bin string, env []string, args ...string) (pid, code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.Process.Pid, cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// TestCollectHandsOver: `edge-agent collect …` execs edge-collector (the
// process itself becomes it: same pid, its exit status) with the same
// subcommand and flags, found through $EDGE_COLLECTOR, next to the
// executable, or on PATH, in that order. Without one it says which package
// to install.
func TestCollectHandsOver(t *testing.T) {
	onPath := t.TempDir()
	fakeCollector(t, onPath)
	// A copy of edge-agent with an edge-collector beside it.
	besideDir := t.TempDir()
	fakeCollector(t, besideDir)
	besideAgent := filepath.Join(besideDir, "edge-agent")
	b, err := os.ReadFile(agentBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(besideAgent, b, 0o755); err != nil {
		t.Fatal(err)
	}
	explicit := fakeCollector(t, t.TempDir())

	cfg := filepath.Join(t.TempDir(), "c.toml")
	tests := []struct {
		name     string
		bin      string
		env      []string
		args     []string
		wantArgs string // what edge-collector got
		from     string // where it was found
	}{
		{"run is the default", agentBin, []string{"PATH=" + onPath}, []string{"collect"}, "run", onPath},
		{"run flags", agentBin, []string{"PATH=" + onPath}, []string{"collect", "run", "--config", cfg, "--log-level", "debug"},
			"run -c " + cfg + " --log-level=debug", onPath},
		{"status --json", agentBin, []string{"PATH=/nonexistent:" + onPath}, []string{"collect", "status", "-c", cfg, "--json"},
			"status -c " + cfg + " --json=true", onPath},
		{"export --out", agentBin, []string{"PATH=" + onPath}, []string{"collect", "export", "-c", cfg, "--out", "x.cbor"},
			"export -c " + cfg + " --out=x.cbor", onPath},
		{"next to the executable before PATH", besideAgent, []string{"PATH=" + onPath}, []string{"collect", "status"}, "status", besideDir},
		{"EDGE_COLLECTOR first", besideAgent, []string{"PATH=" + onPath, collectorEnv + "=" + explicit}, []string{"collect", "status"}, "status", filepath.Dir(explicit)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pid, code, out, errOut := runAgent(t, tt.bin, tt.env, tt.args...)
			if want := "pid=" + strconv.Itoa(pid) + " args=" + tt.wantArgs + "\n"; code != 7 || out != want {
				t.Fatalf("exit %d, stdout %q; want 7 and %q (exec'd in place)\nstderr: %s", code, out, want, errOut)
			}
			if !strings.Contains(errOut, "running "+filepath.Join(tt.from, collectorBin)+" "+tt.wantArgs) {
				t.Errorf("stderr %q does not say which edge-collector runs", errOut)
			}
		})
	}

	t.Run("not installed", func(t *testing.T) {
		_, code, out, errOut := runAgent(t, agentBin, []string{"PATH=" + t.TempDir()}, "collect", "run", "-c", cfg)
		if code != 1 || out != "" {
			t.Fatalf("exit %d, stdout %q; want 1 and nothing", code, out)
		}
		for _, want := range []string{"network side is its own package now", "install package edge-collector", "edge-collector run -c FILE"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr %q lacks %q", errOut, want)
			}
		}
	})
	t.Run("EDGE_COLLECTOR not executable", func(t *testing.T) {
		_, code, _, errOut := runAgent(t, agentBin, []string{"PATH=" + onPath, collectorEnv + "=" + cfg}, "collect", "status")
		if code != 1 || !strings.Contains(errOut, collectorEnv+"="+cfg+" is not an executable file") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("command line mistakes stay edge-agent's", func(t *testing.T) {
		_, code, out, errOut := runAgent(t, agentBin, []string{"PATH=" + onPath}, "collect", "status", "--cpuprofile", "x")
		if code != 2 || out != "" || !strings.Contains(errOut, "flag provided but not defined") {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and a usage error, edge-collector not run", code, out, errOut)
		}
	})
}

// TestCollectKeepsOldConfig: with no -c, the pre-split default
// /etc/edge-agent/collector.toml is passed on where it exists; a -c or
// --config the user gave always wins.
func TestCollectKeepsOldConfig(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		oldExists bool
		want      []string
	}{
		{"old default exists", nil, true, []string{"run", "-c", oldCollectorConfig}},
		{"no old default: edge-collector's own", nil, false, []string{"run"}},
		{"-c wins", []string{"-c", "/x.toml"}, true, []string{"run", "-c", "/x.toml"}},
		{"--config wins", []string{"--config", "/x.toml", "--log-level", "warn"}, true, []string{"run", "-c", "/x.toml", "--log-level=warn"}},
		{"both spellings: the last", []string{"-c", "/a.toml", "--config", "/b.toml"}, false, []string{"run", "-c", "/b.toml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := collectFlags(&cliEnv{stdout: io.Discard, stderr: io.Discard}, "run")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			got := collectorArgs("edge-collector", "run", fs.FlagSet, tt.oldExists)
			if want := append([]string{"edge-collector"}, tt.want...); !slices.Equal(got, want) {
				t.Fatalf("argv %q, want %q", got, want)
			}
		})
	}
}
