package query

import (
	"fmt"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/promql/parser/posrange"
)

// The anchored and smoothed modifiers of selectors (Prometheus's
// promql-extended-range-selectors): `rate(x[5m] anchored)`,
// `increase(x[1m] smoothed)`, `x smoothed`. MetricsQL has no such
// modifier, so before parsing the keyword is taken out of the query and
// written into its selector as a marker matcher (`x{__anchored__=""}[5m]`)
// that the evaluator reads back. A marker matches every series (none has
// the label), so a path that ignores it still selects what the query
// names; and it survives printing the expression and parsing it again
// (PinAt).

// The marker labels.
const (
	anchoredLabel = "__anchored__"
	smoothedLabel = "__smoothed__"
)

// rangeMod is the modifier of a selector.
type rangeMod uint8

const (
	modNone rangeMod = iota
	modAnchored
	modSmoothed
)

func (m rangeMod) String() string {
	switch m {
	case modAnchored:
		return "anchored"
	case modSmoothed:
		return "smoothed"
	}
	return ""
}

// rangeModOf reads the marker of a selector.
func rangeModOf(me *metricsql.MetricExpr) rangeMod {
	for _, lfs := range me.LabelFilterss {
		for _, lf := range lfs {
			if lf.Value != "" || lf.IsRegexp || lf.IsNegative {
				continue
			}
			switch lf.Label {
			case anchoredLabel:
				return modAnchored
			case smoothedLabel:
				return modSmoothed
			}
		}
	}
	return modNone
}

// extendedModifier is an anchored or smoothed keyword in a query.
type extendedModifier struct {
	mod rangeMod
	tok int // the keyword's token
	// sel is the first token of the selector it modifies, -1 when it
	// modifies something else (a subquery, an expression in parentheses),
	// which only Prometheus's parser words the error for.
	sel int
	// mark is the token the marker is written at: before a closing brace,
	// or after a metric name without braces.
	mark int
}

// findExtendedModifiers finds the anchored and smoothed keywords of a
// query and the selectors they modify. In Prometheus's grammar (`expr
// ANCHORED`, `expr SMOOTHED`) the keyword is a postfix operator like
// offset and @, and elsewhere a metric or label name; so it is a modifier
// where it follows the end of an operand, and its selector is found by
// walking back over the chain of brackets, offsets and @s before it.
// tokenWalk is how the modifier finders (anchored/smoothed, fill) walk a
// query's tokens: its brackets paired both ways, and the nearest tokens
// that are not spaces.
type tokenWalk struct {
	toks    []durTok
	closing []int       // by opening bracket, its closing one (-1: none)
	opening map[int]int // by closing bracket, its opening one
}

func newTokenWalk(toks []durTok) *tokenWalk {
	w := &tokenWalk{toks: toks, closing: matchAll(toks), opening: map[int]int{}}
	for i, c := range w.closing {
		if c >= 0 {
			w.opening[c] = i
		}
	}
	return w
}

// prev is the first token before i that is not a space, or -1.
func (w *tokenWalk) prev(i int) int {
	for i--; i >= 0 && w.toks[i].kind == tkSpace; i-- {
	}
	return i
}

// next is the first token after i that is not a space (len(toks): none).
func (w *tokenWalk) next(i int) int {
	for i++; i < len(w.toks) && w.toks[i].kind == tkSpace; i++ {
	}
	return i
}

func findExtendedModifiers(toks []durTok) []extendedModifier {
	w := newTokenWalk(toks)
	opening, prev := w.opening, w.prev
	var out []extendedModifier
	braces := 0
	for i, t := range toks {
		switch {
		case t.s == "{":
			braces++
		case t.s == "}":
			braces--
		case braces > 0 || t.kind != tkIdent:
		case strings.EqualFold(t.s, "anchored"), strings.EqualFold(t.s, "smoothed"):
			p := prev(i)
			if p < 0 || !endsOperand(toks[p]) {
				continue // a metric or label name
			}
			m := extendedModifier{mod: modAnchored, tok: i, sel: -1, mark: -1}
			if strings.EqualFold(t.s, "smoothed") {
				m.mod = modSmoothed
			}
			m.sel, m.mark = chainSelector(toks, p, prev, opening)
			out = append(out, m)
		}
	}
	return out
}

// endsOperand reports whether an operand can end with t.
func endsOperand(t durTok) bool {
	switch {
	case t.s == "]" || t.s == "}" || t.s == ")":
		return true
	case t.kind == tkNumber || t.kind == tkDuration:
		return true
	case t.kind == tkIdent:
		return !isChainKeyword(t.s) && !strings.EqualFold(t.s, "anchored") && !strings.EqualFold(t.s, "smoothed")
	}
	return false
}

