package gnss

import (
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/condtest"
)

// Some timing receivers never send "*hh": their sentences are used only
// when the user says so, and counted as such otherwise.
func TestNoChecksumOnlyWhenConfigured(t *testing.T) {
	hms := epoch0.Format("150405.00")
	s := "$GPRMC," + hms + ",A,5231.20040,N,01324.29724,E,0.0,,301126,,,A\r\n" +
		"$GPGGA," + hms + ",5231.20040,N,01324.29724,E,1,08,1.0,34.5,M,44.9,M,,\r\n"
	records, _, d := replay(t, nil, []step{{s, 0}})
	if len(records) != 0 || d.Stats().NoChecksum != 2 {
		t.Errorf("checksum required: %d records, %d counted without checksum; want 0 and 2", len(records), d.Stats().NoChecksum)
	}
	records, _, _ = replay(t, func(o *Opts) { o.NoChecksum = true }, []step{{s, 0}})
	if len(records) != 1 {
		t.Errorf("checksum optional: %d records, want 1", len(records))
	}
	// A wrong checksum is refused whatever the setting.
	bad := withSum("GPRMC," + hms + ",A,5231.20040,N,01324.29724,E,0.0,,301126,,,A")
	bad = bad[:len(bad)-2] + "00\r\n"
	records, _, _ = replay(t, func(o *Opts) { o.NoChecksum = true }, []step{{bad, 0}})
	if len(records) != 0 {
		t.Errorf("a bad checksum was accepted with checksum optional")
	}
}

// A probe that began before Run hands what it read to the session: the
// first epoch is not lost to it.
func TestProbeHandsItsBytesToTheSession(t *testing.T) {
	port := newFakePort(t)
	c := &collector{}
	o := DefaultOpts()
	o.Device, o.Interval, o.OnFix = port.path(), 0, c.onFix
	d, err := New("gps0", &o)
	if err != nil {
		t.Fatal(err)
	}
	probed := make(chan error, 1)
	go func() { _, err := d.Probe(t.Context()); probed <- err }()
	time.Sleep(200 * time.Millisecond) // the probe has the port
	first := ublox(epoch0, 31.2, 0)
	port.master.Write([]byte(first[0].data + first[1].data))
	time.Sleep(50 * time.Millisecond)
	startDev(t, d, c)
	if err := <-probed; err != nil {
		t.Fatalf("probe: %v", err)
	}
	second := ublox(epoch0.Add(time.Second), 31.2, 0)
	port.master.Write([]byte(second[0].data + second[1].data))
	condtest.WaitFor(t, 5*time.Second, "two records", func() bool { obs, _ := c.snapshot(); return len(obs) == 2 })
	if st := d.Stats(); st.Reconnects != 0 {
		t.Errorf("%d reconnects", st.Reconnects)
	}
}

// Doctor's listen (daemon down) tells a receiver without checksums from one
// at the wrong baud rate.
func TestProbeSaysNoChecksums(t *testing.T) {
	port := newFakePort(t)
	o := DefaultOpts()
	o.Device = port.path()
	d, err := New("gps0", &o)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			port.master.Write([]byte("$GPGGA,140000.00,5231.20040,N,01324.29724,E,1,08,1.0,34.5,M,44.9,M,,\r\n"))
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	_, perr := d.Probe(t.Context())
	if perr == nil || !strings.Contains(perr.Error(), `checksum = "optional"`) {
		t.Errorf("probe of a receiver without checksums: %v", perr)
	}
}
