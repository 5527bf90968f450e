package lora

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/lora/gwmp"
)

var testEUI = gwmp.EUI{0xB8, 0x27, 0xEB, 0xFF, 0xFE, 0x5A, 0x17, 0x01}

// dataUp is a LoRaWAN unconfirmed uplink from DevAddr 26011BDA, FCnt 0x0102.
var dataUp = []byte{0x40, 0xDA, 0x1B, 0x01, 0x26, 0x80, 0x02, 0x01, 0x0A, 0xCA, 0xFE, 0x01, 0x02, 0x03, 0x04}

func sum(b []byte) []byte  { s := sha256.Sum256(b); return s[:] }
func u32(v uint32) *uint32 { return &v }

func TestEndToEnd(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString(dataUp)
	unpadded := strings.TrimRight(b64, "=")
	opaque := []byte{0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0xFA, 0xF9, 0xF8, 0xF7}
	tests := []struct {
		name    string
		version uint8
		rxpk    string
		payload bool
		want    *drivers.LoRaRX // nil: not attested
	}{
		{
			name: "v1 lorawan data up, unpadded base64", version: 1,
			rxpk: `{"time":"2013-03-31T16:21:17.528002Z","tmst":3512348611,"chan":2,"rfch":0,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","rssi":-35,"lsnr":5.1,"size":15,"data":"` + unpadded + `"}`,
			want: &drivers.LoRaRX{SHA256: sum(dataUp), Size: 15, FreqHz: 868_100_000, Mod: "LORA", SF: 7, BWHz: 125_000, CodeRate: "4/5",
				DataRate: "SF7BW125", RSSI: -35, SNR: 5.1, Chan: 2, RFChain: 0, Tmst: 3512348611, Gateway: "B827EBFFFE5A1701",
				MType: "UnconfirmedDataUp", DevAddr: "26011BDA", FCnt: u32(0x0102), FPort: ptr(uint8(10)), GWTime: 1364746877528002000},
		},
		{
			name: "v2 with rsig picks the strongest antenna, payload included", version: 2, payload: true,
			rxpk: `{"jver":1,"tmst":4294967295,"tmms":1300000000123,"chan":5,"rfch":1,"freq":867.5,"mid":4,"stat":1,"modu":"LORA","datr":"SF12BW125","codr":"4/8","rssis":-120,"lsnr":-12.0,"size":15,"data":"` + b64 + `",
			 "rsig":[{"ant":0,"chan":5,"rssic":-118,"lsnr":-11.5},{"ant":1,"chan":13,"rssic":-104,"rssis":-107,"lsnr":-4.25,"foff":-200}],"future":"ignored"}`,
			want: &drivers.LoRaRX{SHA256: sum(dataUp), Size: 15, Payload: dataUp, FreqHz: 867_500_000, Mod: "LORA", SF: 12, BWHz: 125_000, CodeRate: "4/8",
				DataRate: "SF12BW125", RSSI: -104, SNR: -4.25, Chan: 5, RFChain: 1, Tmst: 4294967295, GPSTimeMS: 1300000000123, Gateway: "B827EBFFFE5A1701",
				MType: "UnconfirmedDataUp", DevAddr: "26011BDA", FCnt: u32(0x0102), FPort: ptr(uint8(10))},
		},
		{
			name: "fsk lorawan frame (EU868 DR7) gets its mac header parsed", version: 2,
			rxpk: `{"tmst":10,"chan":8,"rfch":1,"freq":868.8,"stat":1,"modu":"FSK","datr":50000,"rssi":-80,"data":"` + b64 + `"}`,
			want: &drivers.LoRaRX{SHA256: sum(dataUp), Size: 15, FreqHz: 868_800_000, Mod: "FSK", DataRate: "50000", RSSI: -80, Chan: 8, RFChain: 1, Tmst: 10, Gateway: "B827EBFFFE5A1701",
				MType: "UnconfirmedDataUp", DevAddr: "26011BDA", FCnt: u32(0x0102), FPort: ptr(uint8(10))},
		},
		{
			name: "fsk, url-safe base64, nulls", version: 2,
			rxpk: `{"tmst":7,"chan":9,"rfch":1,"freq":868.8,"stat":1,"modu":"FSK","datr":50000,"rssi":-75,"lsnr":null,"codr":null,"tmms":null,"data":"` + base64.RawURLEncoding.EncodeToString(opaque) + `"}`,
			want: &drivers.LoRaRX{SHA256: sum(opaque), Size: 9, FreqHz: 868_800_000, Mod: "FSK", DataRate: "50000", RSSI: -75, Chan: 9, RFChain: 1, Tmst: 7, Gateway: "B827EBFFFE5A1701"},
		},
		{
			name: "opaque lora frame: no lorawan fields", version: 2,
			rxpk: `{"tmst":8,"chan":0,"rfch":0,"freq":433.175,"stat":1,"modu":"LORA","datr":"SF9BW62.5","codr":"4/5","rssi":-99,"lsnr":2,"data":"` + base64.StdEncoding.EncodeToString(opaque) + `"}`,
			want: &drivers.LoRaRX{SHA256: sum(opaque), Size: 9, FreqHz: 433_175_000, Mod: "LORA", SF: 9, BWHz: 62_500, CodeRate: "4/5", DataRate: "SF9BW62.5", RSSI: -99, SNR: 2, Tmst: 8, Gateway: "B827EBFFFE5A1701"},
		},
		{name: "crc error", version: 2, rxpk: `{"tmst":9,"freq":868.1,"stat":-1,"modu":"LORA","datr":"SF7BW125","rssi":-120,"lsnr":-5,"data":"` + b64 + `"}`},
		{name: "no crc", version: 2, rxpk: `{"tmst":9,"freq":868.1,"stat":0,"modu":"LORA","datr":"SF7BW125","rssi":-120,"lsnr":-5,"data":"` + b64 + `"}`},
		{name: "size disagrees", version: 2, rxpk: `{"tmst":9,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","rssi":-120,"lsnr":-5,"size":200,"data":"` + b64 + `"}`},
		{name: "missing tmst", version: 2, rxpk: `{"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","rssi":-120,"lsnr":-5,"data":"` + b64 + `"}`},
		{name: "unknown modulation", version: 2, rxpk: `{"tmst":9,"freq":868.1,"stat":1,"modu":"QPSK","datr":"SF7BW125","rssi":-120,"data":"` + b64 + `"}`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Opts{IncludePayload: tt.payload}, 16)
			f := newForwarder(t, s, testEUI)
			token := uint16(0xA000 + i)
			f.pushAcked(t, tt.version, token, `{"rxpk":[`+tt.rxpk+`]}`)
			if tt.want == nil {
				f.pull(t, 2, 1) // handled after the push: nothing may have been emitted
				s.noObs(t)
				return
			}
			o := s.nextObs(t)
			if o.Kind != drivers.KindLoRaRX || o.Source != "gw-test" || o.Time.IsZero() {
				t.Fatalf("observation %+v", o)
			}
			got, ok := o.Data.(drivers.LoRaRX)
			if !ok {
				t.Fatalf("data %T", o.Data)
			}
			if !reflect.DeepEqual(got, *tt.want) {
				t.Fatalf("lora.rx\n got %+v\nwant %+v", got, *tt.want)
			}
		})
	}
}

