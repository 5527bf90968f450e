package lora

import (
	"math"
	"testing"
)

func TestCheckSignal(t *testing.T) {
	for _, tt := range []struct {
		rssi, snr float64
		reason    string
	}{
		{-120, -7.5, ""}, {-200, 50, ""}, {30, -50, ""},
		{-1e308, 0, "rssi"}, {1e308, 0, "rssi"}, {math.NaN(), 0, "rssi"}, {math.Inf(-1), 0, "rssi"},
		{-80, math.NaN(), "snr"}, {-80, math.Inf(1), "snr"}, {-80, 51, "snr"},
	} {
		if reason, _ := checkSignal(tt.rssi, tt.snr); reason != tt.reason {
			t.Errorf("checkSignal(%v, %v) = %q; want %q", tt.rssi, tt.snr, reason, tt.reason)
		}
	}
}

func TestCheckStat(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	s := Stat{Lati: f(math.NaN()), Long: f(6), Alti: f(400), Temp: f(math.Inf(1)), ACKR: f(-1)}
	reasons := checkStat(&s)
	if s.Lati != nil || s.Long != nil || s.Alti != nil || s.Temp != nil || s.ACKR != nil || len(reasons) != 3 {
		t.Fatalf("%+v %v", s, reasons)
	}
	half := Stat{Lati: f(46)}
	if r := checkStat(&half); half.Lati != nil || len(r) != 1 || r[0] != "stat_position" {
		t.Fatalf("half a position kept: %+v %v", half, r)
	}
	ok := Stat{Lati: f(-90), Long: f(180), Alti: f(-400), Temp: f(55), ACKR: f(100)}
	if r := checkStat(&ok); len(r) != 0 || ok.Alti == nil {
		t.Fatalf("valid stat changed: %+v %v", ok, r)
	}
}
