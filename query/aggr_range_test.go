package query

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// TestAggregateRangeMatchesGeneral compares aggregations of instant
// selectors and range functions answered series by series (aggregateRange) with the general
// path's answers (a matrix of every series' points, the function's output
// series, then the aggregation), for random queries over counters with
// resets, gauges with NaN and infinities, stale markers, gaps and jittered
// timestamps; instant and range, aligned and not, with offset and @. The
// answers must be the same to the bit, and so must the warnings. Where
// aggregateRange gives up (native histograms, two series whose output
// labels are equal) the general path's answer or error comes out.
func TestAggregateRangeMatchesGeneral(t *testing.T) {
	db := st.Open(t, nil)
	rng := rand.New(rand.NewPCG(1, 18))
	const end = int64(2 * 3600_000)
	var b storage.Batch
	for _, job := range []string{"a", "b"} {
		for inst := range 6 {
			for _, mode := range []string{"idle", "user", "system"} {
				var counter, gauge []storage.Sample
				c := rng.Float64() * 1000
				for ts := int64(0); ts <= end; ts += 15_000 {
					if rng.IntN(40) == 0 {
						ts += 60_000 * int64(rng.IntN(10)) // a gap
					}
					t := ts + int64(rng.IntN(2000)) - 1000
					if rng.IntN(80) == 0 {
						c = rng.Float64() * 10 // a reset
					}
					c += rng.Float64() * 100
					counter = append(counter, storage.Sample{T: t, V: c})
					g := rng.NormFloat64() * 1e3
					switch rng.IntN(200) {
					case 0:
						g = math.NaN()
					case 1:
						g = math.Inf(1)
					case 2:
						g = math.Inf(-1)
					case 3:
						g = math.Float64frombits(storage.StaleNaN)
					}
					gauge = append(gauge, storage.Sample{T: t, V: g})
				}
				ls := []string{"job", job, "instance", fmt.Sprint("host-", inst), "mode", mode}
				b.Add(labels.FromStrings(append([]string{"__name__", "c_total"}, ls...)...), counter...)
				b.Add(labels.FromStrings(append([]string{"__name__", "g"}, ls...)...), gauge...)
			}
		}
	}
	// Two names, one label set: rate drops the names, and the general
	// path's error is the answer.
	for _, name := range []string{"d1", "d2"} {
		b.Add(labels.FromStrings("__name__", name, "x", "1"), storage.Sample{T: end - 30_000, V: 1}, storage.Sample{T: end, V: 2})
	}
	require.NoError(t, db.Write(context.Background(), "default", &b))
	var hb storage.Batch
	hb.Series = append(hb.Series, storage.SeriesSamples{Labels: labels.FromStrings("__name__", "c_total", "job", "a", "instance", "host-9", "mode", "idle")})
	for ts := end - 600_000; ts <= end; ts += 15_000 {
		h := &histogram.FloatHistogram{Count: float64(ts / 1000), Sum: float64(ts), ZeroThreshold: 0.001,
			PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []float64{float64(ts / 1000)}}
		hb.Series[0].Histograms = append(hb.Series[0].Histograms, storage.HSample{T: ts, H: h})
	}
	require.NoError(t, db.Write(context.Background(), "default", &hb))

	fused := NewEngine(db, nil)
	general := NewEngine(db, &Options{generalPaths: true})
	ctx := context.Background()
	aggs := []string{"sum", "avg", "count", "group", "min", "max", "topk", "bottomk"}
	params := []string{"1, ", "3, ", "0, ", "1000, ", "2.7, ", "-1, "}
	funcs := []string{"rate", "increase", "delta", "irate", "idelta", "deriv", "changes", "resets",
		"avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
		"stddev_over_time", "last_over_time", "present_over_time"}
	mods := []string{"", " by (mode)", " without (instance)", " by (job, mode)", " by (nothing)"}
	sels := []string{"c_total", `c_total{mode!="idle"}`, "g", `g{job="a"}`}
	windows := []string{"[1m]", "[5m]", "[5m] offset 3m", "[2m] @ 3600"}
	same := func(q string, start, stop, step int64) {
		t.Helper()
		var a, b *Result
		var errA, errB error
		if start == stop {
			a, errA = fused.Instant(ctx, "default", q, start)
			b, errB = general.Instant(ctx, "default", q, start)
		} else {
			a, errA = fused.Range(ctx, "default", q, start, stop, step)
			b, errB = general.Range(ctx, "default", q, start, stop, step)
		}
		if errB != nil {
			require.EqualError(t, errA, errB.Error(), q)
			return
		}
		require.NoError(t, errA, q)
		require.Equal(t, fmt.Sprint(b.Series), fmt.Sprint(a.Series), "%s [%d, %d, %d]", q, start, stop, step)
		require.Equal(t, b.Warnings, a.Warnings, q)
		require.Equal(t, b.Infos, a.Infos, q)
	}
	before := fused.aggregatedRange.Load()
	for i := range 700 {
		agg := aggs[rng.IntN(len(aggs))]
		param := ""
		if agg == "topk" || agg == "bottomk" {
			param = params[rng.IntN(len(params))]
		}
		q := fmt.Sprintf("%s%s (%s%s(%s%s))", agg, mods[rng.IntN(len(mods))], param,
			funcs[rng.IntN(len(funcs))], sels[rng.IntN(len(sels))], windows[rng.IntN(len(windows))])
		if i%5 == 0 { // an instant selector
			q = fmt.Sprintf("%s%s (%s%s)", agg, mods[rng.IntN(len(mods))], param, sels[rng.IntN(len(sels))])
		}
		at := end - int64(rng.IntN(3600))*1000
		same(q, at, at, 0)
		step := []int64{60_000, 17_000, 300_000}[rng.IntN(3)]
		same(q, end-3600_000-int64(rng.IntN(60_000)), end, step)
	}
	require.Greater(t, fused.aggregatedRange.Load()-before, int64(1000), "answered series by series")

	// Where aggregateRange gives up.
	before = fused.aggregatedRange.Load()
	for _, q := range []string{
		`sum(rate({__name__=~"d1|d2"}[5m]))`,         // equal output labels
		`sum by (mode) (rate(c_total{job="a"}[5m]))`, // a native histogram among the series
		`count(increase(c_total[10m]))`,
		`max by (mode) (c_total)`,
		`sum(c_total offset 1m)`, // not a plain selector: evalOffsetAt
		`topk(2, rate({__name__=~"d1|d2"}[5m]))`,
	} {
		same(q, end, end, 0)
		same(q, end-1800_000, end, 60_000)
	}
	require.Equal(t, int64(0), fused.aggregatedRange.Load()-before, "these go the general way")
	// A NaN parameter fails as the general path does, and a parameter
	// that changes from step to step picks as many at each.
	same(`topk(scalar(count(c_total)) - 60, rate(c_total[5m]))`, end-1800_000, end, 60_000)
	same(`bottomk(NaN, g)`, end, end, 0)
	same(`topk(NaN, rate(c_total[5m]))`, end-1800_000, end, 60_000)
}

