package gwmp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// PushBody is the JSON object of a PUSH_DATA (PROTOCOL.TXT §4).
type PushBody struct {
	RXPK []RXPK `json:"rxpk,omitempty"`
	Stat *Stat  `json:"stat,omitempty"`
	// Invalid holds one error (wrapping ErrField or ErrJSON) per rxpk
	// element that could not be decoded. Such elements are left out of
	// RXPK: one bad frame must not cost the others in the same datagram.
	Invalid []error `json:"-"`
	// StatErr is set, and Stat nil, when the stat object could not be
	// decoded.
	StatErr error `json:"-"`
}

// UnmarshalJSON decodes each rxpk element, and stat, on its own, so that an
// invalid value in one is reported in Invalid instead of failing the whole
// datagram.
func (p *PushBody) UnmarshalJSON(b []byte) error {
	var raw struct {
		RXPK []json.RawMessage `json:"rxpk"`
		Stat json.RawMessage   `json:"stat"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*p = PushBody{RXPK: make([]RXPK, 0, len(raw.RXPK))}
	for i, r := range raw.RXPK {
		var pk RXPK
		if err := json.Unmarshal(r, &pk); err != nil {
			p.Invalid = append(p.Invalid, fieldErr(fmt.Sprintf("rxpk[%d]", i), err))
			continue
		}
		p.RXPK = append(p.RXPK, pk)
	}
	if len(raw.Stat) > 0 && string(raw.Stat) != "null" {
		var st Stat
		if err := json.Unmarshal(raw.Stat, &st); err != nil {
			p.StatErr = fieldErr("stat", err)
		} else {
			p.Stat = &st
		}
	}
	return nil
}

// fieldErr keeps ErrField visible to errors.Is when a custom unmarshaler
// refused a value, and otherwise reports a JSON type mismatch.
func fieldErr(what string, err error) error {
	if errors.Is(err, ErrField) {
		return fmt.Errorf("gwmp: %s: %w", what, err)
	}
	return fmt.Errorf("gwmp: %s: %w: %v", what, ErrJSON, err)
}

// RXPK is one received frame and its metadata. Pointer fields are optional
// in the protocol and nil when absent or null. Fields this package does not
// know are ignored.
type RXPK struct {
	JVer  *int     `json:"jver,omitempty"`  // v2: JSON version of this object
	Time  string   `json:"time,omitempty"`  // UTC time of reception, ISO 8601 (see ParseTime)
	Tmms  *uint64  `json:"tmms,omitempty"`  // GPS time of reception, ms since the GPS epoch
	Tmst  *uint32  `json:"tmst,omitempty"`  // concentrator µs counter at end of reception; wraps at 2^32
	FTime *uint32  `json:"ftime,omitempty"` // v2: fine timestamp, ns within the GPS second
	Freq  Freq     `json:"freq"`            // centre frequency, sent as decimal MHz
	Chan  uint8    `json:"chan"`            // concentrator IF channel
	RFCh  uint8    `json:"rfch"`            // concentrator RF chain
	Mid   *uint8   `json:"mid,omitempty"`   // v2: concentrator modem id
	Stat  *int     `json:"stat,omitempty"`  // CRC status: 1 OK, -1 fail, 0 no CRC
	Modu  string   `json:"modu"`            // "LORA" or "FSK"
	Datr  DataRate `json:"datr"`            // "SF7BW125" (LoRa) or bit rate (FSK)
	Codr  string   `json:"codr,omitempty"`  // LoRa coding rate "4/5"…, or "OFF"
	RSSI  *float64 `json:"rssi,omitempty"`  // dBm, v1 (and v2 forwarders that keep it)
	RSSIS *float64 `json:"rssis,omitempty"` // v2: signal RSSI, dBm
	LSNR  *float64 `json:"lsnr,omitempty"`  // LoRa SNR, dB
	Foff  *int64   `json:"foff,omitempty"`  // v2: frequency offset, Hz
	Size  *uint16  `json:"size,omitempty"`  // PHY payload bytes
	Data  Payload  `json:"data"`            // PHY payload, base64
	Brd   *uint8   `json:"brd,omitempty"`   // v2: concentrator board
	RSig  []RSig   `json:"rsig,omitempty"`  // v2: one report per antenna that heard the frame
}

// RSig is the per-antenna signal report of protocol v2 (sx1302_hal
// PROTOCOL.md, "rsig" array).
type RSig struct {
	Ant     uint8    `json:"ant"`               // antenna number
	Chan    uint8    `json:"chan"`              // concentrator IF channel
	RSSIC   *float64 `json:"rssic,omitempty"`   // channel RSSI, dBm
	RSSIS   *float64 `json:"rssis,omitempty"`   // signal RSSI, dBm
	RSSISD  *float64 `json:"rssisd,omitempty"`  // standard deviation of the signal RSSI
	LSNR    *float64 `json:"lsnr,omitempty"`    // SNR, dB
	ETime   string   `json:"etime,omitempty"`   // encrypted fine timestamp, base64
	Foff    *int64   `json:"foff,omitempty"`    // frequency offset, Hz
	FTStat  *int     `json:"ftstat,omitempty"`  // fine timestamp status
	FTVer   *int     `json:"ftver,omitempty"`   // fine timestamp version
	FTDelta *int     `json:"ftdelta,omitempty"` // fine timestamp quality
}

// Stat is the gateway's periodic status report (PROTOCOL.TXT §4, "stat").
type Stat struct {
	Time StatTime `json:"time"`           // gateway clock, see ParseTime
	Lati *float64 `json:"lati,omitempty"` // degrees
	Long *float64 `json:"long,omitempty"` // degrees
	Alti *float64 `json:"alti,omitempty"` // metres
	// The counters are nil when the forwarder left them out or sent null
	// (some send a stat with only a position): absent is not zero.
	RXNb *uint32  `json:"rxnb,omitempty"` // frames received
	RXOK *uint32  `json:"rxok,omitempty"` // frames received with a good CRC
	RXFW *uint32  `json:"rxfw,omitempty"` // frames forwarded
	ACKR *float64 `json:"ackr,omitempty"` // % of upstream datagrams acknowledged
	DWNb *uint32  `json:"dwnb,omitempty"` // downlink datagrams received
	TXNb *uint32  `json:"txnb,omitempty"` // frames emitted
	Temp *float64 `json:"temp,omitempty"` // v2: concentrator temperature, °C
}

// PullRespBody is the JSON object of a PULL_RESP.
type PullRespBody struct {
	TXPK TXPK `json:"txpk"`
}

// TXPK is one frame for the gateway to transmit (PROTOCOL.TXT §6).
type TXPK struct {
	Imme bool     `json:"imme,omitempty"` // send immediately, ignoring tmst/tmms
	Tmst *uint32  `json:"tmst,omitempty"` // send when the concentrator counter reaches this
	Tmms *uint64  `json:"tmms,omitempty"` // send at this GPS time, ms
	Freq Freq     `json:"freq"`
	RFCh uint8    `json:"rfch"`
	Powe int8     `json:"powe,omitempty"` // dBm
	Modu string   `json:"modu"`
	Datr DataRate `json:"datr"`
	Codr string   `json:"codr,omitempty"`
	FDev uint32   `json:"fdev,omitempty"` // FSK frequency deviation, Hz
	IPol bool     `json:"ipol"`           // invert polarity: true for LoRaWAN downlinks
	Prea uint16   `json:"prea,omitempty"` // preamble symbols
	Size uint16   `json:"size"`
	Data Payload  `json:"data"`
	NCRC bool     `json:"ncrc,omitempty"` // no CRC: set for Class B beacons
	Brd  *uint8   `json:"brd,omitempty"`
	Ant  *uint8   `json:"ant,omitempty"`
}

// TxAckBody is the JSON object of a TX_ACK.
type TxAckBody struct {
	TxpkAck TxpkAck `json:"txpk_ack"`
}

// TxpkAck reports whether a PULL_RESP was accepted. Error is "NONE" (or
// empty) on success; otherwise one of TOO_LATE, TOO_EARLY, COLLISION_PACKET,
// COLLISION_BEACON, TX_FREQ, TX_POWER, GPS_UNLOCKED. sx1302_hal may instead
// report Warn (e.g. "TX_POWER" with the power actually used in Value).
type TxpkAck struct {
	Error string   `json:"error,omitempty"`
	Warn  string   `json:"warn,omitempty"`
	Value AckValue `json:"value,omitempty"`
}

// AckValue is a TX_ACK "value": a number in most forwarders, a string in
// others (sx1302_hal PROTOCOL.md allows both). It keeps the text as sent.
type AckValue string

// UnmarshalJSON accepts a JSON number or string; null leaves v unchanged.
func (v *AckValue) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = AckValue(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("gwmp: tx_ack value %s: %w", b, ErrField)
	}
	*v = AckValue(n)
	return nil
}

// MarshalJSON writes a number when the text is one, otherwise a string.
func (v AckValue) MarshalJSON() ([]byte, error) {
	if _, err := strconv.ParseFloat(string(v), 64); err == nil && v != "" {
		return []byte(v), nil
	}
	return json.Marshal(string(v))
}

// Freq is a frequency in Hz. On the wire it is a JSON number in MHz with up
// to six decimals; it is parsed from its decimal text, never through a
// float, so 868.1 is exactly 868100000.
type Freq uint64

// UnmarshalJSON implements json.Unmarshaler. null leaves f unchanged.
func (f *Freq) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	hz, err := ParseMHz(string(b))
	if err != nil {
		return err
	}
	*f = Freq(hz)
	return nil
}

// MarshalJSON writes MHz with six decimals, the resolution of the protocol.
func (f Freq) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "%d.%06d", uint64(f)/1e6, uint64(f)%1e6), nil
}

// ParseMHz converts a decimal MHz string ("868.1", "868.100000", "915")
// into Hz exactly. Digits beyond the sixth decimal must be zero.
func ParseMHz(s string) (uint64, error) {
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" || len(intPart) > 7 || !allDigits(intPart) || !allDigits(frac) {
		return 0, fmt.Errorf("gwmp: frequency %q: want decimal MHz: %w", s, ErrField)
	}
	if len(frac) > 6 {
		if strings.Trim(frac[6:], "0") != "" {
			return 0, fmt.Errorf("gwmp: frequency %q: finer than 1 Hz: %w", s, ErrField)
		}
		frac = frac[:6]
	}
	var hz uint64
	for i := 0; i < len(intPart); i++ {
		hz = hz*10 + uint64(intPart[i]-'0')
	}
	for i := 0; i < 6; i++ { // frac padded with zeros to six digits
		hz *= 10
		if i < len(frac) {
			hz += uint64(frac[i] - '0')
		}
	}
	return hz, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// DataRate is "datr": a LoRa identifier such as "SF7BW125" (a JSON string)
// or an FSK bit rate (a JSON number). Exactly one of LoRa and FSK is set.
type DataRate struct {
	LoRa string
	FSK  uint32
}

// String returns the data rate as the forwarder wrote it.
func (d DataRate) String() string {
	if d.LoRa != "" {
		return d.LoRa
	}
	return strconv.FormatUint(uint64(d.FSK), 10)
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *DataRate) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		return json.Unmarshal(b, &d.LoRa)
	}
	v, err := strconv.ParseUint(string(b), 10, 32)
	if err != nil {
		return fmt.Errorf("gwmp: datr %s: %w", b, ErrField)
	}
	d.FSK = uint32(v)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d DataRate) MarshalJSON() ([]byte, error) {
	if d.LoRa != "" {
		return json.Marshal(d.LoRa)
	}
	return strconv.AppendUint(nil, uint64(d.FSK), 10), nil
}

// ParseLoRa splits a LoRa data rate "SF<sf>BW<kHz>" into the spreading
// factor and the bandwidth in Hz ("SF9BW62.5" → 9, 62500).
func (d DataRate) ParseLoRa() (sf uint8, bwHz uint32, err error) {
	s, ok := strings.CutPrefix(d.LoRa, "SF")
	sfs, bws, ok2 := strings.Cut(s, "BW")
	if !ok || !ok2 {
		return 0, 0, fmt.Errorf("gwmp: datr %q: want SF<n>BW<kHz>: %w", d.LoRa, ErrField)
	}
	n, err1 := strconv.ParseUint(sfs, 10, 8)
	khz, err2 := ParseMHz(bws) // same decimal grammar: kHz with up to 6 decimals
	if err1 != nil || err2 != nil || n < 5 || n > 12 || khz == 0 || khz > 1_600_000_000 {
		return 0, 0, fmt.Errorf("gwmp: datr %q: %w", d.LoRa, ErrField)
	}
	return uint8(n), uint32(khz / 1000), nil
}

// Payload is a PHY payload, base64 on the wire. Decoding accepts standard
// and URL-safe alphabets, padded or not, because forwarders differ.
type Payload []byte

// UnmarshalJSON implements json.Unmarshaler.
func (p *Payload) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("gwmp: data: want a base64 string: %w", ErrField)
	}
	s := bytes.TrimRight(b[1:len(b)-1], "=")
	enc := base64.RawStdEncoding
	if bytes.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	out := make([]byte, enc.DecodedLen(len(s)))
	n, err := enc.Decode(out, s)
	if err != nil {
		return fmt.Errorf("gwmp: data: %w: %v", ErrField, err)
	}
	*p = out[:n]
	return nil
}

// MarshalJSON writes padded standard base64, which every forwarder reads.
func (p Payload) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, base64.StdEncoding.EncodedLen(len(p))+2)
	out = append(out, '"')
	out = base64.StdEncoding.AppendEncode(out, p)
	return append(out, '"'), nil
}

// StatTime is stat.time, kept as the gateway wrote it; Time parses it.
type StatTime string

// Time parses the report time: see ParseTime.
func (t StatTime) Time() (time.Time, error) { return ParseTime(string(t)) }

// timeLayouts are the formats forwarders put in rxpk.time and stat.time:
// packet_forwarder v1's "2014-01-12 08:59:28 GMT", ISO 8601 with and without
// fractional seconds, and the compact ISO 8601 basic form.
var timeLayouts = [...]string{
	"2006-01-02 15:04:05 MST",
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"20060102T150405.999999999Z07:00",
	"20060102T150405Z07:00",
}

// ParseTime parses any of the time formats forwarders send, in UTC.
func ParseTime(s string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("gwmp: time %q: unknown format: %w", s, ErrField)
}
