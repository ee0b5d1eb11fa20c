package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

const all = math.MaxInt64

func ls(kv ...string) labels.Labels { return labels.FromStrings(kv...) }

func samples(tv ...float64) []storage.Sample { return st.Series(labels.EmptyLabels(), tv...).Samples }

func TestWriteRead(t *testing.T) {
	db := st.Open(t, nil)
	st.Write(t, db, "default",
		st.Series(ls("__name__", "up", "job", "a"), 1000, 1, 2000, 0),
		st.Series(ls("__name__", "up", "job", "b"), 1000, 1),
		st.Series(ls("__name__", "load", "job", "a"), 1000, 0.25))
	got := st.Read(t, db, "default", math.MinInt64, all, st.Eq("__name__", "up"))
	require.Equal(t, map[string][]storage.Sample{
		`{__name__="up", job="a"}`: samples(1000, 1, 2000, 0),
		`{__name__="up", job="b"}`: samples(1000, 1),
	}, got)
	// The time range narrows what comes back.
	got = st.Read(t, db, "default", 1500, 2500, st.Eq("job", "a"))
	require.Equal(t, map[string][]storage.Sample{`{__name__="up", job="a"}`: samples(2000, 0)}, got)
}

func TestTenantsAreIsolated(t *testing.T) {
	db := st.Open(t, nil)
	st.Write(t, db, "acme", st.Series(ls("__name__", "up"), 1000, 1))
	st.Write(t, db, "globex", st.Series(ls("__name__", "up"), 1000, 2))
	require.Equal(t, samples(1000, 1), st.Read(t, db, "acme", 0, all, st.Eq("__name__", "up"))[`{__name__="up"}`])
	require.Equal(t, samples(1000, 2), st.Read(t, db, "globex", 0, all, st.Eq("__name__", "up"))[`{__name__="up"}`])
	require.Empty(t, st.Read(t, db, "initech", 0, all, st.Eq("__name__", "up")))
}

func TestMatchers(t *testing.T) {
	db := st.Open(t, nil)
	for i := range 20 {
		st.Write(t, db, "default", st.Series(ls("__name__", "m", "i", fmt.Sprint(i), "even", fmt.Sprint(i%2 == 0)), 1000, float64(i)))
	}
	st.Write(t, db, "default", st.Series(ls("__name__", "other"), 1000, 1))
	count := func(ms ...*labels.Matcher) int {
		t.Helper()
		return len(st.Read(t, db, "default", 0, all, ms...))
	}
	m := labels.MustNewMatcher
	require.Equal(t, 20, count(m(labels.MatchEqual, "__name__", "m")))
	require.Equal(t, 10, count(m(labels.MatchEqual, "__name__", "m"), m(labels.MatchNotEqual, "even", "true")))
	require.Equal(t, 11, count(m(labels.MatchRegexp, "i", "1.*")))                                          // 1, 10..19
	require.Equal(t, 3, count(m(labels.MatchRegexp, "i", "1|2|3")))                                         // set matches
	require.Equal(t, 9, count(m(labels.MatchEqual, "__name__", "m"), m(labels.MatchNotRegexp, "i", "1.*"))) // 0,2..9
	// A matcher that matches the empty string also selects series without the label.
	require.Equal(t, 1, count(m(labels.MatchEqual, "i", ""), m(labels.MatchRegexp, "__name__", ".+")))
	require.Equal(t, 21, count(m(labels.MatchRegexp, "__name__", ".+")))
	require.Equal(t, 0, count(m(labels.MatchEqual, "__name__", "nope")))

	ctx := context.Background()
	q, err := db.Querier(ctx, "default", 0, all)
	require.NoError(t, err)
	defer q.Close()
	names, err := q.LabelNames(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"__name__", "even", "i"}, names)
	vals, err := q.LabelValues(ctx, "even")
	require.NoError(t, err)
	require.Equal(t, []string{"false", "true"}, vals)
	vals, err = q.LabelValues(ctx, "__name__", m(labels.MatchEqual, "i", "3"))
	require.NoError(t, err)
	require.Equal(t, []string{"m"}, vals)
	// Nothing in range, nothing listed.
	q2, err := db.Querier(ctx, "default", 5000, 6000)
	require.NoError(t, err)
	defer q2.Close()
	names, err = q2.LabelNames(ctx)
	require.NoError(t, err)
	require.Empty(t, names)
}

