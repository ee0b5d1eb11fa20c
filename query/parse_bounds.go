package query

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/VictoriaMetrics/metricsql"
)

// This file measures a query's text the way the MetricsQL parser will read
// it, without parsing it: how deeply it nests and how many terms it has
// once its WITH templates are expanded. The scanner follows metricsql's
// lexer wherever a difference could hide a bracket or a template use
// (strings with backslash-escaped quotes, # comments to the end of the
// line, identifiers with \-escapes); elsewhere it may count more than the
// parser sees, never less.

// ptKind is the kind of a token of the scanner.
type ptKind uint8

const (
	ptOther ptKind = iota // a number, string, duration or operator
	ptIdent               // an identifier; s is its name, escapes decoded
	ptOpen                // ( [ {
	ptClose               // ) ] }
	ptComma
	ptEq // a lone =, which separates a WITH template's name from its body
)

// ptok is a token; for ptOpen, end is the distance to its closing
// bracket (0: none).
type ptok struct {
	kind ptKind
	end  int32
	s    string
}

// scanner reads a query token by token.
type scanner struct {
	q string
	i int
}

// next returns the next token; ok is false at the end.
func (sc *scanner) next() (t ptok, ok bool) {
	q := sc.q
	for sc.i < len(q) {
		c := q[sc.i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r':
			sc.i++
			continue
		case c == '#':
			if n := strings.IndexByte(q[sc.i:], '\n'); n >= 0 {
				sc.i += n + 1
			} else {
				sc.i = len(q)
			}
			continue
		case c == '(' || c == '[' || c == '{':
			sc.i++
			return ptok{kind: ptOpen, s: q[sc.i-1 : sc.i]}, true
		case c == ')' || c == ']' || c == '}':
			sc.i++
			return ptok{kind: ptClose}, true
		case c == ',':
			sc.i++
			return ptok{kind: ptComma}, true
		case c == '"' || c == '\'' || c == '`':
			sc.i += stringLen(q[sc.i:])
			return ptok{kind: ptOther}, true
		}
		if n := identLen(q[sc.i:]); n > 0 {
			s := q[sc.i : sc.i+n]
			sc.i += n
			if strings.IndexByte(s, '\\') >= 0 {
				s = unescapeIdent(s)
			}
			return ptok{kind: ptIdent, s: s}, true
		}
		switch {
		case c == '=' && (sc.i+1 == len(q) || (q[sc.i+1] != '=' && q[sc.i+1] != '~')):
			sc.i++
			return ptok{kind: ptEq}, true
		case c >= '0' && c <= '9' || c == '.':
			j := sc.i + 1
			for j < len(q) && (isAlnum(q[j]) || q[j] == '.') {
				j++
			}
			sc.i = j
		case strings.HasPrefix(q[sc.i:], "==") || strings.HasPrefix(q[sc.i:], "=~") || strings.HasPrefix(q[sc.i:], "!=") ||
			strings.HasPrefix(q[sc.i:], "!~") || strings.HasPrefix(q[sc.i:], ">=") || strings.HasPrefix(q[sc.i:], "<="):
			sc.i += 2
		default:
			// One byte: an operator, or one the parser will refuse. A
			// backslash that starts no identifier is one too: the parser
			// stops there.
			sc.i++
		}
		return ptok{kind: ptOther}, true
	}
	return ptok{}, false
}

// stringLen is the length of the string literal that s starts with, as
// metricsql's scanString finds it: the next quote not preceded by an odd
// number of backslashes, whatever the quote. An unterminated string runs
// to the end (the parser stops there).
func stringLen(s string) int {
	quote := s[0]
	i := 1
	for {
		n := strings.IndexByte(s[i:], quote)
		if n < 0 {
			return len(s)
		}
		i += n
		bs := 0
		for bs < i && s[i-bs-1] == '\\' {
			bs++
		}
		if bs%2 == 0 {
			return i + 1
		}
		i++
	}
}

