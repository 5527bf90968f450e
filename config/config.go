package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole daemon configuration. Build it with Default, Parse or Load; a Config built in code
// should be checked with Validate.
type Config struct {
	Version  int      `toml:"version"` // must be 1
	Device   Device   `toml:"device"`
	Store    Store    `toml:"store"`
	Pipeline Pipeline `toml:"pipeline"`
	Log      Log      `toml:"log"`
	Drivers  Drivers  `toml:"drivers"`
	Uplinks  Uplinks  `toml:"uplinks"`
	Status   Status   `toml:"status"`
}

// Device is the identity of this box and where it keeps its state.
type Device struct {
	Key     string `toml:"key"`      // signer URI: file:PATH, tpm:…, ecc608:…
	DataDir string `toml:"data_dir"` // absolute; the outbox, spool and simulated data live under it by default
	// Hardware keys (#13): the manufacturer certificate, and how often a
	// hardware key binds a new in-memory session key (0 = it signs every
	// record itself).
	Cert            string   `toml:"cert"`             // "" = <data_dir>/device.crt
	SessionRotation Duration `toml:"session_rotation"` // tpm: and ecc608: only
	// CPUs is how many cores the agent may use when busy (0 = all); at light
	// load it runs on one (package procs).
	CPUs int `toml:"cpus"`
}

// CertPath is where the manufacturer certificate is kept.
func (c *Config) CertPath() string {
	if c.Device.Cert != "" {
		return c.Device.Cert
	}
	return filepath.Join(c.Device.DataDir, "device.crt")
}

// Store is the durable outbox.
type Store struct {
	Path     string   `toml:"path"`      // "" = <data_dir>/outbox.db; see Config.StorePath
	MaxBytes ByteSize `toml:"max_bytes"` // quota; the oldest records are evicted (with an agent.gap record) beyond it
}

// Pipeline tunes attestation between the drivers and the store.
type Pipeline struct {
	LocationMaxAge Duration `toml:"location_max_age"` // a fix older than this is not stamped on records
	SignWorkers    int      `toml:"sign_workers"`     // 0 = one per CPU
	BatchMax       int      `toml:"batch_max"`        // records per group commit
	QueueLen       int      `toml:"queue_len"`        // observations buffered before drivers block
	// CommitInterval is the durability window: how long a signed record may wait for its disk commit,
	// and acks for theirs. 0 = commit as soon as possible (two fdatasyncs per batch and per ack).
	CommitInterval Duration `toml:"commit_interval"`
	// CommitMinRecords and CommitIntervalMax stretch the window at low rates: a window that ends with
	// fewer than CommitMinRecords records waits for more, until CommitIntervalMax after it opened. A commit
	// writes five or six 4 KiB pages however few records it holds, so at 1 record/s a 2 s window writes
	// ~9 KB per record. 1 or a max not above CommitInterval = no stretch.
	CommitMinRecords  int      `toml:"commit_min_records"`
	CommitIntervalMax Duration `toml:"commit_interval_max"`
}

// AckDelay is how long the outbox keeps uplink acknowledgements in memory: twice the longest window, so
// that acks nearly always ride with the next window's commit rather than race it with one of their own.
func (pl Pipeline) AckDelay() time.Duration {
	return 2 * max(pl.CommitInterval.Duration, pl.stretchMax())
}

// stretchMax is the longest a window may last when stretched; 0 when it never stretches.
func (pl Pipeline) stretchMax() time.Duration {
	if pl.CommitInterval.Duration <= 0 || pl.CommitMinRecords <= 1 || pl.CommitIntervalMax.Duration <= pl.CommitInterval.Duration {
		return 0
	}
	return pl.CommitIntervalMax.Duration
}

// Log selects the daemon's log output.
type Log struct {
	Level  string `toml:"level"`  // debug | info | warn | error
	Format string `toml:"format"` // auto (JSON under systemd or when stderr is not a terminal) | text | json
}

