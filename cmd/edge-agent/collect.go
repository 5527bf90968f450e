//go:build !nop2p

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/edge-agent/edge-agent/collect"
	"github.com/edge-agent/edge-agent/status"
)

const defaultCollectorConfig = "/etc/edge-agent/collector.toml"

// cmdCollect is the network side: `collect [-c FILE]` runs the collector;
// `collect status` and `collect export --out FILE` read its database (with
// the collector stopped: bbolt's file lock keeps readers out while it runs).
func cmdCollectSub(sub string) func(context.Context, *cliEnv, []string) error {
	return func(ctx context.Context, env *cliEnv, args []string) error { return cmdCollect(ctx, env, sub, args) }
}

func cmdCollect(ctx context.Context, env *cliEnv, sub string, args []string) error {
	fs := newFlags(env, "collect "+sub, "collect "+sub+" [flags]")
	cfgPath := fs.configFlag(defaultCollectorConfig, "collector config `file`")
	var asJSON *bool
	var out, level *string
	switch sub {
	case "status":
		asJSON = fs.Bool("json", false, "print JSON")
	case "export":
		out = fs.String("out", "-", "write the records to this `file` (- for standard output)")
	default:
		level = fs.String("log-level", "info", "debug, info, warn or error")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := collect.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if cfg.Store != "" {
		// pgx does not fit this binary's size budget: the PostgreSQL store
		// lives in the network-side binary.
		return fmt.Errorf("collect: %s sets store = a PostgreSQL URL; this device binary has only the embedded bbolt store: run `edge-collector %s -c %s` (package edge-collector) instead: %w",
			*cfgPath, sub, *cfgPath, collect.ErrNoStoreDriver)
	}
	switch sub {
	case "run":
		log, err := newLogger(env.stderr, nil, *level, "auto", env.getenv)
		if err != nil {
			return usagef("%v", err)
		}
		c, err := collect.New(collect.Options{Config: cfg, Logger: log, CreateKey: true})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stderr, "edge-agent collect: peer id %s, listening on %s\n", c.PeerID(), strings.Join(c.Addrs(), " "))
		return c.Run(ctx)
	case "status":
		sum, err := collect.ReadStatus(cfg.DBPath())
		if err == nil {
			err = collect.Identify(cfg, sum, exportDB(cfg))
		}
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.stdout).Encode(sum)
		}
		collect.PrintSummary(status.PrintableWriter(env.stdout), sum) // device-sent kinds and sources
		return nil
	case "export":
		if *out == "-" {
			n, err := collect.ExportDB(cfg.DBPath(), env.stdout)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.stderr, "exported %d records\n", n)
			return nil
		}
		n, err := collect.ExportDBFile(cfg.DBPath(), *out)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stderr, "exported %d records to %s (check them with: edge-agent verify %s)\n", n, *out, *out)
		return exportIdentities(env, cfg, *out)
	}
	return fmt.Errorf("collect: no subcommand %q", sub)
}

func exportDB(cfg *collect.Config) func(io.Writer) (int, error) {
	return func(w io.Writer) (int, error) { return collect.ExportDB(cfg.DBPath(), w) }
}

// exportIdentities writes FILE.identity.json next to an export when the
// collector checks manufacturer certificates.
func exportIdentities(env *cliEnv, cfg *collect.Config, out string) error {
	sum, err := collect.ReadStatus(cfg.DBPath())
	if err == nil {
		err = collect.Identify(cfg, sum, exportDB(cfg))
	}
	var line string
	if err == nil {
		line, err = collect.WriteIdentities(out, sum)
	}
	if line != "" {
		fmt.Fprintln(env.stderr, line)
	}
	return err
}
