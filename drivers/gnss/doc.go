// Package gnss reads a GNSS receiver and turns its output into one
// drivers.Fix per navigation epoch.
//
// Two sources are supported: a receiver on a serial port speaking NMEA 0183
// (optionally with u-blox UBX NAV-PVT, or NAV-SOL and NAV-POSLLH, frames on
// the same port),
// and a gpsd daemon spoken to over its JSON protocol. Both feed the same
// logic: every epoch goes to Opts.OnFix, and epochs with a position become
// drivers.KindGNSSFix observations at most once per Opts.Interval, their time
// moving forward. Impossible values are refused at this boundary and counted
// (Stats.Counts), never passed on.
//
// The pure part, Assembler, merges the sentences of one epoch (RMC, GGA, GNS,
// GSA, VTG, GSV, ZDA, GLL, GST from any talker, plus the UBX frames) into a
// Fix, at most one per epoch. It does no
// I/O and keeps no clock of its own, so drivers/sim can replay recordings
// through it.
//
// Concurrency: an Assembler is not safe for concurrent use. A Dev runs one
// reading loop per Run call (call Run once); Stats and Probe may be called
// from any goroutine at any time, and Opts.OnFix is called from the Run
// goroutine and must not block.
package gnss
