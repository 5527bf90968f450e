package lora

import (
	"fmt"

	"github.com/edge-agent/edge-agent/drivers/lora/gwmp"
)

// Physical ranges. A value outside them is not a measurement, whatever sent
// it (a broken forwarder, a hostile sender on the LAN): a frame with an
// absurd RSSI or SNR is refused, an absurd field of a stat report is
// dropped, each counted under its reason. NaN fails every comparison and so
// every range.
const (
	minRSSI, maxRSSI = -200.0, 30.0 // dBm; sensitivity limits are near -150
	minSNR, maxSNR   = -50.0, 50.0  // dB
	minAlt, maxAlt   = -1000.0, 20000.0
	minTemp, maxTemp = -100.0, 200.0
)

func inRange(v, lo, hi float64) bool { return v >= lo && v <= hi }

// checkSignal reports an out-of-range RSSI or SNR with its reason.
func checkSignal(rssi, snr float64) (string, error) {
	if !inRange(rssi, minRSSI, maxRSSI) {
		return "rssi", fmt.Errorf("lora: rssi %g dBm outside %g..%g: %w", rssi, minRSSI, maxRSSI, gwmp.ErrField)
	}
	if !inRange(snr, minSNR, maxSNR) {
		return "snr", fmt.Errorf("lora: snr %g dB outside %g..%g: %w", snr, minSNR, maxSNR, gwmp.ErrField)
	}
	return "", nil
}

// checkStat drops the fields of s outside their ranges and returns one
// reason per dropped group. A position is dropped whole: half of one is
// not a position.
func checkStat(s *Stat) []string {
	var reasons []string
	if (s.Lati != nil && !inRange(*s.Lati, -90, 90)) || (s.Long != nil && !inRange(*s.Long, -180, 180)) ||
		(s.Lati == nil) != (s.Long == nil) {
		s.Lati, s.Long, s.Alti = nil, nil, nil
		reasons = append(reasons, "stat_position")
	}
	if s.Alti != nil && !inRange(*s.Alti, minAlt, maxAlt) {
		s.Alti = nil
		reasons = append(reasons, "stat_altitude")
	}
	if s.Temp != nil && !inRange(*s.Temp, minTemp, maxTemp) {
		s.Temp = nil
		reasons = append(reasons, "stat_temp")
	}
	if s.ACKR != nil && !inRange(*s.ACKR, 0, 100) {
		s.ACKR = nil
		reasons = append(reasons, "stat_ackr")
	}
	return reasons
}
