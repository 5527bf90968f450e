package gwmp

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func pushDatagram(tb testing.TB, version uint8, token uint16, eui EUI, body string) []byte {
	tb.Helper()
	b := AppendHeader(nil, Header{Version: version, Token: token, ID: PushData, EUI: eui})
	return append(b, body...)
}

func TestDecodeErrors(t *testing.T) {
	eui := EUI{1, 2, 3, 4, 5, 6, 7, 8}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"three bytes", []byte{2, 0, 1}, ErrShort},
		{"version 0", []byte{0, 1, 2, 0}, ErrVersion},
		{"version 3", []byte{3, 1, 2, 2, 1, 2, 3, 4, 5, 6, 7, 8}, ErrVersion},
		{"unknown identifier", []byte{2, 1, 2, 0x09}, ErrIdentifier},
		{"push without eui", []byte{2, 1, 2, 0, 1, 2, 3}, ErrShort},
		{"push no body", pushDatagram(t, 2, 1, eui, ""), ErrJSON},
		{"push bad json", pushDatagram(t, 2, 1, eui, "{"), ErrJSON},
		{"push json array", pushDatagram(t, 2, 1, eui, "[]"), ErrJSON},
		{"push bad freq", pushDatagram(t, 2, 1, eui, `{"rxpk":[{"freq":868.1000001}]}`), ErrField},
		{"push negative freq", pushDatagram(t, 2, 1, eui, `{"rxpk":[{"freq":-868.1}]}`), ErrField},
		{"push exponent freq", pushDatagram(t, 2, 1, eui, `{"rxpk":[{"freq":8.681e2}]}`), ErrField},
		{"push bad base64", pushDatagram(t, 2, 1, eui, `{"rxpk":[{"data":"!!!"}]}`), ErrField},
		{"push tmst too big", pushDatagram(t, 2, 1, eui, `{"rxpk":[{"tmst":4294967296}]}`), ErrJSON},
		{"push rxpk not object", pushDatagram(t, 2, 1, eui, `{"rxpk":[7]}`), ErrJSON},
		{"push rxpk not array", pushDatagram(t, 2, 1, eui, `{"rxpk":7}`), ErrJSON},
		{"pull with trailer", append(AppendHeader(nil, Header{Version: 2, ID: PullData, EUI: eui}), 'x'), ErrShort},
		{"tx ack bad json", append(AppendHeader(nil, Header{Version: 2, ID: TxAck, EUI: eui}), '{'), ErrJSON},
		{"too large", make([]byte, MaxDatagram+1), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Decode(tt.b)
			if err == nil && p.Push != nil && len(p.Push.Invalid) == 1 && len(p.Push.RXPK) == 0 {
				err = p.Push.Invalid[0] // per-rxpk errors leave the datagram valid
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode error = %v; want %v", err, tt.want)
			}
		})
	}
}

