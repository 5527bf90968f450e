//go:build !nop2p

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/edge-agent/edge-agent/collect"
	"github.com/edge-agent/edge-agent/config"
)

// demoNetwork is the network side of the demo, in this process.
type demoNetwork struct {
	close   func()
	collect func(w io.Writer, outDir string) error
}

// startDemoNetwork starts a collector on loopback that the simulated device
// gossips to over libp2p and that receipts what it stored, and points cfg's
// p2p uplink at it. collect writes what it accepted to outDir.
func startDemoNetwork(ctx context.Context, dir string, cfg *config.Config, log *slog.Logger) (*demoNetwork, error) {
	colCfg := collect.DefaultConfig()
	colCfg.DataDir = filepath.Join(dir, "collector")
	colCfg.Network = "demo"
	colCfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	colCfg.Memory = 32 * config.MiB
	colCfg.StatusInterval = config.D(0)
	col, err := collect.StartInProcess(ctx, collect.Options{Config: &colCfg, Logger: log, CreateKey: true})
	if err != nil {
		return nil, err
	}
	cfg.Uplinks.P2P.Enabled = true
	cfg.Uplinks.P2P.Network = "demo"
	cfg.Uplinks.P2P.Bootstrap = col.Addrs()
	cfg.Uplinks.P2P.Collectors = []string{col.PeerID()}
	cfg.Uplinks.P2P.MinReceipts = 1
	cfg.Uplinks.P2P.ResendAfter = config.D(2 * time.Second)
	return &demoNetwork{
		close: func() { col.Close() },
		collect: func(w io.Writer, outDir string) error {
			col.Close() // stop receiving; the export reads the closed collector's file
			if _, err := col.ExportFile(filepath.Join(outDir, "collected.cbor")); err != nil {
				return err
			}
			fmt.Fprintf(w, "\ncollector %s accepted these over libp2p gossip on loopback and sent signed receipts for them\n", col.PeerID())
			return nil
		},
	}, nil
}
