package query

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/emsdb/tsdb/internal/duration"
)

// rewriteDurations evaluates PromQL 3 duration expressions, which the
// MetricsQL parser does not know, into plain millisecond durations:
// arithmetic inside range and subquery brackets (`[5m+1m]`, `[1h/2:step()]`)
// and after `offset` (`offset (2*1m)`, `offset min_of(step(), 1s)`).
// Numbers are seconds; step() is the query step (0 for an instant query)
// and range() its end minus start, both in seconds.
func rewriteDurations(q string, step, rng int64) (string, error) {
	toks := lexDur(q)
	closing := matchAll(toks)
	var b strings.Builder
	depth := 0 // inside {…}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.s == "{":
			depth++
		case t.s == "}":
			depth--
		case t.s == "[" && depth == 0:
			end := closing[i]
			if end < 0 {
				b.WriteString(t.s)
				continue
			}
			b.WriteString("[")
			parts := splitTop(toks[i+1:end], ":")
			for pi, part := range parts {
				if pi > 0 {
					b.WriteString(":")
				}
				s, err := durationText(part, step, rng)
				if err != nil {
					return "", err
				}
				b.WriteString(s)
			}
			b.WriteString("]")
			i = end
			continue
		case strings.EqualFold(t.s, "range") && t.kind == tkIdent && depth == 0 &&
			i+2 < len(toks) && toks[i+1].s == "(" && toks[i+2].s == ")":
			// range() as a value: the query's end minus its start.
			b.WriteString("(end() - start())")
			i += 2
			continue
		case (strings.EqualFold(t.s, "min_of") || strings.EqualFold(t.s, "max_of")) && t.kind == tkIdent &&
			depth == 0 && i+1 < len(toks) && toks[i+1].s == "(":
			// A scalar of duration arithmetic, in seconds.
			end := closing[i+1]
			if end < 0 {
				return "", fmt.Errorf("unbalanced parentheses in %q", q)
			}
			p := &durParser{toks: nonSpace(toks[i : end+1]), step: step, rng: rng}
			v, err := p.expr(0)
			if err != nil {
				return "", err
			}
			b.WriteString("(" + strconv.FormatFloat(v, 'g', -1, 64) + ")")
			i = end
			continue
		case strings.EqualFold(t.s, "offset") && t.kind == tkIdent && depth == 0:
			b.WriteString(t.s)
			// Whitespace, then one operand: [sign] literal | (…) | call(…).
			j := i + 1
			for j < len(toks) && toks[j].kind == tkSpace {
				b.WriteString(toks[j].s)
				j++
			}
			k := j
			if k < len(toks) && (toks[k].s == "-" || toks[k].s == "+") {
				k++
			}
			switch {
			case k >= len(toks):
			case toks[k].s == "(":
				k = closing[k]
			case toks[k].kind == tkIdent && k+1 < len(toks) && toks[k+1].s == "(":
				k = closing[k+1]
			}
			if k < 0 || k >= len(toks) {
				return "", fmt.Errorf("bad offset in %q", q)
			}
			s, err := durationText(toks[j:k+1], step, rng)
			if err != nil {
				return "", err
			}
			b.WriteString(s)
			i = k
			continue
		}
		b.WriteString(t.s)
	}
	return b.String(), nil
}

// durationText returns the tokens as they are when they are one plain
// duration, else their value as a duration in milliseconds.
func nonSpace(ts []durTok) []durTok {
	var out []durTok
	for _, t := range ts {
		if t.kind != tkSpace {
			out = append(out, t)
		}
	}
	return out
}

