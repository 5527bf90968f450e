package attest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"reflect"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// Kinds of records the agent itself writes. Observation kinds live in
// package drivers.
const (
	// KindBoot is written once per process start; its obs is a Boot.
	KindBoot = "agent.boot"
	// KindGap announces seqs dropped on purpose; its obs is a Gap.
	KindGap = "agent.gap"
	// KindUpdate records a change of the agent's own software: an upgrade
	// or downgrade seen at start, or an automatic rollback; its obs is an
	// Update. It follows the agent.boot record of that start.
	KindUpdate = "agent.update"
)

// Update events.
const (
	// UpdateUpgrade: this start runs a newer version than the last one.
	UpdateUpgrade = "upgrade"
	// UpdateDowngrade: this start runs an older version than the last one.
	UpdateDowngrade = "downgrade"
	// UpdateRollback: a release failed its post-upgrade health gate and the
	// previous one was reinstalled; From is the failed version.
	UpdateRollback = "rollback"
)

// Gap reasons.
const (
	// GapReasonQuota: the store evicted the records to stay under its byte
	// quota before every uplink acknowledged them.
	GapReasonQuota = "quota"
)

// Boot reasons.
const (
	// BootStart: the process started and continues an existing chain.
	BootStart = "start"
	// BootNewChain: the store was empty and starts a new chain at seq 1.
	BootNewChain = "new-chain"
	// BootRecovered: the store was unreadable and was replaced; the chain
	// starts again at seq 1 and PrevChain names the lost one.
	BootRecovered = "recovered"
	// BootUpgrade and BootDowngrade: the chain continues under another
	// version of the agent; the agent.update record that follows names both.
	BootUpgrade   = "upgrade"
	BootDowngrade = "downgrade"
)

// Limits a record must respect. They bound what a verifier allocates; real
// records are a few hundred bytes.
const (
	MaxRecordSize  = 64 << 10 // COSE_Sign1 bytes
	MaxPayloadSize = 63 << 10 // payload bytes, leaving room for the envelope
	MaxKindLen     = 64       // bytes of the kind claim
	MaxSourceLen   = 128      // bytes of the source claim
	maxNesting     = 16       // CBOR nesting inside obs
)

// Location is the "loc" claim: the latest fresh GNSS fix. Its CBOR keys are
// those of the gnss.fix obs. Optional values are pointers: nil is "not
// reported" and is omitted, so a zero is written only when it was measured
// (records signed before this distinction omitted zeros, and decode to nil).
type Location struct {
	Lat          float64  `cbor:"lat"`            // degrees, WGS84, full float64 precision
	Lon          float64  `cbor:"lon"`            // degrees, WGS84
	AltMSL       *float64 `cbor:"alt,omitempty"`  // metres above mean sea level
	TimeUnixNano int64    `cbor:"t"`              // fix time
	Mode         uint8    `cbor:"mode"`           // 2 or 3
	Sats         *uint8   `cbor:"sats,omitempty"` // satellites used
	HDOP         *float64 `cbor:"hdop,omitempty"`
	Quality      *uint8   `cbor:"q,omitempty"`    // GGA fix quality: 1 GPS, 2 DGPS, 3 PPS, 4 RTK fixed, 5 RTK float
	HAccM        *float64 `cbor:"hacc,omitempty"` // horizontal error estimate, m, 1 sigma
}

// Time sources of the "tq" claim, from best to worst.
const (
	TimeGNSSPPS = "gnss+pps"       // kernel disciplined by a PPS signal, and GNSS time agrees
	TimeGNSS    = "gnss"           // a fresh GNSS fix confirms the clock within a second
	TimeNTP     = "ntp"            // the kernel says it is synchronised (NTP, chrony, …)
	TimeRTC     = "rtc"            // set from a battery-backed clock at boot, nothing since
	TimeUnsync  = "unsynchronised" // nothing vouches for the clock: the time may be years off
)

// TimeQuality is the "tq" claim: how far the device clock that gave "time"
// can be trusted, so that a record signed with an unset clock is never
// mistaken for a fresh one.
type TimeQuality struct {
	Source string `cbor:"src" json:"src"` // TimeGNSSPPS … TimeUnsync
	// OffsetNS is GNSS time minus the device clock as last measured (ns):
	// present whenever a GNSS receiver has given a dated fix, whatever the
	// source.
	OffsetNS *int64 `cbor:"off,omitempty" json:"offset_ns,omitempty"`
	// MaxErrorNS is the kernel's maximum error estimate of the clock (ns),
	// when it is synchronised.
	MaxErrorNS *int64 `cbor:"maxerr,omitempty" json:"max_error_ns,omitempty"`
}

