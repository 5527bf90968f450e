package config

import (
	"strconv"
	"strings"
)

// The TOML library does not expose where a key was written, so lineIndex re-reads the (already
// validated) source to map every key, with array-of-tables indices, to its line. It is a best-effort
// scanner for messages only: on anything it does not understand it skips to the next line, and a key
// it cannot place reports the line of its nearest placed parent.

type lineIndex map[string]int

// lineOf returns the line of key, or of its closest ancestor the scanner placed, or 0.
func (li lineIndex) lineOf(key string) int {
	for key != "" {
		if n, ok := li[key]; ok {
			return n
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

type scanner struct {
	src    string
	i      int
	line   int
	lines  lineIndex
	arrays map[string]int // array-of-tables key (resolved) → elements seen so far
}

const maxNesting = 64

func locate(src []byte) lineIndex {
	s := &scanner{src: string(src), line: 1, lines: lineIndex{}, arrays: map[string]int{}}
	table := ""
	for s.i < len(s.src) {
		s.skipSpace()
		if s.i >= len(s.src) {
			break
		}
		switch c := s.src[s.i]; {
		case c == '\n':
			s.i++
			s.line++
			continue
		case c == '#':
			s.skipLine()
			continue
		case c == '[':
			if t, ok := s.header(); ok {
				table = t
			}
		default:
			s.keyValue(table, 0)
		}
		s.skipLine()
	}
	return s.lines
}

func (s *scanner) peek(off int) byte {
	if s.i+off < len(s.src) {
		return s.src[s.i+off]
	}
	return 0
}

func (s *scanner) skipSpace() {
	for s.i < len(s.src) && (s.src[s.i] == ' ' || s.src[s.i] == '\t' || s.src[s.i] == '\r') {
		s.i++
	}
}

// skipBlank also crosses newlines and comments, as inside arrays.
func (s *scanner) skipBlank() {
	for s.i < len(s.src) {
		switch s.src[s.i] {
		case ' ', '\t', '\r':
			s.i++
		case '\n':
			s.i++
			s.line++
		case '#':
			for s.i < len(s.src) && s.src[s.i] != '\n' {
				s.i++
			}
		default:
			return
		}
	}
}

func (s *scanner) skipLine() {
	for s.i < len(s.src) && s.src[s.i] != '\n' {
		s.i++
	}
}

func (s *scanner) record(key string) {
	if _, ok := s.lines[key]; !ok {
		s.lines[key] = s.line
	}
}

// header reads [a.b] or [[a.b]] and returns the resolved table key.
func (s *scanner) header() (string, bool) {
	array := s.peek(1) == '['
	if array {
		s.i += 2
	} else {
		s.i++
	}
	segs, ok := s.key()
	if !ok || len(segs) == 0 {
		return "", false
	}
	cur := ""
	for j, seg := range segs {
		cur = joinKey(cur, seg)
		if n, seen := s.arrays[cur]; j == len(segs)-1 && array {
			s.arrays[cur] = n + 1
			cur += "[" + strconv.Itoa(n) + "]"
		} else if seen {
			cur += "[" + strconv.Itoa(n-1) + "]"
		}
	}
	s.record(cur)
	return cur, true
}

// key reads a dotted key up to (not including) '=', ']' or end of line.
func (s *scanner) key() ([]string, bool) {
	var segs []string
	for {
		s.skipSpace()
		if s.i >= len(s.src) {
			return segs, false
		}
		switch c := s.src[s.i]; {
		case c == '"':
			seg, ok := s.basicString()
			if !ok {
				return segs, false
			}
			segs = append(segs, seg)
		case c == '\'':
			end := strings.IndexAny(s.src[s.i+1:], "'\n")
			if end < 0 || s.src[s.i+1+end] != '\'' {
				return segs, false
			}
			segs = append(segs, s.src[s.i+1:s.i+1+end])
			s.i += end + 2
		case isBareByte(c):
			start := s.i
			for s.i < len(s.src) && isBareByte(s.src[s.i]) {
				s.i++
			}
			segs = append(segs, s.src[start:s.i])
		default:
			return segs, false
		}
		s.skipSpace()
		if s.peek(0) != '.' {
			return segs, true
		}
		s.i++
	}
}

func isBareByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// basicString reads a one-line "..." key and unescapes it.
func (s *scanner) basicString() (string, bool) {
	j := s.i + 1
	for j < len(s.src) && s.src[j] != '"' && s.src[j] != '\n' {
		if s.src[j] == '\\' {
			j++
		}
		j++
	}
	if j >= len(s.src) || s.src[j] != '"' {
		return "", false
	}
	raw := s.src[s.i : j+1]
	s.i = j + 1
	if u, err := strconv.Unquote(raw); err == nil {
		return u, true
	}
	return raw[1 : len(raw)-1], true
}

// keyValue reads `key = value` inside table and records the key's line.
func (s *scanner) keyValue(table string, depth int) bool {
	segs, ok := s.key()
	if !ok || len(segs) == 0 || s.peek(0) != '=' {
		return false
	}
	s.i++
	full := table
	for _, seg := range segs {
		full = joinKey(full, seg)
		s.record(full)
	}
	s.skipSpace()
	return s.value(full, depth)
}

// value skips one value, descending into inline tables and arrays to place their keys.
func (s *scanner) value(key string, depth int) bool {
	if depth > maxNesting {
		return false
	}
	switch s.peek(0) {
	case '"', '\'':
		return s.skipString()
	case '[':
		s.i++
		for n := 0; ; n++ {
			s.skipBlank()
			switch s.peek(0) {
			case 0:
				return false
			case ']':
				s.i++
				return true
			case ',':
				s.i++
				continue
			}
			start := s.i
			if !s.value(key+"["+strconv.Itoa(n)+"]", depth+1) || s.i == start {
				return false
			}
		}
	case '{':
		s.i++
		for {
			s.skipBlank()
			switch s.peek(0) {
			case 0:
				return false
			case '}':
				s.i++
				return true
			case ',':
				s.i++
				continue
			}
			start := s.i
			if !s.keyValue(key, depth+1) || s.i == start {
				return false
			}
		}
	default:
		start := s.i
		for s.i < len(s.src) && !strings.ContainsRune(",]}\n#", rune(s.src[s.i])) {
			s.i++
		}
		return s.i > start
	}
}

// skipString skips any of the four TOML string forms, counting lines in multi-line ones.
func (s *scanner) skipString() bool {
	q := s.src[s.i]
	delim := string(q)
	multi := strings.HasPrefix(s.src[s.i:], strings.Repeat(delim, 3))
	if multi {
		s.i += 3
	} else {
		s.i++
	}
	for s.i < len(s.src) {
		c := s.src[s.i]
		switch {
		case c == '\\' && q == '"':
			if s.peek(1) == '\n' {
				s.line++
			}
			s.i += 2
		case c == '\n':
			if !multi {
				return false
			}
			s.line++
			s.i++
		case c == q && !multi:
			s.i++
			return true
		case c == q && strings.HasPrefix(s.src[s.i:], strings.Repeat(delim, 3)):
			s.i += 3
			// A closing delimiter may be preceded by up to two quotes that belong to the content.
			for k := 0; k < 2 && s.peek(0) == q; k++ {
				s.i++
			}
			return true
		default:
			s.i++
		}
	}
	return false
}

// nestingDepth returns the deepest nesting outside strings and comments, and the line it is reached on.
// Brackets and braces count one level each, and so does every dot since the start of the statement or
// the last comma at this level: `a.b.c = 1` nests like `a = {b = {c = 1}}`. (A float's dot counts too;
// a few levels of slack cost nothing.) The TOML library's cost grows with the square of the nesting
// depth (a 1 MiB file of nested inline tables takes minutes, a 40 KB dotted key 93 s and 5 GB), so
// Guard refuses deep files before handing them over; no real config nests more than three levels.
func nestingDepth(src []byte) (depth, line int) {
	s := &scanner{src: string(src), line: 1}
	cur, dots := 0, 0
	var saved []int // dots at each open bracket, restored at its commas and its close
	note := func() {
		if cur+dots > depth {
			depth, line = cur+dots, s.line
		}
	}
	for s.i < len(s.src) {
		switch c := s.src[s.i]; c {
		case '\n':
			if cur == 0 {
				dots = 0
			}
			s.line++
			s.i++
		case '#':
			s.skipLine()
		case '"', '\'':
			if !s.skipString() && s.i < len(s.src) && s.src[s.i] == '\n' {
				continue // an unterminated one-line string ends at the newline; the parser will say so
			}
		case '.':
			dots++
			note()
			s.i++
		case ',':
			if n := len(saved); n > 0 {
				dots = saved[n-1]
			}
			s.i++
		case '[', '{':
			cur++
			saved = append(saved, dots)
			note()
			s.i++
		case ']', '}':
			cur = max(cur-1, 0)
			if n := len(saved); n > 0 {
				dots, saved = saved[n-1], saved[:n-1]
			}
			s.i++
		default:
			s.i++
		}
	}
	return depth, line
}
