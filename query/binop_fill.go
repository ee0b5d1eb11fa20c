package query

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
)

// The fill modifiers of binary operations (Prometheus's
// promql-binop-fill-modifiers): `a + fill(0) b`, `a / on(x) group_left
// fill_right(1) b`, `a - fill_left(0) fill_right(NaN) b`. A series of one
// side without a match on the other is paired with a stand-in holding the
// fill value, instead of being dropped. MetricsQL has no such modifier, so
// before parsing each one is taken out of the query and written as a
// marker label in the operation's on() or ignoring() list (an
// `ignoring(…)` with only markers when it has none, which matches as no
// modifier does); the value is in the marker's name, as the bits of the
// float in hex, so any value (NaN, -Inf) survives. The evaluator reads the
// markers back (splitFill) and matches on the other labels only.

// The prefixes of the marker labels; a marker is prefix + 16 hex digits +
// "__".
const (
	fillLeftPrefix  = "__fill_left_"
	fillRightPrefix = "__fill_right_"
)

// fillValues are the values a binary operation fills a missing side with;
// nil: that side is not filled.
type fillValues struct {
	lhs, rhs *float64
}

func (f fillValues) any() bool { return f.lhs != nil || f.rhs != nil }

// fillMarker is the marker label carrying fill value v.
func fillMarker(prefix string, v float64) string {
	return fmt.Sprintf("%s%016x__", prefix, math.Float64bits(v))
}

// splitFill separates the matching labels of a binary operation from its
// fill markers.
func splitFill(args []string) ([]string, fillValues) {
	var f fillValues
	var ls []string
	for _, a := range args {
		if v, ok := fillMarkerValue(a, fillLeftPrefix); ok {
			f.lhs = &v
			continue
		}
		if v, ok := fillMarkerValue(a, fillRightPrefix); ok {
			f.rhs = &v
			continue
		}
		ls = append(ls, a)
	}
	if len(ls) == len(args) {
		return args, f // the usual case: no copy
	}
	return ls, f
}

// fillMarkerValue reads the value of a marker label with the given
// prefix; ok is false when name is not one.
func fillMarkerValue(name, prefix string) (float64, bool) {
	hex, found := strings.CutPrefix(name, prefix)
	if !found {
		return 0, false
	}
	hex, found = strings.CutSuffix(hex, "__")
	if !found || len(hex) != 16 {
		return 0, false
	}
	bits, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return 0, false
	}
	return math.Float64frombits(bits), true
}

// fillModifier is a fill, fill_left or fill_right modifier in a query.
type fillModifier struct {
	start, end  int  // its tokens: the keyword to the closing parenthesis
	left, right bool // the sides it fills
	value       float64
	// anchor is the token the markers are written at: the closing
	// parenthesis of the operation's on() or ignoring() list, or, when it
	// has none, the last token of the operator (or of its bool).
	anchor int
	list   bool // anchor closes a list
}

// findFillModifiers finds the fill modifiers of a query's binary
// operations. In Prometheus's grammar they come last among an operator's
// modifiers (`op [bool] [on|ignoring (…) [group_left|group_right [(…)]]]
// [fill…]`), and fill, fill_left and fill_right are keywords only when an
// opening parenthesis follows (`fill + fill(0) other` adds the metric
// fill); so a modifier is such a keyword found by walking back over that
// chain to an operator that follows an operand. One that repeats a side
// (`fill(1) fill_left(2)`), or whose value is not a signed number or
// duration, is left out for the parsers to refuse.
func findFillModifiers(toks []durTok) []fillModifier {
	w := newTokenWalk(toks)
	closing, opening, prev, next := w.closing, w.opening, w.prev, w.next
	var out []fillModifier
	seen := make(map[int]*fillModifier) // anchor -> a modifier found there
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.s == "{" {
			for i < len(toks) && toks[i].s != "}" {
				i++ // matchers: no modifiers inside
			}
			continue
		}
		kw := fillKeyword(t)
		open := next(i)
		if kw == "" || open >= len(toks) || toks[open].s != "(" || closing[open] < 0 {
			continue
		}
		fm := fillModifier{start: i, end: closing[open], left: kw != "fill_right", right: kw != "fill_left"}
		v, ok := fillValue(toks[open+1 : closing[open]])
		if !ok {
			continue
		}
		fm.value = v
		if fm.anchor, fm.list, ok = fillAnchor(toks, prev(i), prev, opening); !ok {
			continue
		}
		if other := seen[fm.anchor]; other != nil {
			if (other.left && fm.left) || (other.right && fm.right) {
				continue
			}
		} else {
			seen[fm.anchor] = &fm
		}
		out = append(out, fm)
		i = fm.end
	}
	return out
}