// identLen is the length of the identifier that s starts with (0: none),
// as metricsql's scanIdent finds it.
func identLen(s string) int {
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (i == 0 && (unicode.IsLetter(r) || r == '_' || r == ':')) ||
			(i > 0 && (unicode.IsLetter(r) || r == '_' || r == ':' || r == '.' || (r >= '0' && r <= '9'))) {
			i += size
			continue
		}
		if r != '\\' {
			break
		}
		r, n := decodeEscape(s[i+size:])
		if r == utf8.RuneError {
			break
		}
		i += size + n
	}
	return i
}

// decodeEscape decodes the escape sequence after a backslash as metricsql
// does: \xHH, \uHHHH or one printable character.
func decodeEscape(s string) (rune, int) {
	hex := func(s string) (rune, bool) {
		var r rune
		for i := 0; i < len(s); i++ {
			c := s[i]
			switch {
			case c >= '0' && c <= '9':
				r = r<<4 | rune(c-'0')
			case c >= 'a' && c <= 'f':
				r = r<<4 | rune(c-'a'+10)
			case c >= 'A' && c <= 'F':
				r = r<<4 | rune(c-'A'+10)
			default:
				return 0, false
			}
		}
		return r, true
	}
	switch {
	case strings.HasPrefix(s, "x") || strings.HasPrefix(s, "X"):
		if len(s) >= 3 {
			if r, ok := hex(s[1:3]); ok {
				return r, 3
			}
		}
		return utf8.RuneError, 0
	case strings.HasPrefix(s, "u") || strings.HasPrefix(s, "U"):
		if len(s) >= 5 {
			if r, ok := hex(s[1:5]); ok {
				return r, 5
			}
		}
		return utf8.RuneError, 0
	}
	r, size := utf8.DecodeRuneInString(s)
	if unicode.IsPrint(r) {
		return r, size
	}
	return utf8.RuneError, 0
}

// unescapeIdent decodes the escapes of an identifier, so that a\x30 and
// a0 name the same template, as they do for the parser.
func unescapeIdent(s string) string {
	var b strings.Builder
	for {
		n := strings.IndexByte(s, '\\')
		if n < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:n])
		s = s[n+1:]
		r, size := decodeEscape(s)
		if r == utf8.RuneError {
			b.WriteByte('\\')
			continue
		}
		b.WriteRune(r)
		s = s[size:]
	}
}

// nesting is how deeply q nests parentheses, brackets and braces outside
// string literals and comments.
func nesting(q string) int {
	sc := scanner{q: q}
	depth, deepest := 0, 0
	for {
		t, ok := sc.next()
		if !ok {
			return deepest
		}
		switch t.kind {
		case ptOpen:
			if depth++; depth > deepest {
				deepest = depth
			}
		case ptClose:
			depth = max(depth-1, 0)
		}
	}
}

// lexTerms returns the tokens of q, with the brackets matched.
func lexTerms(q string) []ptok {
	sc := scanner{q: q}
	var toks []ptok
	for {
		t, ok := sc.next()
		if !ok {
			break
		}
		toks = append(toks, t)
	}
	return matchBrackets(toks)
}

// matchBrackets sets the end of every opening bracket of toks.
func matchBrackets(toks []ptok) []ptok {
	var open []int
	for i := range toks {
		switch toks[i].kind {
		case ptOpen:
			toks[i].end = 0
			open = append(open, i)
		case ptClose:
			if len(open) > 0 {
				o := open[len(open)-1]
				open = open[:len(open)-1]
				toks[o].end = int32(i - o)
			}
		}
	}
	return toks
}

// closeOf is the index of the bracket closing toks[i], or len(toks) when
// it is not closed within toks.
func closeOf(toks []ptok, i int) int {
	if e := toks[i].end; e > 0 && i+int(e) < len(toks) {
		return i + int(e)
	}
	return len(toks)
}

// splitArgs splits toks at the commas outside brackets, dropping empty
// parts (a trailing comma).
func splitArgs(toks []ptok) [][]ptok {
	var out [][]ptok
	start := 0
	for i := 0; i < len(toks); i++ {
		switch toks[i].kind {
		case ptOpen:
			i = closeOf(toks, i)
		case ptComma:
			if i > start {
				out = append(out, toks[start:i])
			}
			start = i + 1
		}
	}
	if start < len(toks) {
		out = append(out, toks[start:])
	}
	return out
}

