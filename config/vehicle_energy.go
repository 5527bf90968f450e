package config

import (
	"fmt"
	"net"
	"slices"
	"time"
)

// OBD is an ELM327-compatible OBD-II adapter on a serial port (USB, or Bluetooth bound to /dev/rfcommN).
type OBD struct {
	Name        string   `toml:"name"`
	Device      string   `toml:"device"`       // the adapter's serial port
	Baud        int      `toml:"baud"`         // 0 = try 38400, then 9600
	PIDs        []string `toml:"pids"`         // mode 01 PIDs to sample, among obdPIDs
	Interval    Duration `toml:"interval"`     // time between vehicle.obd samples
	IdleRetry   Duration `toml:"idle_retry"`   // time between tries while the ignition is off or the adapter is away
	DTCInterval Duration `toml:"dtc_interval"` // time between stored-trouble-code reads; 0s = once per connection
	VIN         string   `toml:"vin"`          // plain | hash | off
}

// Energy is a Modbus energy meter or inverter, on RS-485 (RTU) or the network (TCP).
type Energy struct {
	Name        string   `toml:"name"`
	Transport   string   `toml:"transport"`    // rtu | tcp
	Device      string   `toml:"device"`       // rtu: the RS-485 adapter's serial port
	Baud        int      `toml:"baud"`         // rtu
	Parity      string   `toml:"parity"`       // rtu: none | even | odd
	StopBits    int      `toml:"stop_bits"`    // rtu: 1 or 2
	Addr        string   `toml:"addr"`         // tcp: host:port
	Slave       int      `toml:"slave"`        // slave id (rtu) or unit id (tcp)
	Profile     string   `toml:"profile"`      // register map: sdm120 | sdm630 | sunspec
	SunSpecBase int      `toml:"sunspec_base"` // sunspec: where the "SunS" marker is
	MaxPowerW   int      `toml:"max_power_w"`  // counters rising faster than this are flagged; 0 = the profile's rating
	Interval    Duration `toml:"interval"`
	Timeout     Duration `toml:"timeout"` // one request's answer
}

var (
	obdPIDs         = []string{"speed", "rpm", "coolant", "fuel", "odometer"}
	obdVIN          = []string{"plain", "hash", "off"}
	obdBauds        = []int{0, 9600, 38400, 57600, 115200, 230400, 500000}
	energyTransport = []string{"rtu", "tcp"}
	energyParity    = []string{"none", "even", "odd"}
	energyProfiles  = []string{"sdm120", "sdm630", "sunspec"}
	energyBauds     = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200}
)

func (o *OBD) setDefaults() {
	*o = OBD{Device: "/dev/ttyUSB0", PIDs: slices.Clone(obdPIDs), Interval: D(2 * time.Second),
		IdleRetry: D(15 * time.Second), DTCInterval: D(10 * time.Minute), VIN: "plain"}
}

func (e *Energy) setDefaults() {
	*e = Energy{Transport: "rtu", Device: "/dev/ttyUSB0", Baud: 9600, Parity: "none", StopBits: 1, Slave: 1,
		Profile: "sdm630", SunSpecBase: 40000, Interval: D(10 * time.Second), Timeout: D(time.Second)}
}

func durRange(k string, d Duration, lo, hi time.Duration) []*KeyError {
	if v := d.Duration; v < lo || v > hi {
		return []*KeyError{invalid(k, d, "must be between "+formatDuration(lo)+" and "+formatDuration(hi))}
	}
	return nil
}

func (o OBD) check(k string) []*KeyError {
	p := checkName(k, o.Name)
	p = append(p, absPath(k+".device", o.Device, false)...)
	if !containsInt(obdBauds, o.Baud) {
		p = append(p, invalid(k+".baud", o.Baud, fmt.Sprintf("use 0 (try 38400, then 9600) or one of %v", obdBauds[1:])))
	}
	if len(o.PIDs) == 0 {
		p = append(p, missing(k+".pids", "list at least one of "+quoteList(obdPIDs)))
	}
	for i, pid := range o.PIDs {
		p = append(p, oneOf(fmt.Sprintf("%s.pids[%d]", k, i), pid, obdPIDs)...)
	}
	p = append(p, durRange(k+".interval", o.Interval, 100*time.Millisecond, maxSimInterval)...)
	p = append(p, durRange(k+".idle_retry", o.IdleRetry, time.Second, time.Hour)...)
	if o.DTCInterval.Duration != 0 {
		p = append(p, durRange(k+".dtc_interval", o.DTCInterval, time.Minute, maxSimInterval)...)
	}
	return append(p, oneOf(k+".vin", o.VIN, obdVIN)...)
}

