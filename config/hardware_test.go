package config

import (
	"errors"
	"strings"
	"testing"
)

func TestHardwareDrivers(t *testing.T) {
	for _, tc := range []sectionCase{
		{"gnss defaults", "[[drivers.gnss]]\nname = \"gps0\"\n", "", nil},
		{"gnss via gpsd", "[[drivers.gnss]]\nname = \"gps0\"\nsource = \"gpsd\"\ngpsd_addr = \"127.0.0.1:2947\"\n", "", nil},
		{"gnss bad source", "[[drivers.gnss]]\nname = \"gps0\"\nsource = \"usb\"\n", "drivers.gnss[0].source", ErrInvalid},
		{"gnss odd baud", "[[drivers.gnss]]\nname = \"gps0\"\nbaud = 9601\n", "drivers.gnss[0].baud", ErrInvalid},
		{"gnss relative device", "[[drivers.gnss]]\nname = \"gps0\"\ndevice = \"ttyS0\"\n", "drivers.gnss[0].device", ErrInvalid},
		{"gnss no name", "[[drivers.gnss]]\nbaud = 9600\n", "drivers.gnss[0].name", ErrMissing},
		{"env defaults", "[[drivers.env]]\nname = \"bme0\"\n", "", nil},
		{"env hex address", "[[drivers.env]]\nname = \"bme0\"\naddr = 0x77\n", "", nil},
		{"env wrong address", "[[drivers.env]]\nname = \"bme0\"\naddr = 0x40\n", "drivers.env[0].addr", ErrInvalid},
		{"env oversampling", "[[drivers.env]]\nname = \"bme0\"\noversampling = 3\n", "drivers.env[0].oversampling", ErrInvalid},
		{"camera", "[[drivers.camera]]\nname = \"cam\"\ndir = \"/media/cam\"\npattern = \"*.mp4\"\n", "", nil},
		{"camera without dir", "[[drivers.camera]]\nname = \"cam\"\n", "drivers.camera[0].dir", ErrMissing},
		{"camera typo", "[[drivers.camera]]\nname = \"cam\"\ndir = \"/m\"\npatern = \"*\"\n", "drivers.camera[0].patern", ErrUnknownKey},
		{"names unique across families", "[[drivers.gnss]]\nname = \"x\"\n[[drivers.env]]\nname = \"x\"\n", "drivers.env[0].name", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.run(t)
			if c != nil && len(c.Drivers.GNSS)+len(c.Drivers.Env)+len(c.Drivers.Camera) != 1 {
				t.Fatalf("driver not decoded: %+v", c.Drivers)
			}
		})
	}
}

func TestMQTTUplink(t *testing.T) {
	for _, tc := range []sectionCase{
		{"defaults", "[uplinks.mqtt]\nenabled = true\n", "", nil},
		{"tls with client cert", "[uplinks.mqtt]\nenabled = true\nservers = [\"mqtts://b:8883\", \"ssl://c\"]\nca_file = \"/etc/ca.pem\"\ncert_file = \"/etc/c.pem\"\nkey_file = \"/etc/k.pem\"\n", "", nil},
		{"bad scheme", "[uplinks.mqtt]\nservers = [\"http://b\"]\n", "uplinks.mqtt.servers[0]", ErrInvalid},
		{"servers not a list", "[uplinks.mqtt]\nservers = \"tcp://b\"\n", "uplinks.mqtt.servers", ErrInvalid},
		{"no servers", "[uplinks.mqtt]\nenabled = true\nservers = []\n", "uplinks.mqtt.servers", ErrMissing},
		{"cert without key", "[uplinks.mqtt]\ncert_file = \"/etc/c.pem\"\n", "uplinks.mqtt.key_file", ErrInvalid},
		{"password without user", "[uplinks.mqtt]\npassword = \"x\"\n", "uplinks.mqtt.username", ErrMissing},
		{"wildcard prefix", "[uplinks.mqtt]\ntopic_prefix = \"a/#\"\n", "uplinks.mqtt.topic_prefix", ErrInvalid},
		{"window", "[uplinks.mqtt]\nwindow = 0\n", "uplinks.mqtt.window", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t) })
	}
}

