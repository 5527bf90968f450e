//go:build !nop2p

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// The network side is its own binary and package, edge-collector: the
// collector left the device binary to keep it in its size budget
// (docs/collector.md). `edge-agent collect …` hands over to it, so unit
// files and scripts that ran it keep working.
const (
	collectorBin = "edge-collector"
	// oldCollectorConfig is `edge-agent collect`'s default before the split;
	// edge-collector's own is /etc/edge-collector/collector.toml.
	oldCollectorConfig = "/etc/edge-agent/collector.toml"
	// collectorEnv names an edge-collector binary explicitly (tests, and
	// installs outside PATH); it wins over the search.
	collectorEnv = "EDGE_COLLECTOR"
)

var errNoCollector = errors.New("the network side is its own package now: install package edge-collector " +
	"(from the source: make build-collector, which writes bin/edge-collector) and run `edge-collector run -c FILE`")

// findCollector is the edge-collector to run: $EDGE_COLLECTOR, else the one
// next to this executable, else the first on $PATH.
func findCollector(getenv func(string) string) (string, error) {
	if p := getenv(collectorEnv); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("%s=%s is not an executable file: %w", collectorEnv, p, errNoCollector)
		}
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), collectorBin); isExecutable(p) {
			return p, nil
		}
	}
	for _, dir := range filepath.SplitList(getenv("PATH")) {
		if p := filepath.Join(dir, collectorBin); dir != "" && isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not next to this executable nor on PATH: %w", collectorBin, errNoCollector)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func cmdCollectSub(sub string) func(context.Context, *cliEnv, []string) error {
	return func(_ context.Context, env *cliEnv, args []string) error { return cmdCollect(env, sub, args) }
}

// cmdCollect takes the flags `edge-agent collect SUB` always took and execs
// `edge-collector SUB` with them: signals and the exit status are then
// edge-collector's, and a unit file's MAINPID stays right.
func cmdCollect(env *cliEnv, sub string, args []string) error {
	fs := collectFlags(env, sub)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	bin, err := findCollector(env.getenv)
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	argv := collectorArgs(bin, sub, fs.FlagSet, isFile(oldCollectorConfig))
	fmt.Fprintf(env.stderr, "edge-agent collect: the network side is its own binary now; running %s\n", strings.Join(argv, " "))
	err = syscall.Exec(bin, argv, os.Environ())
	return fmt.Errorf("collect: run %s: %w", bin, err)
}

// collectFlags are the flags `edge-agent collect SUB` took before the split.
func collectFlags(env *cliEnv, sub string) *flagSet {
	fs := newFlags(env, "collect "+sub, "collect "+sub+" [flags]")
	fs.configFlag("", "collector config `file` (default "+oldCollectorConfig+" where it exists, else edge-collector's /etc/edge-collector/collector.toml)")
	switch sub {
	case "status":
		fs.Bool("json", false, "print JSON")
	case "export":
		fs.String("out", "-", "write the records to this `file` (- for standard output)")
	default:
		fs.String("log-level", "info", "debug, info, warn or error")
	}
	return fs
}

// collectorArgs is edge-collector's argv for the flags the user set. With
// no -c/--config the old default is passed when it exists (oldExists), so
// a collector set up before the split keeps its config and data.
func collectorArgs(bin, sub string, fs *flag.FlagSet, oldExists bool) []string {
	argv := []string{bin, sub}
	config := false
	fs.Visit(func(f *flag.Flag) { // lexical order: c and config first
		switch {
		case f.Name == "c" || f.Name == "config":
			if !config { // one variable under both names: its last value
				argv = append(argv, "-c", f.Value.String())
			}
			config = true
		default:
			argv = append(argv, "--"+f.Name+"="+f.Value.String())
		}
	})
	if !config && oldExists {
		argv = append(argv, "-c", oldCollectorConfig)
	}
	return argv
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
