package storage_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

var tierDay0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

const dayMs = int64(24 * time.Hour / time.Millisecond)

var testTiers = []storage.Tier{{Resolution: 5 * time.Minute}, {Resolution: time.Hour}}

// tierData is days of samples of a few counters and gauges, with resets,
// stale markers, gaps, irregular intervals and samples on bucket and day
// boundaries.
func tierData(seed uint64, series, days int) []storage.SeriesSamples {
	rng := rand.New(rand.NewPCG(seed, 7))
	start := tierDay0.UnixMilli()
	var out []storage.SeriesSamples
	for s := range series {
		kind := []string{"counter", "gauge"}[s%2]
		step := []int64{15_000, 60_000, 37_000, 300_000}[rng.IntN(4)]
		t := start + int64(rng.IntN(4))*step // some start exactly at midnight
		if s%5 == 0 {
			t += dayMs // a series that starts a day later
		}
		end := start + int64(days)*dayMs
		var smp []storage.Sample
		v := 0.0
		for ; t <= end; t += step {
			switch {
			case rng.IntN(500) == 0:
				smp = append(smp, storage.Sample{T: t, V: math.Float64frombits(storage.StaleNaN)})
				t += int64(rng.IntN(20)) * step // a gap after the marker
				continue
			case rng.IntN(50) == 0:
				t += int64(rng.IntN(7)) * 1000 // jitter
			}
			if kind == "counter" {
				if rng.IntN(300) == 0 {
					v = float64(rng.IntN(10)) // a reset
				} else {
					v += float64(rng.IntN(100))
				}
			} else {
				v = rng.NormFloat64() * 100
			}
			smp = append(smp, storage.Sample{T: t, V: v})
		}
		out = append(out, storage.SeriesSamples{
			Labels:  labels.FromStrings("__name__", kind, "s", fmt.Sprintf("%02d", s)),
			Samples: smp,
		})
	}
	return out
}

// refBuckets aggregates raw samples the simplest way: the reference the
// tiers are checked against.
func refBuckets(raw []storage.Sample, res, mint, maxt int64) []storage.Bucket {
	var out []storage.Bucket
	for _, s := range raw {
		end := s.T / res * res
		if s.T%res > 0 {
			end += res
		}
		if end < mint || end > maxt {
			continue
		}
		if len(out) == 0 || out[len(out)-1].End != end {
			out = append(out, storage.Bucket{End: end})
		}
		b := &out[len(out)-1]
		if storage.IsStaleNaN(s.V) {
			b.Stale = true
			continue
		}
		b.Stale = false
		if b.Count == 0 {
			b.FirstT, b.First, b.Min, b.Max = s.T, s.V, s.V, s.V
		} else {
			if s.V < b.Last {
				b.Inc += s.V
			} else {
				b.Inc += s.V - b.Last
			}
			b.Min, b.Max = math.Min(b.Min, s.V), math.Max(b.Max, s.V)
		}
		b.Count++
		b.Sum += s.V
		b.LastT, b.Last = s.T, s.V
	}
	return out
}

