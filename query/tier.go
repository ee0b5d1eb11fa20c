package query

import (
	"cmp"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage"
)

// Answering from downsampled tiers (docs/retention.md). A selector is read
// from a tier of resolution R when the storage offers one
// (storage.TierQuerier) and the tier answers exactly what the raw samples
// would: every step's window (ref-rng, ref] is a union of whole buckets
// (ref and rng multiples of R), and the function is one the buckets hold
// enough for. The coarsest such tier wins. Everything else reads raw
// samples.

// tierFn computes a range function over the buckets of one window.
type tierFn func(w []storage.Bucket, ref, rng int64) (float64, bool)

// tierFuncs are the range functions a tier answers.
var tierFuncs = map[string]tierFn{
	"count_over_time": func(w []storage.Bucket, _, _ int64) (float64, bool) {
		n := bucketCount(w)
		return float64(n), n > 0
	},
	"present_over_time": func(w []storage.Bucket, _, _ int64) (float64, bool) {
		return 1, bucketCount(w) > 0
	},
	"sum_over_time": func(w []storage.Bucket, _, _ int64) (float64, bool) {
		sum, _, ok := bucketSum(w)
		return sum, ok
	},
	"avg_over_time": func(w []storage.Bucket, _, _ int64) (float64, bool) {
		sum, n, ok := bucketSum(w)
		return sum / float64(n), ok
	},
	"min_over_time": func(w []storage.Bucket, _, _ int64) (float64, bool) {
		return bucketExtreme(w, func(b storage.Bucket) float64 { return b.Min }, func(a, b float64) bool { return a < b })
	},
	"max_over_time": func(w []storage.Bucket, _, _ int64) (float64, bool) {
		return bucketExtreme(w, func(b storage.Bucket) float64 { return b.Max }, func(a, b float64) bool { return a > b })
	},
	"last_over_time": func(w []storage.Bucket, _, _ int64) (float64, bool) {
		for i := len(w) - 1; i >= 0; i-- {
			if w[i].Count > 0 {
				return w[i].Last, true
			}
		}
		return 0, false
	},
	"first_over_time": func(w []storage.Bucket, _, _ int64) (float64, bool) {
		for _, b := range w {
			if b.Count > 0 {
				return b.First, true
			}
		}
		return 0, false
	},
	"rate": func(w []storage.Bucket, ref, rng int64) (float64, bool) {
		return bucketRate(w, ref-rng, ref, true, true)
	},
	"increase": func(w []storage.Bucket, ref, rng int64) (float64, bool) {
		return bucketRate(w, ref-rng, ref, true, false)
	},
	"delta": func(w []storage.Bucket, ref, rng int64) (float64, bool) {
		return bucketRate(w, ref-rng, ref, false, false)
	},
}

func bucketCount(w []storage.Bucket) int64 {
	var n int64
	for _, b := range w {
		n += b.Count
	}
	return n
}

func bucketSum(w []storage.Bucket) (float64, int64, bool) {
	var sum, c float64
	var n int64
	for _, b := range w {
		if b.Count > 0 {
			sum, c = kahanSumInc(b.Sum, sum, c)
			n += b.Count
		}
	}
	if !math.IsInf(sum, 0) {
		sum += c
	}
	return sum, n, n > 0
}

// bucketExtreme is min_over_time or max_over_time: NaN only when every
// sample is.
func bucketExtreme(w []storage.Bucket, of func(storage.Bucket) float64, better func(a, b float64) bool) (float64, bool) {
	found := false
	var m float64
	for _, b := range w {
		if b.Count == 0 {
			continue
		}
		if v := of(b); !found || better(v, m) || math.IsNaN(m) {
			m, found = v, true
		}
	}
	return m, found
}

// bucketRate is extrapolatedRate over buckets: the same first and last
// samples, the same number of samples, and the same increase (the
// buckets' own plus the steps between neighbours).
func bucketRate(w []storage.Bucket, rangeStart, rangeEnd int64, isCounter, isRate bool) (float64, bool) {
	var first, last *storage.Bucket
	var n int64
	var result float64
	for i := range w {
		b := &w[i]
		if b.Count == 0 {
			continue
		}
		if first == nil {
			first = b
		} else if isCounter {
			if b.First < last.Last {
				result += b.First
			} else {
				result += b.First - last.Last
			}
		}
		if isCounter {
			result += b.Inc
		}
		last = b
		n += b.Count
	}
	if n < 2 {
		return 0, false
	}
	if !isCounter {
		result = last.Last - first.First
	}
	return extrapolate(Point{T: first.FirstT, F: first.First}, Point{T: last.LastT, F: last.Last}, int(n), result,
		rangeStart, rangeEnd, isCounter, isRate), true
}

