// Package metrics exports the daemon's status document as Prometheus
// metrics on a localhost HTTP endpoint. Every scrape reads one fresh
// document from the same status.Source the status API serves, so the two
// can never disagree and the daemon keeps no second set of counters.
//
// Names follow the Prometheus conventions: an edge_agent_ prefix, _total on
// counters, base units (_seconds, _bytes). Counters restart from zero when
// the daemon restarts, which Prometheus' rate() handles.
//
// Concurrency: the Collector is safe for concurrent scrapes (each reads its
// own document); Server.Run is called once.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edge-agent/edge-agent/status"
)

// DefaultListen is the default metrics address: localhost only, since the
// endpoint is not authenticated; a node exporter or agent on the box scrapes
// it and forwards.
const DefaultListen = "127.0.0.1:9477"

const ns = "edge_agent"

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(ns+"_"+name, help, labels, nil)
}

// Collector turns status documents into metrics.
type Collector struct {
	src     status.Source
	timeout time.Duration
	log     *slog.Logger

	buildInfo, up, uptime                                   *prometheus.Desc
	observations, observed, signed, stored, appendErrs      *prometheus.Desc
	encodeDrops, withoutLoc                                 *prometheus.Desc
	driverState                                             *prometheus.Desc
	gnssSats, gnssHDOP, gnssFixAge, gnssMode                *prometheus.Desc
	gnssSentences, gnssRejected                             *prometheus.Desc
	loraPackets, loraDrops                                  *prometheus.Desc
	lora                                                    loraDescs
	storeRecords, storeBytes, storeQuota, storeFile, evicts *prometheus.Desc
	delivered, backlog, connected, certExpiry               *prometheus.Desc
	clockSynced, clockGNSSOffset, diskFree, diskTotal       *prometheus.Desc
	cpusInUse, cpusMax, cpuSwitches                         *prometheus.Desc
	keyInfo, keyBindings, keyValidUntil, keyFailing         *prometheus.Desc
}

