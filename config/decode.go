package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// The decoder walks the parsed TOML tree and the Config struct side by side, driven by the `toml` struct
// tags. We do this ourselves instead of toml.Decode into the struct because the library stops at the
// first problem, matches keys case-insensitively (so "Max_Bytes" would be silently accepted) and cannot
// tell which element of an array of tables a stray key sits in. Here every problem is collected with its
// full key ("drivers.sim[1].intervall"), and a new section needs no decoder change: add a tagged field.

// defaulter is implemented by array-of-tables element types (Sim, ...) whose fields have defaults;
// each new element starts from them before the file's keys are applied.
type defaulter interface{ setDefaults() }

type decoder struct {
	root reflect.Type // for suggestions across sections
	keys []string     // schemaKeys(root), computed on the first unknown key
	errs []*KeyError
	// Drop-ins (layers.go): arrays of tables append to what earlier files
	// set, base remembers where each array's new elements start, and set
	// sees every key a file sets.
	appendArrays bool
	base         map[string]int
	set          func(key string)
}

// table decodes m into the struct rv; path is the key of the table ("" for the document).
func (d *decoder) table(path string, m map[string]any, rv reflect.Value) {
	fields := tomlFields(rv.Type())
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		i, ok := fields[k]
		if !ok {
			d.errs = append(d.errs, unknownKey(joinKey(path, k), d.suggest(path, k, fields)))
			continue
		}
		d.value(joinKey(path, k), m[k], rv.Field(i))
	}
}

func (d *decoder) value(key string, v any, fv reflect.Value) {
	if d.set != nil && (fv.Kind() != reflect.Struct || fv.Addr().Type().Implements(unmarshalerType)) &&
		(fv.Kind() != reflect.Slice || fv.Type().Elem().Kind() != reflect.Struct) {
		d.set(key)
	}
	if u, ok := fv.Addr().Interface().(toml.Unmarshaler); ok {
		if err := u.UnmarshalTOML(v); err != nil {
			d.errs = append(d.errs, &KeyError{Key: key, Err: ErrInvalid, Detail: detailOf(err)})
		}
		return
	}
	wrong := func(want string) {
		d.errs = append(d.errs, &KeyError{Key: key, Err: ErrInvalid,
			Detail: (&typeError{got: tomlTypeName(v), want: want}).Error()})
	}
	switch fv.Kind() {
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			wrong("a string")
			return
		}
		fv.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			wrong("a boolean (true or false, without quotes)")
			return
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, ok := v.(int64)
		if !ok {
			wrong("an integer")
			return
		}
		if fv.OverflowInt(n) { // int is 32 bits on armhf
			d.errs = append(d.errs, invalid(key, n, "too large for this platform"))
			return
		}
		fv.SetInt(n)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			wrong(fmt.Sprintf("a table ([%s])", key))
			return
		}
		d.table(key, m, fv)
	case reflect.Slice:
		if fv.Type().Elem().Kind() == reflect.String {
			list, ok := v.([]any)
			if !ok {
				wrong(`an array of strings (["a", "b"])`)
				return
			}
			var out []string // [] decodes to nil, as an absent key does, when the default is empty too
			if len(list) > 0 || fv.Len() > 0 {
				// Not nil over a non-empty default: Encode omits a nil list, which would read back as
				// the default (servers = [] would become the default server).
				out = make([]string, len(list))
			}
			for i, e := range list {
				s, ok := e.(string)
				if !ok {
					wrong(`an array of strings (["a", "b"])`)
					return
				}
				out[i] = s
			}
			fv.Set(reflect.ValueOf(out))
			return
		}
		if fv.Type().Elem().Kind() != reflect.Struct {
			panic("config: schema bug: slice field " + key + " must hold structs or strings")
		}
		var elems []map[string]any
		switch v := v.(type) {
		case []map[string]any:
			elems = v
		case []any:
			for _, e := range v {
				m, ok := e.(map[string]any)
				if !ok {
					wrong(fmt.Sprintf("an array of tables ([[%s]])", key))
					return
				}
				elems = append(elems, m)
			}
		default:
			wrong(fmt.Sprintf("an array of tables ([[%s]])", key))
			return
		}
		base := 0
		if d.appendArrays {
			base = fv.Len()
			d.base[key] = base
		}
		out := reflect.MakeSlice(fv.Type(), base+len(elems), base+len(elems))
		if base > 0 {
			reflect.Copy(out, fv)
		}
		for i, m := range elems {
			ev := out.Index(base + i)
			if df, ok := ev.Addr().Interface().(defaulter); ok {
				df.setDefaults()
			}
			d.table(key+"["+strconv.Itoa(base+i)+"]", m, ev)
		}
		fv.Set(out)
	default:
		panic("config: schema bug: unsupported field kind " + fv.Kind().String() + " at " + key)
	}
}

