// Command edge-agent is the DePIN edge daemon and its tools: run the daemon,
// try the whole pipeline on simulated hardware, verify exported records, and
// inspect the device identity, config and outbox.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/edge-agent/edge-agent/agent"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"syscall"
)

// Stamped at build time with -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = "unknown"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, env *cliEnv, args []string) error
}

// cliEnv is what a subcommand may touch of the process, so tests can run
// commands in-process.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

func commands() map[string]command {
	return map[string]command{
		"run":     {"the daemon: read drivers, sign, store, deliver", cmdRun},
		"demo":    {"the whole pipeline on simulated hardware, no setup", cmdDemo},
		"verify":  {"check signatures and chains of exported records", cmdVerify},
		"keys":    {"device identity: keys init | keys show", cmdKeys},
		"config":  {"config default | config check FILE", cmdConfig},
		"queue":   {"the outbox: queue stats | queue export --out FILE", cmdQueue},
		"bench":   {"how fast this device signs and stores", cmdBench},
		"status":  {"live state of the running daemon: status [--json] [--watch]", cmdStatus},
		"collect": {"network side: receive, verify, dedupe, store, receipt", cmdCollect},
		"doctor":  {"field checklist, works with the daemon down: doctor [--json] [-c FILE]", cmdDoctor},
		"version": {"print the version", cmdVersion},
		"health":  {"post-upgrade health gate: is this version running and sound", cmdHealth},
	}
}

// exitError carries a specific exit status (verify: 1 for bad records).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	code := runCLI(ctx, env, os.Args[1:])
	stop()
	os.Exit(code)
}

// runCLI dispatches args and returns the process exit status.
func runCLI(ctx context.Context, env *cliEnv, args []string) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "edge-agent: unknown command %q\n\n", args[0])
		usage(env.stderr, cmds)
		return 2
	}
	err := c.run(ctx, env, args[1:])
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintf(env.stderr, "edge-agent %s: %v\n", args[0], ee.err)
		}
		return ee.code
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(env.stderr, "edge-agent %s: %v\n", args[0], err)
		return 2
	}
	fmt.Fprintf(env.stderr, "edge-agent %s: %v\n", args[0], err)
	return 1
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: edge-agent COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'edge-agent COMMAND -h' for a command's flags.")
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// newFlags makes a FlagSet that reports to stderr and returns errors.
func newFlags(env *cliEnv, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "usage: edge-agent %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func cmdVersion(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "version", "version")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "edge-agent %s (commit %s, %s, %s/%s)\n", version, commit,
		runtime.Version(), runtime.GOOS, goarch())
	for _, f := range agent.Omitted() {
		fmt.Fprintf(env.stdout, "not in this build: %s\n", f)
	}
	return nil
}

func goarch() string {
	if runtime.GOARCH == "arm" {
		if v := armVersion(); v != "" {
			return "armv" + v
		}
	}
	return runtime.GOARCH
}

// armVersion reads GOARM from the build info ("6,softfloat" → "6").
func armVersion() string {
	bi, ok := readBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == "GOARM" {
			return strings.SplitN(s.Value, ",", 2)[0]
		}
	}
	return ""
}