// Out-of-order samples, backfill and rewrites of a timestamp, before and
// after the head is sealed: the most recent write of a timestamp wins.
func TestOutOfOrderAndOverwrite(t *testing.T) {
	for _, headSize := range []int{4, 240} {
		t.Run(fmt.Sprint("head=", headSize), func(t *testing.T) {
			db := st.Open(t, &storage.Options{HeadChunkSamples: headSize})
			up := ls("__name__", "up")
			want := map[int64]float64{}
			rng := rand.New(rand.NewPCG(1, 2))
			for round := range 30 {
				var s []storage.Sample
				for range 10 {
					ts := int64(rng.IntN(200)) * 15000
					v := float64(round*100 + rng.IntN(100))
					s = append(s, storage.Sample{T: ts, V: v})
					want[ts] = v
				}
				st.Write(t, db, "default", storage.SeriesSamples{Labels: up, Samples: s})
				if round%7 == 0 {
					require.NoError(t, db.Flush())
				}
			}
			check := func(db *storage.DB) {
				got := st.Read(t, db, "default", math.MinInt64, all, st.Eq("__name__", "up"))[`{__name__="up"}`]
				require.Len(t, got, len(want))
				for i, s := range got {
					require.Equal(t, want[s.T], s.V, "t=%d", s.T)
					if i > 0 {
						require.Less(t, got[i-1].T, s.T)
					}
				}
			}
			check(db)
			dir := db.Dir()
			require.NoError(t, storage.Crash(db))
			check(st.OpenDir(t, dir, nil))
		})
	}
}

func TestBackfillTo1970AndNegative(t *testing.T) {
	db := st.Open(t, nil)
	s := ls("__name__", "old")
	st.Write(t, db, "default", st.Series(s, 0, 1, 300000, 2, -86400000*3, 3))
	require.NoError(t, db.Flush())
	got := st.Read(t, db, "default", math.MinInt64, all, st.Eq("__name__", "old"))
	require.Equal(t, samples(-86400000*3, 3, 0, 1, 300000, 2), got[`{__name__="old"}`])
}

func TestSpecialValuesAreExact(t *testing.T) {
	db := st.Open(t, &storage.Options{HeadChunkSamples: 3})
	stale := math.Float64frombits(storage.StaleNaN)
	vals := []float64{1, stale, math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 5e-324, math.MaxFloat64, 0.1 + 0.2}
	var s []storage.Sample
	for i, v := range vals {
		s = append(s, storage.Sample{T: int64(i) * 1000, V: v})
	}
	st.Write(t, db, "default", storage.SeriesSamples{Labels: ls("__name__", "x"), Samples: s})
	for _, flush := range []bool{false, true} {
		if flush {
			require.NoError(t, db.Flush())
		}
		got := st.Read(t, db, "default", 0, all, st.Eq("__name__", "x"))[`{__name__="x"}`]
		require.Len(t, got, len(vals))
		for i, g := range got {
			require.Equal(t, math.Float64bits(vals[i]), math.Float64bits(g.V), "value %d (flushed %v)", i, flush)
		}
	}
	require.True(t, storage.IsStaleNaN(stale))
}

