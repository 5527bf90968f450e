package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/status"
)

// errReported is an exitError's error when the command already printed what
// went wrong in its own words.
var errReported = errors.New("")

// clearScreen homes the cursor and clears the terminal (ANSI), so --watch
// redraws in place on any SSH client.
const clearScreen = "\x1b[H\x1b[2J"

func cmdStatus(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "status", "status [-c FILE] [--json] [--watch] [--socket PATH]")
	cfgPath := fs.configFlag(defaultConfigPath, "config `file` naming the status socket")
	asJSON := fs.Bool("json", false, "print the status document as JSON (schema in docs/status.md)")
	watch := fs.Bool("watch", false, "redraw every 2 seconds until Ctrl-C")
	socket := fs.String("socket", status.DefaultSocket, "the daemon's status `socket`")
	interval := fs.Duration("interval", 2*time.Second, "with --watch: time between redraws")
	width := fs.Int("width", -1, "columns to fit the table in (default: the terminal's; 0: no limit, the default when not a terminal)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *interval < 100*time.Millisecond {
		return usagef("--interval %v is too short: use at least 100ms", *interval)
	}
	if err := socketFromConfig(fs, socket, *cfgPath); err != nil {
		return err
	}
	if *width < 0 {
		*width = terminalWidth(env.stdout, env.getenv)
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
		printStatus(env.stdout, doc, *width)
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

// socketFromConfig takes the status socket from the config unless --socket
// was given. The default config may be absent (a demo, a dev box); a config
// named with -c must load; the default one that cannot be read leaves the
// default socket.
func socketFromConfig(fs *flagSet, socket *string, cfgPath string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["socket"] {
		return nil
	}
	cfg, err := config.Load(cfgPath)
	switch {
	case err == nil:
		*socket = cfg.Status.Socket
	case set["c"] || set["config"]:
		return fmt.Errorf("%w (or name the socket with --socket)", err)
	}
	return nil
}

// printStatus renders the document in width columns (0: no limit). Table
// cells are shortened to fit; an error is never cut: what does not fit
// continues on the next lines, because its end is usually the fix.
func printStatus(out io.Writer, d *status.Doc, width int) {
	out = status.PrintableWriter(out) // file names and error texts come from outside
	w := &wrapper{w: out, width: width}
	fit := w.fit
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
	fmt.Fprintf(w, "%-10s %s\n", "pipeline", w.full(line, 69))

	fmt.Fprintf(w, "\n%-10s %-7s %-9s %8s %-7s %s\n", "DRIVER", "FAMILY", "STATE", "PER MIN", "LAST", "DETAIL")
	for _, dr := range d.Drivers {
		detail := fit(driverDetail(d, dr), 33)
		if dr.State == status.StateFailed || dr.State == status.StateSkipped {
			detail = w.full(driverDetail(d, dr), 33)
		}
		fmt.Fprintf(w, "%-10s %-7s %-9s %8.1f %-7s %s\n", fit(dr.Name, 10), fit(dr.Family, 7), fit(dr.State, 9), dr.PerMinute,
			ageOr(d, dr.LastObservation), detail)
	}
	if len(d.Drivers) == 0 {
		fmt.Fprintln(w, w.full("WARNING: no drivers configured: nothing is observed; add one to the config, then `systemctl reload edge-agent`", 80))
	}

	s := d.Store
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-10s %s\n", "outbox", fit(fmt.Sprintf("%d records, %s of %s quota (%.0f%%), head seq %d, oldest %s",
		s.Records, humanBytes(s.Bytes), humanBytes(s.MaxBytes), s.QuotaUsed()*100, s.HeadSeq, ageOr(d, s.Oldest)), 69))
	fmt.Fprintf(w, "%-10s %s\n", "", fit(fmt.Sprintf("writes %s/s to disk (last minute), %s in %d commits since start",
		humanBytes(int64(s.WriteRate)), humanBytes(int64(s.WrittenBytes)), s.Commits), 69))
	switch {
	case s.LastCheck != nil && s.LastCheck.Error != "":
		fmt.Fprintf(w, "%-10s %s\n", "", w.full("CHECK FAILED: "+s.LastCheck.Error, 69))
	case s.Evicted > 0 || s.Recovery != nil:
		note := fmt.Sprintf("%d records evicted by the quota", s.Evicted)
		if s.Recovery != nil {
			note += "; replaced after corruption on " + s.Recovery.At.Format(time.DateOnly)
		}
		fmt.Fprintf(w, "%-10s %s\n", "", fit(note, 69))
	}

	fmt.Fprintf(w, "\n%-10s %-12s %8s %-9s %s\n", "UPLINK", "STATE", "BACKLOG", "LAST ACK", "SERVER / LAST ERROR")
	for _, u := range d.Uplinks {
		state, detail := "connected", fit(u.Server, 37)
		if stall, ok := strings.CutPrefix(u.LastError, "stalled: "); ok && u.Connected {
			state, detail = "STALLED", fit(stall, 37)
		}
		if !u.Connected {
			state, detail = "DOWN", w.full(u.LastError, 37)
			if u.LastError == "" {
				detail = fit("connecting to "+u.Server, 37)
			}
		}
		fmt.Fprintf(w, "%-10s %-12s %8d %-9s %s\n", fit(u.Name, 10), state, u.Backlog, ageOr(d, u.LastAck), detail)
	}
	if len(d.Uplinks) == 0 {
		fmt.Fprintln(w, w.full("WARNING: no uplinks configured: records stay in the outbox; enable [uplinks.mqtt], then `systemctl reload edge-agent`", 80))
	}

	fmt.Fprintln(w)
	clock := "NTP state unknown"
	if d.Clock.Error != "" {
		clock = "NTP state unknown: " + d.Clock.Error
	}
	if c := d.Clock; c.Synced != nil && *c.Synced {
		clock = fmt.Sprintf("NTP-synchronised (max error %s)", secs(c.MaxErrorSeconds))
	} else if c.Synced != nil {
		clock = "NOT synchronised by NTP"
	}
	if off := d.Clock.GNSSOffsetSeconds; off != nil {
		clock += fmt.Sprintf(", GNSS offset %+.3f s", *off)
	}
	if d.Clock.Source != "" {
		clock += "; records say " + d.Clock.Source
	}
	fmt.Fprintf(w, "%-10s %s\n", "clock", w.full(clock, 69))
	disk := fmt.Sprintf("%s free of %s on %s", humanBytes(d.Disk.FreeBytes), humanBytes(d.Disk.TotalBytes), d.Disk.Path)
	if d.Disk.ReadOnly {
		disk = "READ-ONLY: " + disk
	}
	if d.Disk.Error != "" {
		disk = w.full(d.Disk.Error, 69)
	}
	fmt.Fprintf(w, "%-10s %s\n", "disk", fit(disk, 69))
	if c := d.CPUs; c != nil {
		cpus := fmt.Sprintf("%d of %d in use: one at light load, all when busy (%d switches)", c.InUse, c.Max, c.Switches)
		if c.FixedBy != "" {
			cpus = fmt.Sprintf("%d, set by %s", c.InUse, c.FixedBy)
		}
		fmt.Fprintf(w, "%-10s %s\n", "cpus", fit(cpus, 69))
	}
}

