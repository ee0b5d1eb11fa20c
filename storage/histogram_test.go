package storage_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// counterHist is a counter histogram after i scrapes: schema 3, buckets
// growing at different rates, a bucket appearing at i = 5.
func counterHist(i int) *histogram.FloatHistogram {
	f := float64(i)
	h := &histogram.FloatHistogram{
		Schema: 3, ZeroThreshold: 1e-128, ZeroCount: f,
		PositiveSpans:   []histogram.Span{{Offset: -3, Length: 4}},
		PositiveBuckets: []float64{2 * f, 5 * f, 3 * f, f},
		NegativeSpans:   []histogram.Span{{Offset: 0, Length: 1}},
		NegativeBuckets: []float64{f},
	}
	if i >= 5 {
		h.PositiveSpans = append(h.PositiveSpans, histogram.Span{Offset: 2, Length: 1})
		h.PositiveBuckets = append(h.PositiveBuckets, f-4)
	}
	for _, v := range h.PositiveBuckets {
		h.Count += v
	}
	h.Count += h.ZeroCount + h.NegativeBuckets[0]
	h.Sum = 0.0123 * f * f
	return h
}

func withHint(h *histogram.FloatHistogram, hint histogram.CounterResetHint) *histogram.FloatHistogram {
	h = h.Copy()
	h.CounterResetHint = hint
	return h
}

func staleHist() *histogram.FloatHistogram {
	return &histogram.FloatHistogram{Sum: math.Float64frombits(storage.StaleNaN)}
}

// requireMixed compares samples bit for bit, histograms with their hints.
func requireMixed(t testing.TB, want, got []st.Mixed, msg string) {
	t.Helper()
	require.Equal(t, len(want), len(got), "%s: %d samples, got %v", msg, len(want), got)
	for i := range want {
		w, g := want[i], got[i]
		require.Equal(t, w.T, g.T, "%s: sample %d", msg, i)
		require.Equal(t, math.Float64bits(w.V), math.Float64bits(g.V), "%s: value at %d", msg, w.T)
		if w.H == nil {
			require.Nil(t, g.H, "%s: a float at %d", msg, w.T)
			continue
		}
		require.NotNil(t, g.H, "%s: a histogram at %d", msg, w.T)
		require.True(t, w.H.Equals(g.H), "%s: at %d want %s got %s", msg, w.T, w.H, g.H)
		require.Equal(t, w.H.CounterResetHint, g.H.CounterResetHint, "%s: hint at %d", msg, w.T)
	}
}

func hs(t int64, h *histogram.FloatHistogram) storage.HSample { return storage.HSample{T: t, H: h} }