func (e Energy) check(k string) []*KeyError {
	p := checkName(k, e.Name)
	p = append(p, oneOf(k+".transport", e.Transport, energyTransport)...)
	switch e.Transport {
	case "rtu":
		p = append(p, absPath(k+".device", e.Device, false)...)
		if !containsInt(energyBauds, e.Baud) {
			p = append(p, invalid(k+".baud", e.Baud, fmt.Sprintf("use one of %v (the meter's menu shows it)", energyBauds)))
		}
		p = append(p, oneOf(k+".parity", e.Parity, energyParity)...)
		if e.StopBits != 1 && e.StopBits != 2 {
			p = append(p, invalid(k+".stop_bits", e.StopBits, "use 1 or 2"))
		}
	case "tcp":
		if _, _, err := net.SplitHostPort(e.Addr); err != nil {
			p = append(p, invalid(k+".addr", e.Addr, `use host:port, e.g. "192.168.1.50:502"`))
		}
	}
	p = append(p, intRange(k+".slave", e.Slave, 1, 247)...)
	p = append(p, oneOf(k+".profile", e.Profile, energyProfiles)...)
	if e.SunSpecBase != 40000 && e.SunSpecBase != 50000 {
		p = append(p, invalid(k+".sunspec_base", e.SunSpecBase, "use 40000 or 50000"))
	}
	if e.MaxPowerW < 0 || e.MaxPowerW > 10e6 {
		p = append(p, invalid(k+".max_power_w", e.MaxPowerW, "use 0 (the profile's rating) up to 10000000 W"))
	}
	p = append(p, durRange(k+".interval", e.Interval, time.Second, maxSimInterval)...)
	return append(p, durRange(k+".timeout", e.Timeout, 50*time.Millisecond, 10*time.Second)...)
}

// vehicleEnergyTOML is the commented [[drivers.obd]] and [[drivers.energy]] blocks of DefaultTOML.
func vehicleEnergyTOML() string {
	var o OBD
	o.setDefaults()
	var e Energy
	e.setDefaults()
	return fmt.Sprintf(`# OBD-II through an ELM327-compatible adapter (USB, or Bluetooth bound with rfcomm). Ignition off is a
# normal state: the driver waits and polls again. Keys:
#   name          required
#   device        the adapter's serial port; default %q (prefer /dev/serial/by-id/...)
#   baud          0 tries 38400 (the ELM327's rate), then 9600 (many clones); default %d
#   pids          mode 01 PIDs to sample, those the car offers: %s; default all
#   interval      time between vehicle.obd records; default %q
#   idle_retry    time between tries while the car or the adapter does not answer; default %q
#   dtc_interval  time between stored trouble code (vehicle.dtc) reads; "0s" = once per connection; default %q
#   vin           %s: sign the VIN once per boot (vehicle.vin), only its SHA-256, or not at all; default %q
#
#[[drivers.obd]]
#name = "car"
#device = "/dev/ttyUSB0"
#vin = "hash"
#
# Modbus energy meter or inverter. Counters that go backwards or rise faster than max_power_w allows are
# signed as read and flagged, never corrected. Keys:
#   name          required
#   transport     %s; default %q
#   device        rtu: the RS-485 adapter's serial port; default %q
#   baud          rtu: as set in the meter's menu; default %d
#   parity        rtu: %s; default %q
#   stop_bits     rtu: 1 or 2; default %d
#   addr          tcp: host:port of the device or gateway (port 502)
#   slave         slave id (rtu) or unit id (tcp), 1 to 247; default %d
#   profile       register map: %s; default %q
#   sunspec_base  sunspec: 40000 or 50000; default %d
#   max_power_w   0 = the profile's rating (SDM120 12.4 kW, SDM630 82.8 kW, SunSpec 100 kW); default %d
#   interval      time between energy.sample records; default %q
#   timeout       wait for one answer; default %q
#
#[[drivers.energy]]
#name = "meter"
#device = "/dev/ttyUSB1"
#profile = "sdm630"
#
#[[drivers.energy]]
#name = "inverter"
#transport = "tcp"
#addr = "192.168.1.50:502"
#profile = "sunspec"
#
`, o.Device, o.Baud, quoteList(obdPIDs), o.Interval.String(), o.IdleRetry.String(), o.DTCInterval.String(), quoteList(obdVIN), o.VIN,
		quoteList(energyTransport), e.Transport, e.Device, e.Baud, quoteList(energyParity), e.Parity, e.StopBits, e.Slave,
		quoteList(energyProfiles), e.Profile, e.SunSpecBase, e.MaxPowerW, e.Interval.String(), e.Timeout.String())
}
