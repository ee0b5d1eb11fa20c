package query

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// TestDelayedNameRemoval checks the flag: on, names are dropped at the
// end (so label_replace can keep one, and `and` still matches on the
// type and unit labels); off, at once, as before.
func TestDelayedNameRemoval(t *testing.T) {
	db := st.Open(t, nil)
	var b storage.Batch
	for _, name := range []string{"a_total", "b_total"} {
		ls := labels.FromStrings("__name__", name, "__type__", "counter", "env", "1")
		b.Add(ls, storage.Sample{T: 0, V: 0}, storage.Sample{T: 60_000, V: 60}, storage.Sample{T: 120_000, V: 120})
	}
	b.Add(labels.FromStrings("__name__", "g", "env", "1"), storage.Sample{T: 0, V: 1})
	b.Add(labels.FromStrings("__name__", "h", "env", "1"), storage.Sample{T: 0, V: 3}, storage.Sample{T: 600_000, V: 4})
	ctx := context.Background()
	require.NoError(t, db.Write(ctx, "default", &b))
	off := NewEngine(db, nil)
	on := NewEngine(db, &Options{Features: Features{FeatureDelayedNameRemoval: true}})
	answer := func(e *Engine, q string) map[string]float64 {
		t.Helper()
		res, err := e.Instant(ctx, "default", q, 120_000)
		require.NoError(t, err, q)
		out := map[string]float64{}
		for _, s := range res.Series {
			out[s.Metric.String()] = s.Points[0].F
		}
		return out
	}
	q := `label_replace(rate(a_total[2m]), "__name__", "rate_$1", "__name__", "(.+)")`
	require.Equal(t, map[string]float64{`{__name__="rate_a_total", __type__="counter", env="1"}`: 1}, answer(on, q))
	require.Equal(t, map[string]float64{`{env="1"}`: 1}, answer(off, q))

	q = `(a_total + 1) and a_total`
	require.Equal(t, map[string]float64{`{env="1"}`: 121}, answer(on, q))
	require.Equal(t, map[string]float64{}, answer(off, q)) // __type__ went with the name

	// Grouped by the name still there, then dropped: two series alike.
	q = `sum by (__name__) (rate({env="1", __type__="counter"}[2m]))`
	_, err := on.Instant(ctx, "default", q, 120_000)
	require.ErrorContains(t, err, "vector cannot contain metrics with the same labelset")
	_, err = off.Instant(ctx, "default", q, 120_000)
	require.ErrorContains(t, err, "vector cannot contain metrics with the same labelset")
	q = `sum by (__name__) (rate(a_total[2m]) or g)`
	require.Equal(t, map[string]float64{`{}`: 1, `{__name__="g"}`: 1}, answer(on, q))
	require.Equal(t, map[string]float64{`{}`: 1}, answer(off, q))

	// The mark is no label of the answer, nor of an error.
	q = `sum without (env) (rate(a_total[2m])) * 2`
	require.Equal(t, map[string]float64{`{}`: 2}, answer(on, q))
	_, err = on.Instant(ctx, "default", `g + on() group_left -{env="1", __type__="counter"}`, 120_000)
	require.ErrorContains(t, err, "found duplicate series")
	require.NotContains(t, err.Error(), dropNameLabel)

	// In a range answer series alike once unnamed are merged.
	res, err := on.Range(ctx, "default", `-g or -h`, 0, 600_000, 600_000)
	require.NoError(t, err)
	require.Len(t, res.Series, 1)
	require.Equal(t, `{env="1"}`, res.Series[0].Metric.String())
	require.Equal(t, []Point{{T: 0, F: -1}, {T: 600_000, F: -4}}, res.Series[0].Points)
}

// A function's outputs that only their metadata labels told apart are
// the same labelset, whatever the aggregation around them groups by: the
// fast path that groups the inputs (aggregateRange) must see it too.
func TestAggregatedOutputsAlikeWithoutMetadata(t *testing.T) {
	db := st.Open(t, nil)
	var b storage.Batch
	for _, ls := range []labels.Labels{
		labels.FromStrings("__name__", "x_total", "__type__", "counter", "env", "1"),
		labels.FromStrings("__name__", "x_total", "__type__", "gauge", "env", "1"),
		labels.FromStrings("__name__", "y_total", "env", "2"),
		labels.FromStrings("__name__", "z_total", "env", "2"),
		// one of a name with a metadata label, one without: alike too
		labels.FromStrings("__name__", "w_total", "env", "3"),
		labels.FromStrings("__name__", "w_total", "__unit__", "seconds", "env", "3"),
	} {
		b.Add(ls, storage.Sample{T: 0, V: 0}, storage.Sample{T: 60_000, V: 60}, storage.Sample{T: 120_000, V: 120})
	}
	require.NoError(t, db.Write(context.Background(), "default", &b))
	e := NewEngine(db, nil)
	for _, q := range []string{
		`sum(rate(x_total[2m]))`,
		`sum by (env) (rate(x_total[2m]))`,
		`count by (env) (rate({__name__=~"y_total|z_total"}[2m]))`,
		`sum(rate(w_total[2m]))`,
		`max by (env) (rate({__name__="w_total", env="3"}[2m]))`,
	} {
		_, err := e.Instant(context.Background(), "default", q, 120_000)
		require.ErrorContains(t, err, "vector cannot contain metrics with the same labelset", q)
		_, err = e.Range(context.Background(), "default", q, 60_000, 120_000, 60_000)
		require.ErrorContains(t, err, "vector cannot contain metrics with the same labelset", q)
	}
	_, err := e.Instant(context.Background(), "default", `sum by (env) (rate({__name__=~"x_total|y_total"}[2m]))`, 120_000)
	require.Error(t, err) // x_total's two are alike
	res, err := e.Instant(context.Background(), "default", `sum by (env) (rate(y_total[2m]))`, 120_000)
	require.NoError(t, err)
	require.Len(t, res.Series, 1)
	require.Equal(t, `{env="2"}`, res.Series[0].Metric.String())
	require.InDelta(t, 1.0, res.Series[0].Points[0].F, 1e-9)
}
