package config

import (
	"fmt"
	"net"
	"regexp"
	"time"
)

// LoRa is a LoRa radio: the Semtech UDP packet forwarder server of an
// SX1301/SX1302 hotspot, or a single-channel SX127x on SPI.
type LoRa struct {
	Name           string `toml:"name"`
	Mode           string `toml:"mode"` // udp | sx127x
	IncludePayload bool   `toml:"include_payload"`
	// udp
	Listen        string   `toml:"listen"`
	ReceiveBuffer ByteSize `toml:"receive_buffer"`
	StatInterval  Duration `toml:"stat_interval"`
	TxAckTimeout  Duration `toml:"tx_ack_timeout"`
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

var (
	loraModes      = []string{"udp", "sx127x"}
	loraBandwidths = []int{7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000, 500000}
	loraCodeRates  = []string{"4/5", "4/6", "4/7", "4/8"}
	euiPattern     = regexp.MustCompile(`^[0-9A-Fa-f]{2}([-:]?[0-9A-Fa-f]{2}){7}$`)
)

func (l *LoRa) setDefaults() {
	*l = LoRa{
		Mode: "udp", Listen: "127.0.0.1:1680", ReceiveBuffer: 32 * MiB,
		StatInterval: D(30 * time.Second), TxAckTimeout: D(5 * time.Second),
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
	}
	set := func(key string) bool { return changed[key] }
	p := checkName(k, l.Name)
	p = append(p, oneOf(k+".mode", l.Mode, loraModes)...)
	udpKeys := []string{"listen", "receive_buffer", "stat_interval", "tx_ack_timeout"}
	radioKeys := []string{"spi", "reset_pin", "dio0_pin", "gateway_eui", "freq_hz", "sf", "bandwidth_hz", "coding_rate", "sync_word", "tx_power_dbm"}
	other := radioKeys
	if l.Mode == "sx127x" {
		other = udpKeys
	}
	for _, key := range other {
		if set(key) {
			p = append(p, invalid(k+"."+key, "(set)", fmt.Sprintf("not used with mode = %q; remove it", l.Mode)))
		}
	}
	switch l.Mode {
	case "udp":
		if _, _, err := net.SplitHostPort(l.Listen); err != nil {
			p = append(p, invalid(k+".listen", l.Listen, `a host:port such as "127.0.0.1:1680"`))
		}
		if l.ReceiveBuffer < 1 || l.ReceiveBuffer > GiB {
			p = append(p, invalid(k+".receive_buffer", l.ReceiveBuffer, "must be between 1 B and 1 GiB"))
		}
		if l.StatInterval.Duration < 0 {
			p = append(p, invalid(k+".stat_interval", l.StatInterval, "must be 0s or more"))
		}
		if l.TxAckTimeout.Duration <= 0 {
			p = append(p, invalid(k+".tx_ack_timeout", l.TxAckTimeout, "must be more than 0s"))
		}
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

// loraTOML is the commented [[drivers.lora]] block of DefaultTOML.
func loraTOML() string {
	var l LoRa
	l.setDefaults()
	return fmt.Sprintf(`# LoRa radio. Keys:
#   name             required
#   mode             %s; default %q
#   include_payload  put the PHY payload itself in each lora.rx record, not only its SHA-256; default false
#   udp mode: the Semtech UDP packet forwarder server of an SX1301/SX1302 hotspot. Point the forwarder's
#   server_address at this host and serv_port_up/serv_port_down at the listen port.
#     listen           default %q
#     receive_buffer   socket receive buffer; default %q (a 20,000-packet burst). Above net.core.rmem_max it
#                      needs CAP_NET_ADMIN; the .deb raises rmem_max through /usr/lib/sysctl.d.
#     stat_interval    least time between lora.stat records per gateway; default %q
#     tx_ack_timeout   how long a downlink waits for the gateway's TX_ACK; default %q
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
#listen = "127.0.0.1:1680"
#
#[[drivers.lora]]
#name = "single-channel"
#mode = "sx127x"
#gateway_eui = "B827EBFFFE000001"
#freq_hz = 868100000
#
`, quoteList(loraModes), l.Mode, l.Listen, l.ReceiveBuffer.String(), l.StatInterval.String(), l.TxAckTimeout.String(),
		l.SPI, l.ResetPin, l.DIO0Pin, l.FreqHz, l.SF, l.BandwidthHz, quoteList(loraCodeRates), l.CodingRate, l.SyncWord, l.TxPowerDBm)
}
