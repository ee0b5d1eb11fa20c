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

// tierFunc is a range function a tier answers, and the bucket fields it
// reads (only those columns of the blocks are decoded).
type tierFunc struct {
	fn     tierFn
	fields storage.BucketFields
}

const (
	countField = storage.FieldCount
	rateFields = storage.FieldCount | storage.FieldFirst | storage.FieldLast | storage.FieldInc |
		storage.FieldFirstT | storage.FieldLastT
	// selectorFields are what a plain selector reads.
	selectorFields = storage.FieldCount | storage.FieldLast | storage.FieldLastT
)

// tierFuncs are the range functions a tier answers.
var tierFuncs = map[string]tierFunc{
	"count_over_time": {func(w []storage.Bucket, _, _ int64) (float64, bool) {
		n := bucketCount(w)
		return float64(n), n > 0
	}, countField},
	"present_over_time": {func(w []storage.Bucket, _, _ int64) (float64, bool) {
		return 1, bucketCount(w) > 0
	}, countField},
	"sum_over_time": {func(w []storage.Bucket, _, _ int64) (float64, bool) {
		sum, _, ok := bucketSum(w)
		return sum, ok
	}, countField | storage.FieldSum},
	"avg_over_time": {func(w []storage.Bucket, _, _ int64) (float64, bool) {
		sum, n, ok := bucketSum(w)
		return sum / float64(n), ok
	}, countField | storage.FieldSum},
	"min_over_time": {bucketMin, countField | storage.FieldMin},
	"max_over_time": {bucketMax, countField | storage.FieldMax},
	"last_over_time": {func(w []storage.Bucket, _, _ int64) (float64, bool) {
		for i := len(w) - 1; i >= 0; i-- {
			if w[i].Count > 0 {
				return w[i].Last, true
			}
		}
		return 0, false
	}, countField | storage.FieldLast},
	"first_over_time": {func(w []storage.Bucket, _, _ int64) (float64, bool) {
		for i := range w {
			if w[i].Count > 0 {
				return w[i].First, true
			}
		}
		return 0, false
	}, countField | storage.FieldFirst},
	"rate": {func(w []storage.Bucket, ref, rng int64) (float64, bool) {
		return bucketRate(w, ref-rng, ref, true, true)
	}, rateFields},
	"increase": {func(w []storage.Bucket, ref, rng int64) (float64, bool) {
		return bucketRate(w, ref-rng, ref, true, false)
	}, rateFields},
	"delta": {func(w []storage.Bucket, ref, rng int64) (float64, bool) {
		return bucketRate(w, ref-rng, ref, false, false)
	}, rateFields &^ storage.FieldInc},
}

func bucketCount(w []storage.Bucket) int64 {
	var n int64
	for i := range w {
		n += w[i].Count
	}
	return n
}

func bucketSum(w []storage.Bucket) (float64, int64, bool) {
	var sum, c float64
	var n int64
	for i := range w {
		if b := &w[i]; b.Count > 0 {
			sum, c = kahanSumInc(b.Sum, sum, c)
			n += b.Count
		}
	}
	if !math.IsInf(sum, 0) {
		sum += c
	}
	return sum, n, n > 0
}

// bucketMin is min_over_time: NaN only when every sample is.
func bucketMin(w []storage.Bucket, _, _ int64) (float64, bool) {
	found := false
	var m float64
	for i := range w {
		if b := &w[i]; b.Count > 0 && (!found || b.Min < m || math.IsNaN(m)) {
			m, found = b.Min, true
		}
	}
	return m, found
}

