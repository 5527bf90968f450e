package doctor

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/drivers"
)

// Setup is what the config says the box should have, in the terms the checks
// need. Build it with LoadSetup; tests build it by hand.
type Setup struct {
	ConfigPath string
	Config     *config.Config // nil when the file did not load
	ConfigErr  error
	// Socket is the status socket doctor asked, for the message when no
	// daemon answers.
	Socket string
	// Devices are the device nodes the configured drivers open.
	Devices []Device
	// Listen, by driver name, reads a device for a few seconds and says
	// whether what it sends is usable (a GNSS receiver at the wrong baud
	// rate, or without checksums, is present but useless). Used only with
	// the daemon down: it holds the port otherwise. ProbeDrivers fills it
	// from the drivers' own Probe.
	Listen map[string]func(ctx context.Context) error
	// DriversErr is why the daemon's drivers could not be built from the
	// config (a file they read, a family this build lacks).
	DriversErr error
	// Endpoints are the brokers and bootstrap peers the uplinks dial.
	Endpoints []Endpoint
}

// Device is a device node a driver needs.
type Device struct {
	Driver string // instance name, e.g. "gps"
	What   string // "GNSS receiver", "I²C bus", "SPI radio": what to look for on the board
	Path   string // e.g. /dev/ttyAMA0, /dev/i2c-1
	// Dir is set for a directory the driver reads (a camera's): the
	// service user needs to list it, not to write it.
	Dir bool
}

// Endpoint is a network service an uplink connects to.
type Endpoint struct {
	Uplink string // "mqtt", "p2p"
	Addr   string // host:port
	// TLS endpoints are handshaken with the configured CA and client
	// certificate; ServerName defaults to Addr's host.
	TLS                       bool
	ServerName                string
	CAFile, CertFile, KeyFile string
}

// LoadSetup reads the config at path and lists the devices and endpoints it
// names. A config that does not load is kept as ConfigErr: doctor reports it
// and still checks what needs no config.
//
// Each driver family and uplink with a device node or a server adds its
// entries here when its config section exists. What each device sends is
// judged by its driver's Probe: see ProbeDrivers.
func LoadSetup(path string) Setup {
	s := Setup{ConfigPath: path}
	s.Config, s.ConfigErr = config.Load(path)
	if s.Config == nil {
		return s
	}
	// [[drivers.sim]] and [uplinks.file] touch no device and no network;
	// a udp-mode LoRa driver listens and sends to its upstreams over UDP,
	// which has no handshake to probe: the running daemon reports those.
	for _, l := range s.Config.Drivers.LoRa {
		if l.Mode == "sx127x" && strings.HasPrefix(l.SPI, "/dev/") {
			s.Devices = append(s.Devices, Device{Driver: l.Name, What: "SX127x radio (SPI)", Path: l.SPI})
		}
	}
	for _, g := range s.Config.Drivers.GNSS {
		switch g.Source {
		case "serial":
			s.Devices = append(s.Devices, Device{Driver: g.Name, What: "GNSS receiver (serial)", Path: g.Device})
		case "gpsd":
			s.Endpoints = append(s.Endpoints, Endpoint{Uplink: "gpsd", Addr: g.GPSDAddr})
		}
	}
	for _, e := range s.Config.Drivers.Env {
		s.Devices = append(s.Devices, Device{Driver: e.Name, What: "I²C bus", Path: i2cNode(e.Bus)})
	}
	for _, c := range s.Config.Drivers.Camera {
		s.Devices = append(s.Devices, Device{Driver: c.Name, What: "camera directory", Path: c.Dir, Dir: true})
	}
	// OBD adapters and RTU meters are asked once with the daemon down: AT Z
	// finds a wrong baud rate, one Modbus poll a wrong slave id or swapped
	// A/B wires (timeouts), parity (CRC errors) or profile (exceptions).
	for _, o := range s.Config.Drivers.OBD {
		s.Devices = append(s.Devices, Device{Driver: o.Name, What: "OBD-II adapter (ELM327, serial)", Path: o.Device})
	}
	for _, e := range s.Config.Drivers.Energy {
		if e.Transport == "tcp" {
			s.Endpoints = append(s.Endpoints, Endpoint{Uplink: "modbus", Addr: e.Addr})
			continue
		}
		s.Devices = append(s.Devices, Device{Driver: e.Name, What: "RS-485 adapter (Modbus RTU)", Path: e.Device})
	}
	if m := s.Config.Uplinks.MQTT; m.Enabled {
		for _, srv := range m.Servers {
			addr, tls, err := brokerAddr(srv)
			if err != nil {
				continue // config validation already named it
			}
			s.Endpoints = append(s.Endpoints, Endpoint{Uplink: "mqtt", Addr: addr, TLS: tls,
				CAFile: m.CAFile, CertFile: m.CertFile, KeyFile: m.KeyFile})
		}
	}
	if p := s.Config.Uplinks.P2P; p.Enabled {
		for _, ma := range p.Bootstrap {
			if addr, ok := multiaddrTCP(ma); ok {
				s.Endpoints = append(s.Endpoints, Endpoint{Uplink: "p2p", Addr: addr})
			}
		}
	}
	return s
}

// multiaddrTCP is the host:port of a TCP multiaddr such as
// /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW… (Noise runs over it, not TLS).
func multiaddrTCP(ma string) (string, bool) {
	parts := strings.Split(strings.TrimPrefix(ma, "/"), "/")
	var host, port string
	for i := 0; i+1 < len(parts); i += 2 {
		switch parts[i] {
		case "ip4", "ip6", "dns", "dns4", "dns6":
			host = parts[i+1]
		case "tcp":
			port = parts[i+1]
		}
	}
	if host == "" || port == "" {
		return "", false
	}
	return net.JoinHostPort(host, port), true
}

// i2cNode turns a bus given as a number ("1") into its device node.
func i2cNode(bus string) string {
	if strings.HasPrefix(bus, "/") {
		return bus
	}
	return "/dev/i2c-" + bus
}

// brokerAddr is a broker URL's host:port (with MQTT's default ports) and
// whether it speaks TLS.
func brokerAddr(raw string) (string, bool, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, err
	}
	tls := u.Scheme == "ssl" || u.Scheme == "tls" || u.Scheme == "mqtts"
	port := u.Port()
	if port == "" {
		port = "1883"
		if tls {
			port = "8883"
		}
	}
	return net.JoinHostPort(u.Hostname(), port), tls, nil
}

// ProbeDrivers takes the drivers the daemon would run for s.Config
// (agent.BuildDrivers builds them; buildErr is its error) and, with the
// daemon down, asks each configured device's driver for its Probe: the
// driver's own code says whether the hardware answers (a GNSS receiver's
// sentences, an ELM327's AT Z, one Modbus poll, a BME280's chip id, the
// camera directory listing), not a second copy of it here.
func (s *Setup) ProbeDrivers(ds []drivers.Driver, buildErr error) {
	s.DriversErr = buildErr
	for _, d := range ds {
		p, ok := d.(drivers.Prober)
		if !ok {
			continue
		}
		if s.Listen == nil {
			s.Listen = map[string]func(context.Context) error{}
		}
		s.Listen[d.Name()] = func(ctx context.Context) error {
			outcome, err := p.Probe(ctx)
			if err == nil && outcome != drivers.Loaded {
				err = fmt.Errorf("the driver's probe says %s", outcome)
			}
			return err
		}
	}
}
