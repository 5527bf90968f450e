package gnss

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/condtest"
)

// gpsdBinary finds the gpsd that scripts/install-test-deps.sh installs.
func gpsdBinary(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("gpsd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/gpsd"); err == nil {
		return "/usr/sbin/gpsd"
	}
	tb.Fatal("gpsd is not installed: run scripts/install-test-deps.sh")
	return ""
}

// A real gpsd reading a u-blox M8 replay from a pty. gpsd reports several
// TPVs for the first epochs (a 2D one from RMC, then a 3D one once GGA
// arrives); with the default 1 s interval the driver must sign one record
// per epoch, the complete one.
func TestRealGPSDOneRecordPerEpoch(t *testing.T) {
	bin := gpsdBinary(t)
	port := newFakePort(t)
	tcp := freeLoopbackPort(t)
	cmd := exec.Command(bin, "-N", "-n", "-b", "-S", fmt.Sprint(tcp), "-F", filepath.Join(t.TempDir(), "gpsd.sock"), port.path())
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gpsd: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	c := &collector{}
	o := DefaultOpts()
	o.Source, o.GPSDAddr, o.OnFix = SourceGPSD, fmt.Sprintf("127.0.0.1:%d", tcp), c.onFix
	d, err := New("gps0", &o)
	if err != nil {
		t.Fatal(err)
	}
	startDev(t, d, c)
	condtest.WaitFor(t, 10*time.Second, "gpsd connection", func() bool { return d.Stats().Connected })
	time.Sleep(300 * time.Millisecond) // WATCH takes effect
	const n = 5
	for i := 0; i < n; i++ {
		for _, s := range ublox(epoch0.Add(time.Duration(i)*time.Second), 31.2, 0) {
			if _, err := port.master.Write([]byte(s.data)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second)
	}
	condtest.WaitFor(t, 5*time.Second, "the last epoch", func() bool {
		obs, _ := c.snapshot()
		return len(obs) > 0 && asMap(t, obs[len(obs)-1].Data)["t"] == uint64(epoch0.Add((n-1)*time.Second).UnixNano())
	})
	obs, _ := c.snapshot()
	var records []map[string]any
	for _, o := range obs {
		records = append(records, asMap(t, o.Data))
	}
	onePerTime(t, records)
	if len(records) < n-1 {
		t.Errorf("%d records for %d epochs", len(records), n)
	}
	for i, r := range records {
		alt, okAlt := num(r, "alt")
		trk, okTrk := num(r, "trk")
		spd, _ := num(r, "spd")
		if !okAlt || alt != 34.5 || !okTrk || trk != 77.52 || spd < 0.21 || spd > 0.213 {
			t.Errorf("record %d is not the complete epoch (alt 34.5, track 77.52, speed 0.212 m/s from RMC): %v", i, r)
		}
	}
}