// TestHistogramsWriteRead writes float-only, histogram-only and mixed
// series (switching kinds, out of order, rewriting a timestamp) and reads
// them back from memory, after sealing, and after a restart.
func TestHistogramsWriteRead(t *testing.T) {
	dir := t.TempDir()
	opts := &storage.Options{HeadChunkSamples: 4}
	db := st.OpenDir(t, dir, opts)
	floats, hists, mixed := ls("__name__", "f"), ls("__name__", "h"), ls("__name__", "m")
	var b storage.Batch
	b.Add(floats, storage.Sample{T: 1000, V: 1}, storage.Sample{T: 2000, V: 2})
	var hsmp []storage.HSample
	for i := range 12 {
		hsmp = append(hsmp, hs(int64(i)*15000, counterHist(i)))
	}
	b.AddHistograms(hists, hsmp...)
	b.Series = append(b.Series, storage.SeriesSamples{
		Labels:     mixed,
		Samples:    []storage.Sample{{T: 1000, V: 10}, {T: 2000, V: 20}, {T: 9000, V: 90}},
		Histograms: []storage.HSample{hs(3000, counterHist(3)), hs(4000, counterHist(4)), hs(5000, counterHist(1))},
	})
	st.Write(t, db, "default", b.Series...)
	// Out of order, a rewrite and a float at a histogram's timestamp.
	st.Write(t, db, "default", storage.SeriesSamples{Labels: mixed,
		Samples:    []storage.Sample{{T: 4000, V: 40}},
		Histograms: []storage.HSample{hs(2500, counterHist(2)), hs(5000, counterHist(6)), hs(10000, staleHist())},
	})
	wantH := []st.Mixed{}
	for i := range 12 {
		hint := histogram.NotCounterReset
		if i == 0 {
			hint = histogram.UnknownCounterReset
		}
		wantH = append(wantH, st.Mixed{T: int64(i) * 15000, H: withHint(counterHist(i), hint)})
	}
	want := map[string][]st.Mixed{
		`{__name__="f"}`: {{T: 1000, V: 1}, {T: 2000, V: 2}},
		`{__name__="h"}`: wantH,
		`{__name__="m"}`: {
			{T: 1000, V: 10}, {T: 2000, V: 20},
			{T: 2500, H: withHint(counterHist(2), histogram.UnknownCounterReset)}, // out of order
			{T: 3000, H: withHint(counterHist(3), histogram.UnknownCounterReset)}, // the first
			{T: 4000, H: withHint(counterHist(4), histogram.NotCounterReset)},     // the histogram wins
			{T: 5000, H: withHint(counterHist(6), histogram.UnknownCounterReset)}, // rewritten
			{T: 9000, V: 90},
			{T: 10000, H: staleHist()},
		},
	}
	read := func(db *storage.DB, stage string) {
		got := st.ReadMixed(t, db, "default", math.MinInt64, math.MaxInt64, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
		require.Len(t, got, len(want), stage)
		for k, w := range want {
			requireMixed(t, w, got[k], stage+" "+k)
		}
		// A narrower range and SeekTo.
		q, err := db.Querier(context.Background(), "default", 2000, 5000)
		require.NoError(t, err)
		defer q.Close()
		ss := q.Select(context.Background(), nil, st.Eq("__name__", "m"))
		require.True(t, ss.Next())
		it := ss.At().Iterator(nil).(storage.HistogramIterator)
		require.True(t, it.SeekTo(2600))
		ts, _ := it.At()
		require.Equal(t, int64(3000), ts)
		require.True(t, it.AtHistogram().Equals(counterHist(3)))
		require.True(t, it.SeekTo(2000), "SeekTo never moves back")
		require.True(t, it.Next())
		require.True(t, it.Next())
		ts, _ = it.At()
		require.Equal(t, int64(5000), ts)
		require.False(t, it.Next())
		require.NoError(t, it.Err())
	}
	read(db, "memory")
	require.NoError(t, db.Flush())
	read(db, "sealed")
	require.NoError(t, db.Close())
	db = st.OpenDir(t, dir, opts)
	read(db, "reopened")
	st.Write(t, db, "default", storage.SeriesSamples{Labels: hists, Histograms: []storage.HSample{hs(12*15000, counterHist(12))}})
	got := st.ReadMixed(t, db, "default", 12*15000, 12*15000, st.Eq("__name__", "h"))[`{__name__="h"}`]
	// After a restart the previous histogram is known only if the WAL
	// replay brought it back (whether its segment was still there depends
	// on when the log was last truncated): the hint is unknown, or
	// not-a-reset, never a reset.
	require.Len(t, got, 1)
	require.True(t, counterHist(12).Equals(got[0].H), "after restart: %v", got)
	require.Contains(t, []histogram.CounterResetHint{histogram.UnknownCounterReset, histogram.NotCounterReset}, got[0].H.CounterResetHint, "after restart")
	require.Equal(t, int64(1), db.Stats().SamplesWritten)
}

func TestHistogramCounterResetHints(t *testing.T) {
	db := st.Open(t, &storage.Options{HeadChunkSamples: 3})
	l := ls("__name__", "c")
	gauge := withHint(counterHist(1), histogram.GaugeType)
	st.Write(t, db, "default", storage.SeriesSamples{Labels: l, Histograms: []storage.HSample{
		hs(1000, counterHist(5)),
		hs(2000, counterHist(6)),
		hs(3000, counterHist(2)), // a reset
		hs(4000, counterHist(3)),
		hs(5000, withHint(counterHist(4), histogram.CounterReset)), // as the sender says
		hs(6000, staleHist()),
		hs(7000, counterHist(5)), // after a stale marker
		hs(8000, gauge),
		hs(9000, counterHist(6)), // after a gauge
	}})
	got := st.ReadMixed(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "c"))[`{__name__="c"}`]
	requireMixed(t, []st.Mixed{
		{T: 1000, H: withHint(counterHist(5), histogram.UnknownCounterReset)},
		{T: 2000, H: withHint(counterHist(6), histogram.NotCounterReset)},
		{T: 3000, H: withHint(counterHist(2), histogram.CounterReset)},
		{T: 4000, H: withHint(counterHist(3), histogram.NotCounterReset)},
		{T: 5000, H: withHint(counterHist(4), histogram.CounterReset)},
		{T: 6000, H: staleHist()},
		{T: 7000, H: withHint(counterHist(5), histogram.UnknownCounterReset)},
		{T: 8000, H: gauge},
		{T: 9000, H: withHint(counterHist(6), histogram.UnknownCounterReset)},
	}, got, "hints")
}

