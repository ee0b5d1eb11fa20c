package storage_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

func ex(trace string, t int64, v float64) storage.Exemplar {
	return storage.Exemplar{Labels: ls("trace_id", trace), T: t, V: v}
}

// writeExemplars writes exemplars (and a sample) for one series and
// returns the WriteStats.
func writeExemplars(t *testing.T, db *storage.DB, tenant string, lset labels.Labels, es ...storage.Exemplar) storage.WriteStats {
	t.Helper()
	var ws storage.WriteStats
	b := storage.Batch{Series: []storage.SeriesSamples{{Labels: lset, Exemplars: es}}}
	require.NoError(t, db.Write(storage.WithWriteStats(context.Background(), &ws), tenant, &b))
	return ws
}

func queryExemplars(t *testing.T, db *storage.DB, tenant string, mint, maxt int64, sets ...[]*labels.Matcher) map[string][]storage.Exemplar {
	t.Helper()
	got, err := db.Exemplars(context.Background(), tenant, mint, maxt, sets)
	require.NoError(t, err)
	out := map[string][]storage.Exemplar{}
	for _, s := range got {
		out[s.Labels.String()] = s.Exemplars
	}
	return out
}

func TestExemplarsRingDedupOrder(t *testing.T) {
	dir := t.TempDir()
	opts := &storage.Options{Shards: 2, MaxExemplars: 4}
	db, err := storage.Open(dir, opts)
	require.NoError(t, err)
	a, b := ls("__name__", "rq", "job", "a"), ls("__name__", "rq", "job", "b")
	require.Equal(t, storage.WriteStats{Exemplars: 2}, writeExemplars(t, db, "acme", a, ex("a1", 1000, 1), ex("a2", 2000, 2)))
	// The same as the newest counts as written and is not stored twice;
	// an older one is dropped and counted.
	require.Equal(t, storage.WriteStats{Exemplars: 1}, writeExemplars(t, db, "acme", a, ex("a2", 2000, 2), ex("old", 1500, 9)))
	require.Equal(t, int64(1), db.Stats().ExemplarsOutOfOrder)
	// Invalid: labels longer than 128 runes.
	long := storage.Exemplar{Labels: ls("trace_id", string(make([]byte, 130))), T: 3000, V: 1}
	require.Equal(t, storage.WriteStats{}, writeExemplars(t, db, "acme", a, long))
	require.Equal(t, int64(1), db.Stats().ExemplarsInvalid)
	// Unsorted input is sorted, as Prometheus does.
	writeExemplars(t, db, "acme", b, ex("b2", 2500, 1), ex("b1", 1200, 1))
	// A series' exemplars share the tenant's ring: a fifth takes the oldest slot (a1).
	writeExemplars(t, db, "acme", b, ex("b3", 3000, 1))
	writeExemplars(t, db, "globex", a, ex("g", 1000, 1))
	want := map[string][]storage.Exemplar{
		a.String(): {ex("a2", 2000, 2)},
		b.String(): {ex("b1", 1200, 1), ex("b2", 2500, 1), ex("b3", 3000, 1)},
	}
	rq := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "rq")}
	require.Equal(t, want, queryExemplars(t, db, "acme", math.MinInt64, math.MaxInt64, rq))
	require.Equal(t, map[string][]storage.Exemplar{b.String(): {ex("b2", 2500, 1)}},
		queryExemplars(t, db, "acme", 2100, 2900, rq))
	onlyA := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "job", "a")}
	require.Equal(t, map[string][]storage.Exemplar{a.String(): {ex("g", 1000, 1)}},
		queryExemplars(t, db, "globex", 0, 5000, onlyA))
	require.Empty(t, queryExemplars(t, db, "initech", 0, 5000, rq))

	// A clean restart keeps the ring, and it goes on where it stopped.
	require.NoError(t, db.Close())
	db, err = storage.Open(dir, opts)
	require.NoError(t, err)
	require.Equal(t, want, queryExemplars(t, db, "acme", math.MinInt64, math.MaxInt64, rq))
	writeExemplars(t, db, "acme", a, ex("a3", 4000, 1)) // evicts a2, the oldest
	want = map[string][]storage.Exemplar{
		a.String(): {ex("a3", 4000, 1)},
		b.String(): {ex("b1", 1200, 1), ex("b2", 2500, 1), ex("b3", 3000, 1)},
	}
	require.Equal(t, want, queryExemplars(t, db, "acme", math.MinInt64, math.MaxInt64, rq))
	// Dedup holds across the restart too.
	require.Equal(t, storage.WriteStats{Exemplars: 1}, writeExemplars(t, db, "acme", b, ex("b3", 3000, 1)))
	require.NoError(t, db.Close())

	// A smaller limit keeps the newest.
	db = st.OpenDir(t, dir, &storage.Options{Shards: 2, MaxExemplars: 2})
	want = map[string][]storage.Exemplar{
		a.String(): {ex("a3", 4000, 1)},
		b.String(): {ex("b3", 3000, 1)},
	}
	require.Equal(t, want, queryExemplars(t, db, "acme", math.MinInt64, math.MaxInt64, rq))
	writeExemplars(t, db, "acme", b, ex("b4", 5000, 1)) // evicts b3
	require.Equal(t, map[string][]storage.Exemplar{a.String(): {ex("a3", 4000, 1)}, b.String(): {ex("b4", 5000, 1)}},
		queryExemplars(t, db, "acme", math.MinInt64, math.MaxInt64, rq))
}

