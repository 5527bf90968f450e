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

// Setup is what the box should have, in the terms the checks need: the
// config, and what the drivers built from it open. Build it with LoadSetup
// and ProbeDrivers; tests build it by hand.
type Setup struct {
	ConfigPath string
	Config     *config.Config // nil when the file did not load
	ConfigErr  error
	// Socket is the status socket doctor asked, for the message when no
	// daemon answers.
	Socket string
	// Devices are the device nodes and directories the drivers open, as
	// the drivers list them: ProbeDrivers fills it.
	Devices []Device
	// Listen, by driver name, reads a device for a few seconds and says
	// whether what it sends is usable (a GNSS receiver at the wrong baud
	// rate, or without checksums, is present but useless). Used only with
	// the daemon down, on the driver's first device: it holds the port
	// otherwise. ProbeDrivers fills it from the drivers' own Probe.
	Listen map[string]func(ctx context.Context) error
	// DriversErr is why the daemon's drivers could not be built from the
	// config (a file they read, a family this build lacks).
	DriversErr error
	// Endpoints are the servers the drivers dial (ProbeDrivers adds them)
	// and the brokers and bootstrap peers the uplinks dial.
	Endpoints []Endpoint
}

// Device is a device node or directory a driver opens (drivers.Device).
type Device struct {
	Driver string // instance name, e.g. "gps"
	What   string // "GNSS receiver", "I²C bus", "SPI radio": what to look for on the board
	// Path is e.g. /dev/ttyAMA0, /dev/i2c-1, or a pattern the driver opens
	// every match of (/dev/gpiochip*).
	Path string
	// Kind is the access the driver needs: read and write for a node
	// (drivers.DeviceNode, also the zero Kind), read for a read-only node,
	// list and read for a directory (a camera's).
	Kind drivers.DeviceKind
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

// LoadSetup reads the config at path and lists the uplinks' endpoints. A
// config that does not load is kept as ConfigErr: doctor reports it and
// still checks what needs no config.
//
// The devices come from the drivers, not from here: ProbeDrivers lists what
// each driver the daemon would build says it opens, so a config key and the
// path the driver opens cannot disagree.
func LoadSetup(path string) Setup {
	s := Setup{ConfigPath: path}
	s.Config, s.ConfigErr = config.Load(path)
	if s.Config == nil {
		return s
	}
	// [uplinks.file] touches no network.
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
// (agent.BuildDrivers builds them; buildErr is its error) and lists what
// each says it opens (drivers.DeviceLister): its device nodes and
// directories become Devices, the servers it dials (gpsd, Modbus TCP)
// Endpoints. With the daemon down, each driver's Probe judges its first
// device: the driver's own code says whether the hardware answers (a GNSS
// receiver's sentences, an ELM327's AT Z, one Modbus poll, a BME280's chip
// id, the camera directory listing), not a second copy of it here.
//
// Drivers that open nothing (simulated ones, the LoRa packet forwarders'
// UDP and MQTT taps) add nothing: the running daemon reports those.
func (s *Setup) ProbeDrivers(ds []drivers.Driver, buildErr error) {
	s.DriversErr = buildErr
	var servers []Endpoint
	for _, d := range ds {
		if l, ok := d.(drivers.DeviceLister); ok {
			for _, dev := range l.Devices() {
				if dev.Kind == drivers.DeviceTCP {
					servers = append(servers, Endpoint{Uplink: dev.What, Addr: dev.Path})
					continue
				}
				s.Devices = append(s.Devices, Device{Driver: d.Name(), What: dev.What, Path: dev.Path, Kind: dev.Kind})
			}
		}
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
	// The drivers' servers first, as the checks of the drivers' devices
	// come before the uplinks'.
	s.Endpoints = append(servers, s.Endpoints...)
}