// bucketMax is max_over_time: NaN only when every sample is.
func bucketMax(w []storage.Bucket, _, _ int64) (float64, bool) {
	found := false
	var m float64
	for i := range w {
		if b := &w[i]; b.Count > 0 && (!found || b.Max > m || math.IsNaN(m)) {
			m, found = b.Max, true
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

// tierSeries is a series of a tier, its buckets not read yet.
type tierSeries struct {
	metric labels.Labels
	s      storage.TierSeries
}

// tierMinSamplesPerBucket is how many raw samples a bucket must stand for,
// on average, for a tier to be read instead of raw samples that are
// there: a bucket costs more to read than a raw sample, so a tier no
// coarser than the raw interval (a 1h tier over hourly samples) only
// slows a query down.
const tierMinSamplesPerBucket = 2

// pickTier returns the coarsest tier that answers exactly for steps
// first..last (ms) with windows of rng (0: a plain selector, which needs
// no alignment of its lookback), if tiers are worth it here: the span
// read is at least Options.TierMinRange or reaches past the raw samples,
// and, while the raw samples are all there, the tier's buckets stand for
// several raw samples each.
func (ev *evaluator) pickTier(first, last, reach, rng int64) (storage.TierInfo, bool) {
	if ev.tq == nil || ev.tierMinRange < 0 {
		return storage.TierInfo{}, false
	}
	rawAll := first-reach >= ev.tq.RawMinTime()
	if last-first+reach < ev.tierMinRange && rawAll {
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
		if rawAll && t.SamplesPerBucket > 0 && t.SamplesPerBucket < tierMinSamplesPerBucket {
			continue // no fewer points than raw
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

// selectTier returns the series matching me in the tier, whose buckets
// ending in [mint, maxt] (with fields) readTier then reads one series at
// a time. It gives up (false) when a series holds native histograms,
// which tiers do not keep.
func (ev *evaluator) selectTier(me *metricsql.MetricExpr, tr storage.TierInfo, mint, maxt int64, fields storage.BucketFields) ([]tierSeries, bool) {
	sets, err := matchersOf(me)
	if err != nil {
		ev.fail(err)
	}
	var out []tierSeries
	seen := map[string]bool{}
	hints := &storage.SelectHints{Start: mint, End: maxt, Fields: fields}
	for _, ms := range sets {
		ss := ev.tq.SelectTier(ev.ctx, tr.Resolution, hints, ms...)
		for ss.Next() {
			s, ok := ss.At().(storage.TierSeries)
			if !ok || s.HasHistograms() {
				return nil, false
			}
			ls := s.Labels()
			if len(sets) > 1 {
				k := ls.String()
				if seen[k] {
					continue
				}
				seen[k] = true
			}
			if ev.series++; ev.maxSeries > 0 && ev.series > ev.maxSeries {
				ev.failf("the query selects more than %d series (--query.max-series); narrow its selectors", ev.maxSeries)
			}
			out = append(out, tierSeries{metric: ls, s: s})
		}
		if err := ss.Err(); err != nil {
			ev.fail(execErr("select: %v", err))
		}
	}
	if len(sets) > 1 {
		sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].metric, out[j].metric) < 0 })
	}
	ev.usedTier(storage.TierName(tr.Resolution))
	return out, true
}

// readTier reads the buckets of s into buf (reused), and accounts for
// them; the caller hands them back with releaseTier before the next
// series.
func (ev *evaluator) readTier(s tierSeries, buf []storage.Bucket) []storage.Bucket {
	bs, err := s.s.Buckets(buf[:0])
	if err != nil {
		ev.fail(execErr("read series %s: %v", s.metric, err))
	}
	ev.spend(1 + len(bs))
	ev.addSamples(len(bs))
	ev.samplesRead += int64(len(bs))
	return bs
}

// releaseTier accounts for the buckets of a series, which the caller is
// done with.
func (ev *evaluator) releaseTier(bs []storage.Bucket) { ev.samples -= len(bs) }

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
	ts, ok := ev.selectTier(me, tr, lo-ev.lookback+1, hi, selectorFields)
	if !ok {
		return nil, false
	}
	out := make(Matrix, 0, len(ts))
	var buf []storage.Bucket
	for _, s := range ts {
		buf = ev.readTier(s, buf)
		bs := buf
		o := Series{Metric: s.metric}
		j := -1
		for k := range n {
			if k&(ctxCheckEvery-1) == 0 {
				ev.spend(ctxCheckEvery)
			}
			ref := ev.refTime(k, off, at)
			for j+1 < len(bs) && bs[j+1].End <= ref {
				j++
			}
			if j < 0 {
				continue
			}
			b := &bs[j]
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
		ev.releaseTier(bs)
	}
	return out, true
}

// rangeFromTier evaluates a range function over a plain matrix selector
// from a tier, when one answers it exactly.
func (ev *evaluator) rangeFromTier(fe *metricsql.FuncExpr, def rangeFuncDef, tf tierFunc) (Matrix, bool) {
	if ev.tq == nil || len(fe.Args) != 1 {
		return nil, false
	}
	re, ok := fe.Args[0].(*metricsql.RollupExpr)
	if !ok || re.Window == nil || re.ForSubquery() {
		return nil, false
	}
	me, ok := re.Expr.(*metricsql.MetricExpr)
	if !ok || rangeModOf(me) != modNone {
		return nil, false // a tier has no samples to anchor or interpolate
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
	ts, ok := ev.selectTier(me, tr, lo-rng+1, hi, tf.fields)
	if !ok {
		return nil, false
	}
	keep := def.keepName || fe.KeepMetricNames
	out := newOutMatrix(ev)
	var buf []storage.Bucket
	for _, s := range ts {
		buf = ev.readTier(s, buf)
		bs := buf
		ls := s.metric
		if !keep {
			ls = ev.dropName(ls)
		}
		lo, hi := 0, 0
		slot := -1
		for k := range n {
			ref := ev.refTime(k, off, at)
			for lo < len(bs) && bs[lo].End <= ref-rng {
				lo++
			}
			hi = max(hi, lo)
			for hi < len(bs) && bs[hi].End <= ref {
				hi++
			}
			w := bs[lo:hi]
			ev.spend(1 + len(w))
			if v, ok := tf.fn(w, ref, rng); ok {
				if slot < 0 {
					slot = out.slot(ls)
				}
				ev.addSamples(1)
				out.m[slot].add(Point{T: ev.stepTime(k), F: v}, nil)
			}
		}
		ev.releaseTier(bs)
	}
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