func TestCountsAndGateways(t *testing.T) {
	s := startServer(t, Opts{}, 64)
	a := newForwarder(t, s, testEUI)
	b := newForwarder(t, s, gwmp.EUI{0, 0, 0, 0, 0, 0, 0, 2})
	good := `{"tmst":%d,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","rssi":-50,"lsnr":7,"data":"QNobASaAAgEKyv4BAgME"}`
	bad := `{"tmst":1,"freq":868.1,"stat":-1,"modu":"LORA","datr":"SF7BW125","rssi":-50,"lsnr":7,"data":"AA"}`
	none := `{"tmst":1,"freq":868.1,"stat":0,"modu":"LORA","datr":"SF7BW125","rssi":-50,"lsnr":7,"data":"AA"}`
	a.pushAcked(t, 2, 1, `{"rxpk":[`+fmt.Sprintf(good, uint32(4294967000))+`,`+bad+`,`+none+`,`+fmt.Sprintf(good, 100)+`]}`)
	b.pushAcked(t, 1, 2, `{"rxpk":[`+bad+`,`+fmt.Sprintf(good, 5)+`,{"freq":"x"}]}`)
	b.pull(t, 1, 3)
	var tmsts []uint32
	for range 3 {
		tmsts = append(tmsts, s.nextObs(t).Data.(drivers.LoRaRX).Tmst)
	}
	if !reflect.DeepEqual(tmsts, []uint32{4294967000, 100, 5}) {
		t.Fatalf("order: %v", tmsts)
	}
	st := s.dev.Stats()
	if st.RxOK != 3 || st.RxBadCRC != 2 || st.RxNoCRC != 1 || st.RxInvalid != 1 || st.Malformed["rxpk"] != 1 || st.Datagrams != 3 {
		t.Fatalf("totals %+v", st)
	}
	if len(st.Gateways) != 2 {
		t.Fatalf("gateways %+v", st.Gateways)
	}
	g0, g1 := st.Gateways[0], st.Gateways[1] // sorted: 0000…02 first
	if g0.EUI != "0000000000000002" || g0.RxOK != 1 || g0.RxBadCRC != 1 || g0.RxInvalid != 1 || g0.Version != 1 || g0.LastPull.IsZero() || !g0.PullAddr.IsValid() || g0.PullAge < 0 {
		t.Errorf("gateway b %+v", g0)
	}
	if g1.EUI != "B827EBFFFE5A1701" || g1.RxOK != 2 || g1.RxNoCRC != 1 || g1.TmstWraps != 1 || g1.PullAddr.IsValid() || g1.Addr.Port() != uint16(a.conn.LocalAddr().(*net.UDPAddr).Port) {
		t.Errorf("gateway a %+v", g1)
	}
}

