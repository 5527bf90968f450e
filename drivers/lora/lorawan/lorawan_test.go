package lorawan

import (
	"bytes"
	"testing"
)

func TestParse(t *testing.T) {
	data := func(mhdr, fctrl byte, tail int) []byte {
		// DevAddr 0x26011BDA little-endian, FCnt 0x0102.
		b := []byte{mhdr, 0xDA, 0x1B, 0x01, 0x26, fctrl, 0x02, 0x01}
		return append(b, bytes.Repeat([]byte{0xAA}, tail)...)
	}
	tests := []struct {
		name    string
		phy     []byte
		ok      bool
		mtype   string
		devaddr string
		fcnt    uint16
		fhdr    bool
	}{
		{"unconfirmed up", data(0x40, 0x80, 1+3+4), true, UnconfirmedDataUp, "26011BDA", 0x0102, true},
		{"confirmed up", data(0x80, 0x00, 4), true, ConfirmedDataUp, "26011BDA", 0x0102, true},
		{"unconfirmed down", data(0x60, 0x00, 4), true, UnconfirmedDataDown, "26011BDA", 0x0102, true},
		{"confirmed down", data(0xA0, 0x00, 4), true, ConfirmedDataDown, "26011BDA", 0x0102, true},
		{"fopts fit", data(0x40, 0x03, 3+4), true, UnconfirmedDataUp, "26011BDA", 0x0102, true},
		{"fopts overrun", data(0x40, 0x05, 3+4), false, "", "", 0, false},
		{"data too short", data(0x40, 0x00, 3), false, "", "", 0, false},
		{"join request", append([]byte{0x00}, make([]byte, 22)...), true, JoinRequest, "", 0, false},
		{"join request wrong size", append([]byte{0x00}, make([]byte, 20)...), false, "", "", 0, false},
		{"join accept", append([]byte{0x20}, make([]byte, 16)...), true, JoinAccept, "", 0, false},
		{"join accept cflist", append([]byte{0x20}, make([]byte, 32)...), true, JoinAccept, "", 0, false},
		{"rejoin", append([]byte{0xC0}, make([]byte, 18)...), true, RejoinRequest, "", 0, false},
		{"proprietary", append([]byte{0xE0}, make([]byte, 9)...), true, Proprietary, "", 0, false},
		{"major 1", data(0x41, 0x00, 4), false, "", "", 0, false},
		{"empty", nil, false, "", "", 0, false},
		{"tiny", []byte{0x40, 1, 2}, false, "", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, ok := Parse(tt.phy)
			if ok != tt.ok || h.MType != tt.mtype || h.HasFHDR != tt.fhdr {
				t.Fatalf("Parse = %+v, %v; want mtype %q fhdr %v ok %v", h, ok, tt.mtype, tt.fhdr, tt.ok)
			}
			if tt.fhdr && (h.DevAddrString() != tt.devaddr || h.FCnt != tt.fcnt) {
				t.Errorf("devaddr %s fcnt %d; want %s %d", h.DevAddrString(), h.FCnt, tt.devaddr, tt.fcnt)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte{0x40, 0xDA, 0x1B, 0x01, 0x26, 0x0F, 0x02, 0x01, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := Parse(b)
		if !ok && h != (Header{}) {
			t.Fatalf("not ok but header %+v", h)
		}
		if h.HasFHDR && len(b) < minDataFrame+h.FOpts {
			t.Fatalf("fhdr read past %d bytes", len(b))
		}
	})
}

func TestFPort(t *testing.T) {
	// MHDR, DevAddr, FCtrl (FOptsLen 1), FCnt, one FOpt, FPort 42, payload, MIC.
	withPort := []byte{0x40, 0xDA, 0x1B, 0x01, 0x26, 0x01, 0x02, 0x01, 0x06, 42, 0xCA, 1, 2, 3, 4}
	if h, ok := Parse(withPort); !ok || h.FPort == nil || *h.FPort != 42 {
		t.Fatalf("with port: %+v %v", h, ok)
	}
	noPort := []byte{0x40, 0xDA, 0x1B, 0x01, 0x26, 0x00, 0x02, 0x01, 1, 2, 3, 4} // FHDR and MIC only
	if h, ok := Parse(noPort); !ok || h.FPort != nil {
		t.Fatalf("without port: %+v %v", h, ok)
	}
}
