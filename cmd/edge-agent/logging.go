package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

var readBuildInfo = debug.ReadBuildInfo

// newLogger builds the daemon's logger: JSON under systemd (the journal reads
// fields) or when stderr is not a terminal, text on a terminal. When stderr
// is the journal's stream (JOURNAL_STREAM names it), every line starts with
// its syslog priority, "<3>" for errors, as sd-daemon(3) describes, so that
// `journalctl -p err` finds them. A key given twice with With appears once
// (the last value wins) and durations read as "1.5s", not nanoseconds. level may be
// changed later (a reload).
func newLogger(w io.Writer, level *slog.LevelVar, lv, format string, getenv func(string) string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(lv)); err != nil {
		return nil, fmt.Errorf("log.level %q: use debug, info, warn or error", lv)
	}
	if level == nil {
		level = new(slog.LevelVar)
	}
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: humanDurations}
	journal := isJournal(w, getenv("JOURNAL_STREAM"))
	var mk func(io.Writer) slog.Handler
	switch format {
	case "json":
		mk = func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, opts) }
	case "text":
		mk = func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, opts) }
	case "auto", "":
		mk = func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, opts) }
		if !journal && getenv("JOURNAL_STREAM") == "" && isTerminal(w) {
			mk = func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, opts) }
		}
	default:
		return nil, fmt.Errorf("log.format %q: use auto, text or json", format)
	}
	var h slog.Handler
	if journal {
		h = newPriorityHandler(w, mk)
	} else {
		h = mk(w)
	}
	return slog.New(&uniqueKeys{next: h}), nil
}

// humanDurations writes durations the way people read them.
func humanDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// isJournal reports whether w is the stream JOURNAL_STREAM ("DEV:INODE")
// names: systemd sets it for the service's stdout and stderr, and a child
// that inherits the variable but not the stream must not add prefixes.
func isJournal(w io.Writer, stream string) bool {
	f, ok := w.(*os.File)
	if !ok || stream == "" {
		return false
	}
	dev, ino, ok := strings.Cut(stream, ":")
	if !ok {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return strconv.FormatUint(uint64(st.Dev), 10) == dev && strconv.FormatUint(st.Ino, 10) == ino
}

// priorityHandler prefixes each line with its syslog priority for journald's
// stream parser (SyslogLevelPrefix=, on by default): one inner handler per
// priority, each writing through its prefix.
type priorityHandler struct {
	byPrio [4]slog.Handler // err, warning, info, debug
}

var syslogPrefixes = [4]string{"<3>", "<4>", "<6>", "<7>"}

func newPriorityHandler(w io.Writer, mk func(io.Writer) slog.Handler) *priorityHandler {
	h := &priorityHandler{}
	for i, p := range syslogPrefixes {
		h.byPrio[i] = mk(&prefixWriter{w: w, prefix: []byte(p)})
	}
	return h
}

func prioIndex(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 0
	case l >= slog.LevelWarn:
		return 1
	case l >= slog.LevelInfo:
		return 2
	}
	return 3
}

func (h *priorityHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.byPrio[prioIndex(l)].Enabled(ctx, l)
}

func (h *priorityHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.byPrio[prioIndex(r.Level)].Handle(ctx, r)
}

func (h *priorityHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := &priorityHandler{}
	for i, x := range h.byPrio {
		n.byPrio[i] = x.WithAttrs(as)
	}
	return n
}

func (h *priorityHandler) WithGroup(name string) slog.Handler {
	n := &priorityHandler{}
	for i, x := range h.byPrio {
		n.byPrio[i] = x.WithGroup(name)
	}
	return n
}

// prefixWriter writes prefix and line in one write: slog handlers write a
// whole record at a time, and one write keeps lines from interleaving.
type prefixWriter struct {
	w      io.Writer
	prefix []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	buf := make([]byte, 0, len(p.prefix)+len(b))
	buf = append(append(buf, p.prefix...), b...)
	if _, err := p.w.Write(buf); err != nil {
		return 0, err
	}
	return len(b), nil
}

// uniqueKeys keeps one value per key that loggers add with With: a logger
// passed down with "component" that a package sets again would otherwise
// print both. It is the last line of defence: the daemon adds each key once
// at its source, which agent's TestLogLinesCarryEachKeyOnce holds without it. The attributes are held, the last value of a key winning, and
// handed to the next handler with each record. (A record's own attributes
// are not merged: the callers name keys that the logger does not carry.)
type uniqueKeys struct {
	next  slog.Handler
	attrs []slog.Attr
}

func (h *uniqueKeys) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *uniqueKeys) Handle(ctx context.Context, r slog.Record) error {
	if len(h.attrs) == 0 {
		return h.next.Handle(ctx, r)
	}
	return h.next.WithAttrs(h.attrs).Handle(ctx, r)
}

func (h *uniqueKeys) WithAttrs(as []slog.Attr) slog.Handler {
	n := &uniqueKeys{next: h.next, attrs: slices.Clone(h.attrs)}
	for _, a := range as {
		i := slices.IndexFunc(n.attrs, func(b slog.Attr) bool { return b.Key == a.Key })
		if i >= 0 {
			n.attrs[i] = a
		} else {
			n.attrs = append(n.attrs, a)
		}
	}
	return n
}

func (h *uniqueKeys) WithGroup(name string) slog.Handler {
	// Attributes so far belong outside the group: hand them down first.
	return &uniqueKeys{next: h.next.WithAttrs(h.attrs).WithGroup(name)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
