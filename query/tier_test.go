package query

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// tierTolerance is the documented tolerance of an answer from a tier
// against the same answer from raw samples (docs/retention.md): relative
// 1e-9, from summing in another order; counts, minima, maxima, first and
// last values and timestamps are exact.
const tierTolerance = 1e-9

var tierStart = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)

// writeTierData writes counters (with resets) and gauges over days, at
// irregular intervals, with stale markers and gaps.
func writeTierData(t *testing.T, db storage.Writer, rng *rand.Rand, series, days int) {
	t.Helper()
	start := tierStart.UnixMilli()
	end := start + int64(days)*24*3600_000
	for s := range series {
		step := []int64{15_000, 30_000, 60_000, 45_000}[rng.IntN(4)]
		var smp []storage.Sample
		v := 0.0
		for ts := start + int64(rng.IntN(40))*1000; ts <= end; ts += step {
			if rng.IntN(1000) == 0 {
				smp = append(smp, storage.Sample{T: ts, V: math.Float64frombits(storage.StaleNaN)})
				ts += int64(rng.IntN(60)) * step
				continue
			}
			if s%2 == 0 {
				if rng.IntN(400) == 0 {
					v = float64(rng.IntN(5))
				} else {
					v += float64(rng.IntN(1000)) / 10
				}
			} else {
				v = 50 + rng.NormFloat64()*20
			}
			smp = append(smp, storage.Sample{T: ts + int64(rng.IntN(3))*1000, V: v})
		}
		name := []string{"c", "g"}[s%2]
		st.Write(t, db, "default", storage.SeriesSamples{
			Labels:  labels.FromStrings("__name__", name, "i", fmt.Sprint(s), "job", fmt.Sprint(s%3)),
			Samples: smp,
		})
	}
}

// TestTierAnswersMatchRaw is the randomized check of the tolerance: the
// same queries answered from tiers and from raw samples agree, for random
// data, steps, windows and offsets; the answer says which tier gave it.
func TestTierAnswersMatchRaw(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 22))
	now := tierStart.Add(6 * 24 * time.Hour)
	db := st.Open(t, &storage.Options{
		Now:   func() time.Time { return now },
		Tiers: []storage.Tier{{Resolution: 5 * time.Minute}, {Resolution: time.Hour}},
	})
	writeTierData(t, db, rng, 12, 5)
	require.NoError(t, db.Flush())
	require.NoError(t, db.BuildTiers(context.Background()))

	raw := NewEngine(db, &Options{TierMinRange: -1})
	tiered := NewEngine(db, &Options{TierMinRange: time.Millisecond})
	ctx := context.Background()
	funcs := []string{"rate", "increase", "delta", "avg_over_time", "sum_over_time", "count_over_time",
		"min_over_time", "max_over_time", "last_over_time", "first_over_time", "present_over_time"}
	for i := range 150 {
		res := []int64{5, 60}[rng.IntN(2)] * 60_000
		step := res * int64(1+rng.IntN(6))
		window := res * int64(1+rng.IntN(12))
		start := tierStart.UnixMilli() + res*int64(rng.IntN(int(4*24*3600_000/res)))
		end := start + step*int64(1+rng.IntN(300))
		var q string
		switch rng.IntN(4) {
		case 0:
			q = []string{"c", "g", `g{job="1"}`, `timestamp(c)`}[rng.IntN(4)]
		case 1:
			q = fmt.Sprintf("sum by (job) (%s(%s[%dms]))", funcs[rng.IntN(len(funcs))], []string{"c", "g"}[rng.IntN(2)], window)
		default:
			q = fmt.Sprintf("%s(%s[%dms])", funcs[rng.IntN(len(funcs))], []string{"c", "g"}[rng.IntN(2)], window)
		}
		want, err := raw.Range(ctx, "default", q, start, end, step)
		require.NoError(t, err, q)
		got, err := tiered.Range(ctx, "default", q, start, end, step)
		require.NoError(t, err, q)
		what := fmt.Sprintf("query %d: %s start %d end %d step %d", i, q, start, end, step)
		require.Equal(t, "raw", want.Tier, what)
		require.NotEqual(t, "raw", got.Tier, what)
		requireSameMatrix(t, want.Series, got.Series, what)
		require.Less(t, got.SamplesRead, want.SamplesRead, what)
	}
}

