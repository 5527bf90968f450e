package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/edge-agent/edge-agent/status"
)

// errReported is an exitError's error when the command already printed what
// went wrong in its own words.
var errReported = errors.New("")

// clearScreen homes the cursor and clears the terminal (ANSI), so --watch
// redraws in place on any SSH client.
const clearScreen = "\x1b[H\x1b[2J"

func cmdStatus(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "status", "status [--json] [--watch] [--socket PATH]")
	asJSON := fs.Bool("json", false, "print the status document as JSON (schema in docs/status.md)")
	watch := fs.Bool("watch", false, "redraw every 2 seconds until Ctrl-C")
	socket := fs.String("socket", status.DefaultSocket, "the daemon's status `socket`")
	interval := fs.Duration("interval", 2*time.Second, "with --watch: time between redraws")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *interval < 100*time.Millisecond {
		return usagef("--interval %v is too short: use at least 100ms", *interval)
	}
	client := &status.Client{Socket: *socket, Timeout: 5 * time.Second}
	show := func() error {
		doc, err := client.Fetch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // Ctrl-C during a fetch
			}
			fmt.Fprintln(env.stderr, strings.TrimPrefix(err.Error(), "status: "))
			return &exitError{code: 1, err: errReported}
		}
		if *asJSON {
			enc := json.NewEncoder(env.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(doc)
		}
		printStatus(env.stdout, doc)
		return nil
	}
	if !*watch {
		return show()
	}
	t := time.NewTicker(*interval)
	defer t.Stop()
	for {
		if !*asJSON {
			fmt.Fprint(env.stdout, clearScreen)
		}
		// A daemon that stops while watched is shown, not fatal: the tech
		// is probably restarting it.
		if err := show(); err != nil && !errors.Is(err, errReported) {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// printStatus renders the document in 80 columns.
func printStatus(w io.Writer, d *status.Doc) {
	w = status.PrintableWriter(w) // file names and error texts come from outside
	id := d.Identity
	fmt.Fprintf(w, "%s\n", fit(fmt.Sprintf("edge-agent %s  device %s  up %s  %s", id.Version, id.DeviceID,
		roughAge(d.Uptime()), d.Time.UTC().Format("2006-01-02 15:04:05 UTC")), 80))
	p := d.Pipeline
	line := fmt.Sprintf("%d observed, %d signed, %d stored since start", p.Observed, p.Signed, p.Stored)
	if p.LastAppendError != "" {
		line += "; APPEND FAILING: " + p.LastAppendError
	}
	if p.EncodeDrops > 0 || p.WithoutLocation > 0 {
		line += fmt.Sprintf("; %d DROPPED, %d without location (cannot encode: %s)", p.EncodeDrops, p.WithoutLocation, p.LastEncodeError)
	}
	fmt.Fprintf(w, "%-10s %s\n", "pipeline", fit(line, 69))

	fmt.Fprintf(w, "\n%-10s %-7s %-9s %8s %-7s %s\n", "DRIVER", "FAMILY", "STATE", "PER MIN", "LAST", "DETAIL")
	for _, dr := range d.Drivers {
		fmt.Fprintf(w, "%-10s %-7s %-9s %8.1f %-7s %s\n", fit(dr.Name, 10), fit(dr.Family, 7), fit(dr.State, 9), dr.PerMinute,
			ageOr(d, dr.LastObservation), fit(driverDetail(d, dr), 33))
	}
	if len(d.Drivers) == 0 {
		fmt.Fprintln(w, "(no drivers configured)")
	}

	s := d.Store
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-10s %s\n", "outbox", fit(fmt.Sprintf("%d records, %s of %s quota (%.0f%%), head seq %d, oldest %s",
		s.Records, humanBytes(s.Bytes), humanBytes(s.MaxBytes), s.QuotaUsed()*100, s.HeadSeq, ageOr(d, s.Oldest)), 69))
	switch {
	case s.LastCheck != nil && s.LastCheck.Error != "":
		fmt.Fprintf(w, "%-10s %s\n", "", fit("CHECK FAILED: "+s.LastCheck.Error, 69))
	case s.Evicted > 0 || s.Recovery != nil:
		note := fmt.Sprintf("%d records evicted by the quota", s.Evicted)
		if s.Recovery != nil {
			note += "; replaced after corruption on " + s.Recovery.At.Format(time.DateOnly)
		}
		fmt.Fprintf(w, "%-10s %s\n", "", fit(note, 69))
	}

	fmt.Fprintf(w, "\n%-10s %-12s %8s %-9s %s\n", "UPLINK", "STATE", "BACKLOG", "LAST ACK", "SERVER / LAST ERROR")
	for _, u := range d.Uplinks {
		state, detail := "connected", u.Server
		if stall, ok := strings.CutPrefix(u.LastError, "stalled: "); ok && u.Connected {
			state, detail = "STALLED", stall
		}
		if !u.Connected {
			state, detail = "DOWN", u.LastError
			if detail == "" {
				detail = "connecting to " + u.Server
			}
		}
		fmt.Fprintf(w, "%-10s %-12s %8d %-9s %s\n", fit(u.Name, 10), state, u.Backlog, ageOr(d, u.LastAck), fit(detail, 37))
	}
	if len(d.Uplinks) == 0 {
		fmt.Fprintln(w, "(no uplinks configured: records stay in the outbox)")
	}

	fmt.Fprintln(w)
	clock := "NTP state unknown"
	if c := d.Clock; c.Synced != nil && *c.Synced {
		clock = fmt.Sprintf("NTP-synchronised (max error %s)", secs(c.MaxErrorSeconds))
	} else if c.Synced != nil {
		clock = "NOT synchronised by NTP"
	}
	if off := d.Clock.GNSSOffsetSeconds; off != nil {
		clock += fmt.Sprintf(", GNSS offset %+.3f s", *off)
	}
	fmt.Fprintf(w, "%-10s %s\n", "clock", fit(clock, 69))
	disk := fmt.Sprintf("%s free of %s on %s", humanBytes(d.Disk.FreeBytes), humanBytes(d.Disk.TotalBytes), d.Disk.Path)
	if d.Disk.ReadOnly {
		disk = "READ-ONLY: " + disk
	}
	if d.Disk.Error != "" {
		disk = d.Disk.Error
	}
	fmt.Fprintf(w, "%-10s %s\n", "disk", fit(disk, 69))
}