// tierSeries is a series read from a tier.
type tierSeries struct {
	metric  labels.Labels
	buckets []storage.Bucket
}

// pickTier returns the coarsest tier that answers exactly for steps
// first..last (ms) with windows of rng (0: a plain selector, which needs
// no alignment of its lookback), if tiers are worth it here: the span
// read is at least Options.TierMinRange or reaches past the raw samples.
func (ev *evaluator) pickTier(first, last, reach, rng int64) (storage.TierInfo, bool) {
	if ev.tq == nil || ev.tierMinRange < 0 {
		return storage.TierInfo{}, false
	}
	if last-first+reach < ev.tierMinRange && first-reach >= ev.tq.RawMinTime() {
		return storage.TierInfo{}, false
	}
	tiers := ev.tq.Tiers()
	var pick storage.TierInfo
	found := false
	for i := len(tiers) - 1; i >= 0; i-- {
		t := tiers[i]
		r := t.Resolution.Milliseconds()
		if first%r != 0 || (!ev.instant && first != last && ev.interval%r != 0) || rng%r != 0 {
			continue
		}
		if t.MinTime <= first-reach+r {
			return t, true // covers the whole span
		}
		if !found {
			pick, found = t, true // the coarsest aligned, short of the span
		}
	}
	return pick, found
}

// selectTier reads the buckets ending in [mint, maxt] of the series
// matching me from the tier. It gives up (false) when a series holds
// native histograms, which tiers do not keep.
func (ev *evaluator) selectTier(me *metricsql.MetricExpr, tr storage.TierInfo, mint, maxt int64) ([]tierSeries, bool) {
	sets, err := matchersOf(me)
	if err != nil {
		ev.fail(err)
	}
	var list []storage.TierSeries
	seen := map[string]bool{}
	for _, ms := range sets {
		ss := ev.tq.SelectTier(ev.ctx, tr.Resolution, &storage.SelectHints{Start: mint, End: maxt}, ms...)
		for ss.Next() {
			s, ok := ss.At().(storage.TierSeries)
			if !ok || s.HasHistograms() {
				return nil, false
			}
			if len(sets) > 1 {
				k := s.Labels().String()
				if seen[k] {
					continue
				}
				seen[k] = true
			}
			list = append(list, s)
		}
		if err := ss.Err(); err != nil {
			ev.fail(execErr("select: %v", err))
		}
	}
	out := make([]tierSeries, 0, len(list))
	read := 0
	for _, s := range list {
		ls := s.Labels()
		bs, err := s.Buckets(nil)
		if err != nil {
			ev.fail(execErr("read series %s: %v", ls, err))
		}
		ev.spend(1 + len(bs))
		ev.addSamples(len(bs))
		read += len(bs)
		if ev.series++; ev.maxSeries > 0 && ev.series > ev.maxSeries {
			ev.failf("the query selects more than %d series (--query.max-series); narrow its selectors", ev.maxSeries)
		}
		out = append(out, tierSeries{metric: ls, buckets: bs})
	}
	if len(sets) > 1 {
		sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].metric, out[j].metric) < 0 })
	}
	ev.samplesRead += int64(read)
	ev.usedTier(storage.TierName(tr.Resolution))
	return out, true
}

// usedTier records that a selector was answered by the tier named.
func (ev *evaluator) usedTier(name string) {
	if ev.tiersUsed == nil {
		ev.tiersUsed = map[string]bool{}
	}
	ev.tiersUsed[name] = true
}

// tierName is what Result.Tier says: "raw", a tier's resolution, or
// several joined by "+".
func tierName(used map[string]bool) string {
	if len(used) == 0 {
		return "raw"
	}
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, "+")
}

