package agent

import (
	"fmt"
	"path/filepath"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/energy"
	"github.com/edge-agent/edge-agent/drivers/env"
	"github.com/edge-agent/edge-agent/drivers/gnss"
	"github.com/edge-agent/edge-agent/drivers/lora"
	"github.com/edge-agent/edge-agent/drivers/lora/gwmp"
	"github.com/edge-agent/edge-agent/drivers/sim"
	"github.com/edge-agent/edge-agent/uplink"
	"github.com/edge-agent/edge-agent/uplink/file"
	"github.com/edge-agent/edge-agent/uplink/mqtt"
)

// buildUplinks makes the transports the config enables. Each one's name is
// its key in the outbox's acknowledgement table.
func buildUplinks(cfg *config.Config, signer attest.Signer, o Options) ([]uplink.Uplink, error) {
	var ups []uplink.Uplink
	if f := cfg.Uplinks.File; f.Enabled {
		u, err := file.New(file.Opts{
			Dir:            cfg.SpoolDir(),
			RotateBytes:    int64(f.RotateBytes),
			RotateInterval: f.RotateInterval.Duration,
			SyncInterval:   cfg.Pipeline.CommitInterval.Duration,
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

// buildDrivers makes the configured hardware drivers. GNSS drivers feed the
// location stamp through fix.
func buildDrivers(cfg *config.Config, fix drivers.FixSink, o Options) ([]drivers.Driver, error) {
	var ds []drivers.Driver
	for i, s := range cfg.Drivers.Sim {
		so := sim.DefaultOpts(sim.Kind(s.Kind))
		so.Interval = s.Interval.Duration
		so.Count = s.Count
		so.Now = o.Now
		so.Seed = int64(i + 1)
		if s.Kind == string(sim.KindGNSS) {
			so.OnFix = fix
		}
		if s.NMEAFile != "" {
			data, err := readFileLimited(s.NMEAFile, 64<<20)
			if err != nil {
				return nil, fmt.Errorf("agent: drivers.sim[%d] (%s) nmea_file: %w", i, s.Name, err)
			}
			so.NMEA = data
		}
		so.Dir = s.Dir
		if so.Dir == "" && s.Kind == string(sim.KindCamera) {
			so.Dir = filepath.Join(cfg.Device.DataDir, "sim-camera")
		}
		d, err := sim.New(s.Name, so)
		if err != nil {
			return nil, fmt.Errorf("agent: drivers.sim[%d] (%s): %w", i, s.Name, err)
		}
		ds = append(ds, d)
	}
	for i, g := range cfg.Drivers.GNSS {
		opts := gnss.DefaultOpts()
		opts.Source = gnss.Source(g.Source)
		opts.Device, opts.Baud, opts.UBX = g.Device, g.Baud, g.UBX
		opts.GPSDAddr = g.GPSDAddr
		opts.NoChecksum = g.Checksum == "optional"
		opts.Interval = g.Interval.Duration
		opts.OnFix = fix
		opts.Logger = o.Logger // the driver adds its component and name
		opts.Now = o.Now
		d, err := gnss.New(g.Name, &opts)
		if err != nil {
			return nil, fmt.Errorf("agent: drivers.gnss[%d] (%s): %w", i, g.Name, err)
		}
		ds = append(ds, d)
	}
	for i, e := range cfg.Drivers.Env {
		opts := env.DefaultOpts()
		opts.Bus, opts.Addr, opts.Oversampling = e.Bus, uint16(e.Addr), e.Oversampling
		opts.Interval = e.Interval.Duration
		opts.Logger = o.Logger
		opts.Now = o.Now
		d, err := env.New(e.Name, &opts)
		if err != nil {
			return nil, fmt.Errorf("agent: drivers.env[%d] (%s): %w", i, e.Name, err)
		}
		ds = append(ds, d)
	}
	cams, err := buildCameras(cfg, o)
	if err != nil {
		return nil, err
	}
	ds = append(ds, cams...)
	for i, l := range cfg.Drivers.LoRa {
		d, err := buildLoRa(l, o)
		if err != nil {
			return nil, fmt.Errorf("agent: drivers.lora[%d] (%s): %w", i, l.Name, err)
		}
		ds = append(ds, d)
	}
	obds, err := buildOBDs(cfg, o)
	if err != nil {
		return nil, err
	}
	ds = append(ds, obds...)
	for i, c := range cfg.Drivers.Energy {
		d, err := energy.New(c.Name, energyOpts(c, o))
		if err != nil {
			return nil, fmt.Errorf("agent: drivers.energy[%d] (%s): %w", i, c.Name, err)
		}
		ds = append(ds, d)
	}
	return ds, nil
}

func energyOpts(c config.Energy, o Options) *energy.Opts {
	return &energy.Opts{Transport: c.Transport, Device: c.Device, Baud: c.Baud, Parity: c.Parity, StopBits: c.StopBits,
		Addr: c.Addr, Slave: c.Slave, Profile: c.Profile, SunSpecBase: c.SunSpecBase, MaxPowerW: float64(c.MaxPowerW),
		Interval: c.Interval.Duration, Timeout: c.Timeout.Duration,
		Logger: o.Logger, Now: o.Now}
}

func buildLoRa(l config.LoRa, o Options) (drivers.Driver, error) {
	if l.Mode == "sx127x" {
		return buildSX127x(l, o)
	}
	return lora.New(l.Name, loraOpts(l, o))
}

// loraOpts maps the udp, concentratord and mqtt modes' keys (EUIs were
// validated by config).
func loraOpts(l config.LoRa, o Options) *lora.Opts {
	euis := func(list []string) []gwmp.EUI {
		var out []gwmp.EUI
		for _, s := range list {
			if e, err := gwmp.ParseEUI(s); err == nil {
				out = append(out, e)
			}
		}
		return out
	}
	ups := make([]lora.Upstream, 0, len(l.Upstreams))
	for _, u := range l.Upstreams {
		ups = append(ups, lora.Upstream{Name: u.Name, Addr: u.Addr, UplinkOnly: u.UplinkOnly, Gateways: euis(u.Gateways)})
	}
	return &lora.Opts{
		Mode:           l.Mode,
		Listen:         l.Listen,
		Upstreams:      ups,
		ReceiveBuffer:  int(l.ReceiveBuffer),
		IncludePayload: l.IncludePayload,
		StatInterval:   l.StatInterval.Duration,
		TxAckTimeout:   l.TxAckTimeout.Duration,
		Gateways:       euis(l.Gateways),
		MaxGateways:    l.MaxGateways,
		GatewayExpiry:  l.GatewayExpiry.Duration,
		EventURL:       l.EventURL,
		MQTT: lora.MQTTOpts{Server: l.MQTTServer, Topic: l.MQTTTopic, Marshaler: l.MQTTMarshaler,
			Username: l.MQTTUsername, Password: l.MQTTPassword},
		Logger: o.Logger,
		Now:    o.Now,
	}
}
