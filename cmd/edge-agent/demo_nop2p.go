//go:build nop2p

package main

import (
	"context"

	"github.com/edge-agent/edge-agent/config"
)

// startDemoNetwork in a build without libp2p: the file uplink's spool.
func startDemoNetwork(_ context.Context, _ *cliEnv, dir string, cfg *config.Config) (*demoNetwork, error) {
	return fileDemoNetwork(dir, cfg, "", "this build has no libp2p"), nil
}