var unmarshalerType = reflect.TypeFor[toml.Unmarshaler]()

func detailOf(err error) string {
	if asValueOrType(err) {
		return strings.TrimPrefix(err.Error(), "config: ")
	}
	return err.Error()
}

// tomlFields maps each toml tag name of struct type t to its field index.
func tomlFields(t reflect.Type) map[string]int {
	out := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if name != "" && name != "-" {
			out[name] = i
		}
	}
	return out
}

// isLeaf reports whether a field type is a single TOML value rather than a table.
func isLeaf(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(reflect.TypeFor[toml.Unmarshaler]()) {
		return true
	}
	return t.Kind() != reflect.Struct && t.Kind() != reflect.Slice
}

// schemaKeys lists every key of t, array elements written with "[]" (drivers.sim[].name).
func schemaKeys(prefix string, t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := joinKey(prefix, name)
		out = append(out, key)
		switch {
		case isLeaf(f.Type):
		case f.Type.Kind() == reflect.Struct:
			out = append(out, schemaKeys(key, f.Type)...)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			out = append(out, schemaKeys(key+"[]", f.Type.Elem())...)
		}
	}
	return out
}

// suggest finds the key the user probably meant: a close sibling first ("max_byte" → "max_bytes",
// "Max_Bytes" → "max_bytes"), otherwise the same name in another section ("store.sign_workers" →
// "pipeline.sign_workers").
func (d *decoder) suggest(path, k string, siblings map[string]int) string {
	best, bestDist := "", len(k)/3+1
	if bestDist > 3 {
		bestDist = 3
	}
	names := make([]string, 0, len(siblings))
	for s := range siblings {
		names = append(names, s)
	}
	slices.Sort(names)
	for _, s := range names {
		if dist := editDistance(strings.ToLower(k), s); dist < bestDist {
			best, bestDist = s, dist
		}
	}
	if best != "" {
		return joinKey(path, best)
	}
	if d.root == nil {
		return ""
	}
	if d.keys == nil {
		d.keys = schemaKeys("", d.root)
	}
	for _, full := range d.keys {
		if strings.Contains(full, "[]") {
			continue // we cannot know which element was meant
		}
		if i := strings.LastIndexByte(full, '.'); i >= 0 && full[i+1:] == strings.ToLower(k) && full[:i] != path {
			return full
		}
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, in bytes (keys are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// joinKey appends one key segment, quoting it the TOML way when it is not a bare key.
func joinKey(prefix, seg string) string {
	if !isBare(seg) {
		seg = strconv.Quote(seg)
	}
	if prefix == "" {
		return seg
	}
	return prefix + "." + seg
}

func isBare(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// tomlTypeName names the TOML type of a decoded value, for "got boolean, want an integer".
func tomlTypeName(v any) string {
	switch v := v.(type) {
	case string:
		return "string " + strconv.Quote(truncate(v))
	case int64:
		return "integer " + strconv.FormatInt(v, 10)
	case float64:
		return "float " + strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return "boolean " + strconv.FormatBool(v)
	case time.Time:
		return "datetime"
	case []map[string]any:
		return "array of tables"
	case []any:
		return "array"
	case map[string]any:
		return "table"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// truncate keeps messages one line long when someone pastes a paragraph into a value.
func truncate(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
