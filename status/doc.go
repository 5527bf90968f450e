// Package status is the daemon's local status API: the versioned JSON
// document that says what the box is doing (identity, drivers, outbox,
// uplinks, clock, disk), an HTTP server that serves it on a unix socket in
// the runtime directory, and the client that `edge-agent status`, `edge-agent
// doctor` and scripts use to read it.
//
// The document is a contract with field tools and owners' scripts: Schema is
// bumped only when a field changes meaning or disappears; new fields may be
// added within a version, so readers must ignore fields they do not know
// (docs/status.md lists every field).
//
// The daemon implements Source; the server calls it once per request, so a
// Source must be safe for concurrent use and cheap (a few locks, one short
// read transaction). Server.Run and Client.Fetch may be called from any
// goroutine; a Doc is a plain value owned by whoever holds it.
package status