func durationText(ts []durTok, step, rng int64) (string, error) {
	nonSpace := nonSpace(ts)
	if len(nonSpace) == 0 {
		return "", nil
	}
	if len(nonSpace) == 1 && nonSpace[0].kind == tkDuration {
		return nonSpace[0].s, nil
	}
	if len(nonSpace) == 2 && nonSpace[0].s == "-" && nonSpace[1].kind == tkDuration {
		return "-" + nonSpace[1].s, nil
	}
	p := &durParser{toks: nonSpace, step: step, rng: rng}
	v, err := p.expr(0)
	if err != nil {
		return "", err
	}
	if p.i != len(p.toks) {
		return "", fmt.Errorf("unexpected %q in duration expression", p.toks[p.i].s)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > 9e15 {
		return "", fmt.Errorf("duration expression out of range: %v", v)
	}
	return strconv.FormatInt(int64(math.Round(v*1000)), 10) + "ms", nil
}

type durTokKind int

const (
	tkSpace durTokKind = iota
	tkIdent
	tkNumber
	tkDuration
	tkString
	tkPunct
)

type durTok struct {
	kind durTokKind
	s    string
}

// lexDur splits a query into tokens, keeping every byte.
func lexDur(q string) []durTok {
	var out []durTok
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			j := i
			for j < len(q) && strings.ContainsRune(" \t\n\r", rune(q[j])) {
				j++
			}
			out = append(out, durTok{tkSpace, q[i:j]})
			i = j
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(q) && q[j] != c {
				if q[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			j = min(j+1, len(q))
			out = append(out, durTok{tkString, q[i:j]})
			i = j
		case c == '#':
			// A comment runs to the end of its line, as metricsql reads it.
			j := len(q)
			if n := strings.IndexByte(q[i:], '\n'); n >= 0 {
				j = i + n
			}
			out = append(out, durTok{tkSpace, q[i:j]})
			i = j
		case c >= '0' && c <= '9' || (c == '.' && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9'):
			j := i
			for j < len(q) && (isAlnum(q[j]) || q[j] == '.' ||
				((q[j] == '+' || q[j] == '-') && (q[j-1] == 'e' || q[j-1] == 'E') && !strings.ContainsAny(q[i:j], "smhdwyx"))) {
				j++
			}
			s := q[i:j]
			kind := tkNumber
			if _, err := strconv.ParseFloat(s, 64); err != nil {
				if _, err := strconv.ParseInt(s, 0, 64); err != nil {
					kind = tkDuration
				}
			}
			out = append(out, durTok{kind, s})
			i = j
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			// ASCII only: a byte of a multi-byte rune is not a letter of an
			// identifier (it once made this loop stand still).
			j := i
			for j < len(q) && (isAlnum(q[j]) || q[j] == '_' || q[j] == ':') {
				j++
			}
			out = append(out, durTok{tkIdent, q[i:j]})
			i = j
		default:
			out = append(out, durTok{tkPunct, q[i : i+1]})
			i++
		}
	}
	return out
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

// matchAll returns, for each ( and [ of toks, the index of the token
// closing it (-1: none); parentheses and brackets are matched each on
// their own. Computed once: matching each opening token by scanning
// ahead was quadratic in the number of unclosed ones.
func matchAll(toks []durTok) []int {
	closing := make([]int, len(toks))
	var parens, brackets []int
	for i, t := range toks {
		closing[i] = -1
		switch t.s {
		case "(":
			parens = append(parens, i)
		case "[":
			brackets = append(brackets, i)
		case ")":
			if n := len(parens); n > 0 {
				closing[parens[n-1]], parens = i, parens[:n-1]
			}
		case "]":
			if n := len(brackets); n > 0 {
				closing[brackets[n-1]], brackets = i, brackets[:n-1]
			}
		}
	}
	return closing
}

// splitTop splits tokens at sep outside parentheses.
func splitTop(toks []durTok, sep string) [][]durTok {
	var out [][]durTok
	d, start := 0, 0
	for i, t := range toks {
		switch t.s {
		case "(":
			d++
		case ")":
			d--
		case sep:
			if d == 0 {
				out = append(out, toks[start:i])
				start = i + 1
			}
		}
	}
	return append(out, toks[start:])
}

// durParser evaluates duration arithmetic in seconds, with PromQL's
// precedence: + - < * / % < unary < ^ (right-associative).
type durParser struct {
	toks      []durTok
	i         int
	step, rng int64
}

func (p *durParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i].s
	}
	return ""
}

func prec(op string) int {
	switch op {
	case "+", "-":
		return 1
	case "*", "/", "%":
		return 2
	case "^":
		return 4
	}
	return 0
}

func (p *durParser) expr(minPrec int) (float64, error) {
	l, err := p.unary()
	if err != nil {
		return 0, err
	}
	for {
		op := p.peek()
		pr := prec(op)
		if pr == 0 || pr < minPrec {
			return l, nil
		}
		p.i++
		next := pr + 1
		if op == "^" {
			next = pr // right-associative
		}
		r, err := p.expr(next)
		if err != nil {
			return 0, err
		}
		switch op {
		case "+":
			l += r
		case "-":
			l -= r
		case "*":
			l *= r
		case "/":
			l /= r
		case "%":
			l = math.Mod(l, r)
		case "^":
			l = math.Pow(l, r)
		}
	}
}

func (p *durParser) unary() (float64, error) {
	switch p.peek() {
	case "-":
		p.i++
		v, err := p.expr(3)
		return -v, err
	case "+":
		p.i++
		return p.expr(3)
	}
	return p.atom()
}

func (p *durParser) atom() (float64, error) {
	if p.i >= len(p.toks) {
		return 0, fmt.Errorf("unexpected end of duration expression")
	}
	t := p.toks[p.i]
	p.i++
	switch t.kind {
	case tkNumber:
		v, err := strconv.ParseFloat(t.s, 64)
		if err != nil {
			n, err2 := strconv.ParseInt(t.s, 0, 64)
			if err2 != nil {
				return 0, err
			}
			v = float64(n)
		}
		return v, nil
	case tkDuration:
		ms, err := ParseDuration(t.s)
		return float64(ms) / 1000, err
	case tkIdent:
		name := strings.ToLower(t.s)
		switch {
		case name == "nan" && p.peek() != "(":
			return math.NaN(), nil
		case name == "inf" && p.peek() != "(":
			return math.Inf(1), nil
		}
		if p.peek() != "(" {
			return 0, fmt.Errorf("unexpected %q in duration expression", t.s)
		}
		p.i++
		var args []float64
		for p.peek() != ")" {
			v, err := p.expr(0)
			if err != nil {
				return 0, err
			}
			args = append(args, v)
			if p.peek() == "," {
				p.i++
			}
		}
		p.i++
		switch {
		case name == "step" && len(args) == 0:
			return float64(p.step) / 1000, nil
		case name == "range" && len(args) == 0:
			return float64(p.rng) / 1000, nil
		case name == "min_of" && len(args) == 2:
			return math.Min(args[0], args[1]), nil
		case name == "max_of" && len(args) == 2:
			return math.Max(args[0], args[1]), nil
		}
		return 0, fmt.Errorf("unknown function %q in duration expression", t.s)
	case tkPunct:
		if t.s == "(" {
			v, err := p.expr(0)
			if err != nil {
				return 0, err
			}
			if p.peek() != ")" {
				return 0, fmt.Errorf("missing ) in duration expression")
			}
			p.i++
			return v, nil
		}
	}
	return 0, fmt.Errorf("unexpected %q in duration expression", t.s)
}

// ParseDuration parses a PromQL duration literal (1h30m, 500ms, 2d) into
// milliseconds. It is model.ParseDuration through package duration, as
// Prometheus 3's PromQL parser reads literals; the float seconds some API
// parameters also take (step=15.5) are the caller's to try first.
func ParseDuration(s string) (int64, error) {
	d, err := duration.Parse(s)
	if err != nil {
		return 0, err
	}
	return d.Milliseconds(), nil
}
