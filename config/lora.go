package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// LoRa is a LoRa radio: the Semtech UDP packet forwarder of an SX1301/SX1302
// hotspot (multiplexed to its network servers, or tapped), ChirpStack
// Concentratord's event socket, a ChirpStack Gateway Bridge / MQTT Forwarder
// broker, or a single-channel SX127x on SPI.
type LoRa struct {
	Name           string `toml:"name"`
	Mode           string `toml:"mode"` // udp | concentratord | mqtt | sx127x
	IncludePayload bool   `toml:"include_payload"`
	// udp
	Listen        string         `toml:"listen"`
	Upstreams     []LoRaUpstream `toml:"upstreams"` // nil (absent) is an error in udp mode; [] is tap mode
	ReceiveBuffer ByteSize       `toml:"receive_buffer"`
	TxAckTimeout  Duration       `toml:"tx_ack_timeout"`
	// udp, concentratord, mqtt
	StatInterval  Duration `toml:"stat_interval"`
	Gateways      []string `toml:"gateways"` // allow-list of gateway EUIs; empty: any
	MaxGateways   int      `toml:"max_gateways"`
	GatewayExpiry Duration `toml:"gateway_expiry"`
	// concentratord
	EventURL string `toml:"event_url"`
	// mqtt
	MQTTServer    string `toml:"mqtt_server"`
	MQTTTopic     string `toml:"mqtt_topic"`
	MQTTMarshaler string `toml:"mqtt_marshaler"`
	MQTTUsername  string `toml:"mqtt_username"`
	MQTTPassword  string `toml:"mqtt_password"`
	// sx127x
	SPI         string `toml:"spi"`
	ResetPin    string `toml:"reset_pin"`
	DIO0Pin     string `toml:"dio0_pin"`
	GatewayEUI  string `toml:"gateway_eui"`
	FreqHz      int64  `toml:"freq_hz"`
	SF          int    `toml:"sf"`
	BandwidthHz int    `toml:"bandwidth_hz"`
	CodingRate  string `toml:"coding_rate"`
	SyncWord    int    `toml:"sync_word"`
	TxPowerDBm  int    `toml:"tx_power_dbm"`
}

// LoRaUpstream is one network server the udp multiplexer relays to
// ([[drivers.lora.upstreams]]).
type LoRaUpstream struct {
	Name       string   `toml:"name"`        // "" = addr; shown in status and lora.tx records
	Addr       string   `toml:"addr"`        // host:port of its Semtech UDP port
	UplinkOnly bool     `toml:"uplink_only"` // never relay its downlinks
	Gateways   []string `toml:"gateways"`    // only these gateway EUIs; empty: all
}

var (
	loraModes      = []string{"udp", "concentratord", "mqtt", "sx127x"}
	loraMarshalers = []string{"protobuf", "json"}
	loraBandwidths = []int{7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000, 500000}
	loraCodeRates  = []string{"4/5", "4/6", "4/7", "4/8"}
	euiPattern     = regexp.MustCompile(`^[0-9A-Fa-f]{2}([-:]?[0-9A-Fa-f]{2}){7}$`)
)

func (l *LoRa) setDefaults() {
	*l = LoRa{
		Mode: "udp", Listen: "127.0.0.1:1690", ReceiveBuffer: 32 * MiB,
		StatInterval: D(30 * time.Second), TxAckTimeout: D(5 * time.Second),
		MaxGateways: 64, GatewayExpiry: D(time.Hour), EventURL: "ipc:///tmp/concentratord_event",
		MQTTServer: "tcp://127.0.0.1:1883", MQTTTopic: "eu868", MQTTMarshaler: "protobuf",
		SPI: "/dev/spidev0.0", ResetPin: "GPIO17", DIO0Pin: "GPIO4",
		FreqHz: 868_100_000, SF: 7, BandwidthHz: 125_000, CodingRate: "4/5", SyncWord: 0x34, TxPowerDBm: 14,
	}
}

