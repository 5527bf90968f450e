package collect

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/edge-agent/edge-agent/config"
)

// Config is collector.toml. Build it with DefaultConfig or LoadConfig.
type Config struct {
	Version   int             `toml:"version"`  // must be 1
	DataDir   string          `toml:"data_dir"` // collector.db, the key and evidence/ live here
	Key       string          `toml:"key"`      // "" = file:<data_dir>/collector.key
	Store     string          `toml:"store"`    // "" = bbolt <data_dir>/collector.db; "postgres://…" (edge-collector only)
	Network   string          `toml:"network"`  // topic namespace, as in the agents' [uplinks.p2p]
	Listen    []string        `toml:"listen"`   // multiaddrs
	Bootstrap []string        `toml:"bootstrap"`
	MaxPeers  int             `toml:"max_peers"`
	Memory    config.ByteSize `toml:"memory"` // libp2p resource-manager budget
	// MaxClockSkew: records stamped further ahead of this clock are ignored.
	MaxClockSkew   config.Duration `toml:"max_clock_skew"`
	StatusInterval config.Duration `toml:"status_interval"` // per-device summary log; "0s" = off
	MetricsListen  string          `toml:"metrics_listen"`  // Prometheus /metrics; "" = off
	MQTT           MQTT            `toml:"mqtt"`
	Postgres       Postgres        `toml:"postgres"`
	Admission      Admission       `toml:"admission"`
}

// MQTT subscribes to a broker as well as (or instead of) the gossip topic.
type MQTT struct {
	Enabled     bool     `toml:"enabled"`
	Servers     []string `toml:"servers"`
	ClientID    string   `toml:"client_id"` // fixed: the broker keeps the session under it
	TopicPrefix string   `toml:"topic_prefix"`
	// SharedGroup subscribes as a member of $share/<group>/…: the collectors
	// of one group split the stream. "" = this collector sees every record.
	SharedGroup string `toml:"shared_group"`
	// Receipts: publish a signed receipt on <prefix>/<device>/receipt after
	// each commit, for agents whose [uplinks.mqtt] lists collectors.
	Receipts bool `toml:"receipts"`
	// ReceiptInterval coalesces receipts: what a device had committed
	// during one interval is answered by one signed receipt (its seq
	// ranges), instead of one per commit. It bounds the extra wait a
	// device sees; "0s" = one receipt per device per commit.
	ReceiptInterval config.Duration `toml:"receipt_interval"`
	Username        string          `toml:"username"`
	Password        string          `toml:"password"`
	CAFile          string          `toml:"ca_file"`
	CertFile        string          `toml:"cert_file"`
	KeyFile         string          `toml:"key_file"`
}

// Postgres tunes the PostgreSQL store (store = "postgres://…").
type Postgres struct {
	// Retention drops record partitions (one per day, by arrival) older
	// than this; "0s" keeps everything. The dedupe index is kept, so a
	// replayed old record is still a duplicate.
	Retention config.Duration `toml:"retention"`
	MaxConns  int             `toml:"max_conns"` // connections per collector
}

// Admission decides whose records a collector stores, forwards and
// receipts. Records refused here are not stored and get no receipt; they are
// counted by reason in /metrics.
type Admission struct {
	// Allow lists the device ids admitted; [] admits every device whose
	// signature verifies (an open network).
	Allow []string `toml:"allow"`
	// DeviceRate is the records per second one device may sustain, with
	// bursts of DeviceBurst; 0 = no limit.
	DeviceRate  int `toml:"device_rate"`
	DeviceBurst int `toml:"device_burst"`
	// DeviceQuota is the bytes of records one device may have stored; "0B"
	// = no limit. Checked against what this collector knows (the store's
	// totals at start plus what it stored since).
	DeviceQuota config.ByteSize `toml:"device_quota"`
	// UnknownQueue is how many records of devices this collector has not
	// stored before may wait for the database at once; beyond it they are
	// shed, so known devices keep their throughput under a flood of new ids.
	UnknownQueue int `toml:"unknown_queue"`
	// TrustedManufacturers are CA files (PEM): a device whose agent.cert
	// record holds a certificate for its own key issued under one of them
	// is genuine. [] = identities are not checked.
	TrustedManufacturers []string `toml:"trusted_manufacturers"`
	// RefuseUntrusted admits only genuine devices' records (and every
	// device's agent.boot and agent.cert). Needs TrustedManufacturers.
	RefuseUntrusted bool `toml:"refuse_untrusted"`
}

// DefaultConfig is a collector on all interfaces, port 4001, network
// "mainnet".
func DefaultConfig() Config {
	return Config{
		Version:        1,
		DataDir:        "/var/lib/edge-agent-collector",
		Network:        "mainnet",
		Listen:         []string{"/ip4/0.0.0.0/tcp/4001"},
		MaxPeers:       512,
		Memory:         256 * config.MiB,
		MaxClockSkew:   config.D(10 * time.Minute),
		StatusInterval: config.D(time.Minute),
		MQTT:           MQTT{TopicPrefix: "edge-agent", Receipts: true, ReceiptInterval: config.D(250 * time.Millisecond)},
		Postgres:       Postgres{Retention: config.D(0), MaxConns: 4},
		Admission:      Admission{DeviceBurst: 100, UnknownQueue: 4096},
	}
}