// Claims is the payload of one record.
type Claims struct {
	Chain  [16]byte // random id of the outbox's chain
	Seq    uint64   // from 1, never reused within a chain
	Prev   [32]byte // PayloadHash of seq-1; zeros for seq 1
	Time   int64    // device clock at signing, Unix ns, >= 0
	Kind   string   // "gnss.fix", "agent.gap", …
	Source string   // driver instance name from the config
	// Obs is the observation. When encoding: any value that encodes to a
	// CBOR map (a struct from drivers/observations.go, Gap, Boot, a map, or
	// a cbor.RawMessage). After Decode: a cbor.RawMessage holding the exact
	// bytes from the payload.
	Obs  any
	Loc  *Location // nil when there is no fresh fix
	Boot []byte    // 16 random bytes chosen at process start, or nil
	// TQ is the quality of Time; nil only in records signed before it
	// existed.
	TQ *TimeQuality
}

// Gap is the obs of an agent.gap record: seqs From..To (inclusive) of this
// chain were dropped on purpose and will never be delivered.
type Gap struct {
	From   uint64 `cbor:"from"`
	To     uint64 `cbor:"to"`
	Reason string `cbor:"reason"` // GapReasonQuota for evictions
}

// Update is the obs of an agent.update record.
type Update struct {
	Event  string `cbor:"event"`            // UpdateUpgrade, UpdateDowngrade, UpdateRollback
	From   string `cbor:"from"`             // the version before
	To     string `cbor:"to"`               // the version after
	Reason string `cbor:"reason,omitempty"` // rollback: why the health gate failed
	At     int64  `cbor:"at,omitempty"`     // rollback: when it happened, Unix ns
}

// Boot is the obs of an agent.boot record.
type Boot struct {
	Version string `cbor:"version"`          // agent version
	Reason  string `cbor:"reason,omitempty"` // BootStart, BootNewChain, BootRecovered
	// PrevChain and PrevSeq name where the previous chain of this device
	// ended, when a new chain replaces it, so a verifier can tell a recovery
	// from a device that hides records.
	PrevChain []byte `cbor:"prev_chain,omitempty"`
	PrevSeq   uint64 `cbor:"prev_seq,omitempty"`
}

// payloadWire is the payload map on the wire. Keys are small integers; the
// encoder sorts them (1..9 are one byte each, so core deterministic order is
// numeric order).
type payloadWire struct {
	Chain  []byte          `cbor:"1,keyasint"`
	Seq    uint64          `cbor:"2,keyasint"`
	Prev   []byte          `cbor:"3,keyasint"`
	Time   uint64          `cbor:"4,keyasint"`
	Kind   string          `cbor:"5,keyasint"`
	Source string          `cbor:"6,keyasint"`
	Obs    cbor.RawMessage `cbor:"7,keyasint"`
	Loc    *Location       `cbor:"8,keyasint,omitempty"`
	Boot   []byte          `cbor:"9,keyasint,omitempty"`
	TQ     *TimeQuality    `cbor:"10,keyasint,omitempty"`
}

// The codec modes are built once and never change: EncMode and DecMode are
// immutable and safe for concurrent use.
var (
	// detEnc is RFC 8949 §4.2.1 core deterministic encoding: preferred
	// (shortest) integers, lengths and floats, definite lengths, map keys
	// sorted bytewise.
	detEnc = mustEncMode(cbor.CoreDetEncOptions())
	// strictDec rejects what detEnc never writes and what a verifier must not
	// be tricked by: duplicate keys, unknown struct fields, indefinite
	// lengths, tags, invalid UTF-8, deep nesting.
	strictDec = mustDecMode(cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   maxNesting,
		MaxArrayElements:  MaxRecordSize,
		MaxMapPairs:       MaxRecordSize,
		UTF8:              cbor.UTF8RejectInvalid,
	})
)

func mustEncMode(o cbor.EncOptions) cbor.EncMode {
	m, err := o.EncMode()
	if err != nil {
		panic(err) // options are constants: a failure is a programming error
	}
	return m
}