// expandedTerms counts the terms (tokens) of q once its WITH templates,
// and metricsql's own (ru, ttf, range_median, alias), are expanded; ok is
// false when there are more than max. It expands them as metricsql does,
// on tokens instead of syntax trees, counting every term it writes (the
// copies of a template included) and stopping after max, so it costs
// O(max) whatever q is.
func expandedTerms(q string, max int) (n int, ok bool) {
	toks := lexTerms(q)
	if len(toks) > max {
		return len(toks), false
	}
	builtin := builtinTemplates()
	templated := false
	for _, t := range toks {
		if t.kind == ptIdent && (strings.EqualFold(t.s, "with") || builtin.lookup(t.s) != nil || builtin.lookup(strings.ToLower(t.s)) != nil) {
			templated = true
			break
		}
	}
	if !templated {
		return len(toks), true
	}
	x := &expander{budget: max, busy: map[*template]bool{}, memo: map[*template][]ptok{}}
	_, ok = x.expand(toks, builtin)
	return max - x.budget, ok
}

// template is a WITH template, or a parameter bound to its argument: a
// body and the scope its names are looked up in. It does not change once
// made (the built-in ones are shared by every query).
type template struct {
	params []string
	body   []ptok
	env    *scope
}

// scope is what a name may refer to at one place: the first n templates
// of a WITH block (or of a call's parameters), then the enclosing scope.
// metricsql looks names up in a flat list, newest first, and a template's
// body sees only what was defined before the template: this is the same.
type scope struct {
	names  map[string]int
	defs   []*template
	n      int
	parent *scope
}

func (s *scope) lookup(name string) *template {
	for ; s != nil; s = s.parent {
		if i, ok := s.names[name]; ok && i < s.n {
			return s.defs[i]
		}
	}
	return nil
}

// newBlock returns the scope of a WITH block (or a call's parameters) over
// env; def i sees the first i of its siblings.
func newBlock(names []string, bodies [][]ptok, params [][]string, env *scope) *scope {
	blk := &scope{names: make(map[string]int, len(names)), defs: make([]*template, len(names)), n: len(names), parent: env}
	for i, n := range names {
		if _, dup := blk.names[n]; !dup {
			blk.names[n] = i
		}
		var ps []string
		if params != nil {
			ps = params[i]
		}
		blk.defs[i] = &template{params: ps, body: bodies[i], env: &scope{names: blk.names, defs: blk.defs, n: i, parent: env}}
	}
	return blk
}

var (
	builtinOnce sync.Once
	builtinEnv  *scope
)

// builtinTemplates are the templates metricsql defines itself (its
// getDefaultWithArgExprs); `ru(m, ru(m, ru(m, …)))` doubles at each level.
func builtinTemplates() *scope {
	builtinOnce.Do(func() {
		toks := lexTerms(`WITH (
			ru(freev, maxv) = clamp_min(maxv - clamp_min(freev, 0), 0) / clamp_min(maxv, 0) * 100,
			ttf(freev) = smooth_exponential(
				clamp_max(clamp_max(-freev, 0) / clamp_max(deriv_fast(freev), 0), 365*24*3600),
				clamp_max(step()/300, 1)
			),
			range_median(q) = range_quantile(0.5, q),
			alias(q, name) = label_set(q, "__name__", name),
		) x`)
		builtinEnv = withBlock(toks[2:closeOf(toks, 1)], nil)
	})
	return builtinEnv
}

// withBlock reads the definitions of a WITH block (the tokens inside its
// parentheses) into a scope over env. A definition that does not read as
// one is left out: the parser refuses the query, and expands nothing.
func withBlock(defs []ptok, env *scope) *scope {
	var names []string
	var bodies [][]ptok
	var params [][]string
	for _, d := range splitArgs(defs) {
		if d[0].kind != ptIdent {
			continue
		}
		k := 1
		var ps []string
		if k < len(d) && d[k].kind == ptOpen {
			end := closeOf(d, k)
			for _, p := range d[k+1 : end] {
				if p.kind == ptIdent {
					ps = append(ps, p.s)
				}
			}
			k = end + 1
		}
		if k >= len(d) || d[k].kind != ptEq {
			continue
		}
		names = append(names, d[0].s)
		bodies = append(bodies, d[k+1:])
		params = append(params, ps)
	}
	return newBlock(names, bodies, params, env)
}

