// Package statustest provides a hand-written fake status.Source and a
// realistic sample document for tests of the status API's consumers
// (doctor, metrics, the CLI).
//
// Concurrency: a Source is safe for concurrent use; Set may be called while
// a server reads it.
package statustest

import (
	"context"
	"sync"
	"time"

	"github.com/edge-agent/edge-agent/status"
)

// Source serves whatever document (or error) it was last given.
type Source struct {
	mu    sync.Mutex
	doc   *status.Doc
	err   error
	calls int
}

var _ status.Source = (*Source)(nil)

// NewSource returns a Source serving doc.
func NewSource(doc *status.Doc) *Source { return &Source{doc: doc} }

// Set replaces the document and the error.
func (s *Source) Set(doc *status.Doc, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc, s.err = doc, err
}

// Calls is how many times Status was called.
func (s *Source) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Status returns a deep-enough copy of the document (the server fills
// Schema and Time), or the error.
func (s *Source) Status(ctx context.Context) (*status.Doc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.err != nil {
		return nil, s.err
	}
	if s.doc == nil {
		return nil, nil
	}
	d := *s.doc
	return &d, nil
}

// Sample is a healthy hotspot at now: a GNSS receiver with a 3D fix, a LoRa
// forwarder, an env sensor, an MQTT uplink that is connected and caught up,
// a synced clock and plenty of disk.
func Sample(now time.Time) *status.Doc {
	now = now.UTC()
	synced := true
	hum := 41.5
	return &status.Doc{
		Schema:  status.SchemaVersion,
		Time:    now,
		Started: now.Add(-26 * time.Hour),
		Identity: status.Identity{
			DeviceID:  "12D3KooWSampleDevice",
			PublicKey: "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29",
			Version:   "1.0.0",
			Commit:    "abc1234",
			GoVersion: "go1.26.8",
		},
		Pipeline: status.Pipeline{Observed: 9400, Signed: 9400, Stored: 9400, LastProgress: now.Add(-time.Second)},
		Drivers: []status.Driver{
			{
				Name: "gps", Family: "gnss", State: status.StateLoaded,
				Observations: map[string]uint64{"gnss.fix": 5000}, LastObservation: now.Add(-time.Second), PerMinute: 6,
				GNSS: &status.GNSS{Connected: true, Mode: 3, Satellites: 9, HDOP: 0.9, LastFix: now.Add(-time.Second),
					Epochs: 93000, Fixes: 92000, ClockOffsetSeconds: status.Seconds(40 * time.Millisecond),
					Sentences: 558000, Rejected: map[string]uint64{"bad_checksum": 3, "no_checksum": 0, "garbled": 2,
						"invalid": 0, "late": 0, "bad_date": 0, "time_back": 0}},
			},
			{
				Name: "lora", Family: "lora", State: status.StateLoaded,
				Observations: map[string]uint64{"lora.rx": 4200, "lora.stat": 190}, LastObservation: now.Add(-4 * time.Second), PerMinute: 3,
				LoRa: &status.LoRa{PacketsPerMinute: 2.7, SocketDrops: 0, Gateways: []status.LoRaGateway{{
					EUI: "b827ebfffe6e3c01", LastSeen: now.Add(-4 * time.Second),
					Packets: map[string]uint64{"ok": 4200, "crc_error": 35},
				}}},
			},
			{
				Name: "bme", Family: "env", State: status.StateLoaded,
				Observations: map[string]uint64{"env.sample": 200}, LastObservation: now.Add(-7 * time.Second), PerMinute: 6,
				Env: &status.Env{Chip: "bme280", At: now.Add(-7 * time.Second), TempC: 21.4, PressurePa: 101325, HumidityPct: &hum},
			},
		},
		Store: status.Store{
			Path: "/var/lib/edge-agent/outbox.db", Chain: "00112233445566778899aabbccddeeff", HeadSeq: 9400,
			Records: 12, Bytes: 4800, MaxBytes: 256 << 20, FileBytes: 1 << 20, Oldest: now.Add(-5 * time.Second),
			LastCheck: &status.Check{At: now.Add(-26 * time.Hour)},
		},
		Uplinks: []status.Uplink{{
			Name: "mqtt", Connected: true, Server: "ssl://broker.example:8883", AckedSeq: 9388, Delivered: 9388,
			Backlog: 12, LastAck: now.Add(-time.Second), ClientCertExpiry: now.Add(300 * 24 * time.Hour),
		}},
		Clock: status.Clock{Synced: &synced, MaxErrorSeconds: 0.012, GNSSOffsetSeconds: status.Seconds(40 * time.Millisecond)},
		Disk:  status.Disk{Path: "/var/lib/edge-agent", FreeBytes: 20 << 30, TotalBytes: 29 << 30},
	}
}