// NewCollector reads src on every scrape, waiting at most timeout (0: 5s).
func NewCollector(src status.Source, timeout time.Duration, log *slog.Logger) *Collector {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Collector{
		src: src, timeout: timeout, log: log.With("component", "metrics"),
		buildInfo: desc("build_info", "Always 1; the labels say which edge-agent runs.", "version", "commit", "goversion", "device_id"),
		up:        desc("status_up", "1 when the daemon produced its status document for this scrape, 0 when it failed."),
		uptime:    desc("uptime_seconds", "Seconds since the daemon started."),

		observations: desc("observations_total", "Observations emitted by drivers, by kind and source (driver instance).", "kind", "source"),
		observed:     desc("pipeline_observed_total", "Observations handed to the signing pipeline."),
		signed:       desc("records_signed_total", "Records signed."),
		stored:       desc("records_stored_total", "Records durably appended to the outbox."),
		appendErrs:   desc("store_append_errors_total", "Outbox commits that failed."),
		encodeDrops:  desc("pipeline_encode_drops_total", "Observations dropped because they could not be encoded (a driver bug)."),
		withoutLoc:   desc("pipeline_location_dropped_total", "Records stored without the location stamp because the stamp could not be encoded."),
		driverState:  desc("driver_state", "1 for the driver's current state (loaded, skipped, failed, finished), 0 for the others.", "driver", "family", "state"),

		gnssSats:      desc("gnss_satellites", "Satellites used in the last GNSS solution.", "driver"),
		gnssHDOP:      desc("gnss_hdop", "Horizontal dilution of precision of the last GNSS solution.", "driver"),
		gnssFixAge:    desc("gnss_fix_age_seconds", "Seconds since the last GNSS epoch with a position (since start when there was none).", "driver"),
		gnssMode:      desc("gnss_fix_mode", "Fix mode of the last epoch: 1 none, 2 2D, 3 3D, 0 before any epoch.", "driver"),
		gnssSentences: desc("gnss_sentences_total", "NMEA sentences, UBX frames or gpsd reports the GNSS driver used.", "driver"),
		gnssRejected: desc("gnss_rejected_total", "GNSS input refused, by reason: bad_checksum, no_checksum, garbled, invalid, late, bad_date, time_back.",
			"driver", "reason"),

		loraPackets: desc("lora_packets_total", "LoRa packets by receiving driver, gateway EUI and outcome.", "driver", "gateway", "outcome"),
		loraDrops:   desc("lora_socket_drops_total", "Datagrams the kernel dropped on the packet forwarder socket.", "driver"),

		lora: loraDescs{
			malformed: desc("lora_malformed_total", "LoRa datagrams, objects and values refused, by driver and reason.", "driver", "reason"),
			gateways:  desc("lora_gateways", "Gateways a LoRa driver tracks now.", "driver"),
			gwMax:     desc("lora_gateways_max", "The LoRa driver's gateway table cap (max_gateways).", "driver"),
			refused:   desc("lora_gateways_refused_total", "Datagrams from new gateways refused because the table was full.", "driver"),
			expired:   desc("lora_gateways_expired_total", "Gateways forgotten after gateway_expiry of silence.", "driver"),
			txRecords: desc("lora_tx_records_total", "lora.tx records: downlinks attested.", "driver"),
			upUp:      desc("lora_upstream_up", "1 when the upstream network server acknowledges (state ok or idle).", "driver", "upstream"),
			upSent:    desc("lora_upstream_sent_total", "Datagrams relayed to the upstream.", "driver", "upstream"),
			upAcks:    desc("lora_upstream_acks_total", "PUSH_ACK and PULL_ACK from the upstream.", "driver", "upstream"),
			upUnsent:  desc("lora_upstream_unsent_total", "Datagrams not relayed to the upstream (unresolved or no socket).", "driver", "upstream"),
			upDown:    desc("lora_upstream_downlinks_total", "Downlinks from the upstream by outcome.", "driver", "upstream", "outcome"),
		},

		storeRecords: desc("store_records", "Records in the outbox."),
		storeBytes:   desc("store_bytes", "Record bytes in the outbox (the quota's unit)."),
		storeQuota:   desc("store_quota_bytes", "Outbox quota; 0 means none."),
		storeFile:    desc("store_file_bytes", "Size of the outbox file on disk."),
		evicts:       desc("store_evictions_total", "Records evicted by the quota over the outbox file's life."),

		delivered:  desc("records_delivered_total", "Records acknowledged by each uplink since start.", "uplink"),
		backlog:    desc("uplink_backlog_records", "Stored records each uplink has not had acknowledged.", "uplink"),
		connected:  desc("uplink_connected", "1 when the uplink is connected.", "uplink"),
		certExpiry: desc("uplink_client_cert_expiry_timestamp_seconds", "Unix time the uplink's TLS client certificate expires.", "uplink"),

		clockSynced:     desc("clock_synchronized", "1 when the kernel says NTP disciplines the system clock."),
		clockGNSSOffset: desc("clock_gnss_offset_seconds", "GNSS time minus system time; positive means the system clock is behind."),
		diskFree:        desc("disk_free_bytes", "Bytes available on the data directory's filesystem."),
		diskTotal:       desc("disk_size_bytes", "Size of the data directory's filesystem."),
		cpusInUse:       desc("cpus_in_use", "Cores the daemon runs on now: one at light load, up to cpus_max when busy."),
		cpusMax:         desc("cpus_max", "Most cores the daemon uses when busy (device.cpus, else all)."),
		cpuSwitches:     desc("cpu_switches_total", "Changes of the number of cores since start."),

		keyInfo:       desc("device_key_info", "Always 1; the labels say which backend holds the device key and whether it is hardware.", "backend", "algorithm", "hardware"),
		keyBindings:   desc("session_bindings_total", "Session keys the hardware device key has bound (one hardware signature each) since start."),
		keyValidUntil: desc("session_valid_until_timestamp_seconds", "Unix time the current session key's binding expires; signing stops then unless a rotation succeeds."),
		keyFailing:    desc("session_rotation_failing", "1 while the last session rotation failed (the hardware key did not sign)."),
	}
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.buildInfo, c.up, c.uptime, c.observations, c.observed, c.signed, c.stored, c.appendErrs, c.driverState,
		c.encodeDrops, c.withoutLoc,
		c.gnssSats, c.gnssHDOP, c.gnssFixAge, c.gnssMode, c.gnssSentences, c.gnssRejected, c.loraPackets, c.loraDrops,
		c.lora.malformed, c.lora.gateways, c.lora.gwMax, c.lora.refused, c.lora.expired, c.lora.txRecords,
		c.lora.upUp, c.lora.upSent, c.lora.upAcks, c.lora.upUnsent, c.lora.upDown,
		c.storeRecords, c.storeBytes, c.storeQuota, c.storeFile, c.evicts,
		c.delivered, c.backlog, c.connected, c.certExpiry, c.clockSynced, c.clockGNSSOffset, c.diskFree, c.diskTotal,
		c.cpusInUse, c.cpusMax, c.cpuSwitches,
		c.keyInfo, c.keyBindings, c.keyValidUntil, c.keyFailing,
	} {
		ch <- d
	}
}

