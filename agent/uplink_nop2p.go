//go:build nop2p

package agent

import (
	"fmt"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/status"
	"github.com/edge-agent/edge-agent/uplink"
	"github.com/edge-agent/edge-agent/uplink/mqtt"
)

// P2PBuilt reports whether this build links the libp2p uplink: this one,
// built with -tags nop2p for gateways with a few MB of flash, does not.
const P2PBuilt = false

func buildP2PUplink(config.P2PUplink, attest.Signer, Options) (uplink.Uplink, error) {
	return nil, ErrNoP2P
}

func p2pUplinkStatus(any, *status.Uplink, string) bool { return false }

// openMQTTReceipt: collector receipts are signed with libp2p keys, which a
// build without libp2p cannot check; config validation refuses
// [uplinks.mqtt] collectors in such a build before this is reached.
func openMQTTReceipt([]byte) (*mqtt.Receipt, error) {
	return nil, fmt.Errorf("mqtt receipts: %w", ErrNoP2P)
}
