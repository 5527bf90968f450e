package agent

import (
	"fmt"
	"sort"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/lora"
	"github.com/edge-agent/edge-agent/drivers/lora/gwmp"
	"github.com/edge-agent/edge-agent/status"
)

// loraFamily is [[drivers.lora]] in the udp, concentratord and mqtt modes:
// packet forwarders and ChirpStack taps. Its build also makes the sx127x
// mode's radios (family_sx127x.go), so drivers keep the config's order.
var loraFamily = family{name: "lora", build: buildLoRas, status: loraDriverStatus}

func buildLoRas(cfg *config.Config, _ drivers.FixSink, o Options) ([]drivers.Driver, error) {
	var ds []drivers.Driver
	for i, l := range cfg.Drivers.LoRa {
		d, err := buildLoRa(l, o)
		if err != nil {
			return nil, fmt.Errorf("agent: drivers.lora[%d] (%s): %w", i, l.Name, err)
		}
		ds = append(ds, d)
	}
	return ds, nil
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

func loraDriverStatus(d drivers.Driver, ds *status.Driver, v driverView) bool {
	ld, ok := d.(*lora.Dev)
	if !ok {
		return false
	}
	ds.LoRa = loraStatus(ld.Stats(), v.counts.perMinute(drivers.KindLoRaRX, v.now))
	return true
}

// loraStatus maps a LoRa driver's Stats, listing at most
// status.MaxStatusGateways gateways (the most recently seen).
func loraStatus(s lora.Stats, perMinute float64) *status.LoRa {
	l := &status.LoRa{PacketsPerMinute: perMinute, SocketDrops: s.SocketDrops, Gateways: []status.LoRaGateway{},
		Mode: s.Mode, Listen: s.Listen, Tap: s.Tap, LastError: s.LastError, MaxGateways: s.MaxGateways,
		GatewaysRefused: s.GatewaysRefused, GatewaysExpired: s.GatewaysExpired, TxRecords: s.TxRecords}
	if len(s.Malformed) > 0 {
		l.Malformed = s.Malformed
	}
	if s.Mode == lora.ModeConcentratord || s.Mode == lora.ModeMQTT {
		l.Connected = &s.Connected
	}
	gws := s.Gateways
	if len(gws) > status.MaxStatusGateways {
		// Stats hands over its own copy: sorting it in place is fine.
		sort.Slice(gws, func(i, j int) bool { return gws[i].LastSeen.After(gws[j].LastSeen) })
		l.GatewaysOmitted = len(gws) - status.MaxStatusGateways
		gws = gws[:status.MaxStatusGateways]
		sort.Slice(gws, func(i, j int) bool { return gws[i].EUI < gws[j].EUI })
	}
	for _, g := range gws {
		l.Gateways = append(l.Gateways, status.LoRaGateway{EUI: g.EUI, LastSeen: g.LastSeen, Packets: map[string]uint64{
			"ok": g.RxOK, "crc_error": g.RxBadCRC, "no_crc": g.RxNoCRC, "invalid": g.RxInvalid,
			"tx_sent": g.TxSent, "tx_acked": g.TxAcked, "tx_failed": g.TxFailed}})
	}
	for _, u := range s.Upstreams {
		su := status.LoRaUpstream{Name: u.Name, Addr: u.Addr, UplinkOnly: u.UplinkOnly, State: u.State, LastError: u.LastError,
			LastAck: u.LastAck, Sent: u.Sent, Acks: u.Acks, AckRatio: u.AckRatio, Unsent: u.Unsent, Unreachable: u.Unreachable,
			Downlinks: u.Downlinks, DownlinksRelayed: u.DownlinksRelayed, DownlinksDropped: u.DownlinksDropped,
			TokensRemapped: u.TokensRemapped, TxAcksReturned: u.TxAcksReturned}
		if u.Resolved.IsValid() {
			su.Resolved = u.Resolved.String()
		}
		l.Upstreams = append(l.Upstreams, su)
	}
	return l
}