// vectorFromTier evaluates a plain selector from a tier: at each step the
// newest sample at or before it is the last of the newest bucket ending
// there or before (a bucket ending with a stale marker has none).
func (ev *evaluator) vectorFromTier(me *metricsql.MetricExpr, off int64, at *int64, timestamps bool) (Matrix, bool) {
	n := ev.numSteps()
	lo, hi := ev.refTime(0, off, at), ev.refTime(n-1, off, at)
	tr, ok := ev.pickTier(lo, hi, ev.lookback, 0)
	if !ok {
		return nil, false
	}
	ts, ok := ev.selectTier(me, tr, lo-ev.lookback+1, hi)
	if !ok {
		return nil, false
	}
	out := make(Matrix, 0, len(ts))
	for _, s := range ts {
		ev.spend(1 + len(s.buckets))
		o := Series{Metric: s.metric}
		j := -1
		for k := range n {
			if k&(ctxCheckEvery-1) == 0 {
				ev.spend(ctxCheckEvery)
			}
			ref := ev.refTime(k, off, at)
			for j+1 < len(s.buckets) && s.buckets[j+1].End <= ref {
				j++
			}
			if j < 0 {
				continue
			}
			b := s.buckets[j]
			if b.Stale || b.Count == 0 || b.LastT <= ref-ev.lookback {
				continue
			}
			p := Point{T: ev.stepTime(k), F: b.Last}
			if timestamps {
				p.F = float64(b.LastT) / 1000
			}
			ev.addSamples(1)
			o.Points = append(o.Points, p)
		}
		out = append(out, o)
	}
	ev.releaseTier(ts)
	return out, true
}

// releaseTier accounts for the buckets of ts, which the caller is done
// with.
func (ev *evaluator) releaseTier(ts []tierSeries) {
	for _, s := range ts {
		ev.samples -= len(s.buckets)
	}
}

// rangeFromTier evaluates a range function over a plain matrix selector
// from a tier, when one answers it exactly.
func (ev *evaluator) rangeFromTier(fe *metricsql.FuncExpr, def rangeFuncDef, tf tierFn) (Matrix, bool) {
	if ev.tq == nil || len(fe.Args) != 1 {
		return nil, false
	}
	re, ok := fe.Args[0].(*metricsql.RollupExpr)
	if !ok || re.Window == nil || re.ForSubquery() {
		return nil, false
	}
	me, ok := re.Expr.(*metricsql.MetricExpr)
	if !ok {
		return nil, false
	}
	rng := re.Window.Duration(ev.windowStep())
	if rng <= 0 {
		return nil, false
	}
	off, at := ev.offsetOf(re.Offset), ev.atTime(re.At)
	n := ev.numSteps()
	lo, hi := ev.refTime(0, off, at), ev.refTime(n-1, off, at)
	tr, ok := ev.pickTier(lo, hi, rng, rng)
	if !ok {
		return nil, false
	}
	ts, ok := ev.selectTier(me, tr, lo-rng+1, hi)
	if !ok {
		return nil, false
	}
	keep := def.keepName || fe.KeepMetricNames
	out := newOutMatrix(ev)
	for _, s := range ts {
		ls := s.metric
		if !keep {
			ls = dropName(ls)
		}
		lo, hi := 0, 0
		slot := -1
		for k := range n {
			ref := ev.refTime(k, off, at)
			for lo < len(s.buckets) && s.buckets[lo].End <= ref-rng {
				lo++
			}
			hi = max(hi, lo)
			for hi < len(s.buckets) && s.buckets[hi].End <= ref {
				hi++
			}
			w := s.buckets[lo:hi]
			ev.spend(1 + len(w))
			if v, ok := tf(w, ref, rng); ok {
				if slot < 0 {
					slot = out.slot(ls)
				}
				ev.addSamples(1)
				out.m[slot].add(Point{T: ev.stepTime(k), F: v}, nil)
			}
		}
	}
	ev.releaseTier(ts)
	for i := range out.m {
		pts := out.m[i].Points
		ev.spend(len(pts))
		if !slices.IsSortedFunc(pts, func(a, b Point) int { return cmp.Compare(a.T, b.T) }) {
			sortPoints(&out.m[i])
		}
		for j := 1; j < len(pts); j++ {
			if pts[j].T == pts[j-1].T {
				ev.failf("vector cannot contain metrics with the same labelset")
			}
		}
	}
	return out.m, true
}

// mergeTierNames is the Tier of a result made of two (either may be
// empty).
func mergeTierNames(a, b string) string {
	used := map[string]bool{}
	for _, n := range append(strings.Split(a, "+"), strings.Split(b, "+")...) {
		if n != "" {
			used[n] = true
		}
	}
	return tierName(used)
}
