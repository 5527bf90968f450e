package doctor

import (
	"strings"
	"testing"

	"github.com/edge-agent/edge-agent/status"
)

func TestDiskVerdictThresholds(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name        string
		free, total int64
		quota       int64
		want        Level
		msg         string
	}{
		{"small card, mostly free", 55 * mib, 60 * mib, 16 * mib, OK, "92%"},
		{"big card, little free", 40 * mib, 29 << 30, 16 * mib, Fail, "0%"},
		{"small card, nearly full", 5 * mib, 60 * mib, 1 * mib, Fail, ""},
		{"quota beyond the filesystem", 500 * mib, 1 << 30, 2 << 30, Warn, "larger than the whole filesystem"},
		{"quota beyond the free space", 500 * mib, 1 << 30, 600 * mib, Warn, "larger than that"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lvl, msg, _ := diskVerdict(status.Disk{Path: "/var/lib/edge-agent", FreeBytes: tt.free, TotalBytes: tt.total}, tt.quota)
			if lvl != tt.want || !strings.Contains(msg, tt.msg) {
				t.Errorf("diskVerdict = %v %q, want %v containing %q", lvl, msg, tt.want, tt.msg)
			}
		})
	}
}

func TestUplinkNextNamesTheCause(t *testing.T) {
	for why, want := range map[string]string{
		"broker rejected the username/password":                                          "username and password",
		"TLS: broker certificate signed by an unknown authority — check ca_file":         "ca_file",
		"the server accepted the connection but did not answer the MQTT CONNECT in time": "port",
		"broker unreachable: connection refused":                                         "check the network",
	} {
		if got := uplinkNext(why); !strings.Contains(got, want) {
			t.Errorf("uplinkNext(%q) = %q, want it to mention %q", why, got, want)
		}
	}
}
