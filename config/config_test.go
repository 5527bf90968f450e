package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

var update = flag.Bool("update", false, "rewrite packaging/config.toml from DefaultTOML()")

// problemsOf flattens an error from Parse, Load or Validate into its KeyErrors.
func problemsOf(tb testing.TB, err error) []*KeyError {
	tb.Helper()
	var out []*KeyError
	forEachProblem(err, func(e *KeyError) { out = append(out, e) })
	if err != nil && len(out) == 0 {
		tb.Fatalf("error %q holds no *KeyError", err)
	}
	return out
}

// mustParse parses src and fails the test on any error.
func mustParse(tb testing.TB, src string) *Config {
	tb.Helper()
	c, err := Parse([]byte(src))
	if err != nil {
		tb.Fatalf("Parse:\n%v\ninput:\n%s", err, src)
	}
	return c
}

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"version", c.Version, 1},
		{"device.key", c.Device.Key, "file:/var/lib/edge-agent/device.key"},
		{"device.data_dir", c.Device.DataDir, "/var/lib/edge-agent"},
		{"store path", c.StorePath(), "/var/lib/edge-agent/outbox.db"},
		{"store.max_bytes", c.Store.MaxBytes, ByteSize(256 << 20)},
		{"pipeline.location_max_age", c.Pipeline.LocationMaxAge.Duration, 10 * time.Second},
		{"pipeline.sign_workers", c.Pipeline.SignWorkers, 0},
		{"device.cpus", c.Device.CPUs, 0},
		{"pipeline.batch_max", c.Pipeline.BatchMax, 256},
		{"pipeline.queue_len", c.Pipeline.QueueLen, 1024},
		{"pipeline.commit_interval", c.Pipeline.CommitInterval.Duration, 2 * time.Second},
		{"pipeline.commit_min_records", c.Pipeline.CommitMinRecords, 20},
		{"pipeline.commit_interval_max", c.Pipeline.CommitIntervalMax.Duration, 30 * time.Second},
		{"ack delay: twice the stretched window", c.Pipeline.AckDelay(), time.Minute},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "auto"},
		{"drivers", len(c.Drivers.Sim), 0},
		{"uplinks.file.enabled", c.Uplinks.File.Enabled, false},
		{"spool dir", c.SpoolDir(), "/var/lib/edge-agent/spool"},
		{"uplinks.file.rotate_bytes", c.Uplinks.File.RotateBytes, ByteSize(8 << 20)},
		{"uplinks.file.rotate_interval", c.Uplinks.File.RotateInterval.Duration, time.Minute},
		{"sim camera dir", c.SimCameraDir(Sim{Kind: "camera"}), "/var/lib/edge-agent/sim-camera"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestPathOverrides(t *testing.T) {
	c := mustParse(t, `version = 1
[device]
data_dir = "/data"
[store]
path = "/ssd/outbox.db"
[uplinks.file]
dir = "/mnt/usb"
`)
	if got := c.StorePath(); got != "/ssd/outbox.db" {
		t.Errorf("StorePath() = %q", got)
	}
	if got := c.SpoolDir(); got != "/mnt/usb" {
		t.Errorf("SpoolDir() = %q", got)
	}
	if got := c.SimCameraDir(Sim{Dir: "/cam"}); got != "/cam" {
		t.Errorf("SimCameraDir() = %q", got)
	}
	c = mustParse(t, "version = 1\n[device]\ndata_dir = \"/data\"\n")
	if got := c.StorePath(); got != "/data/outbox.db" {
		t.Errorf("StorePath() under data_dir = %q", got)
	}
}

func TestDefaultTOMLRoundTrip(t *testing.T) {
	c := mustParse(t, DefaultTOML())
	if want := Default(); !reflect.DeepEqual(*c, want) {
		t.Fatalf("Parse(DefaultTOML()) = %+v\nwant Default() = %+v", *c, want)
	}
}

// Every key of the schema must be shown in DefaultTOML, set (tables and scalars) or in a commented example
// (array-of-tables element keys), so a new field cannot ship undocumented.
func TestDefaultTOMLShowsEveryKey(t *testing.T) {
	text := DefaultTOML()
	var raw map[string]any
	md, err := toml.Decode(text, &raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range schemaKeys("", reflect.TypeFor[Config]()) {
		t.Run(key, func(t *testing.T) {
			if parent, leaf, ok := strings.Cut(key, "[]."); ok {
				// An array element key: documented in the key list and comment block of its section.
				re := regexp.MustCompile(`(?m)^#\s+` + regexp.QuoteMeta(leaf) + `\s`)
				if !strings.Contains(text, "[["+parent+"]]") || !re.MatchString(text) {
					t.Errorf("DefaultTOML has no commented [[%s]] example documenting %q", parent, leaf)
				}
				return
			}
			if strings.HasPrefix(key, "drivers") {
				return // drivers.* are arrays of tables, documented as examples above
			}
			if !md.IsDefined(strings.Split(key, ".")...) {
				t.Errorf("DefaultTOML does not set %q", key)
			}
		})
	}
}

// uncommentExamples turns "#key = ..." and "#[[...]]" example lines into live config.
func uncommentExamples(s string) string {
	return regexp.MustCompile(`(?m)^#([a-z\[])`).ReplaceAllString(s, "$1")
}

func TestDefaultTOMLExamplesAreValid(t *testing.T) {
	c := mustParse(t, uncommentExamples(DefaultTOML()))
	want := []Sim{
		{Name: "sim-gps", Kind: "gnss", Interval: D(time.Second)},
		{Name: "sim-gateway", Kind: "lora", Interval: D(2 * time.Second), Count: 100},
	}
	if !reflect.DeepEqual(c.Drivers.Sim, want) {
		t.Fatalf("examples = %+v, want %+v", c.Drivers.Sim, want)
	}
}

func TestPackagedConfigIsDefaultTOML(t *testing.T) {
	path := filepath.Join("..", "packaging", "config.toml")
	if *update {
		if err := os.WriteFile(path, []byte(DefaultTOML()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it: go test ./config -run TestPackagedConfigIsDefaultTOML -update)", err)
	}
	if string(got) != DefaultTOML() {
		t.Fatalf("%s differs from DefaultTOML(); regenerate: go test ./config -run TestPackagedConfigIsDefaultTOML -update", path)
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(*Config) bool
	}{
		{"minimal file is all defaults", "version = 1\n", func(c *Config) bool { return reflect.DeepEqual(*c, Default()) }},
		{"size as integer bytes", "version = 1\n[store]\nmax_bytes = 2097152\n",
			func(c *Config) bool { return c.Store.MaxBytes == 2*MiB }},
		{"size with decimal unit and space", "version = 1\n[store]\nmax_bytes = \"8 MB\"\n",
			func(c *Config) bool { return c.Store.MaxBytes == 8_000_000 }},
		{"durations", "version = 1\n[pipeline]\nlocation_max_age = \"1m30s\"\n[uplinks.file]\nrotate_interval = \"0s\"\n",
			func(c *Config) bool {
				return c.Pipeline.LocationMaxAge.Duration == 90*time.Second && c.Uplinks.File.RotateInterval.Duration == 0
			}},
		{"sims get their defaults", `version = 1
[[drivers.sim]]
name = "a"
kind = "env"
[[drivers.sim]]
name = "fast"
kind = "counter"
interval = "10us"
count = 5
`, func(c *Config) bool {
			return reflect.DeepEqual(c.Drivers.Sim, []Sim{
				{Name: "a", Kind: "env", Interval: D(time.Second)},
				{Name: "fast", Kind: "counter", Interval: D(10 * time.Microsecond), Count: 5},
			})
		}},
		{"inline tables and dotted keys", `version = 1
store.max_bytes = "2MiB"
uplinks = { file = { enabled = true, dir = "/spool" } }
drivers.sim = [{ name = "g", kind = "gnss", nmea_file = "/x.nmea" }]
`, func(c *Config) bool {
			return c.Store.MaxBytes == 2*MiB && c.Uplinks.File.Enabled && c.SpoolDir() == "/spool" &&
				len(c.Drivers.Sim) == 1 && c.Drivers.Sim[0].NMEAFile == "/x.nmea" && c.Drivers.Sim[0].Interval.Duration == time.Second
		}},
		{"camera sims in different dirs", `version = 1
[[drivers.sim]]
name = "cam1"
kind = "camera"
[[drivers.sim]]
name = "cam2"
kind = "camera"
dir = "/tmp/cam2"
`, func(c *Config) bool { return len(c.Drivers.Sim) == 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.src)
			if !tt.check(c) {
				t.Errorf("unexpected config: %+v", *c)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Parse succeeded but Validate() = %v", err)
			}
		})
	}
}

// wantProblem is one expected KeyError.
type wantProblem struct {
	key  string
	line int
	is   error
	msg  string // substring of Error()
}

func checkProblems(tb testing.TB, err error, want []wantProblem) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("no error, want %d problems", len(want))
	}
	got := problemsOf(tb, err)
	if len(got) != len(want) {
		tb.Fatalf("got %d problems, want %d:\n%v", len(got), len(want), err)
	}
	for i, w := range want {
		g := got[i]
		if g.Key != w.key || g.Line != w.line {
			tb.Errorf("problem %d: key %q line %d, want key %q line %d (%v)", i, g.Key, g.Line, w.key, w.line, g)
		}
		if !errors.Is(g, w.is) || !errors.Is(err, w.is) {
			tb.Errorf("problem %d: %v is not %v", i, g, w.is)
		}
		if !strings.Contains(g.Error(), w.msg) {
			tb.Errorf("problem %d: %q does not contain %q", i, g.Error(), w.msg)
		}
		if !strings.HasPrefix(g.Error(), "config: ") {
			tb.Errorf("problem %d: %q lacks the package prefix", i, g.Error())
		}
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []wantProblem
	}{
		{"unknown key at top level", "version = 1\nfoo = 2\n",
			[]wantProblem{{"foo", 2, ErrUnknownKey, `config: unknown key "foo" at line 2 — remove it`}}},
		{"unknown key in a table, with suggestion", `# my hotspot
version = 1

[device]
data_dir = "/data"
[store]
max_byte = "1GiB"
`, []wantProblem{{"store.max_byte", 7, ErrUnknownKey,
			`config: unknown key "store.max_byte" at line 7 — did you mean "store.max_bytes"?`}}},
		{"unknown key in an array-of-tables element", `version = 1
[[drivers.sim]]
name = "a"
kind = "gnss"

[[drivers.sim]]
name = "b"
kind = "lora"
intervall = "2s"
`, []wantProblem{{"drivers.sim[1].intervall", 9, ErrUnknownKey, `did you mean "drivers.sim[1].interval"?`}}},
		{"unknown table", "version = 1\n\n[uplinks.amqp]\nbroker = \"tcp://x\"\n",
			[]wantProblem{{"uplinks.amqp", 3, ErrUnknownKey, `unknown key "uplinks.amqp" at line 3`}}},
		{"wrong case is unknown, with suggestion", "version = 1\n[store]\nMax_Bytes = 5\n",
			[]wantProblem{{"store.Max_Bytes", 3, ErrUnknownKey, `did you mean "store.max_bytes"?`}}},
		{"key in the wrong section", "version = 1\n[store]\nsign_workers = 4\n",
			[]wantProblem{{"store.sign_workers", 3, ErrUnknownKey, `did you mean "pipeline.sign_workers"?`}}},
		{"unknown key in an inline table", "version = 1\n[uplinks]\nfile = { enabled = true,\n  dirr = \"/x\" }\n",
			[]wantProblem{{"uplinks.file.dirr", 4, ErrUnknownKey, `did you mean "uplinks.file.dir"?`}}},
		{"quoted unknown key", "version = 1\n[store]\n\"max bytes\" = 5\n",
			[]wantProblem{{`store."max bytes"`, 3, ErrUnknownKey, `unknown key "store.\"max bytes\""`}}},

		{"size of wrong type", "version = 1\n[store]\nmax_bytes = true\n",
			[]wantProblem{{"store.max_bytes", 3, ErrInvalid, `config: store.max_bytes at line 3: wrong type: got boolean true, want a size`}}},
		{"integer as string", "version = 1\n[pipeline]\nbatch_max = \"10\"\n",
			[]wantProblem{{"pipeline.batch_max", 3, ErrInvalid, `wrong type: got string "10", want an integer`}}},
		{"string as integer", "version = 1\n[log]\nlevel = 3\n",
			[]wantProblem{{"log.level", 3, ErrInvalid, `wrong type: got integer 3, want a string`}}},
		{"boolean as string", "version = 1\n[uplinks.file]\nenabled = \"yes\"\n",
			[]wantProblem{{"uplinks.file.enabled", 3, ErrInvalid, `want a boolean`}}},
		{"duration as integer", "version = 1\n[[drivers.sim]]\nname = \"a\"\nkind = \"env\"\ninterval = 5\n",
			[]wantProblem{{"drivers.sim[0].interval", 5, ErrInvalid, `wrong type: got integer 5, want a duration string`}}},
		{"float for integer", "version = 1\n[pipeline]\nqueue_len = 1.5\n",
			[]wantProblem{{"pipeline.queue_len", 3, ErrInvalid, `got float 1.5, want an integer`}}},
		{"table as value", "version = 1\nstore = 5\n",
			[]wantProblem{{"store", 2, ErrInvalid, `want a table ([store])`}}},
		{"array of tables as value", "version = 1\n[drivers]\nsim = \"gps\"\n",
			[]wantProblem{{"drivers.sim", 3, ErrInvalid, `want an array of tables ([[drivers.sim]])`}}},
		{"version as string", "version = \"1\"\n",
			[]wantProblem{{"version", 1, ErrInvalid, `got string "1", want an integer`}}},

		{"version missing", "[log]\nlevel = \"debug\"\n",
			[]wantProblem{{"version", 0, ErrMissing, "config: version is missing: add `version = 1`"}}},
		{"version 2", "version = 2\n",
			[]wantProblem{{"version", 1, ErrVersion, "config: version at line 1: unsupported version 2"}}},
		{"version 0 is unsupported, not missing", "version = 0\n",
			[]wantProblem{{"version", 1, ErrVersion, "unsupported version 0"}}},

		{"store too small", "version = 1\n[store]\nmax_bytes = \"512KiB\"\n",
			[]wantProblem{{"store.max_bytes", 3, ErrInvalid, `store.max_bytes at line 3: invalid value "512KiB": must be at least 1MiB`}}},
		{"negative size", "version = 1\n[store]\nmax_bytes = -1\n",
			[]wantProblem{{"store.max_bytes", 3, ErrInvalid, `invalid value -1: a size cannot be negative`}}},
		{"garbage size", "version = 1\n[store]\nmax_bytes = \"lots\"\n",
			[]wantProblem{{"store.max_bytes", 3, ErrInvalid, `invalid value "lots": not a size`}}},
		{"negative duration", "version = 1\n[pipeline]\nlocation_max_age = \"-5s\"\n",
			[]wantProblem{{"pipeline.location_max_age", 3, ErrInvalid, `invalid value "-5s": a duration cannot be negative`}}},
		{"zero location age", "version = 1\n[pipeline]\nlocation_max_age = \"0s\"\n",
			[]wantProblem{{"pipeline.location_max_age", 3, ErrInvalid, `invalid value "0s": must be more than 0s and at most 24h`}}},
		{"sign workers", "version = 1\n[pipeline]\nsign_workers = 65\n",
			[]wantProblem{{"pipeline.sign_workers", 3, ErrInvalid, `invalid value 65: must be between 0 and 64`}}},
		{"batch zero", "version = 1\n[pipeline]\nbatch_max = 0\n",
			[]wantProblem{{"pipeline.batch_max", 3, ErrInvalid, `invalid value 0: must be between 1 and 8192`}}},
		{"commit interval too long", "version = 1\n[pipeline]\ncommit_interval = \"2m\"\n",
			[]wantProblem{{"pipeline.commit_interval", 3, ErrInvalid, `invalid value "2m": must be between 0s and 1m`}}},
		{"commit min records zero", "version = 1\n[pipeline]\ncommit_min_records = 0\n",
			[]wantProblem{{"pipeline.commit_min_records", 3, ErrInvalid, `invalid value 0: must be between 1 and 8192`}}},
		{"commit interval max too long", "version = 1\n[pipeline]\ncommit_interval_max = \"61s\"\n",
			[]wantProblem{{"pipeline.commit_interval_max", 3, ErrInvalid, `invalid value "1m1s": must be between 0s and 1m`}}},
		{"queue too long", "version = 1\n[pipeline]\nqueue_len = 1000001\n",
			[]wantProblem{{"pipeline.queue_len", 3, ErrInvalid, `must be between 1 and 1000000`}}},
		{"log level", "version = 1\n[log]\nlevel = \"verbose\"\n",
			[]wantProblem{{"log.level", 3, ErrInvalid, `invalid value "verbose": must be one of "debug", "info", "warn", "error"`}}},
		{"log format", "version = 1\n[log]\nformat = \"xml\"\n",
			[]wantProblem{{"log.format", 3, ErrInvalid, `must be one of "auto", "text", "json"`}}},
		{"device cpus", "version = 1\n[device]\ncpus = -1\n",
			[]wantProblem{{"device.cpus", 3, ErrInvalid, `want 0 (all the cores there are) or 1 to 1024`}}},
		{"device key", "version = 1\n[device]\nkey = \"/var/lib/k\"\n",
			[]wantProblem{{"device.key", 3, ErrInvalid, `want a signer URI`}}},
		{"device key empty", "version = 1\n[device]\nkey = \"\"\n",
			[]wantProblem{{"device.key", 3, ErrMissing, `device.key is missing at line 3`}}},
		{"relative data dir", "version = 1\n[device]\ndata_dir = \"data\"\n",
			[]wantProblem{{"device.data_dir", 3, ErrInvalid, `must be an absolute path`}}},
		{"relative store path", "version = 1\n[store]\npath = \"outbox.db\"\n",
			[]wantProblem{{"store.path", 3, ErrInvalid, `must be an absolute path`}}},
		{"rotate bytes", "version = 1\n[uplinks.file]\nrotate_bytes = 4095\n",
			[]wantProblem{{"uplinks.file.rotate_bytes", 3, ErrInvalid, `invalid value "4095": must be at least 4KiB`}}},
		{"rotate interval", "version = 1\n[uplinks.file]\nrotate_interval = \"10ms\"\n",
			[]wantProblem{{"uplinks.file.rotate_interval", 3, ErrInvalid, `must be 0s (rotate by size only) or at least 1s`}}},

		{"duplicate driver names", `version = 1
[[drivers.sim]]
name = "gps"
kind = "gnss"
[[drivers.sim]]
name = "gps"
kind = "lora"
`, []wantProblem{{"drivers.sim[1].name", 6, ErrInvalid, `invalid value "gps": already used by drivers.sim[0]`}}},
		{"driver name and kind missing", "version = 1\n[[drivers.sim]]\ncount = 3\n", []wantProblem{
			{"drivers.sim[0].name", 2, ErrMissing, `drivers.sim[0].name is missing at line 2: add name = "..."`},
			{"drivers.sim[0].kind", 2, ErrMissing, `add kind = one of "gnss"`},
		}},
		{"driver bad values", `version = 1
[[drivers.sim]]
name = "GPS 1"
kind = "radar"
interval = "0s"
count = -1
`, []wantProblem{
			{"drivers.sim[0].name", 3, ErrInvalid, `invalid value "GPS 1": use 1 to 32 of lowercase letters`},
			{"drivers.sim[0].kind", 4, ErrInvalid, `invalid value "radar": must be one of "gnss", "lora", "env", "camera", "counter"`},
			{"drivers.sim[0].interval", 5, ErrInvalid, `invalid value "0s": must be between 1ms and 24h`},
			{"drivers.sim[0].count", 6, ErrInvalid, `must be 0 (no limit) or more`},
		}},
		{"counter may be fast, others not", `version = 1
[[drivers.sim]]
name = "c"
kind = "counter"
interval = "10us"
[[drivers.sim]]
name = "e"
kind = "env"
interval = "10us"
`, []wantProblem{{"drivers.sim[1].interval", 9, ErrInvalid, `must be between 1ms and 24h for kind "env"`}}},
		{"kind-specific keys on the wrong kind", `version = 1
[[drivers.sim]]
name = "l"
kind = "lora"
nmea_file = "/x.nmea"
dir = "/cam"
`, []wantProblem{
			{"drivers.sim[0].nmea_file", 5, ErrInvalid, `only used by kind "gnss"`},
			{"drivers.sim[0].dir", 6, ErrInvalid, `only used by kind "camera"`},
		}},
		{"two cameras in one dir", `version = 1
[[drivers.sim]]
name = "a"
kind = "camera"
[[drivers.sim]]
name = "b"
kind = "camera"
`, []wantProblem{{"drivers.sim[1].dir", 5, ErrInvalid, `already used by drivers.sim[0]`}}},

		{"several problems, in line order", `version = 1
[pipeline]
batch_max = 0
typo = 1
[log]
level = 7
`, []wantProblem{
			{"pipeline.batch_max", 3, ErrInvalid, "must be between 1 and 8192"},
			{"pipeline.typo", 4, ErrUnknownKey, "unknown key"},
			{"log.level", 6, ErrInvalid, "wrong type"},
		}},
		{"line numbers survive multi-line values", "version = 1\n[device]\nkey = \"\"\"file:\\\n\n  /k\"\"\"\ndata_dir = '''\n/x\n'''\n[store]\nmax_byte = [\n 1, # one\n 2,\n]\nbad = 1\n",
			[]wantProblem{
				{"store.max_byte", 10, ErrUnknownKey, "store.max_bytes"},
				{"store.bad", 14, ErrUnknownKey, "unknown key"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.src))
			if c != nil {
				t.Errorf("Parse returned a config along with an error")
			}
			checkProblems(t, err, tt.want)
		})
	}
}

