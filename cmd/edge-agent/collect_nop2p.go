//go:build nop2p

package main

import (
	"context"
	"fmt"

	"github.com/edge-agent/edge-agent/agent"
)

// cmdCollectSub in a build without libp2p: the collector receives over
// gossip, so it is not in this build.
func cmdCollectSub(string) func(context.Context, *cliEnv, []string) error {
	return func(context.Context, *cliEnv, []string) error {
		return fmt.Errorf("collect: %w", agent.ErrNoP2P)
	}
}
