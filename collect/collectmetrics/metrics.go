// Package collectmetrics is the collector's Prometheus instrumentation: a
// collect.Observer and the /metrics HTTP server, linked by edge-collector.
//
// Concurrency: every method is safe for concurrent use; Serve is called once.
package collectmetrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/collect"
)

var _ collect.Observer = (*Metrics)(nil)

// collectorMetrics are the collector's Prometheus series (prefix
// edge_collector_). Counters restart at zero with the process.
// Metrics are the collector's Prometheus series (prefix edge_collector_).
// Counters restart at zero with the process. Create them with New.
type Metrics struct {
	reg       *prometheus.Registry // exposed by Serve
	verified  prometheus.Counter
	records   *prometheus.CounterVec // by verdict: accepted, duplicate, fork
	rejected  *prometheus.CounterVec // by reason
	receipts  *prometheus.CounterVec // by transport
	commit    prometheus.Histogram
	lag       prometheus.Histogram
	devices   prometheus.GaugeFunc
	intake    prometheus.GaugeFunc
	storeErrs prometheus.Counter
}

// New makes the series. gauges, read at each scrape, returns the devices
// known and the records waiting for the store (Collector.Gauges).
func New(gauges func() (devices, intake int)) *Metrics {
	const ns = "edge_collector"
	devices := func() float64 { d, _ := gauges(); return float64(d) }
	intake := func() float64 { _, n := gauges(); return float64(n) }
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		verified: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "verified_total",
			Help: "Records whose signature this collector verified (rate() of it is records verified/s)."}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "records_total",
			Help: "Records committed to the store, by verdict: accepted (new), duplicate, fork."}, []string{"verdict"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "rejected_total",
			Help: "Records refused before the store, by reason."}, []string{"reason"}),
		receipts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "receipts_total",
			Help: "Signed receipts published, by transport."}, []string{"transport"}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "commit_seconds",
			Help:    "Time to commit one batch to the store (insert latency).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "lag_seconds",
			Help:    "Commit time minus the device's signing time: how far the collector (with the broker queue before it) is behind the devices.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16)}),
		devices: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "devices_seen",
			Help: "Devices known to this collector (stored before, listed or vouched)."}, devices),
		intake: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "intake_records",
			Help: "Verified records waiting for the store."}, intake),
		storeErrs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "store_errors_total",
			Help: "Failed commits (the records are not acknowledged and come again)."}),
	}
	for _, v := range []string{"accepted", "duplicate", "fork"} {
		m.records.WithLabelValues(v)
	}
	for _, r := range collect.RejectReasons {
		m.rejected.WithLabelValues(r)
	}
	m.reg.MustRegister(m.verified, m.records, m.rejected, m.receipts, m.commit, m.lag, m.devices, m.intake, m.storeErrs)
	return m
}

func (m *Metrics) Verified()                { m.verified.Inc() }
func (m *Metrics) Rejected(reason string)   { m.rejected.WithLabelValues(reason).Inc() }
func (m *Metrics) Receipt(transport string) { m.receipts.WithLabelValues(transport).Inc() }
func (m *Metrics) StoreError()              { m.storeErrs.Inc() }
func (m *Metrics) Lag(d time.Duration)      { m.lag.Observe(max(0, d.Seconds())) }
func (m *Metrics) Commit(d time.Duration)   { m.commit.Observe(d.Seconds()) }

func (m *Metrics) Stored(v attest.Verdict) {
	switch v {
	case attest.Accepted:
		m.records.WithLabelValues("accepted").Inc()
	case attest.Duplicate:
		m.records.WithLabelValues("duplicate").Inc()
	case attest.Forked:
		m.records.WithLabelValues("fork").Inc()
	}
}

// Serve answers /metrics on ln until ctx is done.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("collectmetrics: serve: %w", err)
	}
	return nil
}
