package query

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParsePromQLOnly(t *testing.T) {
	f := func(q, want string) {
		t.Helper()
		e, err := Parse(q)
		require.NoError(t, err, q)
		require.Equal(t, want, string(e.AppendString(nil)), q)
	}
	f(`histogram_count(rate(h[5m]))`, `histogram_count(rate(h[5m]))`)
	f(`histogram_sum (h) / histogram_count (h)`, `histogram_sum(h) / histogram_count(h)`)
	f(`h </ 2`, `h </ 2`)
	f(`h >/ -Inf`, `h >/ -Inf`)
	f(`h >/ on (label) f`, `h >/ on(label) f`)
	f(`h </ ignoring(a, b) f`, `h </ ignoring(a,b) f`)
	f(`h </ on() f`, `h </ on() f`)
	// A metric named like a MetricsQL aggregation.
	f(`histogram unless histogram_quantile(0.5, histogram) < 3`, `histogram unless (histogram_quantile(0.5, histogram) < 3)`)
	f(`histogram{a="b"}`, `histogram{a="b"}`)
	f(`sum by (histogram) (histogram)`, `sum(histogram) by(histogram)`)
	// Strings and label values are left alone, MetricsQL's own forms too.
	f(`label_replace(x, "a", "</b", "c", "histogram_count(")`, `label_replace(x, "a", "</b", "c", "histogram_count(")`)
	f(`x{a="histogram"}`, `x{a="histogram"}`)
	f(`median by (job) (x)`, `median(x) by(job)`)
	f(`SUM BY (group) (x)`, `sum(x) by(group)`)
	f(`MEDIAN BY (job) (x)`, `median(x) by(job)`)
	// Unary minus negates: -1 * x.
	f(`-x`, `-1 * x`)
	f(`0 - x`, `0 - x`)
}

// TestPinAtKeepsPromQLNames: a pinned query keeps PromQL's meaning.
// double_exponential_smoothing is parsed as MetricsQL's holt_winters,
// which is not PromQL (a query with it answers as VictoriaMetrics, name
// kept), so its name is printed back; anchored stays as its marker.
func TestPinAtKeepsPromQLNames(t *testing.T) {
	f := func(q, want string) {
		t.Helper()
		got, ok, err := PinAt(q, 8000)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, want, got)
	}
	f(`double_exponential_smoothing(x[1m], 0.01, 0.1)`, `double_exponential_smoothing(x[1m] @ 8, 0.01, 0.1)`)
	f(`holt_winters(x[1m], 0.01, 0.1)`, `holt_winters(x[1m] @ 8, 0.01, 0.1)`)
	f(`rate(x[1m] anchored)`, `rate(x{__anchored__=""}[1m] @ 8)`)
}
