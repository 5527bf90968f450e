// Package chirpstack decodes the few ChirpStack gateway messages a LoRa tap
// needs: gw.Event (as ChirpStack Concentratord publishes it on its ZeroMQ
// event socket), gw.UplinkFrame and gw.GatewayStats (as the ChirpStack
// Gateway Bridge and MQTT Forwarder publish them on
// {region}/gateway/{id}/event/{up,stats}), in protobuf and in the JSON of
// their "json" marshaler (protojson: lowerCamelCase names, enums as names,
// bytes as base64).
//
// Field numbers are those of chirpstack api/proto/gw/gw.proto and
// common/common.proto (ChirpStack v4). The protobuf is read by hand with
// protowire rather than generated code: unknown fields are skipped, so newer
// senders keep working, and the binary stays small. The v3 "legacy"
// tx_info/rx_info fields are not read: a frame carrying only those is
// reported by ErrLegacy.
//
// Concurrency: the package holds no state.
package chirpstack

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Sentinel errors, wrapped with the field that failed.
var (
	// ErrProto is returned when a message is not valid protobuf or a
	// field has the wrong wire type.
	ErrProto = errors.New("malformed protobuf")
	// ErrJSON is returned when a JSON message does not decode.
	ErrJSON = errors.New("malformed json")
	// ErrLegacy is returned for an uplink frame with only the ChirpStack v3
	// tx_info_legacy/rx_info_legacy fields.
	ErrLegacy = errors.New("v3 legacy uplink format")
	// ErrEmpty is returned for an Event with neither an uplink nor stats
	// (for instance a mesh event, which a tap does not attest).
	ErrEmpty = errors.New("event carries no uplink or stats")
)

// CRC status (gw.CRCStatus).
const (
	NoCRC  = 0
	BadCRC = 1
	CRCOK  = 2
)

// UplinkFrame is a received frame (gw.UplinkFrame with tx_info and rx_info).
type UplinkFrame struct {
	PHYPayload []byte
	Frequency  uint32 // Hz
	// Exactly one of LoRa and FSK is set for the modulations attested;
	// LRFHSS marks an LR-FHSS frame.
	LoRa   *LoRaModulation
	FSK    *FSKModulation
	LRFHSS bool
	RX     RxInfo
}

// LoRaModulation is gw.LoraModulationInfo.
type LoRaModulation struct {
	Bandwidth       uint32 // Hz
	SpreadingFactor uint32
	CodeRate        string // "4/5", …; "" if unknown
}

// FSKModulation is gw.FskModulationInfo.
type FSKModulation struct {
	FrequencyDeviation uint32
	Datarate           uint32 // bit/s
}

// RxInfo is gw.UplinkRxInfo.
type RxInfo struct {
	GatewayID         string // 16 hex digits as sent
	UplinkID          uint32
	GWTime            time.Time // zero when absent
	TimeSinceGPSEpoch *time.Duration
	RSSI              int32
	SNR               float32
	Channel, RFChain  uint32
	Board, Antenna    uint32
	Context           []byte // concentratord: the concentrator counter, 4 bytes big-endian
	CRCStatus         int32
	Location          *Location
}

// Location is common.Location.
type Location struct {
	Latitude, Longitude, Altitude float64
}

// GatewayStats is gw.GatewayStats (the counters since the previous report).
type GatewayStats struct {
	GatewayID         string
	Time              time.Time
	Location          *Location
	RXReceived        uint32
	RXReceivedOK      uint32
	TXReceived        uint32
	TXEmitted         uint32
	HaveRX, HaveTX    bool
	GatewayIDFromByte bool // gateway_id came from gateway_id_legacy (bytes)
}

// Event is gw.Event: exactly one of Uplink and Stats is set.
type Event struct {
	Uplink *UplinkFrame
	Stats  *GatewayStats
}

// codeRates is gw.CodeRate's text by enum number (0: undefined).
var codeRates = [...]string{"", "4/5", "4/6", "4/7", "4/8", "3/8", "2/6", "1/4", "1/6", "5/6", "4/5LI", "4/6LI", "4/8LI"}