// readBuckets returns the buckets of every series matching m in tier res
// ending in [mint, maxt], by series.
func readBuckets(t *testing.T, db *storage.DB, tenant string, res time.Duration, mint, maxt int64, m *labels.Matcher) map[string][]storage.Bucket {
	t.Helper()
	q, err := db.Querier(context.Background(), tenant, math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	defer q.Close()
	tq, ok := q.(storage.TierQuerier)
	require.True(t, ok)
	ss := tq.SelectTier(context.Background(), res, &storage.SelectHints{Start: mint, End: maxt}, m)
	out := map[string][]storage.Bucket{}
	for ss.Next() {
		s := ss.At().(storage.TierSeries)
		bs, err := s.Buckets(nil)
		require.NoError(t, err)
		if len(bs) > 0 {
			out[s.Labels().String()] = bs
		}
	}
	require.NoError(t, ss.Err())
	return out
}

func requireBucketsEqual(t *testing.T, want, got map[string][]storage.Bucket, what string) {
	t.Helper()
	require.Equal(t, len(want), len(got), what)
	for k, w := range want {
		g := got[k]
		require.Equal(t, len(w), len(g), "%s: %s", what, k)
		for i := range w {
			a, b := w[i], g[i]
			// Sums are compensated in the tiers and naive here.
			require.InEpsilon(t, a.Sum+1e-300, b.Sum+1e-300, 1e-9, "%s: %s bucket %d", what, k, i)
			require.InDelta(t, a.Inc, b.Inc, 1e-9*math.Max(1, math.Abs(a.Inc)), "%s: %s bucket %d", what, k, i)
			a.Sum, b.Sum, a.Inc, b.Inc = 0, 0, 0, 0
			require.Equal(t, a, b, "%s: %s bucket %d", what, k, i)
		}
	}
}

func wantBuckets(t *testing.T, db *storage.DB, data []storage.SeriesSamples, res time.Duration, mint, maxt int64) map[string][]storage.Bucket {
	t.Helper()
	out := map[string][]storage.Bucket{}
	for _, s := range data {
		raw := st.Read(t, db, "default", math.MinInt64, math.MaxInt64, st.Eq("s", s.Labels.Get("s")))[s.Labels.String()]
		if bs := refBuckets(raw, res.Milliseconds(), mint, maxt); len(bs) > 0 {
			out[s.Labels.String()] = bs
		}
	}
	return out
}

var anySeries = labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")

// The buckets are the same computed from raw samples (not yet built),
// read from built blocks, for any range, and after building again.
func TestTierBucketsMatchRaw(t *testing.T) {
	now := tierDay0.Add(6*24*time.Hour + 12*time.Hour)
	opts := &storage.Options{Tiers: testTiers, Now: func() time.Time { return now }, HeadChunkSamples: 64}
	db := st.Open(t, opts)
	data := tierData(1, 12, 5)
	st.Write(t, db, "default", data...)
	require.NoError(t, db.Flush())

	ranges := [][2]int64{
		{math.MinInt64, math.MaxInt64},
		{tierDay0.UnixMilli() + dayMs, tierDay0.UnixMilli() + 3*dayMs},             // whole days
		{tierDay0.UnixMilli() + 7_777_777, tierDay0.UnixMilli() + 2*dayMs + 12345}, // anywhere
	}
	check := func(what string) {
		for _, tr := range testTiers {
			for _, r := range ranges {
				want := wantBuckets(t, db, data, tr.Resolution, r[0], r[1])
				got := readBuckets(t, db, "default", tr.Resolution, r[0], r[1], anySeries)
				requireBucketsEqual(t, want, got, fmt.Sprintf("%s, tier %s, range %v", what, tr.Resolution, r))
			}
		}
	}
	check("before building")
	require.NoError(t, db.BuildTiers(context.Background()))
	lastDay := int32(now.Add(-2*time.Hour).UnixMilli()/dayMs) - 1
	require.Equal(t, []int32{lastDay, lastDay}, storage.TierBuilt(db))
	built := storage.TierKeys(db)
	require.NotEmpty(t, built)
	check("built")
	require.NoError(t, db.BuildTiers(context.Background()))
	require.Equal(t, built, storage.TierKeys(db), "building again changes nothing")
}

// A build cut short by a crash resumes where its durable progress ends,
// and the result is byte for byte what one uninterrupted build makes.
func TestTierBuildResumesAfterCrash(t *testing.T) {
	data := tierData(2, 10, 6)
	final := tierDay0.Add(7*24*time.Hour + 6*time.Hour)

	// The reference: one build at the end.
	ref := st.Open(t, &storage.Options{Tiers: testTiers, Now: func() time.Time { return final }, Shards: 2})
	st.Write(t, ref, "default", data...)
	require.NoError(t, ref.Flush())
	require.NoError(t, ref.BuildTiers(context.Background()))
	want := storage.TierKeys(ref)

	fs := vfs.NewCrashableMem()
	now := tierDay0.Add(3*24*time.Hour + 6*time.Hour)
	o := storage.Options{Tiers: testTiers, Now: func() time.Time { return now }, Shards: 2}
	db := crashOpen(t, fs, o)
	st.Write(t, db, "default", data...)
	require.NoError(t, db.Flush())
	require.NoError(t, db.BuildTiers(context.Background()))
	firstPart := storage.TierBuilt(db)
	require.NoError(t, storage.FlushPebble(db)) // this part is durable
	now = final
	require.NoError(t, db.BuildTiers(context.Background())) // this part only in memtables
	require.Equal(t, storage.TierBuilt(ref), storage.TierBuilt(db))
	require.NoError(t, storage.Crash(db))

	db = crashOpen(t, fs.CrashClone(vfs.CrashCloneCfg{}), o)
	require.Equal(t, firstPart, storage.TierBuilt(db), "the durable progress survives, the rest is built again")
	// Meanwhile queries compute the days not built from raw samples.
	requireBucketsEqual(t, readBuckets(t, ref, "default", time.Hour, math.MinInt64, math.MaxInt64, anySeries),
		readBuckets(t, db, "default", time.Hour, math.MinInt64, math.MaxInt64, anySeries), "after the crash")
	require.NoError(t, db.BuildTiers(context.Background()))
	require.Equal(t, want, storage.TierKeys(db))
}

// A write into a day already built is answered at once (the day is
// computed from raw samples) and built again in the background.
func TestTierBackfillRebuildsTheDay(t *testing.T) {
	now := tierDay0.Add(4*24*time.Hour + 12*time.Hour)
	db := st.Open(t, &storage.Options{Tiers: testTiers, Now: func() time.Time { return now }})
	data := tierData(3, 4, 3)
	st.Write(t, db, "default", data...)
	require.NoError(t, db.BuildTiers(context.Background()))
	before := storage.TierKeys(db)

	// Backfill a sample in the middle of day 1 of series 01.
	at := tierDay0.UnixMilli() + dayMs + 3*3600_000 + 1
	st.Write(t, db, "default", storage.SeriesSamples{Labels: data[1].Labels, Samples: []storage.Sample{{T: at, V: 1e6}}})
	check := func(what string) {
		for _, tr := range testTiers {
			requireBucketsEqual(t, wantBuckets(t, db, data, tr.Resolution, math.MinInt64, math.MaxInt64),
				readBuckets(t, db, "default", tr.Resolution, math.MinInt64, math.MaxInt64, anySeries), what)
		}
	}
	check("unsealed backfill")
	require.NoError(t, db.Flush())
	check("sealed backfill")
	require.NoError(t, db.BuildTiers(context.Background()))
	check("rebuilt")
	require.NotEqual(t, before, storage.TierKeys(db), "the day was built again")
	require.Empty(t, storage.TierDirty(db))
}

// Deleting samples deletes their buckets too; a whole series goes with
// its tier keys.
func TestTierDelete(t *testing.T) {
	now := tierDay0.Add(4*24*time.Hour + 12*time.Hour)
	db := st.Open(t, &storage.Options{Tiers: testTiers, Now: func() time.Time { return now }})
	data := tierData(4, 4, 3)
	st.Write(t, db, "default", data...)
	require.NoError(t, db.Flush())
	require.NoError(t, db.BuildTiers(context.Background()))
	ctx := context.Background()
	sh, ref := storage.SeriesID(db, "default", data[2].Labels)
	require.Positive(t, storage.TierKeysOf(db, sh, "default", ref))
	mint, maxt := tierDay0.UnixMilli()+dayMs/2, tierDay0.UnixMilli()+dayMs+dayMs/3
	_, err := db.DeleteSeries(ctx, "default", mint, maxt, st.Eq("s", "01"))
	require.NoError(t, err)
	_, err = db.DeleteSeries(ctx, "default", math.MinInt64, math.MaxInt64, st.Eq("s", "02"))
	require.NoError(t, err)
	check := func(what string) {
		for _, tr := range testTiers {
			requireBucketsEqual(t, wantBuckets(t, db, data, tr.Resolution, math.MinInt64, math.MaxInt64),
				readBuckets(t, db, "default", tr.Resolution, math.MinInt64, math.MaxInt64, anySeries), what)
		}
	}
	check("after the deletes")
	require.NoError(t, db.BuildTiers(context.Background()))
	check("rebuilt")
	require.Zero(t, storage.TierKeysOf(db, sh, "default", ref))
}

// A data folder whose tiers are of format 1 (a block per series-day) has
// them dropped at Open, answered from raw samples meanwhile, and built
// again as a fresh build would.
func TestTierFormat1IsBuiltAgain(t *testing.T) {
	data := tierData(5, 6, 4)
	now := tierDay0.Add(5*24*time.Hour + 6*time.Hour)
	fs := vfs.NewCrashableMem()
	o := storage.Options{Tiers: testTiers, Now: func() time.Time { return now }, Shards: 2}
	db := crashOpen(t, fs, o)
	st.Write(t, db, "default", data...)
	require.NoError(t, db.Flush())
	require.NoError(t, db.BuildTiers(context.Background()))
	want := storage.TierKeys(db)
	wantBs := readBuckets(t, db, "default", time.Hour, math.MinInt64, math.MaxInt64, anySeries)
	require.NoError(t, storage.SetTierFormat1(db))
	require.NoError(t, storage.FlushPebble(db))
	require.NoError(t, storage.Crash(db))

	db = crashOpen(t, fs.CrashClone(vfs.CrashCloneCfg{}), o)
	require.Empty(t, storage.TierKeys(db), "format 1 is dropped")
	require.Equal(t, []int32{math.MinInt32, math.MinInt32}, storage.TierBuilt(db))
	requireBucketsEqual(t, wantBs, readBuckets(t, db, "default", time.Hour, math.MinInt64, math.MaxInt64, anySeries), "before the build")
	require.NoError(t, db.BuildTiers(context.Background()))
	require.Equal(t, want, storage.TierKeys(db))
}
