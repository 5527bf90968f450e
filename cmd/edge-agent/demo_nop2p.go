//go:build nop2p

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/edge-agent/edge-agent/config"
)

// demoNetwork is where the demo's records go in a build without libp2p:
// the file uplink's spool, read back as the network would read a USB export.
type demoNetwork struct {
	close   func()
	collect func(w io.Writer, outDir string) error
}

// startDemoNetwork points cfg's file uplink at DIR/out: the spool the
// summary then verifies.
func startDemoNetwork(_ context.Context, dir string, cfg *config.Config, _ *slog.Logger) (*demoNetwork, error) {
	cfg.Uplinks.File.Enabled = true
	cfg.Uplinks.File.Dir = dir + "/out"
	return &demoNetwork{
		close: func() {},
		collect: func(w io.Writer, _ string) error {
			fmt.Fprintln(w, "\nthis build has no libp2p: the file uplink spooled these (a USB export's format)")
			return nil
		},
	}, nil
}
