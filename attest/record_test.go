package attest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/edge-agent/edge-agent/drivers"
	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func ptr[T any](v T) *T { return &v }

// knownClaims are fixed claims of every kind, for the known-answer tests.
func knownClaims() []struct {
	name string
	c    Claims
} {
	var chain [16]byte
	for i := range chain {
		chain[i] = byte(0xc0 + i)
	}
	var prev [32]byte
	for i := range prev {
		prev[i] = byte(i)
	}
	boot := []byte("0123456789abcdef")
	loc := &Location{Lat: 52.520008, Lon: 13.404954, AltMSL: drivers.F64(34.5), TimeUnixNano: 1_750_000_000_000_000_000, Mode: 3, Sats: drivers.U8(11), HDOP: drivers.F64(0.9)}
	return []struct {
		name string
		c    Claims
	}{
		{"boot", Claims{Chain: chain, Seq: 1, Time: 1_750_000_000_123_456_789, Kind: KindBoot, Source: "agent",
			Obs: Boot{Version: "v0.1.0", Reason: BootNewChain}, Boot: boot}},
		{"gnss", Claims{Chain: chain, Seq: 2, Prev: prev, Time: 1_750_000_001_000_000_000, Kind: drivers.KindGNSSFix, Source: "gps0",
			Obs: drivers.Fix{TimeUnixNano: 1_750_000_000_000_000_000, Lat: 52.520008, Lon: 13.404954, AltMSL: drivers.F64(34.5), Mode: drivers.Fix3D, Sats: drivers.U8(11), HDOP: drivers.F64(0.9)},
			Loc: loc, Boot: boot}},
		{"lora", Claims{Chain: chain, Seq: 3, Prev: prev, Time: 1_750_000_002_000_000_000, Kind: drivers.KindLoRaRX, Source: "concentrator",
			Obs: drivers.LoRaRX{SHA256: prev[:], Size: 23, FreqHz: 868_100_000, Mod: "LORA", SF: 7, BWHz: 125_000, CodeRate: "4/5",
				DataRate: "SF7BW125", RSSI: -57, SNR: 9.5, Chan: 2, RFChain: 1, Tmst: 3_512_348_611, Gateway: "aa555a0000000101",
				MType: "UnconfirmedDataUp", DevAddr: "26011f2a", FCnt: ptr(uint32(42))},
			Loc: loc, Boot: boot}},
		{"loratx", Claims{Chain: chain, Seq: 7, Prev: prev, Time: 1_750_000_006_000_000_000, Kind: drivers.KindLoRaTX, Source: "hotspot",
			Obs: drivers.LoRaTX{Gateway: "AA555A0000000101", Upstream: "helium", SHA256: prev[:], Size: 17, FreqHz: 869_525_000, Mod: "LORA",
				DataRate: "SF9BW125", CodeRate: "4/5", PowerDBm: 27, RFChain: 0, Tmst: ptr(uint32(3_513_348_611)), IPol: true, Token: 0x1234,
				Ack: "ok", Warn: "TX_POWER", Value: "14", DelayUS: 1840, MType: "UnconfirmedDataDown", DevAddr: "26011F2A", FCnt: ptr(uint32(7)), FPort: ptr(uint8(1))},
			Loc: loc, Boot: boot}},
		{"lorarx2", Claims{Chain: chain, Seq: 8, Prev: prev, Time: 1_750_000_007_000_000_000, Kind: drivers.KindLoRaRX, Source: "hotspot",
			Obs: drivers.LoRaRX{SHA256: prev[:], Size: 23, FreqHz: 868_800_000, Mod: "FSK", DataRate: "50000", RSSI: -81, Chan: 8, RFChain: 1,
				Tmst: 12, Gateway: "AA555A0000000101", MType: "UnconfirmedDataUp", DevAddr: "26011F2A", FCnt: ptr(uint32(43)), FPort: ptr(uint8(2)),
				GWTime: 1_750_000_006_900_000_000}}},
		{"env", Claims{Chain: chain, Seq: 4, Prev: prev, Time: 1_750_000_003_000_000_000, Kind: drivers.KindEnvSample, Source: "bme280",
			Obs: drivers.EnvSample{Chip: "bme280", TempC: 21.37, PressurePa: 101_325.5, HumidityPct: ptr(45.2)}}},
		{"camera", Claims{Chain: chain, Seq: 5, Prev: prev, Time: 1_750_000_004_000_000_000, Kind: drivers.KindCameraFile, Source: "dashcam",
			Obs: drivers.CameraFile{Name: "2025/06/15/0001.mp4", Size: 12_345_678, SHA256: prev[:], MTimeUnixNano: 1_750_000_003_500_000_000}}},
		{"gap", Claims{Chain: chain, Seq: 600, Prev: prev, Time: 1_750_000_005_000_000_000, Kind: KindGap, Source: "agent",
			Obs: Gap{From: 6, To: 599, Reason: GapReasonQuota}}},
		// Fields added with issue #18: zero is a value (a parked receiver's
		// speed 0, 0 m altitude), fix quality, error estimates, the rollover
		// flag, and the time quality claim.
		{"gnss-quality", Claims{Chain: chain, Seq: 601, Prev: prev, Time: 1_750_000_006_000_000_000, Kind: drivers.KindGNSSFix, Source: "gps0",
			Obs: drivers.Fix{TimeUnixNano: 1_750_000_006_000_000_000, Lat: 52.520008, Lon: 13.404954, AltMSL: drivers.F64(0), SpeedMS: drivers.F64(0),
				Mode: drivers.Fix3D, Sats: drivers.U8(14), HDOP: drivers.F64(0.78), Quality: drivers.U8(drivers.QualityRTKFixed),
				PDOP: drivers.F64(1.31), VDOP: drivers.F64(1.05), HAccM: drivers.F64(0.014), VAccM: drivers.F64(0.021), RolloverWeeks: 1024},
			Loc: &Location{Lat: 52.520008, Lon: 13.404954, AltMSL: drivers.F64(0), TimeUnixNano: 1_750_000_005_000_000_000, Mode: 3,
				Sats: drivers.U8(14), HDOP: drivers.F64(0.78), Quality: drivers.U8(4), HAccM: drivers.F64(0.014)},
			Boot: boot, TQ: &TimeQuality{Source: TimeGNSS, OffsetNS: ptr(int64(42_000_000))}}},
		{"unsynced", Claims{Chain: chain, Seq: 602, Prev: prev, Time: 86_400_000_000_000, Kind: drivers.KindCounter, Source: "sim",
			Obs: drivers.Counter{N: 1}, Boot: boot, TQ: &TimeQuality{Source: TimeUnsync}}},
		// Issue #20: vehicle and energy records. An odometer-less car (no
		// odo_km), a hashed VIN, a flagged meter counter signed as read.
		{"vehicle-obd", Claims{Chain: chain, Seq: 604, Prev: prev, Time: 1_750_000_008_000_000_000, Kind: drivers.KindVehicleOBD, Source: "car",
			Obs: drivers.VehicleOBD{Protocol: "A6", SpeedKmh: drivers.F64(50), RPM: drivers.F64(1726), CoolantC: drivers.F64(83), FuelPct: drivers.F64(100)},
			Loc: loc, Boot: boot}},
		{"vehicle-vin", Claims{Chain: chain, Seq: 605, Prev: prev, Time: 1_750_000_009_000_000_000, Kind: drivers.KindVehicleVIN, Source: "car",
			Obs: drivers.VehicleVIN{SHA256: prev[:]}, Boot: boot}},
		{"vehicle-dtc", Claims{Chain: chain, Seq: 606, Prev: prev, Time: 1_750_000_010_000_000_000, Kind: drivers.KindVehicleDTC, Source: "car",
			Obs: drivers.VehicleDTC{Codes: []string{"P0133", "U0123"}}, Boot: boot}},
		{"energy", Claims{Chain: chain, Seq: 607, Prev: prev, Time: 1_750_000_011_000_000_000, Kind: drivers.KindEnergySample, Source: "meter",
			Obs: drivers.EnergySample{Profile: "sdm630", ImportWh: drivers.F64(900_000), ExportWh: drivers.F64(10_250), PowerW: 2824,
				VoltageV: 230.5, CurrentA: 12.25, FreqHz: 50, Flags: []string{"import_back"}}, Boot: boot}},
		{"ntp", Claims{Chain: chain, Seq: 603, Prev: prev, Time: 1_750_000_007_000_000_000, Kind: drivers.KindCounter, Source: "sim",
			Obs: drivers.Counter{N: 2}, Boot: boot, TQ: &TimeQuality{Source: TimeNTP, OffsetNS: ptr(int64(-3_000_000)), MaxErrorNS: ptr(int64(16_000_000))}}},
		{"update", Claims{Chain: chain, Seq: 604, Prev: prev, Time: 1_750_000_006_000_000_000, Kind: KindUpdate, Source: "agent",
			Obs: Update{Event: UpdateRollback, From: "0.3.0", To: "0.2.1", Reason: "no READY within 2m0s", At: 1_750_000_005_500_000_000}}},
		{"cert", Claims{Chain: chain, Seq: 2, Prev: prev, Time: 1_750_000_006_000_000_000, Kind: KindCert, Source: "agent",
			Obs: Cert{DER: []byte{0x30, 0x03, 0x02, 0x01, 0x01}}}},
	}
}

