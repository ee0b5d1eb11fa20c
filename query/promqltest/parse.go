// Package promqltest runs Prometheus's PromQL test scripts (the *.test
// files of testdata/conformance, format described in their README)
// against our engine in process.
package promqltest

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage"
)

// Command is one command of a script: *Load, *Clear or *Eval.
type Command interface{ line() int }

// Load adds samples.
type Load struct {
	Line      int
	Interval  int64 // ms
	Series    []LoadSeries
	WithNHCB  bool
	Histogram bool // some line holds native histograms (not loaded)
}

// LoadSeries is one series of a load block.
type LoadSeries struct {
	Labels     labels.Labels
	Samples    []storage.Sample
	Histograms []storage.HSample
	Histogram  bool
}

// Clear empties the storage.
type Clear struct{ Line int }

// Eval is one query and what it must return.
type Eval struct {
	Line              int
	Instant           bool
	At                int64 // instant: ms
	Start, End, Step  int64 // range: ms
	Query             string
	Series            []ExpectedSeries
	Scalar            *float64
	String            *string
	RangeVector       *[3]int64 // expect range vector from, to, step (ms)
	Fail              bool
	FailMsg, FailRe   string
	Warn, Info        []Annotation // expected annotations
	NoWarn, NoInfo    bool
	WarnAny, InfoAny  bool
	Ordered           bool
	ExpectsHistograms bool
}

// ExpectedSeries is a series line of an eval block: values per step
// (instant: one); a nil entry means no point at that step.
type ExpectedSeries struct {
	Labels    labels.Labels
	Values    []*Value
	Histogram bool
}

// Annotation is an expected warning or info: a message, a regex, or any.
type Annotation struct {
	Msg string
	Re  *regexp.Regexp
}

func (l *Load) line() int  { return l.Line }
func (c *Clear) line() int { return c.Line }
func (e *Eval) line() int  { return e.Line }

// Parse reads a script.
func Parse(src string) ([]Command, error) {
	lines := strings.Split(src, "\n")
	var cmds []Command
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		// The block: the header and the non-empty, non-comment lines after it.
		j := i + 1
		for j < len(lines) {
			t := strings.TrimSpace(lines[j])
			if t == "" || strings.HasPrefix(t, "#") {
				break
			}
			j++
		}
		body := make([]string, 0, j-i-1)
		for _, b := range lines[i+1 : j] {
			body = append(body, strings.TrimSpace(b))
		}
		word := strings.ToLower(strings.Fields(l)[0])
		var (
			cmd Command
			err error
		)
		switch {
		case word == "clear":
			// clear takes no block: the next line may start a command.
			cmd = &Clear{Line: i + 1}
			j = i + 1
		case word == "load" || word == "load_with_nhcb":
			cmd, err = parseLoad(i+1, l, body)
		case strings.HasPrefix(word, "eval"):
			cmd, err = parseEval(i+1, l, body)
		default:
			err = fmt.Errorf("unknown command %q", word)
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		cmds = append(cmds, cmd)
		i = j - 1
	}
	return cmds, nil
}

func parseLoad(line int, header string, body []string) (*Load, error) {
	f := strings.Fields(header)
	if len(f) != 2 {
		return nil, fmt.Errorf("want load <interval>, got %q", header)
	}
	iv, err := parseDuration(f[1])
	if err != nil {
		return nil, err
	}
	ld := &Load{Line: line, Interval: iv, WithNHCB: strings.EqualFold(f[0], "load_with_nhcb")}
	for k, b := range body {
		name, rest, err := splitSeries(b)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line+k+1, err)
		}
		if strings.HasSuffix(name, "@st") {
			continue // start-timestamp offsets: not supported
		}
		ls, err := parseLabels(name)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line+k+1, err)
		}
		vals, hist, err := parseValues(rest)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line+k+1, err)
		}
		s := LoadSeries{Labels: ls, Histogram: hist}
		for i, v := range vals {
			switch {
			case v == nil:
			case v.H != nil:
				s.Histograms = append(s.Histograms, storage.HSample{T: int64(i) * iv, H: v.H})
			default:
				s.Samples = append(s.Samples, storage.Sample{T: int64(i) * iv, V: v.F})
			}
		}
		ld.Histogram = ld.Histogram || hist
		// A later line for the same series replaces the earlier one.
		replaced := false
		for i := range ld.Series {
			if labels.Equal(ld.Series[i].Labels, ls) {
				ld.Series[i], replaced = s, true
			}
		}
		if !replaced {
			ld.Series = append(ld.Series, s)
		}
	}
	return ld, nil
}