// Drivers lists the configured driver instances, one array of tables per family. To add a family, add a
// field here ([]Family with a `toml` tag), give Family setDefaults and check methods, list its instances
// in Drivers.instances so names stay unique, and add its commented example to DefaultTOML.
type Drivers struct {
	Sim    []Sim    `toml:"sim"`    // [[drivers.sim]]
	GNSS   []GNSS   `toml:"gnss"`   // [[drivers.gnss]]
	Env    []Env    `toml:"env"`    // [[drivers.env]]
	Camera []Camera `toml:"camera"` // [[drivers.camera]]
	LoRa   []LoRa   `toml:"lora"`   // [[drivers.lora]]
	OBD    []OBD    `toml:"obd"`    // [[drivers.obd]]
	Energy []Energy `toml:"energy"` // [[drivers.energy]]
}

// Sim is a simulated source, for the demo, tests and bench.
type Sim struct {
	Name     string   `toml:"name"`      // unique across all drivers; [a-z0-9_.-]{1,32}; becomes the record's source
	Kind     string   `toml:"kind"`      // gnss | lora | env | camera | counter | obd | energy
	Interval Duration `toml:"interval"`  // time between observations
	NMEAFile string   `toml:"nmea_file"` // gnss only: replay this file ("" = built-in track)
	Dir      string   `toml:"dir"`       // camera only: where segments are written ("" = <data_dir>/sim-camera)
	Count    int      `toml:"count"`     // stop after this many observations; 0 = no limit
}

// Uplinks configures the transports; each is one table. To add one, add a field here and give its type a
// check method called from Config.problems, plus its block in DefaultTOML.
type Uplinks struct {
	File FileUplink `toml:"file"` // [uplinks.file]
	MQTT MQTTUplink `toml:"mqtt"` // [uplinks.mqtt]
	P2P  P2PUplink  `toml:"p2p"`  // [uplinks.p2p]
}

// FileUplink writes records to a CBOR-sequence spool directory (USB export, tests).
type FileUplink struct {
	Enabled        bool     `toml:"enabled"`
	Dir            string   `toml:"dir"`             // "" = <data_dir>/spool; see Config.SpoolDir
	RotateBytes    ByteSize `toml:"rotate_bytes"`    // start a new spool file beyond this size
	RotateInterval Duration `toml:"rotate_interval"` // and after this long; 0 = by size only
}

// Limits, shared by Validate and the comments in DefaultTOML so the two cannot disagree.
const (
	minStoreBytes      = 1 * MiB
	maxSignWorkers     = 64
	maxBatch           = 8192
	maxQueueLen        = 1_000_000
	maxCommitInterval  = time.Minute
	minRotateBytes     = 4 * KiB
	minRotateInterval  = time.Second
	maxLocationMaxAge  = 24 * time.Hour
	minSimInterval     = time.Millisecond
	minCounterInterval = 10 * time.Microsecond
	maxSimInterval     = 24 * time.Hour
	maxFileBytes       = 1 << 20 // a config larger than this is not a config
	maxProblems        = 20      // beyond this, more lines of errors help nobody
)

var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"auto", "text", "json"}
	simKinds   = []string{"gnss", "lora", "env", "camera", "counter", "obd", "energy"}
)

// Default returns the configuration used for every key the file does not set.
func Default() Config {
	return Config{
		Version: 1,
		Device: Device{
			Key:     "file:/var/lib/edge-agent/device.key",
			DataDir: "/var/lib/edge-agent",

			SessionRotation: D(time.Hour),
		},
		Store: Store{MaxBytes: 256 * MiB},
		Pipeline: Pipeline{
			LocationMaxAge: D(10 * time.Second),
			SignWorkers:    0,
			BatchMax:       256,
			QueueLen:       1024,
			CommitInterval: D(2 * time.Second),

			CommitMinRecords:  20,
			CommitIntervalMax: D(30 * time.Second),
		},
		Log: Log{Level: "info", Format: "auto"},
		Uplinks: Uplinks{
			File: FileUplink{RotateBytes: 8 * MiB, RotateInterval: D(time.Minute)},
			MQTT: defaultMQTT(),
			P2P:  defaultP2P(),
		},
		Status: defaultStatus(),
	}
}

