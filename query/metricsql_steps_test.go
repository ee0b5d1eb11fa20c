package query

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	st "github.com/emsdb/tsdb/storage/storagetest"
)

// TestMetricsQLVictoriaMetricsForms: the MetricsQL forms that answer as
// VictoriaMetrics does (issue 17; query/vmdifftest checks them against it).
func TestMetricsQLVictoriaMetricsForms(t *testing.T) {
	db := st.Open(t, nil)
	writeSeries(t, db, 3, 3600_000)
	eng := NewEngine(db, nil)
	ctx := context.Background()
	f := func(q string, wantSeries int, wantValue float64) {
		t.Helper()
		r, err := eng.Instant(ctx, "default", q, 3000_000)
		require.NoError(t, err, q)
		require.Len(t, r.Series, wantSeries, q)
		for _, s := range r.Series {
			require.InDelta(t, wantValue, s.Points[0].F, 1e-9, q)
		}
	}
	f(`sum(rate(nonexistent_total[5m])) default 0`, 1, 0)
	f(`(m > 100000) default 0`, 3, 0)
	f(`(100000 < m) default 7`, 3, 7)
	// m grows by 1 a second: a window of one step (5m in an instant
	// query), given or implicit, has a rate of 1.
	f(`rate(m[1i])`, 3, 1)
	f(`rate(m)`, 3, 1)
	f(`sum(rate(m))`, 1, 3)
	_, err := eng.Instant(ctx, "default", `time(m)`, 3000_000)
	requireQueryError(t, err, ErrBadData, "expected 0 argument")
}
