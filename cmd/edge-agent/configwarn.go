package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/edge-agent/edge-agent/config"
	"github.com/edge-agent/edge-agent/status"
)

// configWarnings are problems `config check` reports without failing: the
// file is valid, but the box it is on makes part of it wrong or unsafe.
func configWarnings(path string, c *config.Config) []string {
	var w []string
	var dir string
	for p := filepath.Dir(c.StorePath()); ; p = filepath.Dir(p) { // nearest existing ancestor
		if _, err := os.Stat(p); err == nil || p == filepath.Dir(p) {
			dir = p
			break
		}
	}
	if d, err := status.StatDisk(dir); err == nil && d.TotalBytes > 0 && int64(c.Store.MaxBytes) > d.TotalBytes {
		w = append(w, fmt.Sprintf("store.max_bytes (%v) is larger than the filesystem holding %s (%s): the free space, not the quota, will bound the outbox (oldest records evicted first); lower it",
			c.Store.MaxBytes, dir, config.ByteSize(d.TotalBytes)))
	}
	if c.Uplinks.MQTT.Password != "" {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o004 != 0 {
			w = append(w, fmt.Sprintf("%s holds uplinks.mqtt.password and every user can read it (mode %04o): chmod 640 %s", path, fi.Mode().Perm(), path))
		}
	}
	return w
}
