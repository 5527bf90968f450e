package doctor

import (
	"fmt"
	"time"

	"github.com/edge-agent/edge-agent/status"
)

// The card-wear check turns the outbox's write rate into years of SD card
// life. The assumption, stated wherever the figure is shown: a typical 32 GB
// consumer microSD card survives about 500 erase cycles of its whole flash
// (16 TB), and small synchronous writes such as a commit's 4 KiB pages cost
// it about 4× their size in flash writes, so about 4 TB written by the host.
const (
	CardEnduranceBytes = 4e12
	// wearWarnYears: a card that would wear out sooner gets a warning.
	wearWarnYears = 5
	// wearMinUptime: the rate averages the last minute; before that it is
	// the start-up (open, first commits) more than the steady state.
	wearMinUptime = time.Minute
)

// CardYears is how long the typical card lasts at bytesPerSec.
func CardYears(bytesPerSec float64) float64 {
	if bytesPerSec <= 0 {
		return 0
	}
	return CardEnduranceBytes / bytesPerSec / (365.25 * 86400)
}

// WearText says, in a phrase, how long a typical card lasts at bytesPerSec.
func WearText(bytesPerSec float64) string {
	assume := "a typical 32 GB card, assumed to take 4 TB of small writes"
	if bytesPerSec <= 0 {
		return assume + ", is not worn by it"
	}
	y := CardYears(bytesPerSec)
	if y >= 100 {
		return assume + ", outlives the device at that rate (over 100 years)"
	}
	return fmt.Sprintf("%s, lasts about %.1f years at that rate", assume, y)
}

func wearVerdict(doc *status.Doc) (Level, string, string) {
	rate := doc.Store.WriteRate
	msg := fmt.Sprintf("the outbox writes %s/s (last minute); %s", humanBytes(int64(rate)), WearText(rate))
	if doc.Uptime() < wearMinUptime {
		return OK, msg + " (the daemon started under a minute ago: look again later)", ""
	}
	if y := CardYears(rate); rate > 0 && y < wearWarnYears {
		return Warn, msg, fmt.Sprintf("under %d years: raise pipeline.commit_interval (each commit rewrites a few 4 KiB pages, "+
			"whatever it holds), or use a high-endurance card or a USB SSD for data_dir", wearWarnYears)
	}
	return OK, msg, ""
}