func goldenHex(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(hex.EncodeToString(got)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./attest -run TestKnownAnswer -update to create): %v", err)
	}
	if g := hex.EncodeToString(got); g != strings.TrimSpace(string(want)) {
		t.Fatalf("%s differs:\n got %s\nwant %s", path, g, strings.TrimSpace(string(want)))
	}
}

// TestKnownAnswer pins the exact bytes of the format: a fixed key and fixed
// claims must give fixed payload and COSE bytes (Ed25519 is deterministic).
func TestKnownAnswer(t *testing.T) {
	s := testSigner(t, 0)
	for _, tt := range knownClaims() {
		t.Run(tt.name, func(t *testing.T) {
			raw, payload := signClaims(t, s, &tt.c)
			goldenHex(t, tt.name+".payload.hex", payload)
			goldenHex(t, tt.name+".cose.hex", raw)
		})
	}
}

// TestPayloadLayout checks the payload against the format by a generic
// decoder, independently of the encoder's structs.
func TestPayloadLayout(t *testing.T) {
	for _, tt := range knownClaims() {
		t.Run(tt.name, func(t *testing.T) {
			payload, err := EncodePayload(&tt.c)
			if err != nil {
				t.Fatal(err)
			}
			var m map[uint64]cbor.RawMessage
			if err := cbor.Unmarshal(payload, &m); err != nil {
				t.Fatalf("payload is not a map with uint keys: %v", err)
			}
			want := []uint64{1, 2, 3, 4, 5, 6, 7}
			if tt.c.Loc != nil {
				want = append(want, 8)
			}
			if tt.c.Boot != nil {
				want = append(want, 9)
			}
			if tt.c.TQ != nil {
				want = append(want, 10)
			}
			for _, k := range want {
				if _, ok := m[k]; !ok {
					t.Errorf("key %d missing", k)
				}
			}
			if len(m) != len(want) {
				t.Errorf("payload has %d keys, want %d", len(m), len(want))
			}
			// Keys appear in ascending order right after the map head.
			if payload[0] != 0xa0+byte(len(want)) || payload[1] != 0x01 {
				t.Errorf("payload starts %x, want map of %d with key 1 first", payload[:2], len(want))
			}
			var chain, prev []byte
			var seq, tm uint64
			var kind string
			mustUnmarshal(t, m[1], &chain)
			mustUnmarshal(t, m[2], &seq)
			mustUnmarshal(t, m[3], &prev)
			mustUnmarshal(t, m[4], &tm)
			mustUnmarshal(t, m[5], &kind)
			if !bytes.Equal(chain, tt.c.Chain[:]) || seq != tt.c.Seq || !bytes.Equal(prev, tt.c.Prev[:]) || tm != uint64(tt.c.Time) || kind != tt.c.Kind {
				t.Errorf("claims on the wire = %x %d %x %d %q, want %x %d %x %d %q", chain, seq, prev, tm, kind,
					tt.c.Chain, tt.c.Seq, tt.c.Prev, tt.c.Time, tt.c.Kind)
			}
			if m[7][0]>>5 != 5 {
				t.Errorf("obs is major type %d, want a map", m[7][0]>>5)
			}
		})
	}
}

