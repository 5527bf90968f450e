package doctor

import (
	"strings"

	"github.com/edge-agent/edge-agent/config"
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
	// Endpoints are the brokers and bootstrap peers the uplinks dial.
	Endpoints []Endpoint
}

// Device is a device node a driver needs.
type Device struct {
	Driver string // instance name, e.g. "gps"
	What   string // "GNSS receiver", "I²C bus", "SPI radio": what to look for on the board
	Path   string // e.g. /dev/ttyAMA0, /dev/i2c-1
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
// entries here when its config section exists.
func LoadSetup(path string) Setup {
	s := Setup{ConfigPath: path}
	s.Config, s.ConfigErr = config.Load(path)
	if s.Config == nil {
		return s
	}
	// [[drivers.sim]] and [uplinks.file] touch no device and no network;
	// a udp-mode LoRa driver only listens.
	for _, l := range s.Config.Drivers.LoRa {
		if l.Mode == "sx127x" && strings.HasPrefix(l.SPI, "/dev/") {
			s.Devices = append(s.Devices, Device{Driver: l.Name, What: "SX127x radio (SPI)", Path: l.SPI})
		}
	}
	return s
}
