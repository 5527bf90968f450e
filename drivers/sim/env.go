package sim

import (
	"context"
	"math"

	"github.com/edge-agent/edge-agent/drivers"
)

// runEnv simulates an outdoor BME280: temperature follows the time of day
// (coolest before dawn) plus a small random walk; humidity moves against it;
// pressure drifts slowly, as weather does.
func (d *Dev) runEnv(ctx context.Context, emit drivers.Emit) error {
	rng := d.rng(3)
	var walkT, walkP, walkH float64
	return d.loop(ctx, emit, func(int) (drivers.Observation, error) {
		now := d.o.Now()
		walkT = clamp(walkT+rng.NormFloat64()*0.02, -1.5, 1.5)
		walkP = clamp(walkP+rng.NormFloat64()*2, -150, 150)
		walkH = clamp(walkH+rng.NormFloat64()*0.1, -5, 5)
		day := float64(now.UTC().Hour()*3600+now.UTC().Minute()*60+now.UTC().Second()) / 86400
		temp := 14 + 5*math.Sin(2*math.Pi*(day-0.375)) + walkT
		week := float64(now.Unix()%(7*86400)) / (7 * 86400)
		press := 101325 + 600*math.Sin(2*math.Pi*week) + walkP
		hum := clamp(60-2.5*(temp-14)+walkH, 5, 98)
		// Round to what the chip resolves: 0.01 °C, 0.18 Pa, 0.008 %RH
		// (BME280 datasheet §3.4-3.6); two decimals is close enough.
		hum = round2(hum)
		return drivers.Observation{
			Kind: drivers.KindEnvSample,
			Time: now,
			Data: drivers.EnvSample{Chip: "bme280", TempC: round2(temp), PressurePa: round2(press), HumidityPct: &hum},
		}, nil
	})
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

func round2(v float64) float64 { return math.Round(v*100) / 100 }
