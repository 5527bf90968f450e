package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// MQTTUplink publishes records to an MQTT broker at QoS 1.
type MQTTUplink struct {
	Enabled  bool     `toml:"enabled"`
	Servers  []string `toml:"servers"`   // tcp://, mqtt://, ssl://, tls:// or mqtts:// URLs, tried in turn
	CAFile   string   `toml:"ca_file"`   // PEM bundle for the broker certificate; "" = system roots
	CertFile string   `toml:"cert_file"` // client certificate (mutual TLS)
	KeyFile  string   `toml:"key_file"`  // its key
	Username string   `toml:"username"`  //
	Password string   `toml:"password"`  //
	// PasswordFile holds the password instead: an absolute path, or the name of a systemd credential
	// (LoadCredential=) read from $CREDENTIALS_DIRECTORY. Load reads it into Password.
	PasswordFile string   `toml:"password_file"`
	ClientID     string   `toml:"client_id"`    // "" = the device id
	KeepAlive    Duration `toml:"keepalive"`    //
	TopicPrefix  string   `toml:"topic_prefix"` // records go to <prefix>/<device_id>/att/<kind>
	Topics       string   `toml:"topics"`       // "per-kind" (att/<kind>) or "single" (att, the layout before per-kind topics)
	Window       int      `toml:"window"`       // records in flight before waiting for PUBACKs
	// End-to-end receipts (like [uplinks.p2p]): with collectors set, a record leaves the outbox only once
	// min_receipts of these collectors receipted it after their database commit; [] = the broker's PUBACK.
	Collectors  []string `toml:"collectors"`
	MinReceipts int      `toml:"min_receipts"`
	ResendAfter Duration `toml:"resend_after"`
	ResendMax   Duration `toml:"resend_max"`
}

var (
	mqttSchemes = []string{"tcp", "mqtt", "ssl", "tls", "mqtts"}
	mqttTopics  = []string{"per-kind", "single"}
)

func defaultMQTT() MQTTUplink {
	return MQTTUplink{
		Servers:     []string{"tcp://127.0.0.1:1883"},
		KeepAlive:   D(30 * time.Second),
		TopicPrefix: "edge-agent",
		Topics:      "per-kind",
		Window:      64,
		MinReceipts: 1,
		ResendAfter: D(30 * time.Second),
		ResendMax:   D(10 * time.Minute),
	}
}

func (m MQTTUplink) check(k string) []*KeyError {
	var p []*KeyError
	if m.Enabled && len(m.Servers) == 0 {
		p = append(p, missing(k+".servers", `add servers = ["tcp://broker.example:1883"]`))
	}
	for i, s := range m.Servers {
		u, err := url.Parse(s)
		key := fmt.Sprintf("%s.servers[%d]", k, i)
		shown := RedactURL(s) // never echo a password
		switch {
		case err != nil || u.Host == "":
			p = append(p, invalid(key, shown, "a URL such as tcp://broker:1883 or mqtts://broker:8883"))
		case !containsString(mqttSchemes, u.Scheme):
			p = append(p, invalid(key, shown, "the scheme must be one of "+quoteList(mqttSchemes)))
		case u.User != nil:
			p = append(p, invalid(key, shown, "the URL carries credentials, which would end up in logs: move them to username and password"))
		}
	}
	for _, f := range []struct{ key, path string }{{"ca_file", m.CAFile}, {"cert_file", m.CertFile}, {"key_file", m.KeyFile}} {
		p = append(p, absPath(k+"."+f.key, f.path, true)...)
	}
	if (m.CertFile == "") != (m.KeyFile == "") {
		p = append(p, invalid(k+".key_file", m.KeyFile, "cert_file and key_file go together: set both for mutual TLS, or neither"))
	}
	if (m.Password != "" || m.PasswordFile != "") && m.Username == "" {
		p = append(p, missing(k+".username", "a password needs a username (MQTT 3.1.1 §3.1.2.9)"))
	}
	if v := m.KeepAlive.Duration; v < time.Second || v > 18*time.Hour {
		p = append(p, invalid(k+".keepalive", m.KeepAlive, "must be between 1s and 18h"))
	}
	if m.TopicPrefix == "" || strings.ContainsAny(m.TopicPrefix, "+#") || strings.HasSuffix(m.TopicPrefix, "/") {
		p = append(p, invalid(k+".topic_prefix", m.TopicPrefix, `a topic without wildcards or a trailing "/", e.g. "edge-agent"`))
	}
	p = append(p, oneOf(k+".topics", m.Topics, mqttTopics)...)
	if m.Window < 1 || m.Window > 65535 {
		p = append(p, invalid(k+".window", m.Window, "must be between 1 and 65535"))
	}
	if len(m.Collectors) > 0 && (m.MinReceipts < 1 || m.MinReceipts > len(m.Collectors)) {
		p = append(p, invalid(k+".min_receipts", m.MinReceipts, "must be between 1 and the number of collectors"))
	}
	if len(m.Collectors) > 0 && (m.ResendAfter.Duration < time.Second || m.ResendMax.Duration < m.ResendAfter.Duration) {
		p = append(p, invalid(k+".resend_after", m.ResendAfter, "must be at least 1s and at most resend_max"))
	}
	return p
}

