package query

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

func TestRewriteExtendedSelectors(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		require.Equal(t, want, rewriteExtendedSelectors(in), "%s", in)
	}
	f(`rate(x[5m] anchored)`, `rate(x{__anchored__=""}[5m] )`)
	f(`increase(x{a="b"}[1m] SMOOTHED)`, `increase(x{a="b",__smoothed__=""}[1m] )`)
	f(`x{} smoothed`, `x{__smoothed__=""} `)
	f(`{__name__="x", } smoothed`, `{__name__="x", __smoothed__=""} `)
	// After offset and @ in any order, signed, start() and end().
	f(`rate(x[5m] offset -1m @ 100 anchored)`, `rate(x{__anchored__=""}[5m] offset -1m @ 100 )`)
	f(`x @ end() offset 1m smoothed + 0`, `x{__smoothed__=""} @ end() offset 1m  + 0`)
	// Modifiers after the keyword belong to the same selector.
	f(`rate(x[5m] anchored offset 1m)`, `rate(x{__anchored__=""}[5m]  offset 1m)`)
	// Metric and label names spelled like the keywords are left alone.
	f(`anchored + smoothed{anchored="smoothed"}`, `anchored + smoothed{anchored="smoothed"}`)
	f(`sum by (anchored) (rate(smoothed[5m]))`, `sum by (anchored) (rate(smoothed[5m]))`)
	f(`x and anchored`, `x and anchored`)
	f(`rate(anchored[5m] anchored)`, `rate(anchored{__anchored__=""}[5m] )`)
	// Not a selector, or both modifiers: left for the parsers to refuse.
	f(`rate(x[5m:1m] anchored)`, `rate(x[5m:1m] anchored)`)
	f(`(x) smoothed`, `(x) smoothed`)
	f(`rate(x[5m]) anchored`, `rate(x[5m]) anchored`)
	f(`rate(x[5m] anchored smoothed)`, `rate(x{__anchored__=""}[5m]  smoothed)`)
}

// TestExtendedSelectorsGate checks the flag: off, Prometheus 3.14's
// error at the selector (the Prometheus parser we link accepts the
// modifiers always); on, the answer.
func TestExtendedSelectorsGate(t *testing.T) {
	db := st.Open(t, nil)
	var b storage.Batch
	b.Add(labels.FromStrings("__name__", "m"), storage.Sample{T: 0, V: 1}, storage.Sample{T: 60_000, V: 4})
	ctx := context.Background()
	require.NoError(t, db.Write(ctx, "default", &b))
	off := NewEngine(db, nil)
	on := NewEngine(db, &Options{Features: Features{FeatureExtendedRangeSelectors: true}})
	f := func(q, wantOff string, want float64) {
		t.Helper()
		_, err := off.Instant(ctx, "default", q, 90_000)
		require.EqualError(t, err, wantOff, q)
		var qe *Error
		require.ErrorAs(t, err, &qe)
		require.Equal(t, ErrBadData, qe.Type)
		res, err := on.Instant(ctx, "default", q, 90_000)
		require.NoError(t, err, q)
		require.Len(t, res.Series, 1, q)
		require.InDelta(t, want, res.Series[0].Points[0].F, 1e-9, q)
	}
	f(`increase(m[1m] anchored)`, `invalid parameter "query": 1:10: parse error: anchored modifier is experimental and not enabled`, 3)
	// Smoothed: the value at 30s interpolated (2.5), to the last (4).
	f(`sum(increase(m[1m] smoothed))`, `invalid parameter "query": 1:14: parse error: smoothed modifier is experimental and not enabled`, 1.5)
	f(`m smoothed`, `invalid parameter "query": 1:1: parse error: smoothed modifier is experimental and not enabled`, 4)
	// A modifier where none may go is also refused as off first.
	_, err := off.Instant(ctx, "default", `rate(m[5m:1m] anchored)`, 0)
	require.ErrorContains(t, err, "anchored modifier is experimental and not enabled")
	_, err = on.Instant(ctx, "default", `rate(m[5m:1m] anchored)`, 0)
	require.ErrorContains(t, err, "anchored modifier is not supported for subqueries")
	_, err = on.Instant(ctx, "default", `rate(m[5m] anchored smoothed)`, 0)
	require.ErrorContains(t, err, "anchored and smoothed modifiers cannot be used together")
	_, err = on.Instant(ctx, "default", `rate(m[5m] anchored) default 0`, 0)
	require.ErrorContains(t, err, "cannot use them")
	_, err = on.Instant(ctx, "default", `deriv(m[5m] anchored)`, 0)
	require.EqualError(t, err, "anchored modifier can only be used with: changes, delta, increase, rate, resets - not with deriv")
}

// TestExtendedRateResets checks the counter-reset correction of an
// anchored window, where the anchor sample is before the range.
func TestExtendedRateResets(t *testing.T) {
	f := func(pts []Point, smoothed bool, want float64) {
		t.Helper()
		v, ok := extendedRate(pts, 60_000, 120_000, 60_000, smoothed, true, false)
		require.True(t, ok)
		require.InDelta(t, want, v, 1e-9)
	}
	// 10 at 50s anchors the window; the counter resets to 2 at 90s and is
	// 5 at 120s: it rose 2 from its reset to 0, then 3.
	f([]Point{{T: 50_000, F: 10}, {T: 90_000, F: 2}, {T: 120_000, F: 5}}, false, 5)
	// Smoothed: 30 at 30s, 0 at 90s (a reset), 30 at 150s. The line across
	// the reset starts at 0, so the value is 0 at 60s and 15 at 120s.
	f([]Point{{T: 30_000, F: 30}, {T: 90_000, F: 0}, {T: 150_000, F: 30}}, true, 15)
}
