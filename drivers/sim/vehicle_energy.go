package sim

import (
	"context"
	"math"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
)

// runOBD simulates a car on an urban drive: the VIN (vehicle.vin) and an
// empty trouble code list (vehicle.dtc) first, as the driver emits them on
// connecting, then vehicle.obd samples: speed through a 120 s stop-and-go
// cycle, RPM from speed and gear, the coolant warming to 90 °C, fuel
// falling and the odometer counting the distance driven.
func (d *Dev) runOBD(ctx context.Context, emit drivers.Emit) error {
	rng := d.rng(5)
	odo, fuel, coolant := 48211.3, 71.0, 18.0
	var last time.Time
	return d.loop(ctx, emit, func(i int) (drivers.Observation, error) {
		now := d.o.Now()
		switch i {
		case 0:
			return drivers.Observation{Kind: drivers.KindVehicleVIN, Time: now, Data: drivers.VehicleVIN{VIN: "WSIMULATED0000001"}}, nil
		case 1:
			return drivers.Observation{Kind: drivers.KindVehicleDTC, Time: now, Data: drivers.VehicleDTC{Codes: []string{}}}, nil
		}
		dt := d.o.Interval.Seconds()
		if !last.IsZero() {
			dt = now.Sub(last).Seconds()
		}
		last = now
		phase := math.Mod(float64(now.UnixNano())/1e9, 120) / 120
		speed := math.Max(0, 50*math.Sin(2*math.Pi*phase)+rng.NormFloat64()) // km/h; the negative half is a stop
		speed = math.Round(speed)                                            // PID 0D resolves 1 km/h
		gear := math.Min(5, 1+math.Floor(speed/15))
		rpm := math.Round((800+speed*110/gear)*4) / 4 // PID 0C resolves 0.25 rpm
		odo += speed * dt / 3600
		fuel = math.Max(5, fuel-speed*dt/3600*0.07)     // 7 l/100 km of a 100 l scale
		coolant = math.Min(90, coolant+dt*0.05)         // warms in about half an hour
		fuelPct := math.Round(fuel*255/100) * 100 / 255 // PID 2F resolves 1/255
		return drivers.Observation{Kind: drivers.KindVehicleOBD, Time: now, Data: drivers.VehicleOBD{
			Protocol: "A6", SpeedKmh: drivers.F64(speed), RPM: drivers.F64(rpm), CoolantC: drivers.F64(math.Round(coolant)),
			FuelPct: drivers.F64(fuelPct), OdometerKm: drivers.F64(math.Floor(odo*10) / 10),
		}}, nil
	})
}

// runEnergy simulates an SDM630 between the grid and a house with solar
// panels: the house draws 400 W to 3 kW, the panels yield by the time of
// day; the meter counts import and export as the net flow goes.
func (d *Dev) runEnergy(ctx context.Context, emit drivers.Emit) error {
	rng := d.rng(6)
	imp, exp := 5_123_400.0, 1_873_200.0 // Wh
	var last time.Time
	return d.loop(ctx, emit, func(int) (drivers.Observation, error) {
		now := d.o.Now()
		dt := d.o.Interval.Hours()
		if !last.IsZero() {
			dt = now.Sub(last).Hours()
		}
		last = now
		day := float64(now.UTC().Hour()*3600+now.UTC().Minute()*60+now.UTC().Second()) / 86400
		solar := math.Max(0, 4200*math.Sin(2*math.Pi*(day-0.25)))
		load := clamp(900+600*math.Sin(2*math.Pi*day*3)+rng.NormFloat64()*150, 400, 3000)
		net := load - solar // W; positive draws from the grid
		if net > 0 {
			imp += net * dt
		} else {
			exp += -net * dt
		}
		volts := 230 + rng.NormFloat64()*1.5
		s := drivers.EnergySample{Profile: "sdm630", ImportWh: drivers.F64(math.Round(imp/10) * 10), ExportWh: drivers.F64(math.Round(exp/10) * 10),
			PowerW: math.Round(net), VoltageV: round2(volts), CurrentA: round2(math.Abs(net) / volts), FreqHz: round2(50 + rng.NormFloat64()*0.02)}
		return drivers.Observation{Kind: drivers.KindEnergySample, Time: now, Data: s}, nil
	})
}
