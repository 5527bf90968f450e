//go:build !nocamera && !noobd && !nosx127x

package doctor_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/doctor"
	"github.com/edge-agent/edge-agent/drivers"
	"github.com/edge-agent/edge-agent/drivers/env"
	"github.com/edge-agent/edge-agent/drivers/gnss"
)

// TestDoctorChecksWhatTheDriverOpens: the paths doctor checks are the ones
// the driver says it opens, not ones re-derived from the config. The config
// leaves bus and gpsd_addr unset (config's defaults, /dev/i2c-1 and
// 127.0.0.1:2947); the drivers handed to doctor default to others, as a
// driver would whose default changed: doctor must check the drivers'.
func TestDoctorChecksWhatTheDriverOpens(t *testing.T) {
	b := newBox(t)
	data, _ := os.ReadFile(b.cfgPath)
	writeFile(t, b.cfgPath, string(data)+"[[drivers.env]]\nname = \"air\"\n[[drivers.gnss]]\nname = \"gps\"\nsource = \"gpsd\"\n")
	s := doctor.LoadSetup(b.cfgPath)
	if s.ConfigErr != nil {
		t.Fatal(s.ConfigErr)
	}
	if c := s.Config.Drivers; c.Env[0].Bus != "/dev/i2c-1" || c.GNSS[0].GPSDAddr != "127.0.0.1:2947" {
		t.Fatalf("config defaults changed (%q, %q): pick other driver defaults below", c.Env[0].Bus, c.GNSS[0].GPSDAddr)
	}
	air, err := env.New("air", &env.Opts{Bus: "/dev/i2c-7"})
	if err != nil {
		t.Fatal(err)
	}
	gps, err := gnss.New("gps", &gnss.Opts{Source: gnss.SourceGPSD, GPSDAddr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	s.ProbeDrivers([]drivers.Driver{air, gps}, nil)
	s.Socket = b.socket
	if len(s.Devices) != 1 || s.Devices[0].Path != "/dev/i2c-7" {
		t.Errorf("devices %+v, want the driver's /dev/i2c-7 only", s.Devices)
	}
	var eps []string
	for _, e := range s.Endpoints {
		eps = append(eps, e.Uplink+" "+e.Addr)
	}
	if len(eps) != 1 || eps[0] != "gpsd 127.0.0.1:1" {
		t.Errorf("endpoints %v, want the driver's gpsd 127.0.0.1:1 only", eps)
	}
	r := b.diagnose(t, s)
	expect(t, r, "air device", doctor.Fail, "/dev/i2c-7 does not exist", "check the wiring")
	result(t, r, "gpsd 127.0.0.1:1")
	for _, res := range r.Results {
		if strings.Contains(res.Message, "/dev/i2c-1") || strings.Contains(res.Name, "2947") {
			t.Errorf("doctor checked the config's default, not the driver's path: %+v", res)
		}
	}
}

// TestDevicesAreWhatTheProbesOpen: each driver's first listed device is the
// one its Probe looks for (the probe's error names it), so the list doctor
// checks is the driver's real one, and the SX127x adds the GPIO chips
// periph opens.
func TestDevicesAreWhatTheProbesOpen(t *testing.T) {
	b := newBox(t)
	dev := filepath.Join(b.root, "dev")
	data, _ := os.ReadFile(b.cfgPath)
	writeFile(t, b.cfgPath, string(data)+fmt.Sprintf(`
[[drivers.gnss]]
name = "gps"
device = %q
[[drivers.env]]
name = "air"
bus = "/dev/i2c-97"
[[drivers.camera]]
name = "dash"
dir = %q
[[drivers.lora]]
name = "radio"
mode = "sx127x"
gateway_eui = "B827EBFFFE000001"
spi = %q
[[drivers.obd]]
name = "car"
device = %q
[[drivers.energy]]
name = "meter"
device = %q
`, dev+"/gnss", dev+"/dcim", dev+"/spidev9.0", dev+"/obd", dev+"/rs485"))
	s := doctor.LoadSetup(b.cfgPath)
	if s.ConfigErr != nil {
		t.Fatal(s.ConfigErr)
	}
	ds, err := agent.BuildDrivers(s.Config, agent.Options{})
	s.ProbeDrivers(ds, err)
	if s.DriversErr != nil {
		t.Fatal(s.DriversErr)
	}
	want := map[string][]string{"gps": {dev + "/gnss"}, "air": {"/dev/i2c-97"}, "dash": {dev + "/dcim"},
		"radio": {dev + "/spidev9.0", "/dev/gpiochip*"}, "car": {dev + "/obd"}, "meter": {dev + "/rs485"}}
	got := map[string][]string{}
	for _, d := range s.Devices {
		got[d.Driver] = append(got[d.Driver], d.Path)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("devices %v\nwant %v", got, want)
	}
	for name, paths := range got {
		err := s.Listen[name](context.Background())
		if err == nil || !strings.Contains(err.Error(), paths[0]) {
			t.Errorf("%s: probe says %v; want it to name %s, the device doctor checks", name, err, paths[0])
		}
	}
}

// TestLoRaSourcesAreChecked: concentratord's event socket and a gateway
// bridge's broker are what those LoRa modes open, so doctor checks them
// with the daemon down: the socket exists and the service user may
// connect to it, the broker answers, and each failure names the key.
func TestLoRaSourcesAreChecked(t *testing.T) {
	b := newBox(t)
	sock := filepath.Join(b.root, "run", "concentratord_event")
	data, _ := os.ReadFile(b.cfgPath)
	writeFile(t, b.cfgPath, string(data)+fmt.Sprintf(`
[[drivers.lora]]
name = "conc"
mode = "concentratord"
event_url = "ipc://%s"
[[drivers.lora]]
name = "bridge"
mode = "mqtt"
mqtt_server = "tcp://127.0.0.1:1"
[[drivers.lora]]
name = "fwd"
upstreams = []
listen = "127.0.0.1:0"
`, sock))
	s := b.setup(t)
	if len(s.Devices) != 1 || s.Devices[0].Path != sock || s.Devices[0].Kind != drivers.DeviceSocket {
		t.Errorf("devices %+v, want only concentratord's socket %s (udp mode opens nothing)", s.Devices, sock)
	}
	r := b.diagnose(t, s)
	expect(t, r, "conc device", doctor.Fail, "concentratord event socket not found", "event_url of [[drivers.lora]]")
	expect(t, r, "lora broker 127.0.0.1:1", doctor.Fail, "unreachable", "mqtt_server of [[drivers.lora]]")

	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Chown(sock, 0, 21); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o660); err != nil {
		t.Fatal(err)
	}
	b.setUser(t, 1000, "dialout")
	expect(t, b.diagnose(t, s), "conc device", doctor.Fail, "user edge-agent cannot open "+sock, "usermod -aG i2c edge-agent")
	b.setUser(t, 1000, "i2c") // the socket's group (gid 21)
	expect(t, b.diagnose(t, s), "conc device", doctor.OK, "concentratord event socket present at "+sock+"; edge-agent may open it; its driver's probe passes", "")
}

// TestOnlyVehicleDriversCount: a box with only an OBD-II adapter or only a
// meter observes something; it is not "no drivers configured".
func TestOnlyVehicleDriversCount(t *testing.T) {
	for _, block := range []string{"[[drivers.obd]]\nname = \"car\"\n", "[[drivers.energy]]\nname = \"meter\"\n"} {
		b := newBox(t)
		writeFile(t, b.cfgPath, fmt.Sprintf("version = 1\n[device]\nkey = %q\ndata_dir = %q\n[uplinks.file]\nenabled = true\n%s",
			"file:"+filepath.Join(b.root, "var", "lib", "edge-agent", "device.key"), filepath.Join(b.root, "var", "lib", "edge-agent"), block))
		expect(t, b.diagnose(t, b.setup(t)), "drivers and uplinks", doctor.OK, "1 drivers, uplinks file", "")
	}
}