func TestDecodePush(t *testing.T) {
	eui := EUI{0xB8, 0x27, 0xEB, 0xFF, 0xFE, 0x5A, 0x17, 0x01}
	body := `{"rxpk":[
	 {"time":"2013-03-31T16:21:17.528002Z","tmst":3512348611,"chan":2,"rfch":0,"freq":866.349812,
	  "stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/6","rssi":-35,"lsnr":5.1,"size":32,
	  "data":"-DS4CGaDCdG-_4bk0xNMgJgCnRrKYYlz","unknown":{"x":[1,2]}},
	 {"tmst":3512348514,"chan":9,"rfch":1,"freq":869.1,"stat":1,"modu":"FSK","datr":50000,"rssi":-75,
	  "size":16,"data":"VEVTVF9QQUNLRVRfMTIzNA","codr":null,"lsnr":null},
	 {"jver":2,"tmst":1,"tmms":1300000000123,"ftime":55,"chan":0,"rfch":0,"freq":868.1,"mid":8,"stat":-1,
	  "modu":"LORA","datr":"SF12BW125","codr":"4/5","size":4,"data":"AQIDBA==",
	  "rsig":[{"ant":0,"chan":0,"rssic":-110,"lsnr":-3.25,"etime":"abc=","foff":-120,"ftstat":0,"ftver":1,"ftdelta":2},
	          {"ant":1,"chan":8,"rssic":-98,"rssis":-101,"rssisd":2,"lsnr":1.5}]}
	],
	"stat":{"time":"2014-01-12 08:59:28 GMT","lati":46.24000,"long":3.25230,"alti":145,"rxnb":2,
	 "rxok":2,"rxfw":2,"ackr":100.0,"dwnb":2,"txnb":2,"temp":null}}`
	p, err := Decode(pushDatagram(t, 2, 0xBEEF, eui, body))
	if err != nil {
		t.Fatal(err)
	}
	if p.Token != 0xBEEF || p.EUI != eui || p.EUI.String() != "B827EBFFFE5A1701" || p.ID != PushData {
		t.Fatalf("header %+v", p.Header)
	}
	if len(p.Push.RXPK) != 3 || len(p.Push.Invalid) != 0 || p.Push.StatErr != nil {
		t.Fatalf("%d rxpk", len(p.Push.RXPK))
	}
	r0, r1, r2 := p.Push.RXPK[0], p.Push.RXPK[1], p.Push.RXPK[2]
	if r0.Freq != 866_349_812 || *r0.Tmst != 3512348611 || r0.Chan != 2 || *r0.Stat != 1 || *r0.RSSI != -35 || *r0.LSNR != 5.1 {
		t.Errorf("rxpk 0: %+v", r0)
	}
	if sf, bw, err := r0.Datr.ParseLoRa(); sf != 7 || bw != 125_000 || err != nil {
		t.Errorf("datr: %d %d %v", sf, bw, err)
	}
	if len(r0.Data) != 24 || *r0.Size != 32 && len(r0.Data) != 24 {
		t.Errorf("url-safe unpadded data: %d bytes", len(r0.Data))
	}
	if r1.Freq != 869_100_000 || r1.Datr.FSK != 50000 || r1.Datr.String() != "50000" || r1.LSNR != nil || string(r1.Data) != "TEST_PACKET_1234" {
		t.Errorf("rxpk 1: %+v", r1)
	}
	if *r2.Tmms != 1300000000123 || *r2.Stat != -1 || len(r2.RSig) != 2 || *r2.RSig[1].RSSIC != -98 || *r2.RSig[0].LSNR != -3.25 || *r2.Mid != 8 {
		t.Errorf("rxpk 2: %+v", r2)
	}
	st := p.Push.Stat
	tm, err := st.Time.Time()
	if err != nil || !tm.Equal(time.Date(2014, 1, 12, 8, 59, 28, 0, time.UTC)) {
		t.Errorf("stat time %v %v", tm, err)
	}
	if *st.Lati != 46.24 || *st.Alti != 145 || *st.RXNb != 2 || *st.ACKR != 100 || st.Temp != nil {
		t.Errorf("stat %+v", st)
	}
}

