package query

import (
	"context"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

func TestRewriteFillModifiers(t *testing.T) {
	zl, zr := fillMarker(fillLeftPrefix, 0), fillMarker(fillRightPrefix, 0)
	f := func(in, want string) {
		t.Helper()
		require.Equal(t, want, rewriteFillModifiers(in), "%s", in)
	}
	f(`a + fill(0) b`, `a + ignoring(`+zl+`, `+zr+`)  b`)
	f(`a == bool fill_left(0) b`, `a == bool ignoring(`+zl+`)  b`)
	f(`a / on(x) group_left(y) fill_right(0) b`, `a / on(x, `+zr+`) group_left(y)  b`)
	f(`a - ignoring() fill_right(0) FILL_LEFT(0) b`, `a - ignoring(`+zr+`, `+zl+`)   b`)
	f(`a >= on(x,) fill_left(-0x0) b`, `a >= on(x,`+fillMarker(fillLeftPrefix, math.Copysign(0, -1))+`)  b`)
	f(`a </ fill_left(5m) b`, `a </ ignoring(`+fillMarker(fillLeftPrefix, 300)+`)  b`)
	// Metric and label names spelled like the keywords are left alone.
	f(`fill + fill(0) fill_left`, `fill + ignoring(`+zl+`, `+zr+`)  fill_left`)
	f(`sum by (fill) (fill{fill="fill"})`, `sum by (fill) (fill{fill="fill"})`)
	// Not after an operator, a side twice, or not a number: left for the
	// parsers to refuse.
	f(`fill(0)`, `fill(0)`)
	f(`a + -fill(0) b`, `a + -fill(0) b`)
	f(`a + fill(1+1) b`, `a + fill(1+1) b`)
	f(`a + fill(0) fill_left(1) b`, `a + ignoring(`+zl+`, `+zr+`)  fill_left(1) b`)
}

func TestSplitFill(t *testing.T) {
	nan := fillMarker(fillRightPrefix, math.NaN())
	ls, fill := splitFill([]string{"a", fillMarker(fillLeftPrefix, math.Inf(-1)), nan, "b"})
	require.Equal(t, []string{"a", "b"}, ls)
	require.True(t, math.IsInf(*fill.lhs, -1))
	require.True(t, math.IsNaN(*fill.rhs))
	ls, fill = splitFill([]string{"a", "__fill_left_zz__"})
	require.Equal(t, []string{"a", "__fill_left_zz__"}, ls)
	require.False(t, fill.any())
}

// TestFillModifiersGate checks the flag: off, Prometheus's error; on, the
// filled answer and Prometheus's errors where fill may not stand.
func TestFillModifiersGate(t *testing.T) {
	db := st.Open(t, nil)
	var b storage.Batch
	b.Add(labels.FromStrings("__name__", "l", "k", "a"), storage.Sample{T: 0, V: 1})
	b.Add(labels.FromStrings("__name__", "l", "k", "b"), storage.Sample{T: 0, V: 2})
	b.Add(labels.FromStrings("__name__", "r", "k", "a"), storage.Sample{T: 0, V: 10})
	b.Add(labels.FromStrings("__name__", "r", "k", "c"), storage.Sample{T: 0, V: 30})
	ctx := context.Background()
	require.NoError(t, db.Write(ctx, "default", &b))
	off := NewEngine(db, nil)
	on := NewEngine(db, &Options{Features: Features{FeatureBinopFillModifiers: true}})

	_, err := off.Instant(ctx, "default", `l + fill(0) r`, 0)
	require.EqualError(t, err, `invalid parameter "query": 1:1: parse error: binop fill modifiers are experimental and not enabled`)
	var qe *Error
	require.ErrorAs(t, err, &qe)
	require.Equal(t, ErrBadData, qe.Type)

	answer := func(q string) map[string]float64 {
		t.Helper()
		res, err := on.Instant(ctx, "default", q, 0)
		require.NoError(t, err, q)
		out := map[string]float64{}
		for _, s := range res.Series {
			out[s.Metric.String()] = s.Points[0].F
		}
		return out
	}
	require.Equal(t, map[string]float64{`{k="a"}`: 11, `{k="b"}`: 2, `{k="c"}`: 30}, answer(`l + fill(0) r`))
	require.Equal(t, map[string]float64{`{k="a"}`: 11, `{k="b"}`: 102}, answer(`l + fill_right(100) r`))
	require.Equal(t, map[string]float64{`{k="a"}`: 11, `{k="c"}`: 35}, answer(`l + on(k) fill_left(5) r`))
	// A comparison keeps the left side's name; a filled left has none.
	require.Equal(t, map[string]float64{`{__name__="l", k="a"}`: 1, `{k="c"}`: 2}, answer(`l < fill(2) r`))
	// The modifiers are metric names where no parenthesis follows.
	require.Equal(t, map[string]float64{}, answer(`l + fill`))
	require.Equal(t, map[string]float64{`{k="a"}`: 11, `{k="b"}`: 2, `{k="c"}`: 30}, answer(`max_over_time((l + fill(0) r)[5m:1m])`))

	for q, want := range map[string]string{
		`l and fill(0) r`: "filling in missing series not allowed for set operators",
		`l + fill(0) 1`:   "filling in missing series only allowed between instant vectors",
		// Prometheus's grammar: a side filled twice, group_left without on.
		`l + fill(0) fill(1) r`:    `1:17: parse error: unexpected "("`,
		`l + group_left fill(0) r`: "1:5: parse error: unexpected <group_left>",
	} {
		_, err := on.Instant(ctx, "default", q, 0)
		require.ErrorContains(t, err, want, q)
	}
}
