package energy

import (
	"context"
	"fmt"
	"math"

	"github.com/edge-agent/edge-agent/drivers"
)

// Profiles: the register maps the driver knows.
const (
	ProfileSDM120  = "sdm120"
	ProfileSDM630  = "sdm630"
	ProfileSunSpec = "sunspec"
)

// Profiles lists the accepted profile names.
var Profiles = []string{ProfileSDM120, ProfileSDM630, ProfileSunSpec}

// ratedW is each profile's most power, for the "jump beyond physics" check
// when the config gives none: the Eastron datasheets' maximum current at the
// top of the voltage range (SDM120: 45 A, SDM630: 3 × 100 A, 276 V).
var ratedW = map[string]float64{ProfileSDM120: 45 * 276, ProfileSDM630: 3 * 100 * 276, ProfileSunSpec: 100_000}

// float32At reads an IEEE-754 single from two registers, high word first, as
// every Eastron input register is (SDM120/SDM630 Modbus protocol, "Input
// Registers").
func float32At(r []uint16, off int) float64 {
	return float64(math.Float32frombits(uint32(r[off])<<16 | uint32(r[off+1])))
}

// Eastron input register offsets (30001-based register numbers minus
// 30001), SDM630 Modbus protocol v1.5 table 1; the SDM120 shares the ones it
// has.
const (
	sdmVoltsL1     = 0x00 // phase 1 line to neutral volts
	sdmCurrentL1   = 0x06 // phase 1 current A
	sdmPowerL1     = 0x0C // phase 1 active power W
	sdmVoltsAvg    = 0x2A // average line to neutral volts (SDM630)
	sdmCurrentSum  = 0x30 // sum of line currents A (SDM630)
	sdmPowerTotal  = 0x34 // total system power W (SDM630)
	sdmFrequency   = 0x46 // Hz
	sdmImportKWh   = 0x48 // import active energy kWh
	sdmExportKWh   = 0x4A // export active energy kWh
	sdmEnergyRegs  = 6    // 0x46 … 0x4B
	sdm120Regs     = 0x0E // 0x00 … 0x0D
	sdm630LowRegs  = 0x36 // 0x00 … 0x35
	sunsMarkerHigh = 0x5375
	sunsMarkerLow  = 0x6E53 // "SunS"
)

func pollSDM(ctx context.Context, t transport, profile string) (drivers.EnergySample, error) {
	n := uint16(sdm120Regs)
	if profile == ProfileSDM630 {
		n = sdm630LowRegs
	}
	lo, err := t.read(ctx, fnReadInput, 0, n)
	if err != nil {
		return drivers.EnergySample{}, err
	}
	e, err := t.read(ctx, fnReadInput, sdmFrequency, sdmEnergyRegs)
	if err != nil {
		return drivers.EnergySample{}, err
	}
	imp, exp := float32At(e, 2)*1000, float32At(e, 4)*1000
	s := drivers.EnergySample{Profile: profile, ImportWh: &imp, ExportWh: &exp, FreqHz: float32At(e, 0),
		VoltageV: float32At(lo, sdmVoltsL1), CurrentA: float32At(lo, sdmCurrentL1), PowerW: float32At(lo, sdmPowerL1)}
	if profile == ProfileSDM630 {
		s.VoltageV, s.CurrentA, s.PowerW = float32At(lo, sdmVoltsAvg), float32At(lo, sdmCurrentSum), float32At(lo, sdmPowerTotal)
	}
	return s, nil
}

// sunspecModel is the model found after the "SunS" marker: where it starts
// (its ID register) and its length L.
type sunspecModel struct {
	id, addr, length uint16
}

