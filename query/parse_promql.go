package query

import (
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
)

// PromQL 3 has functions and operators the MetricsQL parser does not
// know: histogram_count and histogram_sum, and the trim operators </ and
// >/ of native histograms. Before parsing they are written as something
// MetricsQL reads with the same shape and precedence (a function it
// knows, in capitals, which PromQL names never are; a comparison with a
// marker on() label), and restorePromQLOnly turns them back once parsed.

// funcCarriers maps a PromQL-only function to the name it is parsed as.
var funcCarriers = map[string]string{
	"histogram_count": "BITMAP_AND",
	"histogram_sum":   "BITMAP_OR",
}

var (
	carriedFuncs = regexp.MustCompile(`\bhistogram_(count|sum)\s*\(`)
	carrierNames = map[string]string{"BITMAP_AND": "histogram_count", "BITMAP_OR": "histogram_sum"}
)

// The marker labels of the trim operators.
const (
	trimUpperLabel = "__trim_upper__"
	trimLowerLabel = "__trim_lower__"
)

// rewritePromQLOnly writes q's PromQL-only functions and operators in a
// form MetricsQL parses. String literals are left alone.
func rewritePromQLOnly(q string) string {
	if !strings.Contains(q, "histogram_") && !strings.Contains(q, "</") && !strings.Contains(q, ">/") {
		return q
	}
	var b strings.Builder
	quote := byte(0)
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
		case c == '<' && i+1 < len(q) && q[i+1] == '/':
			b.WriteString("< on(" + trimUpperLabel + ")")
			i++
		case c == '>' && i+1 < len(q) && q[i+1] == '/':
			b.WriteString("> on(" + trimLowerLabel + ")")
			i++
		case c == 'h':
			if loc := carriedFuncs.FindStringIndex(q[i:]); loc != nil && loc[0] == 0 && (i == 0 || !isIdentByte(q[i-1])) {
				m := q[i : i+loc[1]]
				name := strings.TrimRight(m[:len(m)-1], " \t\n")
				b.WriteString(funcCarriers[name])
				b.WriteString(m[len(name):])
				i += loc[1] - 1
				continue
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isIdentByte(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
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
		case *metricsql.BinaryOpExpr:
			if isUnaryMinus(x) {
				// -x is x negated, a histogram too (0 - histogram is
				// an incompatible pair): -1 * x.
				x.Op, x.Left = "*", &metricsql.NumberExpr{N: -1}
				return
			}
			if x.GroupModifier.Op == "on" && len(x.GroupModifier.Args) == 1 {
				switch {
				case x.Op == "<" && x.GroupModifier.Args[0] == trimUpperLabel:
					x.Op = "</"
				case x.Op == ">" && x.GroupModifier.Args[0] == trimLowerLabel:
					x.Op = ">/"
				default:
					return
				}
				x.GroupModifier = metricsql.ModifierExpr{}
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
