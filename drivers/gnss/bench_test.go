package gnss

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/drivers"
)

// benchEpochs returns n one-second epochs of RMC+GGA+GSA+GSV×3, the common
// default output of a u-blox or MediaTek module.
func benchEpochs(tb testing.TB, n int) [][]byte {
	tb.Helper()
	t0 := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	eps := make([][]byte, n)
	for i := range eps {
		t := t0.Add(time.Duration(i) * time.Second)
		ts, ds := t.Format("150405.00"), t.Format("020106")
		lat := fmt.Sprintf("4807.%05d", 3800+i%1000)
		var b bytes.Buffer
		for _, s := range []string{
			"GPRMC," + ts + ",A," + lat + ",N,01131.00000,E,0.412,77.52," + ds + ",,,A",
			"GPGGA," + ts + "," + lat + ",N,01131.00000,E,1,08,0.9,545.4,M,46.9,M,,",
			"GPGSA,A,3,04,05,09,12,24,25,29,31,,,,,1.8,0.9,1.5",
			"GPGSV,3,1,11,04,40,083,46,05,17,308,41,09,07,344,39,12,22,228,45",
			"GPGSV,3,2,11,24,58,297,44,25,42,153,48,29,26,207,37,31,75,094,46",
			"GPGSV,3,3,11,02,10,010,,06,05,120,,10,03,300,",
		} {
			b.WriteString(withSum(s))
			b.WriteString("\r\n")
		}
		eps[i] = b.Bytes()
	}
	return eps
}

// BenchmarkSentence measures NMEA sentences parsed and merged per second on
// one core.
func BenchmarkSentence(b *testing.B) {
	var lines [][]byte
	for _, ep := range benchEpochs(b, 1000) {
		lines = append(lines, bytes.SplitAfter(bytes.TrimSpace(ep), []byte("\r\n"))...)
	}
	a := NewAssembler()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := a.Feed(lines[i%len(lines)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sentences/s")
}

// BenchmarkEpoch measures CPU per fix: the bytes of one epoch through the
// stream decoder (framing, checksum, parse, merge) to a completed Fix.
func BenchmarkEpoch(b *testing.B) {
	eps := benchEpochs(b, 1000)
	var n int
	dec := newDecoder(false, NewAssembler(), func(f drivers.Fix, _ time.Time) {
		if f.HasPosition() {
			n++
		}
	})
	at := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dec.write(eps[i%len(eps)], at)
		dec.flush(at)
	}
	b.StopTimer()
	if n != b.N {
		b.Fatalf("%d fixes from %d epochs", n, b.N)
	}
}
