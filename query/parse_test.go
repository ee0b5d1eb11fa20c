package query

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/stretchr/testify/require"
)

func TestNesting(t *testing.T) {
	f := func(q string, want int) {
		t.Helper()
		require.Equal(t, want, nesting(q), "%s", q)
	}
	f(`up`, 0)
	f(`sum(rate(m{a="b"}[5m]))`, 3)
	f(`((1)) + (((2)))`, 3)
	f(`m{a="(((("}`, 1)
	f(`m{a='(((('}`, 1)
	f("m{a=`((((`}", 1)
	// A quote after an odd number of backslashes does not end a string,
	// in any quoting (metricsql's scanString): the brackets after it are
	// still inside.
	f(`m{a="\"((("}`, 1)
	f("m{a=`\\`(((`}", 1)
	f(`m{a="\\"} + ((1))`, 2)
	// Comments run to the end of the line, not of the query.
	f("# (((\n(1)", 1)
	f("(1) # (((", 1)
	// An escaped bracket is part of an identifier.
	f(`a\(b`, 0)
	// Unbalanced closing brackets do not go below zero.
	f(`)))((`, 2)
	f(strings.Repeat("(", 400_000)+"1"+strings.Repeat(")", 400_000), 400_000)
}

// withBomb is `WITH (a0=1, a1=a0+a0, …, an=an-1+an-1) an`: 2^n terms.
func withBomb(n int) string {
	var b strings.Builder
	b.WriteString("WITH (a0=1")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, ", a%d=a%d+a%d", i, i-1, i-1)
	}
	fmt.Fprintf(&b, ") a%d", n)
	return b.String()
}

func TestExpandedTermsRefusesBombs(t *testing.T) {
	bombs := map[string]string{
		"doubling":   withBomb(26),
		"escaped":    strings.ReplaceAll(withBomb(26), "+a", `+a\x`+"3"), // a\x3N+… names aN too
		"params":     "WITH (f(x) = x + x) " + strings.Repeat("f(", 26) + "m" + strings.Repeat(")", 26),
		"builtin ru": strings.Repeat("ru(m, ", 26) + "m" + strings.Repeat(")", 26),
		"aggregate":  "WITH (sum(x) = x + x) " + strings.Repeat("SUM(", 26) + "m" + strings.Repeat(")", 26),
		"by":         "WITH (sum(x) = x + x) " + strings.Repeat("sum by (a) (", 26) + "m" + strings.Repeat(")", 26),
		"no-arg ()":  "WITH (f() = m + m, g() = f + f(), h() = g + g(), i() = h + h(), j = i + i()) " + strings.Repeat("j + ", 2000) + "j",
		"nested":     "WITH (a = 1) (WITH (b = " + strings.Repeat("a + ", 50) + "a) WITH (c = " + strings.Repeat("b + ", 50) + "b) WITH (d = " + strings.Repeat("c + ", 50) + "c) d)",
		"comment":    "# WITH is not in a comment after a newline\n" + withBomb(26),
		// A function name in an argument is looked up again where the
		// parameter is used (metricsql re-expands arguments): a() is the
		// first argument there.
		"captured": "WITH (g(a, b) = b + b) " + strings.Repeat("g(", 26) + "m" + strings.Repeat(", a())", 26),
	}
	for name, q := range bombs {
		t.Run(name, func(t *testing.T) {
			n, ok := expandedTerms(q, DefaultMaxTerms)
			require.False(t, ok, "%d terms", n)
			_, err := Parse(q)
			var qe *Error
			require.ErrorAs(t, err, &qe)
			require.Equal(t, ErrBadData, qe.Type)
			require.ErrorContains(t, err, "the limit is 20000 (--query.max-terms)")
		})
	}
	require.Less(t, len(withBomb(26)), 330, "the bomb is small")
}

// exprNodes counts the nodes of e (modifiers left out).
func exprNodes(e metricsql.Expr) int {
	n := 0
	metricsql.VisitAll(e, func(x metricsql.Expr) {
		if _, mod := x.(*metricsql.ModifierExpr); !mod {
			n++
		}
	})
	return n
}

