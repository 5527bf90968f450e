package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-agent/edge-agent/doctor"
	"github.com/edge-agent/edge-agent/status/statustest"
)

func TestDoctorCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")
	missing := filepath.Join(dir, "status.sock")
	tests := []struct {
		name   string
		args   []string
		code   int
		daemon string
		says   string
	}{
		{"daemon down", []string{"-c", cfg, "--socket", missing}, 2, doctor.DaemonNotRunning, "[FAIL] daemon: the daemon is not running: nothing answers on"},
		{"daemon down, json", []string{"--json", "-c", cfg, "--socket", missing}, 2, doctor.DaemonNotRunning, `"verdict": "fail"`},
		{"daemon up", []string{"--json", "-c", cfg, "--socket", serveStatus(t, statustest.Sample(sampleNow))}, -1, doctor.DaemonRunning, `"name": "driver gps"`},
		{"bad flag", []string{"--jsn"}, 2, "", "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(context.Background(), t, cmdDoctor, tt.args...)
			if tt.code >= 0 && code != tt.code {
				t.Errorf("exit %d, want %d; stderr %s", code, tt.code, errOut)
			}
			if !strings.Contains(out+errOut, tt.says) {
				t.Errorf("output lacks %q:\n%s%s", tt.says, out, errOut)
			}
			if tt.daemon == "" {
				return
			}
			var r doctor.Report
			if strings.HasPrefix(out, "{") {
				if err := json.Unmarshal([]byte(out), &r); err != nil {
					t.Fatalf("--json: %v", err)
				}
				if r.Daemon != tt.daemon || r.ExitCode() != code {
					t.Errorf("report daemon %q exit %d, process exit %d", r.Daemon, r.ExitCode(), code)
				}
			}
		})
	}
}