// LoadConfig reads collector.toml over DefaultConfig with the agent
// config's strict decoder: unknown keys (a typo must not silently disable
// something) and bad values are all reported, each with its key and line.
func LoadConfig(path string) (*Config, error) {
	c := DefaultConfig()
	c.Version = 0
	if err := config.LoadStrict(path, &c, c.problemsFunc()); err != nil {
		if errors.Is(err, config.ErrNotFound) {
			return nil, fmt.Errorf("collect: config %s: %w (start from /usr/share/doc/edge-collector/collector.toml or docs/collector.md)", path, ErrConfig)
		}
		return nil, fmt.Errorf("%w:\n%w", ErrConfig, err)
	}
	return &c, nil
}

// ParseConfig decodes a collector.toml document and validates it.
func ParseConfig(doc string) (*Config, error) {
	if err := config.Guard([]byte(doc)); err != nil { // before the TOML library: size and depth
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c := DefaultConfig()
	c.Version = 0
	if err := config.DecodeStrict([]byte(doc), &c, c.problemsFunc()); err != nil {
		return nil, fmt.Errorf("%w:\n%w", ErrConfig, err)
	}
	return &c, nil
}

func (c *Config) problemsFunc() func() []*config.KeyError {
	return func() []*config.KeyError {
		if c.Version == 0 {
			return c.problems()[1:] // DecodeStrict reports the missing version
		}
		return c.problems()
	}
}

// Validate checks what decoding cannot; every problem names its key.
func (c *Config) Validate() error {
	p := c.problems()
	if len(p) == 0 {
		return nil
	}
	errs := make([]error, len(p))
	for i, e := range p {
		errs[i] = e
	}
	return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
}

func (c *Config) problems() []*config.KeyError {
	var p []*config.KeyError
	bad := func(key string, v any, allowed string) { p = append(p, config.Invalid(key, v, allowed)) }
	// Always first: problemsFunc drops it when the decoder reported it.
	if c.Version != 1 {
		bad("version", c.Version, "version = 1: this build reads version 1")
	}
	if c.DataDir == "" || !filepath.IsAbs(c.DataDir) {
		bad("data_dir", c.DataDir, "must be an absolute path")
	}
	if c.Store != "" && !isPostgresURL(c.Store) {
		bad("store", c.Store, `"" (bbolt in data_dir) or a postgres:// URL`)
	}
	if c.Network == "" {
		bad("network", c.Network, "must not be empty")
	}
	if c.MaxPeers <= 0 {
		bad("max_peers", c.MaxPeers, "must be positive")
	}
	if c.Memory < 16*config.MiB {
		bad("memory", c.Memory, "at least 16MiB")
	}
	if len(c.Listen) == 0 && len(c.Bootstrap) == 0 && !c.MQTT.Enabled {
		p = append(p, config.Missing("listen", "nothing to receive from: set listen, bootstrap or [mqtt]"))
	}
	if c.MQTT.Enabled && len(c.MQTT.Servers) == 0 {
		p = append(p, config.Missing("mqtt.servers", `add servers = ["tcp://broker:1883"]`))
	}
	if c.MQTT.Enabled && c.MQTT.ClientID == "" {
		p = append(p, config.Missing("mqtt.client_id", "add a fixed client_id, one per collector: the broker keeps the session under it"))
	}
	if g := c.MQTT.SharedGroup; strings.ContainsAny(g, "/+#") {
		bad("mqtt.shared_group", g, "one topic level without / + or #")
	}
	if r := c.MQTT.ReceiptInterval.Duration; r < 0 || r > 10*time.Second {
		bad("mqtt.receipt_interval", c.MQTT.ReceiptInterval, `"0s" (a receipt per commit) up to "10s", well below the agents' resend_after`)
	}
	if c.Postgres.MaxConns < 1 || c.Postgres.MaxConns > 64 {
		bad("postgres.max_conns", c.Postgres.MaxConns, "1..64")
	}
	if r := c.Postgres.Retention.Duration; r != 0 && r < 24*time.Hour {
		bad("postgres.retention", c.Postgres.Retention, `"0s" (keep) or at least 24h (partitions are daily)`)
	}
	a := c.Admission
	if a.DeviceRate < 0 {
		bad("admission.device_rate", a.DeviceRate, "0 (no limit) or records per second")
	}
	if a.DeviceRate > 0 && a.DeviceBurst < 1 {
		bad("admission.device_burst", a.DeviceBurst, "at least 1 with a device_rate")
	}
	if a.DeviceQuota < 0 {
		bad("admission.device_quota", a.DeviceQuota, `"0B" (no limit) or a size such as "64MiB"`)
	}
	if a.UnknownQueue < 1 {
		bad("admission.unknown_queue", a.UnknownQueue, "at least 1")
	}
	for i, d := range a.Allow {
		if d == "" {
			bad(fmt.Sprintf("admission.allow[%d]", i), d, "a device id (edge-agent keys show)")
		}
	}
	for i, f := range a.TrustedManufacturers {
		if !filepath.IsAbs(f) {
			bad(fmt.Sprintf("admission.trusted_manufacturers[%d]", i), f, "an absolute path to a CA certificate (PEM)")
		}
	}
	if a.RefuseUntrusted && len(a.TrustedManufacturers) == 0 {
		p = append(p, config.Missing("admission.trusted_manufacturers", "refuse_untrusted needs the CA files that make a device genuine"))
	}
	return p
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// KeyURI is the collector key, defaulting under DataDir.
func (c *Config) KeyURI() string {
	if c.Key != "" {
		return c.Key
	}
	return "file:" + filepath.Join(c.DataDir, "collector.key")
}

// DBPath is the collector's bbolt file.
func (c *Config) DBPath() string { return filepath.Join(c.DataDir, "collector.db") }

// EvidenceDir holds fork evidence as files.
func (c *Config) EvidenceDir() string { return filepath.Join(c.DataDir, "evidence") }