func (l LoRa) check(k string) []*KeyError {
	var def LoRa
	def.setDefaults()
	// A key of the other mode that differs from its default was set by hand
	// and would be silently ignored: say so.
	changed := map[string]bool{
		"listen": l.Listen != def.Listen, "receive_buffer": l.ReceiveBuffer != def.ReceiveBuffer,
		"stat_interval": l.StatInterval != def.StatInterval, "tx_ack_timeout": l.TxAckTimeout != def.TxAckTimeout,
		"spi": l.SPI != def.SPI, "reset_pin": l.ResetPin != def.ResetPin, "dio0_pin": l.DIO0Pin != def.DIO0Pin,
		"gateway_eui": l.GatewayEUI != def.GatewayEUI, "freq_hz": l.FreqHz != def.FreqHz, "sf": l.SF != def.SF,
		"bandwidth_hz": l.BandwidthHz != def.BandwidthHz, "coding_rate": l.CodingRate != def.CodingRate,
		"sync_word": l.SyncWord != def.SyncWord, "tx_power_dbm": l.TxPowerDBm != def.TxPowerDBm,
		"upstreams": l.Upstreams != nil, "gateways": l.Gateways != nil, "max_gateways": l.MaxGateways != def.MaxGateways,
		"gateway_expiry": l.GatewayExpiry != def.GatewayExpiry, "event_url": l.EventURL != def.EventURL,
		"mqtt_server": l.MQTTServer != def.MQTTServer, "mqtt_topic": l.MQTTTopic != def.MQTTTopic,
		"mqtt_marshaler": l.MQTTMarshaler != def.MQTTMarshaler, "mqtt_username": l.MQTTUsername != "", "mqtt_password": l.MQTTPassword != "",
	}
	set := func(key string) bool { return changed[key] }
	p := checkName(k, l.Name)
	p = append(p, oneOf(k+".mode", l.Mode, loraModes)...)
	// Which keys each mode reads; a key set for another mode is an error.
	sourceKeys := []string{"stat_interval", "gateways", "max_gateways", "gateway_expiry"}
	uses := map[string][]string{
		"udp":           append([]string{"listen", "upstreams", "receive_buffer", "tx_ack_timeout"}, sourceKeys...),
		"concentratord": append([]string{"event_url"}, sourceKeys...),
		"mqtt":          append([]string{"mqtt_server", "mqtt_topic", "mqtt_marshaler", "mqtt_username", "mqtt_password"}, sourceKeys...),
		"sx127x":        {"spi", "reset_pin", "dio0_pin", "gateway_eui", "freq_hz", "sf", "bandwidth_hz", "coding_rate", "sync_word", "tx_power_dbm"},
	}
	if used, ok := uses[l.Mode]; ok {
		keys := make([]string, 0, len(changed))
		for key := range changed {
			keys = append(keys, key)
		}
		slices.Sort(keys)
		for _, key := range keys {
			if set(key) && !slices.Contains(used, key) {
				p = append(p, invalid(k+"."+key, "(set)", fmt.Sprintf("not used with mode = %q; remove it", l.Mode)))
			}
		}
	}
	if l.Mode != "sx127x" {
		if l.StatInterval.Duration < 0 {
			p = append(p, invalid(k+".stat_interval", l.StatInterval, "must be 0s or more"))
		}
		for i, g := range l.Gateways {
			if !euiPattern.MatchString(g) {
				p = append(p, invalid(fmt.Sprintf("%s.gateways[%d]", k, i), g, "16 hex digits, the gateway EUI"))
			}
		}
		if l.MaxGateways < 1 || l.MaxGateways > 100_000 {
			p = append(p, invalid(k+".max_gateways", l.MaxGateways, "1 to 100000"))
		}
		if l.GatewayExpiry.Duration < time.Minute {
			p = append(p, invalid(k+".gateway_expiry", l.GatewayExpiry, "at least 1m"))
		}
	}
	switch l.Mode {
	case "udp":
		if _, _, err := net.SplitHostPort(l.Listen); err != nil {
			p = append(p, invalid(k+".listen", l.Listen, `a host:port such as "127.0.0.1:1690"`))
		}
		if l.ReceiveBuffer < 1 || l.ReceiveBuffer > GiB {
			p = append(p, invalid(k+".receive_buffer", l.ReceiveBuffer, "must be between 1 B and 1 GiB"))
		}
		if l.TxAckTimeout.Duration <= 0 {
			p = append(p, invalid(k+".tx_ack_timeout", l.TxAckTimeout, "must be more than 0s"))
		}
		p = append(p, l.checkUpstreams(k)...)
	case "concentratord":
		if !strings.HasPrefix(l.EventURL, "ipc://") && !strings.HasPrefix(l.EventURL, "tcp://") {
			p = append(p, invalid(k+".event_url", l.EventURL, `a ZeroMQ endpoint: "ipc:///tmp/concentratord_event" or "tcp://host:port" (concentratord's api.event_bind)`))
		}
	case "mqtt":
		if u, err := url.Parse(l.MQTTServer); err != nil || (u.Scheme != "tcp" && u.Scheme != "mqtt") || u.Host == "" {
			p = append(p, invalid(k+".mqtt_server", redactURL(l.MQTTServer), `a broker URL such as "tcp://127.0.0.1:1883"`))
		}
		if l.MQTTTopic == "" || strings.ContainsAny(l.MQTTTopic, "#+") {
			p = append(p, invalid(k+".mqtt_topic", l.MQTTTopic, `the bridge's topic prefix, usually the region: "eu868", "us915"; no wildcards`))
		}
		p = append(p, oneOf(k+".mqtt_marshaler", l.MQTTMarshaler, loraMarshalers)...)
	case "sx127x":
		if l.GatewayEUI == "" {
			p = append(p, missing(k+".gateway_eui", `add gateway_eui = "B827EBFFFE000001" (the board's EUI-64, 16 hex digits)`))
		} else if !euiPattern.MatchString(l.GatewayEUI) {
			p = append(p, invalid(k+".gateway_eui", l.GatewayEUI, "16 hex digits"))
		}
		if l.FreqHz < 137_000_000 || l.FreqHz > 1_020_000_000 {
			p = append(p, invalid(k+".freq_hz", l.FreqHz, "between 137000000 and 1020000000 (the SX127x's range)"))
		}
		if l.SF < 6 || l.SF > 12 {
			p = append(p, invalid(k+".sf", l.SF, "6 to 12"))
		}
		if !containsInt(loraBandwidths, l.BandwidthHz) {
			p = append(p, invalid(k+".bandwidth_hz", l.BandwidthHz, fmt.Sprintf("one of %v", loraBandwidths)))
		}
		p = append(p, oneOf(k+".coding_rate", l.CodingRate, loraCodeRates)...)
		if l.SyncWord < 1 || l.SyncWord > 255 {
			p = append(p, invalid(k+".sync_word", l.SyncWord, "1 to 255 (0x34 public LoRaWAN, 0x12 private)"))
		}
		if l.TxPowerDBm < 2 || l.TxPowerDBm > 17 {
			p = append(p, invalid(k+".tx_power_dbm", l.TxPowerDBm, "2 to 17"))
		}
		for _, f := range []struct{ key, v string }{{"spi", l.SPI}, {"reset_pin", l.ResetPin}, {"dio0_pin", l.DIO0Pin}} {
			if f.v == "" {
				p = append(p, missing(k+"."+f.key, "set it to the board's wiring"))
			}
		}
	}
	return p
}