// codeRateText maps gw.CodeRate's number to text; "" if unknown.
func codeRateText(n uint64) string {
	if n < uint64(len(codeRates)) {
		return codeRates[n]
	}
	return ""
}

// codeRateNames are the protojson enum names, by number.
var codeRateNames = [...]string{"", "CR_4_5", "CR_4_6", "CR_4_7", "CR_4_8", "CR_3_8", "CR_2_6", "CR_1_4", "CR_1_6", "CR_5_6", "CR_LI_4_5", "CR_LI_4_6", "CR_LI_4_8"}

// codeRateName maps a protojson enum name ("CR_4_5") to text; "" if unknown.
func codeRateName(s string) string {
	for i, n := range codeRateNames {
		if i > 0 && n == s {
			return codeRates[i]
		}
	}
	return ""
}

// fields walks the top-level fields of a message, calling f with each
// field's number, wire type and value (varint/fixed value in v, bytes in b).
func fields(msg []byte, what string, f func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return fmt.Errorf("chirpstack: %s: tag: %w: %v", what, ErrProto, protowire.ParseError(n))
		}
		msg = msg[n:]
		var v uint64
		var b []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(msg)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(msg)
			v = uint64(x)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(msg)
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(msg)
		default:
			n = protowire.ConsumeFieldValue(num, typ, msg)
		}
		if n < 0 {
			return fmt.Errorf("chirpstack: %s: field %d: %w: %v", what, num, ErrProto, protowire.ParseError(n))
		}
		msg = msg[n:]
		if err := f(num, typ, v, b); err != nil {
			return err
		}
	}
	return nil
}

func want(what string, num protowire.Number, got, want protowire.Type) error {
	if got != want {
		return fmt.Errorf("chirpstack: %s field %d: wire type %d, want %d: %w", what, num, got, want, ErrProto)
	}
	return nil
}

// DecodeEvent decodes a gw.Event.
func DecodeEvent(b []byte) (Event, error) {
	var ev Event
	err := fields(b, "event", func(num protowire.Number, typ protowire.Type, _ uint64, v []byte) error {
		switch num {
		case 1, 2:
			if err := want("event", num, typ, protowire.BytesType); err != nil {
				return err
			}
			if num == 1 {
				u, err := DecodeUplinkFrame(v)
				if err != nil {
					return err
				}
				ev.Uplink, ev.Stats = &u, nil
			} else {
				s, err := DecodeGatewayStats(v)
				if err != nil {
					return err
				}
				ev.Stats, ev.Uplink = &s, nil
			}
		}
		return nil
	})
	if err != nil {
		return Event{}, err
	}
	if ev.Uplink == nil && ev.Stats == nil {
		return Event{}, ErrEmpty
	}
	return ev, nil
}

// DecodeUplinkFrame decodes a gw.UplinkFrame.
func DecodeUplinkFrame(b []byte) (UplinkFrame, error) {
	var u UplinkFrame
	var haveTx, haveRx, legacy bool
	err := fields(b, "uplink frame", func(num protowire.Number, typ protowire.Type, _ uint64, v []byte) error {
		switch num {
		case 1:
			if err := want("uplink frame", num, typ, protowire.BytesType); err != nil {
				return err
			}
			u.PHYPayload = append([]byte(nil), v...)
		case 2, 3:
			legacy = true
		case 4:
			haveTx = true
			if err := want("uplink frame", num, typ, protowire.BytesType); err != nil {
				return err
			}
			return decodeTxInfo(v, &u)
		case 5:
			haveRx = true
			if err := want("uplink frame", num, typ, protowire.BytesType); err != nil {
				return err
			}
			return decodeRxInfo(v, &u.RX)
		}
		return nil
	})
	if err != nil {
		return UplinkFrame{}, err
	}
	if !haveTx || !haveRx {
		if legacy {
			return UplinkFrame{}, ErrLegacy
		}
		return UplinkFrame{}, fmt.Errorf("chirpstack: uplink frame without tx_info or rx_info: %w", ErrProto)
	}
	return u, nil
}

