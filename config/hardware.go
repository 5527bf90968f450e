package config

import (
	"fmt"
	"time"
)

// GNSS is a receiver on a serial port (NMEA 0183, optionally u-blox UBX) or read through gpsd.
type GNSS struct {
	Name     string   `toml:"name"`
	Source   string   `toml:"source"`    // serial | gpsd
	Device   string   `toml:"device"`    // serial: the port, e.g. /dev/serial0 or /dev/serial/by-id/…
	Baud     int      `toml:"baud"`      // serial: bits per second
	UBX      bool     `toml:"ubx"`       // serial: also decode u-blox UBX NAV-PVT frames
	GPSDAddr string   `toml:"gpsd_addr"` // gpsd: host:port
	Interval Duration `toml:"interval"`  // time between gnss.fix records; 0s = every epoch
	// Checksum is "required" (sentences without "*hh" are refused) or
	// "optional" (accepted, for receivers that never send one).
	Checksum string `toml:"checksum"`
}

// gnssChecksums are the values of GNSS.Checksum.
var gnssChecksums = []string{"required", "optional"}

// Env is a BME280/BMP280 environment sensor on I2C.
type Env struct {
	Name         string   `toml:"name"`
	Bus          string   `toml:"bus"`          // /dev/i2c-N
	Addr         int      `toml:"addr"`         // 0x76 or 0x77
	Oversampling int      `toml:"oversampling"` // 1, 2, 4, 8 or 16
	Interval     Duration `toml:"interval"`
}

// Camera watches the directory a dashcam writes its segments or frames to.
type Camera struct {
	Name    string   `toml:"name"`
	Dir     string   `toml:"dir"`     // absolute path of the watched directory
	Pattern string   `toml:"pattern"` // glob of the files to attest, e.g. "*.mp4"
	Settle  Duration `toml:"settle"`  // unchanged this long without a close event = complete
	Rescan  Duration `toml:"rescan"`  // full directory scan, for filesystems without inotify
}

var (
	gnssSources = []string{"serial", "gpsd"}
	envAddrs    = []int{0x76, 0x77}
	oversample  = []int{1, 2, 4, 8, 16}
	baudRates   = []int{4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600}
)

func (g *GNSS) setDefaults() {
	*g = GNSS{Source: "serial", Device: "/dev/serial0", Baud: 9600, GPSDAddr: "127.0.0.1:2947", Interval: D(time.Second), Checksum: "required"}
}

func (e *Env) setDefaults() {
	*e = Env{Bus: "/dev/i2c-1", Addr: 0x76, Oversampling: 4, Interval: D(10 * time.Second)}
}

func (c *Camera) setDefaults() {
	*c = Camera{Pattern: "*", Settle: D(2 * time.Second), Rescan: D(30 * time.Second)}
}

func checkName(k, name string) []*KeyError {
	switch {
	case name == "":
		return []*KeyError{missing(k+".name", `add name = "..." (lowercase letters, digits, "_", "." or "-", at most 32); it becomes the records' source`)}
	case !driverName.MatchString(name):
		return []*KeyError{invalid(k+".name", name, `use 1 to 32 of lowercase letters, digits, "_", "." or "-"`)}
	}
	return nil
}

func (g GNSS) check(k string) []*KeyError {
	p := checkName(k, g.Name)
	p = append(p, oneOf(k+".source", g.Source, gnssSources)...)
	if g.Source == "serial" {
		p = append(p, absPath(k+".device", g.Device, false)...)
		if !containsInt(baudRates, g.Baud) {
			p = append(p, invalid(k+".baud", g.Baud, fmt.Sprintf("use one of %v", baudRates)))
		}
	}
	if g.Source == "gpsd" && g.GPSDAddr == "" {
		p = append(p, missing(k+".gpsd_addr", `add gpsd_addr = "127.0.0.1:2947"`))
	}
	if v := g.Interval.Duration; v < 0 || v > maxSimInterval {
		p = append(p, invalid(k+".interval", g.Interval, "must be 0s (every epoch) to "+formatDuration(maxSimInterval)))
	}
	if g.Checksum != "" { // "" (a struct built in code) is "required"
		p = append(p, oneOf(k+".checksum", g.Checksum, gnssChecksums)...)
	}
	return p
}

