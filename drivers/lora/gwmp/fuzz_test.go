package gwmp

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDecode checks that Decode never panics, and that whatever it accepts
// survives Encode → Decode unchanged (the round trip the server relies on
// when tests play the gateway).
func FuzzDecode(f *testing.F) {
	eui := EUI{0xB8, 0x27, 0xEB, 0xFF, 0xFE, 0x5A, 0x17, 0x01}
	f.Add(append(AppendHeader(nil, Header{Version: 2, Token: 1, ID: PushData, EUI: eui}),
		`{"rxpk":[{"tmst":1,"freq":868.1,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/5","rssi":-40,"lsnr":9.5,"size":3,"data":"AQID"}],"stat":{"time":"2014-01-12 08:59:28 GMT","rxnb":1}}`...))
	f.Add(AppendHeader(nil, Header{Version: 1, Token: 2, ID: PullData, EUI: eui}))
	f.Add(append(AppendHeader(nil, Header{Version: 2, Token: 3, ID: TxAck, EUI: eui}), `{"txpk_ack":{"error":"NONE"}}`...))
	f.Add(append(AppendHeader(nil, Header{Version: 2, Token: 4, ID: PullResp}), `{"txpk":{"imme":true,"freq":869.525,"modu":"LORA","datr":"SF9BW125","size":1,"data":"AA"}}`...))
	f.Add([]byte{2, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(b)
		if err != nil {
			return
		}
		enc, err := Encode(p)
		if err != nil {
			t.Fatalf("encode of decoded %x: %v", b, err)
		}
		q, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-decode %q: %v", enc, err)
		}
		if q.Header != p.Header {
			t.Fatalf("header %+v != %+v", q.Header, p.Header)
		}
		pj, _ := json.Marshal([]any{p.Push, p.Ack, p.Pull})
		qj, _ := json.Marshal([]any{q.Push, q.Ack, q.Pull})
		if !bytes.Equal(pj, qj) {
			t.Fatalf("round trip changed the body:\n%s\n%s", pj, qj)
		}
	})
}