func decodeTxInfo(b []byte, u *UplinkFrame) error {
	return fields(b, "tx_info", func(num protowire.Number, typ protowire.Type, x uint64, v []byte) error {
		switch num {
		case 1:
			if err := want("tx_info", num, typ, protowire.VarintType); err != nil {
				return err
			}
			u.Frequency = uint32(x)
		case 2:
			if err := want("tx_info", num, typ, protowire.BytesType); err != nil {
				return err
			}
			return decodeModulation(v, u)
		}
		return nil
	})
}

func decodeModulation(b []byte, u *UplinkFrame) error {
	return fields(b, "modulation", func(num protowire.Number, typ protowire.Type, _ uint64, v []byte) error {
		switch num {
		case 3:
			if err := want("modulation", num, typ, protowire.BytesType); err != nil {
				return err
			}
			m := &LoRaModulation{}
			var legacy string
			err := fields(v, "lora", func(num protowire.Number, typ protowire.Type, x uint64, s []byte) error {
				switch {
				case num == 1 && typ == protowire.VarintType:
					m.Bandwidth = uint32(x)
				case num == 2 && typ == protowire.VarintType:
					m.SpreadingFactor = uint32(x)
				case num == 3 && typ == protowire.BytesType:
					legacy = string(s)
				case num == 5 && typ == protowire.VarintType:
					m.CodeRate = codeRateText(x)
				}
				return nil
			})
			if m.CodeRate == "" {
				m.CodeRate = legacy
			}
			u.LoRa, u.FSK, u.LRFHSS = m, nil, false
			return err
		case 4:
			if err := want("modulation", num, typ, protowire.BytesType); err != nil {
				return err
			}
			m := &FSKModulation{}
			err := fields(v, "fsk", func(num protowire.Number, typ protowire.Type, x uint64, _ []byte) error {
				switch {
				case num == 1 && typ == protowire.VarintType:
					m.FrequencyDeviation = uint32(x)
				case num == 2 && typ == protowire.VarintType:
					m.Datarate = uint32(x)
				}
				return nil
			})
			u.FSK, u.LoRa, u.LRFHSS = m, nil, false
			return err
		case 5:
			u.LRFHSS, u.LoRa, u.FSK = true, nil, nil
		}
		return nil
	})
}

func decodeRxInfo(b []byte, r *RxInfo) error {
	return fields(b, "rx_info", func(num protowire.Number, typ protowire.Type, x uint64, v []byte) error {
		var err error
		switch num {
		case 1:
			if err = want("rx_info", num, typ, protowire.BytesType); err == nil {
				r.GatewayID = string(v)
			}
		case 2:
			if err = want("rx_info", num, typ, protowire.VarintType); err == nil {
				r.UplinkID = uint32(x)
			}
		case 3:
			if err = want("rx_info", num, typ, protowire.BytesType); err == nil {
				r.GWTime, err = decodeTimestamp(v)
			}
		case 4:
			if err = want("rx_info", num, typ, protowire.BytesType); err == nil {
				var d time.Duration
				d, err = decodeDuration(v)
				r.TimeSinceGPSEpoch = &d
			}
		case 6:
			if err = want("rx_info", num, typ, protowire.VarintType); err == nil {
				r.RSSI = int32(x) // int32 is sign-extended to 64 bits on the wire
			}
		case 7:
			if err = want("rx_info", num, typ, protowire.Fixed32Type); err == nil {
				r.SNR = math.Float32frombits(uint32(x))
			}
		case 8, 9, 10, 11, 16:
			if err = want("rx_info", num, typ, protowire.VarintType); err == nil {
				switch num {
				case 8:
					r.Channel = uint32(x)
				case 9:
					r.RFChain = uint32(x)
				case 10:
					r.Board = uint32(x)
				case 11:
					r.Antenna = uint32(x)
				case 16:
					r.CRCStatus = int32(x)
				}
			}
		case 12:
			if err = want("rx_info", num, typ, protowire.BytesType); err == nil {
				r.Location, err = decodeLocation(v)
			}
		case 13:
			if err = want("rx_info", num, typ, protowire.BytesType); err == nil {
				r.Context = append([]byte(nil), v...)
			}
		}
		return err
	})
}

