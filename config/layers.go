package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Drop-ins: Load reads the main file, then every *.toml in the config.d
// directory beside it, in lexical order (10-mqtt.toml before 20-gnss.toml).
// A later file's keys replace earlier values; its arrays of tables
// ([[drivers.gnss]]) add instances. So a package upgrade can ship a new
// main file while the operator's settings live in files dpkg never touches.

// DropinDir is the drop-in directory for the config file at path.
func DropinDir(path string) string { return filepath.Join(filepath.Dir(path), "config.d") }

// Layers is a config merged from its files, with where each value came from.
type Layers struct {
	Config *Config
	Files  []string          // the files read, in merge order
	origin map[string]string // key → "file:line"
}

// Origin says where key's value was set ("/etc/edge-agent/config.toml:12"),
// "" for a default.
func (l *Layers) Origin(key string) string { return l.origin[key] }

type layer struct {
	name string
	data []byte
}

// LoadLayers reads path and its drop-ins and merges them. getenv finds
// $CREDENTIALS_DIRECTORY for secrets named by systemd credential.
func LoadLayers(path string, getenv func(string) string) (*Layers, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	layers := []layer{{path, data}}
	dir := DropinDir(path)
	names, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", dir, err)
	}
	sort.Strings(names)
	for _, n := range names {
		data, err := readConfigFile(n)
		if err != nil {
			return nil, err
		}
		layers = append(layers, layer{n, data})
	}
	return merge(layers, getenv)
}

func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist: create it with `edge-agent config default > %s`, then edit it",
			ErrNotFound, path, path)
	}
	if err != nil {
		return nil, fmt.Errorf("config: open %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	return data, nil
}

// merge decodes the layers over the defaults in order. Every problem names
// its file and line; validation runs once, on the merged result, and blames
// the file that set the key.
func merge(layers []layer, getenv func(string) string) (*Layers, error) {
	c := Default()
	l := &Layers{Config: &c, origin: map[string]string{}}
	var problems []*KeyError
	type decoded struct {
		lines lineIndex
		d     *decoder
	}
	done := map[string]decoded{}
	for i, ly := range layers {
		l.Files = append(l.Files, ly.name)
		pre, raw := preParse(ly.data)
		if pre != nil {
			pre.File = ly.name
			problems = append(problems, pre)
			continue
		}
		lines := locate(ly.data)
		d := &decoder{root: reflect.TypeFor[Config](), appendArrays: i > 0, base: map[string]int{}}
		d.set = func(key string) { l.origin[key] = fmt.Sprintf("%s:%d", ly.name, lines.lineOf(d.local(key))) }
		d.table("", raw, reflect.ValueOf(&c).Elem())
		done[ly.name] = decoded{lines, d}
		if i == 0 {
			switch v, ok := raw["version"]; {
			case !ok:
				d.errs = append(d.errs, missingVersion())
			case v == int64(0):
				d.errs = append(d.errs, badVersion(0))
			}
		}
		for _, e := range d.errs {
			e.File, e.Line = ly.name, lines.lineOf(d.local(e.Key))
		}
		problems = append(problems, d.errs...)
	}
	reported := map[string]bool{}
	for _, e := range problems {
		reported[e.Key] = true
	}
	var secret []*KeyError
	if getenv != nil {
		secret = c.Uplinks.MQTT.readSecret(getenv)
	}
	for _, e := range append(c.problems(), secret...) {
		if reported[e.Key] {
			continue
		}
		e.File = layers[0].name
		if at := l.originOf(e.Key); at != "" {
			e.File, _, _ = strings.Cut(at, ":")
		}
		if dd, ok := done[e.File]; ok {
			e.Line = dd.lines.lineOf(dd.d.local(e.Key))
		}
		problems = append(problems, e)
	}
	if len(problems) > 0 {
		return nil, joinProblems(problems)
	}
	return l, nil
}

// preParse checks size and nesting and parses the TOML of one file.
func preParse(data []byte) (*KeyError, map[string]any) {
	if err := Guard(data); err != nil {
		return err.(*KeyError), nil
	}
	raw := map[string]any{}
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return syntaxError(err).(*KeyError), nil
	}
	return nil, raw
}

