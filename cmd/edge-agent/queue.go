package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/edge-agent/edge-agent/atomicfile"
	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/store"
)

func cmdQueueStats(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "queue stats", "queue stats [-c FILE] [--db PATH] [--json]")
	asJSON := fs.Bool("json", false, "print JSON")
	return queueCmd(env, fs, args, nil, func(st *store.Store, path string) error {
		stats, err := st.Stats()
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.stdout).Encode(stats)
		}
		printStats(status.PrintableWriter(env.stdout), path, stats)
		return nil
	})
}

func cmdQueueExport(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "queue export", "queue export [-c FILE] [--db PATH] [--out FILE]")
	out := fs.String("out", "-", "write the records to this `file` (- for standard output)")
	salvage := func(path string) error { return salvageQueue(env, path, *out) }
	return queueCmd(env, fs, args, salvage, func(st *store.Store, _ string) error { return exportQueue(env, st, *out) })
}

// queueCmd adds the flags both queue subcommands share, parses, opens the
// outbox read-only and runs fn on it. A damaged outbox goes to salvage
// when it is given (export), else the error says how to recover it.
func queueCmd(env *cliEnv, fs *flagSet, args []string, salvage func(path string) error, fn func(*store.Store, string) error) error {
	cfgPath := fs.configFlag(defaultConfigPath, "config `file`")
	dbPath := fs.String("db", "", "outbox `path` (overrides the config's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	path := *dbPath
	if path == "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return fmt.Errorf("%w (or name the outbox with --db)", err)
		}
		path = cfg.StorePath()
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no outbox at %s: %w", path, err)
	}
	st, err := store.Open(path, store.Options{ReadOnly: true})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("the daemon is running and holds the outbox %s: `edge-agent status` shows its queue live; stop the daemon to export it", path)
	}
	if errors.Is(err, store.ErrCorrupt) {
		if salvage != nil {
			return salvage(path)
		}
		return fmt.Errorf("%w\nits intact records can still be recovered: `edge-agent queue export --db %s --out FILE`, then `edge-agent verify FILE`", err, path)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st, path)
}

func printStats(w io.Writer, path string, s store.Stats) {
	fmt.Fprintf(w, "outbox     %s (%s on disk)\n", path, humanBytes(s.FileBytes))
	fmt.Fprintf(w, "chain      %s, head seq %d\n", hex.EncodeToString(s.Chain[:]), s.HeadSeq)
	fmt.Fprintf(w, "records    %d (%s of %s quota)\n", s.Records, humanBytes(s.Bytes), humanBytes(s.MaxBytes))
	if s.Records > 0 {
		fmt.Fprintf(w, "oldest     seq %d, stored %s ago\n", s.OldestSeq, time.Since(s.OldestAppended).Round(time.Second))
	}
	fmt.Fprintf(w, "evicted    %d records in %d ranges, %d ranges not yet announced\n", s.Evicted, s.EvictedRanges, len(s.PendingGaps))
	for _, u := range s.Uplinks {
		fmt.Fprintf(w, "uplink     %-6s acked up to seq %d, backlog %d\n", u.Name, u.Acked, u.Backlog)
	}
	if s.Recovery != nil {
		fmt.Fprintf(w, "RECOVERED  %s: the old file was moved to %s (%s)\n", s.Recovery.At.Format(time.RFC3339), s.Recovery.MovedTo, s.Recovery.Reason)
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// salvageQueue exports the intact records of a damaged outbox file (one the
// daemon moved aside, or one that fails its check) and says what was lost.
func salvageQueue(env *cliEnv, path, out string) error {
	var rep store.SalvageReport
	err := writeExport(env, out, func(w io.Writer) (int, error) {
		var err error
		rep, err = store.Salvage(path, func(r store.Record) error {
			_, err := w.Write(r.Data)
			return err
		})
		return rep.Intact, err
	})
	if err != nil {
		return err
	}
	lost := "no record was damaged"
	if len(rep.Damaged) > 0 {
		rs := make([]attest.Range, len(rep.Damaged))
		for i, r := range rep.Damaged {
			rs[i] = attest.Range{From: r.From, To: r.To}
		}
		lost = "seqs " + ranges(rs) + " could not be recovered (damaged); verifiers will see them as a gap in the chain"
	}
	fmt.Fprintf(env.stderr, "%s is damaged: exported its %d intact records (chain %s, head seq %d); %s\n",
		path, rep.Intact, hex.EncodeToString(rep.Chain[:]), rep.HeadSeq, lost)
	return nil
}

// exportQueue writes every stored record as a CBOR sequence, the format
// `edge-agent verify` reads.
func exportQueue(env *cliEnv, st *store.Store, out string) error {
	return writeExport(env, out, func(w io.Writer) (int, error) {
		n := 0
		err := st.Records(func(r store.Record) error {
			n++
			_, err := w.Write(r.Data)
			return err
		})
		return n, err
	})
}

// writeExport runs fill on out ("-" for standard output). A file is written
// beside its final name and renamed into place after fsync, so a half
// export never looks complete.
func writeExport(env *cliEnv, out string, fill func(io.Writer) (int, error)) error {
	var n int
	buffered := func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<16)
		var err error
		if n, err = fill(bw); err != nil {
			return err
		}
		return bw.Flush()
	}
	if out == "-" {
		if err := buffered(env.stdout); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		return nil
	}
	if err := atomicfile.Write(out, 0o600, buffered); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(env.stderr, "exported %d records to %s\n", n, out)
	return nil
}