func (l LoRa) checkUpstreams(k string) []*KeyError {
	if l.Upstreams == nil {
		return []*KeyError{missing(k+".upstreams", `list the network server(s) the forwarder sent to before, e.g. `+
			`upstreams = [{addr = "127.0.0.1:1680"}] for Helium gateway-rs or [{addr = "127.0.0.1:1700"}] for a local ChirpStack Gateway Bridge, `+
			`or upstreams = [] to only tap (behind a multiplexer that already serves the network)`)}
	}
	var p []*KeyError
	names := map[string]bool{}
	for i, u := range l.Upstreams {
		uk := fmt.Sprintf("%s.upstreams[%d]", k, i)
		host, _, err := net.SplitHostPort(u.Addr)
		switch {
		case u.Addr == "":
			p = append(p, missing(uk+".addr", `add addr = "host:port", the network server's Semtech UDP port`))
		case err != nil || host == "":
			p = append(p, invalid(uk+".addr", u.Addr, `host:port such as "127.0.0.1:1680" or "eu1.cloud.thethings.network:1700"`))
		case u.Addr == l.Listen:
			p = append(p, invalid(uk+".addr", u.Addr, "is this driver's own listen address: that would loop"))
		}
		name := u.Name
		if name == "" {
			name = u.Addr
		}
		if names[name] {
			p = append(p, invalid(uk+".name", name, "already used by another upstream"))
		}
		names[name] = true
		for j, g := range u.Gateways {
			if !euiPattern.MatchString(g) {
				p = append(p, invalid(fmt.Sprintf("%s.gateways[%d]", uk, j), g, "16 hex digits, the gateway EUI"))
			}
		}
	}
	return p
}

// redactURL hides a password in a URL before it reaches an error message.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

