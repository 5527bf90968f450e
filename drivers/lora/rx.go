package lora

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/lora/gwmp"
	"github.com/edge-agent/edge-agent/drivers/lora/lorawan"
)

type verdict uint8

const (
	verdictOK verdict = iota
	verdictBadCRC
	verdictNoCRC
	verdictInvalid
)

// maxPHY is the largest LoRa PHY payload (SX1301/SX1302 and SX127x FIFO
// limits: the length field is one byte).
const maxPHY = 255

var errMissing = errors.New("required rxpk field missing")

// frame turns one rxpk into a lora.rx observation, or says why not (with
// the Stats.Malformed reason).
func (d *Dev) frame(pk *gwmp.RXPK, eui string) (drivers.LoRaRX, verdict, string, error) {
	var rx drivers.LoRaRX
	switch {
	case pk.Stat == nil, *pk.Stat == 0:
		// Absent stat is treated like "no CRC": nothing proves the bytes.
		return rx, verdictNoCRC, "", nil
	case *pk.Stat == -1:
		return rx, verdictBadCRC, "", nil
	case *pk.Stat != 1:
		return rx, verdictInvalid, "rxpk", fmt.Errorf("lora: rxpk stat %d: %w", *pk.Stat, gwmp.ErrField)
	}
	if pk.Tmst == nil || pk.Freq == 0 || len(pk.Data) == 0 {
		return rx, verdictInvalid, "rxpk", fmt.Errorf("%w: need tmst, freq and data", errMissing)
	}
	if len(pk.Data) > maxPHY || pk.Size != nil && int(*pk.Size) != len(pk.Data) {
		return rx, verdictInvalid, "rxpk", fmt.Errorf("lora: rxpk size %v for %d data bytes: %w", derefSize(pk.Size), len(pk.Data), gwmp.ErrField)
	}
	rssi, snr, ok := signal(pk)
	if !ok {
		return rx, verdictInvalid, "rxpk", fmt.Errorf("%w: no rssi, rssis or rsig", errMissing)
	}
	if reason, err := checkSignal(rssi, snr); err != nil {
		return rx, verdictInvalid, reason, err
	}
	rx = drivers.LoRaRX{
		Size:     uint32(len(pk.Data)),
		FreqHz:   uint64(pk.Freq),
		Mod:      pk.Modu,
		DataRate: pk.Datr.String(),
		RSSI:     rssi,
		SNR:      snr,
		Chan:     pk.Chan,
		RFChain:  pk.RFCh,
		Tmst:     *pk.Tmst,
		Gateway:  eui,
	}
	if pk.Tmms != nil {
		rx.GPSTimeMS = *pk.Tmms
	}
	if pk.Time != "" {
		// An unparsable time is left out, not guessed; the frame stays.
		if t, err := gwmp.ParseTime(pk.Time); err == nil && t.Year() >= 2000 && t.Year() < 2200 {
			rx.GWTime = t.UnixNano()
		}
	}
	switch pk.Modu {
	case "LORA":
		sf, bw, err := pk.Datr.ParseLoRa()
		if err != nil {
			return drivers.LoRaRX{}, verdictInvalid, "rxpk", err
		}
		rx.SF, rx.BWHz, rx.CodeRate = sf, bw, pk.Codr
	case "FSK":
		if pk.Datr.FSK == 0 {
			return drivers.LoRaRX{}, verdictInvalid, "rxpk", fmt.Errorf("lora: FSK rxpk datr %q: %w", pk.Datr.String(), gwmp.ErrField)
		}
	default:
		return drivers.LoRaRX{}, verdictInvalid, "rxpk", fmt.Errorf("lora: rxpk modu %q: %w", pk.Modu, gwmp.ErrField)
	}
	// LoRaWAN runs over FSK too (EU868 DR7): the MAC header is the same.
	parseMAC(&rx, pk.Data)
	sum := sha256.Sum256(pk.Data)
	rx.SHA256 = sum[:]
	if d.o.IncludePayload {
		rx.Payload = pk.Data
	}
	return rx, verdictOK, "", nil
}

// parseMAC fills the LoRaWAN header fields of rx, when phy is one.
func parseMAC(rx *drivers.LoRaRX, phy []byte) {
	if h, ok := lorawan.Parse(phy); ok {
		rx.MType = h.MType
		if h.HasFHDR {
			fcnt := uint32(h.FCnt)
			rx.DevAddr, rx.FCnt, rx.FPort = h.DevAddrString(), &fcnt, h.FPort
		}
	}
}

func derefSize(p *uint16) any {
	if p == nil {
		return "absent"
	}
	return *p
}

// signal picks the record's RSSI and SNR: with v2 "rsig", the antenna with
// the strongest channel RSSI (signal RSSI when channel RSSI is absent);
// otherwise the rxpk's own rssi (or v2 rssis) and lsnr. FSK has no SNR: 0.
func signal(pk *gwmp.RXPK) (rssi, snr float64, ok bool) {
	best := -1
	var bestRSSI float64
	for i, s := range pk.RSig {
		r := s.RSSIC
		if r == nil {
			r = s.RSSIS
		}
		if r != nil && (best < 0 || *r > bestRSSI) {
			best, bestRSSI = i, *r
		}
	}
	if best >= 0 {
		if l := pk.RSig[best].LSNR; l != nil {
			snr = *l
		} else if pk.LSNR != nil {
			snr = *pk.LSNR
		}
		return bestRSSI, snr, true
	}
	if pk.LSNR != nil {
		snr = *pk.LSNR
	}
	switch {
	case pk.RSSI != nil:
		return *pk.RSSI, snr, true
	case pk.RSSIS != nil:
		return *pk.RSSIS, snr, true
	}
	return 0, 0, false
}