func TestParseCorrupt(t *testing.T) {
	binary := make([]byte, 512)
	for i := range binary {
		binary[i] = byte(i*131 + 7)
	}
	def := DefaultTOML()
	tests := []struct {
		name string
		src  []byte
		line int
	}{
		{"binary garbage", binary, 1},
		{"elf header", []byte("\x7fELF\x02\x01\x01\x00\x00\x00"), 1},
		{"truncated mid-table header", []byte(def[:strings.Index(def, "[pipeline]")+4]), strings.Count(def[:strings.Index(def, "[pipeline]")], "\n") + 1},
		{"truncated mid-string", []byte("version = 1\n[device]\nkey = \"file:/var/li"), 3},
		{"duplicate key", []byte("version = 1\nversion = 1\n"), 2},
		{"missing value", []byte("version =\n"), 1},
		{"nul bytes", []byte("version = 1\n\x00\x00\x00"), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.src)
			if err == nil || c != nil {
				t.Fatalf("Parse = %v, %v; want an error", c, err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v is not ErrInvalid", err)
			}
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("%v is not a *KeyError", err)
			}
			var pe toml.ParseError
			if !errors.As(err, &pe) {
				t.Errorf("%v does not wrap the toml.ParseError", err)
			}
			if ke.Line != tt.line {
				t.Errorf("line %d, want %d: %v", ke.Line, tt.line, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config: syntax error at line ") || !strings.Contains(msg, "not TOML") {
				t.Errorf("unclear message: %q", msg)
			}
		})
	}
}

