package obd

import (
	"fmt"

	"github.com/edge-agent/edge-agent/drivers"
)

// pid is one mode 01 parameter the driver can read: its number, how many
// data bytes it answers with, and the SAE J1979 formula (J1979 appendix B,
// as tabulated on the ELM327 datasheet's mode 01 page).
type pid struct {
	name  string
	num   byte
	bytes int
	set   func(s *drivers.VehicleOBD, d []byte)
}

// PID names accepted in Opts.PIDs and the config's pids key.
const (
	PIDSpeed    = "speed"
	PIDRPM      = "rpm"
	PIDCoolant  = "coolant"
	PIDFuel     = "fuel"
	PIDOdometer = "odometer"
)

var pids = []pid{
	{PIDSpeed, 0x0D, 1, func(s *drivers.VehicleOBD, d []byte) { s.SpeedKmh = drivers.F64(float64(d[0])) }},
	{PIDRPM, 0x0C, 2, func(s *drivers.VehicleOBD, d []byte) { s.RPM = drivers.F64(float64(uint16(d[0])<<8|uint16(d[1])) / 4) }},
	{PIDCoolant, 0x05, 1, func(s *drivers.VehicleOBD, d []byte) { s.CoolantC = drivers.F64(float64(d[0]) - 40) }},
	{PIDFuel, 0x2F, 1, func(s *drivers.VehicleOBD, d []byte) { s.FuelPct = drivers.F64(float64(d[0]) * 100 / 255) }},
	{PIDOdometer, 0xA6, 4, func(s *drivers.VehicleOBD, d []byte) {
		s.OdometerKm = drivers.F64(float64(uint32(d[0])<<24|uint32(d[1])<<16|uint32(d[2])<<8|uint32(d[3])) / 10)
	}},
}

// PIDNames lists the PIDs the driver reads, in request order.
func PIDNames() []string {
	out := make([]string, len(pids))
	for i, p := range pids {
		out[i] = p.name
	}
	return out
}

func lookupPIDs(names []string) ([]pid, error) {
	var out []pid
	for _, n := range names {
		found := false
		for _, p := range pids {
			if p.name == n {
				out, found = append(out, p), true
			}
		}
		if !found {
			return nil, fmt.Errorf("obd: pid %q: use %v: %w", n, PIDNames(), ErrInvalidOption)
		}
	}
	return out, nil
}

// supported is the set of mode 01 PIDs the car offers, from the bitmaps of
// PIDs 00, 20, 40 …: bit 7 of the first byte of PID 00 is PID 01, and the
// last bit of each bitmap says whether the next bitmap exists.
type supported [0x101]bool

func (s *supported) add(base byte, bm []byte) (more bool) {
	for i := 0; i < 32 && i/8 < len(bm); i++ {
		if bm[i/8]&(0x80>>(i%8)) != 0 {
			s[int(base)+1+i] = true
		}
	}
	return s[int(base)+0x20]
}
