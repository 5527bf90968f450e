package sim

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/edge-agent/edge-agent/drivers"
)

// GatewayEUI is the simulated gateway's EUI: a Raspberry Pi MAC expanded to
// EUI-64 (B8:27:EB … with FF:FE in the middle), as packet forwarders derive it.
const GatewayEUI = "B827EBFFFE5A1701"

// EU868 uplink channels of a typical SX1301/SX1302 configuration: radio 1
// centred on 868.5 MHz serves the three mandatory channels (chan 0-2), radio 0
// on 867.5 MHz the five others (LoRaWAN Regional Parameters RP002, EU863-870).
var eu868 = [8]struct {
	freqHz uint64
	rfch   uint8
}{
	{868_100_000, 1}, {868_300_000, 1}, {868_500_000, 1},
	{867_100_000, 0}, {867_300_000, 0}, {867_500_000, 0}, {867_700_000, 0}, {867_900_000, 0},
}

// snrFloor is the demodulation limit per spreading factor (SX1276 datasheet,
// table 13): a frame below it is never received.
var snrFloor = [13]float64{7: -7.5, 8: -10, 9: -12.5, 10: -15, 11: -17.5, 12: -20}

// loraNode is one simulated end device; FCnt rises with each uplink.
type loraNode struct {
	devAddr uint32
	fcnt    uint32
}

func (d *Dev) runLoRa(ctx context.Context, emit drivers.Emit) error {
	rng := d.rng(2)
	nodes := make([]loraNode, 12)
	for i := range nodes {
		// NetID 0x000013's 7-bit DevAddr prefix (0x26/0x27…), as on The Things Network.
		nodes[i] = loraNode{devAddr: 0x26000000 | rng.Uint32()&0x01ffffff, fcnt: rng.Uint32N(5000)}
	}
	tmst0 := rng.Uint32()
	var t0 int64
	return d.loop(ctx, emit, func(i int) (drivers.Observation, error) {
		now := d.o.Now()
		if i == 0 {
			t0 = now.UnixMicro()
		}
		rx := loraFrame(rng, nodes)
		// The concentrator counts µs from its own start; uint32 wraps every
		// ~71.6 minutes, as a real SX1301's does.
		rx.Tmst = tmst0 + uint32(now.UnixMicro()-t0)
		return drivers.Observation{Kind: drivers.KindLoRaRX, Time: now, Data: rx}, nil
	})
}

// loraFrame draws one received frame: mostly LoRaWAN data uplinks from the
// simulated nodes, some join requests, and some foreign or proprietary noise.
func loraFrame(rng *rand.Rand, nodes []loraNode) drivers.LoRaRX {
	ch := rng.IntN(len(eu868))
	sf := pickSF(rng)
	rssi := float64(-125 + rng.IntN(80)) // forwarders report whole dBm
	snr := (rssi+112)/2 + rng.NormFloat64()*1.5
	snr = math.Round(math.Min(13.5, math.Max(snrFloor[sf]+0.5, snr))*10) / 10
	rx := drivers.LoRaRX{
		FreqHz:   eu868[ch].freqHz,
		Mod:      "LORA",
		SF:       sf,
		BWHz:     125_000,
		CodeRate: "4/5",
		DataRate: fmt.Sprintf("SF%dBW125", sf),
		RSSI:     rssi,
		SNR:      snr,
		Chan:     uint8(ch),
		RFChain:  eu868[ch].rfch,
		Gateway:  GatewayEUI,
	}
	var phy []byte
	switch p := rng.IntN(10); {
	case p < 7: // data uplink: MHDR | DevAddr | FCtrl | FCnt | FPort | FRMPayload | MIC (LoRaWAN 1.0.4 §4)
		n := &nodes[rng.IntN(len(nodes))]
		n.fcnt++
		mhdr, mtype := byte(0x40), "UnconfirmedDataUp"
		if rng.IntN(5) == 0 {
			mhdr, mtype = 0x80, "ConfirmedDataUp"
		}
		phy = make([]byte, 0, 64)
		phy = append(phy, mhdr)
		phy = binary.LittleEndian.AppendUint32(phy, n.devAddr)
		phy = append(phy, 0x80) // FCtrl: ADR, no FOpts
		phy = binary.LittleEndian.AppendUint16(phy, uint16(n.fcnt))
		phy = append(phy, byte(1+rng.IntN(223)))
		phy = appendRandom(rng, phy, 1+rng.IntN(max(1, maxAppPayload(sf))))
		phy = appendRandom(rng, phy, 4)
		fcnt := n.fcnt
		rx.MType, rx.DevAddr, rx.FCnt = mtype, fmt.Sprintf("%08X", n.devAddr), &fcnt
	case p < 8: // join request: MHDR | JoinEUI | DevEUI | DevNonce | MIC
		phy = appendRandom(rng, []byte{0x00}, 8+8+2+4)
		rx.MType = "JoinRequest"
	default: // another network's or proprietary traffic: opaque bytes
		phy = appendRandom(rng, nil, 8+rng.IntN(40))
	}
	sum := sha256.Sum256(phy)
	rx.SHA256, rx.Size = sum[:], uint32(len(phy))
	return rx
}

// pickSF weights spreading factors as a city gateway sees them: mostly SF7.
func pickSF(rng *rand.Rand) uint8 {
	switch p := rng.IntN(100); {
	case p < 45:
		return 7
	case p < 60:
		return 8
	case p < 72:
		return 9
	case p < 84:
		return 10
	case p < 93:
		return 11
	default:
		return 12
	}
}

// maxAppPayload is EU868's maximum FRMPayload per data rate, kept small so
// simulated airtime stays plausible (RP002 table 2-6, minus headers).
func maxAppPayload(sf uint8) int {
	if sf >= 10 {
		return 51
	}
	if sf == 9 {
		return 115
	}
	return 222
}

func appendRandom(rng *rand.Rand, b []byte, n int) []byte {
	for range n {
		b = append(b, byte(rng.Uint32()))
	}
	return b
}
