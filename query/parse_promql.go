package query

import (
	"fmt"
	"math"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
)

// PromQL 3 has functions and operators the MetricsQL parser does not
// know: histogram_count and histogram_sum, and the trim operators </ and
// >/ of native histograms; and metric names MetricsQL takes for its own
// aggregations (a metric called histogram). Before parsing they are
// written as something MetricsQL reads with the same shape and precedence
// (a function it knows, in capitals, which PromQL names never are; a
// comparison with a marker label first in its on() or ignoring(); a
// {__name__="…"} selector), and restorePromQLOnly turns them back once
// parsed.

// funcCarriers maps a PromQL-only function to the name it is parsed as.
var funcCarriers = map[string]string{
	"histogram_count": "BITMAP_AND",
	"histogram_sum":   "BITMAP_OR",
	// The experimental functions (Options.Features).
	"info":                  "BITMAP_XOR",
	"ts_of_min_over_time":   "TMIN_OVER_TIME",
	"ts_of_max_over_time":   "TMAX_OVER_TIME",
	"ts_of_first_over_time": "TFIRST_OVER_TIME",
	"ts_of_last_over_time":  "TLAST_OVER_TIME",
}

var carrierNames = func() map[string]string {
	m := map[string]string{}
	for k, v := range funcCarriers {
		m[v] = k
	}
	return m
}()

// limitRatioCarrier wraps the parameter of limit_ratio, which is parsed
// as limitk (MetricsQL lowercases aggregation names, so a capitalized
// name cannot carry it): limit_ratio(0.5, x) is limitk(PROMETHEUS_BUCKETS(0.5), x).
const limitRatioCarrier = "PROMETHEUS_BUCKETS"

// The marker labels of the trim operators: without a matching modifier,
// and first in the label list of one.
const (
	trimUpperLabel    = "__trim_upper__"
	trimLowerLabel    = "__trim_lower__"
	trimUpperModLabel = "__trim_upper_m__"
	trimLowerModLabel = "__trim_lower_m__"
)

// promqlAggrs are PromQL's aggregation operators.
var promqlAggrs = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