// TestExpandedTermsBoundMetricsQL: the terms counted are never fewer than
// the nodes of metricsql's expansion, so the count bounds its work.
func TestExpandedTermsBoundMetricsQL(t *testing.T) {
	for _, q := range []string{
		`sum(rate(m[5m])) by (job)`,
		`WITH (a0=1, a1=a0+a0, a2=a1+a1) a2`,
		`WITH (a0=m, a1=a0+a0, a2=a1+a1, a3=a2+a2) a3`,
		`WITH (f(x) = x + x) f(f(f(m)))`,
		`WITH (g(a, b) = b+b) g(g(g(m, a), a), a)`,
		`WITH (g(a, b) = b + b) g(g(g(m, a()), a()), a())`,
		`ru(m, ru(m, ru(m, m)))`,
		`ttf(ttf(m))`,
		`alias(range_median(m), "x")`,
		`WITH (x = {a="b"}) x + m{x}`,
		`WITH (x = {a="b"}, y = x{c="d"}) y + y`,
		`WITH (w = 5m) rate(m[w])`,
		`WITH (sum(x) = x + x) SUM(SUM(m))`,
		`WITH (sum(x) = x + x) sum by (a) (sum(m))`,
		`WITH (f(x) = x) WITH (g(y) = f(y)+f(y)) g(g(m))`,
		`WITH (a = 1) (WITH (b = a + a) b) + a`,
		`WITH (a = m) sum(WITH (a = n) a, a)`,
		`WITH (f() = m + m) f + f()`,
		`WITH (s = "x") label_set(m, "a", s + "y")`,
		`WITH (rf(a, b) = rate(a[b])) rf(m, 5m) + rf(n, 1m)`,
		`WITH (f(x) = WITH (g(y) = y + x) g(x) + g(1)) f(f(m))`,
		`WITH (m2 = m offset 5m) m2 + m2 @ end()`,
		`-(-(-m))`,
	} {
		e, err := metricsql.Parse(q)
		require.NoError(t, err, q)
		got, ok := expandedTerms(q, DefaultMaxTerms)
		require.True(t, ok, q)
		// Unary minus is parsed as 0 - x: one node more per minus.
		require.LessOrEqual(t, exprNodes(e), got+strings.Count(q, "-"), "%s expands to %s", q, e.AppendString(nil))
	}
}

// FuzzExpandedTerms checks on any query metricsql expands that the terms
// counted bound metricsql's: a query the count lets through cannot
// expand into more.
func FuzzExpandedTerms(f *testing.F) {
	for _, s := range []string{
		`WITH (f(x) = x + x) f(f(m))`,
		`WITH (a = 1, b = a + a) b * b`,
		`ru(m, ru(m, m))`,
		`WITH (g(a, b) = b + b) g(g(m, a()), a())`,
		`WITH (x = {a="b"}) sum(x) by (j)`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		n, ok := expandedTerms(q, 2000)
		if !ok || len(q) > 2000 || nesting(q) > 100 {
			return // metricsql might take long: the point of the count
		}
		e, err := metricsql.Parse(q)
		if err != nil {
			return
		}
		require.LessOrEqual(t, exprNodes(e), n+strings.Count(q, "-"), "%s expands to %s", q, e.AppendString(nil))
	})
}