// wrapper writes the status table: full() leaves continuation lines that
// the next line break writes, indented under the first column.
type wrapper struct {
	w       io.Writer
	width   int
	pending []string
}

func (w *wrapper) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	if err == nil && len(w.pending) > 0 && len(b) > 0 && b[len(b)-1] == '\n' {
		for _, l := range w.pending {
			fmt.Fprintf(w.w, "%11s%s\n", "", l)
		}
		w.pending = nil
	}
	return n, err
}

// cells is what a column of n cells at 80 columns gets at this width.
func (w *wrapper) cells(n int) int { return max(n+w.width-80, 8) }

// fit shortens a table cell; without a width it is left whole.
func (w *wrapper) fit(s string, n int) string {
	if w.width <= 0 {
		return s
	}
	return fit(s, w.cells(n))
}

// full returns the part of s that fits in n cells and keeps the rest,
// broken at spaces, for the lines after.
func (w *wrapper) full(s string, n int) string {
	if w.width <= 0 || utf8.RuneCountInString(s) <= w.cells(n) {
		return s
	}
	first, rest := breakAt(s, w.cells(n), false)
	for rest != "" {
		var l string
		l, rest = breakAt(rest, max(w.width-11, 20), true)
		w.pending = append(w.pending, l)
	}
	return first
}

// breakAt splits s after at most n runes at a space. With no space in
// reach it cuts the word only when hard; otherwise it leaves it whole for
// the next line.
func breakAt(s string, n int, hard bool) (string, string) {
	r := []rune(s)
	if len(r) <= n {
		return s, ""
	}
	cut := 0
	for i := n; i > 0; i-- {
		if r[i] == ' ' {
			cut = i
			break
		}
	}
	if cut == 0 {
		if !hard {
			return "", s
		}
		cut = n
	}
	return strings.TrimRight(string(r[:cut]), " "), strings.TrimLeft(string(r[cut:]), " ")
}

// terminalWidth is the terminal's columns, $COLUMNS, or 0 (no limit) when
// the output is not a terminal.
func terminalWidth(w io.Writer, getenv func(string) string) int {
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
			return int(ws.Col)
		}
	}
	if n, err := strconv.Atoi(getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 0
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
		var refused uint64
		for _, n := range g.Rejected {
			refused += n
		}
		note := ""
		if refused > 0 && refused*100 >= g.Sentences { // 1 % and more: say so
			note = fmt.Sprintf(", %d input REFUSED (see doctor)", refused)
		}
		if g.Mode < 2 {
			return fmt.Sprintf("NO FIX (last %s), %d sats", ageOr(d, g.LastFix), g.Satellites) + note
		}
		return fmt.Sprintf("%dD fix, %d sats, HDOP %.1f", g.Mode, g.Satellites, g.HDOP) + note
	case dr.LoRa != nil:
		s := fmt.Sprintf("%.1f pkt/min, %d gateways", dr.LoRa.PacketsPerMinute, len(dr.LoRa.Gateways))
		if dr.LoRa.SocketDrops > 0 {
			s += fmt.Sprintf(", %d DROPPED", dr.LoRa.SocketDrops)
		}
		return s + loraDetail(dr.LoRa)
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

// loraDetail adds a multiplexer's upstreams (or tap mode), the source state
// of concentratord and mqtt modes, and what was refused.
func loraDetail(l *status.LoRa) string {
	s := ""
	if l.Connected != nil && !*l.Connected {
		s += ", " + l.Mode + " NOT CONNECTED"
	}
	if l.Tap {
		s += ", tap (relays nothing)"
	}
	for _, u := range l.Upstreams {
		s += fmt.Sprintf(", %s %s %.0f%% acked", u.Name, u.State, 100*u.AckRatio)
	}
	var bad uint64
	for _, n := range l.Malformed {
		bad += n
	}
	if bad > 0 {
		s += fmt.Sprintf(", %d refused", bad)
	}
	if l.GatewaysRefused > 0 {
		s += fmt.Sprintf(", GATEWAY TABLE FULL (%d)", l.MaxGateways)
	}
	return s
}