// expander expands templates on tokens, as metricsql's expandWithExpr does
// on syntax trees: a call's arguments are expanded where it is made, then
// the body in the template's scope with the parameters bound to them; each
// use of a parameter expands its argument again, in the scope of the
// parameter (so a name in it may be captured: metricsql does that too);
// each use of a template copies its expansion. Every term written counts
// against the budget, the copies included, as the parser's work does.
type expander struct {
	budget int
	busy   map[*template]bool   // being expanded: not looked up again
	memo   map[*template][]ptok // the expansions of templates without parameters
}

// expand returns toks with the templates of env and of the WITH blocks in
// toks expanded; ok is false once the budget is spent.
func (x *expander) expand(toks []ptok, env *scope) (out []ptok, ok bool) {
	type with struct {
		env   *scope
		level int
	}
	var withs []with // the WITH blocks toks opened, innermost last
	cur := func() *scope {
		if len(withs) > 0 {
			return withs[len(withs)-1].env
		}
		return env
	}
	emit := func(ts ...ptok) bool {
		x.budget -= len(ts)
		out = append(out, ts...)
		return x.budget >= 0
	}
	level := 0
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch t.kind {
		case ptOpen:
			level++
		case ptClose:
			level--
			for len(withs) > 0 && withs[len(withs)-1].level > level {
				withs = withs[:len(withs)-1]
			}
		case ptComma:
			// A WITH expression ends at a comma of its own level.
			for len(withs) > 0 && withs[len(withs)-1].level == level {
				withs = withs[:len(withs)-1]
			}
		case ptIdent:
			next := ptOther
			if i+1 < len(toks) {
				next = toks[i+1].kind
			}
			if next == ptOpen && strings.EqualFold(t.s, "with") {
				end := closeOf(toks, i+1)
				withs = append(withs, with{withBlock(toks[i+2:end], cur()), level})
				i = end
				continue
			}
			name := t.s
			// An aggregation's name is lowercased before it is looked up.
			call := next == ptOpen
			if metricsql.IsAggrFunc(name) && (next == ptOpen || next == ptIdent) {
				call, name = true, strings.ToLower(name)
			}
			tm := cur().lookup(name)
			if tm == nil || x.busy[tm] {
				break
			}
			if len(tm.params) == 0 {
				// `f() = …` expands without parentheses too.
				exp, ok := x.expandTemplate(tm)
				if !ok || !emit(exp...) {
					return nil, false
				}
				continue
			}
			if !call {
				break // a template with parameters, used as a metric name
			}
			// The arguments: after `by (…)` for an aggregation.
			j := i + 1
			if j < len(toks) && toks[j].kind == ptIdent && j+1 < len(toks) && toks[j+1].kind == ptOpen {
				j = closeOf(toks, j+1) + 1
			}
			if j >= len(toks) || toks[j].kind != ptOpen {
				break
			}
			end := closeOf(toks, j)
			args := splitArgs(toks[j+1 : end])
			bodies := make([][]ptok, len(args))
			for k, a := range args {
				e, ok := x.expand(a, cur())
				if !ok {
					return nil, false
				}
				bodies[k] = e
			}
			i = end
			if len(args) != len(tm.params) {
				continue // the parser refuses this call
			}
			pblk := newBlock(tm.params, bodies, nil, tm.env)
			x.busy[tm] = true
			exp, ok := x.expand(tm.body, pblk)
			delete(x.busy, tm)
			if !ok || !emit(exp...) {
				return nil, false
			}
			continue
		}
		if !emit(t) {
			return nil, false
		}
	}
	return matchBrackets(out), true
}

// expandTemplate expands a template without parameters once; every use
// then copies it.
func (x *expander) expandTemplate(tm *template) ([]ptok, bool) {
	if exp, done := x.memo[tm]; done {
		return exp, true
	}
	x.busy[tm] = true
	exp, ok := x.expand(tm.body, tm.env)
	delete(x.busy, tm)
	if !ok {
		return nil, false
	}
	x.memo[tm] = exp
	return exp, true
}
