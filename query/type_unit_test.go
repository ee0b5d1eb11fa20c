package query

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// TestTypeAndUnitGoWithName: where PromQL drops the metric name it drops
// the __type__ and __unit__ labels too (they describe the metric no longer
// returned), as Prometheus 3.14 does; where it keeps the name, it keeps
// them; `without` drops the name only.
func TestTypeAndUnitGoWithName(t *testing.T) {
	db := st.Open(t, nil)
	var b storage.Batch
	b.Add(labels.FromStrings("__name__", "m", "__type__", "counter", "__unit__", "seconds", "i", "1"),
		storage.Sample{T: 0, V: 1}, storage.Sample{T: 60_000, V: 2})
	ctx := context.Background()
	require.NoError(t, db.Write(ctx, "default", &b))
	eng := NewEngine(db, nil)
	f := func(q, want string) {
		t.Helper()
		res, err := eng.Instant(ctx, "default", q, 60_000)
		require.NoError(t, err, q)
		require.Len(t, res.Series, 1, q)
		require.Equal(t, want, res.Series[0].Metric.String(), q)
	}
	named := `{__name__="m", __type__="counter", __unit__="seconds", i="1"}`
	f(`m`, named)
	f(`-m`, `{i="1"}`)
	f(`m * 2`, `{i="1"}`)
	f(`m + m`, `{i="1"}`)
	f(`m > bool 0`, `{i="1"}`)
	f(`rate(m[2m])`, `{i="1"}`)
	f(`abs(m)`, `{i="1"}`)
	f(`m > 0`, named)
	f(`last_over_time(m[2m])`, named)
	f(`sum without (i) (m)`, `{__type__="counter", __unit__="seconds"}`)
}
