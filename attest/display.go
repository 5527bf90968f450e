package attest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// ObsMap decodes the obs claim for display. The result is JSON-friendly:
// byte strings become lowercase hex strings (hashes are read and compared
// in hex), map keys become strings, and NaN and ±Inf floats become the
// strings "NaN", "+Inf" and "-Inf".
func (r *Record) ObsMap() (map[string]any, error) {
	raw, ok := r.Claims.Obs.(cbor.RawMessage)
	if !ok {
		var err error
		if raw, err = encodeObs(r.Claims.Obs); err != nil {
			return nil, fmt.Errorf("attest: obs of seq %d: %w", r.Claims.Seq, err)
		}
	}
	var v any
	if err := strictDec.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("%w: obs of seq %d: %w", ErrMalformed, r.Claims.Seq, err)
	}
	m, ok := displayValue(v).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: obs of seq %d is not a map", ErrMalformed, r.Claims.Seq)
	}
	return m, nil
}

func displayValue(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			ks, ok := k.(string)
			if !ok {
				ks = fmt.Sprint(displayValue(k))
			}
			m[ks] = displayValue(e)
		}
		return m
	case []any:
		for i := range x {
			x[i] = displayValue(x[i])
		}
		return x
	case []byte:
		return hex.EncodeToString(x)
	case cbor.ByteString:
		return hex.EncodeToString([]byte(x))
	case float64:
		return displayFloat(x)
	case float32:
		return displayFloat(float64(x))
	}
	return v
}

func displayFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return f
}

type recordJSON struct {
	Device        string         `json:"device"`
	Chain         string         `json:"chain"`
	Seq           uint64         `json:"seq"`
	Prev          string         `json:"prev"`
	Time          string         `json:"time"`
	Kind          string         `json:"kind"`
	Source        string         `json:"source"`
	Obs           map[string]any `json:"obs"`
	Loc           *locationJSON  `json:"loc,omitempty"`
	TQ            *TimeQuality   `json:"tq,omitempty"`
	Boot          string         `json:"boot,omitempty"`
	PayloadSHA256 string         `json:"payload_sha256"`
	// Set for hardware keys (#13): the device key's algorithm when not
	// EdDSA, and the session key a session record was signed with.
	Alg     string       `json:"alg,omitempty"`
	Session *sessionJSON `json:"session,omitempty"`
}

type sessionJSON struct {
	Key        string `json:"key"` // hex Ed25519 public key
	ValidFrom  string `json:"valid_from"`
	ValidUntil string `json:"valid_until"`
}

type locationJSON struct {
	Lat     float64  `json:"lat"`
	Lon     float64  `json:"lon"`
	AltMSL  *float64 `json:"alt_msl,omitempty"`
	Time    string   `json:"time"`
	Mode    uint8    `json:"mode"`
	Sats    *uint8   `json:"sats,omitempty"`
	HDOP    *float64 `json:"hdop,omitempty"`
	Quality *uint8   `json:"quality,omitempty"`
	HAccM   *float64 `json:"hacc_m,omitempty"`
}

func rfc3339(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

// JSON renders the record as one JSON object for `verify --json`: device,
// chain (hex), seq, prev (hex), time (RFC 3339 with nanoseconds, UTC), kind,
// source, obs (as ObsMap), loc (omitted when absent), boot (hex, omitted
// when absent) and payload_sha256 (hex). It says nothing about the
// signature: the caller knows whether it ran Verify.
func (r *Record) JSON() ([]byte, error) {
	obs, err := r.ObsMap()
	if err != nil {
		return nil, err
	}
	c := &r.Claims
	h := PayloadHash(r.Payload)
	j := recordJSON{
		Device:        r.DeviceID,
		Chain:         hex.EncodeToString(c.Chain[:]),
		Seq:           c.Seq,
		Prev:          hex.EncodeToString(c.Prev[:]),
		Time:          rfc3339(c.Time),
		Kind:          c.Kind,
		Source:        c.Source,
		Obs:           obs,
		PayloadSHA256: hex.EncodeToString(h[:]),
	}
	if c.Boot != nil {
		j.Boot = hex.EncodeToString(c.Boot)
	}
	if r.Alg != cose.AlgorithmEdDSA {
		j.Alg = r.Alg.String()
	}
	if b := r.Binding; b != nil {
		j.Session = &sessionJSON{Key: hex.EncodeToString(b.SessionKey),
			ValidFrom: rfc3339(b.NotBefore.UnixNano()), ValidUntil: rfc3339(b.NotAfter.UnixNano())}
	}
	if l := c.Loc; l != nil {
		j.Loc = &locationJSON{Lat: l.Lat, Lon: l.Lon, AltMSL: l.AltMSL, Time: rfc3339(l.TimeUnixNano), Mode: l.Mode,
			Sats: l.Sats, HDOP: l.HDOP, Quality: l.Quality, HAccM: l.HAccM}
	}
	j.TQ = c.TQ
	b, err := json.Marshal(&j)
	if err != nil {
		return nil, fmt.Errorf("attest: json of seq %d: %w", c.Seq, err)
	}
	return b, nil
}
