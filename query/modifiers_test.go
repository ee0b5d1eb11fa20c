package query

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRewriteModifiedSubqueries(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		require.Equal(t, want, rewriteModifiedSubqueries(in), "%s", in)
	}
	// The three.
	f(`irate(x @ 1796405400 [5m:5m])`, `irate((x @ 1796405400 )[5m:5m])`)
	f(`avg_over_time(x offset 1m [5m:30s])`, `avg_over_time((x offset 1m )[5m:30s])`)
	f(`present_over_time(x @ start() [10m:1m] offset 3h)`, `present_over_time((x @ start() )[10m:1m] offset 3h)`)
	// Selectors with matchers, bare matchers, negative and signed operands,
	// both modifiers in either order, no step, no spaces, upper case.
	f(`x{a="b"} offset -1m [5m:]`, `(x{a="b"} offset -1m )[5m:]`)
	f(`{__name__="x"} @ end() offset 1m[5m:1m]`, `({__name__="x"} @ end() offset 1m)[5m:1m]`)
	f(`x OFFSET 1m @ -5 [5m:1m]`, `(x OFFSET 1m @ -5 )[5m:1m]`)
	f(`x @ 1e9 [5m:1m]`, `(x @ 1e9 )[5m:1m]`)
	// Chains of subqueries with modifiers between them.
	f(`x offset 1m [5m:1m] @ 100 [1h:5m]`, `((x offset 1m )[5m:1m] @ 100 )[1h:5m]`)
	f(`x[5m:1m] offset 1m [10m:1m]`, `(x[5m:1m] offset 1m )[10m:1m]`)
	// Parentheses, calls and aggregations as operands, and at every level.
	f(`(x + y) offset 1m [5m:1m]`, `((x + y) offset 1m )[5m:1m]`)
	f(`sum by (job) (rate(x offset 1m [5m:1m]))`, `sum by (job) (rate((x offset 1m )[5m:1m]))`)
	f(`a + b @ 1 [5m:1m] * c`, `a + (b @ 1 )[5m:1m] * c`)
	f(`-x offset 1m [5m:1m]`, `-(x offset 1m )[5m:1m]`)
	// Unchanged: no modifier before a subquery, a range after a modifier
	// (a parse error in both languages), modifiers after a bracket.
	f(`rate(x[5m] offset 1m)`, `rate(x[5m] offset 1m)`)
	f(`x offset 1m [5m]`, `x offset 1m [5m]`)
	f(`max_over_time(x[1h:5m] offset 10m)`, `max_over_time(x[1h:5m] offset 10m)`)
	f(`x{a="@ offset 1m [5m:1m]"}`, `x{a="@ offset 1m [5m:1m]"}`)
	f(`x @ [5m:1m]`, `x @ [5m:1m]`)
}

func TestParseModifiedSubqueries(t *testing.T) {
	for _, q := range []string{
		`irate(x @ 1796405400 [5m:5m])`,
		`avg_over_time(x offset 1m [5m:30s])`,
		`present_over_time(x @ start() [10m:1m] offset 3h)`,
		`max_over_time(x offset 1m @ end() [10m:] @ start())`,
		`min_over_time(rate(x[5m]) [10m:1m] offset 1m [1h:10m])`,
	} {
		_, err := Parse(q)
		require.NoError(t, err, "%s", q)
		_, err = parseQuery(q, 60_000, 3600_000, defaultParseLimits)
		require.NoError(t, err, "%s", q)
	}
	_, err := Parse(`x offset 1m [5m]`)
	require.Error(t, err)
}
