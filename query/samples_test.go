package query

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	st "github.com/emsdb/tsdb/storage/storagetest"
)

// TestSamplesAccounted: when an expression is done, the points it read
// and made are released, and nothing is released twice: what the query
// holds at the end is what it returns (a few functions keep their small
// scalar arguments counted, which errs on the safe side).
func TestSamplesAccounted(t *testing.T) {
	db := st.Open(t, nil)
	writeSeries(t, db, 20, 3600_000)
	var held, returned int
	evalDone = func(ev *evaluator, m Matrix) {
		held, returned = ev.samples, 0
		for _, s := range m {
			returned += len(s.Points)
		}
	}
	defer func() { evalDone = nil }()
	eng := NewEngine(db, nil)
	ctx := context.Background()
	for _, c := range []struct {
		q     string
		exact bool // else: held ≥ returned
	}{
		{`m`, true},
		{`rate(m[5m])`, true},
		{`sum by (i) (rate(m[5m]))`, true},
		{`avg(m)`, true},
		{`topk(3, m)`, false},
		{`m + on(i) m`, true},
		{`m > 10`, true},
		{`m and m`, true},
		{`2 * m + 1`, true},
		{`abs(abs(m))`, true},
		{`max_over_time(rate(m[5m])[30m:1m])`, true},
		{`max_over_time(m[30m:1m] offset 5m)`, true},
		{`(m + 1) offset 5m`, true},
		{`sum(m) @ end()`, true},
		{`label_replace(m, "j", "$1", "i", "(.*)")`, true},
		{`label_value(m, "i")`, true},
		{`absent_over_time(m[5m])`, true},
		{`absent(nothing)`, true},
		{`vector(1)`, true},
		{`time()`, true},
		{`scalar(sum(m))`, true},
		{`m default 0`, false},
		{`histogram_quantile(0.5, m)`, false},
		{`count_values("v", m)`, true},
		{`quantile_over_time(0.5, m[10m])`, false},
		{`clamp(m, 1, 2)`, false},
		{`union(m, m)`, false},
		{`range_avg(m)`, true},
		{`timestamp(m)`, true},
		{`sort_desc(m)`, true},
	} {
		ran := false
		for _, instant := range []bool{true, false} {
			var err error
			if instant {
				_, err = eng.Instant(ctx, "default", c.q, 3600_000)
			} else {
				_, err = eng.Range(ctx, "default", c.q, 0, 3600_000, 60_000)
			}
			if err != nil {
				continue // some are not valid both ways
			}
			ran = true
			require.GreaterOrEqual(t, held, returned, "%s (instant %v): released more than made", c.q, instant)
			if c.exact {
				require.Equal(t, returned, held, "%s (instant %v): not released", c.q, instant)
			}
		}
		require.True(t, ran, c.q)
	}
}