func (s *Sim) setDefaults() { s.Interval = D(time.Second) }

// Parse reads a config file's contents: defaults first, then the file over them. Unknown keys, wrong
// types and bad values are all reported, each naming its key and line, joined in line order. Secrets
// named by password_file are not read (Load reads them).
func Parse(data []byte) (*Config, error) {
	l, err := merge([]layer{{"", data}}, nil)
	if err != nil {
		return nil, err
	}
	return l.Config, nil
}

// Guard refuses a TOML document before any TOML parser sees it when it is larger than 1 MiB or nested
// deeper than 64 levels, counting brackets, braces and the dots of dotted keys (`a.b.c = 1` nests like
// `a = {b = {c = 1}}`): the parser's cost grows with the square of the depth. Parse calls it; so should any other reader
// of an operator's TOML file (collector.toml). The error is a *KeyError wrapping ErrInvalid.
func Guard(data []byte) error {
	if len(data) > maxFileBytes {
		return &KeyError{Err: ErrInvalid,
			Detail: fmt.Sprintf("the file is larger than %s; is it really the config file?", ByteSize(maxFileBytes))}
	}
	if depth, line := nestingDepth(data); depth > maxNesting {
		return &KeyError{Line: line, Err: ErrInvalid,
			Detail: fmt.Sprintf("arrays, tables or dotted keys nested %d deep (at most %d); is this really the config file?", depth, maxNesting)}
	}
	return nil
}

// Load reads the file at path and its drop-ins (DropinDir) and merges them; see LoadLayers. Every
// error names its file.
func Load(path string) (*Config, error) {
	l, err := LoadLayers(path, os.Getenv)
	if err != nil {
		return nil, err
	}
	return l.Config, nil
}

// Encode writes c as TOML that Parse reads back to an equal Config (without comments; see DefaultTOML).
func (c *Config) Encode(w io.Writer) error {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return fmt.Errorf("config: encode: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("config: encode: write: %w", err)
	}
	return nil
}

// StorePath is the outbox database file.
func (c *Config) StorePath() string {
	if c.Store.Path != "" {
		return c.Store.Path
	}
	return filepath.Join(c.Device.DataDir, "outbox.db")
}

// SpoolDir is where the file uplink writes.
func (c *Config) SpoolDir() string {
	if c.Uplinks.File.Dir != "" {
		return c.Uplinks.File.Dir
	}
	return filepath.Join(c.Device.DataDir, "spool")
}

// SimCameraDir is where a simulated camera writes its segments.
func (c *Config) SimCameraDir(s Sim) string {
	if s.Dir != "" {
		return s.Dir
	}
	return filepath.Join(c.Device.DataDir, "sim-camera")
}

// Validate reports every bad value, each naming its key, joined with errors.Join. Line numbers are
// known only to Parse; here they are 0.
func (c *Config) Validate() error {
	if p := c.problems(); len(p) > 0 {
		return joinProblems(p)
	}
	return nil
}

func (c *Config) problems() []*KeyError {
	var p []*KeyError
	switch {
	case c.Version == 0:
		p = append(p, missingVersion())
	case c.Version != 1:
		p = append(p, badVersion(c.Version))
	}
	p = append(p, c.Device.check("device")...)
	p = append(p, c.Store.check("store")...)
	p = append(p, c.Pipeline.check("pipeline")...)
	p = append(p, c.Log.check("log")...)
	p = append(p, c.Drivers.check("drivers", c)...)
	p = append(p, c.Uplinks.File.check("uplinks.file")...)
	p = append(p, c.Uplinks.MQTT.check("uplinks.mqtt")...)
	p = append(p, c.Uplinks.P2P.check("uplinks.p2p")...)
	p = append(p, c.Status.check("status")...)
	return p
}