func requireSameMatrix(t *testing.T, want, got []Series, what string) {
	t.Helper()
	require.Equal(t, len(want), len(got), what)
	for i := range want {
		require.Equal(t, want[i].Metric, got[i].Metric, what)
		require.Equal(t, len(want[i].Points), len(got[i].Points), "%s: %s", what, want[i].Metric)
		for j, p := range want[i].Points {
			g := got[i].Points[j]
			require.Equal(t, p.T, g.T, what)
			if p.F != g.F && !(math.IsNaN(p.F) && math.IsNaN(g.F)) {
				require.InDelta(t, p.F, g.F, tierTolerance*math.Max(1, math.Abs(p.F)), "%s: %s at %d", what, want[i].Metric, p.T)
			}
		}
	}
}

// Tiers answer only what they answer exactly; everything else reads raw
// samples, and the answer says which did.
func TestTierSelection(t *testing.T) {
	now := tierStart.Add(6 * 24 * time.Hour)
	db := st.Open(t, &storage.Options{
		Now:   func() time.Time { return now },
		Tiers: []storage.Tier{{Resolution: 5 * time.Minute}, {Resolution: time.Hour}},
	})
	writeTierData(t, db, rand.New(rand.NewPCG(1, 2)), 4, 5)
	require.NoError(t, db.BuildTiers(context.Background()))
	eng := NewEngine(db, nil) // tiers for spans of a day or more
	ctx := context.Background()
	day := int64(24 * 3600_000)
	start := tierStart.UnixMilli() + day
	f := func(q string, start, end, step int64, want string) {
		t.Helper()
		res, err := eng.Range(ctx, "default", q, start, end, step)
		require.NoError(t, err, q)
		require.Equal(t, want, res.Tier, q)
	}
	f(`rate(c[1h])`, start, start+3*day, 3600_000, "1h")
	f(`rate(c[10m])`, start, start+3*day, 600_000, "5m")         // 10m is no multiple of 1h
	f(`rate(c[1h])`, start, start+3*day, 600_000, "5m")          // nor is the step
	f(`rate(c[1h])`, start+60_000, start+3*day, 3600_000, "raw") // unaligned steps
	f(`rate(c[7m])`, start, start+3*day, 3600_000, "raw")        // unaligned window
	f(`quantile_over_time(0.5, g[1h])`, start, start+3*day, 3600_000, "raw")
	f(`rate(c[1h])`, start, start+3600_000, 3600_000, "raw") // too short to bother
	f(`g`, start, start+3*day, 3600_000, "1h")
	f(`g / on(i) rate(c[5m])`, start, start+3*day, 300_000, "5m")
	f(`g / on(i) quantile_over_time(0.5, g[5m])`, start, start+3*day, 300_000, "5m+raw")
}

// A tier whose buckets stand for no more samples than raw (a 1h tier over
// hourly samples) is not read while the raw samples are there; a coarser
// one is.
func TestTierSkipsTierNoCoarserThanRaw(t *testing.T) {
	now := tierStart.Add(12 * 24 * time.Hour)
	db := st.Open(t, &storage.Options{
		Now:   func() time.Time { return now },
		Tiers: []storage.Tier{{Resolution: time.Hour}, {Resolution: 24 * time.Hour}},
	})
	start := tierStart.UnixMilli()
	var smp []storage.Sample
	for ts := start + 1000; ts < start+10*24*3600_000; ts += 3600_000 {
		smp = append(smp, storage.Sample{T: ts, V: float64(ts / 1000)})
	}
	st.Write(t, db, "default", storage.SeriesSamples{Labels: labels.FromStrings("__name__", "c"), Samples: smp})
	require.NoError(t, db.Flush())
	require.NoError(t, db.BuildTiers(context.Background()))
	eng := NewEngine(db, nil)
	day := int64(24 * 3600_000)
	f := func(q string, step int64, want string) {
		t.Helper()
		res, err := eng.Range(context.Background(), "default", q, start+day, start+9*day, step)
		require.NoError(t, err, q)
		require.Equal(t, want, res.Tier, q)
	}
	f(`rate(c[1h])`, 3600_000, "raw")
	f(`rate(c[1d])`, day, "1d")
}