func TestInvalidHistogramChangesNothing(t *testing.T) {
	db := st.Open(t, nil)
	bad := counterHist(3)
	bad.PositiveBuckets[1] = -1
	short := counterHist(3)
	short.PositiveBuckets = short.PositiveBuckets[:2]
	for name, h := range map[string]storage.HSample{
		"negative bucket":            hs(1000, bad),
		"spans and buckets disagree": hs(1000, short),
		"no histogram":               {T: 1000},
		"bad schema":                 hs(1000, &histogram.FloatHistogram{Schema: 42}),
		"time":                       hs(storage.MaxTime+1, counterHist(1)),
	} {
		t.Run(name, func(t *testing.T) {
			var b storage.Batch
			b.Add(ls("__name__", "ok"), storage.Sample{T: 1, V: 1})
			b.AddHistograms(ls("__name__", "bad"), hs(500, counterHist(1)), h)
			err := db.Write(context.Background(), "default", &b)
			require.ErrorIs(t, err, storage.ErrInvalidSample)
			require.Zero(t, db.Stats().Series)
		})
	}
}

func TestHistogramSeriesCountTowardsLimits(t *testing.T) {
	db := st.Open(t, &storage.Options{MaxSeries: 1})
	st.Write(t, db, "default", storage.SeriesSamples{Labels: ls("__name__", "a"), Histograms: []storage.HSample{hs(1, counterHist(1))}})
	err := db.Write(context.Background(), "default", &storage.Batch{Series: []storage.SeriesSamples{
		{Labels: ls("__name__", "b"), Histograms: []storage.HSample{hs(1, counterHist(1))}},
	}})
	require.ErrorIs(t, err, storage.ErrTooManySeries)
	require.Equal(t, int64(1), db.Stats().SamplesWritten)
}

// TestHistogramsSurviveCrash writes histograms (some sealed, some only in
// the WAL) and reopens a crash clone that keeps only what was fsynced.
func TestHistogramsSurviveCrash(t *testing.T) {
	fs := vfs.NewCrashableMem()
	opts := storage.Options{HeadChunkSamples: 5, WALSegmentSize: 4096, Shards: 2}
	db := crashOpen(t, fs, opts)
	want := map[string][]st.Mixed{}
	for i := range 40 {
		for s := range 3 {
			l := ls("__name__", "h", "s", fmt.Sprint(s))
			h := counterHist(i + s)
			if i == 20 && s == 1 {
				h = staleHist()
			}
			st.Write(t, db, "default", storage.SeriesSamples{Labels: l, Histograms: []storage.HSample{hs(int64(i)*1000, h)}})
			want[l.String()] = append(want[l.String()], st.Mixed{T: int64(i) * 1000, H: h})
		}
		if i == 25 {
			require.NoError(t, db.Flush())
		}
	}
	clone := fs.CrashClone(vfs.CrashCloneCfg{})
	require.NoError(t, db.Close())
	db = crashOpen(t, clone, opts)
	got := st.ReadMixed(t, db, "default", math.MinInt64, math.MaxInt64, st.Eq("__name__", "h"))
	require.Len(t, got, 3)
	for k, w := range want {
		g := got[k]
		require.Len(t, g, len(w), k)
		for i := range w {
			require.Equal(t, w[i].T, g[i].T)
			require.True(t, w[i].H.Equals(g[i].H), "%s at %d: want %s got %s", k, w[i].T, w[i].H, g[i].H)
		}
	}
}