func TestMalformedNeverStops(t *testing.T) {
	logs := &logBuffer{}
	s := startServer(t, Opts{Logger: logs.logger()}, 16)
	f := newForwarder(t, s, testEUI)
	hdr := func(v byte, id gwmp.Identifier) []byte { return []byte{v, 0x12, 0x34, byte(id)} }
	tests := []struct {
		name   string
		b      []byte
		reason string
		ack    bool // acknowledged: never an undecodable PUSH_DATA (the forwarder's ack statistics must show it)
	}{
		{"empty", []byte{}, "short", false},
		{"short header", []byte{2, 1}, "short", false},
		{"wrong version", append(hdr(9, gwmp.PushData), testEUI[:]...), "version", false},
		{"unknown identifier", append(hdr(2, 0x42), testEUI[:]...), "identifier", false},
		{"push without eui", hdr(2, gwmp.PushData), "short", false},
		{"bad json", append(append(hdr(2, gwmp.PushData), testEUI[:]...), "{\"rxpk\":["...), "json", false},
		{"push data array", append(append(hdr(2, gwmp.PushData), testEUI[:]...), "[1]"...), "json", false},
		{"server-bound identifier", hdr(2, gwmp.PullAck), "direction", false},
		{"tx ack nobody waits for", append(hdr(2, gwmp.TxAck), testEUI[:]...), "tx_ack_unknown_token", false},
		{"huge", make([]byte, 65507), "version", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.dev.Stats().Malformed[tt.reason]
			f.send(t, tt.b)
			if tt.ack {
				f.expectAck(t, 2, 0x1234, gwmp.PushAck)
			}
			f.pull(t, 2, uint16(i)) // the server is still answering
			if got := s.dev.Stats().Malformed[tt.reason]; got != before+1 {
				t.Fatalf("malformed[%s] = %d; want %d", tt.reason, got, before+1)
			}
		})
	}
	if !strings.Contains(logs.String(), "malformed packet forwarder datagram ignored") || !strings.Contains(logs.String(), "component=lora") {
		t.Errorf("no rate-limited log line:\n%s", logs.String())
	}
	if n := strings.Count(logs.String(), "malformed packet forwarder"); n > 5 {
		t.Errorf("%d malformed lines logged; the token bucket allows 5", n)
	}
}

