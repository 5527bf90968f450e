//go:build !nocamera && !noobd && !nosx127x

package agent

import (
	"reflect"
	"testing"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers/camera"
	"github.com/edge-agent/edge-agent/drivers/energy"
	"github.com/edge-agent/edge-agent/drivers/env"
	"github.com/edge-agent/edge-agent/drivers/gnss"
	"github.com/edge-agent/edge-agent/drivers/lora"
	"github.com/edge-agent/edge-agent/drivers/lora/sx127x"
	"github.com/edge-agent/edge-agent/drivers/obd"
)

// TestConfigDefaultsAreTheDriversDefaults holds config's defaults
// (config/hardware.go, config/lora.go, …) and each driver's DefaultOpts
// together: a driver block that sets only what it must gives the driver
// its own defaults, so neither side can drift from the other unnoticed.
// Fields the config cannot set (logger, clock, callbacks, paths the daemon
// chooses) are copied over before comparing.
func TestConfigDefaultsAreTheDriversDefaults(t *testing.T) {
	c, err := config.Parse([]byte(`version = 1
[[drivers.gnss]]
name = "gps"
[[drivers.env]]
name = "air"
[[drivers.camera]]
name = "dash"
dir = "/srv/dcim"
[[drivers.lora]]
name = "hotspot"
upstreams = []
[[drivers.lora]]
name = "radio"
mode = "sx127x"
gateway_eui = "B827EBFFFE000001"
[[drivers.obd]]
name = "car"
[[drivers.energy]]
name = "meter"
`))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Drivers
	same := func(family string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: config defaults give\n\t%+v\nthe driver's DefaultOpts are\n\t%+v", family, got, want)
		}
	}

	g := gnssOpts(d.GNSS[0], nil, Options{})
	wg := gnss.DefaultOpts()
	same("gnss", g, wg)

	e := envOpts(d.Env[0], Options{})
	we := env.DefaultOpts()
	e.Logger, e.Now, we.Logger, we.Now = nil, nil, nil, nil
	same("env", e, we)

	cam := cameraOpts(d.Camera[0], "/var/lib/edge-agent", Options{})
	wc := camera.DefaultOpts()
	wc.Dir = "/srv/dcim" // required: no default
	cam.Logger, cam.Now, wc.Logger, wc.Now = nil, nil, nil, nil
	same("camera", cam, wc)

	l := *loraOpts(d.LoRa[0], Options{})
	wl := lora.DefaultOpts()
	wl.Upstreams = []lora.Upstream{} // required: [] is tap mode
	same("lora", l, wl)

	x := sx127xOpts(d.LoRa[1], Options{})
	wx := sx127x.DefaultOpts()
	wx.Gateway = "B827EBFFFE000001" // required: no default
	same("sx127x", x, wx)
	if l := d.LoRa[1]; l.SPI != "/dev/spidev0.0" || l.ResetPin != "GPIO17" || l.DIO0Pin != "GPIO4" {
		t.Errorf("sx127x board defaults %q %q %q: the driver's documentation names /dev/spidev0.0, GPIO17 and GPIO4", l.SPI, l.ResetPin, l.DIO0Pin)
	}

	o := *obdOpts(d.OBD[0], Options{})
	wo := obd.DefaultOpts()
	o.Logger, o.Now, wo.Logger, wo.Now = nil, nil, nil, nil
	same("obd", o, wo)

	m := *energyOpts(d.Energy[0], Options{})
	wm := energy.DefaultOpts()
	m.Logger, m.Now, wm.Logger, wm.Now = nil, nil, nil, nil
	same("energy", m, wm)
}