var driverStates = []string{status.StateLoaded, status.StateSkipped, status.StateFailed, status.StateFinished}

// Collect reads one document and sends its metrics. A failed read is
// edge_agent_status_up 0, so an alert can tell "daemon stuck" from "no data".
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	doc, err := c.src.Status(ctx)
	if err == nil && doc == nil {
		err = errors.New("no document")
	}
	if err != nil {
		c.log.Warn("scrape: status document failed", "err", err)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	id := doc.Identity
	gauge(c.up, 1)
	gauge(c.buildInfo, 1, id.Version, id.Commit, id.GoVersion, id.DeviceID)
	gauge(c.uptime, doc.Uptime().Seconds())

	p := doc.Pipeline
	counter(c.observed, p.Observed)
	counter(c.signed, p.Signed)
	counter(c.stored, p.Stored)
	counter(c.appendErrs, p.AppendErrors)
	counter(c.encodeDrops, p.EncodeDrops)
	counter(c.withoutLoc, p.WithoutLocation)

	for _, d := range doc.Drivers {
		for _, s := range driverStates {
			gauge(c.driverState, b2f(d.State == s), d.Name, d.Family, s)
		}
		for kind, n := range d.Observations {
			counter(c.observations, n, kind, d.Name)
		}
		if g := d.GNSS; g != nil {
			gauge(c.gnssSats, float64(g.Satellites), d.Name)
			gauge(c.gnssHDOP, g.HDOP, d.Name)
			gauge(c.gnssMode, float64(g.Mode), d.Name)
			age := doc.Uptime()
			if !g.LastFix.IsZero() {
				age = doc.Age(g.LastFix)
			}
			gauge(c.gnssFixAge, age.Seconds(), d.Name)
			counter(c.gnssSentences, g.Sentences, d.Name)
			for reason, n := range g.Rejected {
				counter(c.gnssRejected, n, d.Name, reason)
			}
		}
		if l := d.LoRa; l != nil {
			counter(c.loraDrops, l.SocketDrops, d.Name)
			for _, gw := range l.Gateways {
				for outcome, n := range gw.Packets {
					counter(c.loraPackets, n, d.Name, gw.EUI, outcome)
				}
			}
			c.loraExtra(l, d.Name, counter, gauge)
		}
	}

	s := doc.Store
	gauge(c.storeRecords, float64(s.Records))
	gauge(c.storeBytes, float64(s.Bytes))
	gauge(c.storeQuota, float64(s.MaxBytes))
	gauge(c.storeFile, float64(s.FileBytes))
	counter(c.evicts, s.Evicted)

	for _, u := range doc.Uplinks {
		counter(c.delivered, u.Delivered, u.Name)
		gauge(c.backlog, float64(u.Backlog), u.Name)
		gauge(c.connected, b2f(u.Connected), u.Name)
		if !u.ClientCertExpiry.IsZero() {
			gauge(c.certExpiry, float64(u.ClientCertExpiry.Unix()), u.Name)
		}
	}

	if doc.Clock.Synced != nil {
		gauge(c.clockSynced, b2f(*doc.Clock.Synced))
	}
	if off := doc.Clock.GNSSOffsetSeconds; off != nil {
		gauge(c.clockGNSSOffset, *off)
	}
	if doc.Disk.Error == "" && doc.Disk.TotalBytes > 0 {
		gauge(c.diskFree, float64(doc.Disk.FreeBytes))
		gauge(c.diskTotal, float64(doc.Disk.TotalBytes))
	}
	if u := doc.CPUs; u != nil {
		gauge(c.cpusInUse, float64(u.InUse))
		gauge(c.cpusMax, float64(u.Max))
		counter(c.cpuSwitches, u.Switches)
	}

	if k := id.Key; k != nil {
		gauge(c.keyInfo, 1, k.Backend, k.Algorithm, fmt.Sprint(k.Hardware))
		if k.SessionBindings > 0 {
			counter(c.keyBindings, uint64(k.SessionBindings))
			gauge(c.keyValidUntil, float64(k.SessionValidUntil.Unix()))
			gauge(c.keyFailing, b2f(k.RotationError != ""))
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// NewRegistry is a private registry (never the global one, which any
// imported library may write to) with the status collector and the Go
// runtime and process collectors.
func NewRegistry(c *Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Server serves /metrics for one registry.
type Server struct {
	ln  net.Listener
	reg *prometheus.Registry
	log *slog.Logger
}

// Listen binds addr (host:port). Callers skip it when the configured
// address is "" (metrics disabled).
func Listen(addr string, reg *prometheus.Registry, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w: pick a free port in [status] metrics_listen, or \"\" to disable", addr, err)
	}
	return &Server{ln: ln, reg: reg, log: log.With("component", "metrics")}, nil
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx is done; cancellation returns nil.
func (s *Server) Run(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 2, // a Pi Zero should not be scraped into the ground
		Timeout:             10 * time.Second,
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 15 * time.Second, IdleTimeout: time.Minute}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(status.LimitListener(s.ln, status.MaxConns)) }()
	s.log.Info("serving metrics", "addr", s.Addr())
	select {
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		srv.Shutdown(shut)
		<-done
		return nil
	case err := <-done:
		return fmt.Errorf("metrics: serve %s: %w", s.Addr(), err)
	}
}

// loraDescs are the LoRa multiplexer's and gateway table's metrics. Their
// series are bounded: reasons are a fixed set, upstreams come from the
// config, and the status document lists at most status.MaxStatusGateways.
type loraDescs struct {
	malformed, gateways, gwMax, refused, expired, txRecords *prometheus.Desc
	upUp, upSent, upAcks, upUnsent, upDown                  *prometheus.Desc
}

func (c *Collector) loraExtra(l *status.LoRa, driver string, counter func(*prometheus.Desc, uint64, ...string), gauge func(*prometheus.Desc, float64, ...string)) {
	for reason, n := range l.Malformed {
		counter(c.lora.malformed, n, driver, reason)
	}
	gauge(c.lora.gateways, float64(len(l.Gateways)+l.GatewaysOmitted), driver)
	if l.MaxGateways > 0 {
		gauge(c.lora.gwMax, float64(l.MaxGateways), driver)
	}
	counter(c.lora.refused, l.GatewaysRefused, driver)
	counter(c.lora.expired, l.GatewaysExpired, driver)
	counter(c.lora.txRecords, l.TxRecords, driver)
	for _, u := range l.Upstreams {
		up := 0.0
		if u.State == "ok" || u.State == "idle" {
			up = 1
		}
		gauge(c.lora.upUp, up, driver, u.Name)
		counter(c.lora.upSent, u.Sent, driver, u.Name)
		counter(c.lora.upAcks, u.Acks, driver, u.Name)
		counter(c.lora.upUnsent, u.Unsent, driver, u.Name)
		counter(c.lora.upDown, u.DownlinksRelayed, driver, u.Name, "relayed")
		counter(c.lora.upDown, u.DownlinksDropped, driver, u.Name, "dropped")
	}
}