func TestStatRate(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s := startServer(t, Opts{Now: clock, StatInterval: 30 * time.Second}, 16)
	f := newForwarder(t, s, testEUI)
	stat := `{"stat":{"time":"%s","lati":46.24,"long":3.2523,"alti":145,"rxnb":%d,"rxok":2,"rxfw":2,"ackr":100.0,"dwnb":1,"txnb":1,"temp":41.5,"unknown":1}}`
	f.pushAcked(t, 2, 1, fmt.Sprintf(stat, "2014-01-12 08:59:28 GMT", 1))
	o := s.nextObs(t)
	lat, lon, alt, temp := 46.24, 3.2523, 145.0, 41.5
	want := Stat{Gateway: "B827EBFFFE5A1701", RXNb: u32(1), RXOK: u32(2), RXFW: u32(2), ACKR: ptr(100.0), DWNb: u32(1), TXNb: u32(1), Temp: &temp, Lati: &lat, Long: &lon, Alti: &alt,
		TimeUnixNano: time.Date(2014, 1, 12, 8, 59, 28, 0, time.UTC).UnixNano()}
	if o.Kind != drivers.KindLoRaStat || !reflect.DeepEqual(o.Data, want) {
		t.Fatalf("stat %+v\nwant %+v", o, want)
	}
	advance(29 * time.Second)
	f.pushAcked(t, 2, 2, fmt.Sprintf(stat, "20140112T085957Z", 2))
	f.pull(t, 2, 3)
	condtest.WaitFor(t, 5*time.Second, "stat skipped", func() bool { return s.dev.Stats().StatSkipped == 1 })
	s.noObs(t)
	advance(time.Second)
	f.pushAcked(t, 2, 4, fmt.Sprintf(stat, "2014-01-12T08:59:58Z", 3))
	o = s.nextObs(t)
	if got := o.Data.(Stat); *got.RXNb != 3 || got.TimeUnixNano != time.Date(2014, 1, 12, 8, 59, 58, 0, time.UTC).UnixNano() {
		t.Fatalf("second stat %+v", got)
	}
	if st := s.dev.Stats(); st.StatEmitted != 2 || st.StatSkipped != 1 || st.Gateways[0].Stats != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSend(t *testing.T) {
	txpk := TxPacket{Imme: true, Freq: 869_525_000, RFCh: 0, Powe: 27, Modu: "LORA", Datr: gwmp.DataRate{LoRa: "SF9BW125"}, Codr: "4/5", IPol: false, Data: gwmp.Payload{0xAA, 0xBB}, NCRC: true}
	tests := []struct {
		name    string
		version uint8
		reply   *string // TX_ACK body; nil: no TX_ACK at all
		want    error
		code    string
	}{
		{"v2 empty tx ack", 2, ptr(""), nil, ""},
		{"v2 NONE", 2, ptr(`{"txpk_ack":{"error":"NONE"}}`), nil, ""},
		{"v2 warn", 2, ptr(`{"txpk_ack":{"warn":"TX_POWER","value":14}}`), nil, ""},
		{"v2 warn with a string value", 2, ptr(`{"txpk_ack":{"warn":"TX_POWER","value":"14"}}`), nil, ""},
		{"v2 too late", 2, ptr(`{"txpk_ack":{"error":"TOO_LATE"}}`), ErrTxRejected, "TOO_LATE"},
		{"v2 collision beacon", 2, ptr(`{"txpk_ack":{"error":"COLLISION_BEACON"}}`), ErrTxRejected, "COLLISION_BEACON"},
		{"v2 silent", 2, nil, ErrTxAckTimeout, ""},
		{"v1 has no tx ack", 1, nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var token uint16 = 0x7700
			s := startServer(t, Opts{TxAckTimeout: 300 * time.Millisecond, Token: func() uint16 { token++; return token }}, 4)
			f := newForwarder(t, s, testEUI)
			f.pull(t, tt.version, 9)
			res := make(chan error, 1)
			go func() { res <- s.dev.Send(context.Background(), testEUI, txpk) }()
			p := f.recv(t)
			if p.ID != gwmp.PullResp || p.Version != tt.version || p.Pull == nil {
				t.Fatalf("got %+v", p)
			}
			wantTx := txpk
			wantTx.Size = 2
			if mustJSON(t, p.Pull.TXPK) != mustJSON(t, wantTx) {
				t.Fatalf("txpk %s\nwant %s", mustJSON(t, p.Pull.TXPK), mustJSON(t, wantTx))
			}
			if tt.version == 2 && p.Token != 0x7701 {
				t.Errorf("PULL_RESP token %#x; want the injected 0x7701", p.Token)
			}
			if tt.reply != nil {
				f.txAck(t, p.Token, *tt.reply)
			}
			err := <-res
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Send = %v; want %v", err, tt.want)
			}
			var te *TxError
			if tt.code != "" && (!errors.As(err, &te) || te.Code != tt.code || te.Gateway != "B827EBFFFE5A1701") {
				t.Fatalf("Send = %#v; want TxError %s", err, tt.code)
			}
			// Every downlink, the agent's own too, gets its lora.tx record.
			o := s.nextObs(t)
			rec, ok := o.Data.(drivers.LoRaTX)
			wantAck := map[string]string{"v2 silent": TxTimeout, "v1 has no tx ack": TxNoAck}[tt.name]
			if wantAck == "" {
				wantAck = TxOK
				if tt.code != "" {
					wantAck = TxRejected
				}
			}
			if o.Kind != drivers.KindLoRaTX || !ok || rec.Ack != wantAck || rec.Error != tt.code || rec.Upstream != "agent" ||
				rec.Size != 2 || !bytes.Equal(rec.SHA256, sum([]byte{0xAA, 0xBB})) || rec.FreqHz != 869_525_000 || rec.PowerDBm != 27 {
				t.Fatalf("lora.tx %+v; want ack %q err %q", o, wantAck, tt.code)
			}
			if strings.HasPrefix(tt.name, "v2 warn") && (rec.Warn != "TX_POWER" || rec.Value != "14") {
				t.Errorf("warn %q value %q", rec.Warn, rec.Value)
			}
			g := s.dev.Stats().Gateways[0]
			if g.TxSent != 1 || (err == nil) != (g.TxFailed == 0) {
				t.Errorf("tx counters %+v", g)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestSendErrors(t *testing.T) {
	d, err := New("x", &Opts{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Send(context.Background(), testEUI, TxPacket{}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Send before Run = %v", err)
	}
	s := startServer(t, Opts{}, 4)
	f := newForwarder(t, s, testEUI)
	f.pushAcked(t, 2, 1, `{"rxpk":[]}`)
	if err := s.dev.Send(context.Background(), testEUI, TxPacket{}); !errors.Is(err, ErrNoDownlinkPath) {
		t.Fatalf("Send without PULL_DATA = %v", err)
	}
	if err := s.dev.Send(context.Background(), gwmp.EUI{9}, TxPacket{}); !errors.Is(err, ErrNoDownlinkPath) {
		t.Fatalf("Send to unknown gateway = %v", err)
	}
	f.pull(t, 2, 2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.dev.Send(ctx, testEUI, TxPacket{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with cancelled ctx = %v", err)
	}
}

func TestProbe(t *testing.T) {
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name   string
		listen string
		want   drivers.Probe
		err    error
		msg    string
	}{
		{"free", "127.0.0.1:0", drivers.Loaded, nil, ""},
		{"in use", busy.LocalAddr().String(), drivers.Failed, ErrAddrInUse, "another packet forwarder server is running on " + busy.LocalAddr().String()},
		{"foreign address", "192.0.2.1:1680", drivers.Failed, nil, "no local interface has this address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New("gw", &Opts{Listen: tt.listen})
			if err != nil {
				t.Fatal(err)
			}
			p, err := d.Probe(context.Background())
			if p != tt.want || (tt.err != nil && !errors.Is(err, tt.err)) || (tt.msg == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.msg)) {
				t.Fatalf("Probe = %v, %v; want %v %q", p, err, tt.want, tt.msg)
			}
			if tt.err != nil {
				if err := d.Run(context.Background(), nil); !errors.Is(err, tt.err) {
					t.Fatalf("Run = %v; want %v", err, tt.err)
				}
			}
		})
	}
	s := startServer(t, Opts{}, 1)
	if p, err := s.dev.Probe(context.Background()); p != drivers.Loaded || err != nil {
		t.Fatalf("Probe while running = %v, %v", p, err)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		dev  string
		o    Opts
	}{
		{"no name", "", Opts{}},
		{"bad listen", "x", Opts{Listen: "1680"}},
		{"negative buffer", "x", Opts{ReceiveBuffer: -1}},
		{"huge buffer", "x", Opts{ReceiveBuffer: 1<<30 + 1}},
		{"negative stat interval", "x", Opts{StatInterval: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.dev, &tt.o); !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("New = %v; want ErrInvalidOption", err)
			}
		})
	}
	d, err := New("x", nil)
	if err != nil || d.o.Listen != "127.0.0.1:1690" || d.o.MaxGateways != 64 || d.o.GatewayExpiry != time.Hour || d.o.ReceiveBuffer != DefaultReceiveBuffer || d.o.StatInterval != 30*time.Second {
		t.Fatalf("defaults %+v %v", d.o, err)
	}
}

func TestEmitErrorStopsRun(t *testing.T) {
	d, err := New("x", &Opts{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- d.Run(context.Background(), func(context.Context, drivers.Observation) error { return errTest })
	}()
	condtest.WaitFor(t, 5*time.Second, "bind", func() bool { _, ok := d.Addr(); return ok })
	ap, _ := d.Addr()
	s := &server{addr: net.UDPAddrFromAddrPort(ap)}
	f := newForwarder(t, s, testEUI)
	f.pushAcked(t, 2, 1, `{"rxpk":[{"tmst":1,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","rssi":-1,"data":"AA"}]}`)
	select {
	case err := <-done:
		if !errors.Is(err, errTest) {
			t.Fatalf("Run = %v; want the emit error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}
