package agent

import (
	"errors"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/keys"
)

// ErrNoP2P is returned when the config enables [uplinks.p2p] in a build
// without libp2p (-tags nop2p).
var ErrNoP2P = errors.New("this build has no libp2p gossip (a small-device build made with -tags nop2p): use [uplinks.mqtt] or [uplinks.file], or install the full build")

// Omitted lists what this build leaves out, for `version` and `doctor`;
// empty for a full build.
func Omitted() []string {
	var out []string
	if !P2PBuilt {
		out = append(out, "libp2p gossip uplink ([uplinks.p2p])", "the `collect` hand-over to edge-collector and the demo's gossip leg", "end-to-end MQTT receipts ([uplinks.mqtt] collectors)")
	}
	if !CameraBuilt {
		out = append(out, "camera driver ([[drivers.camera]])")
	}
	if !SX127xBuilt {
		out = append(out, "SX127x single-channel radios (mode = \"sx127x\")")
	}
	if !keys.TPMBuilt {
		out = append(out, "TPM 2.0 keys (tpm:)")
	}
	if !OBDBuilt {
		out = append(out, "OBD-II adapters ([[drivers.obd]])")
	}
	if !attest.BatchSignBuilt {
		out = append(out, "batch signing (records are signed one at a time: about 30 % more CPU per signature)")
	}
	if !MetricsBuilt {
		out = append(out, "Prometheus metrics (status.metrics_listen)")
	}
	return out
}