func (e Env) check(k string) []*KeyError {
	p := checkName(k, e.Name)
	p = append(p, absPath(k+".bus", e.Bus, false)...)
	if !containsInt(envAddrs, e.Addr) {
		p = append(p, invalid(k+".addr", fmt.Sprintf("0x%x", e.Addr), "a BME280/BMP280 answers at 0x76 or 0x77"))
	}
	if !containsInt(oversample, e.Oversampling) {
		p = append(p, invalid(k+".oversampling", e.Oversampling, "use 1, 2, 4, 8 or 16"))
	}
	if v := e.Interval.Duration; v < time.Second || v > maxSimInterval {
		p = append(p, invalid(k+".interval", e.Interval, "must be between 1s and "+formatDuration(maxSimInterval)))
	}
	return p
}

func (c Camera) check(k string) []*KeyError {
	p := checkName(k, c.Name)
	p = append(p, absPath(k+".dir", c.Dir, false)...)
	if c.Pattern == "" {
		p = append(p, missing(k+".pattern", `add pattern = "*.mp4" (or "*" for every file)`))
	}
	if v := c.Settle.Duration; v < 100*time.Millisecond || v > time.Hour {
		p = append(p, invalid(k+".settle", c.Settle, "must be between 100ms and 1h"))
	}
	if v := c.Rescan.Duration; v < time.Second || v > 24*time.Hour {
		p = append(p, invalid(k+".rescan", c.Rescan, "must be between 1s and 24h"))
	}
	return p
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// hardwareTOML is the commented block DefaultTOML shows for the hardware
// driver families.
func hardwareTOML() string {
	var g GNSS
	g.setDefaults()
	var e Env
	e.setDefaults()
	var c Camera
	c.setDefaults()
	return fmt.Sprintf(`#
# GNSS receiver. Keys:
#   name       required
#   source     %s; default %q
#   device     serial port; default %q (prefer /dev/serial/by-id/... for USB receivers)
#   baud       default %d
#   ubx        also decode u-blox UBX NAV-PVT, NAV-SOL and NAV-POSLLH frames; default %t
#   gpsd_addr  gpsd only: host:port; default %q
#   checksum   %s: "optional" accepts NMEA sentences without *hh, for receivers
#              that never send one (otherwise line noise could be signed); default %q
#   interval   time between gnss.fix records; "0s" = every epoch; default %q. Every epoch still
#              feeds the location stamp on other records.
#
#[[drivers.gnss]]
#name = "gps0"
#source = "serial"
#device = "/dev/serial0"
#baud = 9600
#
# BME280/BMP280 temperature, pressure (and humidity) sensor on I2C. Keys:
#   name          required
#   bus           I2C device node; default %q
#   addr          0x76 or 0x77; default 0x%x
#   oversampling  1, 2, 4, 8 or 16; default %d
#   interval      time between env.sample records; default %q
#
#[[drivers.env]]
#name = "bme0"
#bus = "/dev/i2c-1"
#addr = 0x76
#
# Dashcam: attests every complete file the camera writes in a directory (never modifies them). Keys:
#   name     required
#   dir      required: the directory the camera writes to
#   pattern  which files; default %q
#   settle   a file unchanged this long counts as complete; default %q
#   rescan   full rescan interval, for filesystems without inotify; default %q
#
#[[drivers.camera]]
#name = "dashcam0"
#dir = "/media/dashcam"
#pattern = "*.mp4"
#
`+loraTOML()+vehicleEnergyTOML()+`
`, quoteList(gnssSources), g.Source, g.Device, g.Baud, g.UBX, g.GPSDAddr, quoteList(gnssChecksums), g.Checksum, g.Interval.String(),
		e.Bus, e.Addr, e.Oversampling, e.Interval.String(),
		c.Pattern, c.Settle.String(), c.Rescan.String())
}
