//go:build !nometrics

package agent

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/edge-agent/edge-agent/metrics"
)

// MetricsBuilt reports whether this build serves Prometheus metrics.
const MetricsBuilt = true

func (a *Agent) startMetrics(ctx context.Context, g *errgroup.Group, listen string) {
	reg := metrics.NewRegistry(metrics.NewCollector(a, 5*time.Second, a.o.Logger))
	ms, err := metrics.Listen(listen, reg, a.o.Logger)
	if err != nil {
		a.log.Error("no metrics endpoint", "listen", listen, "err", err)
		return
	}
	g.Go(func() error { return ms.Run(ctx) })
}