func mustUnmarshal(tb testing.TB, b []byte, v any) {
	tb.Helper()
	if err := cbor.Unmarshal(b, v); err != nil {
		tb.Fatalf("unmarshal %x into %T: %v", b, v, err)
	}
}

// TestSignPayloadMatchesGoCose checks the hand-written envelope against
// go-cose's Sign1, byte for byte.
func TestSignPayloadMatchesGoCose(t *testing.T) {
	for _, n := range []byte{0, 1, 2} {
		s := testSigner(t, n)
		for _, tt := range knownClaims() {
			payload, err := EncodePayload(&tt.c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := SignPayload(s, payload)
			if err != nil {
				t.Fatal(err)
			}
			hdr := cose.Headers{Protected: cose.ProtectedHeader{
				cose.HeaderLabelAlgorithm: cose.AlgorithmEdDSA,
				cose.HeaderLabelKeyID:     s.KeyID(),
			}}
			want, err := cose.Sign1(nil, s, hdr, payload, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("key %d %s: SignPayload\n %x\ngo-cose Sign1\n %x", n, tt.name, got, want)
			}
		}
	}
	// Lengths that need 1-, 2- and 4-byte CBOR heads.
	s := testSigner(t, 0)
	for _, size := range []int{1, 23, 24, 255, 256, 65535, 65536} {
		payload := bytes.Repeat([]byte{0xa0}, size)
		got, err := SignPayload(s, payload)
		if err != nil {
			t.Fatal(err)
		}
		hdr := cose.Headers{Protected: cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmEdDSA, cose.HeaderLabelKeyID: s.KeyID()}}
		want, err := cose.Sign1(nil, s, hdr, payload, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("payload of %d bytes: SignPayload and go-cose differ", size)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	s := testSigner(t, 0)
	for _, tt := range knownClaims() {
		t.Run(tt.name, func(t *testing.T) {
			raw, payload := signClaims(t, s, &tt.c)
			r, err := Decode(raw)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if err := r.Verify(); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !bytes.Equal(r.Raw, raw) || !bytes.Equal(r.Payload, payload) || r.Alg != cose.AlgorithmEdDSA ||
				!bytes.Equal(r.KeyID, s.KeyID()) || r.DeviceID != s.DeviceID() || len(r.Signature) != 64 {
				t.Fatalf("record fields wrong: %+v", r)
			}
			obs, ok := r.Claims.Obs.(cbor.RawMessage)
			if !ok {
				t.Fatalf("decoded Obs is %T, want cbor.RawMessage", r.Claims.Obs)
			}
			em, err := cbor.CoreDetEncOptions().EncMode()
			if err != nil {
				t.Fatal(err)
			}
			wantObs, err := em.Marshal(tt.c.Obs)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(obs, wantObs) {
				t.Fatalf("obs bytes = %x, want %x", obs, wantObs)
			}
			got, want := r.Claims, tt.c
			got.Obs, want.Obs = nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("claims = %+v, want %+v", got, want)
			}
			again, err := EncodePayload(&r.Claims)
			if err != nil || !bytes.Equal(again, payload) {
				t.Fatalf("re-encoding decoded claims: %v, equal %v", err, bytes.Equal(again, payload))
			}
		})
	}
}

func TestEncodePayloadRejects(t *testing.T) {
	var chain [16]byte
	base := func() *Claims {
		return &Claims{Chain: chain, Seq: 5, Time: 1, Kind: drivers.KindCounter, Source: "sim", Obs: drivers.Counter{N: 1}}
	}
	tests := []struct {
		name   string
		change func(c *Claims)
		say    string
	}{
		{"seq 0", func(c *Claims) { c.Seq = 0 }, "seq is 0"},
		{"negative time", func(c *Claims) { c.Time = -1 }, "before 1970"},
		{"empty kind", func(c *Claims) { c.Kind = "" }, "kind is empty"},
		{"long kind", func(c *Claims) { c.Kind = strings.Repeat("k", MaxKindLen+1) }, "kind is"},
		{"bad utf8 source", func(c *Claims) { c.Source = "\xff" }, "UTF-8"},
		{"short boot", func(c *Claims) { c.Boot = []byte{1, 2, 3} }, "boot id"},
		{"seq 1 with prev", func(c *Claims) { c.Seq = 1; c.Prev[0] = 1 }, "all-zero prev"},
		{"nil obs", func(c *Claims) { c.Obs = nil }, "obs is nil"},
		{"obs not a map", func(c *Claims) { c.Obs = "hello" }, "CBOR map"},
		{"obs raw array", func(c *Claims) { c.Obs = cbor.RawMessage{0x80} }, "CBOR map"},
		{"obs raw garbage", func(c *Claims) { c.Obs = cbor.RawMessage{0xa1, 0x01} }, "obs"},
		{"obs bad utf8", func(c *Claims) { c.Obs = map[string]string{"a": "\xff"} }, "obs"},
		{"loc no fix", func(c *Claims) { c.Loc = &Location{Mode: 1} }, "fix mode"},
		{"loc lat", func(c *Claims) { c.Loc = &Location{Lat: 91, Mode: 3} }, "latitude"},
		{"loc NaN lon", func(c *Claims) { c.Loc = &Location{Lon: math.NaN(), Mode: 3} }, "longitude"},
		{"loc NaN hdop", func(c *Claims) { c.Loc = &Location{Mode: 3, HDOP: ptr(math.NaN())} }, "hdop"},
		{"loc inf alt", func(c *Claims) { c.Loc = &Location{Mode: 3, AltMSL: ptr(math.Inf(1))} }, "altitude"},
		{"tq source", func(c *Claims) { c.TQ = &TimeQuality{Source: "sundial"} }, "time source"},
		{"gap backwards", func(c *Claims) { c.Kind = KindGap; c.Obs = Gap{From: 3, To: 2} }, "agent.gap"},
		{"gap covers itself", func(c *Claims) { c.Kind = KindGap; c.Obs = Gap{From: 2, To: 5} }, "agent.gap"},
		{"gap from 0", func(c *Claims) { c.Kind = KindGap; c.Obs = Gap{From: 0, To: 2} }, "agent.gap"},
		{"gap wrong obs", func(c *Claims) { c.Kind = KindGap; c.Obs = drivers.Counter{N: 1} }, "agent.gap"},
		{"boot prev chain", func(c *Claims) { c.Kind = KindBoot; c.Obs = Boot{PrevChain: []byte{1}} }, "prev_chain"},
		{"too big", func(c *Claims) { c.Obs = map[string][]byte{"x": make([]byte, MaxPayloadSize)} }, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.change(c)
			p, err := EncodePayload(c)
			if err == nil {
				t.Fatalf("EncodePayload = %x, want an error", p)
			}
			if !strings.Contains(err.Error(), tt.say) || !strings.HasPrefix(err.Error(), "attest: encode payload") {
				t.Fatalf("error %q does not say %q", err, tt.say)
			}
		})
	}
	if _, err := EncodePayload(base()); err != nil {
		t.Fatalf("base claims rejected: %v", err)
	}
	if _, err := EncodePayload(nil); err == nil {
		t.Fatal("EncodePayload(nil) succeeded")
	}
}