func TestLoRa(t *testing.T) {
	for _, tc := range []sectionCase{
		{"udp without upstreams", "[[drivers.lora]]\nname = \"hotspot\"\n", "drivers.lora[0].upstreams", ErrMissing},
		{"udp multiplexer", "[[drivers.lora]]\nname = \"hotspot\"\nupstreams = [{addr = \"127.0.0.1:1680\"}]\n", "", nil},
		{"udp tap", "[[drivers.lora]]\nname = \"hotspot\"\nupstreams = []\n", "", nil},
		{"upstream tables", "[[drivers.lora]]\nname = \"h\"\n[[drivers.lora.upstreams]]\nname = \"ttn\"\naddr = \"eu1.cloud.thethings.network:1700\"\nuplink_only = true\ngateways = [\"AA555A0000000001\"]\n[[drivers.lora.upstreams]]\naddr = \"127.0.0.1:1680\"\n", "", nil},
		{"upstream without addr", "[[drivers.lora]]\nname = \"h\"\nupstreams = [{name = \"x\"}]\n", "drivers.lora[0].upstreams[0].addr", ErrMissing},
		{"upstream loops", "[[drivers.lora]]\nname = \"h\"\nupstreams = [{addr = \"127.0.0.1:1690\"}]\n", "drivers.lora[0].upstreams[0].addr", ErrInvalid},
		{"upstream names clash", "[[drivers.lora]]\nname = \"h\"\nupstreams = [{addr = \"a:1\"}, {addr = \"a:1\"}]\n", "drivers.lora[0].upstreams[1].name", ErrInvalid},
		{"upstream unknown key", "[[drivers.lora]]\nname = \"h\"\nupstreams = [{adr = \"a:1\"}]\n", "drivers.lora[0].upstreams[0].adr", ErrUnknownKey},
		{"bad gateway eui", "[[drivers.lora]]\nname = \"h\"\nupstreams = []\ngateways = [\"xyz\"]\n", "drivers.lora[0].gateways[0]", ErrInvalid},
		{"max gateways", "[[drivers.lora]]\nname = \"h\"\nupstreams = []\nmax_gateways = 0\n", "drivers.lora[0].max_gateways", ErrInvalid},
		{"concentratord", "[[drivers.lora]]\nname = \"c\"\nmode = \"concentratord\"\n", "", nil},
		{"concentratord bad url", "[[drivers.lora]]\nname = \"c\"\nmode = \"concentratord\"\nevent_url = \"/tmp/x\"\n", "drivers.lora[0].event_url", ErrInvalid},
		{"upstreams on concentratord", "[[drivers.lora]]\nname = \"c\"\nmode = \"concentratord\"\nupstreams = []\n", "drivers.lora[0].upstreams", ErrInvalid},
		{"mqtt json", "[[drivers.lora]]\nname = \"m\"\nmode = \"mqtt\"\nmqtt_marshaler = \"json\"\nmqtt_topic = \"us915\"\n", "", nil},
		{"mqtt bad marshaler", "[[drivers.lora]]\nname = \"m\"\nmode = \"mqtt\"\nmqtt_marshaler = \"xml\"\n", "drivers.lora[0].mqtt_marshaler", ErrInvalid},
		{"mqtt wildcard topic", "[[drivers.lora]]\nname = \"m\"\nmode = \"mqtt\"\nmqtt_topic = \"#\"\n", "drivers.lora[0].mqtt_topic", ErrInvalid},
		{"sx127x", "[[drivers.lora]]\nname = \"r\"\nmode = \"sx127x\"\ngateway_eui = \"B8-27-EB-FF-FE-00-00-01\"\nsf = 9\n", "", nil},
		{"sx127x without eui", "[[drivers.lora]]\nname = \"r\"\nmode = \"sx127x\"\n", "drivers.lora[0].gateway_eui", ErrMissing},
		{"udp key on a radio", "[[drivers.lora]]\nname = \"r\"\nmode = \"sx127x\"\ngateway_eui = \"B827EBFFFE000001\"\nlisten = \"0.0.0.0:1700\"\n", "drivers.lora[0].listen", ErrInvalid},
		{"radio key on udp", "[[drivers.lora]]\nname = \"h\"\nupstreams = []\nsf = 9\n", "drivers.lora[0].sf", ErrInvalid},
		{"bad listen", "[[drivers.lora]]\nname = \"h\"\nupstreams = []\nlisten = \"1680\"\n", "drivers.lora[0].listen", ErrInvalid},
		{"same listen twice", "[[drivers.lora]]\nname = \"a\"\nupstreams = []\n[[drivers.lora]]\nname = \"b\"\nupstreams = []\n", "drivers.lora[1].listen", ErrInvalid},
		{"odd bandwidth", "[[drivers.lora]]\nname = \"r\"\nmode = \"sx127x\"\ngateway_eui = \"B827EBFFFE000001\"\nbandwidth_hz = 100000\n", "drivers.lora[0].bandwidth_hz", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t) })
	}
}

// sectionCase is one config snippet (after "version = 1") and the error it
// must give: wantKey "" means it must be valid.
type sectionCase struct {
	name    string
	toml    string
	wantKey string
	wantErr error
}

// run parses the snippet, checks the outcome and returns the config when
// it was valid.
func (tc sectionCase) run(t *testing.T) *Config {
	t.Helper()
	c, err := Parse([]byte("version = 1\n" + tc.toml))
	if tc.wantKey == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return c
	}
	if err == nil || !strings.Contains(err.Error(), tc.wantKey) || !errors.Is(err, tc.wantErr) {
		t.Fatalf("err = %v; want %v naming %q", err, tc.wantErr, tc.wantKey)
	}
	return nil
}
