package gnss

import (
	"encoding/binary"
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
	ubxIDSOL     = 0x06
	ubxIDPOSLLH  = 0x02
	navPVTLen    = 92
	navSOLLen    = 52
	navPOSLLHLen = 28
	ubxMaxFrame  = 1024 // longer "frames" are noise that happened to contain B5 62
	ubxPVT       = "NAV-PVT"
	ubxSOL       = "NAV-SOL"
	ubxPOSLLH    = "NAV-POSLLH"
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

// ubxFrameLen is the payload length of the UBX messages the assembler uses,
// 0 for the others.
func ubxFrameLen(class, id byte) int {
	if class != ubxClassNAV {
		return 0
	}
	switch id {
	case ubxIDPVT:
		return navPVTLen
	case ubxIDSOL:
		return navSOLLen
	case ubxIDPOSLLH:
		return navPOSLLHLen
	}
	return 0
}

// ubxTOD rounds a solution time of day to the millisecond so the epoch lines
// up with the NMEA sentences the receiver prints for the same solution.
func ubxTOD(sec, nano int64) (int64, bool) {
	ms := (nano + 500_000 + 1e9) / 1e6
	tod := sec*1e9 + ms*1e6 - 1e9
	return tod, tod >= 0 && tod < 24*int64(time.Hour)
}

// ubxAcc converts an unsigned millimetre accuracy; 0xFFFFFFFF-ish values
// (no estimate) are out of range and absent.
func ubxAcc(o *opt, mm uint32) {
	if v := float64(mm) / 1e3; v <= rangeSigma.hi {
		o.set(v, rankUBX)
	}
}

// ubxDOP converts a 0.01-scaled DOP; 99.99 and above mean "unknown".
func ubxDOP(o *opt, v uint16) {
	if v > 0 && v < 9999 {
		o.set(float64(v)/100, rankUBX)
	}
}

// ubxPosition sets lat/lon (1e-7 degrees: one division of exact integers,
// so the nearest float64) and the MSL height (mm) when they are in range.
func ubxPosition(p *part, lon, lat, hMSL int32) {
	p.lon, p.lat = float64(lon)/1e7, float64(lat)/1e7
	if p.lat >= -90 && p.lat <= 90 && p.lon >= -180 && p.lon <= 180 {
		p.posRank = rankUBX
	}
	if v := float64(hMSL) / 1e3; v >= rangeAlt.lo && v <= rangeAlt.hi {
		p.alt.set(v, rankUBX)
	}
}

// The parsers below take a payload of exactly the length ubxFrameLen gives.

// parseNAVPVT decodes UBX-NAV-PVT (0x01 0x07), "Navigation position velocity
// time solution": ZED-F9P Interface Description UBX-18010854 §5.14.11 (the
// same 92-byte layout as in the u-blox 8/M8 Receiver Description
// UBX-13003221, UBX-NAV-PVT). Byte offsets below are from that table.
func parseNAVPVT(b []byte) *part {
	le := binary.LittleEndian
	p := &part{BaseSentence: nmea.BaseSentence{Type: ubxPVT}, sats: int(b[23])}

	year, month, day := int(le.Uint16(b[4:])), int(b[6]), int(b[7])
	hour, minute, sec := int64(b[8]), int64(b[9]), int64(b[10])
	valid := b[11]
	nano := int64(int32(le.Uint32(b[16:])))
	const validDate, validTime = 1 << 0, 1 << 1
	if valid&validDate != 0 && valid&validTime != 0 &&
		hour < 24 && minute < 60 && sec <= 60 && nano > -1e9 && nano < 1e9 {
		// nano is the solution's offset from the printed second and may be
		// negative.
		if tod, ok := ubxTOD((hour*60+minute)*60+sec, nano); ok {
			if d, ok := checkDate(year, month, day); ok {
				p.tod, p.hasTOD = tod, true
				p.date, p.hasDate = d, true
			}
		}
	}

	fixType, flags, flags3 := b[20], b[21], b[78]
	const gnssFixOK, diffSoln, invalidLlh = 1 << 0, 1 << 1, 1 << 0
	fixOK := flags&gnssFixOK != 0 && flags3&invalidLlh == 0
	switch {
	case fixOK && fixType == 2:
		p.mode, p.status = drivers.Fix2D, 1
	case fixOK && (fixType == 3 || fixType == 4): // 4 = GNSS + dead reckoning
		p.mode, p.status = drivers.Fix3D, 1
	default: // 0 no fix, 1 dead reckoning only, 5 time only, or not gnssFixOK
		p.status = -1
	}
	if p.status > 0 {
		switch carrSoln := flags >> 6; {
		case carrSoln == 2:
			p.quality = drivers.QualityRTKFixed
		case carrSoln == 1:
			p.quality = drivers.QualityRTKFloat
		case flags&diffSoln != 0:
			p.quality = drivers.QualityDGPS
		default:
			p.quality = drivers.QualityGPS
		}
	}
	ubxPosition(p, int32(le.Uint32(b[24:])), int32(le.Uint32(b[28:])), int32(le.Uint32(b[36:])))
	ubxAcc(&p.hacc, le.Uint32(b[40:]))
	ubxAcc(&p.vacc, le.Uint32(b[44:]))
	if v := float64(int32(le.Uint32(b[60:]))) / 1e3; v >= 0 && v <= rangeSpeed.hi { // gSpeed, mm/s
		p.speed.set(v, rankUBX)
	}
	if v := float64(int32(le.Uint32(b[64:]))) / 1e5; v >= -360 && v <= 360 { // headMot, 1e-5 deg
		if v < 0 {
			v += 360
		}
		p.track.set(v, rankUBX)
	}
	ubxDOP(&p.pdop, le.Uint16(b[76:]))
	return p
}

// gpsEpoch is the start of GPS time; gpsUTCLeap is GPS minus UTC since
// 2017-01-01 (IERS Bulletin C: no leap second announced since). NAV-SOL and
// NAV-POSLLH carry GPS time of week; NAV-PVT carries UTC.
var gpsEpoch = time.Date(1980, 1, 6, 0, 0, 0, 0, time.UTC)

const gpsUTCLeap = 18 * time.Second

// itowTOD converts a GPS time of week (ms) and a nanosecond fraction to a
// UTC time of day.
func itowTOD(itow uint32, ftow int32) (int64, bool) {
	const day = 24 * int64(time.Hour)
	sec := (int64(itow)/1000 - int64(gpsUTCLeap/time.Second)) % 86400
	nano := int64(itow%1000)*1e6 + int64(ftow)
	tod, ok := ubxTOD((sec+86400)%86400, nano)
	if !ok && tod >= day { // rounded up past midnight
		return tod - day, true
	}
	return tod, ok
}

// parseNAVSOL decodes UBX-NAV-SOL (0x01 0x06), "Navigation solution
// information", of u-blox 6/7/8 receivers that are not set to send NAV-PVT:
// u-blox 8/M8 Receiver Description UBX-13003221, UBX-NAV-SOL (52 bytes).
// Its GPS week is the full week number, so its date has no rollover
// ambiguity. Position comes from NAV-POSLLH of the same iTOW.
func parseNAVSOL(b []byte) *part {
	le := binary.LittleEndian
	p := &part{BaseSentence: nmea.BaseSentence{Type: ubxSOL}, sats: int(b[47])}
	itow, ftow, week := le.Uint32(b[0:]), int32(le.Uint32(b[4:])), int16(le.Uint16(b[8:]))
	gpsFix, flags := b[10], b[11]
	const fixOK, diffSoln, wknSet, towSet = 1 << 0, 1 << 1, 1 << 2, 1 << 3
	if flags&wknSet != 0 && flags&towSet != 0 && week > 0 && ftow > -1e9 && ftow < 1e9 {
		if tod, ok := itowTOD(itow, ftow); ok {
			t := gpsEpoch.Add(time.Duration(week)*7*24*time.Hour + time.Duration(itow)*time.Millisecond - gpsUTCLeap)
			p.tod, p.hasTOD, p.ubxWeek = tod, true, true
			// The UTC date of this tod: t is at most 0.5 ms off it.
			t = t.Add(time.Duration(int64(ftow) + 500_000))
			p.date, p.hasDate = civilDate{y: t.Year(), m: t.Month(), d: t.Day()}, true
		}
	}
	switch {
	case flags&fixOK != 0 && gpsFix == 2:
		p.mode, p.status = drivers.Fix2D, 1
	case flags&fixOK != 0 && (gpsFix == 3 || gpsFix == 4):
		p.mode, p.status = drivers.Fix3D, 1
	default:
		p.status = -1
	}
	if p.status > 0 {
		p.quality = drivers.QualityGPS
		if flags&diffSoln != 0 {
			p.quality = drivers.QualityDGPS
		}
	}
	ubxDOP(&p.pdop, le.Uint16(b[44:]))
	return p
}

// parseNAVPOSLLH decodes UBX-NAV-POSLLH (0x01 0x02), "Geodetic position
// solution": u-blox 8/M8 Receiver Description UBX-13003221 (28 bytes). It
// says nothing about fix validity: NAV-SOL (or NMEA) of the same epoch does.
func parseNAVPOSLLH(b []byte) *part {
	le := binary.LittleEndian
	p := &part{BaseSentence: nmea.BaseSentence{Type: ubxPOSLLH}, sats: -1}
	if tod, ok := itowTOD(le.Uint32(b[0:]), 0); ok {
		p.tod, p.hasTOD = tod, true
	}
	ubxPosition(p, int32(le.Uint32(b[4:])), int32(le.Uint32(b[8:])), int32(le.Uint32(b[16:])))
	ubxAcc(&p.hacc, le.Uint32(b[20:]))
	ubxAcc(&p.vacc, le.Uint32(b[24:]))
	return p
}

// appendUBXFrame builds a whole UBX frame; the tests use it to synthesise
// interleaved streams.
func appendUBXFrame(dst []byte, class, id byte, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, ubxSync1, ubxSync2, class, id, byte(len(payload)), byte(len(payload)>>8))
	dst = append(dst, payload...)
	a, c := ubxChecksum(dst[start+2:])
	return append(dst, a, c)
}

// appendNAVPVTFrame builds a whole NAV-PVT frame; the tests use it to
// synthesise interleaved streams.
func appendNAVPVTFrame(dst []byte, payload []byte) []byte {
	return appendUBXFrame(dst, ubxClassNAV, ubxIDPVT, payload)
}
