package collect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// collectorMetrics are the collector's Prometheus series (prefix
// edge_collector_). Counters restart at zero with the process.
type collectorMetrics struct {
	reg       *prometheus.Registry
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

func newMetrics(devices, intake func() float64) *collectorMetrics {
	const ns = "edge_collector"
	m := &collectorMetrics{
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
	for _, r := range []string{rejectMalformed, rejectBadSignature, rejectFuture, rejectNotAllowed, rejectRate, rejectQuota, rejectShed, rejectTooMany} {
		m.rejected.WithLabelValues(r)
	}
	m.reg.MustRegister(m.verified, m.records, m.rejected, m.receipts, m.commit, m.lag, m.devices, m.intake, m.storeErrs)
	return m
}

// serve answers /metrics on addr until ctx is done.
func (m *collectorMetrics) serve(ctx context.Context, ln net.Listener) error {
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
		return fmt.Errorf("collect: metrics: %w", err)
	}
	return nil
}
