package agent

import (
	"path/filepath"

	"github.com/edge-agent/edge-agent/config"
)

// configIn is the default config with every path under dir: key, outbox,
// status socket.
func configIn(dir string) config.Config {
	cfg := config.Default()
	cfg.Device.DataDir = dir
	cfg.Device.Key = "file:" + filepath.Join(dir, "device.key")
	cfg.Store.Path = filepath.Join(dir, "outbox.db")
	cfg.Status = config.Status{Socket: filepath.Join(dir, "status.sock")}
	return cfg
}
