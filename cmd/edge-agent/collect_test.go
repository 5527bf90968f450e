package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/collect"
	"github.com/edge-agent/edge-agent/config"
)

// TestCollectCommand runs a collector in-process (as the demo does), stops
// it, then reads its database through `collect status` and `collect export`.
func TestCollectCommand(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "collector.toml")
	doc := "version = 1\ndata_dir = \"" + dir + "/data\"\nnetwork = \"test\"\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nstatus_interval = \"0s\"\n"
	if err := os.WriteFile(cfgPath, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := collect.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Memory = 32 * config.MiB
	c, err := collect.StartInProcess(context.Background(), collect.Options{Config: cfg, CreateKey: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Addrs()) == 0 || !strings.HasPrefix(c.PeerID(), "12D3KooW") {
		t.Fatalf("addrs %v peer id %q", c.Addrs(), c.PeerID())
	}
	c.Close()

	tests := []struct {
		name string
		args []string
		want string
		code int
	}{
		{"status of an empty collector", []string{"collect", "status", "-c", cfgPath}, "no records yet", 0},
		{"export to a file", []string{"collect", "export", "-c", cfgPath, "--out", filepath.Join(dir, "out.cbor")}, "", 0},
		{"unknown subcommand", []string{"collect", "frobnicate", "-c", cfgPath}, "", 2},
		{"missing config", []string{"collect", "status", "-c", filepath.Join(dir, "nope.toml")}, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code := runCLI(ctx, env, tt.args)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tt.code, errb.String())
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Fatalf("stdout %q, want %q", out.String(), tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "out.cbor")); err != nil {
		t.Fatalf("export file: %v", err)
	}
}

// TestCollectRefusesPostgres: the device binary has only bbolt; given a
// PostgreSQL store it says to use edge-collector instead of starting.
func TestCollectRefusesPostgres(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "collector.toml")
	doc := "version = 1\ndata_dir = \"" + dir + "\"\nstore = \"postgres://u:secret@db/x\"\n"
	if err := os.WriteFile(cfgPath, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"run", "status", "export"} {
		var out, errb bytes.Buffer
		env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		code := runCLI(context.Background(), env, []string{"collect", sub, "-c", cfgPath})
		msg := errb.String()
		if code == 0 || !strings.Contains(msg, "edge-collector "+sub) || strings.Contains(msg, "secret") {
			t.Fatalf("%s: exit %d, %q; want a pointer to edge-collector, without the password", sub, code, msg)
		}
	}
}