// discoverSunSpec checks the marker at base and walks the model chain
// (SunSpec Information Model Specification, "Device Modbus Map": each model
// is ID, L, then L registers; ID 0xFFFF ends the chain) to the first
// inverter (101–103) or meter (201–204).
func discoverSunSpec(ctx context.Context, t transport, base uint16) (sunspecModel, error) {
	m, err := t.read(ctx, fnReadHolding, base, 2)
	if err != nil {
		return sunspecModel{}, err
	}
	if m[0] != sunsMarkerHigh || m[1] != sunsMarkerLow {
		return sunspecModel{}, fmt.Errorf("energy: register %d holds %#04x %#04x, not \"SunS\": set sunspec_base (40000 or 50000) or pick the device's own profile: %w", base, m[0], m[1], ErrNotSunSpec)
	}
	addr := base + 2
	for range 64 {
		h, err := t.read(ctx, fnReadHolding, addr, 2)
		if err != nil {
			return sunspecModel{}, err
		}
		id, l := h[0], h[1]
		switch {
		case id == 0xFFFF:
			return sunspecModel{}, fmt.Errorf("energy: SunSpec chain at %d has no inverter (101-103) or meter (201-204): %w", base, ErrNotSunSpec)
		case id >= 101 && id <= 103 && l >= 50, id >= 201 && id <= 204 && l >= 105:
			return sunspecModel{id: id, addr: addr, length: l}, nil
		}
		addr += 2 + l
	}
	return sunspecModel{}, fmt.Errorf("energy: SunSpec chain at %d does not end: %w", base, ErrNotSunSpec)
}

// sf applies a SunSpec scale factor register (value × 10^sf); 0x8000 means
// "not implemented".
func sf(v float64, f uint16) float64 {
	if f == 0x8000 {
		return 0
	}
	return v * math.Pow10(int(int16(f)))
}

// SunSpec "not implemented" values.
func s16(v uint16) float64 {
	if v == 0x8000 {
		return 0
	}
	return float64(int16(v))
}

func u16(v uint16) float64 {
	if v == 0xFFFF {
		return 0
	}
	return float64(v)
}

// acc32 reads an accumulator; 0 means not accumulated (nil).
func acc32(r []uint16, off int, f uint16) *float64 {
	v := uint32(r[off])<<16 | uint32(r[off+1])
	if v == 0 || f == 0x8000 {
		return nil
	}
	x := sf(float64(v), f)
	return &x
}

// pollSunSpec reads one model block. Offsets are from the model's ID
// register, as the SunSpec model tables (101/103 inverter, 201-204 meter)
// number them.
func pollSunSpec(ctx context.Context, t transport, m sunspecModel) (drivers.EnergySample, error) {
	n := min(m.length+2, maxRegs)
	r, err := t.read(ctx, fnReadHolding, m.addr, n)
	if err != nil {
		return drivers.EnergySample{}, err
	}
	if r[0] != m.id {
		return drivers.EnergySample{}, fmt.Errorf("energy: SunSpec model at %d is now %d, was %d: %w", m.addr, r[0], m.id, ErrNotSunSpec)
	}
	s := drivers.EnergySample{Profile: ProfileSunSpec, Model: m.id}
	if m.id < 200 { // inverter: A 2, A_SF 6, PhVphA 10, V_SF 13, W 14, W_SF 15, Hz 16, Hz_SF 17, WH 24-25, WH_SF 26
		s.CurrentA = sf(u16(r[2]), r[6])
		s.VoltageV = sf(u16(r[10]), r[13])
		if m.id == 103 {
			s.VoltageV = sf((u16(r[10])+u16(r[11])+u16(r[12]))/3, r[13])
		}
		s.PowerW = sf(s16(r[14]), r[15])
		s.FreqHz = sf(u16(r[16]), r[17])
		s.ExportWh = acc32(r, 24, r[26])
		return s, nil
	}
	// meter: A 2, A_SF 6, PhV 7, V_SF 15, Hz 16, Hz_SF 17, W 18, W_SF 22,
	// TotWhExp 38-39, TotWhImp 46-47, TotWh_SF 54
	s.CurrentA = sf(s16(r[2]), r[6])
	s.VoltageV = sf(s16(r[7]), r[15])
	s.FreqHz = sf(s16(r[16]), r[17])
	s.PowerW = sf(s16(r[18]), r[22])
	s.ExportWh = acc32(r, 38, r[54])
	s.ImportWh = acc32(r, 46, r[54])
	return s, nil
}
