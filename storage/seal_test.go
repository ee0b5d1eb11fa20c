package storage

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage/chunkenc"
)

// A series queued twice (maintain(true) sealed it while it waited in the
// sealer's queue, and a write queued it again) is sealed once: the second
// copy must not drop frozen chunks a second time.
func TestSealSeriesListedTwice(t *testing.T) {
	db, err := Open(t.TempDir(), &Options{Shards: 1, HeadChunkSamples: 1000})
	require.NoError(t, err)
	defer db.Close()
	ctx := context.Background()
	lset := labels.FromStrings("__name__", "m")
	write := func(from, to int64) {
		var b Batch
		for ts := from; ts < to; ts++ {
			b.Add(lset, Sample{T: ts * 1000, V: float64(ts)})
		}
		require.NoError(t, db.Write(ctx, "t", &b))
	}
	sh := db.shards[0]
	write(0, 10)
	ms := sh.allSeries()[0]
	ms.mu.Lock()
	ms.freezeLocked()
	ms.mu.Unlock()
	require.NoError(t, sh.seal([]*memSeries{ms, ms}))
	write(10, 20)
	ms.mu.Lock()
	ms.freezeLocked()
	ms.mu.Unlock()
	require.NoError(t, sh.seal([]*memSeries{ms, ms}))
	require.Equal(t, 20, countSamples(t, db, "m"))
}

// countSamples counts the samples of the one series named metric in
// tenant "t".
func countSamples(t *testing.T, db *DB, metric string) int {
	t.Helper()
	ctx := context.Background()
	q, err := db.Querier(ctx, "t", 0, 1<<40)
	require.NoError(t, err)
	defer q.Close()
	ss := q.Select(ctx, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", metric))
	require.True(t, ss.Next())
	it := ss.At().Iterator(nil)
	n := 0
	for it.Next() {
		n++
	}
	require.NoError(t, it.Err())
	return n
}

// Out-of-order samples and frozen chunks live in a holder a series has
// only while it holds either: sealing lets it go, so a million series at
// rest carry a nil pointer rather than two empty slices. The samples
// stay readable throughout.
func TestSeriesRareHolderLetGo(t *testing.T) {
	db, err := Open(t.TempDir(), &Options{Shards: 1, HeadChunkSamples: 1000})
	require.NoError(t, err)
	defer db.Close()
	ctx := context.Background()
	lset := labels.FromStrings("__name__", "m")
	write := func(ts ...int64) {
		var b Batch
		for _, t := range ts {
			b.Add(lset, Sample{T: t * 1000, V: float64(t)})
		}
		require.NoError(t, db.Write(ctx, "t", &b))
	}
	rare := func(ms *memSeries) (ooo, frozen int, held bool) {
		ms.mu.Lock()
		defer ms.mu.Unlock()
		return len(ms.oooLocked()), len(ms.frozenLocked()), ms.mu.rare != nil
	}
	write(10, 20, 30)
	ms := db.shards[0].allSeries()[0]
	if _, _, held := rare(ms); held {
		t.Fatal("in-order samples took a holder")
	}
	write(15, 25)
	if ooo, _, held := rare(ms); ooo != 2 || !held {
		t.Fatalf("out-of-order: %d samples, holder %v", ooo, held)
	}
	ms.mu.Lock()
	ms.freezeLocked()
	ms.mu.Unlock()
	if ooo, frozen, held := rare(ms); ooo != 0 || frozen != 1 || !held {
		t.Fatalf("frozen: %d out-of-order, %d frozen, holder %v", ooo, frozen, held)
	}
	write(40, 35) // a frozen chunk and new out-of-order samples at once
	require.Equal(t, 7, countSamples(t, db, "m"))
	require.NoError(t, db.Flush())
	if ooo, frozen, held := rare(ms); ooo != 0 || frozen != 0 || held {
		t.Fatalf("sealed: %d out-of-order, %d frozen, holder %v", ooo, frozen, held)
	}
	require.Equal(t, 7, countSamples(t, db, "m"))
}

// TestMergeFrozenOneChunk: one chunk written in order is read straight
// from its bytes, and gives what merging it would.
func TestMergeFrozenOneChunk(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for n := 1; n <= 300; n += 1 + rng.IntN(20) {
		c := chunkenc.NewXORChunk()
		tm := int64(rng.IntN(1e9))
		for range n {
			tm += 1 + int64(rng.IntN(30000))
			c.Append(tm, []float64{rng.Float64(), float64(rng.IntN(100)), math.NaN(), math.Inf(-1)}[rng.IntN(4)])
		}
		b, cnt := c.Snapshot(nil)
		fz := []*frozenChunk{{xor: b, n: cnt}}
		ts, vs, err := mergeFrozen(fz, []int64{-1}, []float64{-1})
		require.NoError(t, err)
		m := newMergeIter([]chunkenc.Iterator{chunkenc.NewXORIterator(b, cnt)})
		wts, wvs := []int64{-1}, []float64{-1}
		for m.Next() {
			t, v := m.At()
			wts, wvs = append(wts, t), append(wvs, v)
		}
		require.NoError(t, m.Err())
		require.Equal(t, wts, ts)
		require.Len(t, vs, len(wvs))
		for i := range vs {
			require.Equal(t, math.Float64bits(wvs[i]), math.Float64bits(vs[i]), "sample %d of %d", i, n)
		}
	}
}
