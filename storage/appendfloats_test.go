package storage_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// TestAppendFloatsEqualsIteration: a series' AppendFloats gives exactly
// the samples stepping its iterator gives, for windows anywhere over data
// in sealed chunks, in the head and written out of order, stale markers
// and NaN bit for bit.
func TestAppendFloatsEqualsIteration(t *testing.T) {
	db := st.Open(t, nil)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 7))
	const step = 15_000
	write := func(from, to int64) {
		var b storage.Batch
		for s := range 5 {
			ls := labels.FromStrings("__name__", "m", "s", string(rune('a'+s)))
			var smp []storage.Sample
			for ts := from; ts < to; ts += step {
				v := float64(rng.IntN(1000)) / 10
				switch rng.IntN(50) {
				case 0:
					v = math.Float64frombits(storage.StaleNaN)
				case 1:
					v = math.NaN()
				}
				smp = append(smp, storage.Sample{T: ts + int64(s), V: v})
			}
			b.Add(ls, smp...)
		}
		require.NoError(t, db.Write(ctx, "default", &b))
	}
	const h = 3600_000
	write(0, 5*h) // several sealed hours
	require.NoError(t, db.Flush())
	write(5*h, 5*h+40*60_000) // in the head
	var ooo storage.Batch     // out of order, into a sealed hour
	ooo.Add(labels.FromStrings("__name__", "m", "s", "a"), storage.Sample{T: 2*h + 7, V: 42})
	require.NoError(t, db.Write(ctx, "default", &ooo))

	windows := [][2]int64{{0, 6 * h}, {-h, 0}, {h + 1, 2 * h}, {2*h + 7, 2*h + 7}, {4*h + 30*60_000, 5*h + 10*60_000}, {5*h + 60_000, 7 * h}, {3 * h, 3*h - 1}}
	for range 20 {
		a := rng.Int64N(6 * h)
		windows = append(windows, [2]int64{a, a + rng.Int64N(2*h)})
	}
	for _, w := range windows {
		q, err := db.Querier(ctx, "default", w[0], w[1])
		require.NoError(t, err)
		m := labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")
		for _, batch := range []bool{false, true} {
			ss := q.Select(ctx, nil, m)
			n := 0
			for ss.Next() {
				s := ss.At()
				var wantT []int64
				var wantV []uint64
				it := s.Iterator(nil)
				for ok := it.SeekTo(w[0]); ok; ok = it.Next() {
					ts, v := it.At()
					if ts > w[1] {
						break
					}
					wantT, wantV = append(wantT, ts), append(wantV, math.Float64bits(v))
				}
				require.NoError(t, it.Err())
				it = s.Iterator(nil)
				fr, ok := it.(storage.FloatRangeIterator)
				require.True(t, ok, "storage's iterators append floats")
				lo, hi := w[0], w[1]
				if batch { // a narrower window than the querier's
					lo, hi = lo+step, hi-step
					wantT, wantV = nil, nil
					it2 := s.Iterator(nil)
					for ok := it2.SeekTo(lo); ok; ok = it2.Next() {
						ts, v := it2.At()
						if ts > hi {
							break
						}
						wantT, wantV = append(wantT, ts), append(wantV, math.Float64bits(v))
					}
				}
				gotT, gotV, err := fr.AppendFloats(lo, hi, []int64{-1}, []float64{-1})
				require.NoError(t, err)
				require.Equal(t, append([]int64{-1}, wantT...), gotT, "%s in %v", s.Labels(), w)
				bits := make([]uint64, 0, len(gotV))
				for _, v := range gotV[1:] {
					bits = append(bits, math.Float64bits(v))
				}
				require.Equal(t, len(wantV), len(bits))
				if len(wantV) > 0 {
					require.Equal(t, wantV, bits, "%s in %v", s.Labels(), w)
				}
				n++
			}
			require.NoError(t, ss.Err())
			_ = n
		}
		require.NoError(t, q.Close())
	}
}
