package doctor

import (
	"context"
	"fmt"
	"time"

	"github.com/edge-agent/edge-agent/status"
)

// rollbackRecent is how long a rollback stays a warning: long enough for
// someone to look at the fleet, short enough not to nag for good.
const rollbackRecent = 7 * 24 * time.Hour

// checkUpdate reports the post-upgrade health gate's files: an upgrade it
// has not judged yet, and the last release it rolled back. It reads them
// from the data directory, so it says the same with the daemon up or down.
func (h *Host) checkUpdate(dataDir string) Check {
	return Check{"software update", func(context.Context) (Level, string, string) {
		u := status.ReadUpdate(dataDir)
		return updateVerdict(u, h.Now())
	}}
}

func updateVerdict(u *status.Update, now time.Time) (Level, string, string) {
	if u == nil {
		return OK, "no upgrade pending, no rollback", ""
	}
	if rb := u.LastRollback; rb != nil && now.Sub(rb.At) < rollbackRecent {
		msg := fmt.Sprintf("edge-agent %s failed its post-upgrade health gate %s ago (%s) and was rolled back to %s",
			rb.From, roughly(now.Sub(rb.At)), rb.Reason, rb.To)
		if !rb.Reported {
			msg += "; the daemon has not signed the rollback record yet"
		}
		return Warn, msg, "the release is pinned away in /etc/apt/preferences.d/edge-agent-rollback; `journalctl -u edge-agent-health-gate` says what failed; delete the pin file to allow that release again"
	}
	if u.PendingTo != "" {
		return OK, fmt.Sprintf("upgrade from %s to %s is waiting for the health gate", u.PendingFrom, u.PendingTo), ""
	}
	rb := u.LastRollback
	return OK, fmt.Sprintf("last rollback: %s to %s, %s ago", rb.From, rb.To, roughly(now.Sub(rb.At))), ""
}
