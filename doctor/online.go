package doctor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/edge-agent/edge-agent/status"
)

// Thresholds for the daemon's document.
const (
	// stallAfter: the pipeline commits or idles every few seconds; this long
	// without either means the store is stuck (fsync on a dying card).
	stallAfter = 2 * time.Minute
	// noFixWarn and noFixFail: a receiver with a sky view fixes within
	// minutes of a cold start.
	noFixWarn = 10 * time.Minute
	noFixFail = 30 * time.Minute
	// silentAfter: a loaded sensor or radio that has said nothing this long
	// is stuck or disconnected (a camera is exempt: a parked car is quiet).
	silentAfter = 30 * time.Minute
	// ackStale: a backlog with no ack for this long is not just a slow link.
	ackStale = 10 * time.Minute
	// poorHDOP: above this, positions are too rough to prove location.
	poorHDOP = 5.0
)

// onlineChecks read the daemon's document, plus the host checks that do
// not disturb a running daemon.
func (h *Host) onlineChecks(s Setup, doc *status.Doc) []Check {
	cfg := s.cfgOrDefault()
	svc, _ := h.lookupUser(h.ServiceUser)
	checks := []Check{
		{"daemon", func(context.Context) (Level, string, string) {
			return OK, fmt.Sprintf("running for %s, edge-agent %s, device id %s", roughly(doc.Uptime()), doc.Identity.Version, doc.Identity.DeviceID), ""
		}},
		{"pipeline", func(context.Context) (Level, string, string) { return pipelineVerdict(doc) }},
		{"drivers and uplinks", func(context.Context) (Level, string, string) {
			return configuredVerdict(len(doc.Drivers), len(doc.Uplinks),
				fmt.Sprintf("%d drivers, %d uplinks running", len(doc.Drivers), len(doc.Uplinks)))
		}},
	}
	for _, d := range doc.Drivers {
		checks = append(checks, Check{"driver " + d.Name, func(context.Context) (Level, string, string) { return driverVerdict(doc, d) }})
		checks = append(checks, loraChecks(doc, d)...)
	}
	checks = append(checks, Check{"outbox", func(context.Context) (Level, string, string) {
		return storeVerdict(doc.Store, doc.Time, "")
	}})
	checks = append(checks, Check{"card wear", func(context.Context) (Level, string, string) { return wearVerdict(doc) }})
	for _, u := range doc.Uplinks {
		checks = append(checks, Check{"uplink " + u.Name, func(context.Context) (Level, string, string) { return uplinkVerdict(doc, u) }})
	}
	checks = append(checks,
		Check{"disk space", func(context.Context) (Level, string, string) { return diskVerdict(doc.Disk, doc.Store.MaxBytes) }},
		h.checkConfig(s),
		h.checkKeyOnline(cfg.Device.Key, svc, doc),
		checkCert(cfg, h.Now),
		h.checkDataDir(cfg.Device.DataDir, svc),
		h.checkReadOnly(cfg.Device.DataDir),
		h.checkUpdate(cfg.Device.DataDir),
		Check{"clock", func(context.Context) (Level, string, string) {
			return clockVerdict(h.Now(), func() (status.Clock, error) { return doc.Clock, nil }, doc.Clock.GNSSOffsetSeconds)
		}},
	)
	return checks
}

func pipelineVerdict(doc *status.Doc) (Level, string, string) {
	p := doc.Pipeline
	msg := fmt.Sprintf("%d observed, %d signed, %d stored since start", p.Observed, p.Signed, p.Stored)
	switch {
	case p.LastAppendError != "":
		return Fail, "the outbox refuses records: " + p.LastAppendError, "see the filesystem and disk lines; `dmesg` shows SD card errors"
	case !p.LastProgress.IsZero() && doc.Age(p.LastProgress) > stallAfter:
		return Fail, fmt.Sprintf("no progress for %s (%s)", roughly(doc.Age(p.LastProgress)), msg),
			"the store is stuck, usually in fsync on a failing SD card: `dmesg`; systemd's watchdog restarts the daemon"
	}
	return OK, msg, ""
}

