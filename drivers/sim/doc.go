// Package sim provides simulated hardware for `edge-agent demo`, tests and
// bench: a GNSS receiver replaying an NMEA track (through drivers/gnss's
// Assembler, so its fixes are merged as a device's), a LoRa gateway, a BME280,
// a dashcam writing segment files, and a counter that emits as fast as the
// pipeline accepts.
//
// Every source is deterministic for a given Opts.Seed and clock, so tests can
// compare runs. The clock (Opts.Now) stamps observations; pacing between
// observations uses real timers.
//
// Concurrency: a *Dev may be used by one Run at a time; Name is safe to call
// concurrently. Run calls emit and Opts.OnFix from its own goroutine only.
package sim

//go:generate go run ./internal/gentrack -o track/drive.nmea.gz