func mustDecMode(o cbor.DecOptions) cbor.DecMode {
	m, err := o.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

// PayloadHash is the SHA-256 of the payload bytes: the next record's prev.
func PayloadHash(payload []byte) [32]byte { return sha256.Sum256(payload) }

// EncodePayload encodes c as the record payload: a deterministic CBOR map
// (RFC 8949 §4.2 core deterministic) with keys 1 chain, 2 seq, 3 prev,
// 4 time, 5 kind, 6 source, 7 obs, 8 loc (omitted if nil), 9 boot (omitted
// if nil). It refuses claims that Decode would reject, so the device never
// signs a record a verifier calls malformed.
func EncodePayload(c *Claims) ([]byte, error) {
	if c == nil {
		return nil, errors.New("attest: encode payload: nil claims")
	}
	if err := checkClaims(c); err != nil {
		return nil, fmt.Errorf("attest: encode payload seq %d: %w", c.Seq, err)
	}
	obs, err := encodeObs(c.Obs)
	if err != nil {
		return nil, fmt.Errorf("attest: encode payload seq %d kind %q: %w", c.Seq, c.Kind, err)
	}
	if err := checkAgentObs(c.Kind, c.Seq, obs); err != nil {
		return nil, fmt.Errorf("attest: encode payload seq %d: %w", c.Seq, err)
	}
	p, err := marshalPayload(c, obs)
	if err != nil {
		return nil, fmt.Errorf("attest: encode payload seq %d: %w", c.Seq, err)
	}
	if len(p) > MaxPayloadSize {
		return nil, fmt.Errorf("attest: encode payload seq %d kind %q: %d bytes exceeds the %d-byte limit", c.Seq, c.Kind, len(p), MaxPayloadSize)
	}
	return p, nil
}

func marshalPayload(c *Claims, obs cbor.RawMessage) ([]byte, error) {
	w := payloadWire{
		Chain:  c.Chain[:],
		Seq:    c.Seq,
		Prev:   c.Prev[:],
		Time:   uint64(c.Time),
		Kind:   c.Kind,
		Source: c.Source,
		Obs:    obs,
		Loc:    c.Loc,
		Boot:   c.Boot,
		TQ:     c.TQ,
	}
	return detEnc.Marshal(&w)
}

// encodeObs encodes the obs claim and checks that a verifier will accept
// it: a map, core deterministic, valid UTF-8, bounded nesting, no tags.
func encodeObs(obs any) (cbor.RawMessage, error) {
	var b []byte
	trusted := false // encoded here from a struct: sorted, no duplicate keys
	switch o := obs.(type) {
	case nil:
		return nil, errors.New("obs is nil; it must encode to a CBOR map")
	case cbor.RawMessage:
		b = o
	default:
		var err error
		if b, err = detEnc.Marshal(obs); err != nil {
			return nil, fmt.Errorf("obs: %w", err)
		}
		t := reflect.TypeOf(obs)
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		trusted = t.Kind() == reflect.Struct
	}
	if len(b) == 0 || b[0]>>5 != 5 {
		return nil, fmt.Errorf("obs (%T) must encode to a CBOR map", obs)
	}
	if trusted {
		// The encoder wrote it, so only what the encoder does not check
		// remains: text must be UTF-8 (Go strings need not be) and nesting
		// bounded. This walk costs far less than a decode.
		rest, err := checkItem(b, 0)
		if err == nil && len(rest) != 0 {
			err = errors.New("trailing bytes")
		}
		if err != nil {
			return nil, fmt.Errorf("obs: %w", err)
		}
		return b, nil
	}
	if err := checkCanonicalObs(b); err != nil {
		return nil, fmt.Errorf("obs: %w", err)
	}
	return b, nil
}

// checkItem walks one definite-length CBOR item at the start of b and
// returns what follows it. It accepts only what strictDec decodes and detEnc
// writes back unchanged for encoder-written data: no tags, no indefinite
// lengths, no simple values but false, true and null, UTF-8 text.
func checkItem(b []byte, depth int) ([]byte, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("nested deeper than %d", maxNesting)
	}
	if len(b) == 0 {
		return nil, errors.New("truncated")
	}
	major, ai := b[0]>>5, b[0]&0x1f
	b = b[1:]
	var n uint64
	switch {
	case ai < 24:
		n = uint64(ai)
	case ai <= 27:
		w := 1 << (ai - 24)
		if len(b) < w {
			return nil, errors.New("truncated")
		}
		for _, c := range b[:w] {
			n = n<<8 | uint64(c)
		}
		b = b[w:]
	default:
		return nil, fmt.Errorf("indefinite length or reserved additional information %d", ai)
	}
	switch major {
	case 2, 3:
		if n > uint64(len(b)) {
			return nil, errors.New("truncated")
		}
		if major == 3 && !utf8.Valid(b[:n]) {
			return nil, errors.New("text is not valid UTF-8")
		}
		return b[n:], nil
	case 4, 5:
		if n > uint64(len(b)) {
			return nil, errors.New("truncated")
		}
		if major == 5 {
			n *= 2
		}
		var err error
		for i := uint64(0); i < n; i++ {
			if b, err = checkItem(b, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case 6:
		return nil, errors.New("tags are not allowed")
	case 7:
		if ai < 20 || ai == 23 || ai == 24 {
			return nil, fmt.Errorf("simple value %d is not allowed", ai)
		}
	}
	return b, nil
}

// checkClaims holds the sanity rules shared by EncodePayload and Decode.
func checkClaims(c *Claims) error {
	switch {
	case c.Seq == 0:
		return errors.New("seq is 0; chains start at 1")
	case c.Time < 0:
		return fmt.Errorf("time %d is before 1970", c.Time)
	case c.Kind == "":
		return errors.New("kind is empty")
	case len(c.Kind) > MaxKindLen:
		return fmt.Errorf("kind is %d bytes, limit %d", len(c.Kind), MaxKindLen)
	case !utf8.ValidString(c.Kind):
		return errors.New("kind is not valid UTF-8")
	case len(c.Source) > MaxSourceLen:
		return fmt.Errorf("source is %d bytes, limit %d", len(c.Source), MaxSourceLen)
	case !utf8.ValidString(c.Source):
		return errors.New("source is not valid UTF-8")
	case c.Boot != nil && len(c.Boot) != 16:
		return fmt.Errorf("boot id is %d bytes, want 16 or none", len(c.Boot))
	case c.Seq == 1 && c.Prev != [32]byte{}:
		return errors.New("seq 1 must have an all-zero prev")
	}
	if c.Loc != nil {
		if err := CheckLocation(c.Loc); err != nil {
			return fmt.Errorf("loc: %w", err)
		}
	}
	if c.TQ != nil {
		switch c.TQ.Source {
		case TimeGNSSPPS, TimeGNSS, TimeNTP, TimeRTC, TimeUnsync:
		default:
			return fmt.Errorf("tq: unknown time source %q", c.TQ.Source)
		}
		if c.TQ.MaxErrorNS != nil && *c.TQ.MaxErrorNS < 0 {
			return fmt.Errorf("tq: negative maximum error %d", *c.TQ.MaxErrorNS)
		}
	}
	return nil
}

// CheckLocation reports why l cannot be signed as a "loc" claim (the rules
// Decode applies), or nil.
func CheckLocation(l *Location) error {
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	optFinite := func(f *float64, min float64) bool { return f == nil || finite(*f) && *f >= min }
	switch {
	case !finite(l.Lat) || l.Lat < -90 || l.Lat > 90:
		return fmt.Errorf("latitude %v out of range", l.Lat)
	case !finite(l.Lon) || l.Lon < -180 || l.Lon > 180:
		return fmt.Errorf("longitude %v out of range", l.Lon)
	case !optFinite(l.AltMSL, math.Inf(-1)):
		return fmt.Errorf("altitude %v is not finite", *l.AltMSL)
	case !optFinite(l.HDOP, 0):
		return fmt.Errorf("hdop %v out of range", *l.HDOP)
	case !optFinite(l.HAccM, 0):
		return fmt.Errorf("hacc %v out of range", *l.HAccM)
	case l.Mode != 2 && l.Mode != 3:
		return fmt.Errorf("fix mode %d, want 2 or 3 (no location without a fix)", l.Mode)
	case l.TimeUnixNano < 0:
		return fmt.Errorf("fix time %d is before 1970", l.TimeUnixNano)
	}
	return nil
}

// checkAgentObs checks the obs of the agent's own kinds, which Audit relies
// on: a gap must name earlier seqs of its own chain.
func checkAgentObs(kind string, seq uint64, obs cbor.RawMessage) error {
	switch kind {
	case KindGap:
		var g Gap
		if err := strictDec.Unmarshal(obs, &g); err != nil {
			return fmt.Errorf("agent.gap obs: %w", err)
		}
		if g.From == 0 || g.From > g.To || g.To >= seq {
			return fmt.Errorf("agent.gap obs names seqs %d..%d; want 1 <= from <= to < its own seq %d", g.From, g.To, seq)
		}
	case KindBoot:
		var b Boot
		if err := strictDec.Unmarshal(obs, &b); err != nil {
			return fmt.Errorf("agent.boot obs: %w", err)
		}
		if b.PrevChain != nil && len(b.PrevChain) != 16 {
			return fmt.Errorf("agent.boot obs: prev_chain is %d bytes, want 16", len(b.PrevChain))
		}
	case KindUpdate:
		var u Update
		if err := strictDec.Unmarshal(obs, &u); err != nil {
			return fmt.Errorf("agent.update obs: %w", err)
		}
		switch u.Event {
		case UpdateUpgrade, UpdateDowngrade, UpdateRollback:
		default:
			return fmt.Errorf("agent.update obs: event %q, want upgrade, downgrade or rollback", u.Event)
		}
		if u.From == "" || u.To == "" {
			return fmt.Errorf("agent.update obs: from and to must name versions")
		}
	}
	return nil
}
