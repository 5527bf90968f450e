package gnss

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/edge-agent/edge-agent/condtest"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/driverstest"
)

// fakePort is a pseudo-terminal standing in for a serial receiver: the
// driver opens the slave path like any tty; the test writes to the master.
type fakePort struct {
	master, slave *os.File
}

func newFakePort(tb testing.TB) *fakePort {
	tb.Helper()
	m, s, err := pty.Open()
	if err != nil {
		tb.Fatalf("open pty: %v", err)
	}
	p := &fakePort{master: m, slave: s}
	tb.Cleanup(p.unplug)
	return p
}

func (p *fakePort) path() string { return p.slave.Name() }

// unplug closes both ends: the slave device node disappears, as a USB
// receiver's does.
func (p *fakePort) unplug() {
	p.master.Close()
	p.slave.Close()
}

// collector gathers what a running Dev hands out: observations and fixes.
type collector struct {
	driverstest.Recorder
	mu    sync.Mutex
	fixes []drivers.Fix
}

func (c *collector) onFix(f drivers.Fix) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fixes = append(c.fixes, f)
}

func (c *collector) snapshot() ([]drivers.Observation, []drivers.Fix) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.All(), append([]drivers.Fix(nil), c.fixes...)
}

// startDev runs d until the test ends and checks that Run returns nil.
func startDev(tb testing.TB, d *Dev, c *collector) {
	tb.Helper()
	driverstest.Start(tb, d, c.Emit)
}