func TestInvalidBatchChangesNothing(t *testing.T) {
	db := st.Open(t, &storage.Options{MaxLabelsPerSeries: 3, MaxLabelValueLen: 10})
	good := st.Series(ls("__name__", "good"), 1000, 1)
	cases := map[string]storage.SeriesSamples{
		"no labels":         st.Series(labels.EmptyLabels(), 1000, 1),
		"too many labels":   st.Series(ls("a", "1", "b", "2", "c", "3", "d", "4"), 1000, 1),
		"long value":        st.Series(ls("__name__", "01234567890"), 1000, 1),
		"empty values":      st.Series(ls("a", ""), 1000, 1),
		"bad utf8":          st.Series(ls("__name__", "\xff"), 1000, 1),
		"time out of range": st.Series(ls("__name__", "x"), math.MaxInt64, 1),
	}
	for name, bad := range cases {
		err := db.Write(context.Background(), "default", &storage.Batch{Series: []storage.SeriesSamples{good, bad}})
		require.Error(t, err, name)
		require.True(t, errorsIsAny(err, storage.ErrInvalidSeries, storage.ErrInvalidSample), "%s: %v", name, err)
	}
	require.Empty(t, st.Read(t, db, "default", math.MinInt64, all, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")))
	require.Zero(t, db.Stats().Series)
}

func TestSeriesLimit(t *testing.T) {
	db := st.Open(t, &storage.Options{MaxSeries: 3})
	st.Write(t, db, "default", st.Series(ls("__name__", "a"), 1, 1), st.Series(ls("__name__", "b"), 1, 1))
	err := db.Write(context.Background(), "default", &storage.Batch{Series: []storage.SeriesSamples{
		st.Series(ls("__name__", "c"), 1, 1), st.Series(ls("__name__", "d"), 1, 1)}})
	require.ErrorIs(t, err, storage.ErrTooManySeries)
	require.Equal(t, 2, db.Stats().Series, "the rejected batch created nothing")
	// Existing series keep taking samples.
	st.Write(t, db, "default", st.Series(ls("__name__", "a"), 2, 2))
}

func TestTenantSeriesLimit(t *testing.T) {
	db := st.Open(t, &storage.Options{TenantMaxSeries: func(tenant string) int {
		if tenant == "small" {
			return 2
		}
		return 0
	}})
	st.Write(t, db, "small", st.Series(ls("__name__", "a"), 1, 1), st.Series(ls("__name__", "b"), 1, 1))
	err := db.Write(context.Background(), "small", &storage.Batch{Series: []storage.SeriesSamples{
		st.Series(ls("__name__", "a"), 2, 2), st.Series(ls("__name__", "c"), 1, 1)}})
	require.ErrorIs(t, err, storage.ErrTooManySeries)
	require.Contains(t, err.Error(), "tenant small")
	require.Len(t, st.Read(t, db, "small", 0, all, st.Eq("__name__", "a"))[`{__name__="a"}`], 1, "nothing of the refused batch was stored")
	st.Write(t, db, "small", st.Series(ls("__name__", "a"), 2, 2)) // existing series keep taking samples
	st.Write(t, db, "big", st.Series(ls("__name__", "a"), 1, 1), st.Series(ls("__name__", "b"), 1, 1), st.Series(ls("__name__", "c"), 1, 1))
}

// The series limits count distinct series, not batch entries: remote write
// sends a series once per sample, so 600 new series arrive as 1,200
// entries (#23).
func TestSeriesLimitCountsDistinctSeries(t *testing.T) {
	db := st.Open(t, &storage.Options{MaxSeries: 1000, TenantMaxSeries: func(string) int { return 1000 }})
	var b storage.Batch
	for round := range 2 {
		for i := range 600 {
			b.Add(ls("__name__", "m", "i", strconv.Itoa(i)), storage.Sample{T: int64(round), V: 1})
		}
	}
	require.NoError(t, db.Write(context.Background(), "default", &b))
	require.Equal(t, 600, db.Stats().Series)

	// 401 new series, each twice: one over either limit, counted once each.
	b.Reset()
	for round := range 2 {
		for i := range 401 {
			b.Add(ls("__name__", "n", "i", strconv.Itoa(i)), storage.Sample{T: int64(round), V: 1})
		}
	}
	err := db.Write(context.Background(), "default", &b)
	require.ErrorIs(t, err, storage.ErrTooManySeries)
	require.ErrorContains(t, err, "adds 401 series to 600")
}

func TestCrashRecoveryReplaysWAL(t *testing.T) {
	dir := t.TempDir()
	db := st.OpenDir(t, dir, &storage.Options{HeadChunkSamples: 8})
	var want []storage.Sample
	for i := range 100 {
		want = append(want, storage.Sample{T: int64(i) * 15000, V: float64(i)})
		st.Write(t, db, "default", storage.SeriesSamples{Labels: ls("__name__", "c", "tenant", "x"), Samples: want[i : i+1]})
	}
	require.NoError(t, storage.Crash(db))
	for range 2 { // recovering twice gives the same answer
		db = st.OpenDir(t, dir, nil)
		require.Equal(t, want, st.Read(t, db, "default", math.MinInt64, all, st.Eq("__name__", "c"))[`{__name__="c", tenant="x"}`])
		require.NoError(t, storage.Crash(db))
	}
	// A clean close seals everything: the WAL is then (nearly) empty.
	db = st.OpenDir(t, dir, nil)
	require.NoError(t, db.Close())
	db = st.OpenDir(t, dir, nil)
	require.Less(t, storage.WALBytes(db), int64(1024))
	require.Equal(t, want, st.Read(t, db, "default", math.MinInt64, all, st.Eq("__name__", "c"))[`{__name__="c", tenant="x"}`])
}

// Pebble runs without its own log: sealed chunks, series keys and deletes
// that sit in a memtable at the crash must come back from our WAL.
func TestCrashLosesNothingPebbleHadInMemory(t *testing.T) {
	dir := t.TempDir()
	db := st.OpenDir(t, dir, &storage.Options{HeadChunkSamples: 4, WALSegmentSize: 4096, Shards: 1})
	want := map[string][]storage.Sample{}
	write := func(name string, from, to int) {
		for i := from; i < to; i++ {
			s := storage.Sample{T: int64(i) * 1000, V: float64(i)}
			want[`{__name__="`+name+`"}`] = append(want[`{__name__="`+name+`"}`], s)
			st.Write(t, db, "default", storage.SeriesSamples{Labels: ls("__name__", name), Samples: []storage.Sample{s}})
		}
	}
	write("old", 0, 500)
	require.NoError(t, db.Flush()) // sealed, in tables, log truncated
	write("old", 500, 1000)        // sealed into the memtable by the sealer
	write("new", 0, 300)           // a series key only in the memtable
	_, err := db.DeleteSeries(context.Background(), "default", 100_000, 199_000, st.Eq("__name__", "old"))
	require.NoError(t, err)
	want[`{__name__="old"}`] = slices.DeleteFunc(want[`{__name__="old"}`], func(s storage.Sample) bool {
		return s.T >= 100_000 && s.T <= 199_000
	})
	require.NoError(t, storage.Maintain(db))
	require.NoError(t, storage.Crash(db))
	db = st.OpenDir(t, dir, nil)
	require.Equal(t, want, st.Read(t, db, "default", math.MinInt64, all, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")))
}

func TestWALIsTruncatedAfterSealing(t *testing.T) {
	db := st.Open(t, &storage.Options{HeadChunkSamples: 4, WALSegmentSize: 4096})
	for i := range 2000 {
		st.Write(t, db, "default", st.Series(ls("__name__", "c"), float64(i)*1000, float64(i)))
	}
	before := storage.WALBytes(db)
	require.NoError(t, db.Flush())
	require.Less(t, storage.WALBytes(db), before/4, "sealed segments are deleted")
	got := st.Read(t, db, "default", 0, all, st.Eq("__name__", "c"))[`{__name__="c"}`]
	require.Len(t, got, 2000)
}

// backfill writes steps samples of random values (some 8 bytes a sample
// in the log) to each of series series m{i=…}, 15 s apart, ten steps a
// write: hours of samples in moments.
func backfill(t *testing.T, db *storage.DB, rng *rand.Rand, series, steps int) {
	t.Helper()
	const per = 10
	for step := 0; step < steps; step += per {
		batch := make([]storage.SeriesSamples, series)
		for i := range batch {
			batch[i].Labels = ls("__name__", "m", "i", strconv.Itoa(i))
			for k := step; k < min(step+per, steps); k++ {
				batch[i].Samples = append(batch[i].Samples, storage.Sample{T: int64(k+1) * 15000, V: rng.Float64()})
			}
		}
		st.Write(t, db, "default", batch...)
	}
}

// walSegments lists the log segments of the first shard under dir.
func walSegments(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "shard-000", "wal", "0*"))
	require.NoError(t, err)
	return names
}

// A backfill logs hours of samples in seconds. The log's segments follow
// the heads' size, and a head left behind by the other series' samples
// (here one written once, first) is sealed before its time, so the log
// keeps about the last heads' worth instead of the whole backfill; nothing
// is lost, across a crash too.
func TestWALTruncatedBehindBackfill(t *testing.T) {
	dir := t.TempDir()
	opts := &storage.Options{Shards: 1, HeadChunkSamples: 24, WALSegmentSize: 16 << 10}
	db := st.OpenDir(t, dir, opts)
	st.Write(t, db, "default", st.Series(ls("__name__", "once"), 0, 42))
	const series, steps = 100, 2400
	backfill(t, db, rand.New(rand.NewPCG(1, 2)), series, steps)
	require.NoError(t, storage.Maintain(db))
	// The backfill filled 81 segments of 16 KiB (random values: some 8
	// bytes a sample), all kept before; four heads' worth of every
	// series is about five.
	segs := walSegments(t, dir)
	t.Log("segments", segs)
	require.LessOrEqual(t, len(segs), 8, "the log keeps the last heads, not the backfill")
	check := func(db *storage.DB) {
		got := st.Read(t, db, "default", math.MinInt64, all, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
		require.Equal(t, []storage.Sample{{T: 0, V: 42}}, got[`{__name__="once"}`])
		require.Len(t, got, series+1)
		for i := range series {
			require.Len(t, got[`{__name__="m", i="`+strconv.Itoa(i)+`"}`], steps)
		}
	}
	check(db)
	require.NoError(t, storage.Crash(db))
	db = st.OpenDir(t, dir, opts)
	check(db)
}

// The segment size follows the heads: 2,000 series with heads of 24
// samples take some 400 KB of log a round of heads, so segments end at the
// 4 MiB floor, not at 64 MiB, and the ones the heads have left are deleted.
func TestWALSegmentsFollowHeads(t *testing.T) {
	dir := t.TempDir()
	db := st.OpenDir(t, dir, &storage.Options{Shards: 1, HeadChunkSamples: 24})
	const series, steps = 2000, 600
	backfill(t, db, rand.New(rand.NewPCG(3, 4)), series, steps)
	require.NoError(t, storage.Maintain(db))
	segs := walSegments(t, dir)
	require.NotEmpty(t, segs)
	first, err := strconv.Atoi(filepath.Base(segs[0]))
	require.NoError(t, err)
	// 1.2 M samples of random values: about 10 MB of log.
	require.GreaterOrEqual(t, first, 2, "segments: %v", segs)
	require.LessOrEqual(t, len(segs), 2, "segments: %v", segs)
	require.Less(t, storage.WALBytes(db), int64(9<<20))
	require.Len(t, st.Read(t, db, "default", math.MinInt64, all, st.Eq("i", "7"))[`{__name__="m", i="7"}`], steps)
}

// A shard that takes few samples fills a 64 MiB segment in weeks: a
// segment is also closed when it is half a MaxHeadAge old, so the log
// holds about the last MaxHeadAge and a half of samples, not weeks.
func TestWALSegmentsCloseWithAge(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC).UnixMilli())
	clock := func() time.Time { return time.UnixMilli(now.Load()) }
	dir := t.TempDir()
	opts := &storage.Options{Shards: 1, Now: clock}
	db := st.OpenDir(t, dir, opts)
	const step = 10 * time.Minute
	var n int
	for range 24 * time.Hour / step {
		t0 := now.Load()
		for i := range 3 {
			st.Write(t, db, "default", st.Series(ls("__name__", "slow", "i", strconv.Itoa(i)), float64(t0), float64(n)))
		}
		n++
		require.NoError(t, storage.Maintain(db))
		now.Add(step.Milliseconds())
	}
	// Heads are sealed two hours after their first sample, and a segment
	// is closed an hour after it began: the log keeps the segments of
	// the last three hours at most.
	segs := walSegments(t, dir)
	require.LessOrEqual(t, len(segs), 4, "segments: %v", segs)
	// A segment an hour: some 24 were made (one, of 64 MiB, before).
	first, err := strconv.Atoi(filepath.Base(segs[0]))
	require.NoError(t, err)
	require.Greater(t, first, 18, "segments: %v", segs)
	require.Len(t, st.Read(t, db, "default", math.MinInt64, all, st.Eq("i", "1"))[`{__name__="slow", i="1"}`], n)
	require.NoError(t, storage.Crash(db))
	db = st.OpenDir(t, dir, opts)
	require.Len(t, st.Read(t, db, "default", math.MinInt64, all, st.Eq("i", "1"))[`{__name__="slow", i="1"}`], n)
}

func TestDeleteSeries(t *testing.T) {
	dir := t.TempDir()
	db := st.OpenDir(t, dir, &storage.Options{HeadChunkSamples: 5})
	for i := range 30 {
		st.Write(t, db, "default",
			st.Series(ls("__name__", "a"), float64(i)*1000, float64(i)),
			st.Series(ls("__name__", "b"), float64(i)*1000, float64(i)))
	}
	require.NoError(t, db.Flush())
	ctx := context.Background()
	// Partial: drop b's samples in [10s, 19s].
	n, err := db.DeleteSeries(ctx, "default", 10000, 19000, st.Eq("__name__", "b"))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	// Whole: a disappears.
	n, err = db.DeleteSeries(ctx, "default", math.MinInt64, math.MaxInt64, st.Eq("__name__", "a"))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	check := func(db *storage.DB) {
		got := st.Read(t, db, "default", math.MinInt64, all, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
		require.NotContains(t, got, `{__name__="a"}`)
		b := got[`{__name__="b"}`]
		require.Len(t, b, 20)
		for _, s := range b {
			require.False(t, s.T >= 10000 && s.T <= 19000, "t=%d survived", s.T)
		}
	}
	check(db)
	require.NoError(t, storage.Crash(db))
	db = st.OpenDir(t, dir, nil)
	check(db)
	// Writing the deleted series again creates it afresh.
	st.Write(t, db, "default", st.Series(ls("__name__", "a"), 99000, 7))
	require.Equal(t, samples(99000, 7), st.Read(t, db, "default", 0, all, st.Eq("__name__", "a"))[`{__name__="a"}`])
}

func TestRetentionDropsWholeDays(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	dir := t.TempDir()
	db := st.OpenDir(t, dir, &storage.Options{Retention: 48 * time.Hour, Now: clock, HeadChunkSamples: 10})
	day := int64(24 * time.Hour / time.Millisecond)
	nowMs := now.UnixMilli()
	// One sample per hour for the last 2 days, and one old series.
	var recent []storage.Sample
	for h := int64(47); h >= 0; h-- {
		recent = append(recent, storage.Sample{T: nowMs - h*3600_000, V: float64(h)})
	}
	st.Write(t, db, "default", storage.SeriesSamples{Labels: ls("__name__", "recent"), Samples: recent})
	// Older than retention: dropped at write time and counted.
	st.Write(t, db, "default", st.Series(ls("__name__", "ancient"), float64(nowMs-10*day), 1))
	require.Equal(t, int64(1), db.Stats().SamplesDropped)
	require.NoError(t, db.Flush())
	require.Len(t, st.Read(t, db, "default", 0, all, st.Eq("__name__", "recent"))[`{__name__="recent"}`], 48)
	require.NoError(t, db.Close())

	// A day and a half later, the first day and a half is gone.
	now = now.Add(36 * time.Hour)
	db = st.OpenDir(t, dir, &storage.Options{Retention: 48 * time.Hour, Now: clock})
	got := st.Read(t, db, "default", 0, all, st.Eq("__name__", "recent"))[`{__name__="recent"}`]
	cutoff := now.Add(-48 * time.Hour).UnixMilli()
	require.NotEmpty(t, got)
	for _, s := range got {
		require.GreaterOrEqual(t, s.T, cutoff)
	}
	require.Len(t, got, 13) // 00:00 to 12:00 of the day the cutoff falls in
	// After four more days everything is gone, series included.
	require.NoError(t, db.Close())
	now = now.Add(4 * 24 * time.Hour)
	db = st.OpenDir(t, dir, &storage.Options{Retention: 48 * time.Hour, Now: clock})
	require.Zero(t, db.Stats().Series)
}

func TestSnapshot(t *testing.T) {
	db := st.Open(t, &storage.Options{HeadChunkSamples: 4})
	for i := range 10 {
		st.Write(t, db, "default", st.Series(ls("__name__", "s"), float64(i)*1000, float64(i)))
	}
	snap := filepath.Join(t.TempDir(), "snap")
	require.NoError(t, db.Snapshot(snap))
	st.Write(t, db, "default", st.Series(ls("__name__", "s"), 99000, 99)) // after: not in the snapshot
	require.Error(t, db.Snapshot(snap), "an existing folder is refused")
	sdb := st.OpenDir(t, snap, nil)
	got := st.Read(t, sdb, "default", 0, all, st.Eq("__name__", "s"))[`{__name__="s"}`]
	require.Len(t, got, 10)
}

// Concurrent writers and readers on overlapping series; run with -race.
func TestConcurrentWritesAndReads(t *testing.T) {
	db := st.Open(t, &storage.Options{HeadChunkSamples: 16, Shards: 4})
	const writers, perWriter = 4, 300
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				var b storage.Batch
				for s := range 5 {
					b.Add(ls("__name__", "m", "s", fmt.Sprint(s), "w", fmt.Sprint(w)), storage.Sample{T: int64(i) * 1000, V: float64(i)})
				}
				if err := db.Write(ctx, "default", &b); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		// Selects warm the series they will read (warm.go) while the
		// writers grow, freeze and reset their heads, with and without
		// the heads (Newest).
		for k := 0; ctx.Err() == nil; k++ {
			q, _ := db.Querier(ctx, "default", 0, all)
			ss := q.Select(ctx, &storage.SelectHints{Start: 0, End: all, Newest: k%2 == 1}, st.Eq("__name__", "m"))
			for ss.Next() {
				it := ss.At().Iterator(nil)
				prev := int64(-1)
				for it.Next() {
					ts, _ := it.At()
					if ts <= prev {
						t.Errorf("timestamps out of order: %d after %d", ts, prev)
					}
					prev = ts
				}
			}
			_ = q.Close()
			_ = Maintain(db)
		}
	}()
	wg.Wait()
	cancel()
	<-readerDone
	got := st.Read(t, db, "default", 0, all, st.Eq("__name__", "m"))
	require.Len(t, got, writers*5)
	for k, s := range got {
		require.Len(t, s, perWriter, k)
	}
}

func Maintain(db *storage.DB) error { return storage.Maintain(db) }

func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errorsIs(err, t) {
			return true
		}
	}
	return false
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// Series given by key: decoded once, then found by key; a deleted series'
// key creates it afresh; an undecodable key stores nothing.
func TestWriteByKey(t *testing.T) {
	db := st.Open(t, &storage.Options{MaxSeries: 3})
	decoded := 0
	keys := map[string]labels.Labels{
		"a": ls("__name__", "a"),
		"b": ls("__name__", "b"),
	}
	batch := func(t0 int64, ks ...string) *storage.Batch {
		b := &storage.Batch{Decode: func(k []byte) (labels.Labels, error) {
			decoded++
			l, ok := keys[string(k)]
			if !ok {
				return labels.EmptyLabels(), errors.New("no such key")
			}
			return l, nil
		}}
		for _, k := range ks {
			b.Series = append(b.Series, storage.SeriesSamples{Key: []byte(k), Samples: []storage.Sample{{T: t0, V: float64(t0)}}})
		}
		return b
	}
	ctx := context.Background()
	require.NoError(t, db.Write(ctx, "default", batch(1, "a", "b")))
	require.NoError(t, db.Write(ctx, "default", batch(2, "a", "b")))
	require.NoError(t, db.Write(ctx, "other", batch(2, "a")))
	require.Equal(t, 3, decoded, "once per key and tenant")

	err := db.Write(ctx, "default", batch(3, "a", "zzz"))
	require.ErrorIs(t, err, storage.ErrInvalidSeries)
	require.ErrorContains(t, err, "no such key")

	_, err = db.DeleteSeries(ctx, "default", math.MinInt64, math.MaxInt64, st.Eq("__name__", "a"))
	require.NoError(t, err)
	require.NoError(t, db.Write(ctx, "default", batch(4, "a")))
	got := st.Read(t, db, "default", math.MinInt64, all, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	require.Equal(t, map[string][]storage.Sample{
		`{__name__="a"}`: {{T: 4, V: 4}},
		`{__name__="b"}`: {{T: 1, V: 1}, {T: 2, V: 2}},
	}, got)
	// The series limit counts series, however they are named.
	keys["c"], keys["d"] = ls("__name__", "c"), ls("__name__", "d")
	require.NoError(t, db.Write(ctx, "default", batch(5, "a", "b")))
	require.ErrorIs(t, db.Write(ctx, "default", batch(5, "c", "d")), storage.ErrTooManySeries)
}

// Writes of series found by key go to the shard that holds the series
// (the series knows it, memSeries.state): their samples are in the log of
// that shard and come back after a crash, also for a series deleted and
// made again by its key.
func TestWriteByKeyAcrossShards(t *testing.T) {
	dir := t.TempDir()
	db := st.OpenDir(t, dir, &storage.Options{Shards: 4})
	keys := map[string]labels.Labels{}
	var names []string
	for i := range 40 {
		k := fmt.Sprintf("k%d", i)
		keys[k] = ls("__name__", "m", "i", strconv.Itoa(i))
		names = append(names, k)
	}
	decoded := 0
	batch := func(t0 int64, ks ...string) *storage.Batch {
		b := &storage.Batch{Decode: func(k []byte) (labels.Labels, error) {
			decoded++
			return keys[string(k)], nil
		}}
		for _, k := range ks {
			b.Series = append(b.Series, storage.SeriesSamples{Key: []byte(k), Samples: []storage.Sample{{T: t0, V: float64(t0)}}})
		}
		return b
	}
	ctx := context.Background()
	want := map[string][]storage.Sample{}
	for t0 := int64(1); t0 <= 3; t0++ {
		require.NoError(t, db.Write(ctx, "default", batch(t0, names...)))
	}
	require.Equal(t, len(names), decoded, "decoded once, then found by key")
	_, err := db.DeleteSeries(ctx, "default", math.MinInt64, math.MaxInt64, st.Eq("i", "7"))
	require.NoError(t, err)
	require.NoError(t, db.Write(ctx, "default", batch(4, names...)))
	for i := range names {
		s := fmt.Sprintf(`{__name__="m", i="%d"}`, i)
		for t0 := int64(1); t0 <= 4; t0++ {
			if i != 7 || t0 == 4 {
				want[s] = append(want[s], storage.Sample{T: t0, V: float64(t0)})
			}
		}
	}
	require.Equal(t, want, st.Read(t, db, "default", math.MinInt64, all, st.Eq("__name__", "m")))
	require.NoError(t, storage.Crash(db))
	db = st.OpenDir(t, dir, nil)
	require.Equal(t, want, st.Read(t, db, "default", math.MinInt64, all, st.Eq("__name__", "m")))
}

// The key cache is bounded: a sender that makes up a new encoding of one
// series in every write (label order, unknown fields) cannot grow it past
// KeyCacheEntries, and a key in steady use stays cached through the flood
// (#23: 6 M encodings of one series held 318 MB).
func TestKeyCacheIsBounded(t *testing.T) {
	const max = 1024
	db := st.Open(t, &storage.Options{KeyCacheEntries: max, NoSync: true})
	hotDecodes := 0
	decode := func(k []byte) (labels.Labels, error) {
		if string(k) == "hot" {
			hotDecodes++
			return ls("__name__", "hot"), nil
		}
		return ls("__name__", "flood"), nil
	}
	ctx := context.Background()
	for i := range 1000 {
		b := &storage.Batch{Decode: decode}
		b.Series = append(b.Series, storage.SeriesSamples{Key: []byte("hot"), Samples: samples(float64(i), 1)})
		for j := range 100 {
			b.Series = append(b.Series, storage.SeriesSamples{Key: fmt.Appendf(nil, "flood-%d-%d", i, j), Samples: samples(float64(i), 1)})
		}
		require.NoError(t, db.Write(ctx, "default", b))
		require.LessOrEqual(t, storage.KeyCacheLen(db), max, "after write %d", i)
	}
	require.Equal(t, 2, db.Stats().Series, "100,000 encodings of one series are one series")
	require.Equal(t, 1, hotDecodes, "the key in use was never evicted")
}

// The key cache holds the keys of every live series even when they are
// more than KeyCacheEntries: at a million active series a cache of a
// million keys in two generations thrashed, every write decoding and
// looking up labels again (issue 18's 1M-series run).
func TestKeyCacheHoldsLiveSeries(t *testing.T) {
	const max, series = 256, 3000
	db := st.Open(t, &storage.Options{KeyCacheEntries: max, NoSync: true})
	decodes := 0
	decode := func(k []byte) (labels.Labels, error) {
		decodes++
		return ls("__name__", "m", "k", string(k)), nil
	}
	ctx := context.Background()
	for round := range 4 {
		decodes = 0
		for from := 0; from < series; from += 500 {
			b := &storage.Batch{Decode: decode}
			for j := from; j < from+500; j++ {
				b.Series = append(b.Series, storage.SeriesSamples{Key: fmt.Appendf(nil, "s-%d", j), Samples: samples(float64(round), 1)})
			}
			require.NoError(t, db.Write(ctx, "default", b))
		}
		if round == 0 {
			require.Equal(t, series, decodes, "the first round creates the series")
		}
	}
	require.Equal(t, 0, decodes, "a later round finds every key")
	require.Less(t, storage.KeyCacheLen(db), 3*series, "the cache follows the live series, no further")
}

func TestKVSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	db := st.OpenDir(t, dir, nil)
	require.NoError(t, db.PutKV("rules/t1/ns/a", []byte("one")))
	require.NoError(t, db.PutKV("rules/t1/ns/b", []byte("two")))
	require.NoError(t, db.PutKV("rules/t2/ns/a", []byte("other")))
	require.NoError(t, db.DeleteKV("rules/t1/ns/b"))
	require.NoError(t, storage.Crash(db))
	db = st.OpenDir(t, dir, nil)
	v, ok, err := db.GetKV("rules/t1/ns/a")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "one", string(v))
	got, err := db.ListKV("rules/t1/")
	require.NoError(t, err)
	require.Equal(t, map[string][]byte{"rules/t1/ns/a": []byte("one")}, got)
	_, ok, err = db.GetKV("nope")
	require.NoError(t, err)
	require.False(t, ok)
}

