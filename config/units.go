package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written in the config as a Go duration string ("10s", "1m30s", "10us").
// It exists so a file says "1m" rather than 60000000000, and so encoding gives back the short form.
type Duration struct{ time.Duration }

// D is shorthand for building a Duration in code.
func D(d time.Duration) Duration { return Duration{d} }

// String formats d without zero components: 1m, 1h30m, 1.5s, 10us (ASCII, so it survives any terminal).
func (d Duration) String() string { return formatDuration(d.Duration) }

// MarshalText encodes d in the same form a user writes.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a duration string; negative durations are rejected because no setting means "in the past".
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := parseDuration(string(text))
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	d.Duration = v
	return nil
}

// UnmarshalTOML accepts only a TOML string: a bare integer would be ambiguous (seconds? nanoseconds?).
func (d *Duration) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return &typeError{got: tomlTypeName(v), want: wantDuration}
	}
	return d.UnmarshalText([]byte(s))
}

const wantDuration = `a duration string such as "10s", "1m30s" or "500ms"`

func parseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, &valueError{value: strconv.Quote(s), why: "empty duration; write e.g. \"10s\" or \"0s\""}
	}
	v, err := time.ParseDuration(t)
	if err != nil {
		return 0, &valueError{value: strconv.Quote(s), why: "not a duration; use a number with a unit (ns, us, ms, s, m, h) such as \"1m30s\""}
	}
	if v < 0 {
		return 0, &valueError{value: strconv.Quote(s), why: "a duration cannot be negative"}
	}
	return v, nil
}

func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	if d < 0 {
		if d == math.MinInt64 {
			return d.String()
		}
		return "-" + formatDuration(-d)
	}
	if d < time.Second {
		for _, u := range []struct {
			unit time.Duration
			name string
		}{{time.Millisecond, "ms"}, {time.Microsecond, "us"}} {
			if d%u.unit == 0 {
				return strconv.FormatInt(int64(d/u.unit), 10) + u.name
			}
		}
		return strconv.FormatInt(int64(d), 10) + "ns"
	}
	if d%time.Second != 0 {
		// Fractions above a second are rare in a config; Go's own form is exact and parses back.
		return d.String()
	}
	var b strings.Builder
	h, m, s := d/time.Hour, (d%time.Hour)/time.Minute, (d%time.Minute)/time.Second
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	if s > 0 {
		fmt.Fprintf(&b, "%ds", s)
	}
	return b.String()
}

// ByteSize is a number of bytes. In the file it is a TOML integer (bytes) or a string with a unit:
// "256MiB", "8 MB", "4KiB". KiB, MiB, GiB, TiB are powers of 1024; KB, MB, GB, TB powers of 1000;
// B is bytes. Units are case-insensitive; the number must be a whole number ("1536MiB", not "1.5GiB").
type ByteSize int64

// Common sizes, for defaults and limits written in code.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
)

var byteUnits = []struct {
	name string
	mult int64
}{
	{"tib", 1 << 40}, {"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10},
	{"tb", 1e12}, {"gb", 1e9}, {"mb", 1e6}, {"kb", 1e3},
	{"b", 1},
}

// String gives the largest unit that represents b exactly, binary before decimal ("256MiB", "1MB", "4097").
func (b ByteSize) String() string {
	if b <= 0 {
		return strconv.FormatInt(int64(b), 10)
	}
	for _, group := range [][]struct {
		name string
		mult int64
	}{byteUnits[0:4], byteUnits[4:8]} {
		for _, u := range group {
			if int64(b)%u.mult == 0 {
				return strconv.FormatInt(int64(b)/u.mult, 10) + displayUnit(u.name)
			}
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

func displayUnit(lower string) string {
	if strings.HasSuffix(lower, "ib") {
		return strings.ToUpper(lower[:1]) + "iB"
	}
	return strings.ToUpper(lower)
}

// MarshalText encodes b the way a person would write it.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText parses "256MiB", "8 MB" or a plain number of bytes.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := parseByteSize(string(text))
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	*b = v
	return nil
}

// UnmarshalTOML accepts a TOML integer (bytes) or a string with a unit.
func (b *ByteSize) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return &valueError{value: strconv.FormatInt(v, 10), why: "a size cannot be negative"}
		}
		*b = ByteSize(v)
		return nil
	case string:
		return b.UnmarshalText([]byte(v))
	default:
		return &typeError{got: tomlTypeName(v), want: wantSize}
	}
}

const wantSize = `a size: an integer number of bytes or a string such as "256MiB" or "8 MB"`

func parseByteSize(s string) (ByteSize, error) {
	bad := func(why string) (ByteSize, error) {
		return 0, &valueError{value: strconv.Quote(s), why: why}
	}
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		if strings.HasPrefix(t, "-") {
			return bad("a size cannot be negative")
		}
		return bad(`not a size; write e.g. "256MiB", "8 MB" or a number of bytes`)
	}
	if strings.HasPrefix(unit, ".") {
		return bad(`use a whole number with a smaller unit, e.g. "1536MiB" rather than "1.5GiB"`)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return bad("number too large")
	}
	mult := int64(-1)
	if unit == "" {
		mult = 1
	}
	for _, u := range byteUnits {
		if unit == u.name {
			mult = u.mult
		}
	}
	if mult < 0 {
		return bad(fmt.Sprintf("unknown unit %q; use B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)", strings.TrimSpace(t[i:])))
	}
	if n > math.MaxInt64/mult {
		return bad("size too large")
	}
	return ByteSize(n * mult), nil
}

// typeError is returned by UnmarshalTOML when the TOML value has the wrong type; the decoder turns it
// into a KeyError naming the key.
type typeError struct{ got, want string }

func (e *typeError) Error() string { return fmt.Sprintf("wrong type: got %s, want %s", e.got, e.want) }

// valueError is a value of the right type that is not allowed; why says what is allowed.
type valueError struct{ value, why string }

func (e *valueError) Error() string { return fmt.Sprintf("invalid value %s: %s", e.value, e.why) }

// asValueOrType reports whether err is one of the two decode-time problems above.
func asValueOrType(err error) bool {
	var te *typeError
	var ve *valueError
	return errors.As(err, &te) || errors.As(err, &ve)
}
