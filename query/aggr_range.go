package query

import (
	"github.com/VictoriaMetrics/metricsql"

	"github.com/emsdb/tsdb/storage"
)

// aggregateRange evaluates sum, avg, count, group, min or max of a range
// function over a matrix selector (a dashboard's
// sum by (mode) (rate(node_cpu_seconds_total[5m]))) series by series: each
// series' samples are read into buffers the next series reuses, its
// function values go straight into the groups' accumulators, and neither
// the selector's points nor the function's output series are kept (issue
// 18: they were most of such a query's allocations, and of its time once
// the collector's share is counted). The answer is callRange's and then
// rangeAggregateSimple's, value for value: the same window function, the
// same Kahan sums taking members in series order, the same group order.
//
// It reports false, having changed nothing, where that path does not
// apply; and gives up, undoing its accounting, on what it does not
// handle (native histograms, two series whose output labels are equal,
// more accumulators than maxSimpleCells), for the general path to answer.
func (ev *evaluator) aggregateRange(name string, ae *metricsql.AggrFuncExpr) (Matrix, bool) {
	switch name {
	case "sum", "avg", "count", "group", "min", "max":
	default:
		return nil, false
	}
	if ev.noAggregateRange {
		return nil, false
	}
	fe, ok := ae.Args[0].(*metricsql.FuncExpr)
	if !ok || len(fe.Args) != 1 || ev.isVMRollup(fe.Name) {
		return nil, false
	}
	def, ok := rangeFuncs[fe.Name]
	if !ok || def.nargs != 1 || def.matrixArg != 0 {
		return nil, false
	}
	re, ok := fe.Args[0].(*metricsql.RollupExpr)
	if !ok || re.Window == nil || re.ForSubquery() {
		return nil, false
	}
	me, ok := re.Expr.(*metricsql.MetricExpr)
	if !ok || rangeModOf(me) != modNone {
		return nil, false
	}
	ra := &rangeArg{rng: re.Window.Duration(ev.windowStep()), off: ev.offsetOf(re.Offset), at: ev.atTime(re.At), selector: true}
	if ra.rng <= 0 {
		return nil, false
	}
	n := ev.numSteps()
	lo, hi := ev.refTime(0, ra.off, ra.at), ev.refTime(n-1, ra.off, ra.at)
	if _, ok := tierFuncs[fe.Name]; ok {
		if _, ok := ev.pickTier(lo, hi, ra.rng, ra.rng); ok {
			return nil, false // callRange reads a tier
		}
	}
	sets, err := matchersOf(me)
	if err != nil || len(sets) != 1 {
		return nil, false
	}
	keep := def.keepName || fe.KeepMetricNames

	samples, series, read := ev.samples, ev.series, ev.samplesRead
	giveUp := func() (Matrix, bool) {
		ev.samples, ev.series, ev.samplesRead = samples, series, read
		return nil, false
	}
	ev.usedTier("raw")
	gi := newGroupIndex(ae.Modifier.Args, ae.Modifier.Op == "without", ev.delayNameRemoval)
	acc := newSimpleAcc(name, n)
	// outputs are the hashes of the output label sets so far (!keep): two
	// equal ones, or two that merely share a hash, send the query the
	// general way.
	var outputs map[uint64]struct{}
	if !keep {
		outputs = map[uint64]struct{}{}
	}
	var (
		it   storage.Iterator
		ts   []int64
		vs   []float64
		pts  []Point
		j    int32 // the series' index
		mint = lo - ra.rng + 1
	)
	ss := ev.q.Select(ev.ctx, &storage.SelectHints{Start: mint, End: hi}, sets[0]...)
	for ; ss.Next(); j++ {
		s := ss.At()
		ls := s.Labels()
		if ev.series++; ev.maxSeries > 0 && ev.series > ev.maxSeries {
			ev.failf("the query selects more than %d series (--query.max-series); narrow its selectors", ev.maxSeries)
		}
		it = s.Iterator(it)
		if _, ok := it.(storage.HistogramIterator); ok {
			return giveUp()
		}
		if ts, vs, err = storage.AppendFloats(it, mint, hi, ts[:0], vs[:0]); err != nil {
			ev.fail(execErr("read series %s: %v", ls, err))
		}
		pts = pts[:0]
		for i, t := range ts {
			if v := vs[i]; !storage.IsStaleNaN(v) {
				pts = append(pts, Point{T: t, F: v})
			}
		}
		ev.spend(1 + len(pts))
		ev.addSamples(len(pts))
		ev.samplesRead += int64(len(pts))
		out := ls
		if !keep {
			out = ev.dropName(ls)
			h := out.Hash()
			if _, ok := outputs[h]; ok {
				return giveUp() // callRange merges them, or fails
			}
			outputs[h] = struct{}{}
		}
		g := gi.id(out)
		if len(gi.labels)*n > maxSimpleCells {
			return giveUp()
		}
		acc.grow(len(gi.labels))
		wlo, whi := 0, 0
		for k := range n {
			ref := ev.refTime(k, ra.off, ra.at)
			w := ra.window(pts, ref, &wlo, &whi)
			ev.spend(1 + len(w))
			if v, ok := def.fn(w, ref, ra.rng, ev.stepTime(k), nil); ok {
				acc.add(g*n+k, j, v)
			}
		}
		ev.samples -= len(pts)
	}
	if err := ss.Err(); err != nil {
		ev.fail(execErr("select: %w", err)) // %w: the API maps storage.ErrUnavailable to 503
	}
	if ev.aggregatedRange != nil {
		ev.aggregatedRange.Add(1)
	}
	return ev.simpleResult(acc, gi.labels), true
}
