//go:build nop2p

package main

import (
	"context"
	"errors"
)

// cmdCollectSub in the small build: the collector is edge-collector, a
// package for servers; gateways that run this build never host one, and
// the hand-over's code would not fit their flash budget.
func cmdCollectSub(string) func(context.Context, *cliEnv, []string) error {
	return func(context.Context, *cliEnv, []string) error {
		return errors.New("collect: the network side is the edge-collector package, for a server, not this small build: run `edge-collector run -c FILE` there")
	}
}