func TestValidateInCode(t *testing.T) {
	c := Default()
	c.Version = 0
	c.Pipeline.BatchMax = 9000
	c.Drivers.Sim = []Sim{{Name: "x", Kind: "gnss", Interval: D(time.Second)}, {Name: "x", Kind: "gnss"}}
	checkProblems(t, c.Validate(), []wantProblem{
		{"version", 0, ErrMissing, "config: version is missing: add `version = 1`"},
		{"pipeline.batch_max", 0, ErrInvalid, "config: pipeline.batch_max: invalid value 9000: must be between 1 and 8192"},
		{"drivers.sim[1].interval", 0, ErrInvalid, `invalid value "0s"`},
		{"drivers.sim[1].name", 0, ErrInvalid, `already used by drivers.sim[0]`},
	})
	if err := c.Validate(); !errors.Is(err, ErrVersion) {
		t.Errorf("missing version is not ErrVersion: %v", err)
	}
}

func TestTooManyProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString("version = 1\n")
	for i := range 50 {
		b.WriteString("[[drivers.sim]]\n")
		_ = i
	}
	_, err := Parse([]byte(b.String()))
	got := problemsOf(t, err)
	if len(got) != maxProblems {
		t.Fatalf("%d problems shown, want %d", len(got), maxProblems)
	}
	if !strings.Contains(err.Error(), "and 80 more problems") {
		t.Errorf("no summary of the rest: %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(tb testing.TB, name, content string) string {
		tb.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			tb.Fatal(err)
		}
		return p
	}
	t.Run("valid", func(t *testing.T) {
		c, err := Load(write(t, "ok.toml", DefaultTOML()))
		if err != nil || !reflect.DeepEqual(*c, Default()) {
			t.Fatalf("Load = %+v, %v", c, err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		p := filepath.Join(dir, "nope.toml")
		_, err := Load(p)
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("%v is not ErrNotFound", err)
		}
		if !strings.Contains(err.Error(), "edge-agent config default > "+p) {
			t.Errorf("no advice in %q", err)
		}
	})
	t.Run("problems name the file", func(t *testing.T) {
		p := write(t, "bad.toml", "version = 1\n[store]\nmax_byte = 1\n[log]\nlevel = \"loud\"\n")
		_, err := Load(p)
		checkProblems(t, err, []wantProblem{
			{"store.max_byte", 3, ErrUnknownKey, `unknown key "store.max_byte" at line 3 of ` + p},
			{"log.level", 5, ErrInvalid, "config: log.level at line 5 of " + p + `: invalid value "loud"`},
		})
	})
	t.Run("syntax error names the file", func(t *testing.T) {
		p := write(t, "syntax.toml", "version = = 1\n")
		_, err := Load(p)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "at line 1, column") || !strings.Contains(err.Error(), p) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("huge file", func(t *testing.T) {
		p := write(t, "huge.toml", strings.Repeat("# x\n", maxFileBytes/4+1))
		_, err := Load(p)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "config: "+p+": the file is larger than 1MiB") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("a directory", func(t *testing.T) {
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("got %v", err)
		}
	})
}

func TestEncodeRoundTrip(t *testing.T) {
	c := Default()
	c.Store.MaxBytes = 3*MiB + 1
	c.Pipeline.LocationMaxAge = D(90 * time.Second)
	c.Uplinks.File = FileUplink{Enabled: true, Dir: "/spool", RotateBytes: 5000, RotateInterval: D(0)}
	c.Drivers.Sim = []Sim{
		{Name: "g", Kind: "gnss", Interval: D(1500 * time.Millisecond), NMEAFile: "/t.nmea"},
		{Name: "c", Kind: "counter", Interval: D(10 * time.Microsecond), Count: 7},
	}
	var b strings.Builder
	if err := c.Encode(&b); err != nil {
		t.Fatal(err)
	}
	got := mustParse(t, b.String())
	if !reflect.DeepEqual(*got, c) {
		t.Fatalf("round trip:\n%s\ngot  %+v\nwant %+v", b.String(), *got, c)
	}
}

func TestParseRefusesPathologicalInput(t *testing.T) {
	tests := []struct {
		name string
		src  string
		msg  string
	}{
		{"too large", "version = 1\n" + strings.Repeat("#\n", maxFileBytes/2), "config: the file is larger than 1MiB"},
		{"deep arrays", "version = 1\na = " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n",
			"config: syntax error at line 2: arrays, tables or dotted keys nested 100 deep (at most 64)"},
		{"deep inline tables", "version = 1\n\na = {" + strings.Repeat("b = {", 70) + strings.Repeat("}", 71) + "\n",
			"at line 3: arrays, tables or dotted keys nested 71 deep"},
		// Each dot is a level of tables to the TOML library: 40 KB of them took 93 s and 5.2 GB.
		{"deep dotted key", "version = 1\n" + strings.Repeat("a.", 20_000) + "b = 1\n",
			"at line 2: arrays, tables or dotted keys nested 20000 deep"},
		{"deep dotted table header", "version = 1\n[" + strings.Repeat("a.", 20_000) + "b]\n",
			"at line 2: arrays, tables or dotted keys nested 20001 deep"},
		{"deep dotted keys in inline tables", "version = 1\nx = {" + strings.Repeat("a.a.a = {", 30) + strings.Repeat("}", 31) + "\n",
			"at line 2: arrays, tables or dotted keys nested 91 deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := Parse([]byte(tt.src))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(fmt.Sprint(err), tt.msg) {
				t.Errorf("got %v, want ErrInvalid containing %q", err, tt.msg)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestNestingDepthCountsDotsPerStatement(t *testing.T) {
	// Floats in a list restore the depth at each comma; a new line starts a new statement.
	src := "a.b = 1\nx = [1.5, 2.5, 3.5, 4.5, 5.5]\n[t.u]\nv.w = 1.25\ny = {p.q.r = 1}\n"
	if depth, line := nestingDepth([]byte(src)); depth != 3 || line != 5 {
		t.Errorf("nestingDepth = %d at line %d, want 3 at line 5", depth, line)
	}
	if err := Guard([]byte(DefaultTOML())); err != nil {
		t.Errorf("Guard(DefaultTOML()) = %v", err)
	}
}

func TestNestingDepthIgnoresStringsAndComments(t *testing.T) {
	src := "a = \"[[[{{{\" # [[[[[\nb = '''\n[[[[\n'''\nc = \"\"\"x\\\"[[[[\"\"\"\"\nd = [[1], [2]]\n[[t]]\n"
	if depth, line := nestingDepth([]byte(src)); depth != 2 || line != 6 {
		t.Errorf("nestingDepth = %d at line %d, want 2 at line 6", depth, line)
	}
}

// TestBoardExamplesLoad: each board example in the shipped config, once
// uncommented, loads, and together they make a hotspot with three drivers.
func TestBoardExamplesLoad(t *testing.T) {
	src := DefaultTOML()
	start := strings.Index(src, "# >>> Raspberry Pi LoRa hotspot")
	end := strings.Index(src, "# Drivers: one")
	if start < 0 || end < start {
		t.Fatal("the board examples are missing from DefaultTOML")
	}
	var uncommented []string
	for _, line := range strings.Split(src[start:end], "\n") {
		if strings.HasPrefix(line, "#") && len(line) > 1 && line[1] != ' ' && line[1] != '#' && line[1] != '>' {
			line = line[1:]
		}
		uncommented = append(uncommented, line)
	}
	doc := src[:start] + strings.Join(uncommented, "\n") + src[end:]
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("the uncommented board examples do not load: %v", err)
	}
	d := c.Drivers
	if len(d.LoRa) != 1 || d.LoRa[0].Listen != "127.0.0.1:1690" || len(d.LoRa[0].Upstreams) != 1 || len(d.GNSS) != 1 || d.GNSS[0].Device != "/dev/ttyACM0" ||
		len(d.Env) != 1 || d.Env[0].Addr != 0x76 {
		t.Errorf("drivers %+v", d)
	}
}

func TestServerURLCredentialsRefusedAndRedacted(t *testing.T) {
	const secret = "s3cr3t-pw"
	for _, s := range []string{"tcp://u:" + secret + "@broker:1883", "http://u:" + secret + "@broker", "tcp://u:" + secret + "@[::1", "u:" + secret + "@broker"} {
		_, err := Parse([]byte("version = 1\n[uplinks.mqtt]\nenabled = true\nservers = [\"" + s + "\"]\n"))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "uplinks.mqtt.servers[0]") {
			t.Errorf("Parse(%q) = %v, want ErrInvalid naming uplinks.mqtt.servers[0]", s, err)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the password: %v", err)
		}
	}
	for in, want := range map[string]string{
		"tcp://u:pw@h:1/x@y": "tcp://xxxxx@h:1/x@y",
		"tcp://a@b@h":        "tcp://xxxxx@h",
		"tcp://h:1883":       "tcp://h:1883",
		"u:pw@h":             "xxxxx@h",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// Acks wait twice the longest window a commit can have, and no longer when the window never stretches.
func TestPipelineAckDelay(t *testing.T) {
	for _, tc := range []struct {
		name string
		pl   Pipeline
		want time.Duration
	}{
		{"stretching", Pipeline{CommitInterval: D(2 * time.Second), CommitMinRecords: 16, CommitIntervalMax: D(20 * time.Second)}, 40 * time.Second},
		{"min 1 never stretches", Pipeline{CommitInterval: D(2 * time.Second), CommitMinRecords: 1, CommitIntervalMax: D(20 * time.Second)}, 4 * time.Second},
		{"max below the interval", Pipeline{CommitInterval: D(5 * time.Second), CommitMinRecords: 16, CommitIntervalMax: D(time.Second)}, 10 * time.Second},
		{"0s commits at once", Pipeline{CommitMinRecords: 16, CommitIntervalMax: D(20 * time.Second)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.pl.AckDelay(); got != tc.want {
				t.Fatalf("AckDelay() = %v, want %v", got, tc.want)
			}
		})
	}
}
