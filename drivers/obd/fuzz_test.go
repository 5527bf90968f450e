package obd

import "testing"

// FuzzParseReply feeds arbitrary adapter output through the parser and every
// decoder behind it: none may panic, and data lines must survive a round
// trip through frames.
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{
		"41 0D 32\r\r", "010D\r410D32\r", "SEARCHING...\rUNABLE TO CONNECT\r", "BUS INIT: ...ERROR\r",
		"014\r0: 49 02 01 31 44 34\r1: 47 50 30 30 52 35 35\r2: 42 31 32 33 34 35 36\r",
		"43 02 01 33 C1 23\r", "43 01 33 00 00 00 00\r", "?\r", "NO DATA\r", "\xf8\x80",
	} {
		f.Add("0100", []byte(s))
	}
	f.Fuzz(func(t *testing.T, cmd string, raw []byte) {
		r, err := parseReply(cmd, raw)
		if err != nil {
			return
		}
		fs, err := r.frames()
		if err != nil {
			return
		}
		for _, fr := range fs {
			if len(fr.data) > len(raw) {
				t.Fatalf("frame of %d bytes from %d input bytes", len(fr.data), len(raw))
			}
		}
		var sup supported
		for base := 0; base <= 0xE0; base += 0x20 {
			if bm, ok := mode01(fs, byte(base)); ok {
				sup.add(byte(base), bm)
			}
		}
		if v, err := parseVIN(fs); err == nil && len(v) != 17 {
			t.Fatalf("VIN %q is not 17 characters", v)
		}
		if codes, err := parseDTCs(fs, true); err == nil {
			for _, c := range codes {
				if len(c) != 5 {
					t.Fatalf("DTC %q", c)
				}
			}
		}
		_, _ = parseDTCs(fs, false) // must not panic
	})
}