func driverVerdict(doc *status.Doc, d status.Driver) (Level, string, string) {
	what := d.Family + " " + d.State
	switch d.State {
	case status.StateFailed:
		return Fail, what + ": " + d.Reason, "fix the cause above; the daemon retries by itself; `journalctl -u edge-agent` has the details"
	case status.StateSkipped:
		reason := d.Reason
		if reason == "" {
			reason = "hardware not found"
		}
		return Warn, what + ": " + reason, "check the wiring and that the interface is enabled, or remove the driver from the config"
	case status.StateFinished:
		return OK, what + fmt.Sprintf(" after %d observations", total(d.Observations)), ""
	}
	switch {
	case d.GNSS != nil:
		return gnssVerdict(doc, d)
	case d.LoRa != nil:
		return loraVerdict(doc, d)
	case d.Env != nil && d.Env.At.IsZero() && doc.Uptime() > 5*time.Minute:
		return Warn, fmt.Sprintf("%s %s: no reading since start", d.Env.Chip, d.State), "check the sensor's wiring and I²C address (`i2cdetect -y 1`)"
	case d.OBD != nil:
		return obdVerdict(doc, d)
	case d.Energy != nil:
		return energyVerdict(doc, d)
	case d.Camera != nil && d.Camera.Skipped > 0:
		return Warn, fmt.Sprintf("%d files attested; %d entries skipped as not the camera's files, last %s", d.Camera.FilesAttested, d.Camera.Skipped, d.Camera.LastSkipped),
			"remove FIFOs, device nodes, symlinks and hard links from the camera directory: only files the camera writes there are attested"
	case d.Camera != nil:
		return OK, fmt.Sprintf("%d files attested, last %s", d.Camera.FilesAttested, ago(doc, d.Camera.LastAttested)), ""
	}
	if age := doc.Age(d.LastObservation); (d.LastObservation.IsZero() && doc.Uptime() > silentAfter) || age > silentAfter {
		return Warn, fmt.Sprintf("%s, but no observation %s", what, ago(doc, d.LastObservation)),
			"check the device's connection; `journalctl -u edge-agent` shows its errors"
	}
	return OK, fmt.Sprintf("%s, %.1f/min, last observation %s", what, d.PerMinute, ago(doc, d.LastObservation)), ""
}

func gnssVerdict(doc *status.Doc, d status.Driver) (Level, string, string) {
	g := d.GNSS
	if !g.Connected {
		return Fail, "GNSS receiver not connected", "check the cable and the device path; `journalctl -u edge-agent` says why the port closed"
	}
	level, msg, hint := gnssFixVerdict(doc, g)
	if level == Fail {
		return level, msg, hint
	}
	if l, m, h := gnssInputVerdict(g); l != OK {
		return l, m, h
	}
	return level, msg, hint
}

// gnssInputVerdict judges what the receiver sends: refused input is a
// wrong baud rate, a noisy line, a receiver without checksums, or one with
// a wrong date.
func gnssInputVerdict(g *status.GNSS) (Level, string, string) {
	var rejected uint64
	worst, worstN := "", uint64(0)
	for reason, n := range g.Rejected {
		rejected += n
		if n > worstN || n == worstN && reason < worst {
			worst, worstN = reason, n
		}
	}
	if rejected == 0 || rejected*100 < g.Sentences && g.Sentences > 0 { // under 1 %: ordinary line noise
		return OK, "", ""
	}
	hint := "check the baud rate (`stty -F <device>`), the cable and its ground"
	switch worst {
	case "no_checksum":
		hint = "the receiver sends NMEA without *hh checksums: if that is how it works, set checksum = \"optional\" for this driver"
	case "invalid":
		hint = "the receiver reports impossible values: update its firmware or reset it to defaults"
	case "late":
		hint = "the receiver pauses inside its output cycle: raise its baud rate or send fewer sentences"
	case "bad_date":
		hint = "the receiver's date is wrong (GPS week rollover or no almanac): update its firmware"
	case "time_back":
		hint = "the receiver's time jumps back: check for resets (power, firmware)"
	}
	what := fmt.Sprintf("GNSS input refused: %d of %d (mostly %s)", rejected, rejected+g.Sentences, strings.ReplaceAll(worst, "_", " "))
	if g.LastReject != "" {
		what += "; last: " + g.LastReject
	}
	if g.Sentences == 0 {
		return Fail, what, hint
	}
	return Warn, what, hint
}