func TestExemplarsDisabled(t *testing.T) {
	db := st.Open(t, &storage.Options{MaxExemplars: -1})
	a := ls("__name__", "rq")
	// Accepted, as Prometheus with exemplars off counts them, and not kept.
	require.Equal(t, storage.WriteStats{Exemplars: 1}, writeExemplars(t, db, "acme", a, ex("a1", 1000, 1)))
	require.Empty(t, queryExemplars(t, db, "acme", 0, 5000, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "rq")}))
}

func TestWriteStatsCountSamplesAndExemplars(t *testing.T) {
	db := st.Open(t, nil)
	var ws storage.WriteStats
	b := storage.Batch{Series: []storage.SeriesSamples{
		{Labels: ls("__name__", "x"), Samples: samples(1000, 1, 2000, 2), Exemplars: []storage.Exemplar{ex("t", 1000, 1)}},
		{Labels: ls("__name__", "y"), Samples: samples(1000, 1)},
	}}
	require.NoError(t, db.Write(storage.WithWriteStats(context.Background(), &ws), "default", &b))
	require.Equal(t, storage.WriteStats{Samples: 3, Exemplars: 1}, ws)
}

// Deleting series deletes their exemplars in the range, also after a
// restart; exemplars older than the retention are not answered.
func TestExemplarsFollowDeletesAndRetention(t *testing.T) {
	dir := t.TempDir()
	now := int64(10 * 24 * 3600 * 1000)
	opts := &storage.Options{Shards: 2, MaxExemplars: 10, Retention: 24 * time.Hour,
		Now: func() time.Time { return time.UnixMilli(now) }}
	db, err := storage.Open(dir, opts)
	require.NoError(t, err)
	a, b := ls("__name__", "rq", "job", "a"), ls("__name__", "rq", "job", "b")
	writeExemplars(t, db, "acme", a, ex("a1", now-3000, 1), ex("a2", now-2000, 2), ex("a3", now-1000, 3))
	writeExemplars(t, db, "acme", b, ex("b1", now-2000, 1))
	jobA := labels.MustNewMatcher(labels.MatchEqual, "job", "a")
	_, err = db.DeleteSeries(context.Background(), "acme", now-2500, now-500, jobA)
	require.NoError(t, err)
	rq := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "rq")}
	want := map[string][]storage.Exemplar{
		a.String(): {ex("a1", now-3000, 1)},
		b.String(): {ex("b1", now-2000, 1)},
	}
	require.Equal(t, want, queryExemplars(t, db, "acme", math.MinInt64, math.MaxInt64, rq))
	require.NoError(t, db.Close())

	db = st.OpenDir(t, dir, opts)
	require.Equal(t, want, queryExemplars(t, db, "acme", math.MinInt64, math.MaxInt64, rq), "after a restart")
	writeExemplars(t, db, "acme", a, ex("a3", now-1000, 3))
	require.Equal(t, []storage.Exemplar{ex("a1", now-3000, 1), ex("a3", now-1000, 3)},
		queryExemplars(t, db, "acme", math.MinInt64, math.MaxInt64, rq)[a.String()], "written again after its deletion")

	now += 2 * 24 * 3600 * 1000 // all of them are now older than the retention
	require.Empty(t, queryExemplars(t, db, "acme", math.MinInt64, math.MaxInt64, rq))
}