// Two groups whose hashes collide stay two groups, found again by their
// labels (a collision made by hand: xxhash gives none to find).
func TestGroupIndexCollision(t *testing.T) {
	gi := newGroupIndex([]string{"mode", "cpu"}, false, false)
	a := labels.FromStrings("__name__", "m", "cpu", "0", "mode", "idle")
	b := labels.FromStrings("__name__", "m", "cpu", "0", "mode", "user")
	require.Equal(t, 0, gi.id(a))
	hb, _ := b.HashForLabels(nil, "cpu", "mode")
	gi.byHash[hb] = 0 // b's hash now leads to a's group first
	require.Equal(t, 1, gi.id(b), "a new group, chained after the colliding one")
	require.Equal(t, 0, gi.id(a))
	require.Equal(t, 1, gi.id(b))
	require.Equal(t, 1, gi.id(labels.FromStrings("__name__", "other", "cpu", "0", "mode", "user", "x", "y")))
	require.Equal(t, []string{`{cpu="0", mode="idle"}`, `{cpu="0", mode="user"}`}, []string{gi.labels[0].String(), gi.labels[1].String()})
	c := labels.FromStrings("cpu", "0", "mode", "system")
	hc, _ := c.HashForLabels(nil, "cpu", "mode")
	gi.byHash[hc] = 1 // and a third behind the two
	require.Equal(t, 2, gi.id(c))
	require.Equal(t, []int{0, 1, 2}, []int{gi.id(a), gi.id(b), gi.id(c)})
}

// A `by` of one label groups by its value alone (no hashing), and gives
// the groups, their order and their labels the hashing path gives: a series
// without the label is a group of its own with no labels.
func TestGroupIndexOneLabel(t *testing.T) {
	series := []labels.Labels{
		labels.FromStrings("__name__", "m", "cpu", "0", "mode", "idle"),
		labels.FromStrings("__name__", "m", "cpu", "1", "mode", "user"),
		labels.FromStrings("__name__", "m", "cpu", "1"),
		labels.FromStrings("__name__", "n", "mode", "idle", "zz", "1"),
		labels.FromStrings("__name__", "m", "cpu", "2", "mode", "user"),
		labels.FromStrings("cpu", "3"),
	}
	one := newGroupIndex([]string{"mode"}, false, false)
	hashed := newGroupIndex([]string{"mode", "nothing"}, false, false) // the same groups, the hashing path
	for _, ls := range series {
		require.Equal(t, hashed.id(ls), one.id(ls), "%s", ls)
	}
	require.Equal(t, hashed.labels, one.labels)
	require.Equal(t, []string{`{mode="idle"}`, `{mode="user"}`, `{}`}, []string{one.labels[0].String(), one.labels[1].String(), one.labels[2].String()})
	require.Empty(t, one.byHash, "no hashing")
}

// BenchmarkGroupIndex groups 10,000 series by instance, each its own
// group (a `by (instance)` over a fleet), and again (found).
func BenchmarkGroupIndex(b *testing.B) {
	ls := make([]labels.Labels, 10000)
	for i := range ls {
		ls[i] = labels.FromStrings("__name__", "node_load1", "instance", fmt.Sprintf("host-%05d:9100", i), "job", "node")
	}
	b.ReportAllocs()
	for b.Loop() {
		gi := newGroupIndex([]string{"instance"}, false, false)
		for range 2 {
			for _, l := range ls {
				gi.id(l)
			}
		}
	}
}
