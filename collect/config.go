package collect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/edge-agent/edge-agent/config"
)

// Config is collector.toml. Build it with DefaultConfig or LoadConfig.
type Config struct {
	Version   int             `toml:"version"`  // must be 1
	DataDir   string          `toml:"data_dir"` // collector.db and evidence/ live here
	Key       string          `toml:"key"`      // "" = file:<data_dir>/collector.key
	Network   string          `toml:"network"`  // topic namespace, as in the agents' [uplinks.p2p]
	Listen    []string        `toml:"listen"`   // multiaddrs
	Bootstrap []string        `toml:"bootstrap"`
	MaxPeers  int             `toml:"max_peers"`
	Memory    config.ByteSize `toml:"memory"` // libp2p resource-manager budget
	// MaxClockSkew: records stamped further ahead of this clock are ignored.
	MaxClockSkew   config.Duration `toml:"max_clock_skew"`
	StatusInterval config.Duration `toml:"status_interval"` // per-device summary log; "0s" = off
	MQTT           MQTT            `toml:"mqtt"`
}

// MQTT subscribes to a broker as well as (or instead of) the gossip topic.
type MQTT struct {
	Enabled     bool     `toml:"enabled"`
	Servers     []string `toml:"servers"`
	ClientID    string   `toml:"client_id"` // fixed: the broker keeps the session under it
	TopicPrefix string   `toml:"topic_prefix"`
	Username    string   `toml:"username"`
	Password    string   `toml:"password"`
	CAFile      string   `toml:"ca_file"`
	CertFile    string   `toml:"cert_file"`
	KeyFile     string   `toml:"key_file"`
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
		MQTT:           MQTT{TopicPrefix: "edge-agent"},
	}
}

// LoadConfig reads collector.toml over DefaultConfig. Unknown keys are
// errors naming the key (a typo must not silently disable something).
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("collect: config %s: %w (start from the example in docs/collector.md)", path, ErrConfig)
	}
	if err != nil {
		return nil, fmt.Errorf("collect: config %s: %w", path, err)
	}
	c, err := ParseConfig(string(data))
	if err != nil {
		return nil, fmt.Errorf("collect: config %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes a collector.toml document and validates it.
func ParseConfig(doc string) (*Config, error) {
	if err := config.Guard([]byte(doc)); err != nil { // before the TOML library: size and depth
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c := DefaultConfig()
	c.Version = 0
	md, err := toml.Decode(doc, &c)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%w: unknown key %s", ErrConfig, strings.Join(keys, ", "))
	}
	if !md.IsDefined("version") {
		return nil, fmt.Errorf("%w: version is missing: add \"version = 1\" at the top", ErrConfig)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks what decoding cannot.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...))
	}
	if c.Version != 1 {
		bad("version = %d: this build reads version 1", c.Version)
	}
	if c.DataDir == "" || !filepath.IsAbs(c.DataDir) {
		bad("data_dir %q must be an absolute path", c.DataDir)
	}
	if c.Network == "" {
		bad("network is empty")
	}
	if c.MaxPeers <= 0 {
		bad("max_peers %d must be positive", c.MaxPeers)
	}
	if c.Memory < 16*config.MiB {
		bad("memory %v: at least 16MiB", c.Memory)
	}
	if len(c.Listen) == 0 && len(c.Bootstrap) == 0 && !c.MQTT.Enabled {
		bad("nothing to receive from: set listen, bootstrap or [mqtt]")
	}
	if c.MQTT.Enabled && (len(c.MQTT.Servers) == 0 || c.MQTT.ClientID == "") {
		bad("[mqtt] needs servers and a fixed client_id")
	}
	return errors.Join(errs...)
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