// chainSelector walks back from token j, the end of a chain such as
// `x{a="b"}[5m] offset 1m @ 100`, to its selector: the selector's first
// token and where its marker goes, or -1, -1 when the chain does not
// start with a selector or has a subquery.
func chainSelector(toks []durTok, j int, prev func(int) int, opening map[int]int) (sel, mark int) {
	for j >= 0 {
		t := toks[j]
		switch {
		case t.s == "]":
			o, ok := opening[j]
			if !ok || isSubqueryBracket(toks[o+1:j]) {
				return -1, -1
			}
			j = prev(o)
		case t.kind == tkNumber || t.kind == tkDuration || t.s == ")":
			// The operand of an offset or @: a number, a duration,
			// start() or end(), possibly signed.
			k := j
			if t.s == ")" {
				o, ok := opening[j]
				if !ok {
					return -1, -1
				}
				if k = prev(o); k < 0 || toks[k].kind != tkIdent {
					return -1, -1
				}
			}
			b := prev(k)
			if b >= 0 && (toks[b].s == "-" || toks[b].s == "+") {
				b = prev(b)
			}
			if b < 0 || (toks[b].s != "@" && !strings.EqualFold(toks[b].s, "offset")) {
				return -1, -1
			}
			j = prev(b)
		case t.s == "}":
			o := j
			for o >= 0 && toks[o].s != "{" {
				o--
			}
			if o < 0 {
				return -1, -1
			}
			if n := prev(o); n >= 0 && toks[n].kind == tkIdent && !isChainKeyword(toks[n].s) {
				return n, j // the metric name
			}
			return o, j
		case t.kind == tkIdent && !isChainKeyword(t.s):
			return j, j
		default:
			return -1, -1
		}
	}
	return -1, -1
}

// rewriteExtendedSelectors writes each anchored or smoothed keyword as a
// marker in its selector. A keyword whose selector is not found, or
// whose selector has a modifier already, stays: the parsers refuse the
// query, Prometheus's with its wording.
func rewriteExtendedSelectors(q string) string {
	if !containsFold(q, "anchored") && !containsFold(q, "smoothed") {
		return q
	}
	toks := lexDur(q)
	mods := findExtendedModifiers(toks)
	if len(mods) == 0 {
		return q
	}
	insert := make(map[int]string) // token index -> text written after it
	drop := make(map[int]bool)
	for _, m := range mods {
		if m.mark < 0 || insert[m.mark] != "" {
			continue
		}
		label := anchoredLabel
		if m.mod == modSmoothed {
			label = smoothedLabel
		}
		if toks[m.mark].s == "}" {
			insert[m.mark-1] = markerInBraces(toks, m.mark, label)
		} else {
			insert[m.mark] = "{" + label + `=""}`
		}
		drop[m.tok] = true
	}
	var b strings.Builder
	b.Grow(len(q) + 32*len(mods))
	for i, t := range toks {
		if !drop[i] {
			b.WriteString(t.s)
		}
		b.WriteString(insert[i])
	}
	return b.String()
}

// markerInBraces is the marker matcher written before the closing brace
// at toks[end], with the comma it needs.
func markerInBraces(toks []durTok, end int, label string) string {
	j := end - 1
	for j >= 0 && toks[j].kind == tkSpace {
		j--
	}
	if j >= 0 && (toks[j].s == "{" || toks[j].s == ",") {
		return label + `=""`
	}
	return "," + label + `=""`
}

// checkExtendedSelectors refuses, with Prometheus 3.14's error, a query
// that uses anchored or smoothed while the feature is off. NB: the
// Prometheus parser we link (3.16) accepts them always, so it cannot say.
func checkExtendedSelectors(q string, fs Features) error {
	if fs.Has(FeatureExtendedRangeSelectors) || (!containsFold(q, "anchored") && !containsFold(q, "smoothed")) {
		return nil
	}
	toks := lexDur(q)
	mods := findExtendedModifiers(toks)
	if len(mods) == 0 {
		return nil
	}
	m := mods[0]
	at := m.sel
	if at < 0 {
		at = m.tok
	}
	pos := 0
	for _, t := range toks[:at] {
		pos += len(t.s)
	}
	where := posrange.PositionRange{Start: posrange.Pos(pos)}.StartPosInput(q, 0)
	err := fmt.Errorf("%s: parse error: %s modifier is experimental and not enabled", where, m.mod)
	return badData("invalid parameter \"query\": %w", &SyntaxError{Err: err})
}
