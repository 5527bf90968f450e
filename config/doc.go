// Package config reads, checks and describes the daemon's one TOML file (version = 1).
//
// Parse applies the file over Default, rejects unknown keys, and reports every wrong type and bad value
// with its full key (including array indices, "drivers.sim[1].interval") and line, so a field tech can
// fix the file in one pass. DefaultTOML is the commented reference shipped as the example config.
//
// Adding a section is local: add a tagged field to the struct it belongs in (a new driver family to
// Drivers, a new transport to Uplinks), give its type a check method (and setDefaults for array-of-tables
// elements), and add its block to DefaultTOML; the decoder, unknown-key detection, line numbers and
// suggestions follow from the struct tags. The round-trip and coverage tests fail until DefaultTOML
// shows every new key.
//
// Concurrency: the package has no state; a Config is a plain value, safe to read from many goroutines
// once built, and not safe to modify concurrently.
package config