func missingVersion() *KeyError {
	return &KeyError{Key: "version", Err: fmt.Errorf("%w: %w", ErrMissing, ErrVersion), Detail: "add `version = 1`"}
}

func badVersion(v int) *KeyError {
	return &KeyError{Key: "version", Err: ErrVersion,
		Detail: fmt.Sprintf("unsupported version %d: this edge-agent reads version 1; compare with `edge-agent config default`", v)}
}

// maxCPUs bounds device.cpus; more than the machine has means all of them.
const maxCPUs = 1024

var keyScheme = regexp.MustCompile(`^[a-z][a-z0-9+.-]*:.+$`)

func (d Device) check(k string) []*KeyError {
	var p []*KeyError
	if d.Key == "" {
		p = append(p, missing(k+".key", `add key = "file:/var/lib/edge-agent/device.key" (create the key with `+"`edge-agent keys init`)"))
	} else if !keyScheme.MatchString(d.Key) {
		p = append(p, invalid(k+".key", d.Key, `want a signer URI such as "file:/var/lib/edge-agent/device.key"`))
	}
	p = append(p, absPath(k+".data_dir", d.DataDir, false)...)
	p = append(p, absPath(k+".cert", d.Cert, true)...)
	if r := d.SessionRotation.Duration; r != 0 && (r < time.Second || r > 7*24*time.Hour) {
		p = append(p, invalid(k+".session_rotation", d.SessionRotation.String(), `want "0s" (the hardware key signs every record) or 1s to 168h (1h is the default)`))
	}
	if d.CPUs < 0 || d.CPUs > maxCPUs {
		p = append(p, invalid(k+".cpus", strconv.Itoa(d.CPUs), fmt.Sprintf("want 0 (all the cores there are) or 1 to %d", maxCPUs)))
	}
	return p
}

// absPath checks a path setting; relative paths are rejected because the daemon's working directory
// under systemd is /, which is never what was meant.
func absPath(key, path string, emptyOK bool) []*KeyError {
	switch {
	case path == "" && emptyOK:
		return nil
	case path == "":
		return []*KeyError{missing(key, "set an absolute directory such as \"/var/lib/edge-agent\"")}
	case !filepath.IsAbs(path):
		return []*KeyError{invalid(key, path, "must be an absolute path (starting with /)")}
	}
	return nil
}

func (s Store) check(k string) []*KeyError {
	p := absPath(k+".path", s.Path, true)
	if s.MaxBytes < minStoreBytes {
		p = append(p, invalid(k+".max_bytes", s.MaxBytes, fmt.Sprintf("must be at least %s", minStoreBytes)))
	}
	return p
}

func (pl Pipeline) check(k string) []*KeyError {
	var p []*KeyError
	if v := pl.LocationMaxAge.Duration; v <= 0 || v > maxLocationMaxAge {
		p = append(p, invalid(k+".location_max_age", pl.LocationMaxAge, "must be more than 0s and at most "+formatDuration(maxLocationMaxAge)))
	}
	p = append(p, intRange(k+".sign_workers", pl.SignWorkers, 0, maxSignWorkers)...)
	p = append(p, intRange(k+".batch_max", pl.BatchMax, 1, maxBatch)...)
	p = append(p, intRange(k+".queue_len", pl.QueueLen, 1, maxQueueLen)...)
	if v := pl.CommitInterval.Duration; v < 0 || v > maxCommitInterval {
		p = append(p, invalid(k+".commit_interval", pl.CommitInterval, "must be between 0s and "+formatDuration(maxCommitInterval)))
	}
	p = append(p, intRange(k+".commit_min_records", pl.CommitMinRecords, 1, maxBatch)...)
	if v := pl.CommitIntervalMax.Duration; v < 0 || v > maxCommitInterval {
		p = append(p, invalid(k+".commit_interval_max", pl.CommitIntervalMax, "must be between 0s and "+formatDuration(maxCommitInterval)))
	}
	return p
}

