package storage

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestIndexHashCollisions puts three label sets under one hash (as a
// 64-bit collision would) and checks that each is found, and stays found
// as the others are removed in every order.
func TestIndexHashCollisions(t *testing.T) {
	const h = 42
	lsets := []labels.Labels{
		labels.FromStrings("__name__", "a"),
		labels.FromStrings("__name__", "b"),
		labels.FromStrings("__name__", "c"),
	}
	for _, order := range [][]int{{0, 1, 2}, {1, 0, 2}, {2, 1, 0}, {1, 2, 0}} {
		ti := newTenantIndex(1, "t")
		series := make([]*memSeries, len(lsets))
		for i, ls := range lsets {
			series[i] = newMemSeries(uint64(i+1), 1, ls)
			ti.add(h, series[i])
		}
		other := newMemSeries(9, 1, labels.FromStrings("__name__", "d"))
		ti.add(7, other)
		left := map[int]bool{0: true, 1: true, 2: true}
		for _, i := range order {
			for j := range lsets {
				if left[j] {
					require.Same(t, series[j], ti.lookup(h, lsets[j]), "order %v, %d", order, j)
					require.True(t, ti.hashed(h, series[j]))
				} else {
					require.Nil(t, ti.lookup(h, lsets[j]), "order %v, %d removed", order, j)
					require.False(t, ti.hashed(h, series[j]))
				}
			}
			ti.remove(func(*memSeries) uint64 { return h }, []*memSeries{series[i]})
			delete(left, i)
		}
		require.Empty(t, ti.byHash[h])
		require.Empty(t, ti.collide)
		require.Same(t, other, ti.lookup(7, other.lset))
		require.Nil(t, ti.lookup(h, other.lset), "another hash's series is not found under h")
	}
}
