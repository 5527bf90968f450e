package collect

import (
	"os"
	"strings"
	"testing"
)

// TestDocumentedConfigParses keeps docs/collector.md honest: its example
// collector.toml must load and equal the defaults it claims to show.
func TestDocumentedConfigParses(t *testing.T) {
	doc, err := os.ReadFile("../docs/collector.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```toml\n")
	if !ok {
		t.Fatal("no toml block in docs/collector.md")
	}
	example, _, _ := strings.Cut(rest, "```")
	c, err := ParseConfig(example)
	if err != nil {
		t.Fatalf("the documented collector.toml does not parse: %v", err)
	}
	def := DefaultConfig()
	if c.DataDir != def.DataDir || c.Network != def.Network || c.MaxPeers != def.MaxPeers || c.Memory != def.Memory ||
		c.MaxClockSkew != def.MaxClockSkew || c.StatusInterval != def.StatusInterval || c.MQTT.TopicPrefix != def.MQTT.TopicPrefix ||
		c.MQTT.Receipts != def.MQTT.Receipts || c.Postgres != def.Postgres || c.Admission.DeviceBurst != def.Admission.DeviceBurst ||
		c.Admission.UnknownQueue != def.Admission.UnknownQueue || c.Store != def.Store || c.MetricsListen != def.MetricsListen {
		t.Fatalf("the documented defaults differ from DefaultConfig:\n%+v\n%+v", c, def)
	}
}

// TestPackagedConfigParses: the conffile the edge-collector .deb installs
// loads with the strict decoder.
func TestPackagedConfigParses(t *testing.T) {
	c, err := LoadConfig("../packaging/collector.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/var/lib/edge-collector" || c.MetricsListen == "" || !c.MQTT.Receipts {
		t.Fatalf("packaged config: %+v", c)
	}
}
