// Package doctor is the field tech's checklist: `edge-agent doctor` runs a
// list of small checks and prints one pass/warn/fail line each, every failure
// with the next step to take. When the daemon answers on its status socket
// the checks read its status document; when it does not, doctor says so and
// checks what it can directly: the config, the key, device nodes and the
// service user's access to them, the data directory and its filesystem, the
// outbox (read-only), the brokers and peers, disk space and the clock. The
// device nodes, directories and drivers' servers are the ones the drivers
// the daemon would build say they open (drivers.DeviceLister, handed in
// through Setup.ProbeDrivers), never re-derived from the config.
//
// Everything a check touches on the host (the passwd and group files,
// /proc/mounts, statfs, the dialer, the clock) is injected through Host, so
// tests drive the checks against temporary files and real loopback servers.
//
// Concurrency: checks run one after another in list order; a Host is
// read-only after construction and may be shared.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/edge-agent/edge-agent/status"
)

// Level is a check's verdict. The process exit status is the worst level.
type Level int

const (
	OK   Level = iota // nothing to do
	Warn              // works, but will not for long or not fully
	Fail              // broken: the box is not earning, or soon will not be
)

func (l Level) String() string {
	switch l {
	case OK:
		return "ok"
	case Warn:
		return "warn"
	case Fail:
		return "fail"
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// MarshalText writes the level as "ok", "warn" or "fail".
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads "ok", "warn" or "fail".
func (l *Level) UnmarshalText(b []byte) error {
	for _, v := range []Level{OK, Warn, Fail} {
		if string(b) == v.String() {
			*l = v
			return nil
		}
	}
	return fmt.Errorf("doctor: invalid level %q: want ok, warn or fail", b)
}

// Check is one item of the checklist. Fn returns the level, a message saying
// what was found, and for a warning or failure the next step to take.
type Check struct {
	Name string
	Fn   func(ctx context.Context) (level Level, msg, next string)
}

// Result is a check's outcome.
type Result struct {
	Name    string `json:"name"`
	Level   Level  `json:"level"`
	Message string `json:"message"`
	Next    string `json:"next,omitempty"`
}

// ReportSchema is the version of the JSON report (`doctor --json`).
const ReportSchema = 1

// Daemon states in a Report.
const (
	DaemonRunning    = "running"
	DaemonNotRunning = "not running"
	DaemonUnknown    = "unknown" // the socket exists but could not be read
)

// Report is the whole checklist's outcome.
type Report struct {
	Schema  int       `json:"schema"`
	Time    time.Time `json:"time"`
	Daemon  string    `json:"daemon"`
	Verdict Level     `json:"verdict"`
	Results []Result  `json:"results"`
}

// checkTimeout bounds one check, so one hung NFS stat or black-holed broker
// cannot keep the tech waiting on the whole list.
const checkTimeout = 15 * time.Second

// Run runs the checks in order. A check that panics is a failure of that
// check, not of doctor.
func Run(ctx context.Context, checks []Check) []Result {
	out := make([]Result, 0, len(checks))
	for _, c := range checks {
		out = append(out, runOne(ctx, c))
	}
	return out
}

func runOne(ctx context.Context, c Check) (r Result) {
	r.Name = c.Name
	defer func() {
		if p := recover(); p != nil {
			r.Level, r.Message, r.Next = Fail, fmt.Sprintf("the check itself crashed: %v", p),
				"report this as a bug in edge-agent doctor"
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	r.Level, r.Message, r.Next = c.Fn(ctx)
	if r.Level == OK {
		r.Next = ""
	}
	return r
}

// Worst is the highest level among results; OK for none.
func Worst(results []Result) Level {
	worst := OK
	for _, r := range results {
		worst = max(worst, r.Level)
	}
	return worst
}

// ExitCode is the process exit status for the report: 0 ok, 1 warn, 2 fail.
func (r *Report) ExitCode() int { return int(r.Verdict) }

// WriteJSON writes the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("doctor: write report: %w", err)
	}
	return nil
}

// textWidth fits a phone's SSH session in portrait and a classic terminal.
const textWidth = 80

// WriteText writes the checklist for a person: one line per check, wrapped
// to 80 columns, the next step under each warning and failure, and a verdict.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "edge-agent doctor, %s, daemon %s\n\n", r.Time.UTC().Format("2006-01-02 15:04 MST"), r.Daemon)
	var nWarn, nFail int
	for _, res := range r.Results {
		tag := map[Level]string{OK: " ok ", Warn: "WARN", Fail: "FAIL"}[res.Level]
		switch res.Level {
		case Warn:
			nWarn++
		case Fail:
			nFail++
		}
		wrap(&b, fmt.Sprintf("[%s] %s: %s", tag, res.Name, res.Message), "       ")
		if res.Next != "" {
			wrap(&b, "       → "+res.Next, "         ")
		}
	}
	b.WriteString("\n")
	switch r.Verdict {
	case OK:
		fmt.Fprintf(&b, "verdict: OK, all %d checks passed\n", len(r.Results))
	default:
		fmt.Fprintf(&b, "verdict: %s, %d failed, %d warnings, %d passed\n", strings.ToUpper(r.Verdict.String()),
			nFail, nWarn, len(r.Results)-nFail-nWarn)
	}
	_, err := io.WriteString(w, status.Printable(b.String())) // messages quote file names and errors from outside
	if err != nil {
		return fmt.Errorf("doctor: write report: %w", err)
	}
	return nil
}

// wrap writes s as lines of at most textWidth runes, breaking at spaces and
// indenting continuation lines; a word longer than a line (a path) is kept
// whole.
func wrap(b *strings.Builder, s, indent string) {
	line := 0
	for i, word := range strings.Fields(s) {
		n := len([]rune(word))
		switch {
		case i == 0:
			// Keep the leading indent of s.
			lead := s[:len(s)-len(strings.TrimLeft(s, " "))]
			b.WriteString(lead + word)
			line = len([]rune(lead)) + n
		case line+1+n > textWidth:
			b.WriteString("\n" + indent + word)
			line = len([]rune(indent)) + n
		default:
			b.WriteString(" " + word)
			line += 1 + n
		}
	}
	b.WriteString("\n")
}
