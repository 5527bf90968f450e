//go:build nometrics

package agent

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// MetricsBuilt reports whether this build serves Prometheus metrics: this
// one (-tags nometrics, for gateways with a few MB of flash) does not; the
// status socket still has every counter.
const MetricsBuilt = false

func (a *Agent) startMetrics(_ context.Context, _ *errgroup.Group, listen string) {
	a.log.Warn("no metrics endpoint: this small-device build has no Prometheus metrics; `edge-agent status --json` has the same counters", "listen", listen)
}