// loraTOML is the commented [[drivers.lora]] block of DefaultTOML.
func loraTOML() string {
	var l LoRa
	l.setDefaults()
	return fmt.Sprintf(`# LoRa radio. Keys:
#   name             required
#   mode             %s; default %q
#   include_payload  put the PHY payload itself in each lora.rx/lora.tx record, not only its SHA-256; default false
#   udp mode: a Semtech UDP packet forwarder (SX1301/SX1302 hotspots). The agent sits between the forwarder and
#   the network server(s) it served before, relays everything both ways and attests what it sees, so the
#   hotspot keeps its LoRaWAN service. Set the forwarder's server_address to this host and serv_port_up and
#   serv_port_down to the listen port, then list the old destination(s) as upstreams:
#     - Helium gateway-rs (listens on 1680):    upstreams = [{addr = "127.0.0.1:1680"}]
#     - local ChirpStack Gateway Bridge (1700): upstreams = [{addr = "127.0.0.1:1700"}]
#     - both, or TTN as well: add one {addr = …} per server; the forwarder's traffic reaches each.
#   upstreams = [] is tap mode: acknowledge and attest, relay and transmit nothing. Use it only behind a
#   multiplexer that already serves the network (it forwards to this agent as one more upstream); with a
#   forwarder pointed only at the agent, joins and downlinks would stop.
#     listen           default %q (neither 1680 nor 1700, so it can share the host with both)
#     upstreams        required: a list of tables ([[drivers.lora.upstreams]]), one per network server:
#     upstreams[].addr         host:port of its Semtech UDP port; host names are re-resolved
#     upstreams[].name         shown in status, doctor and lora.tx records; default addr
#     upstreams[].uplink_only  relay uplinks to it but never its downlinks; default false
#     upstreams[].gateways     only these gateway EUIs; default all
#     receive_buffer   socket receive buffer; default %q (a 20,000-packet burst). Above net.core.rmem_max it
#                      needs CAP_NET_ADMIN; the .deb raises rmem_max through /usr/lib/sysctl.d.
#     tx_ack_timeout   how long a downlink waits for the gateway's TX_ACK before its lora.tx says none came; default %q
#   concentratord mode: read ChirpStack Concentratord's event socket (read-only: never its command socket).
#     event_url        concentratord's api.event_bind; default %q
#   mqtt mode: read a ChirpStack Gateway Bridge / MQTT Forwarder's events from the broker it publishes to
#   ({mqtt_topic}/gateway/{id}/event/up and …/stats); nothing is published.
#     mqtt_server      default %q
#     mqtt_topic       topic prefix (the region); default %q
#     mqtt_marshaler   %s, as the bridge's marshaler; default %q
#     mqtt_username    default none
#     mqtt_password    default none
#   udp, concentratord and mqtt modes:
#     stat_interval    least time between lora.stat records per gateway; default %q
#     gateways         only accept these gateway EUIs; default any
#     max_gateways     most gateways tracked at once (more are counted and ignored); default %d
#     gateway_expiry   forget a gateway silent this long; default %q
#   sx127x mode: a single-channel SX1276/RFM95 board on SPI.
#     spi              SPI device; default %q
#     reset_pin        default %q
#     dio0_pin         default %q
#     gateway_eui      required: the EUI-64 recorded as the receiving gateway
#     freq_hz          default %d
#     sf               spreading factor 6 to 12; default %d
#     bandwidth_hz     default %d
#     coding_rate      %s; default %q
#     sync_word        0x34 public LoRaWAN, 0x12 private; default 0x%x
#     tx_power_dbm     2 to 17; default %d
#
#[[drivers.lora]]
#name = "hotspot"
#mode = "udp"
#listen = "127.0.0.1:1691"
#upstreams = [{name = "helium", addr = "127.0.0.1:1680"}]
#
#[[drivers.lora]]
#name = "single-channel"
#mode = "sx127x"
#gateway_eui = "B827EBFFFE000001"
#freq_hz = 868100000
#
`, quoteList(loraModes), l.Mode, l.Listen, l.ReceiveBuffer.String(), l.TxAckTimeout.String(), l.EventURL,
		l.MQTTServer, l.MQTTTopic, quoteList(loraMarshalers), l.MQTTMarshaler, l.StatInterval.String(), l.MaxGateways, l.GatewayExpiry.String(),
		l.SPI, l.ResetPin, l.DIO0Pin, l.FreqHz, l.SF, l.BandwidthHz, quoteList(loraCodeRates), l.CodingRate, l.SyncWord, l.TxPowerDBm)
}
