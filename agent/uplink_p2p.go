//go:build !nop2p

package agent

import (
	"fmt"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/uplink"
	"github.com/edge-agent/edge-agent/uplink/mqtt"
	"github.com/edge-agent/edge-agent/uplink/p2p"
)

// P2PBuilt reports whether this build links the libp2p uplink. Small-device
// builds (-tags nop2p, for OpenWrt gateways with a few MB of flash) leave it
// out.
const P2PBuilt = true

func buildP2PUplink(p config.P2PUplink, signer attest.Signer, o Options) (uplink.Uplink, error) {
	opts := p2p.DefaultOpts()
	opts.Signer = signer
	opts.Network = p.Network
	opts.Listen = p.Listen
	opts.Bootstrap = p.Bootstrap
	opts.Collectors = p.Collectors
	opts.MinReceipts = p.MinReceipts
	opts.Window = p.Window
	opts.ResendAfter, opts.ResendMax = p.ResendAfter.Duration, p.ResendMax.Duration
	opts.MaxPeers = p.MaxPeers
	opts.MaxClockSkew = p.MaxClockSkew.Duration
	opts.Logger = o.Logger
	opts.Now = o.Now
	return p2p.New(opts)
}

// p2pUplinkStatus fills us from u when u is the p2p uplink.
func p2pUplinkStatus(u any, us *status.Uplink, network string) bool {
	up, ok := u.(*p2p.Uplink)
	if !ok {
		return false
	}
	ps := up.Status()
	peers := ps.Peers
	us.Peers = &peers
	us.Connected = ps.Peers > 0
	us.Server = fmt.Sprintf("%d peers (%d on the topic), network %q", ps.Peers, ps.TopicPeers, network)
	us.LastError, us.LastErrorAt = ps.LastError, ps.LastErrorAt
	return true
}

// openMQTTReceipt checks a collector receipt that came over MQTT: the same
// signed format and collector key as over libp2p.
func openMQTTReceipt(raw []byte) (*mqtt.Receipt, error) { return p2p.OpenMQTTReceipt(raw) }