// TestWarmAfterOpen: with WarmBytes a reopened DB reads its newest chunks
// in the background (and says how much); closing it at once does not wait
// for the warm-up or leak its iterators; the data reads back the same.
func TestWarmAfterOpen(t *testing.T) {
	dir := t.TempDir()
	db := st.OpenDir(t, dir, nil)
	for i := range 200 {
		st.Write(t, db, "default", st.Series(ls("__name__", "m", "i", fmt.Sprint(i)), 1000, 1, 2000, 2, 3000, 3))
	}
	require.NoError(t, db.Flush())
	require.NoError(t, db.Close())

	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	db = st.OpenDir(t, dir, &storage.Options{WarmBytes: 1 << 20, Logger: log})
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), "block cache warmed")
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, db.Warming(), "ready once warmed")
	mu.Lock()
	require.NotContains(t, logs.String(), "bytes=0 ", "the warm-up read chunks: %s", logs.String())
	mu.Unlock()
	require.Len(t, st.Read(t, db, "default", 0, all, st.Eq("__name__", "m")), 200)
	require.NoError(t, db.Close())

	db = st.OpenDir(t, dir, &storage.Options{WarmBytes: 1 << 30})
	require.Error(t, db.Warming(), "not ready while warming")
	require.NoError(t, db.Close(), "closing during the warm-up")

	db = st.OpenDir(t, dir, nil)
	require.NoError(t, db.Warming(), "nothing to warm: ready at once")
	require.NoError(t, db.Close())
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestQuerierSeesChunksSealedMidQuery: a querier reuses one Pebble
// iterator across its series; chunks sealed to disk (and dropped from
// memory) after that iterator was opened are still read by the series
// that come later.
func TestQuerierSeesChunksSealedMidQuery(t *testing.T) {
	db := st.Open(t, &storage.Options{Shards: 1})
	ctx := context.Background()
	st.Write(t, db, "default", st.Series(ls("__name__", "m", "s", "a"), 1000, 1, 2000, 2))
	require.NoError(t, db.Flush()) // a's samples on disk: its reads open the iterator
	st.Write(t, db, "default", st.Series(ls("__name__", "m", "s", "b"), 1000, 1, 2000, 2, 3000, 3))
	q, err := db.Querier(ctx, "default", 0, all)
	require.NoError(t, err)
	defer q.Close()
	ss := q.Select(ctx, nil, st.Eq("__name__", "m"))
	count := func() int {
		n := 0
		for it := ss.At().Iterator(nil); it.Next(); {
			n++
		}
		return n
	}
	require.True(t, ss.Next())
	require.Equal(t, 2, count(), "series a")
	require.NoError(t, db.Flush()) // b moves from memory to disk meanwhile
	require.True(t, ss.Next())
	require.Equal(t, 3, count(), "series b, sealed after the querier's iterator was opened")
}
