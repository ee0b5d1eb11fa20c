package storage

import (
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestRefTableMatchesMap sets and deletes refs at random — counting up as
// a shard's do, now and then an older one as start-up reads them — and
// holds the table to a map, its pages to those of the refs it holds.
func TestRefTableMatchesMap(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var tbl refTable
	want := map[uint64]*memSeries{}
	next := uint64(1)
	check := func() {
		t.Helper()
		for ref, s := range want {
			require.Same(t, s, tbl.get(ref), "ref %d", ref)
		}
		for range 200 {
			ref := r.Uint64N(next + 2*refPageSize)
			require.Equal(t, want[ref], tbl.get(ref), "ref %d", ref)
		}
		n := 0
		tbl.each(func(ref uint64, s *memSeries) {
			require.Same(t, want[ref], s, "ref %d", ref)
			n++
		})
		require.Equal(t, len(want), n)
		if len(want) == 0 {
			require.Empty(t, tbl.pages)
			return
		}
		minRef, maxRef := next, uint64(0)
		for ref := range want {
			minRef, maxRef = min(minRef, ref), max(maxRef, ref)
		}
		require.Equal(t, minRef/refPageSize, tbl.first, "the first page holds the first ref")
		require.Equal(t, maxRef/refPageSize-minRef/refPageSize+1, uint64(len(tbl.pages)), "the last page holds the last ref")
		for _, pg := range tbl.pages {
			if pg != nil {
				require.Positive(t, pg.n)
			}
		}
	}
	for round := range 30 {
		for range r.IntN(3000) {
			ref := next
			if r.IntN(20) == 0 && next > 1 {
				ref = 1 + r.Uint64N(next-1) // an older ref
			} else {
				next++
			}
			s := newMemSeries(ref, 1, labels.EmptyLabels())
			tbl.set(ref, s)
			want[ref] = s
		}
		check()
		// Mostly the oldest go, as series of a churning workload do.
		for ref := range want {
			if r.IntN(3) == 0 || ref < next/2 {
				tbl.del(ref)
				delete(want, ref)
			}
		}
		tbl.del(next + 5) // not there
		check()
		if round%10 == 9 {
			for ref := range want {
				tbl.del(ref)
				delete(want, ref)
			}
			check()
		}
	}
}
