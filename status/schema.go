package status

import (
	"context"
	"time"
)

// SchemaVersion is the version of Doc this build writes and reads. Readers
// refuse a document with a higher version (ErrSchema) rather than misreading
// it; fields added without a version bump are simply ignored by old readers.
const SchemaVersion = 1

// Source produces the status document. The daemon implements it; the server
// calls it once per request and fills Schema and Time itself when left zero.
type Source interface {
	Status(ctx context.Context) (*Doc, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context) (*Doc, error)

// Status calls f.
func (f SourceFunc) Status(ctx context.Context) (*Doc, error) { return f(ctx) }

// Doc is the whole status document, as served at /v1/status. Times are
// RFC 3339 in UTC and absent when unknown; an age is Time minus the
// timestamp, so a reader needs no clock of its own.
type Doc struct {
	Schema   int       `json:"schema"`  // SchemaVersion
	Time     time.Time `json:"time"`    // when the document was made, daemon clock
	Started  time.Time `json:"started"` // when the daemon started; uptime is Time - Started
	Identity Identity  `json:"identity"`
	Pipeline Pipeline  `json:"pipeline"`
	Drivers  []Driver  `json:"drivers"`
	Store    Store     `json:"store"`
	Uplinks  []Uplink  `json:"uplinks"`
	Clock    Clock     `json:"clock"`
	Disk     Disk      `json:"disk"`
	CPUs     *CPUs     `json:"cpus,omitempty"`   // the daemon's; absent from agents that do not choose them
	Update   *Update   `json:"update,omitempty"` // the post-upgrade health gate's state, when it has any
}

// Uptime is how long the daemon had been running when the document was made.
func (d *Doc) Uptime() time.Duration {
	if d.Started.IsZero() || d.Time.Before(d.Started) {
		return 0
	}
	return d.Time.Sub(d.Started)
}

// Age is how long before the document t was; 0 when t is zero (never).
func (d *Doc) Age(t time.Time) time.Duration {
	if t.IsZero() || d.Time.Before(t) {
		return 0
	}
	return d.Time.Sub(t)
}

// Identity is who this device is and what it runs.
type Identity struct {
	DeviceID  string `json:"device_id"`  // libp2p-style peer id of the device key
	PublicKey string `json:"public_key"` // hex of the raw public key (the records' kid)
	Version   string `json:"version"`    // edge-agent version
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"go_version,omitempty"`
	BootID    string `json:"boot_id,omitempty"` // hex of the per-boot id stamped on records
	Key       *Key   `json:"key,omitempty"`
}

// Key is the device key's backend and, for hardware keys, the session keys
// it binds and its manufacturer certificate.
type Key struct {
	Backend   string `json:"backend"`   // file, tpm, ecc608
	Algorithm string `json:"algorithm"` // of the device key: EdDSA, ES256
	Hardware  bool   `json:"hardware"`  // held by a TPM or secure element, not exportable
	Where     string `json:"where"`
	// Sessions: bindings the hardware key signed since start, the last
	// one's signing time and expiry, and the last failed rotation.
	SessionBindings   int64     `json:"session_bindings,omitempty"`
	LastHardwareSign  float64   `json:"last_hardware_sign_ms,omitempty"`
	SessionValidUntil time.Time `json:"session_valid_until,omitzero"`
	RotationError     string    `json:"rotation_error,omitempty"`
	CertSubject       string    `json:"cert_subject,omitempty"`
	CertIssuer        string    `json:"cert_issuer,omitempty"`
	CertExpires       time.Time `json:"cert_expires,omitzero"`
}

// Pipeline counts observations through signing into the outbox since start.
type Pipeline struct {
	Observed uint64 `json:"observed"` // observations handed over by drivers
	Signed   uint64 `json:"signed"`   // records signed
	Stored   uint64 `json:"stored"`   // records durably appended
	// AppendErrors counts failed outbox commits; LastAppendError is the
	// latest one, empty when the last commit succeeded.
	AppendErrors    uint64    `json:"append_errors"`
	LastAppendError string    `json:"last_append_error,omitempty"`
	LastProgress    time.Time `json:"last_progress,omitzero"` // last commit or idle tick; the watchdog's view
	// EncodeDrops counts observations dropped because they could not be
	// encoded (a driver bug); WithoutLocation counts records stored without
	// the location stamp because the stamp would not encode. LastEncodeError
	// is the latest of either.
	EncodeDrops     uint64 `json:"encode_drops"`
	WithoutLocation uint64 `json:"without_location,omitempty"`
	LastEncodeError string `json:"last_encode_error,omitempty"`
}

// Driver states. A driver is loaded while it runs; skipped when its hardware
// is absent; failed when present but unusable (Reason says why); finished
// when it stopped by itself without error (a simulation with a count).
const (
	StateLoaded   = "loaded"
	StateSkipped  = "skipped"
	StateFailed   = "failed"
	StateFinished = "finished"
)

// Driver is one configured driver instance.
type Driver struct {
	Name   string `json:"name"`   // instance name from the config (the records' source)
	Family string `json:"family"` // gnss, lora, env, camera, obd, energy, sim; "unknown" is a bug
	State  string `json:"state"`  // one of the State… constants
	Reason string `json:"reason,omitempty"`
	// Observations counts what the driver emitted since start, by kind
	// ("gnss.fix", "lora.rx", …).
	Observations    map[string]uint64 `json:"observations"`
	LastObservation time.Time         `json:"last_observation,omitzero"`
	// PerMinute is the observation rate over the last few minutes.
	PerMinute float64 `json:"per_minute"`

	// Exactly one of these is set for the hardware families, none for sim.
	GNSS   *GNSS   `json:"gnss,omitempty"`
	LoRa   *LoRa   `json:"lora,omitempty"`
	Env    *Env    `json:"env,omitempty"`
	Camera *Camera `json:"camera,omitempty"`
	OBD    *OBD    `json:"obd,omitempty"`
	Energy *Energy `json:"energy,omitempty"`
}

// GNSS is a receiver's state (drivers/gnss Stats).
type GNSS struct {
	Connected bool `json:"connected"` // the port is open / gpsd is connected
	// Mode is the last epoch's fix: 1 none, 2 2D, 3 3D; 0 before any epoch.
	Mode       int       `json:"mode"`
	Satellites int       `json:"satellites"` // used in the last solution
	HDOP       float64   `json:"hdop"`
	LastFix    time.Time `json:"last_fix,omitzero"` // system clock at the last epoch with a position
	Epochs     uint64    `json:"epochs"`
	Fixes      uint64    `json:"fixes"`
	// ClockOffsetSeconds is GNSS time minus the system clock (positive: the
	// system clock is behind); null until measured.
	ClockOffsetSeconds *float64 `json:"clock_offset_seconds,omitempty"`
	// Sentences counts the NMEA sentences, UBX frames or gpsd reports used.
	Sentences uint64 `json:"sentences"`
	// Rejected counts refused input by cause: "bad_checksum", "no_checksum",
	// "garbled", "invalid" (an impossible value), "late" (a sentence of an
	// epoch already handed on), "bad_date", "time_back".
	Rejected map[string]uint64 `json:"rejected"`
	// Unused counts well-formed input the driver does not use (other
	// sentence types, other UBX messages).
	Unused     uint64 `json:"unused"`
	LastReject string `json:"last_reject,omitempty"`
}

// LoRa is a packet forwarder or radio's state.
type LoRa struct {
	PacketsPerMinute float64 `json:"packets_per_minute"` // received frames, CRC-good, recent rate
	// Gateways counts packets by gateway EUI and outcome ("ok", "crc_error",
	// "rejected", …): the forwarders feeding this driver.
	Gateways    []LoRaGateway `json:"gateways"`
	SocketDrops uint64        `json:"socket_drops"` // datagrams the kernel dropped on the receive socket

	Mode   string `json:"mode,omitempty"`   // udp, concentratord, mqtt
	Listen string `json:"listen,omitempty"` // udp: the address forwarders send to
	// Tap: udp mode without upstreams; nothing is relayed to a network server.
	Tap bool `json:"tap,omitempty"`
	// Connected is set for concentratord and mqtt: the source is subscribed.
	Connected *bool  `json:"connected,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// Malformed counts what was refused, by reason (fixed set: see docs/status.md).
	Malformed map[string]uint64 `json:"malformed,omitempty"`
	// The gateway table: at most MaxGateways; GatewaysRefused counts datagrams from
	// new gateways beyond it, GatewaysExpired those forgotten after silence,
	// GatewaysOmitted those tracked but left out of this list (it shows the most
	// recently seen MaxStatusGateways).
	MaxGateways     int            `json:"max_gateways,omitempty"`
	GatewaysRefused uint64         `json:"gateways_refused,omitempty"`
	GatewaysExpired uint64         `json:"gateways_expired,omitempty"`
	GatewaysOmitted int            `json:"gateways_omitted,omitempty"`
	TxRecords       uint64         `json:"tx_records,omitempty"` // lora.tx records emitted
	Upstreams       []LoRaUpstream `json:"upstreams,omitempty"`
}

// MaxStatusGateways bounds the gateways listed per LoRa driver, so the
// document (and /metrics) stays small whatever sends datagrams.
const MaxStatusGateways = 100

// LoRaUpstream is one network server a udp multiplexer relays to.
type LoRaUpstream struct {
	Name       string `json:"name"`
	Addr       string `json:"addr"`
	Resolved   string `json:"resolved,omitempty"`
	UplinkOnly bool   `json:"uplink_only,omitempty"`
	// State: idle, ok, unresolved (DNS fails; retried with backoff), unreachable
	// (ICMP unreachable since its last ack), silent (sent to, no ack for 30 s).
	State            string    `json:"state"`
	LastError        string    `json:"last_error,omitempty"`
	LastAck          time.Time `json:"last_ack,omitzero"`
	Sent             uint64    `json:"sent"`
	Acks             uint64    `json:"acks"`
	AckRatio         float64   `json:"ack_ratio"` // acks / (PUSH_DATA + PULL_DATA sent)
	Unsent           uint64    `json:"unsent"`    // not relayed: unresolved or no socket
	Unreachable      uint64    `json:"unreachable"`
	Downlinks        uint64    `json:"downlinks"`
	DownlinksRelayed uint64    `json:"downlinks_relayed"`
	DownlinksDropped uint64    `json:"downlinks_dropped"` // uplink_only, or no path to the gateway
	TokensRemapped   uint64    `json:"tokens_remapped"`
	TxAcksReturned   uint64    `json:"tx_acks_returned"`
}

// LoRaGateway is one packet forwarder seen by a LoRa driver.
type LoRaGateway struct {
	EUI      string            `json:"eui"` // 16 hex digits
	LastSeen time.Time         `json:"last_seen,omitzero"`
	Packets  map[string]uint64 `json:"packets"` // outcome → count
}

// Env is an environment sensor's last reading.
type Env struct {
	Chip        string    `json:"chip"`
	At          time.Time `json:"at,omitzero"` // zero: no reading yet
	TempC       float64   `json:"temp_c"`
	PressurePa  float64   `json:"pressure_pa"`
	HumidityPct *float64  `json:"humidity_pct,omitempty"` // BMP280 has none
}

// OBD is an ELM327 adapter's state (drivers/obd Stats).
type OBD struct {
	// State: disconnected (port closed or adapter silent), no_vehicle
	// (ignition off: normal), ok.
	State    string    `json:"state"`
	Baud     int       `json:"baud,omitempty"`
	Adapter  string    `json:"adapter,omitempty"`  // AT Z banner
	Protocol string    `json:"protocol,omitempty"` // AT DPN
	Offered  []string  `json:"offered,omitempty"`  // configured PIDs the car offers
	Samples  uint64    `json:"samples"`
	LastAt   time.Time `json:"last_sample,omitzero"`
	// Quirks counts clone misbehaviour and bus messages: echo, searching,
	// no_prompt, garbage, baud_fallback, timeout, no_data,
	// unable_to_connect, bus_init_error, unknown_command, can_error,
	// bus_error, stopped.
	Quirks    map[string]uint64 `json:"quirks"`
	Reconnect uint64            `json:"reconnects"`
	LastError string            `json:"last_error,omitempty"`
}

// Energy is a Modbus meter or inverter's state (drivers/energy Stats).
type Energy struct {
	Connected bool      `json:"connected"` // the last poll succeeded
	Profile   string    `json:"profile"`
	Model     uint16    `json:"model,omitempty"` // SunSpec model
	Polls     uint64    `json:"polls"`
	LastAt    time.Time `json:"last_poll,omitzero"`
	ImportWh  *float64  `json:"import_wh,omitempty"`
	ExportWh  *float64  `json:"export_wh,omitempty"`
	PowerW    float64   `json:"power_w"`
	// Errors counts failed polls: timeout, crc, exception, malformed,
	// other. Flags counts flagged samples: import_back, export_back,
	// import_jump, export_jump.
	Errors    map[string]uint64 `json:"errors"`
	Flags     map[string]uint64 `json:"flags"`
	LastError string            `json:"last_error,omitempty"`
}

// Camera is a watched dashcam directory.
type Camera struct {
	FilesAttested uint64    `json:"files_attested"`
	LastFile      string    `json:"last_file,omitempty"`
	LastAttested  time.Time `json:"last_attested,omitzero"`
	Errors        uint64    `json:"errors"`
	LastError     string    `json:"last_error,omitempty"`
	// Skipped counts names not attested because they are not the camera's
	// files (FIFOs, devices, symlinks, hard links to files outside).
	Skipped     uint64 `json:"skipped,omitempty"`
	LastSkipped string `json:"last_skipped,omitempty"` // "name: why"
}

// Store is the outbox.
type Store struct {
	Path        string    `json:"path"`
	Chain       string    `json:"chain"` // hex chain id
	HeadSeq     uint64    `json:"head_seq"`
	Records     int64     `json:"records"`
	Bytes       int64     `json:"bytes"`     // stored record bytes (the quota's unit)
	MaxBytes    int64     `json:"max_bytes"` // quota; 0 = none
	FileBytes   int64     `json:"file_bytes"`
	Oldest      time.Time `json:"oldest,omitzero"` // when the oldest stored record was appended
	Evicted     uint64    `json:"evicted"`         // records dropped by the quota, over the file's life
	PendingGaps int       `json:"pending_gaps"`    // evicted ranges not yet announced by an agent.gap record
	LastCheck   *Check    `json:"last_check,omitempty"`
	Recovery    *Recovery `json:"recovery,omitempty"` // set when this file replaced a corrupt one
	// What the outbox's commits wrote to disk since the daemon started, and
	// the rate over the last minute (bytes/s): what wears the SD card.
	WriteRate    float64 `json:"write_bytes_per_second"`
	WrittenBytes uint64  `json:"written_bytes"`
	Commits      uint64  `json:"commits"` // each two fdatasync calls
}

// QuotaUsed is Bytes/MaxBytes, 0 without a quota.
func (s Store) QuotaUsed() float64 {
	if s.MaxBytes <= 0 {
		return 0
	}
	return float64(s.Bytes) / float64(s.MaxBytes)
}

// Check is the outcome of the last consistency check of the outbox.
type Check struct {
	At    time.Time `json:"at"`
	Error string    `json:"error,omitempty"` // empty: passed
}

// Recovery says the outbox was replaced after corruption.
type Recovery struct {
	At      time.Time `json:"at"`
	MovedTo string    `json:"moved_to"`
	Reason  string    `json:"reason"`
}

// Uplink is one transport.
type Uplink struct {
	Name        string    `json:"name"` // the ack cursor's name: "mqtt", "p2p", "file"
	Connected   bool      `json:"connected"`
	Server      string    `json:"server,omitempty"` // current or last tried broker / peer
	AckedSeq    uint64    `json:"acked_seq"`
	Delivered   uint64    `json:"delivered"` // records acknowledged since start
	Backlog     int64     `json:"backlog"`   // stored records not yet acknowledged
	LastAck     time.Time `json:"last_ack,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// ClientCertExpiry is the NotAfter of the TLS client certificate.
	ClientCertExpiry time.Time `json:"client_cert_expiry,omitzero"`
	Peers            *int      `json:"peers,omitempty"` // p2p: connected peers
}

// Clock is the system clock's health.
type Clock struct {
	// Synced is the kernel's view (adjtimex STA_UNSYNC clear): an NTP client
	// disciplines the clock. Null when the kernel could not be asked.
	Synced *bool `json:"synced,omitempty"`
	// MaxErrorSeconds is the kernel's maximum error estimate.
	MaxErrorSeconds float64 `json:"max_error_seconds"`
	// GNSSOffsetSeconds is GNSS time minus system time from the first GNSS
	// driver that measured it; null without one.
	GNSSOffsetSeconds *float64 `json:"gnss_offset_seconds,omitempty"`
	// PPS: the kernel clock is disciplined by a PPS signal (adjtimex
	// STA_PPSSIGNAL and STA_PPSTIME).
	PPS bool `json:"pps,omitempty"`
	// Source is the time quality stamped on records now ("gnss", "ntp",
	// "unsynchronised", …: the "tq" claim of docs/attestation.md).
	Source string `json:"source,omitempty"`
	// Error says why Synced is null (the kernel could not be asked, e.g. a
	// syscall filter refused adjtimex).
	Error string `json:"error,omitempty"`
}

// CPUs is how many cores the daemon runs on: one at light load, up to Max
// when busy (package procs).
type CPUs struct {
	InUse    int    `json:"in_use"`
	Max      int    `json:"max"`
	Switches uint64 `json:"switches"`           // changes since the daemon started
	FixedBy  string `json:"fixed_by,omitempty"` // "GOMAXPROCS=2": set outside the agent, not by load
}

// Disk is the filesystem holding the data directory.
type Disk struct {
	Path       string `json:"path"`
	FreeBytes  int64  `json:"free_bytes"` // available to unprivileged users
	TotalBytes int64  `json:"total_bytes"`
	ReadOnly   bool   `json:"read_only"`
	Error      string `json:"error,omitempty"` // statfs failed
}