func gnssFixVerdict(doc *status.Doc, g *status.GNSS) (Level, string, string) {
	noFix := doc.Uptime()
	if !g.LastFix.IsZero() {
		noFix = doc.Age(g.LastFix)
	}
	hasFix := g.Mode >= 2 && !g.LastFix.IsZero() && doc.Age(g.LastFix) < noFixWarn
	switch {
	case !hasFix && noFix >= noFixFail:
		return Fail, fmt.Sprintf("GNSS has no fix for %s (%d satellites in use)", roughly(noFix), g.Satellites),
			"check the antenna: connected, outdoors or at a window, clear view of the sky"
	case !hasFix && noFix >= noFixWarn:
		return Warn, fmt.Sprintf("GNSS has no fix for %s (%d satellites in use)", roughly(noFix), g.Satellites),
			"check the antenna: connected, outdoors or at a window, clear view of the sky"
	case !hasFix:
		return OK, fmt.Sprintf("GNSS acquiring (%d satellites so far)", g.Satellites), ""
	case g.HDOP > poorHDOP:
		return Warn, fmt.Sprintf("GNSS %dD fix but poor geometry: HDOP %.1f, %d satellites", g.Mode, g.HDOP, g.Satellites),
			"move the antenna to see more of the sky"
	}
	return OK, fmt.Sprintf("GNSS %dD fix, %d satellites, HDOP %.1f", g.Mode, g.Satellites, g.HDOP), ""
}

// loraSilent: a working forwarder sends a stat report every 30 s and a
// PULL_DATA keep-alive every 10 s; several minutes without anything means
// the forwarder is not pointed at this driver, or is down.
const loraSilent = 5 * time.Minute

func loraVerdict(doc *status.Doc, d status.Driver) (Level, string, string) {
	l := d.LoRa
	var last time.Time
	for _, g := range l.Gateways {
		if g.LastSeen.After(last) {
			last = g.LastSeen
		}
	}
	check := "check that the forwarder runs (`systemctl status lora-pkt-fwd`) and that in its global_conf.json/local_conf.json " +
		"server_address is this host and serv_port_up and serv_port_down are both " + portOf(l.Listen) + " (this driver's listen)"
	switch l.Mode {
	case "concentratord":
		check = "check that chirpstack-concentratord runs and that its api.event_bind is this driver's event_url"
	case "mqtt":
		check = "check that the ChirpStack Gateway Bridge / MQTT Forwarder runs, publishes to this driver's mqtt_server, and uses its mqtt_topic prefix and marshaler"
	case "sx127x":
		check = "check the radio's SPI and reset/dio0 wiring and antenna, and that freq_hz, sf and bandwidth_hz match what the nodes send"
	}
	switch {
	case l.Connected != nil && !*l.Connected && doc.Uptime() > time.Minute:
		return Fail, fmt.Sprintf("%s source not connected: %s", l.Mode, l.LastError), check
	case last.IsZero() && doc.Uptime() > loraSilent:
		return Fail, "no gateway has sent anything since start (" + roughly(doc.Uptime()) + ")", check
	case !last.IsZero() && doc.Age(last) > loraSilent:
		return Fail, "no gateway heard for " + roughly(doc.Age(last)), check + "; restart the forwarder; check the concentrator's SPI and reset pin"
	case l.SocketDrops > 0:
		return Warn, fmt.Sprintf("%.1f packets/min, but the kernel dropped %d datagrams", l.PacketsPerMinute, l.SocketDrops),
			"raise net.core.rmem_max (`sysctl -w net.core.rmem_max=8388608`, and in /etc/sysctl.d) and restart the daemon"
	case l.GatewaysRefused > 0:
		return Warn, fmt.Sprintf("gateway table full: %d datagrams from new gateways ignored (max_gateways = %d)", l.GatewaysRefused, l.MaxGateways),
			"something sends with many gateway EUIs: list yours in gateways = [...] or raise max_gateways"
	}
	return OK, fmt.Sprintf("%.1f packets/min from %d gateway(s)", l.PacketsPerMinute, len(l.Gateways)+l.GatewaysOmitted), ""
}

func portOf(hostport string) string {
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		return hostport[i+1:]
	}
	return "the listen port"
}

// loraChecks adds a udp multiplexer's lines: what tap mode means, and each
// upstream's reachability and ack ratio.
func loraChecks(doc *status.Doc, d status.Driver) []Check {
	l := d.LoRa
	if l == nil || l.Mode != "udp" || d.State != status.StateLoaded {
		return nil
	}
	if l.Tap {
		return []Check{{"lora " + d.Name + " network service", func(context.Context) (Level, string, string) {
			return OK, "tap mode (upstreams = []): frames are acknowledged and attested, nothing is relayed to a network server and nothing is transmitted", ""
		}}}
	}
	var out []Check
	for _, u := range l.Upstreams {
		out = append(out, Check{"lora " + d.Name + " upstream " + u.Name, func(context.Context) (Level, string, string) { return upstreamVerdict(u) }})
	}
	return out
}