// RedactURL replaces the userinfo of a URL-like string ("tcp://user:secret@host") with "xxxxx", even when
// the string does not parse as a URL, so that no password reaches a log line, status or an error.
func RedactURL(s string) string {
	start := 0 // where the authority begins: after "scheme://", or at the start ("user:pw@host")
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + 3
	}
	auth := s[start:]
	if end := strings.IndexAny(auth, "/?#"); end >= 0 {
		auth = auth[:end]
	}
	at := strings.LastIndexByte(auth, '@')
	if at < 0 {
		return s
	}
	return s[:start] + "xxxxx" + s[start+at:]
}

func containsString(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// mqttTOML is the [uplinks.mqtt] block of DefaultTOML.
func mqttTOML(m MQTTUplink) string {
	servers := make([]string, len(m.Servers))
	for i, s := range m.Servers {
		servers[i] = fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf(`
[uplinks.mqtt]
# Publish records to an MQTT broker at QoS 1, on <topic_prefix>/<device_id>/att/<kind>; a retained
# "online"/"offline" status document goes to <topic_prefix>/<device_id>/status. A record is deleted
# from the outbox only after the broker acknowledged it (PUBACK) and every other uplink has it too.
enabled = %t
# Broker URLs, tried in turn: %s.
servers = [%s]
# PEM CA bundle for the broker's certificate (absolute path). "" = the system's roots.
ca_file = %q
# Client certificate and key for mutual TLS (absolute paths); both or neither.
cert_file = %q
key_file = %q
# Broker login. Keep this file readable only by root and the edge-agent group.
username = %q
password = %q
# Or keep the password out of this file: an absolute path to a file holding it, or the name of a
# systemd credential (add LoadCredential=mqtt-password:/etc/edge-agent/mqtt-password with
# systemctl edit edge-agent, then password_file = "mqtt-password").
password_file = %q
# MQTT client id. "" = the device id.
client_id = %q
# Keepalive; a dead connection is noticed within about 1.5 times this. 1s to 18h.
keepalive = %q
# First topic level(s).
topic_prefix = %q
# %s. "per-kind": each record on <topic_prefix>/<device_id>/att/<kind> (gnss.fix, lora.rx, ...), so a
# subscriber takes what it needs; <topic_prefix>/+/att/# is everything. "single": every record on
# <topic_prefix>/<device_id>/att, for subscribers that still listen there (docs/consumers.md).
topics = %q
# Records published and not yet acknowledged, at most. 1 to 65535.
window = %d
# End-to-end receipts. [] (the default): a record leaves the outbox once the broker PUBACKed it, which
# says only that the broker has it. With the peer ids of your collectors (edge-collector status shows
# its id), a record leaves only once min_receipts of them sent a signed receipt on
# <topic_prefix>/<device_id>/receipt after storing it, and is published again after resend_after
# (doubling up to resend_max) otherwise.
collectors = []
min_receipts = %d
resend_after = %q
resend_max = %q
`, m.Enabled, quoteList(mqttSchemes), strings.Join(servers, ", "), m.CAFile, m.CertFile, m.KeyFile,
		m.Username, m.Password, m.PasswordFile, m.ClientID, m.KeepAlive.String(), m.TopicPrefix, quoteList(mqttTopics), m.Topics, m.Window,
		m.MinReceipts, m.ResendAfter.String(), m.ResendMax.String())
}
