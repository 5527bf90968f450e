package chirpstack

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// The test messages are built field by field from gw.proto's numbers, the
// way prost (concentratord) and protobuf-go (the gateway bridge) write them.

func msg(fields ...[]byte) []byte {
	var b []byte
	for _, f := range fields {
		b = append(b, f...)
	}
	return b
}

func fVarint(n protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, n, protowire.VarintType), v)
}

func fBytes(n protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, n, protowire.BytesType), v)
}

func fFixed32(n protowire.Number, v uint32) []byte {
	return protowire.AppendFixed32(protowire.AppendTag(nil, n, protowire.Fixed32Type), v)
}

func fDouble(n protowire.Number, v float64) []byte {
	return protowire.AppendFixed64(protowire.AppendTag(nil, n, protowire.Fixed64Type), math.Float64bits(v))
}

func ts(t time.Time) []byte {
	return msg(fVarint(1, uint64(t.Unix())), fVarint(2, uint64(t.Nanosecond())))
}

var phy = []byte{0x40, 0xDA, 0x1B, 0x01, 0x26, 0x80, 0x02, 0x01, 0x0A, 0xCA, 0xFE, 0x01, 0x02, 0x03, 0x04}

// uplinkLoRa is a gw.UplinkFrame as concentratord v4 sends it.
func uplinkLoRa(rssi int32, snr float32, crc uint64) []byte {
	gwTime := time.Date(2026, 5, 1, 12, 0, 0, 123_000_000, time.UTC)
	rssiWire := uint64(int64(rssi)) // int32 is sign-extended
	return msg(
		fBytes(1, phy),
		fBytes(4, msg(fVarint(1, 868_100_000), fBytes(2, fBytes(3, msg(fVarint(1, 125_000), fVarint(2, 7), fVarint(5, 1)))))),
		fBytes(5, msg(fBytes(1, []byte("0016c001ff10a235")), fVarint(2, 4242), fBytes(3, ts(gwTime)),
			fBytes(4, msg(fVarint(1, 1_400_000_000), fVarint(2, 500_000_000))),
			fVarint(6, rssiWire), fFixed32(7, math.Float32bits(snr)), fVarint(8, 2), fVarint(9, 1),
			fBytes(13, []byte{0xD1, 0x5A, 0x00, 0x01}), fVarint(16, crc), fVarint(99, 7))),
	)
}

func stats() []byte {
	return msg(fBytes(17, []byte("0016c001ff10a235")), fBytes(2, ts(time.Date(2026, 5, 1, 12, 0, 30, 0, time.UTC))),
		fBytes(3, msg(fDouble(1, 46.5), fDouble(2, 6.6), fDouble(3, 410))), fVarint(5, 12), fVarint(6, 10), fVarint(8, 1))
}