func upstreamVerdict(u status.LoRaUpstream) (Level, string, string) {
	ratio := fmt.Sprintf("ack ratio %.0f%% (%d acks for %d sent)", 100*u.AckRatio, u.Acks, u.Sent)
	what := u.Addr
	if u.Resolved != "" && u.Resolved != u.Addr {
		what += " (" + u.Resolved + ")"
	}
	switch u.State {
	case "unresolved":
		return Fail, what + " does not resolve: " + u.LastError + "; retried with backoff",
			"check the host name in upstreams and the DNS (`getent hosts " + hostOf(u.Addr) + "`)"
	case "unreachable":
		return Fail, what + " unreachable (ICMP): " + u.LastError + "; " + ratio,
			"is the network server running and listening on that UDP port (`ss -ulpn`)? check firewalls on the way"
	case "silent":
		return Warn, what + " does not acknowledge; " + ratio,
			"a network server that drops the gateway's datagrams usually does not know its EUI: register the gateway there"
	case "idle":
		return OK, what + ": nothing relayed yet", ""
	}
	if u.Sent > 20 && u.AckRatio < 0.9 {
		return Warn, what + " reachable, but " + ratio, "a lossy path or an overloaded network server; compare with the forwarder's own ackr"
	}
	down := ""
	if u.UplinkOnly {
		down = ", uplink only"
	} else if u.DownlinksRelayed > 0 {
		down = fmt.Sprintf(", %d downlinks relayed", u.DownlinksRelayed)
	}
	return OK, what + " reachable, " + ratio + down, ""
}

func uplinkVerdict(doc *status.Doc, u status.Uplink) (Level, string, string) {
	if !u.ClientCertExpiry.IsZero() && !u.ClientCertExpiry.After(doc.Time) {
		return Fail, "the broker rejects the client certificate: it expired on " + u.ClientCertExpiry.UTC().Format(time.DateOnly),
			"install a renewed client certificate (cert_file, key_file), then `systemctl restart edge-agent`"
	}
	backlog := fmt.Sprintf("backlog %d, last ack %s", u.Backlog, ago(doc, u.LastAck))
	if !u.Connected {
		why := u.LastError
		if why == "" {
			why = "no connection yet"
		}
		next := uplinkNext(why)
		return Fail, fmt.Sprintf("not connected to %s: %s (%s)", orUnknown(u.Server), why, backlog), next
	}
	if u.Backlog > 0 && (u.LastAck.IsZero() && doc.Uptime() > ackStale || !u.LastAck.IsZero() && doc.Age(u.LastAck) > ackStale) {
		return Warn, "connected, but nothing acknowledged lately: " + backlog, "the broker or collector accepts the connection but not the records: check its logs and ACLs"
	}
	if left := u.ClientCertExpiry.Sub(doc.Time); !u.ClientCertExpiry.IsZero() && left < certWarn {
		return Warn, fmt.Sprintf("connected, but the client certificate expires in %s, on %s", roughly(left), u.ClientCertExpiry.UTC().Format(time.DateOnly)),
			"provision a renewed client certificate before then"
	}
	return OK, fmt.Sprintf("connected to %s, %d delivered since start, %s", orUnknown(u.Server), u.Delivered, backlog), ""
}

// uplinkNext is the next step for an uplink that is down, by the cause the
// uplink reported: the network is only one of them.
func uplinkNext(why string) string {
	switch {
	case strings.Contains(why, "certificate") || strings.Contains(why, "TLS"):
		return "check ca_file, cert_file and key_file against what the network issued"
	case strings.Contains(why, "username/password") || strings.Contains(why, "not authorised"):
		return "check username and password in [uplinks.mqtt] against the broker's accounts; the network is fine"
	case strings.Contains(why, "client id"):
		return "set a client_id the broker accepts in [uplinks.mqtt]"
	case strings.Contains(why, "did not answer the MQTT"):
		return "the host answers but no MQTT broker does: check the port and whether the server wants TLS (ssl://, port 8883)"
	}
	return "check the network and the server address; the uplink retries by itself"
}

func total(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

func ago(doc *status.Doc, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return roughly(doc.Age(t)) + " ago"
}

func orUnknown(s string) string {
	if s == "" {
		return "(no server yet)"
	}
	return s
}
