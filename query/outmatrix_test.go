package query

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestOutMatrixSharedHash puts three label sets under one hash (as a
// 64-bit collision would): each keeps its own output series, found again
// by its labels, and a second sample at a step of one of them is the
// duplicate-labelset error.
func TestOutMatrixSharedHash(t *testing.T) {
	ev := &evaluator{maxSamples: 100}
	o := newOutMatrixSized(ev, 1)
	a, b, c := labels.FromStrings("x", "a"), labels.FromStrings("x", "b"), labels.FromStrings("x", "c")
	const h = 7
	require.Equal(t, -1, o.find(h, a))
	require.Equal(t, 0, o.insert(h, a))
	require.Equal(t, 1, o.insert(h, b))
	require.Equal(t, 2, o.insert(h, c))
	require.Equal(t, 0, o.find(h, a))
	require.Equal(t, 1, o.find(h, b))
	require.Equal(t, 2, o.find(h, c))
	require.Equal(t, -1, o.find(h, labels.FromStrings("x", "d")))
	require.Equal(t, -1, o.find(8, a), "another hash")

	o = newOutMatrix(ev)
	for k := range 3 {
		for _, ls := range []labels.Labels{a, b, c} {
			o.add(ls, int64(k), float64(k), nil)
		}
	}
	require.Len(t, o.m, 3)
	for i, s := range o.m {
		require.Len(t, s.Points, 3, "series %d", i)
	}
	require.Panics(t, func() { o.add(b, 2, 1, nil) }, "a second sample of b at step 2")

	// Series in another order at a step (the guess of the next series
	// misses) and a new one among them keep their own points.
	o = newOutMatrix(ev)
	steps := [][]labels.Labels{{a, b}, {b, a}, {c, a, b}, {a, b, c}, {b}}
	for k, step := range steps {
		for _, ls := range step {
			o.add(ls, int64(k), float64(k), nil)
		}
	}
	want := map[string][]int64{"a": {0, 1, 2, 3}, "b": {0, 1, 2, 3, 4}, "c": {2, 3}}
	require.Len(t, o.m, 3)
	for _, s := range o.m {
		var ts []int64
		for _, p := range s.Points {
			ts = append(ts, p.T)
		}
		require.Equal(t, want[s.Metric.Get("x")], ts, s.Metric.String())
	}
}
