// Package gwmp encodes and decodes the Semtech UDP packet forwarder protocol
// (GWMP): protocol version 1 (Lora-net packet_forwarder PROTOCOL.TXT) and
// version 2 (the same file's v2, and sx1302_hal PROTOCOL.md), which adds
// TX_ACK and, in sx1302_hal, per-antenna signal reports ("rsig").
//
// The codec is lenient where real forwarders differ from the text (unpadded
// or URL-safe base64, two stat.time formats, null and unknown JSON fields, an
// empty TX_ACK) and strict where a value would otherwise be guessed (an rxpk
// frequency finer than 1 Hz, a size that disagrees with the data).
//
// Concurrency: the package holds no state; every function is safe to call
// from any goroutine.
package gwmp

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// Protocol versions, byte 0 of every datagram.
const (
	Version1 = 1
	Version2 = 2
)

// Identifier is byte 3 of every datagram (PROTOCOL.TXT §3-§6).
type Identifier uint8

const (
	PushData Identifier = 0x00 // gateway → server: rxpk and stat
	PushAck  Identifier = 0x01 // server → gateway
	PullData Identifier = 0x02 // gateway → server: keep-alive, opens the downlink path
	PullResp Identifier = 0x03 // server → gateway: txpk
	PullAck  Identifier = 0x04 // server → gateway
	TxAck    Identifier = 0x05 // gateway → server: outcome of a PULL_RESP (v2)
)

func (id Identifier) String() string {
	switch id {
	case PushData:
		return "PUSH_DATA"
	case PushAck:
		return "PUSH_ACK"
	case PullData:
		return "PULL_DATA"
	case PullResp:
		return "PULL_RESP"
	case PullAck:
		return "PULL_ACK"
	case TxAck:
		return "TX_ACK"
	}
	return fmt.Sprintf("identifier(0x%02x)", uint8(id))
}

// EUI is a gateway's 64-bit unique identifier, as sent in bytes 4-11.
type EUI [8]byte

// String returns the EUI as 16 upper-case hex digits, the form used in
// drivers.LoRaRX.Gateway.
func (e EUI) String() string {
	var b [16]byte
	hex.Encode(b[:], e[:])
	return strings.ToUpper(string(b[:]))
}

// ParseEUI parses 16 hex digits, with or without '-' or ':' separators.
func ParseEUI(s string) (EUI, error) {
	var e EUI
	clean := strings.NewReplacer("-", "", ":", "").Replace(s)
	if len(clean) != 16 {
		return e, fmt.Errorf("gwmp: parse eui %q: want 16 hex digits: %w", s, ErrField)
	}
	if _, err := hex.Decode(e[:], []byte(clean)); err != nil {
		return e, fmt.Errorf("gwmp: parse eui %q: %w", s, ErrField)
	}
	return e, nil
}

// Header is the fixed part of a datagram. EUI is set only for the
// identifiers that carry one (PUSH_DATA, PULL_DATA, TX_ACK).
type Header struct {
	Version uint8
	Token   uint16
	ID      Identifier
	EUI     EUI
}

// MaxDatagram is the largest datagram the decoder accepts: the largest UDP
// payload over IPv4. A forwarder batches at most a few dozen rxpk, far less.
const MaxDatagram = 65507

// Packet is one decoded datagram.
type Packet struct {
	Header
	// Push is the PUSH_DATA body; nil for other identifiers.
	Push *PushBody
	// Ack is the TX_ACK body; nil when the TX_ACK carried no JSON (which
	// protocol v2 defines as "no error").
	Ack *TxAckBody
	// Pull is the PULL_RESP body (for the gateway-side codec and tests).
	Pull *PullRespBody
}