var (
	instantRe = regexp.MustCompile(`^(?i)(eval(?:_fail|_warn|_info|_ordered)?)\s+instant\s+at\s+(\S+)\s+(.+)$`)
	rangeRe   = regexp.MustCompile(`^(?i)(eval(?:_fail|_warn|_info|_ordered)?)\s+range\s+from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)\s+(.+)$`)
)

func parseEval(line int, header string, body []string) (*Eval, error) {
	e := &Eval{Line: line}
	var kind string
	if m := instantRe.FindStringSubmatch(header); m != nil {
		at, err := parseDuration(m[2])
		if err != nil {
			return nil, err
		}
		kind, e.Instant, e.At, e.Query = strings.ToLower(m[1]), true, at, m[3]
	} else if m := rangeRe.FindStringSubmatch(header); m != nil {
		var err error
		if e.Start, err = parseDuration(m[2]); err != nil {
			return nil, err
		}
		if e.End, err = parseDuration(m[3]); err != nil {
			return nil, err
		}
		if e.Step, err = parseDuration(m[4]); err != nil {
			return nil, err
		}
		kind, e.Query = strings.ToLower(m[1]), m[5]
	} else {
		return nil, fmt.Errorf("bad eval header %q", header)
	}
	switch kind {
	case "eval_fail":
		e.Fail = true
	case "eval_warn":
		e.WarnAny = true
	case "eval_info":
		e.InfoAny = true
	case "eval_ordered":
		e.Ordered = true
	}
	for k, b := range body {
		lno := line + k + 1
		if rest, ok := strings.CutPrefix(b, "expected_fail_message "); ok {
			e.FailMsg = strings.TrimSpace(rest)
			continue
		}
		if rest, ok := strings.CutPrefix(b, "expected_fail_regexp "); ok {
			re, err := regexp.Compile(strings.TrimSpace(rest))
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", lno, err)
			}
			e.FailRe = re.String()
			continue
		}
		if f := strings.Fields(b); len(f) > 0 && f[0] == "expect" {
			if err := parseExpect(e, b); err != nil {
				return nil, fmt.Errorf("line %d: %w", lno, err)
			}
			continue
		}
		if v, err := parseNumber(b); err == nil {
			e.Scalar = &v
			continue
		}
		name, rest, err := splitSeries(b)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lno, err)
		}
		ls, err := parseLabels(name)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lno, err)
		}
		vals, hist, err := parseValues(rest)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lno, err)
		}
		e.ExpectsHistograms = e.ExpectsHistograms || hist
		e.Series = append(e.Series, ExpectedSeries{Labels: ls, Values: vals, Histogram: hist})
	}
	return e, nil
}

func parseExpect(e *Eval, l string) error {
	rest := strings.TrimSpace(strings.TrimPrefix(l, "expect"))
	kind, arg, _ := strings.Cut(rest, " ")
	arg = strings.TrimSpace(arg)
	ann := func() (Annotation, error) {
		switch {
		case arg == "":
			return Annotation{}, nil
		case strings.HasPrefix(arg, "msg:"):
			return Annotation{Msg: strings.TrimSpace(strings.TrimPrefix(arg, "msg:"))}, nil
		case strings.HasPrefix(arg, "regex:"):
			re, err := regexp.Compile(strings.TrimSpace(strings.TrimPrefix(arg, "regex:")))
			return Annotation{Re: re}, err
		}
		return Annotation{}, fmt.Errorf("bad expectation %q", l)
	}
	switch kind {
	case "fail":
		a, err := ann()
		if err != nil {
			return err
		}
		e.Fail = true
		e.FailMsg = a.Msg
		if a.Re != nil {
			e.FailRe = a.Re.String()
		}
	case "warn", "info":
		a, err := ann()
		if err != nil {
			return err
		}
		if kind == "warn" {
			e.Warn = append(e.Warn, a)
		} else {
			e.Info = append(e.Info, a)
		}
	case "no_warn":
		e.NoWarn = true
	case "no_info":
		e.NoInfo = true
	case "ordered":
		e.Ordered = true
	case "string":
		s, err := strconv.Unquote(arg)
		if err != nil {
			return fmt.Errorf("bad string %q: %w", arg, err)
		}
		e.String = &s
	case "range":
		// expect range vector from <s> to <e> step <st>
		f := strings.Fields(arg)
		if len(f) != 7 || f[0] != "vector" || f[1] != "from" || f[3] != "to" || f[5] != "step" {
			return fmt.Errorf("bad range vector expectation %q", l)
		}
		var rv [3]int64
		for i, s := range []string{f[2], f[4], f[6]} {
			d, err := parseDuration(s)
			if err != nil {
				return err
			}
			rv[i] = d
		}
		e.RangeVector = &rv
	default:
		return fmt.Errorf("unknown expectation %q", l)
	}
	return nil
}

