package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"

	"github.com/BurntSushi/toml"
)

// DecodeStrict decodes a TOML document over *dst, a struct already holding
// its defaults, with the same rules as Parse: the same size and nesting
// guards, unknown keys named with a suggestion, every problem reported with
// its key and line, joined in line order. check, when non-nil, adds the
// struct's own validation problems (keys without lines; DecodeStrict finds
// them). It is how other files of the project (collector.toml) get the agent
// config's strictness: a key spelled Data_Dir is an error, not a silent
// default.
func DecodeStrict(data []byte, dst any, check func() []*KeyError) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		panic("config: DecodeStrict needs a pointer to a struct")
	}
	if len(data) > maxFileBytes {
		return &KeyError{Err: ErrInvalid,
			Detail: fmt.Sprintf("the file is larger than %s; is it really the config file?", ByteSize(maxFileBytes))}
	}
	if depth, line := nestingDepth(data); depth > maxNesting {
		return &KeyError{Line: line, Err: ErrInvalid,
			Detail: fmt.Sprintf("arrays or tables nested %d deep (at most %d); is this really the config file?", depth, maxNesting)}
	}
	raw := map[string]any{}
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return syntaxError(err)
	}
	d := &decoder{root: rv.Elem().Type()}
	d.table("", raw, rv.Elem())
	problems := d.errs
	if _, ok := raw["version"]; !ok {
		if _, has := tomlFields(rv.Elem().Type())["version"]; has {
			problems = append(problems, missingVersion())
		}
	}
	if check != nil {
		reported := map[string]bool{}
		for _, e := range problems {
			reported[e.Key] = true
		}
		for _, e := range check() {
			if !reported[e.Key] {
				problems = append(problems, e)
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	lines := locate(data)
	for _, e := range problems {
		if e.Line == 0 {
			e.Line = lines.lineOf(e.Key)
		}
	}
	return joinProblems(problems)
}

// LoadStrict reads the file at path (at most the size guard) and decodes it
// with DecodeStrict; every error names the path. A missing file wraps
// ErrNotFound.
func LoadStrict(path string, dst any, check func() []*KeyError) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s does not exist", ErrNotFound, path)
	}
	if err != nil {
		return fmt.Errorf("config: open %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return fmt.Errorf("config: read %s: %w", path, err)
	}
	if err := DecodeStrict(data, dst, check); err != nil {
		n := 0
		forEachProblem(err, func(e *KeyError) { e.File = path; n++ })
		if n == 0 {
			return fmt.Errorf("config: load %s: %w", path, err)
		}
		return err
	}
	return nil
}

// Invalid is a KeyError for a bad value, for other files' check functions:
// allowed says what is allowed.
func Invalid(key string, value any, allowed string) *KeyError { return invalid(key, value, allowed) }

// Missing is a KeyError for a required key that is absent; hint says what to add.
func Missing(key, hint string) *KeyError { return missing(key, hint) }

// Problems returns the KeyErrors in err (one, or an errors.Join of them).
func Problems(err error) []*KeyError {
	var out []*KeyError
	forEachProblem(err, func(e *KeyError) { out = append(out, e) })
	return out
}