// labelListKeywords are followed by a list of label names.
var labelListKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// rewritePromQLOnly writes q's PromQL-only functions, operators and
// metric names in a form MetricsQL parses. String literals, label
// matchers and label lists are left alone.
func rewritePromQLOnly(q string) string {
	var b strings.Builder
	b.Grow(len(q))
	quote := byte(0)
	braces := 0
	labelList := false         // in the ( … ) after by, on, …
	next := func(i int) byte { // the next byte that is not a blank
		for ; i < len(q); i++ {
			if c := q[i]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				return c
			}
		}
		return 0
	}
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			b.WriteByte(c)
			if c == '\\' && quote != '`' && i+1 < len(q) {
				i++
				b.WriteByte(q[i])
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
			b.WriteByte(c)
		case c == '{':
			braces++
			b.WriteByte(c)
		case c == '}':
			braces--
			b.WriteByte(c)
		case c == ')':
			labelList = false
			b.WriteByte(c)
		case (c == '<' || c == '>') && i+1 < len(q) && q[i+1] == '/' && braces == 0:
			i = writeTrim(&b, q, i, c == '<')
		case isIdentStart(c) && (i == 0 || !isIdentByte(q[i-1])):
			j := i
			for j < len(q) && isIdentByte(q[j]) {
				j++
			}
			id := q[i:j]
			nc := next(j)
			switch {
			case braces > 0 || labelList:
				b.WriteString(id)
			case labelListKeywords[strings.ToLower(id)] && nc == '(':
				labelList = true
				b.WriteString(id)
			case funcCarriers[id] != "" && nc == '(':
				b.WriteString(funcCarriers[id])
			case id == "limit_ratio":
				if comma, open, ok := aggrParam(q, j); ok {
					b.WriteString("limitk" + q[j:open+1] + limitRatioCarrier + "(" + rewritePromQLOnly(q[open+1:comma]) + ")")
					j = comma
				} else {
					b.WriteString(id)
				}
			case nc != '(' && !promqlAggrs[strings.ToLower(id)] && metricsql.IsAggrFunc(id) && !isNumberWord(id) && !grouped(q[j:]):
				// A metric named like a MetricsQL aggregation.
				if nc == '{' {
					for j < len(q) && q[j] != '{' {
						j++
					}
					j++ // past {
					b.WriteString(`{__name__="` + id + `",`)
					braces++
				} else {
					b.WriteString(`{__name__="` + id + `"}`)
				}
			default:
				b.WriteString(id)
			}
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// writeTrim writes the trim operator at q[i:i+2] as a comparison with a
// marker label, joining a matching modifier that follows it, and returns
// the index of the last byte consumed.
func writeTrim(b *strings.Builder, q string, i int, upper bool) int {
	op, plain, mod := ">", trimLowerLabel, trimLowerModLabel
	if upper {
		op, plain, mod = "<", trimUpperLabel, trimUpperModLabel
	}
	j := i + 2
	for j < len(q) && (q[j] == ' ' || q[j] == '\t' || q[j] == '\n') {
		j++
	}
	for _, kw := range []string{"on", "ignoring"} {
		rest := q[j:]
		if !strings.HasPrefix(rest, kw) || (len(rest) > len(kw) && isIdentByte(rest[len(kw)])) {
			continue
		}
		k := j + len(kw)
		for k < len(q) && (q[k] == ' ' || q[k] == '\t' || q[k] == '\n') {
			k++
		}
		if k >= len(q) || q[k] != '(' {
			continue
		}
		b.WriteString(op + " " + kw + "(" + mod)
		k++
		for k < len(q) && (q[k] == ' ' || q[k] == '\t' || q[k] == '\n') {
			k++
		}
		if k < len(q) && q[k] != ')' {
			b.WriteString(", ")
		}
		return k - 1
	}
	b.WriteString(op + " on(" + plain + ")")
	return i + 1
}

// aggrParam finds, for an aggregation whose name ends at q[j], the opening
// parenthesis of its arguments (after a by or without list that comes
// first) and the comma that ends its first argument.
func aggrParam(q string, j int) (comma, open int, ok bool) {
	skip := func(i int) int {
		for i < len(q) && (q[i] == ' ' || q[i] == '\t' || q[i] == '\n' || q[i] == '\r') {
			i++
		}
		return i
	}
	// closing returns the index just past the group q[i] opens, or -1;
	// with stopAtComma, the index of its first comma at depth 1.
	closing := func(i int, stopAtComma bool) int {
		depth, quote := 0, byte(0)
		for ; i < len(q); i++ {
			c := q[i]
			switch {
			case quote != 0:
				if c == '\\' && quote != '`' {
					i++
				} else if c == quote {
					quote = 0
				}
			case c == '"' || c == '\'' || c == '`':
				quote = c
			case c == '(' || c == '[' || c == '{':
				depth++
			case c == ')' || c == ']' || c == '}':
				depth--
				if depth == 0 {
					return i + 1
				}
			case c == ',' && depth == 1 && stopAtComma:
				return i
			}
		}
		return -1
	}
	i := skip(j)
	if grouped(q[i:]) {
		for i < len(q) && isIdentByte(q[i]) {
			i++
		}
		i = skip(i)
		if i >= len(q) || q[i] != '(' {
			return 0, 0, false
		}
		if i = closing(i, false); i < 0 {
			return 0, 0, false
		}
		i = skip(i)
	}
	if i >= len(q) || q[i] != '(' {
		return 0, 0, false
	}
	c := closing(i, true)
	if c < 0 || q[c] != ',' {
		return 0, 0, false
	}
	return c, i, true
}

// grouped reports whether rest starts with by or without: an aggregation
// with its modifier first, as MetricsQL allows.
func grouped(rest string) bool {
	rest = strings.TrimLeft(rest, " \t\n\r")
	for _, kw := range []string{"by", "without"} {
		if len(rest) >= len(kw) && strings.EqualFold(rest[:len(kw)], kw) && (len(rest) == len(kw) || !isIdentByte(rest[len(kw)])) {
			return true
		}
	}
	return false
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentByte(c byte) bool {
	return isIdentStart(c) || (c >= '0' && c <= '9')
}

// isNumberWord reports whether an identifier is a number (Inf, NaN).
func isNumberWord(id string) bool {
	switch strings.ToLower(id) {
	case "inf", "nan":
		return true
	}
	return false
}

// restorePromQLOnly turns the carriers of rewritePromQLOnly back into
// the PromQL functions and operators.
func restorePromQLOnly(e metricsql.Expr) {
	walk(e, func(x metricsql.Expr) {
		switch x := x.(type) {
		case *metricsql.FuncExpr:
			if n, ok := carrierNames[x.Name]; ok {
				x.Name = n
			}
		case *metricsql.AggrFuncExpr:
			if x.Name != "limitk" || len(x.Args) == 0 {
				return
			}
			if fe, ok := x.Args[0].(*metricsql.FuncExpr); ok && fe.Name == limitRatioCarrier && len(fe.Args) == 1 {
				x.Name, x.Args[0] = "limit_ratio", fe.Args[0]
			}
		case *metricsql.BinaryOpExpr:
			if isUnaryMinus(x) {
				// -x is x negated, a histogram too (0 - histogram is
				// an incompatible pair): -1 * x.
				x.Op, x.Left = "*", &metricsql.NumberExpr{N: -1}
				return
			}
			args := x.GroupModifier.Args
			if len(args) == 0 {
				return
			}
			switch {
			case x.Op == "<" && (args[0] == trimUpperLabel || args[0] == trimUpperModLabel):
				x.Op = "</"
			case x.Op == ">" && (args[0] == trimLowerLabel || args[0] == trimLowerModLabel):
				x.Op = ">/"
			default:
				return
			}
			if args[0] == trimUpperLabel || args[0] == trimLowerLabel {
				x.GroupModifier = metricsql.ModifierExpr{}
			} else {
				x.GroupModifier.Args = args[1:]
			}
		}
	})
}

// isTrim reports whether op is one of the trim operators of native
// histograms.
func isTrim(op string) bool { return op == "</" || op == ">/" }

// isUnaryMinus reports whether be is metricsql's `0 - x` for `-x`: its 0
// has no text of its own, unlike a 0 the query wrote.
func isUnaryMinus(be *metricsql.BinaryOpExpr) bool {
	n, ok := be.Left.(*metricsql.NumberExpr)
	if be.Op != "-" || !ok || n.N != 0 || math.Signbit(n.N) {
		return false
	}
	if _, isNum := be.Right.(*metricsql.NumberExpr); isNum {
		return false
	}
	return string(n.AppendString(nil)) == "0" && fmt.Sprintf("%#v", n) == `&metricsql.NumberExpr{N:0, s:""}`
}