// splitSeries splits a series line into the selector and the values.
func splitSeries(l string) (string, string, error) {
	inQuote, depth := byte(0), 0
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case inQuote != 0:
			if c == '\\' {
				i++
			} else if c == inQuote {
				inQuote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			inQuote = c
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth == 0 && (i+1 == len(l) || l[i+1] == ' ' || l[i+1] == '\t') {
				return l[:i+1], strings.TrimSpace(l[i+1:]), nil
			}
		case (c == ' ' || c == '\t') && depth == 0:
			return l[:i], strings.TrimSpace(l[i:]), nil
		}
	}
	if depth != 0 || inQuote != 0 {
		return "", "", fmt.Errorf("unterminated series %q", l)
	}
	return l, "", nil
}

// parseLabels parses name{a="b", …}, {__name__="x", …} or {"name", …}.
func parseLabels(s string) (labels.Labels, error) {
	b := labels.NewScratchBuilder(8)
	name, rest, hasBrace := strings.Cut(s, "{")
	name = strings.TrimSpace(name)
	if name != "" {
		b.Add(model.MetricNameLabel, name)
	}
	if hasBrace {
		rest = strings.TrimSpace(rest)
		if !strings.HasSuffix(rest, "}") {
			return labels.EmptyLabels(), fmt.Errorf("bad series %q", s)
		}
		rest = rest[:len(rest)-1]
		for {
			rest = strings.TrimLeft(rest, " ,")
			if rest == "" {
				break
			}
			var ln string
			if rest[0] == '"' {
				q, err := strconv.QuotedPrefix(rest)
				if err != nil {
					return labels.EmptyLabels(), fmt.Errorf("bad label name in %q", s)
				}
				ln, _ = strconv.Unquote(q)
				rest = strings.TrimSpace(rest[len(q):])
				if !strings.HasPrefix(rest, "=") { // {"name"}: the metric name
					b.Add(model.MetricNameLabel, ln)
					continue
				}
			} else {
				k := strings.IndexAny(rest, "= ")
				if k < 0 {
					return labels.EmptyLabels(), fmt.Errorf("bad label in %q", s)
				}
				ln, rest = rest[:k], strings.TrimSpace(rest[k:])
			}
			rest = strings.TrimSpace(strings.TrimPrefix(rest, "="))
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return labels.EmptyLabels(), fmt.Errorf("bad label value in %q", s)
			}
			v, err := strconv.Unquote(q)
			if err != nil {
				return labels.EmptyLabels(), err
			}
			if v != "" {
				// A label with an empty value is no label (Prometheus's
				// data model); the scripts write some (`__unit__=""`).
				b.Add(ln, v)
			}
			rest = rest[len(q):]
		}
	}
	b.Sort()
	return b.Labels(), nil
}

