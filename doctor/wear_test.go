package doctor

import (
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/status"
)

// The card-wear check warns when the outbox's write rate would wear the
// typical card out in under five years, and says what it assumed.
func TestWearVerdict(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		rate   float64
		uptime time.Duration
		want   Level
		text   string
	}{
		{"main before issue 11 at 1 record/s", 62_000, time.Hour, Warn, "lasts about 2.0 years"},
		{"1s window at 10 records/s", 24_600, time.Hour, OK, "lasts about 5.2 years"},
		{"idle", 0, time.Hour, OK, "is not worn by it"},
		{"just started", 500_000, 10 * time.Second, OK, "under a minute ago"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := &status.Doc{Time: now, Started: now.Add(-tc.uptime), Store: status.Store{WriteRate: tc.rate}}
			lvl, msg, hint := wearVerdict(doc)
			if lvl != tc.want || !strings.Contains(msg, tc.text) || !strings.Contains(msg, "4 TB") {
				t.Fatalf("got %v %q %q; want %v with %q and the 4 TB assumption", lvl, msg, hint, tc.want, tc.text)
			}
			if lvl == Warn && !strings.Contains(hint, "commit_interval") {
				t.Fatalf("warning without the fix: %q", hint)
			}
		})
	}
}