// envelope builds a COSE_Sign1 around arbitrary parts, validly signed, to
// test what Decode accepts.
func envelope(tb testing.TB, s Signer, protected, unprotected, payload []byte) []byte {
	tb.Helper()
	tbs := appendBstr(append([]byte{array4, sigContextLen}, sigContext...), protected)
	tbs = appendBstr(append(tbs, emptyBstr), payload)
	sig, err := s.Sign(nil, tbs)
	if err != nil {
		tb.Fatal(err)
	}
	out := appendBstr([]byte{tagSign1, array4}, protected)
	out = append(out, unprotected...)
	out = appendBstr(out, payload)
	return appendBstr(out, sig)
}

func TestDecodeRejects(t *testing.T) {
	s := testSigner(t, 0)
	b := newChain(t, s, 1)
	good := b.claims(drivers.KindCounter, drivers.Counter{N: 1})
	goodRaw, goodPayload := signClaims(t, s, good)
	prot := appendProtected(nil, cose.AlgorithmEdDSA, s.KeyID())

	reencode := func(f func(m map[any]any)) []byte {
		var m map[any]any
		mustUnmarshal(t, goodPayload, &m)
		f(m)
		p, err := detEnc.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The payload with its keys in reverse order: valid CBOR, not canonical.
	unsorted := []byte{0xa7}
	{
		var m map[uint64]cbor.RawMessage
		mustUnmarshal(t, goodPayload, &m)
		for k := uint64(7); k >= 1; k-- {
			unsorted = append(unsorted, byte(k))
			unsorted = append(unsorted, m[k]...)
		}
	}

	tests := []struct {
		name string
		raw  []byte
	}{
		{"empty", nil},
		{"garbage", []byte("hello world")},
		{"untagged", goodRaw[1:]},
		{"truncated", goodRaw[:len(goodRaw)-1]},
		{"trailing byte", append(bytes.Clone(goodRaw), 0)},
		{"too big", append(bytes.Clone(goodRaw), make([]byte, MaxRecordSize)...)},
		{"unprotected header", envelope(t, s, prot, []byte{0xa1, 0x04, 0x41, 0x00}, goodPayload)},
		{"extra protected param", envelope(t, s, append([]byte{0xa3}, append(prot[1:], 0x03, 0x00)...), []byte{emptyMap}, goodPayload)},
		{"es256", envelope(t, s, appendProtected(nil, cose.AlgorithmES256, s.KeyID()), []byte{emptyMap}, goodPayload)},
		{"short kid", envelope(t, s, appendProtected(nil, cose.AlgorithmEdDSA, s.KeyID()[:31]), []byte{emptyMap}, goodPayload)},
		{"payload not a map", envelope(t, s, prot, []byte{emptyMap}, []byte{0x01})},
		{"unsorted payload", envelope(t, s, prot, []byte{emptyMap}, unsorted)},
		{"unknown key", envelope(t, s, prot, []byte{emptyMap}, reencode(func(m map[any]any) { m[uint64(10)] = uint64(1) }))},
		{"missing source", envelope(t, s, prot, []byte{emptyMap}, reencode(func(m map[any]any) { delete(m, uint64(6)) }))},
		{"missing obs", envelope(t, s, prot, []byte{emptyMap}, reencode(func(m map[any]any) { delete(m, uint64(7)) }))},
		{"chain 15 bytes", envelope(t, s, prot, []byte{emptyMap}, reencode(func(m map[any]any) { m[uint64(1)] = make([]byte, 15) }))},
		{"prev 31 bytes", envelope(t, s, prot, []byte{emptyMap}, reencode(func(m map[any]any) { m[uint64(3)] = make([]byte, 31) }))},
		{"seq 0", envelope(t, s, prot, []byte{emptyMap}, reencode(func(m map[any]any) { m[uint64(2)] = uint64(0) }))},
		{"negative time", envelope(t, s, prot, []byte{emptyMap}, reencode(func(m map[any]any) { m[uint64(4)] = int64(-5) }))},
		{"kind as bytes", envelope(t, s, prot, []byte{emptyMap}, reencode(func(m map[any]any) { m[uint64(5)] = []byte("x") }))},
		{"empty kind", envelope(t, s, prot, []byte{emptyMap}, reencode(func(m map[any]any) { m[uint64(5)] = "" }))},
		{"obs not a map", envelope(t, s, prot, []byte{emptyMap}, reencode(func(m map[any]any) { m[uint64(7)] = uint64(3) }))},
		// 1.5 as float64: the value fits float16, so this is not preferred serialization.
		{"obs wide float", envelope(t, s, prot, []byte{emptyMap}, reencode(func(m map[any]any) {
			m[uint64(7)] = cbor.RawMessage{0xa1, 0x61, 'x', 0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}
		}))},
		{"obs with tag", envelope(t, s, prot, []byte{emptyMap}, reencode(func(m map[any]any) {
			m[uint64(7)] = cbor.RawMessage{0xa1, 0x61, 'x', 0xc1, 0x01}
		}))},
		{"loc unknown field", envelope(t, s, prot, []byte{emptyMap}, reencode(func(m map[any]any) {
			m[uint64(8)] = map[string]any{"lat": 1.0, "lon": 1.0, "t": 1, "mode": 3, "zz": 1}
		}))},
		{"boot 8 bytes", envelope(t, s, prot, []byte{emptyMap}, reencode(func(m map[any]any) { m[uint64(9)] = make([]byte, 8) }))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Decode(tt.raw)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode = %+v, %v; want ErrMalformed", r, err)
			}
		})
	}
	// The envelope helper itself builds acceptable records.
	if _, err := Decode(envelope(t, s, prot, []byte{emptyMap}, goodPayload)); err != nil {
		t.Fatalf("envelope helper: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	s := testSigner(t, 0)
	raw, _ := signClaims(t, s, newChain(t, s, 1).claims(drivers.KindCounter, drivers.Counter{N: 1}))
	// Flip one bit in every byte position; each result must be malformed or
	// fail verification, never pass.
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x01
		r, err := Decode(bad)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("byte %d: Decode error %v does not wrap ErrMalformed", i, err)
			}
			continue
		}
		if err := r.Verify(); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("byte %d flipped: Verify = %v, want ErrBadSignature", i, err)
		}
	}
	// Another key in the header: decodes, does not verify.
	r, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	r.KeyID = testSigner(t, 1).KeyID()
	if err := r.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Verify with another key = %v, want ErrBadSignature", err)
	}
	r.KeyID = r.KeyID[:5]
	if err := r.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Verify with a short key = %v, want ErrBadSignature", err)
	}
}