func intRange(key string, v, lo, hi int) []*KeyError {
	if v < lo || v > hi {
		return []*KeyError{invalid(key, v, fmt.Sprintf("must be between %d and %d", lo, hi))}
	}
	return nil
}

func oneOf(key, v string, allowed []string) []*KeyError {
	if slices.Contains(allowed, v) {
		return nil
	}
	return []*KeyError{invalid(key, v, "must be one of "+quoteList(allowed))}
}

func quoteList(s []string) string {
	var b bytes.Buffer
	for i, v := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(v))
	}
	return b.String()
}

func (l Log) check(k string) []*KeyError {
	return append(oneOf(k+".level", l.Level, logLevels), oneOf(k+".format", l.Format, logFormats)...)
}

// instance is one configured driver, whatever its family, for checks that span families.
type instance struct{ key, name string }

func (d Drivers) instances() []instance {
	var out []instance
	for i, s := range d.Sim {
		out = append(out, instance{fmt.Sprintf("drivers.sim[%d]", i), s.Name})
	}
	for i, g := range d.GNSS {
		out = append(out, instance{fmt.Sprintf("drivers.gnss[%d]", i), g.Name})
	}
	for i, e := range d.Env {
		out = append(out, instance{fmt.Sprintf("drivers.env[%d]", i), e.Name})
	}
	for i, c := range d.Camera {
		out = append(out, instance{fmt.Sprintf("drivers.camera[%d]", i), c.Name})
	}
	for i, l := range d.LoRa {
		out = append(out, instance{fmt.Sprintf("drivers.lora[%d]", i), l.Name})
	}
	for i, o := range d.OBD {
		out = append(out, instance{fmt.Sprintf("drivers.obd[%d]", i), o.Name})
	}
	for i, e := range d.Energy {
		out = append(out, instance{fmt.Sprintf("drivers.energy[%d]", i), e.Name})
	}
	return out
}

var driverName = regexp.MustCompile(`^[a-z0-9_.-]{1,32}$`)

func (d Drivers) check(k string, c *Config) []*KeyError {
	var p []*KeyError
	cameraDirs := map[string]string{}
	for i, s := range d.Sim {
		key := fmt.Sprintf("%s.sim[%d]", k, i)
		p = append(p, s.check(key)...)
		if s.Kind == "camera" {
			dir := filepath.Clean(c.SimCameraDir(s))
			if other, ok := cameraDirs[dir]; ok {
				p = append(p, invalid(key+".dir", dir, "already used by "+other+"; give each simulated camera its own dir"))
			}
			cameraDirs[dir] = key
		}
	}
	for i, g := range d.GNSS {
		p = append(p, g.check(fmt.Sprintf("%s.gnss[%d]", k, i))...)
	}
	for i, e := range d.Env {
		p = append(p, e.check(fmt.Sprintf("%s.env[%d]", k, i))...)
	}
	for i, c := range d.Camera {
		p = append(p, c.check(fmt.Sprintf("%s.camera[%d]", k, i))...)
	}
	listens := map[string]string{}
	for i, l := range d.LoRa {
		key := fmt.Sprintf("%s.lora[%d]", k, i)
		p = append(p, l.check(key)...)
		if l.Mode == "udp" {
			if other, ok := listens[l.Listen]; ok {
				p = append(p, invalid(key+".listen", l.Listen, "already used by "+other+"; one server per address serves every gateway"))
			}
			listens[l.Listen] = key
		}
	}
	for i, o := range d.OBD {
		p = append(p, o.check(fmt.Sprintf("%s.obd[%d]", k, i))...)
	}
	for i, e := range d.Energy {
		p = append(p, e.check(fmt.Sprintf("%s.energy[%d]", k, i))...)
	}
	first := map[string]string{}
	for _, in := range d.instances() {
		if in.name == "" || !driverName.MatchString(in.name) {
			continue // reported by the family's own check
		}
		if other, ok := first[in.name]; ok {
			p = append(p, invalid(in.key+".name", in.name, "already used by "+other+"; driver names must be unique"))
			continue
		}
		first[in.name] = in.key
	}
	return p
}