func TestDecodeEvent(t *testing.T) {
	ev, err := DecodeEvent(fBytes(1, uplinkLoRa(-57, 9.5, CRCOK)))
	if err != nil {
		t.Fatal(err)
	}
	gps := 1_400_000_000*time.Second + 500*time.Millisecond
	want := UplinkFrame{PHYPayload: phy, Frequency: 868_100_000, LoRa: &LoRaModulation{Bandwidth: 125_000, SpreadingFactor: 7, CodeRate: "4/5"},
		RX: RxInfo{GatewayID: "0016c001ff10a235", UplinkID: 4242, GWTime: time.Date(2026, 5, 1, 12, 0, 0, 123_000_000, time.UTC),
			TimeSinceGPSEpoch: &gps, RSSI: -57, SNR: 9.5, Channel: 2, RFChain: 1, Context: []byte{0xD1, 0x5A, 0x00, 0x01}, CRCStatus: CRCOK}}
	if ev.Stats != nil || !reflect.DeepEqual(*ev.Uplink, want) {
		t.Fatalf("uplink\n got %+v\nwant %+v", ev.Uplink, want)
	}
	ev, err = DecodeEvent(fBytes(2, stats()))
	if err != nil {
		t.Fatal(err)
	}
	s := ev.Stats
	if ev.Uplink != nil || s.GatewayID != "0016c001ff10a235" || s.RXReceived != 12 || s.RXReceivedOK != 10 || s.TXReceived != 0 || s.TXEmitted != 1 ||
		s.Location == nil || s.Location.Latitude != 46.5 || s.Time.Second() != 30 {
		t.Fatalf("stats %+v", s)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"truncated", fBytes(1, uplinkLoRa(-57, 9.5, CRCOK))[:20], ErrProto},
		{"wrong wire type", fVarint(1, 5), ErrProto},
		{"mesh event", fBytes(3, msg(fBytes(1, []byte("x")))), ErrEmpty},
		{"legacy only", fBytes(1, msg(fBytes(1, phy), fBytes(2, nil), fBytes(3, nil))), ErrLegacy},
		{"no rx info", fBytes(1, msg(fBytes(1, phy), fBytes(4, nil))), ErrProto},
		{"bad nanos", fBytes(1, msg(fBytes(1, phy), fBytes(4, nil), fBytes(5, fBytes(3, msg(fVarint(2, 2_000_000_000)))))), ErrProto},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeEvent(tt.b); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v; want %v", err, tt.want)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	up := `{"phyPayload":"QNobASaAAgEKyv4BAgME","txInfo":{"frequency":868300000,"modulation":{"lora":{"bandwidth":125000,"spreadingFactor":9,"codeRate":"CR_4_5"}}},
		"rxInfo":{"gatewayId":"0016c001ff10a235","uplinkId":17,"gwTime":"2026-05-01T12:00:00.5Z","timeSinceGpsEpoch":"1400000000.250s","rssi":-101,"snr":-7.25,
		"channel":4,"rfChain":1,"context":"0VoAAQ==","crcStatus":"CRC_OK","metadata":{"region_config_id":"eu868"}}}`
	u, err := UplinkFrameFromJSON([]byte(up))
	if err != nil {
		t.Fatal(err)
	}
	gps := 1_400_000_000*time.Second + 250*time.Millisecond
	if u.Frequency != 868_300_000 || u.LoRa == nil || u.LoRa.SpreadingFactor != 9 || u.LoRa.CodeRate != "4/5" || u.RX.RSSI != -101 || u.RX.SNR != -7.25 ||
		u.RX.CRCStatus != CRCOK || *u.RX.TimeSinceGPSEpoch != gps || u.RX.GWTime.Nanosecond() != 500_000_000 || len(u.PHYPayload) != 15 || len(u.RX.Context) != 4 {
		t.Fatalf("uplink %+v", u)
	}
	fsk, err := UplinkFrameFromJSON([]byte(`{"phyPayload":"AA==","txInfo":{"frequency":868800000,"modulation":{"fsk":{"datarate":50000}}},"rxInfo":{"gatewayId":"0016c001ff10a235","crcStatus":"BAD_CRC"}}`))
	if err != nil || fsk.FSK == nil || fsk.FSK.Datarate != 50000 || fsk.RX.CRCStatus != BadCRC {
		t.Fatalf("fsk %+v %v", fsk, err)
	}
	s, err := GatewayStatsFromJSON([]byte(`{"gatewayId":"0016c001ff10a235","time":"2026-05-01T12:00:30Z","rxPacketsReceived":12,"rxPacketsReceivedOk":10,"txPacketsEmitted":1}`))
	if err != nil || s.RXReceived != 12 || s.TXEmitted != 1 || s.TXReceived != 0 {
		t.Fatalf("stats %+v %v", s, err)
	}
	for _, bad := range []string{`{`, `{"txInfo":{},"rxInfo":{"crcStatus":"MAYBE"}}`, `{"txInfo":{},"rxInfo":{"gwTime":"yesterday"}}`, `{"txInfo":{},"rxInfo":{"timeSinceGpsEpoch":"NaNs"}}`} {
		if _, err := UplinkFrameFromJSON([]byte(bad)); !errors.Is(err, ErrJSON) {
			t.Errorf("%s: err = %v; want ErrJSON", bad, err)
		}
	}
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add(fBytes(1, uplinkLoRa(-57, 9.5, CRCOK)))
	f.Add(fBytes(2, stats()))
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeEvent(b)
		if err == nil && (ev.Uplink == nil) == (ev.Stats == nil) {
			t.Fatalf("event %+v: want exactly one of uplink and stats", ev)
		}
	})
}

func FuzzUplinkJSON(f *testing.F) {
	f.Add([]byte(`{"phyPayload":"AA==","txInfo":{"frequency":1},"rxInfo":{"timeSinceGpsEpoch":"-1.5s"}}`))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = UplinkFrameFromJSON(b) })
}