func TestObsMapAndJSON(t *testing.T) {
	s := testSigner(t, 0)
	cs := knownClaims()
	c := cs[2].c // lora, with loc and boot
	raw, payload := signClaims(t, s, &c)
	r, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := r.ObsMap()
	if err != nil {
		t.Fatal(err)
	}
	wantHash := hex.EncodeToString(c.Prev[:])
	if obs["sha256"] != wantHash || obs["gw"] != "aa555a0000000101" || obs["freq"] != uint64(868_100_000) || obs["rssi"] != float64(-57) {
		t.Fatalf("ObsMap = %v", obs)
	}
	j, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"device":"` + s.DeviceID() + `"`,
		`"chain":"c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"`,
		`"seq":3`,
		`"prev":"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"`,
		`"time":"2025-06-15T15:06:42Z"`,
		`"kind":"lora.rx"`,
		`"sha256":"` + wantHash + `"`,
		`"loc":{"lat":52.520008,"lon":13.404954`,
		`"boot":"30313233343536373839616263646566"`,
		`"payload_sha256":"` + hex.EncodeToString(func() []byte { h := PayloadHash(payload); return h[:] }()) + `"`,
	} {
		if !bytes.Contains(j, []byte(want)) {
			t.Errorf("JSON lacks %s:\n%s", want, j)
		}
	}
	// NaN cannot be JSON; ObsMap spells it.
	c2 := Claims{Chain: c.Chain, Seq: 1, Kind: drivers.KindEnvSample, Obs: map[string]any{"t": math.NaN(), "b": []byte{0xab}}}
	raw, _ = signClaims(t, s, &c2)
	r, err = Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if j, err = r.JSON(); err != nil || !bytes.Contains(j, []byte(`"obs":{"b":"ab","t":"NaN"}`)) {
		t.Fatalf("JSON = %s, %v", j, err)
	}
}
