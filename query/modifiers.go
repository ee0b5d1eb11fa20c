package query

import (
	"strings"
)

// rewriteModifiedSubqueries parenthesizes an operand that carries an
// `offset` or `@` modifier and is then taken as a subquery, which PromQL
// allows and MetricsQL does not parse: `x @ 100 [5m:1m]` becomes
// `(x @ 100)[5m:1m]`, `x offset 1m [5m:]` becomes `(x offset 1m)[5m:]`.
//
// In Prometheus's grammar (promql/parser/generated_parser.y) the modifiers
// (`expr OFFSET d`, `expr AT t`) and the brackets (`expr [r]`,
// `expr [r:s]`) are postfix operators that bind tighter than every unary
// and binary operator, and they chain in any order: a selector, a
// parenthesized expression, a call or a subquery, then any sequence of
// `offset`, `@`, `[r]` and `[r:s]`. A range `[r]` after a modifier is a
// parse error there (no offset/@ modifiers allowed before range), which
// MetricsQL reports too; a subquery after a modifier is valid: the
// modifiers belong to its inner expression. So the whole class is a
// subquery bracket that follows a modifier in such a chain, and the fix is
// to close the chain so far in parentheses, which does not change its
// meaning. Chains nest (in calls, parentheses and aggregations) and are
// rewritten at every level, as often as a chain needs (`x offset 1m [5m:1m]
// @ 100 [1h:5m]` becomes `((x offset 1m)[5m:1m] @ 100)[1h:5m]`).
//
// Durations must be plain already (rewriteDurations runs first); anything
// this does not recognize is left as it is, for the parser to judge.
func rewriteModifiedSubqueries(q string) string {
	if !strings.Contains(q, "@") && !containsFold(q, "offset") {
		return q
	}
	toks := lexDur(q)
	closing := matchAll(toks)
	opens := make(map[int]int)  // token index -> "(" to write before it
	closes := make(map[int]int) // token index -> ")" to write before it

	// One chain per level of parentheses: where it starts (-1: none) and
	// whether a modifier follows its last bracket.
	type chain struct {
		start    int
		modified bool
	}
	stack := []chain{{start: -1}}
	top := func() *chain { return &stack[len(stack)-1] }
	startChain := func(i int) {
		*top() = chain{start: i}
	}
	// next returns the index of the first non-space token from i.
	next := func(i int) int {
		for i < len(toks) && toks[i].kind == tkSpace {
			i++
		}
		return i
	}
	// operand returns the index of the last token of a modifier's operand
	// starting at i: [sign] literal | (…) | call(…); -1 when there is none.
	operand := func(i int) int {
		i = next(i)
		if i < len(toks) && (toks[i].s == "-" || toks[i].s == "+") {
			i = next(i + 1)
		}
		switch {
		case i >= len(toks):
			return -1
		case toks[i].s == "(":
			return closing[i]
		case toks[i].kind == tkIdent:
			if j := next(i + 1); j < len(toks) && toks[j].s == "(" {
				return closing[j]
			}
			return i
		case toks[i].kind == tkNumber || toks[i].kind == tkDuration:
			return i
		}
		return -1
	}

	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.kind == tkSpace:
		case t.s == "(":
			if closing[i] < 0 {
				return q
			}
			if top().start < 0 || toks[top().start].kind != tkIdent || next(top().start+1) != i {
				startChain(i) // else the parentheses of a call started by its name
			}
			stack = append(stack, chain{start: -1})
		case t.s == ")":
			if len(stack) == 1 {
				return q
			}
			stack = stack[:len(stack)-1]
		case t.s == "{":
			if top().start < 0 || toks[top().start].kind != tkIdent || next(top().start+1) != i {
				startChain(i)
			}
			// Skip the matchers: no chain inside.
			for i < len(toks) && toks[i].s != "}" {
				i++
			}
		case t.s == "[":
			end := closing[i]
			if end < 0 {
				return q
			}
			c := top()
			if c.start >= 0 && c.modified && isSubqueryBracket(toks[i+1:end]) {
				opens[c.start]++
				closes[i]++
			}
			c.modified = false
			i = end
		case t.s == "@" || (t.kind == tkIdent && strings.EqualFold(t.s, "offset")):
			end := operand(i + 1)
			if end < 0 {
				return q
			}
			if top().start >= 0 {
				top().modified = true
			}
			i = end
		case t.kind == tkIdent && !isChainKeyword(t.s):
			startChain(i)
		default:
			// An operator, a comma, a number, a string or a keyword: the
			// chain, if any, has ended.
			*top() = chain{start: -1}
		}
	}
	if len(opens) == 0 {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 2*len(closes))
	for i, t := range toks {
		b.WriteString(strings.Repeat(")", closes[i]))
		b.WriteString(strings.Repeat("(", opens[i]))
		b.WriteString(t.s)
	}
	return b.String()
}

// isSubqueryBracket reports whether the tokens between [ and ] are a
// subquery's range and step (a colon outside parentheses), not a range.
func isSubqueryBracket(toks []durTok) bool {
	d := 0
	for _, t := range toks {
		switch t.s {
		case "(":
			d++
		case ")":
			d--
		case ":":
			if d == 0 {
				return true
			}
		}
	}
	return false
}

// isChainKeyword reports whether an identifier is a keyword that cannot
// start an operand (a binary operator or a modifier of one).
func isChainKeyword(s string) bool {
	switch strings.ToLower(s) {
	case "and", "or", "unless", "atan2", "by", "without", "on", "ignoring",
		"group_left", "group_right", "bool", "offset", "default", "if", "ifnot":
		return true
	}
	return false
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), sub)
}
