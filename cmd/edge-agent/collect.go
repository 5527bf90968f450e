package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/edge-agent/edge-agent/collect"
)

const defaultCollectorConfig = "/etc/edge-agent/collector.toml"

// cmdCollect is the network side: `collect [-c FILE]` runs the collector;
// `collect status` and `collect export --out FILE` read its database (with
// the collector stopped: bbolt's file lock keeps readers out while it runs).
func cmdCollect(ctx context.Context, env *cliEnv, args []string) error {
	sub := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs := newFlags(env, "collect "+sub, "collect [run|status|export] [-c FILE] [--json] [--out FILE]")
	cfgPath := fs.String("c", defaultCollectorConfig, "collector config `file`")
	asJSON := fs.Bool("json", false, "status: print JSON")
	out := fs.String("out", "-", "export: write the records to this `file` (- for standard output)")
	level := fs.String("log-level", "info", "run: debug, info, warn or error")
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
		log, err := newLogger(env.stderr, *level, "auto", env.getenv)
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
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.stdout).Encode(sum)
		}
		collect.PrintSummary(env.stdout, sum)
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
		return nil
	}
	return usagef("unknown collect subcommand %q: use run, status or export", sub)
}