// DecodeHeader parses the fixed part of a datagram and returns its body: the
// cheap step a multiplexer needs to acknowledge and route a datagram before
// (or without) decoding its JSON. Errors are those of Decode.
func DecodeHeader(b []byte) (Header, []byte, error) {
	var h Header
	if len(b) > MaxDatagram {
		return h, nil, fmt.Errorf("gwmp: decode: %d bytes: %w", len(b), ErrTooLarge)
	}
	if len(b) < 4 {
		return h, nil, fmt.Errorf("gwmp: decode: %d bytes: %w", len(b), ErrShort)
	}
	h.Version, h.Token, h.ID = b[0], binary.BigEndian.Uint16(b[1:3]), Identifier(b[3])
	if h.Version != Version1 && h.Version != Version2 {
		return h, nil, fmt.Errorf("gwmp: decode: version %d: %w", h.Version, ErrVersion)
	}
	body := b[4:]
	switch h.ID {
	case PushData, PullData, TxAck:
		if len(body) < 8 {
			return h, nil, fmt.Errorf("gwmp: decode %v: no gateway eui: %w", h.ID, ErrShort)
		}
		copy(h.EUI[:], body[:8])
		body = body[8:]
	case PushAck, PullAck, PullResp:
	default:
		return h, nil, fmt.Errorf("gwmp: decode: %v: %w", h.ID, ErrIdentifier)
	}
	return h, body, nil
}

// Decode parses one datagram. It accepts every identifier, so the same
// codec serves a server (PUSH_DATA, PULL_DATA, TX_ACK) and a simulated
// gateway in tests (PUSH_ACK, PULL_ACK, PULL_RESP). Errors wrap one of the
// sentinels in errors.go, which name the reason a datagram was refused.
func Decode(b []byte) (Packet, error) {
	var p Packet
	h, body, err := DecodeHeader(b)
	p.Header = h
	if err != nil {
		return p, err
	}
	switch p.ID {
	case PushData:
		if len(body) == 0 {
			return p, fmt.Errorf("gwmp: decode PUSH_DATA: empty body: %w", ErrJSON)
		}
		pb, err := decodePush(body)
		if err != nil {
			return p, fmt.Errorf("gwmp: decode PUSH_DATA: %w: %v", ErrJSON, err)
		}
		p.Push = &pb
	case TxAck:
		// Trailing NULs appear in some forwarders' TX_ACKs; an all-blank
		// body is the v2 "no error" form.
		body = trimBlank(body)
		if len(body) > 0 {
			var ab TxAckBody
			if err := json.Unmarshal(body, &ab); err != nil {
				return p, fmt.Errorf("gwmp: decode TX_ACK: %w: %v", ErrJSON, err)
			}
			p.Ack = &ab
		}
	case PullResp:
		var pr PullRespBody
		if err := json.Unmarshal(body, &pr); err != nil {
			return p, fmt.Errorf("gwmp: decode PULL_RESP: %w: %v", ErrJSON, err)
		}
		p.Pull = &pr
	case PullData, PushAck, PullAck:
		if len(body) != 0 {
			return p, fmt.Errorf("gwmp: decode %v: %d trailing bytes: %w", p.ID, len(body), ErrShort)
		}
	}
	return p, nil
}

func trimBlank(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case 0, ' ', '\t', '\r', '\n':
			b = b[:len(b)-1]
		default:
			return b
		}
	}
	return b
}

// AppendHeader appends the 4-byte header, and the EUI for the identifiers
// that carry one.
func AppendHeader(dst []byte, h Header) []byte {
	dst = append(dst, h.Version, byte(h.Token>>8), byte(h.Token), byte(h.ID))
	switch h.ID {
	case PushData, PullData, TxAck:
		dst = append(dst, h.EUI[:]...)
	}
	return dst
}

// Encode returns the datagram for p: the header and, when set, the JSON
// body of Push, Ack or Pull.
func Encode(p Packet) ([]byte, error) {
	b := AppendHeader(make([]byte, 0, 256), p.Header)
	var body any
	switch {
	case p.Push != nil:
		body = p.Push
	case p.Ack != nil:
		body = p.Ack
	case p.Pull != nil:
		body = p.Pull
	default:
		return b, nil
	}
	j, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("gwmp: encode %v: %w", p.ID, err)
	}
	return append(b, j...), nil
}