func TestSerialPTY(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		interval time.Duration
		wantObs  int // gnss.fix observations
		wantEps  int // OnFix calls
	}{
		{name: "every epoch", file: "standard.nmea", interval: 0, wantObs: 2, wantEps: 2},
		{name: "interval thins records, not OnFix", file: "multignss.nmea", interval: 2 * time.Second, wantObs: 3, wantEps: 6},
		{name: "no-fix epochs make no records", file: "nofix.nmea", interval: 0, wantObs: 1, wantEps: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := newFakePort(t)
			c := &collector{}
			o := DefaultOpts()
			o.Device, o.Interval, o.OnFix, o.Now, o.DateFloor, o.DateCeiling = port.path(), tt.interval, c.onFix, testNow, testFloor, testCeiling
			d, err := New("gps0", &o)
			if err != nil {
				t.Fatal(err)
			}
			startDev(t, d, c)
			// Write only once the driver has put the tty in raw mode.
			condtest.WaitFor(t, 5*time.Second, "port open", func() bool { return d.Stats().Connected })
			if _, err := port.master.Write(readFile(t, tt.file)); err != nil {
				t.Fatal(err)
			}
			condtest.WaitFor(t, 5*time.Second, fmt.Sprintf("%d epochs", tt.wantEps), func() bool {
				_, fixes := c.snapshot()
				return len(fixes) >= tt.wantEps
			})
			time.Sleep(3 * readTimeout) // nothing more may arrive
			obs, fixes := c.snapshot()
			if len(fixes) != tt.wantEps || len(obs) != tt.wantObs {
				t.Fatalf("got %d epochs and %d observations, want %d and %d", len(fixes), len(obs), tt.wantEps, tt.wantObs)
			}
			for _, o := range obs {
				f, ok := o.Data.(drivers.Fix)
				if o.Kind != drivers.KindGNSSFix || o.Source != "gps0" || !ok || !f.HasPosition() {
					t.Errorf("observation %+v: want a gnss.fix from gps0 with a position", o)
				}
			}
			if st := d.Stats(); !st.HaveOffset || st.Epochs != uint64(tt.wantEps) {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

// TestSerialReplug unplugs the receiver (the pty disappears) and plugs a new
// one in behind the same udev-style symlink: the driver must reconnect and
// resume without Run returning.
func TestSerialReplug(t *testing.T) {
	link := filepath.Join(t.TempDir(), "gps-by-id")
	repoint := func(target string) {
		tmp := link + ".new"
		os.Remove(tmp)
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, link); err != nil {
			t.Fatal(err)
		}
	}
	first := newFakePort(t)
	repoint(first.path())

	c := &collector{}
	o := DefaultOpts()
	o.Device, o.Interval, o.OnFix, o.Now, o.DateFloor, o.DateCeiling = link, 0, c.onFix, testNow, testFloor, testCeiling
	d, err := New("gps0", &o)
	if err != nil {
		t.Fatal(err)
	}
	startDev(t, d, c)
	condtest.WaitFor(t, 5*time.Second, "port open", func() bool { return d.Stats().Connected })
	first.master.Write(readFile(t, "standard.nmea"))
	condtest.WaitFor(t, 5*time.Second, "2 epochs before unplug", func() bool { _, f := c.snapshot(); return len(f) >= 2 })

	first.unplug()
	condtest.WaitFor(t, 5*time.Second, "disconnect", func() bool { return !d.Stats().Connected })

	second := newFakePort(t)
	repoint(second.path())
	condtest.WaitFor(t, 10*time.Second, "reconnect", func() bool { st := d.Stats(); return st.Connected && st.Reconnects == 1 })
	second.master.Write(readFile(t, "noisy.nmea"))
	condtest.WaitFor(t, 5*time.Second, "epochs after replug", func() bool { _, f := c.snapshot(); return len(f) >= 2+5 })
	st := d.Stats()
	if st.BadChecksum == 0 || st.Garbled == 0 || st.Sentences < 9+8 {
		t.Errorf("counters did not survive the replug: %+v", st.Counts)
	}
	if st.LastFix.Lat != 51.500083333333336 {
		t.Errorf("last fix = %+v, want the noisy track's last epoch", st.LastFix)
	}
}

func TestProbeSerial(t *testing.T) {
	port := newFakePort(t)
	noPerm := filepath.Join(t.TempDir(), "ttyNOPERM")
	if err := os.WriteFile(noPerm, nil, 0o000); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		device  string
		feed    []byte
		want    drivers.Probe
		wantErr error
	}{
		{name: "missing", device: "/dev/ttyNOSUCH0", want: drivers.Skipped, wantErr: ErrNoDevice},
		{name: "talking", device: port.path(), feed: readFile(t, "standard.nmea"), want: drivers.Loaded},
	}
	if os.Geteuid() != 0 { // root opens anything
		tests = append(tests, struct {
			name    string
			device  string
			feed    []byte
			want    drivers.Probe
			wantErr error
		}{name: "permission", device: noPerm, want: drivers.Failed, wantErr: ErrPermission})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultOpts()
			o.Device = tt.device
			d, err := New("gps0", &o)
			if err != nil {
				t.Fatal(err)
			}
			if tt.feed != nil {
				// Keep the receiver talking while Probe listens.
				stop := make(chan struct{})
				defer close(stop)
				go func() {
					for {
						select {
						case <-stop:
							return
						case <-time.After(50 * time.Millisecond):
							port.master.Write(tt.feed)
						}
					}
				}()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, err := d.Probe(ctx)
			if got != tt.want || (tt.wantErr == nil) != (err == nil) || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Probe = %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// freeLoopbackPort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freeLoopbackPort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestGPSD runs a real gpsd on a pty fed with a synthetic 5 Hz track and
// reads it through the driver's gpsd client.
func TestGPSD(t *testing.T) {
	gpsd, err := exec.LookPath("gpsd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/gpsd"); serr != nil {
			t.Fatalf("gpsd not found: install the Debian package gpsd (apt-get install -y gpsd): %v", err)
		}
		gpsd = "/usr/sbin/gpsd"
	}
	port := newFakePort(t)
	tcp := freeLoopbackPort(t)
	ctl := filepath.Join(t.TempDir(), "gpsd.sock")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, gpsd, "-N", "-n", "-G", "-S", fmt.Sprint(tcp), "-F", ctl, port.path())
	var gpsdLog bytes.Buffer // gpsd complains about D-Bus in containers: show it only on failure
	cmd.Stderr = &gpsdLog
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gpsd: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("gpsd stderr:\n%s", gpsdLog.String())
		}
	})

	// Feed epochs until the test ends: gpsd needs a live stream to
	// identify the device and to report fixes.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t0 := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			ts := t0.Add(time.Duration(i) * time.Second).Format("150405.00")
			ep := withSum("GPRMC,"+ts+",A,4807.0380,N,01131.0000,E,1.0,84.4,010726,,,A") + "\r\n" +
				withSum("GPGGA,"+ts+",4807.0380,N,01131.0000,E,1,08,0.9,545.4,M,46.9,M,,") + "\r\n" +
				withSum("GPGSA,A,3,04,05,09,12,24,25,29,31,,,,,1.8,0.9,1.5") + "\r\n"
			port.master.Write([]byte(ep))
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })

	c := &collector{}
	o := DefaultOpts()
	o.Source, o.GPSDAddr, o.Interval, o.OnFix = SourceGPSD, fmt.Sprintf("127.0.0.1:%d", tcp), 0, c.onFix
	d, err := New("gps0", &o)
	if err != nil {
		t.Fatal(err)
	}
	condtest.WaitFor(t, 10*time.Second, "gpsd listening", func() bool {
		p, _ := d.Probe(context.Background())
		return p == drivers.Loaded
	})
	startDev(t, d, c)
	// gpsd may report the first epochs as 2D until it has seen a GSA and an
	// altitude: wait for its settled 3D solution.
	var f drivers.Fix
	condtest.WaitFor(t, 20*time.Second, "a 3D gpsd fix", func() bool {
		obs, _ := c.snapshot()
		for _, o := range obs {
			if fx := o.Data.(drivers.Fix); fx.Mode == drivers.Fix3D {
				f = fx
				return true
			}
		}
		return false
	})
	if math.Abs(f.Lat-48.1173) > 1e-7 || math.Abs(f.Lon-(11+31.0/60)) > 1e-7 || f.Mode != drivers.Fix3D {
		t.Errorf("gpsd fix = %+v, want 48.1173 N 11.516667 E 3D", f)
	}
	if f.Time().Year() != 2026 {
		t.Errorf("gpsd fix time = %v, want the fed 2026-07-01 track", f.Time())
	}
	if st := d.Stats(); !st.Connected || st.Sentences == 0 {
		t.Errorf("stats = %+v", st)
	}

	// gpsd goes away and comes back on the same port: the client reconnects.
	cancel()
	cmd.Wait()
	condtest.WaitFor(t, 5*time.Second, "gpsd loss noticed", func() bool { return !d.Stats().Connected })
	ctx2, cancel2 := context.WithCancel(context.Background())
	cmd2 := exec.CommandContext(ctx2, gpsd, "-N", "-n", "-G", "-S", fmt.Sprint(tcp), "-F", ctl, port.path())
	if err := cmd2.Start(); err != nil {
		t.Fatalf("restart gpsd: %v", err)
	}
	t.Cleanup(func() { cancel2(); cmd2.Wait() })
	condtest.WaitFor(t, 15*time.Second, "reconnect to gpsd", func() bool { st := d.Stats(); return st.Connected && st.Reconnects >= 1 })
}

