package gnss

import (
	"encoding/binary"
	"fmt"
	"time"

	nmea "github.com/adrianmo/go-nmea"

	"github.com/edge-agent/edge-agent/drivers"
)

// UBX framing, from the u-blox protocol specification (u-blox 8/M8 Receiver
// Description UBX-13003221, "UBX Frame Structure" and "UBX Checksum";
// identical in the ZED-F9P Interface Description UBX-18010854, section 3):
//
//	0xB5 0x62 | class | id | length (uint16 LE) | payload | CK_A CK_B
//
// The checksum is the 8-bit Fletcher algorithm (RFC 1145) over class, id,
// length and payload.
const (
	ubxSync1     = 0xB5
	ubxSync2     = 0x62
	ubxClassNAV  = 0x01
	ubxIDPVT     = 0x07
	navPVTLen    = 92
	ubxMaxFrame  = 1024 // longer "frames" are noise that happened to contain B5 62
	ubxType      = "NAV-PVT"
	ubxOverhead  = 8 // sync, class, id, length, checksum
	ubxHeaderLen = 6
)

// ubxChecksum computes CK_A, CK_B over b (class through end of payload).
func ubxChecksum(b []byte) (byte, byte) {
	var a, c byte
	for _, x := range b {
		a += x
		c += a
	}
	return a, c
}

// parseNAVPVT decodes UBX-NAV-PVT (0x01 0x07), "Navigation position velocity
// time solution": ZED-F9P Interface Description UBX-18010854 §5.14.11 (the
// same 92-byte layout as in the u-blox 8/M8 Receiver Description
// UBX-13003221, UBX-NAV-PVT). Byte offsets below are from that table.
func parseNAVPVT(b []byte) (*part, error) {
	if len(b) != navPVTLen {
		return nil, fmt.Errorf("gnss: decode NAV-PVT: %w: payload is %d bytes, want %d", ErrGarbled, len(b), navPVTLen)
	}
	le := binary.LittleEndian
	p := &part{BaseSentence: nmea.BaseSentence{Type: ubxType}, sats: int(b[23])}

	year, month, day := int(le.Uint16(b[4:])), int(b[6]), int(b[7])
	hour, minute, sec := int64(b[8]), int64(b[9]), int64(b[10])
	valid := b[11]
	nano := int64(int32(le.Uint32(b[16:])))
	const validDate, validTime = 1 << 0, 1 << 1
	if valid&validDate != 0 && valid&validTime != 0 &&
		month >= 1 && month <= 12 && day >= 1 && day <= 31 &&
		hour < 24 && minute < 60 && sec <= 60 && nano > -1e9 && nano < 1e9 {
		// nano is the solution's offset from the printed second and may be
		// negative; round it to the millisecond so the epoch lines up with the
		// NMEA sentences the receiver prints for the same solution.
		ms := (nano + 500_000 + 1e9) / 1e6
		tod := ((hour*60+minute)*60+sec)*1e9 + ms*1e6 - 1e9
		if tod >= 0 && tod < 24*int64(time.Hour) {
			p.tod, p.hasTOD = tod, true
			p.date, p.hasDate = civilDate{y: year, m: time.Month(month), d: day}, true
		}
	}

	fixType, flags, flags3 := b[20], b[21], b[78]
	const gnssFixOK, invalidLlh = 1 << 0, 1 << 0
	fixOK := flags&gnssFixOK != 0 && flags3&invalidLlh == 0
	switch {
	case fixOK && fixType == 2:
		p.mode, p.status = drivers.Fix2D, 1
	case fixOK && (fixType == 3 || fixType == 4): // 4 = GNSS + dead reckoning
		p.mode, p.status = drivers.Fix3D, 1
	default: // 0 no fix, 1 dead reckoning only, 5 time only, or not gnssFixOK
		p.status = -1
	}
	// 1e-7 degrees: one division of exact integers, so the nearest float64.
	p.lon = float64(int32(le.Uint32(b[24:]))) / 1e7
	p.lat = float64(int32(le.Uint32(b[28:]))) / 1e7
	if p.lat >= -90 && p.lat <= 90 && p.lon >= -180 && p.lon <= 180 {
		p.posRank = rankUBX
	}
	p.alt, p.altRank = float64(int32(le.Uint32(b[36:])))/1e3, rankUBX   // hMSL, mm
	p.speed, p.spdRank = float64(int32(le.Uint32(b[60:])))/1e3, rankUBX // gSpeed, mm/s
	p.track, p.trkRank = float64(int32(le.Uint32(b[64:])))/1e5, rankUBX // headMot, 1e-5 deg
	return p, nil
}

// appendNAVPVTFrame builds a whole NAV-PVT frame; the tests use it to
// synthesise interleaved streams.
func appendNAVPVTFrame(dst []byte, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, ubxSync1, ubxSync2, ubxClassNAV, ubxIDPVT, byte(len(payload)), byte(len(payload)>>8))
	dst = append(dst, payload...)
	a, c := ubxChecksum(dst[start+2:])
	return append(dst, a, c)
}