func (s Sim) check(k string) []*KeyError {
	var p []*KeyError
	switch {
	case s.Name == "":
		p = append(p, missing(k+".name", `add name = "..." (lowercase letters, digits, "_", "." or "-", at most 32); it becomes the records' source`))
	case !driverName.MatchString(s.Name):
		p = append(p, invalid(k+".name", s.Name, `use 1 to 32 of lowercase letters, digits, "_", "." or "-"`))
	}
	if s.Kind == "" {
		p = append(p, missing(k+".kind", "add kind = one of "+quoteList(simKinds)))
	} else {
		p = append(p, oneOf(k+".kind", s.Kind, simKinds)...)
	}
	lo := minSimInterval
	if s.Kind == "counter" {
		lo = minCounterInterval
	}
	if v := s.Interval.Duration; v < lo || v > maxSimInterval {
		p = append(p, invalid(k+".interval", s.Interval,
			fmt.Sprintf("must be between %s and %s for kind %q", formatDuration(lo), formatDuration(maxSimInterval), s.Kind)))
	}
	if s.NMEAFile != "" && s.Kind != "gnss" {
		p = append(p, invalid(k+".nmea_file", s.NMEAFile, `only used by kind "gnss"; remove it`))
	}
	if s.Dir != "" && s.Kind != "camera" {
		p = append(p, invalid(k+".dir", s.Dir, `only used by kind "camera"; remove it`))
	} else if s.Dir != "" {
		p = append(p, absPath(k+".dir", s.Dir, true)...)
	}
	if s.Count < 0 {
		p = append(p, invalid(k+".count", s.Count, "must be 0 (no limit) or more"))
	}
	return p
}

func (f FileUplink) check(k string) []*KeyError {
	p := absPath(k+".dir", f.Dir, true)
	if f.RotateBytes < minRotateBytes {
		p = append(p, invalid(k+".rotate_bytes", f.RotateBytes, fmt.Sprintf("must be at least %s", minRotateBytes)))
	}
	if v := f.RotateInterval.Duration; v != 0 && v < minRotateInterval {
		p = append(p, invalid(k+".rotate_interval", f.RotateInterval, "must be 0s (rotate by size only) or at least "+formatDuration(minRotateInterval)))
	}
	return p
}

// syntaxError turns the TOML library's error into ours, keeping its position.
func syntaxError(err error) error {
	e := &KeyError{Err: fmt.Errorf("%w: %w", ErrInvalid, err),
		Detail: err.Error() + " (is this a TOML file? compare with `edge-agent config default`)"}
	var pe toml.ParseError
	if errors.As(err, &pe) {
		e.Line, e.Col = pe.Position.Line, pe.Position.Col
		e.Detail = pe.Message + " (is the file truncated or not TOML? compare with `edge-agent config default`)"
	}
	return e
}

func joinProblems(p []*KeyError) error {
	slices.SortStableFunc(p, func(a, b *KeyError) int { return cmp.Compare(a.Line, b.Line) })
	var errs []error
	for i, e := range p {
		if i == maxProblems {
			errs = append(errs, fmt.Errorf("config: and %d more problems; fix the ones above first", len(p)-i))
			break
		}
		errs = append(errs, e)
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// forEachProblem visits every *KeyError in err, which is one of them or an errors.Join of them.
func forEachProblem(err error, f func(*KeyError)) {
	if e, ok := err.(*KeyError); ok {
		f(e)
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			forEachProblem(e, f)
		}
	}
}