// TestParseBounds: every exported entry point that parses holds the
// bounds, with an error of the bad-data kind naming the limit.
func TestParseBounds(t *testing.T) {
	deep := strings.Repeat("(", 100_000) + "1" + strings.Repeat(")", 100_000)
	long := "m{a=\"" + strings.Repeat("x", DefaultMaxQueryLength) + "\"}"
	for name, c := range map[string]struct{ q, msg string }{
		"deep":  {deep, "query is nested 100000 deep; the limit is 1000 (--query.max-depth)"},
		"long":  {long, "the limit is 262144 (--query.max-length)"},
		"terms": {withBomb(26), "(--query.max-terms)"},
	} {
		t.Run(name, func(t *testing.T) {
			var qe *Error
			_, err := Parse(c.q)
			require.ErrorAs(t, err, &qe)
			require.Equal(t, ErrBadData, qe.Type)
			require.ErrorContains(t, err, c.msg)
			_, _, err = PinAt(c.q, 0)
			require.ErrorContains(t, err, c.msg)
			_, err = Selectors(c.q)
			require.ErrorContains(t, err, c.msg)
			_, err = ParseSelector(c.q)
			require.ErrorIs(t, err, ErrBadSelector)
			require.ErrorContains(t, err, c.msg)
			require.False(t, cacheable(c.q))
		})
	}
	// The limits are options of the engine; zero is the default.
	o := Options{MaxQueryLength: 1 << 20}
	o.ensureDefaults()
	_, err := parseQuery(strings.Repeat("(", 400_000)+"1"+strings.Repeat(")", 400_000), 0, 0, o.parseLimits())
	require.ErrorContains(t, err, "query is nested 400000 deep; the limit is 1000 (--query.max-depth)")
	o = Options{MaxDepth: 3, MaxTerms: 5, MaxQueryLength: 20}
	o.ensureDefaults()
	_, err = parseQuery("((((1))))", 0, 0, o.parseLimits())
	require.ErrorContains(t, err, "query is nested 4 deep; the limit is 3 (--query.max-depth)")
	_, err = parseQuery("1 + 2 + 3 + 4", 0, 0, o.parseLimits())
	require.ErrorContains(t, err, "the limit is 5 (--query.max-terms)")
	_, err = parseQuery("sum(rate(metric_name[5m]))", 0, 0, o.parseLimits())
	require.ErrorContains(t, err, "query is 26 bytes long; the limit is 20 (--query.max-length)")
	_, err = parseQuery("m[1m]", 0, 0, o.parseLimits())
	require.NoError(t, err)
}

func TestRewriteDurationsLinear(t *testing.T) {
	// A comment ends at its line: what follows is still rewritten.
	got, err := rewriteDurations("rate(m[1m+1m]) # a [comment\n + rate(m[2*1m])", 0, 0)
	require.NoError(t, err)
	require.Equal(t, "rate(m[120000ms]) # a [comment\n + rate(m[120000ms])", got)
	// 999 unclosed brackets before 250 KB of terms: each used to scan to
	// the end for its match.
	q := strings.Repeat("[", 999) + strings.Repeat("m+", 125_000) + "m"
	start := time.Now()
	_, err = rewriteDurations(q, 0, 0)
	require.NoError(t, err)
	require.Less(t, time.Since(start), 2*time.Second)
}

// TestExpandedTermsConcurrent: the built-in templates are shared by every
// query; expanding them at once must not race (run with -race).
func TestExpandedTermsConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				_, ok := expandedTerms(`ru(m, ru(m, m)) + ttf(m) + alias(range_median(m), "x")`, DefaultMaxTerms)
				require.True(t, ok)
			}
		})
	}
	wg.Wait()
}

// TestParseErrorsAsPrometheus: a query neither parser accepts gets
// Prometheus's error, position and wording; one MetricsQL accepts parses.
func TestParseErrorsAsPrometheus(t *testing.T) {
	f := func(q, want string) {
		t.Helper()
		_, err := parseQuery(q, 0, 0, defaultParseLimits)
		var qe *Error
		require.ErrorAs(t, err, &qe, "%s", q)
		require.Equal(t, ErrBadData, qe.Type)
		require.EqualError(t, err, `invalid parameter "query": `+want, "%s", q)
	}
	f(`x +`, `1:4: parse error: unexpected end of input`)
	f(`sum(x) by`, `1:10: parse error: unexpected end of input in grouping opts, expected "("`)
	f(`rate(x[5m]`, `1:11: parse error: unclosed left parenthesis`)
	f(`{a="b"`, `1:7: parse error: unexpected end of input inside braces`)
	f(`x )`, `1:4: parse error: unexpected right parenthesis ')'`)
	f(`1 +* 2`, `1:4: parse error: unexpected <op:*>`)
	f(`x[5x]`, `1:3: parse error: bad number or duration syntax: "5"`)
	f(`foo(x)`, `1:1: parse error: unknown function with name "foo"`)
	f(`x offset 1m [5m]`, `1:13: parse error: no offset modifiers allowed before range`)
	f(`rate(x[5m+1m]`, `1:14: parse error: unclosed left parenthesis`)
	// MetricsQL that is not PromQL still parses.
	for _, q := range []string{`x[5m5m]`, `rate(x)`, `WITH (a = x) a + 1`, `sum(x) default 0`, `x{a="1" or b="2"}`} {
		_, err := parseQuery(q, 0, 0, defaultParseLimits)
		require.NoError(t, err, "%s", q)
	}
}