func driverDetail(d *status.Doc, dr status.Driver) string {
	switch {
	case dr.State == status.StateFailed || dr.State == status.StateSkipped:
		return dr.Reason
	case dr.GNSS != nil:
		g := dr.GNSS
		if !g.Connected {
			return "receiver not connected"
		}
		if g.Mode < 2 {
			return fmt.Sprintf("NO FIX (last %s), %d sats", ageOr(d, g.LastFix), g.Satellites)
		}
		return fmt.Sprintf("%dD fix, %d sats, HDOP %.1f", g.Mode, g.Satellites, g.HDOP)
	case dr.LoRa != nil:
		s := fmt.Sprintf("%.1f pkt/min, %d gateways", dr.LoRa.PacketsPerMinute, len(dr.LoRa.Gateways))
		if dr.LoRa.SocketDrops > 0 {
			s += fmt.Sprintf(", %d DROPPED", dr.LoRa.SocketDrops)
		}
		return s
	case dr.Env != nil:
		e := dr.Env
		if e.At.IsZero() {
			return e.Chip + ": no reading yet"
		}
		s := fmt.Sprintf("%.1f °C, %.1f hPa", e.TempC, e.PressurePa/100)
		if e.HumidityPct != nil {
			s += fmt.Sprintf(", %.0f %%RH", *e.HumidityPct)
		}
		return s
	case dr.Camera != nil:
		if c := dr.Camera; c.Skipped > 0 {
			return fmt.Sprintf("%d files, %d SKIPPED (%s)", c.FilesAttested, c.Skipped, c.LastSkipped)
		}
		return fmt.Sprintf("%d files, last %s", dr.Camera.FilesAttested, dr.Camera.LastFile)
	}
	kinds := make([]string, 0, len(dr.Observations))
	for k, n := range dr.Observations {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	return strings.Join(kinds, ", ")
}

// fit shortens s to n columns with an ellipsis, so a long error or path
// never wraps the table.
func fit(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func ageOr(d *status.Doc, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return roughAge(d.Age(t))
}

// roughAge is a duration in at most 6 columns: "4s", "12m", "26h", "3d".
func roughAge(a time.Duration) string {
	switch {
	case a < 2*time.Minute:
		return fmt.Sprintf("%ds", int(a.Seconds()))
	case a < 2*time.Hour:
		return fmt.Sprintf("%dm", int(a.Minutes()))
	case a < 72*time.Hour:
		return fmt.Sprintf("%dh", int(a.Hours()))
	}
	return fmt.Sprintf("%dd", int(a.Hours()/24))
}

func secs(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}
