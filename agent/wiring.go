package agent

import (
	"fmt"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/uplink"
	"github.com/edge-agent/edge-agent/uplink/file"
	"github.com/edge-agent/edge-agent/uplink/mqtt"
)

// buildUplinks makes the transports the config enables. Each one's name is
// its key in the outbox's acknowledgement table.
func buildUplinks(cfg *config.Config, signer attest.Signer, o Options, flushing <-chan struct{}) ([]uplink.Uplink, error) {
	var ups []uplink.Uplink
	if f := cfg.Uplinks.File; f.Enabled {
		u, err := file.New(file.Opts{
			Dir:            cfg.SpoolDir(),
			RotateBytes:    int64(f.RotateBytes),
			RotateInterval: f.RotateInterval.Duration,
			SyncInterval:   cfg.Pipeline.CommitInterval.Duration,
			Flush:          flushing,
			Logger:         o.Logger.With("component", "uplink.file"),
			Now:            o.Now,
		})
		if err != nil {
			return nil, fmt.Errorf("agent: uplinks.file: %w", err)
		}
		ups = append(ups, u)
	}
	if m := cfg.Uplinks.MQTT; m.Enabled {
		opts := mqtt.DefaultOpts()
		opts.Servers = m.Servers
		opts.CAFile, opts.CertFile, opts.KeyFile = m.CAFile, m.CertFile, m.KeyFile
		opts.Username, opts.Password = m.Username, m.Password
		opts.ClientID = m.ClientID
		opts.DeviceID = signer.DeviceID()
		opts.KeepAlive = m.KeepAlive.Duration
		opts.TopicPrefix = m.TopicPrefix
		opts.SingleTopic = m.Topics == "single"
		opts.Window = m.Window
		if len(m.Collectors) > 0 && !P2PBuilt {
			return nil, fmt.Errorf("agent: uplinks.mqtt: collectors (end-to-end receipts): %w", ErrNoP2P)
		}
		if len(m.Collectors) > 0 {
			opts.Collectors, opts.MinReceipts = m.Collectors, m.MinReceipts
			opts.ResendAfter, opts.ResendMax = m.ResendAfter.Duration, m.ResendMax.Duration
			opts.OpenReceipt = openMQTTReceipt
		}
		opts.Version = o.Version
		opts.Logger = o.Logger
		opts.Now = o.Now
		u, err := mqtt.New(opts)
		if err != nil {
			return nil, fmt.Errorf("agent: uplinks.mqtt: %w", err)
		}
		ups = append(ups, u)
	}
	if p := cfg.Uplinks.P2P; p.Enabled {
		u, err := buildP2PUplink(p, signer, o)
		if err != nil {
			return nil, fmt.Errorf("agent: uplinks.p2p: %w", err)
		}
		ups = append(ups, u)
	}
	return ups, nil
}