func decodeLocation(b []byte) (*Location, error) {
	var l Location
	err := fields(b, "location", func(num protowire.Number, typ protowire.Type, x uint64, _ []byte) error {
		if num < 1 || num > 3 {
			return nil
		}
		if err := want("location", num, typ, protowire.Fixed64Type); err != nil {
			return err
		}
		f := math.Float64frombits(x)
		switch num {
		case 1:
			l.Latitude = f
		case 2:
			l.Longitude = f
		case 3:
			l.Altitude = f
		}
		return nil
	})
	return &l, err
}

// decodeTimestamp reads google.protobuf.Timestamp (and Duration: same
// fields) as seconds and nanos.
func decodeSecNanos(b []byte, what string) (sec int64, nanos int32, err error) {
	err = fields(b, what, func(num protowire.Number, typ protowire.Type, x uint64, _ []byte) error {
		switch num {
		case 1:
			if err := want(what, num, typ, protowire.VarintType); err != nil {
				return err
			}
			sec = int64(x)
		case 2:
			if err := want(what, num, typ, protowire.VarintType); err != nil {
				return err
			}
			nanos = int32(x)
		}
		return nil
	})
	if err == nil && (nanos < -999_999_999 || nanos > 999_999_999) {
		err = fmt.Errorf("chirpstack: %s nanos %d: %w", what, nanos, ErrProto)
	}
	return sec, nanos, err
}

func decodeTimestamp(b []byte) (time.Time, error) {
	sec, nanos, err := decodeSecNanos(b, "timestamp")
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(sec, int64(nanos)).UTC(), nil
}

func decodeDuration(b []byte) (time.Duration, error) {
	sec, nanos, err := decodeSecNanos(b, "duration")
	if err != nil {
		return 0, err
	}
	if sec > math.MaxInt64/int64(time.Second)-1 || sec < math.MinInt64/int64(time.Second)+1 {
		return 0, fmt.Errorf("chirpstack: duration %d s: %w", sec, ErrProto)
	}
	return time.Duration(sec)*time.Second + time.Duration(nanos), nil
}

// DecodeGatewayStats decodes a gw.GatewayStats.
func DecodeGatewayStats(b []byte) (GatewayStats, error) {
	var s GatewayStats
	var legacyID []byte
	err := fields(b, "gateway stats", func(num protowire.Number, typ protowire.Type, x uint64, v []byte) error {
		var err error
		switch num {
		case 1:
			if err = want("gateway stats", num, typ, protowire.BytesType); err == nil {
				legacyID = v
			}
		case 17:
			if err = want("gateway stats", num, typ, protowire.BytesType); err == nil {
				s.GatewayID = string(v)
			}
		case 2:
			if err = want("gateway stats", num, typ, protowire.BytesType); err == nil {
				s.Time, err = decodeTimestamp(v)
			}
		case 3:
			if err = want("gateway stats", num, typ, protowire.BytesType); err == nil {
				s.Location, err = decodeLocation(v)
			}
		case 5, 6, 7, 8:
			if err = want("gateway stats", num, typ, protowire.VarintType); err == nil {
				switch num {
				case 5:
					s.RXReceived = uint32(x)
				case 6:
					s.RXReceivedOK = uint32(x)
				case 7:
					s.TXReceived = uint32(x)
				case 8:
					s.TXEmitted = uint32(x)
				}
			}
		}
		return err
	})
	if err != nil {
		return GatewayStats{}, err
	}
	// proto3 leaves zero counters off the wire: absent means 0 here.
	s.HaveRX, s.HaveTX = true, true
	if s.GatewayID == "" && len(legacyID) == 8 {
		s.GatewayID = fmt.Sprintf("%016x", legacyID)
		s.GatewayIDFromByte = true
	}
	return s, nil
}

// NormalizeEUI returns a gateway id as 16 upper-case hex digits, or an
// error when it is not one.
func NormalizeEUI(id string) (string, error) {
	if len(id) != 16 {
		return "", fmt.Errorf("chirpstack: gateway id %q: want 16 hex digits: %w", id, ErrProto)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return "", fmt.Errorf("chirpstack: gateway id %q: want 16 hex digits: %w", id, ErrProto)
		}
	}
	return strings.ToUpper(id), nil
}