// fillKeyword returns the lower-cased fill keyword t is, or "".
func fillKeyword(t durTok) string {
	if t.kind != tkIdent {
		return ""
	}
	switch s := strings.ToLower(t.s); s {
	case "fill", "fill_left", "fill_right":
		return s
	}
	return ""
}

// fillValue reads the value of a fill modifier from the tokens between
// its parentheses: a number or duration, possibly signed, as Prometheus's
// grammar has it (fill_value).
func fillValue(toks []durTok) (float64, bool) {
	var text strings.Builder
	n := 0
	for _, t := range toks {
		if t.kind == tkSpace {
			continue
		}
		n++
		switch {
		case n == 1 && (t.s == "-" || t.s == "+"):
		case t.kind == tkNumber || t.kind == tkDuration || (t.kind == tkIdent && isNumberWord(t.s)):
			if n > 2 || (n == 2 && text.Len() == 0) {
				return 0, false
			}
		default:
			return 0, false
		}
		text.WriteString(t.s)
	}
	if n == 0 {
		return 0, false
	}
	e, err := promqlParser.ParseExpr(text.String())
	if err != nil {
		return 0, false
	}
	nl, ok := e.(*parser.NumberLiteral)
	if !ok {
		return 0, false
	}
	return nl.Val, true
}

// fillAnchor walks back from token j, the last before a fill modifier,
// over the operation's other modifiers to its operator, and returns where
// the markers go (see fillModifier.anchor). ok is false when the walk
// does not end at a binary operator that follows an operand.
func fillAnchor(toks []durTok, j int, prev func(int) int, opening map[int]int) (anchor int, list, ok bool) {
	// keywordBefore reports whether the parentheses closed at j follow
	// one of the keywords.
	keywordBefore := func(j int, kws ...string) bool {
		if j < 0 || toks[j].s != ")" {
			return false
		}
		o, found := opening[j]
		if !found {
			return false
		}
		k := prev(o)
		return k >= 0 && toks[k].kind == tkIdent && isKeyword(toks[k].s, kws...)
	}
	// A fill modifier before this one (fill_left(…) fill_right(…)).
	if keywordBefore(j, "fill_left", "fill_right") {
		j = prev(prev(opening[j]))
	}
	// group_left or group_right, with or without labels.
	if keywordBefore(j, "group_left", "group_right") {
		j = prev(opening[j])
	}
	if j >= 0 && toks[j].kind == tkIdent && isKeyword(toks[j].s, "group_left", "group_right") {
		j = prev(j)
	}
	anchor = -1
	if keywordBefore(j, "on", "ignoring") {
		anchor, list = j, true
		j = prev(prev(opening[j]))
	}
	if j >= 0 && strings.EqualFold(toks[j].s, "bool") {
		if anchor < 0 {
			anchor = j
		}
		j = prev(j)
	}
	if anchor < 0 {
		anchor = j
	}
	return anchor, list, isOperatorAfterOperand(toks, j, prev)
}

