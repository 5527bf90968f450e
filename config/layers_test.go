package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeLayer(t *testing.T, path, data string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o700)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func noEnv(string) string { return "" }

// TestDropins: config.d/*.toml merge over the main file in lexical order;
// tables merge key by key, arrays of tables add instances; config show says
// where each value came from.
func TestDropins(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "config.toml")
	writeLayer(t, main, "version = 1\n[log]\nlevel = \"warn\"\nformat = \"json\"\n\n[[drivers.sim]]\nname = \"a\"\nkind = \"counter\"\n")
	writeLayer(t, filepath.Join(dir, "config.d", "20-late.toml"), "[log]\nlevel = \"debug\"\n")
	writeLayer(t, filepath.Join(dir, "config.d", "10-early.toml"), "[log]\nlevel = \"error\"\n\n[[drivers.sim]]\nname = \"b\"\nkind = \"gnss\"\n")
	writeLayer(t, filepath.Join(dir, "config.d", "README"), "not toml, not read")
	l, err := LoadLayers(main, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c := l.Config
	if c.Log.Level != "debug" || c.Log.Format != "json" {
		t.Errorf("log = %+v, want level from 20-late, format from the main file", c.Log)
	}
	if len(c.Drivers.Sim) != 2 || c.Drivers.Sim[0].Name != "a" || c.Drivers.Sim[1].Name != "b" || c.Drivers.Sim[1].Interval.Duration == 0 {
		t.Errorf("sims = %+v, want a then b (with its defaults)", c.Drivers.Sim)
	}
	want := map[string]string{
		"log.level":           filepath.Join(dir, "config.d", "20-late.toml") + ":2",
		"log.format":          main + ":4",
		"drivers.sim[1].kind": filepath.Join(dir, "config.d", "10-early.toml") + ":6",
		"drivers.sim[0].name": main + ":7",
		"store.max_bytes":     "",
	}
	for k, v := range want {
		if got := l.Origin(k); got != v {
			t.Errorf("origin of %s = %q, want %q", k, got, v)
		}
	}
	var show bytes.Buffer
	if err := l.Show(&show); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`level = "debug"  # ` + filepath.Join(dir, "config.d", "20-late.toml") + ":2",
		`max_bytes = "256MiB"  # default`,
		`name = "b"  # ` + filepath.Join(dir, "config.d", "10-early.toml") + ":5",
	} {
		if !strings.Contains(show.String(), line+"\n") {
			t.Errorf("config show lacks %q:\n%s", line, show.String())
		}
	}
	// What show prints is a config that loads to the same values.
	back, err := Parse(show.Bytes())
	if err != nil || back.Log != c.Log || len(back.Drivers.Sim) != 2 {
		t.Errorf("config show output does not load back: %v", err)
	}
}

// TestDropinErrors: every problem names its file and line, including one
// found only on the merged result (a duplicate name across files).
func TestDropinErrors(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "config.toml")
	writeLayer(t, main, "version = 1\n[[drivers.sim]]\nname = \"a\"\nkind = \"counter\"\n")
	typo := filepath.Join(dir, "config.d", "10-typo.toml")
	dup := filepath.Join(dir, "config.d", "20-dup.toml")
	writeLayer(t, typo, "\n[log]\nlevle = \"info\"\n")
	writeLayer(t, dup, "# a second a\n[[drivers.sim]]\nname = \"a\"\nkind = \"gnss\"\n")
	_, err := LoadLayers(main, noEnv)
	if err == nil {
		t.Fatal("loaded")
	}
	msg := err.Error()
	for _, want := range []string{
		`unknown key "log.levle" at line 3 of ` + typo,
		`drivers.sim[1].name at line 3 of ` + dup,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	writeLayer(t, typo, "[log\n")
	if _, err := LoadLayers(main, noEnv); err == nil || !strings.Contains(err.Error(), "syntax error at line 2, column 5 of "+typo) {
		t.Errorf("syntax error in a drop-in: %v", err)
	}
}

// TestPasswordFile: the MQTT password from a file or a systemd credential.
func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "creds")
	writeLayer(t, filepath.Join(creds, "mqtt-password"), "s3cret\n")
	writeLayer(t, filepath.Join(dir, "pw"), "from-file")
	env := func(k string) string {
		if k == "CREDENTIALS_DIRECTORY" {
			return creds
		}
		return ""
	}
	base := "version = 1\n[uplinks.mqtt]\nenabled = true\nusername = \"u\"\n"
	tests := []struct {
		name, extra string
		getenv      func(string) string
		password    string
		err         string
	}{
		{"systemd credential", `password_file = "mqtt-password"`, env, "s3cret", ""},
		{"absolute path", `password_file = "` + filepath.Join(dir, "pw") + `"`, noEnv, "from-file", ""},
		{"credential without systemd", `password_file = "mqtt-password"`, noEnv, "", "$CREDENTIALS_DIRECTORY is not set"},
		{"missing file", `password_file = "` + filepath.Join(dir, "nope") + `"`, noEnv, "", "cannot read it"},
		{"both", "password = \"x\"\npassword_file = \"mqtt-password\"", env, "", "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			main := filepath.Join(t.TempDir(), "config.toml")
			writeLayer(t, main, base+tt.extra+"\n")
			l, err := LoadLayers(main, tt.getenv)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "password_file at line") {
					t.Fatalf("err = %v, want %q with its line", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Config.Uplinks.MQTT.Password != tt.password {
				t.Errorf("password %q, want %q", l.Config.Uplinks.MQTT.Password, tt.password)
			}
			var show bytes.Buffer
			l.Show(&show)
			if strings.Contains(show.String(), tt.password) {
				t.Errorf("config show prints the secret:\n%s", show.String())
			}
		})
	}
}

func TestLoadMissingStillNotFound(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("err = %v", err)
	}
}