// parseValues expands value items; a nil entry is a step without a sample.
func parseValues(s string) ([]*Value, bool, error) {
	var out []*Value
	hist := false
	f := tokens(s)
	for _, it := range f {
		if strings.HasPrefix(it, "{{") {
			hist = true
			vs, err := parseHistogramItem(it)
			if err != nil {
				return nil, hist, err
			}
			out = append(out, vs...)
			continue
		}
		switch {
		case it == "_":
			out = append(out, nil)
			continue
		case strings.HasPrefix(it, "_x"):
			k, err := strconv.Atoi(it[2:])
			if err != nil {
				return nil, hist, fmt.Errorf("bad item %q", it)
			}
			for range k {
				out = append(out, nil)
			}
			continue
		case it == "stale":
			out = append(out, &Value{F: math.Float64frombits(storage.StaleNaN)})
			continue
		}
		// NxK, A+BxK, A-BxK come first: "0x59" is 60 zeros, not 89.
		rep := repRe.MatchString(it)
		if v, err := parseNumber(it); err == nil && !rep {
			out = append(out, &Value{F: v})
			continue
		}
		xi := strings.LastIndexByte(it, 'x')
		if xi <= 0 {
			return nil, hist, fmt.Errorf("bad value %q", it)
		}
		k, err := strconv.Atoi(it[xi+1:])
		if err != nil {
			return nil, hist, fmt.Errorf("bad value %q", it)
		}
		head := it[:xi]
		start, step := head, "0"
		sign := 1.0
		for i := 1; i < len(head); i++ {
			if (head[i] == '+' || head[i] == '-') && head[i-1] != 'e' && head[i-1] != 'E' {
				start, step = head[:i], head[i+1:]
				if head[i] == '-' {
					sign = -1
				}
				break
			}
		}
		a, err := parseNumber(start)
		if err != nil {
			return nil, hist, fmt.Errorf("bad value %q", it)
		}
		d, err := parseNumber(step)
		if err != nil {
			return nil, hist, fmt.Errorf("bad value %q", it)
		}
		cur := a
		for i := 0; i <= k; i++ {
			out = append(out, &Value{F: cur})
			cur += sign * d
		}
	}
	return out, hist, nil
}

var repRe = regexp.MustCompile(`^[^x]*[0-9a-zA-Z.]x[0-9]+$`)

// tokens splits on blanks, keeping {{ … }} items whole.
func tokens(s string) []string {
	var out []string
	for len(s) > 0 {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		if strings.HasPrefix(s, "{{") {
			end := strings.Index(s, "}}")
			if end < 0 {
				out = append(out, s)
				break
			}
			end += 2
			for end < len(s) && s[end] != ' ' && s[end] != '\t' {
				// {{A}}+{{B}}xK
				if strings.HasPrefix(s[end:], "+{{") || strings.HasPrefix(s[end:], "-{{") {
					e2 := strings.Index(s[end:], "}}")
					if e2 < 0 {
						end = len(s)
						break
					}
					end += e2 + 2
					continue
				}
				end++
			}
			out = append(out, s[:end])
			s = s[end:]
			continue
		}
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

// parseNumber parses the number forms of the scripts.
func parseNumber(s string) (float64, error) {
	t := strings.ToLower(strings.TrimLeft(s, "+-"))
	neg := strings.HasPrefix(s, "-")
	switch t {
	case "inf":
		if neg {
			return math.Inf(-1), nil
		}
		return math.Inf(1), nil
	case "nan":
		return math.NaN(), nil
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return v, nil
	}
	if v, err := strconv.ParseInt(s, 0, 64); err == nil {
		return float64(v), nil
	}
	if d, err := parseDuration(strings.TrimLeft(s, "+-")); err == nil && s != "" {
		v := float64(d) / 1000
		if neg {
			v = -v
		}
		return v, nil
	}
	return 0, fmt.Errorf("not a number: %q", s)
}

var durRe = regexp.MustCompile(`^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$`)

// parseDuration parses a Prometheus duration into milliseconds.
func parseDuration(s string) (int64, error) {
	if s == "0" {
		return 0, nil
	}
	m := durRe.FindStringSubmatch(s)
	if m == nil || s == "" {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	units := []time.Duration{365 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute, time.Second, time.Millisecond}
	var d time.Duration
	for i, u := range units {
		if m[i+1] != "" {
			n, err := strconv.ParseInt(m[i+1], 10, 64)
			if err != nil {
				return 0, err
			}
			d += time.Duration(n) * u
		}
	}
	return d.Milliseconds(), nil
}