// isOperatorAfterOperand reports whether token j ends a binary operator
// (+, >=, and, …) that follows the end of an operand, not a unary sign.
func isOperatorAfterOperand(toks []durTok, j int, prev func(int) int) bool {
	if j < 0 {
		return false
	}
	k := j
	switch t := toks[j]; {
	case t.kind == tkIdent && isKeyword(t.s, "and", "or", "unless", "atan2"):
	case t.kind == tkPunct && strings.Contains("+-*/%^=<>", t.s):
		// The first character of a two-character operator (==, !=, >=,
		// <=, </, >/) is the token before, with no space between.
		if k > 0 && toks[k-1].kind == tkPunct && strings.Contains("=!<>", toks[k-1].s) {
			k--
		}
	default:
		return false
	}
	p := prev(k)
	return p >= 0 && endsOperand(toks[p])
}

// isKeyword reports whether s is one of the keywords, in any case.
func isKeyword(s string, kws ...string) bool {
	for _, kw := range kws {
		if strings.EqualFold(s, kw) {
			return true
		}
	}
	return false
}

// rewriteFillModifiers writes each fill modifier of q as markers in its
// operation's on() or ignoring() list (see findFillModifiers for what is
// left alone).
func rewriteFillModifiers(q string) string {
	if !containsFold(q, "fill") {
		return q
	}
	toks := lexDur(q)
	mods := findFillModifiers(toks)
	if len(mods) == 0 {
		return q
	}
	markers := make(map[int][]string) // anchor -> its markers
	inList := make(map[int]bool)      // anchor closes a list
	dropped := make([]bool, len(toks))
	for _, m := range mods {
		if m.left {
			markers[m.anchor] = append(markers[m.anchor], fillMarker(fillLeftPrefix, m.value))
		}
		if m.right {
			markers[m.anchor] = append(markers[m.anchor], fillMarker(fillRightPrefix, m.value))
		}
		inList[m.anchor] = m.list
		for k := m.start; k <= m.end; k++ {
			dropped[k] = true
		}
	}
	var b strings.Builder
	b.Grow(len(q) + 40*len(mods))
	for i, t := range toks {
		ms := strings.Join(markers[i], ", ")
		if ms != "" && inList[i] {
			b.WriteString(listSeparator(toks, i) + ms)
		}
		if !dropped[i] {
			b.WriteString(t.s)
		}
		if ms != "" && !inList[i] {
			b.WriteString(" ignoring(" + ms + ")")
		}
	}
	return b.String()
}

// listSeparator is what goes before a label added to the list closed at
// toks[end]: a comma unless the list is empty or ends with one.
func listSeparator(toks []durTok, end int) string {
	j := end - 1
	for j >= 0 && toks[j].kind == tkSpace {
		j--
	}
	if j >= 0 && (toks[j].s == "(" || toks[j].s == ",") {
		return ""
	}
	return ", "
}

// checkFillModifiers refuses a query with fill modifiers as Prometheus
// 3.14 does, with its parser's error (which says where): while the feature
// is off, and while it is on when the parser refuses the query, e.g. for
// a fill before a scalar operand or a set operator, or twice for a side.
// The modifiers are PromQL's: a query that is not valid PromQL (a
// MetricsQL one) cannot use them, as with anchored and smoothed.
func checkFillModifiers(q string, fs Features) error {
	if !containsFold(q, "fill") || len(findFillModifiers(lexDur(q))) == 0 {
		return nil
	}
	p := parser.NewParser(parser.Options{
		EnableExperimentalFunctions: fs.Has(FeatureExperimentalFunctions),
		EnableBinopFillModifiers:    fs.Has(FeatureBinopFillModifiers),
	})
	_, err := p.ParseExpr(q)
	if err == nil && !fs.Has(FeatureBinopFillModifiers) {
		err = fmt.Errorf("parse error: binop fill modifiers are experimental and not enabled")
	}
	if err != nil {
		return badData("invalid parameter \"query\": %w", &SyntaxError{Err: err})
	}
	return nil
}
