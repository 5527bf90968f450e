package doctor

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/status"
)

func TestCheckUpdate(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	write := func(t *testing.T, dir, name, body string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	rb := func(at time.Time) string {
		b, _ := json.Marshal(status.Rollback{From: "1.4.0", To: "1.3.2", Reason: "no READY within 2m0s", At: at})
		return string(b)
	}
	tests := []struct {
		name  string
		files map[string]string
		level Level
		want  string
	}{
		{"never upgraded", nil, OK, "no upgrade pending"},
		{"pending", map[string]string{status.UpdatePendingFile: "1.3.2 1.4.0\n"}, OK, "upgrade from 1.3.2 to 1.4.0 is waiting"},
		{"fresh rollback, not signed yet", map[string]string{status.UpdateRollbackFile: rb(now.Add(-time.Hour))}, Warn, "edge-agent 1.4.0 failed its post-upgrade health gate 60 min ago (no READY within 2m0s) and was rolled back to 1.3.2; the daemon has not signed"},
		{"fresh rollback, signed", map[string]string{status.UpdateRollbackReportedFile: rb(now.Add(-time.Hour))}, Warn, "rolled back to 1.3.2"},
		{"old rollback", map[string]string{status.UpdateRollbackReportedFile: rb(now.Add(-30 * 24 * time.Hour))}, OK, "last rollback: 1.4.0 to 1.3.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, b := range tt.files {
				write(t, dir, n, b)
			}
			h := Host{Now: func() time.Time { return now }}
			lvl, msg, next := h.checkUpdate(dir).Fn(context.Background())
			if lvl != tt.level || !strings.Contains(msg, tt.want) {
				t.Fatalf("got %v %q, want %v containing %q", lvl, msg, tt.level, tt.want)
			}
			if lvl == Warn && !strings.Contains(next, "edge-agent-rollback") {
				t.Fatalf("a rollback warning must say where the pin is: %q", next)
			}
		})
	}
}
