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

// command is one node of the command tree. A leaf has run; a group has subs
// (and run too when it has a default, like collect). The tree is the one
// source of the help, the man page and the shell completions.
type command struct {
	summary string
	run     func(ctx context.Context, env *cliEnv, args []string) error
	subs    map[string]command
	hidden  bool // not in help, man page or completions (generators)
}

// cliEnv is what a subcommand may touch of the process, so tests can run
// commands in-process.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// onFlags, when set, sees every flag set a command builds (the man page
	// and completion generators walk the tree with -h).
	onFlags func(*flagSet)
}

func commands() map[string]command {
	cmds := map[string]command{
		"run":    {summary: "the daemon: read drivers, sign, store, deliver", run: cmdRun},
		"demo":   {summary: "the whole pipeline on simulated hardware, no setup", run: cmdDemo},
		"verify": {summary: "check signatures and chains of exported records", run: cmdVerify},
		"keys": {summary: "the device identity", subs: map[string]command{
			"init":         {summary: "create the device key (refuses to replace one)", run: cmdKeysSub("init")},
			"show":         {summary: "print the device id and public key", run: cmdKeysSub("show")},
			"csr":          {summary: "write a PKCS#10 certificate request for the device key", run: cmdKeysSub("csr")},
			"install-cert": {summary: "store the manufacturer's certificate (checked against the key)", run: cmdKeysSub("install-cert")},
		}},
		"config": {summary: "the daemon's config", subs: map[string]command{
			"default": {summary: "print the full commented default config", run: cmdConfigDefault},
			"check":   {summary: "load and validate a config (with its drop-ins)", run: cmdConfigCheck},
			"show":    {summary: "print the merged config with each value's origin", run: cmdConfigShow},
		}},
		"queue": {summary: "the outbox (with the daemon stopped)", subs: map[string]command{
			"stats":  {summary: "records, quota, acknowledgements per uplink", run: cmdQueueStats},
			"export": {summary: "write every stored record as a CBOR sequence", run: cmdQueueExport},
		}},
		"bench":  {summary: "how fast this device signs and stores", run: cmdBench},
		"status": {summary: "live state of the running daemon", run: cmdStatus},
		"collect": {summary: "network side: runs edge-collector (package edge-collector) with these flags", run: cmdCollectSub("run"),
			subs: map[string]command{
				"run":    {summary: "edge-collector run: receive, verify, store, receipt (the default)", run: cmdCollectSub("run")},
				"status": {summary: "edge-collector status: devices and chains in the collector's store", run: cmdCollectSub("status")},
				"export": {summary: "edge-collector export: the collected records as a CBOR sequence", run: cmdCollectSub("export")},
			}},
		"doctor":  {summary: "field checklist, works with the daemon down", run: cmdDoctor},
		"version": {summary: "print the version", run: cmdVersion},
		"health":  {summary: "post-upgrade health gate: is this version running and sound", run: cmdHealth},
	}
	for n, c := range docCommands() {
		cmds[n] = c
	}
	return cmds
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

// runCLI dispatches args and returns the process exit status: 0 done (help
// included), 1 failed, 2 a mistake in the command line; commands with their
// own meanings (doctor, verify) return exitError.
func runCLI(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) > 0 && args[0] == "--version" {
		args = []string{"version"}
	}
	root := command{subs: commands()}
	err := dispatch(ctx, env, "", root, args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	name := "edge-agent"
	if len(args) > 0 {
		name += " " + args[0]
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintf(env.stderr, "%s: %v\n", name, ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(env.stderr, "%s: %v\n", name, err)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// dispatch walks the tree: path is the command so far ("queue").
func dispatch(ctx context.Context, env *cliEnv, path string, c command, args []string) error {
	if c.subs == nil {
		return c.run(ctx, env, args)
	}
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "-h" || a == "--help" || a == "help":
			groupUsage(env.stdout, path, c)
			return nil
		case !strings.HasPrefix(a, "-"):
			sub, ok := c.subs[a]
			if !ok {
				fmt.Fprintf(env.stderr, "%s: unknown command %q\n\n", strings.TrimSpace("edge-agent "+path), a)
				groupUsage(env.stderr, path, c)
				return &exitError{code: 2, err: errReported}
			}
			return dispatch(ctx, env, strings.TrimSpace(path+" "+a), sub, args[1:])
		}
	}
	if c.run != nil {
		return c.run(ctx, env, args)
	}
	if len(args) > 0 {
		fmt.Fprintf(env.stderr, "edge-agent %s: name a subcommand before %q\n\n", path, args[0])
	}
	groupUsage(env.stderr, path, c)
	return &exitError{code: 2, err: errReported}
}

// groupUsage lists a group's subcommands.
func groupUsage(w io.Writer, path string, c command) {
	what := "COMMAND"
	if path != "" {
		what = "SUBCOMMAND"
	}
	fmt.Fprintf(w, "usage: %s %s [flags]\n", strings.TrimSpace("edge-agent "+path), what)
	if c.summary != "" {
		fmt.Fprintf(w, "\n%s\n", c.summary)
	}
	fmt.Fprintf(w, "\n%ss:\n", strings.ToLower(what))
	for _, n := range visible(c.subs) {
		fmt.Fprintf(w, "  %-9s %s\n", n, c.subs[n].summary)
	}
	if path == "" {
		fmt.Fprintln(w, "\nRun 'edge-agent COMMAND -h' for a command's flags; 'edge-agent --version' for the version.")
	} else {
		fmt.Fprintf(w, "\nRun 'edge-agent %s SUBCOMMAND -h' for its flags.\n", path)
	}
}

// visible is the sorted names of the subcommands a user is shown.
func visible(subs map[string]command) []string {
	names := make([]string, 0, len(subs))
	for n, c := range subs {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// flagSet is a command's flags. Parse prints help to stdout and returns
// flag.ErrHelp for -h/--help, and turns every other parse error into a
// usage error (exit status 2) after printing the usage to stderr.
type flagSet struct {
	*flag.FlagSet
	env      *cliEnv
	synopsis string
}

// newFlags makes a command's flag set; synopsis is the usage line after
// "edge-agent" ("queue export [flags]").
func newFlags(env *cliEnv, name, synopsis string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), env: env, synopsis: synopsis}
	fs.SetOutput(io.Discard)
	fs.FlagSet.Usage = func() {}
	if env.onFlags != nil {
		env.onFlags(fs)
	}
	return fs
}

func (fs *flagSet) Parse(args []string) error {
	err := fs.FlagSet.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.printUsage(fs.env.stdout)
		return flag.ErrHelp
	}
	fmt.Fprintf(fs.env.stderr, "edge-agent %s: %v\n", fs.Name(), err)
	fs.printUsage(fs.env.stderr)
	return &exitError{code: 2, err: errReported}
}

// configFlag registers -c and --config for the config file.
func (fs *flagSet) configFlag(def, usage string) *string {
	p := fs.String("c", def, usage)
	fs.StringVar(p, "config", def, usage)
	return p
}

// flagInfo is one flag with its aliases, for help, man page and completion.
type flagInfo struct {
	names []string // short first
	arg   string   // "" for a boolean
	usage string
	def   string
}

// flags lists the set's flags, aliases (one variable, two names) merged.
func (fs *flagSet) flags() []flagInfo {
	var out []flagInfo
	seen := map[flag.Value]int{}
	fs.VisitAll(func(f *flag.Flag) {
		if i, ok := seen[f.Value]; ok {
			out[i].names = append(out[i].names, f.Name)
			sort.Slice(out[i].names, func(a, b int) bool { return len(out[i].names[a]) < len(out[i].names[b]) })
			return
		}
		arg, usage := flag.UnquoteUsage(f)
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			arg = ""
		}
		def := f.DefValue
		if def == "false" || def == "0" || def == "0s" || (arg != "" && def == "") {
			def = ""
		}
		seen[f.Value] = len(out)
		out = append(out, flagInfo{names: []string{f.Name}, arg: arg, usage: usage, def: def})
	})
	return out
}

func (fi flagInfo) spelled() string {
	parts := make([]string, len(fi.names))
	for i, n := range fi.names {
		if len(n) == 1 {
			parts[i] = "-" + n
		} else {
			parts[i] = "--" + n
		}
	}
	s := strings.Join(parts, ", ")
	if fi.arg != "" {
		s += " " + strings.ToUpper(fi.arg)
	}
	return s
}

func (fs *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: edge-agent %s\n", fs.synopsis)
	if s := summaryOf(fs.Name()); s != "" {
		fmt.Fprintf(w, "\n%s\n", s)
	}
	fl := fs.flags()
	if len(fl) == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	for _, f := range fl {
		fmt.Fprintf(w, "  %s\n      %s", f.spelled(), f.usage)
		if f.def != "" {
			fmt.Fprintf(w, " (default %s)", f.def)
		}
		fmt.Fprintln(w)
	}
}

// summaryOf finds a command's summary by its path ("queue stats").
func summaryOf(path string) string {
	c := command{subs: commands()}
	for _, p := range strings.Fields(path) {
		var ok bool
		if c, ok = c.subs[p]; !ok {
			return ""
		}
	}
	return c.summary
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
