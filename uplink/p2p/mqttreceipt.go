package p2p

import "github.com/edge-agent/edge-agent/uplink/mqtt"

// OpenMQTTReceipt checks a collector receipt that came over MQTT (the same
// signed format and collector key as over libp2p; collectors publish both)
// and returns it in the form the MQTT uplink tracks: this is what
// mqtt.Opts.OpenReceipt wants, for the daemon and the fleet load generator
// alike. Errors wrap ErrBadReceipt.
func OpenMQTTReceipt(raw []byte) (*mqtt.Receipt, error) {
	r, err := OpenReceipt(raw)
	if err != nil {
		return nil, err
	}
	out := &mqtt.Receipt{Collector: r.Collector.String(), Device: r.Device, Chains: make(map[[16]byte][][2]uint64, len(r.Chains))}
	for _, c := range r.Chains {
		out.Chains[c.Chain] = append(out.Chains[c.Chain], c.Ranges...)
	}
	return out, nil
}
