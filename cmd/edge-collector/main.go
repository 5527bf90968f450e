// Command edge-collector is the network side for operators: it receives
// records from the fleet (MQTT, shared subscriptions, libp2p), verifies and
// admits them, stores them in PostgreSQL or the embedded bbolt file, and
// answers with signed receipts. It is the only binary that links the
// collector: the device binary edge-agent does not (size budget), and its
// `edge-agent collect …` execs this one, and its demo runs it as a child.
//
//	edge-collector run     [-c FILE] [--log-level LEVEL]
//	edge-collector status  [-c FILE] [--json]       works while collectors run (PostgreSQL)
//	edge-collector export  [-c FILE] [--out FILE]   likewise
//	edge-collector loadgen --server URL --devices N --rate R [--duration D | --count C] [--collectors ID,…]
//	edge-collector version
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/collect"
	"github.com/edge-agent/edge-agent/collect/collectmetrics"
	"github.com/edge-agent/edge-agent/collect/fleet"
	"github.com/edge-agent/edge-agent/collect/pgstore"
	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/uplink/p2p"
)

var (
	version = "dev"
	commit  = "unknown"
)

const defaultConfig = "/etc/edge-collector/collector.toml"

const usage = `usage: edge-collector COMMAND [flags]

commands:
  run      receive, verify, admit, store and receipt records (the daemon)
  status   per-device audit of the store: records, gaps, broken links, forks
  export   write every stored record as a CBOR sequence (for edge-agent verify)
  loadgen  play a fleet of devices over MQTT and report throughput and latency
  version  print the version

With store = "postgres://…" in collector.toml, status and export work while
collectors run. With the embedded bbolt store (store = ""), the running
collector holds the file: stop it first, or read its /metrics and log.
Run "edge-collector COMMAND -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "edge-collector:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "edge-collector:", err)
		os.Exit(1)
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "run", "status", "export":
		return cmdStore(ctx, cmd, args, stdout, stderr)
	case "loadgen":
		return cmdLoadgen(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "edge-collector %s (%s)\n", version, commit)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("edge-collector "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// openers returns the PostgreSQL opener tuned by cfg.
func opener(cfg *collect.Config, log *slog.Logger) collect.StoreOpener {
	return func(ctx context.Context, url string) (collect.Store, error) {
		return pgstore.Open(ctx, url, pgstore.Opts{Retention: cfg.Postgres.Retention.Duration, MaxConns: cfg.Postgres.MaxConns, Logger: log})
	}
}

func cmdStore(ctx context.Context, sub string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags(sub, stderr)
	cfgPath := fs.String("c", defaultConfig, "collector config `file`")
	fs.StringVar(cfgPath, "config", defaultConfig, "collector config `file` (as -c)")
	asJSON := fs.Bool("json", false, "status: print JSON")
	out := fs.String("out", "-", "export: write the records to this `file` (- for standard output)")
	level := fs.String("log-level", "info", "run: debug, info, warn or error")
	cpuProfile := fs.String("cpuprofile", "", "run: write a Go CPU profile (pprof) of the whole run to this `file`")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	cfg, err := collect.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return usageError{fmt.Sprintf("--log-level %q: want debug, info, warn or error", *level)}
	}
	var h slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv})
	if os.Getenv("JOURNAL_STREAM") != "" {
		h = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lv})
	}
	log := slog.New(h)
	switch sub {
	case "run":
		if *cpuProfile != "" {
			stopProfile, err := startCPUProfile(*cpuProfile)
			if err != nil {
				return err
			}
			defer stopProfile()
		}
		var c *collect.Collector
		met := collectmetrics.New(func() (int, int) { return c.Gauges() })
		var ln net.Listener
		if cfg.MetricsListen != "" {
			if ln, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
				return fmt.Errorf("metrics_listen %s: %w", cfg.MetricsListen, err)
			}
		}
		c, err = collect.New(collect.Options{Config: cfg, Logger: log, CreateKey: true, OpenStore: opener(cfg, log), Observer: met})
		if err != nil {
			if ln != nil {
				ln.Close()
			}
			return err
		}
		addr := ""
		if ln != nil {
			addr = ln.Addr().String()
			mctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() {
				if err := met.Serve(mctx, ln); err != nil {
					log.Error("metrics server stopped", "err", err)
				}
			}()
		}
		fmt.Fprintf(stderr, "edge-collector: peer id %s (list it in the agents' collectors), store %s, metrics %s\n",
			c.PeerID(), storeName(cfg), orOff(addr))
		return c.Run(ctx)
	case "status":
		st, err := collect.OpenStore(ctx, cfg, opener(cfg, log))
		if err != nil {
			return err
		}
		defer st.Close()
		sum, err := st.Summary(ctx)
		if err == nil {
			err = collect.Identify(cfg, sum, storeExport(ctx, st))
		}
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(sum)
		}
		if id, err := collectorID(cfg); err == nil {
			fmt.Fprintf(stdout, "collector peer id %s, store %s\n", id, storeName(cfg))
		}
		collect.PrintSummary(status.PrintableWriter(stdout), sum) // device-sent kinds and sources
		return nil
	case "export":
		st, err := collect.OpenStore(ctx, cfg, opener(cfg, log))
		if err != nil {
			return err
		}
		defer st.Close()
		w, finish := stdout, func() error { return nil }
		if *out != "-" {
			f, err := os.OpenFile(*out+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			w = f
			finish = func() error {
				if err := f.Sync(); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
				return os.Rename(*out+".tmp", *out)
			}
		}
		n, err := st.Export(ctx, w)
		if err == nil {
			err = finish()
		}
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		fmt.Fprintf(stderr, "exported %d records (check them with: edge-agent verify --partial FILE)\n", n)
		if *out == "-" {
			return nil
		}
		sum, err := st.Summary(ctx)
		if err == nil {
			err = collect.Identify(cfg, sum, storeExport(ctx, st))
		}
		var line string
		if err == nil {
			line, err = collect.WriteIdentities(*out, sum)
		}
		if line != "" {
			fmt.Fprintln(stderr, line)
		}
		return err
	}
	return nil
}

// startCPUProfile profiles this process until the returned func is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func storeExport(ctx context.Context, st collect.Store) func(io.Writer) (int, error) {
	return func(w io.Writer) (int, error) { return st.Export(ctx, w) }
}

func storeName(cfg *collect.Config) string {
	if cfg.Store == "" {
		return "bbolt " + cfg.DBPath()
	}
	return "postgres"
}

func orOff(s string) string {
	if s == "" {
		return "off"
	}
	return "http://" + s + "/metrics"
}

func collectorID(cfg *collect.Config) (string, error) {
	s, err := attest.OpenSigner(cfg.KeyURI())
	if err != nil {
		return "", err
	}
	k, err := p2p.HostKey(s)
	if err != nil {
		return "", err
	}
	return peerIDOf(k)
}

func cmdLoadgen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("loadgen", stderr)
	servers := fs.String("server", "tcp://127.0.0.1:1883", "broker `URL`s, comma-separated")
	prefix := fs.String("topic-prefix", "edge-agent", "topic prefix, as the collectors'")
	devices := fs.Int("devices", 100, "devices to play, each with its own key and chain")
	rate := fs.Float64("rate", 1000, "records per second over all devices")
	duration := fs.Duration("duration", 30*time.Second, "how long to make records (unless --count)")
	count := fs.Int("count", 0, "records per device; 0 = until --duration")
	pad := fs.Int("pad", 64, "payload padding bytes per record")
	collectors := fs.String("collectors", "", "collector peer ids, comma-separated: end-to-end receipts (else PUBACK)")
	minReceipts := fs.Int("min-receipts", 1, "receipts needed per record")
	window := fs.Int("window", 0, "records in flight per device (0 = the uplink default, 64)")
	drain := fs.Duration("drain", 2*time.Minute, "how long to wait for the outboxes to empty after the last record")
	presign := fs.Bool("presign", false, "sign every record before the clock starts, so the measured window only ships them")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	o := fleet.LoadOpts{Servers: strings.Split(*servers, ","), TopicPrefix: *prefix, Devices: *devices, Rate: *rate,
		Duration: *duration, Count: *count, Pad: *pad, Presign: *presign, MinReceipts: *minReceipts, Window: *window, Drain: *drain,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if *collectors != "" {
		o.Collectors = strings.Split(*collectors, ",")
	}
	res, err := fleet.Run(ctx, o)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	mode := "PUBACK"
	if len(o.Collectors) > 0 {
		mode = fmt.Sprintf("receipts from %d of %d collectors", o.MinReceipts, len(o.Collectors))
	}
	fmt.Fprintf(stdout, "devices %d, records %d, delivered %d, backlog %d, in %v (%.0f records/s), ack by %s\n",
		res.Devices, res.Records, res.Delivered, res.Backlog, res.Elapsed.Round(time.Millisecond),
		float64(res.Delivered)/max(res.Elapsed.Seconds(), 1e-9), mode)
	fmt.Fprintf(stdout, "publish→ack latency p50 %v, p99 %v, max %v; receipts %d (refused %d), re-sent %d\n",
		res.P50.Round(time.Millisecond), res.P99.Round(time.Millisecond), res.Max.Round(time.Millisecond), res.Receipts, res.Refused, res.Resent)
	if res.Backlog > 0 {
		return fmt.Errorf("loadgen: %d records still in the outboxes after --drain %v: the collectors are behind or not receipting", res.Backlog, *drain)
	}
	return nil
}
