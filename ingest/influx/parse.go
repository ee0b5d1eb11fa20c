// Package influx accepts InfluxDB line protocol over HTTP (/write and
// /api/v2/write), TCP and UDP, and stores each field as a series named
// measurement_field, as VictoriaMetrics does.
package influx

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Point is one parsed line: a measurement with tags, numeric fields, and a
// timestamp in the request's precision (HasTime false: none given).
type Point struct {
	Measurement string
	Tags        []Tag
	Fields      []Field
	Time        int64
	HasTime     bool
}

// Tag is a tag key and value.
type Tag struct{ Key, Value string }

// Field is a numeric field; booleans are 1 and 0. String fields are
// skipped: they are not samples.
type Field struct {
	Key   string
	Value float64
}

// LineError is a bad line: its 1-based number and what is wrong.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Parse parses a body of lines. Good lines are returned even when some are
// bad; every bad line is reported.
func Parse(body []byte) ([]Point, []*LineError) {
	var pts []Point
	var errs []*LineError
	r := lineReader{body: body}
	for {
		line, l, ok := r.next()
		if !ok {
			return pts, errs
		}
		p, err := ParseLine(l)
		if err != nil {
			errs = append(errs, &LineError{Line: line, Err: err})
			continue
		}
		pts = append(pts, p)
	}
}

// lineReader cuts a body into its lines, skipping blank lines and
// comments.
type lineReader struct {
	body []byte
	line int // number of the line last returned, from 1
}

// next returns the next line to parse and its number; false at the end.
func (r *lineReader) next() (int, []byte, bool) {
	for len(r.body) > 0 {
		r.line++
		var l []byte
		if i := bytes.IndexByte(r.body, '\n'); i >= 0 {
			l, r.body = r.body[:i], r.body[i+1:]
		} else {
			l, r.body = r.body, nil
		}
		l = bytes.TrimRight(l, "\r")
		l = bytes.TrimLeft(l, " \t")
		if len(l) == 0 || l[0] == '#' {
			continue
		}
		return r.line, l, true
	}
	return r.line, nil, false
}

// MaxLineBytes is the longest line parsed; a longer one is a bad line. It
// bounds the memory one line takes to parse (its tags and fields), which
// would otherwise grow with the body.
const MaxLineBytes = 1 << 20

// ParseLine parses one line: measurement[,tag=v…] field=v[,field=v…] [ts].
func ParseLine(l []byte) (Point, error) {
	var p Point
	if len(l) > MaxLineBytes {
		return p, fmt.Errorf("line of %d bytes is longer than the limit of %d", len(l), MaxLineBytes)
	}
	// Measurement: up to an unescaped ',' or ' '.
	name, rest, err := scanKey(l, ",  ", false)
	if err != nil {
		return p, fmt.Errorf("measurement: %w", err)
	}
	if name == "" {
		return p, errors.New("missing measurement")
	}
	p.Measurement = name
	if n := bytes.Count(rest, []byte{','}); n > 64 {
		// NB: a long line's tags or fields would otherwise grow by a
		// quarter at a time, leaving several times their size as garbage.
		// Each takes at least four bytes (",k=v").
		p.Tags = make([]Tag, 0, min(n, (bytes.IndexByte(rest, ' ')+1)/4))
		p.Fields = make([]Field, 0, min(n, len(rest)/4)+1)
	}
	for len(rest) > 0 && rest[0] == ',' {
		k, r, err := scanKey(rest[1:], "=", true)
		if err != nil {
			return p, fmt.Errorf("tag key: %w", err)
		}
		if len(r) == 0 || r[0] != '=' {
			return p, fmt.Errorf("tag %q has no value", k)
		}
		v, r2, err := scanKey(r[1:], ", ", false)
		if err != nil {
			return p, fmt.Errorf("tag %q: %w", k, err)
		}
		if k == "" || v == "" {
			return p, fmt.Errorf("empty tag key or value in %q", l)
		}
		p.Tags = append(p.Tags, Tag{k, v})
		rest = r2
	}
	if len(rest) == 0 || rest[0] != ' ' {
		return p, errors.New("missing fields")
	}
	rest = bytes.TrimLeft(rest, " ")
	if len(rest) == 0 {
		return p, errors.New("missing fields")
	}
	for {
		k, r, err := scanKey(rest, "=", true)
		if err != nil {
			return p, fmt.Errorf("field key: %w", err)
		}
		if k == "" || len(r) == 0 || r[0] != '=' {
			return p, fmt.Errorf("bad field %q", rest)
		}
		r = r[1:]
		var raw []byte
		isString := false
		if len(r) > 0 && r[0] == '"' {
			end := closingQuote(r)
			if end < 0 {
				return p, fmt.Errorf("field %q: unterminated string", k)
			}
			raw, r = r[:end+1], r[end+1:]
			isString = true
		} else {
			i := bytes.IndexAny(r, ", ")
			if i < 0 {
				i = len(r)
			}
			raw, r = r[:i], r[i:]
		}
		if !isString {
			v, err := fieldValue(raw)
			if err != nil {
				return p, fmt.Errorf("field %q: %w", k, err)
			}
			p.Fields = append(p.Fields, Field{k, v})
		}
		if len(r) > 0 && r[0] == ',' {
			rest = r[1:]
			continue
		}
		rest = r
		break
	}
	rest = bytes.TrimLeft(rest, " ")
	if len(rest) > 0 {
		ts, err := strconv.ParseInt(string(bytes.TrimRight(rest, " ")), 10, 64)
		if err != nil {
			return p, fmt.Errorf("bad timestamp %q", rest)
		}
		p.Time, p.HasTime = ts, true
	}
	return p, nil
}

// scanKey reads up to an unescaped byte of stop. Backslash escapes the
// next byte; with keyLike, a stop at '=' is wanted too.
func scanKey(b []byte, stop string, keyLike bool) (string, []byte, error) {
	var out []byte
	escaped := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\\' && i+1 < len(b) && (b[i+1] == ',' || b[i+1] == '=' || b[i+1] == ' ' || b[i+1] == '\\' || b[i+1] == '"') {
			if out == nil {
				out = append([]byte(nil), b[:i]...)
			}
			out = append(out, b[i+1])
			i++
			escaped = true
			continue
		}
		if bytes.IndexByte([]byte(stop), c) >= 0 || (keyLike && c == ' ') {
			if !escaped {
				return string(b[:i]), b[i:], nil
			}
			return string(out), b[i:], nil
		}
		if c == '\n' {
			return "", nil, errors.New("unexpected newline")
		}
		if escaped {
			out = append(out, c)
		}
	}
	if !escaped {
		return string(b), nil, nil
	}
	return string(out), nil, nil
}

func closingQuote(b []byte) int {
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

func fieldValue(raw []byte) (float64, error) {
	s := string(raw)
	switch s {
	case "t", "T", "true", "True", "TRUE":
		return 1, nil
	case "f", "F", "false", "False", "FALSE":
		return 0, nil
	case "":
		return 0, errors.New("empty value")
	}
	switch s[len(s)-1] {
	case 'i':
		v, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bad integer %q", s)
		}
		return float64(v), nil
	case 'u':
		v, err := strconv.ParseUint(s[:len(s)-1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bad unsigned integer %q", s)
		}
		return float64(v), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("bad number %q", s)
	}
	return v, nil
}