func TestParseMHz(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"868.1", 868_100_000, true},
		{"868.100000", 868_100_000, true},
		{"868.30000000", 868_300_000, true},
		{"867.899999", 867_899_999, true},
		{"915", 915_000_000, true},
		{"433.175", 433_175_000, true},
		{"0.000001", 1, true},
		{"868.1000001", 0, false},
		{"", 0, false},
		{".5", 0, false},
		{"8e2", 0, false},
		{"-1", 0, false},
		{"12345678", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMHz(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("ParseMHz(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2014, 1, 12, 8, 59, 28, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Time
	}{
		{"v1 GMT", "2014-01-12 08:59:28 GMT", want},
		{"iso", "2014-01-12T08:59:28Z", want},
		{"iso fraction", "2014-01-12T08:59:28.528002Z", want.Add(528002 * time.Microsecond)},
		{"iso offset", "2014-01-12T09:59:28+01:00", want},
		{"iso no zone", "2014-01-12T08:59:28", want},
		{"compact", "20140112T085928Z", want},
		{"compact fraction", "20140112T085928.5Z", want.Add(500 * time.Millisecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTime(tt.in)
			if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Fatalf("ParseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
	if _, err := ParseTime("yesterday"); !errors.Is(err, ErrField) {
		t.Errorf("ParseTime(yesterday) error %v", err)
	}
}

func TestDataRate(t *testing.T) {
	tests := []struct {
		in     string
		sf     uint8
		bw     uint32
		wantOK bool
	}{
		{"SF7BW125", 7, 125_000, true},
		{"SF12BW500", 12, 500_000, true},
		{"SF9BW62.5", 9, 62_500, true},
		{"SF5BW812", 5, 812_000, true},
		{"SF13BW125", 0, 0, false},
		{"SF7", 0, 0, false},
		{"BW125", 0, 0, false},
		{"SF7BW0", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			sf, bw, err := DataRate{LoRa: tt.in}.ParseLoRa()
			if (err == nil) != tt.wantOK || sf != tt.sf || bw != tt.bw {
				t.Fatalf("ParseLoRa(%q) = %d, %d, %v", tt.in, sf, bw, err)
			}
		})
	}
}

func TestTxAck(t *testing.T) {
	eui := EUI{1, 2, 3, 4, 5, 6, 7, 8}
	h := AppendHeader(nil, Header{Version: 2, Token: 7, ID: TxAck, EUI: eui})
	tests := []struct {
		name    string
		body    string
		wantNil bool
		errStr  string
		warn    string
	}{
		{"empty", "", true, "", ""},
		{"nul padded", "\x00\x00", true, "", ""},
		{"none", `{"txpk_ack":{"error":"NONE"}}`, false, "NONE", ""},
		{"too late", `{"txpk_ack":{"error":"TOO_LATE"}}`, false, "TOO_LATE", ""},
		{"warn", `{"txpk_ack":{"warn":"TX_POWER","value":14}}`, false, "", "TX_POWER"},
		{"warn with a string value", `{"txpk_ack":{"warn":"TX_POWER","value":"14"}}`, false, "", "TX_POWER"},
		{"warn with a null value", `{"txpk_ack":{"warn":"TX_POWER","value":null}}`, false, "", "TX_POWER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Decode(append(bytes.Clone(h), tt.body...))
			if err != nil {
				t.Fatal(err)
			}
			if (p.Ack == nil) != tt.wantNil {
				t.Fatalf("ack %+v", p.Ack)
			}
			wantValue := map[string]AckValue{"warn": "14", "warn with a string value": "14"}[tt.name]
			if p.Ack != nil && (p.Ack.TxpkAck.Error != tt.errStr || p.Ack.TxpkAck.Warn != tt.warn || p.Ack.TxpkAck.Value != wantValue) {
				t.Fatalf("ack %+v", p.Ack.TxpkAck)
			}
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	tmst := uint32(4294967000)
	txpk := TXPK{Tmst: &tmst, Freq: 869_525_000, RFCh: 0, Powe: 14, Modu: "LORA",
		Datr: DataRate{LoRa: "SF9BW125"}, Codr: "4/5", IPol: true, Size: 3, Data: Payload{1, 2, 3}}
	p := Packet{Header: Header{Version: 2, Token: 0x1234, ID: PullResp}, Pull: &PullRespBody{TXPK: txpk}}
	b, err := Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"freq":869.525000`)) {
		t.Errorf("freq not in MHz with six decimals: %s", b)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	gj, _ := json.Marshal(got.Pull)
	wj, _ := json.Marshal(p.Pull)
	if got.Header != p.Header || !bytes.Equal(gj, wj) {
		t.Fatalf("round trip:\n got %s %+v\nwant %s %+v", gj, got.Header, wj, p.Header)
	}
}

func TestDecodePushKeepsGoodRXPK(t *testing.T) {
	body := `{"rxpk":[{"freq":868.1,"data":"AQ"},{"freq":"x"},{"freq":868.3,"data":"%%"},{"freq":868.5,"data":"Ag"}],"stat":{"rxnb":"many"}}`
	p, err := Decode(pushDatagram(t, 2, 1, EUI{}, body))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Push.RXPK) != 2 || p.Push.RXPK[0].Freq != 868_100_000 || p.Push.RXPK[1].Freq != 868_500_000 {
		t.Fatalf("good rxpk: %+v", p.Push.RXPK)
	}
	if len(p.Push.Invalid) != 2 || !errors.Is(p.Push.Invalid[0], ErrField) || !errors.Is(p.Push.Invalid[1], ErrField) {
		t.Fatalf("invalid: %v", p.Push.Invalid)
	}
	if p.Push.Stat != nil || !errors.Is(p.Push.StatErr, ErrJSON) {
		t.Fatalf("stat %+v err %v", p.Push.Stat, p.Push.StatErr)
	}
}

// TestStatAbsentCounters: a counter the forwarder leaves out or sends as
// null stays nil; 0 stays 0.
func TestStatAbsentCounters(t *testing.T) {
	h := AppendHeader(nil, Header{Version: 2, Token: 1, ID: PushData, EUI: EUI{1}})
	p, err := Decode(append(h, `{"stat":{"time":"2026-01-01 00:00:00 GMT","ackr":null,"rxnb":0,"lati":1.5,"long":2.5}}`...))
	if err != nil {
		t.Fatal(err)
	}
	st := p.Push.Stat
	if st.ACKR != nil || st.RXOK != nil || st.TXNb != nil || st.RXNb == nil || *st.RXNb != 0 {
		t.Fatalf("stat %+v", st)
	}
	b, err := Encode(p)
	if err != nil || bytes.Contains(b, []byte("ackr")) || !bytes.Contains(b, []byte(`"rxnb":0`)) {
		t.Fatalf("re-encoded %s, %v", b, err)
	}
}

func TestAckValueJSON(t *testing.T) {
	for in, want := range map[string]string{`14`: `14`, `"14"`: `14`, `"high"`: `"high"`, `-1.5`: `-1.5`} {
		var v AckValue
		if err := json.Unmarshal([]byte(in), &v); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if out, _ := json.Marshal(v); string(out) != want {
			t.Errorf("%s → %s, want %s", in, out, want)
		}
	}
	var v AckValue
	if err := json.Unmarshal([]byte(`{}`), &v); err == nil {
		t.Error("an object value was accepted")
	}
}