func TestProbeGPSDAbsent(t *testing.T) {
	o := DefaultOpts()
	o.Source, o.GPSDAddr = SourceGPSD, fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	d, err := New("gps0", &o)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := d.Probe(context.Background()); got != drivers.Skipped || !errors.Is(err, ErrNoGPSD) {
		t.Errorf("Probe = %v, %v; want skipped, ErrNoGPSD", got, err)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name    string
		devName string
		mod     func(*Opts)
		ok      bool
	}{
		{name: "defaults", devName: "gps0", mod: func(*Opts) {}, ok: true},
		{name: "missing name", devName: "", mod: func(*Opts) {}},
		{name: "missing source", devName: "g", mod: func(o *Opts) { o.Source = "" }},
		{name: "invalid source", devName: "g", mod: func(o *Opts) { o.Source = "usb" }},
		{name: "missing device", devName: "g", mod: func(o *Opts) { o.Device = "" }},
		{name: "negative baud", devName: "g", mod: func(o *Opts) { o.Baud = -1 }},
		{name: "negative interval", devName: "g", mod: func(o *Opts) { o.Interval = -time.Second }},
		{name: "gpsd default addr", devName: "g", mod: func(o *Opts) { o.Source, o.GPSDAddr = SourceGPSD, "" }, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultOpts()
			tt.mod(&o)
			_, err := New(tt.devName, &o)
			if (err == nil) != tt.ok {
				t.Errorf("New error = %v, want ok %v", err, tt.ok)
			}
		})
	}
}
