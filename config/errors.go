package config

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels. Every error from this package wraps exactly one of these (a missing version wraps two);
// test with errors.Is, and use errors.As with *KeyError for the key and line.
var (
	// ErrNotFound is returned by Load when the config file does not exist.
	ErrNotFound = errors.New("config: file not found")
	// ErrUnknownKey is returned when the file sets a key this version of edge-agent does not know
	// (usually a typo, or a setting from a newer release).
	ErrUnknownKey = errors.New("config: unknown key")
	// ErrInvalid is returned when a key is present but its value has the wrong type or is out of range,
	// and when the file is not valid TOML at all.
	ErrInvalid = errors.New("config: invalid value")
	// ErrMissing is returned when a required key is absent (version, a driver's name).
	ErrMissing = errors.New("config: missing key")
	// ErrVersion is returned when version is missing or is not the one version this build reads (1).
	ErrVersion = errors.New("config: unsupported version")
)

// KeyError is one problem in a config, tied to a key. Parse and Validate return several of them joined
// with errors.Join, ordered by line, so a field tech sees every problem at once.
type KeyError struct {
	Key    string // full key with array indices, e.g. "drivers.sim[1].interval"; "" for the file as a whole
	Line   int    // 1-based line in the file; 0 when unknown (a Config built in code, or a missing key)
	Col    int    // 1-based column, set only for syntax errors
	File   string // set by Load
	Err    error  // the sentinel(s), and for syntax errors the toml.ParseError
	Detail string // what is wrong and what is allowed; for unknown keys, the suggestion
}

func (e *KeyError) Error() string {
	var where string
	switch {
	case e.Line > 0 && e.Col > 0:
		where = fmt.Sprintf(" at line %d, column %d", e.Line, e.Col)
	case e.Line > 0:
		where = fmt.Sprintf(" at line %d", e.Line)
	}
	if e.File != "" {
		if where == "" {
			where = " in " + e.File
		} else {
			where += " of " + e.File
		}
	}
	var b strings.Builder
	b.WriteString("config: ")
	switch {
	case e.Key == "" && e.Line == 0: // the file as a whole
		if e.File != "" {
			b.WriteString(e.File + ": ")
		}
		b.WriteString(e.Detail)
		return b.String()
	case e.Key == "":
		b.WriteString("syntax error" + where)
	case errors.Is(e.Err, ErrUnknownKey):
		fmt.Fprintf(&b, "unknown key %q%s", truncate(e.Key), where)
		if e.Detail != "" {
			b.WriteString(" — " + e.Detail)
		}
		return b.String()
	case errors.Is(e.Err, ErrMissing):
		b.WriteString(truncate(e.Key) + " is missing" + where)
	default:
		b.WriteString(truncate(e.Key) + where)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return b.String()
}

func (e *KeyError) Unwrap() error { return e.Err }

func unknownKey(key, suggestion string) *KeyError {
	e := &KeyError{Key: key, Err: ErrUnknownKey}
	if suggestion != "" {
		e.Detail = fmt.Sprintf("did you mean %q?", suggestion)
	} else {
		e.Detail = "remove it, or check the spelling against `edge-agent config default`"
	}
	return e
}

func missing(key, hint string) *KeyError {
	return &KeyError{Key: key, Err: ErrMissing, Detail: hint}
}

// invalid reports a bad value: the detail names the value and the allowed range.
func invalid(key string, value any, allowed string) *KeyError {
	return &KeyError{Key: key, Err: ErrInvalid, Detail: fmt.Sprintf("invalid value %s: %s", showValue(value), allowed)}
}

func showValue(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", truncate(v))
	case Duration:
		return fmt.Sprintf("%q", v.String())
	case ByteSize:
		if v < 0 {
			return fmt.Sprint(int64(v))
		}
		return fmt.Sprintf("%q", v.String())
	default:
		return fmt.Sprint(v)
	}
}