// originOf is the origin of key or of its nearest ancestor that has one.
func (l *Layers) originOf(key string) string {
	for key != "" {
		if at, ok := l.origin[key]; ok {
			return at
		}
		for k, at := range l.origin { // a table or array element: any key under it
			if strings.HasPrefix(k, key+".") {
				return at
			}
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return ""
}

// local turns a merged key ("drivers.gnss[2].baud") into the key within the
// file being decoded ("drivers.gnss[0].baud") when earlier files held two.
func (d *decoder) local(key string) string {
	var b strings.Builder
	rest := key
	for {
		i := strings.IndexByte(rest, '[')
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		j := strings.IndexByte(rest[i:], ']')
		if j < 0 {
			b.WriteString(rest)
			return b.String()
		}
		arr := key[:len(key)-len(rest)+i]
		var n int
		fmt.Sscan(rest[i+1:i+j], &n)
		fmt.Fprintf(&b, "%s[%d]", rest[:i], n-d.base[arr])
		rest = rest[i+j+1:]
	}
}

// readSecret fills Password from PasswordFile: an absolute path, or the name
// of a systemd credential (LoadCredential=NAME:PATH in a unit drop-in),
// read from $CREDENTIALS_DIRECTORY.
func (m *MQTTUplink) readSecret(getenv func(string) string) []*KeyError {
	const k = "uplinks.mqtt.password_file"
	if m.PasswordFile == "" {
		return nil
	}
	if m.Password != "" {
		return []*KeyError{invalid(k, m.PasswordFile, "set password or password_file, not both")}
	}
	path := m.PasswordFile
	if !filepath.IsAbs(path) {
		dir := getenv("CREDENTIALS_DIRECTORY")
		if dir == "" || strings.ContainsRune(path, '/') {
			return []*KeyError{invalid(k, path, "an absolute path, or the name of a systemd credential "+
				"(LoadCredential=NAME:FILE in `systemctl edit edge-agent`); $CREDENTIALS_DIRECTORY is not set")}
		}
		path = filepath.Join(dir, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return []*KeyError{invalid(k, m.PasswordFile, fmt.Sprintf("cannot read it: %v", err))}
	}
	m.Password = strings.TrimRight(string(data), "\r\n")
	return nil
}

// Show writes the merged config as TOML, each value followed by the file and
// line that set it (or "default"). Secrets are not printed. (Written here
// rather than with the TOML library's encoder, which the daemon does not
// otherwise link.)
func (l *Layers) Show(w io.Writer) error {
	shown := *l.Config
	if shown.Uplinks.MQTT.Password != "" {
		shown.Uplinks.MQTT.Password = "(hidden)"
	}
	bw := bufio.NewWriter(w)
	l.showTable(bw, "", reflect.ValueOf(shown), "")
	return bw.Flush()
}

// showTable writes the leaf keys of the struct v, then its tables and arrays
// of tables. key is v's merged key ("drivers.sim[1]"), header its TOML
// header ("[[drivers.sim]]"), written before the first leaf.
func (l *Layers) showTable(w *bufio.Writer, key string, v reflect.Value, header string) {
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if !isLeaf(t.Field(i).Type) && !isStrings(t.Field(i).Type) {
			continue
		}
		if header != "" {
			w.WriteString("\n" + header + "\n")
			header = ""
		}
		at := l.origin[joinKey(key, name)]
		if at == "" {
			at = "default"
		}
		fmt.Fprintf(w, "%s = %s  # %s\n", name, tomlValue(v.Field(i)), at)
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		k := joinKey(key, name)
		switch {
		case isLeaf(f.Type) || isStrings(f.Type):
		case f.Type.Kind() == reflect.Struct:
			l.showTable(w, k, v.Field(i), "["+k+"]")
		case f.Type.Kind() == reflect.Slice:
			for j := range v.Field(i).Len() {
				l.showTable(w, fmt.Sprintf("%s[%d]", k, j), v.Field(i).Index(j), "[["+k+"]]")
			}
		}
	}
}

func isStrings(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String
}

// tomlValue is one leaf value in TOML syntax (strings Go-quoted: the same
// as TOML's basic strings for everything but control characters, which no
// valid config holds).
func tomlValue(v reflect.Value) string {
	if m, ok := v.Interface().(interface{ MarshalText() ([]byte, error) }); ok {
		text, _ := m.MarshalText()
		return strconv.Quote(string(text))
	}
	switch v.Kind() {
	case reflect.String:
		return strconv.Quote(v.String())
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = strconv.Quote(v.Index(i).String())
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v.Interface()) // bool, integers
}