func TestHistogramsDeleteSeries(t *testing.T) {
	dir := t.TempDir()
	db := st.OpenDir(t, dir, &storage.Options{HeadChunkSamples: 5})
	for i := range 30 {
		st.Write(t, db, "default",
			storage.SeriesSamples{Labels: ls("__name__", "a"), Histograms: []storage.HSample{hs(int64(i)*1000, counterHist(i))}},
			storage.SeriesSamples{Labels: ls("__name__", "b"), Histograms: []storage.HSample{hs(int64(i)*1000, counterHist(i))}, Samples: []storage.Sample{{T: int64(i)*1000 + 500, V: 1}}})
		if i == 20 {
			require.NoError(t, db.Flush()) // some sealed, some in memory
		}
	}
	ctx := context.Background()
	n, err := db.DeleteSeries(ctx, "default", 10000, 24000, st.Eq("__name__", "b"))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = db.DeleteSeries(ctx, "default", math.MinInt64, math.MaxInt64, st.Eq("__name__", "a"))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	check := func(db *storage.DB) {
		got := st.ReadMixed(t, db, "default", math.MinInt64, math.MaxInt64, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
		require.NotContains(t, got, `{__name__="a"}`)
		b := got[`{__name__="b"}`]
		require.Len(t, b, 60-15-14) // histograms at 10s..24s, floats at 10.5s..23.5s
		for _, s := range b {
			require.False(t, s.T >= 10000 && s.T <= 24000, "t=%d survived", s.T)
		}
	}
	check(db)
	require.NoError(t, db.Flush())
	check(db)
	require.NoError(t, storage.Crash(db))
	db = st.OpenDir(t, dir, nil)
	check(db)
	// Deleting what is left of b's range removes the series.
	n, err = db.DeleteSeries(ctx, "default", 0, 30000, st.Eq("__name__", "b"))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Zero(t, db.Stats().Series)
}

func TestHistogramsRetention(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	dir := t.TempDir()
	opts := &storage.Options{Retention: 48 * time.Hour, Now: clock, HeadChunkSamples: 10}
	db := st.OpenDir(t, dir, opts)
	nowMs := now.UnixMilli()
	var recent []storage.HSample
	for h := int64(47); h >= 0; h-- {
		recent = append(recent, hs(nowMs-h*3600_000, counterHist(int(48-h))))
	}
	st.Write(t, db, "default", storage.SeriesSamples{Labels: ls("__name__", "recent"), Histograms: recent})
	st.Write(t, db, "default", storage.SeriesSamples{Labels: ls("__name__", "ancient"), Histograms: []storage.HSample{hs(nowMs-10*24*3600_000, counterHist(1))}})
	require.Equal(t, int64(1), db.Stats().SamplesDropped)
	require.Equal(t, int64(48), db.Stats().SamplesWritten)
	require.NoError(t, db.Flush())
	require.NoError(t, db.Close())

	now = now.Add(36 * time.Hour)
	db = st.OpenDir(t, dir, opts)
	got := st.ReadMixed(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "recent"))[`{__name__="recent"}`]
	require.Len(t, got, 13) // 00:00 to 12:00 of the day the cutoff falls in
	require.NoError(t, db.Close())
	now = now.Add(4 * 24 * time.Hour)
	db = st.OpenDir(t, dir, opts)
	require.Zero(t, db.Stats().Series)
}

func TestHistogramsSnapshot(t *testing.T) {
	db := st.Open(t, &storage.Options{HeadChunkSamples: 4})
	for i := range 10 {
		st.Write(t, db, "default", storage.SeriesSamples{Labels: ls("__name__", "s"), Histograms: []storage.HSample{hs(int64(i)*1000, counterHist(i))}})
	}
	snap := filepath.Join(t.TempDir(), "snap")
	require.NoError(t, db.Snapshot(snap))
	st.Write(t, db, "default", storage.SeriesSamples{Labels: ls("__name__", "s"), Histograms: []storage.HSample{hs(99000, counterHist(99))}})
	sdb := st.OpenDir(t, snap, nil)
	got := st.ReadMixed(t, sdb, "default", 0, math.MaxInt64, st.Eq("__name__", "s"))[`{__name__="s"}`]
	require.Len(t, got, 10)
	for i, m := range got {
		require.True(t, counterHist(i).Equals(m.H))
	}
}
