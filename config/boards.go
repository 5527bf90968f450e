package config

import "strings"

// boardsTOML is the commented block of ready-made driver configs for the
// common boards, shown before the per-family reference in DefaultTOML. Each
// example is complete: uncommenting its lines gives a config that loads
// (TestBoardExamplesLoad), so a new owner edits nothing but the device path.
const boardsTOML = `# Examples for common boards: uncomment the block for your hardware (remove the leading "#"
# of its lines), then apply it with: systemctl reload edge-agent
#
# >>> Raspberry Pi LoRa hotspot with an SX1302 concentrator HAT (RAK2287, RAK5146, SX1302 CoreCell).
# The HAT is driven by Semtech's packet forwarder (sx1302_hal lora_pkt_fwd); in its
# global_conf.json set "server_address": "localhost", "serv_port_up": 1690, "serv_port_down": 1690.
# edge-agent attests what the gateway hears and passes every packet on, both ways, to the network
# server the forwarder used before (here a ChirpStack Gateway Bridge on port 1700; Helium's
# gateway-rs listens on 1680), so the hotspot keeps its LoRaWAN service.
#[[drivers.lora]]
#name = "sx1302"
#mode = "udp"
#listen = "127.0.0.1:1690"
#upstreams = [{name = "network", addr = "127.0.0.1:1700"}]
#
# >>> USB GNSS receiver (a u-blox 7/8 dongle appears as /dev/ttyACM0; the stable name is under
# /dev/serial/by-id/). The edge-agent user reads it through the dialout group.
#[[drivers.gnss]]
#name = "gps-usb"
#source = "serial"
#device = "/dev/ttyACM0"
#baud = 9600
#ubx = true
#
# >>> BME280 breakout on the Pi's I2C pins (SDA GPIO2, SCL GPIO3; enable I2C with
# raspi-config → Interface Options → I2C). Address 0x76, or 0x77 when SDO is tied high.
#[[drivers.env]]
#name = "bme280"
#bus = "/dev/i2c-1"
#addr = 0x76
#interval = "60s"
#
# A hotspot also needs an uplink: set enabled = true and servers in [uplinks.mqtt] below.
#
`

// withBoards puts boardsTOML before the driver reference in the default.
func withBoards(s string) string {
	return strings.Replace(s, "# Drivers: one [[drivers.FAMILY]]", boardsTOML+"# Drivers: one [[drivers.FAMILY]]", 1)
}
