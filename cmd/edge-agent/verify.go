package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/status"
)

func cmdVerify(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "verify", "verify [--json] [--partial] FILE… | -")
	asJSON := fs.Bool("json", false, "print every decoded record as one JSON object per line (summary goes to stderr)")
	partial := fs.Bool("partial", false, "allow chains that start after seq 1 (earlier records were delivered elsewhere)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	files := fs.Args()
	if len(files) == 0 {
		return usagef("name the files to verify, or - for standard input")
	}
	audit := attest.NewAudit(attest.AuditOptions{Partial: *partial})
	out := bufio.NewWriter(env.stdout)
	defer out.Flush()
	var readErrs []error
	for _, name := range files {
		err := verifyFile(env, name, audit, func(r *attest.Record) error {
			if !*asJSON || r == nil {
				return nil
			}
			line, err := r.JSON()
			if err != nil {
				return err
			}
			out.Write(line)
			return out.WriteByte('\n')
		})
		if err != nil {
			readErrs = append(readErrs, fmt.Errorf("%s: %w", name, err))
		}
	}
	out.Flush()
	summary := env.stdout
	if *asJSON {
		summary = env.stderr
	}
	// Kinds, sources and errors come from the records: never let them drive the terminal.
	summary = status.PrintableWriter(summary)
	rep := audit.Report()
	writeReport(summary, rep)
	for _, err := range readErrs {
		fmt.Fprintf(summary, "unreadable: %v\n", err)
	}
	if !rep.OK() || len(readErrs) > 0 {
		fmt.Fprintln(summary, "verdict: FAILED")
		return &exitError{code: 1, err: errors.New("")}
	}
	fmt.Fprintln(summary, "verdict: OK")
	return nil
}

// verifyFile feeds every record of one CBOR-sequence file to the audit.
func verifyFile(env *cliEnv, name string, audit *attest.Audit, each func(*attest.Record) error) error {
	var r io.Reader = env.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	return attest.ReadSequence(bufio.NewReaderSize(r, 1<<16), func(raw []byte) error {
		_, rec, _ := audit.Add(raw) // the audit counts bad records; keep reading
		return each(rec)
	})
}

func writeReport(w io.Writer, rep attest.Report) {
	if len(rep.Devices) == 0 {
		fmt.Fprintln(w, "no records")
	}
	for _, d := range rep.Devices {
		fmt.Fprintf(w, "device %s\n", d.DeviceID)
		for _, c := range d.Chains {
			fmt.Fprintf(w, "  chain %x: %d records, seq %d-%d, %d boots, %d duplicates\n",
				c.Chain, c.Records, c.FirstSeq, c.LastSeq, c.Boots, c.Duplicates)
			fmt.Fprintf(w, "    announced gaps:   %s\n", ranges(c.AnnouncedGaps))
			fmt.Fprintf(w, "    unannounced gaps: %s\n", ranges(c.UnannouncedGaps))
			if len(c.BrokenLinks) > 0 {
				fmt.Fprintf(w, "    broken links at:  %v\n", c.BrokenLinks)
			}
			fmt.Fprintf(w, "    forks:            %d\n", len(c.Forks))
			for _, f := range c.Forks {
				fmt.Fprintf(w, "      seq %d carries two payloads\n", f.Seq)
			}
		}
	}
	fmt.Fprintf(w, "bad signatures: %d, malformed: %d\n", rep.BadSignatures, rep.Malformed)
}

func ranges(rs []attest.Range) string {
	if len(rs) == 0 {
		return "none"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		if r.From == r.To {
			parts[i] = fmt.Sprint(r.From)
		} else {
			parts[i] = fmt.Sprintf("%d-%d", r.From, r.To)
		}
	}
	return strings.Join(parts, ", ")
}
