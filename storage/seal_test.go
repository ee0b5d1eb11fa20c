package storage

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
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
	q, err := db.Querier(ctx, "t", 0, 1<<40)
	require.NoError(t, err)
	defer q.Close()
	ss := q.Select(ctx, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	require.True(t, ss.Next())
	it := ss.At().Iterator(nil)
	n := 0
	for it.Next() {
		n++
	}
	require.NoError(t, it.Err())
	require.Equal(t, 20, n)
}
