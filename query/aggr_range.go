package query

import (
	"github.com/VictoriaMetrics/metricsql"

	"github.com/emsdb/tsdb/storage"
)

// aggregateRange evaluates sum, avg, count, group, min or max of an
// instant selector, or of a range function over a matrix selector (a
// dashboard's sum by (mode) (rate(node_cpu_seconds_total[5m]))), series by
// series: each series' samples are read into buffers the next series
// reuses, its values at the steps go straight into the groups'
// accumulators, and neither the selector's points nor the function's
// output series are kept (issue 18: they were most of such a query's
// allocations, and of its time once the collector's share is counted).
// The answer is the general path's (vectorSelector or callRange, then
// rangeAggregateSimple), value for value: the same window function, the
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
	src, ok := ev.seriesSource(ae.Args[0])
	if !ok {
		return nil, false
	}
	n := ev.numSteps()
	lo, hi := ev.refTime(0, src.off, src.at), ev.refTime(n-1, src.off, src.at)
	sets, err := matchersOf(src.me)
	if err != nil || len(sets) != 1 {
		return nil, false
	}
	mint := lo - src.reach + 1

	samples, series, read := ev.samples, ev.series, ev.samplesRead
	giveUp := func() (Matrix, bool) {
		ev.samples, ev.series, ev.samplesRead = samples, series, read
		return nil, false
	}
	ev.usedTier("raw")
	gi := newGroupIndex(ae.Modifier.Args, ae.Modifier.Op == "without", ev.delayNameRemoval)
	acc := newSimpleAcc(name, n)
	// outputs are the hashes of the output label sets so far, when the
	// function drops names: two equal ones, or two that merely share a
	// hash, send the query the general way.
	var outputs map[uint64]struct{}
	if src.dropName {
		outputs = map[uint64]struct{}{}
	}
	var (
		it  storage.Iterator
		ts  []int64
		vs  []float64
		pts []Point
		j   int32 // the series' index
	)
	ss := ev.q.Select(ev.ctx, &storage.SelectHints{Start: mint, End: hi}, sets[0]...)
	for ; ss.Next(); j++ {
		s := ss.At()
		ls := s.Labels()
		if ev.series++; ev.maxSeries > 0 && ev.series > ev.maxSeries {
			ev.failf("the query selects more than %d series (--query.max-series); narrow its selectors", ev.maxSeries)
		}
		pts = pts[:0]
		last := false
		if src.fn == nil && n == 1 {
			// At one step only the newest sample in the window counts
			// (selectSeriesLast).
			if lsr, ok := s.(storage.LastSampler); ok {
				if t, v, found, known := lsr.LastFloat(mint, hi); known {
					if found {
						pts = append(pts, Point{T: t, F: v})
					}
					last = true
				}
			}
		}
		if !last {
			it = s.Iterator(it)
			if _, ok := it.(storage.HistogramIterator); ok {
				return giveUp()
			}
			if ts, vs, err = storage.AppendFloats(it, mint, hi, ts[:0], vs[:0]); err != nil {
				ev.fail(execErr("read series %s: %v", ls, err))
			}
			for i, t := range ts {
				// A range function's window leaves stale markers out; an
				// instant selector stops its lookback at them.
				if v := vs[i]; src.fn == nil || !storage.IsStaleNaN(v) {
					pts = append(pts, Point{T: t, F: v})
				}
			}
		}
		ev.spend(1 + len(pts))
		ev.addSamples(len(pts))
		ev.samplesRead += int64(len(pts))
		out := ls
		if src.dropName {
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
		if src.fn != nil {
			wlo, whi := 0, 0
			for k := range n {
				ref := ev.refTime(k, src.off, src.at)
				w := src.ra.window(pts, ref, &wlo, &whi)
				ev.spend(1 + len(w))
				if v, ok := src.fn(w, ref, src.ra.rng, ev.stepTime(k), nil); ok {
					acc.add(g*n+k, j, v)
				}
			}
		} else {
			at := -1
			for k := range n {
				if k&(ctxCheckEvery-1) == 0 {
					ev.spend(ctxCheckEvery)
				}
				ref := ev.refTime(k, src.off, src.at)
				for at+1 < len(pts) && pts[at+1].T <= ref {
					at++
				}
				if at < 0 || pts[at].T <= ref-ev.lookback || storage.IsStaleNaN(pts[at].F) {
					continue
				}
				acc.add(g*n+k, j, pts[at].F)
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

// seriesSource is what aggregateRange reads: a selector, and the range
// function over it, if any.
type seriesSource struct {
	me       *metricsql.MetricExpr
	off      int64
	at       *int64
	reach    int64   // how far before a step its value looks
	fn       rangeFn // nil: an instant selector
	ra       *rangeArg
	dropName bool
}

// seriesSource recognizes the arguments aggregateRange takes: an instant
// selector that vectorSelector reads from raw samples (MetricsQL's read
// differently, and so do smoothed selectors and tiers), or a range
// function of one argument over a plain matrix selector that callRange
// reads from raw samples.
func (ev *evaluator) seriesSource(e metricsql.Expr) (seriesSource, bool) {
	if me, ok := e.(*metricsql.MetricExpr); ok {
		if ev.vm || rangeModOf(me) != modNone {
			return seriesSource{}, false
		}
		src := seriesSource{me: me, reach: ev.lookback}
		n := ev.numSteps()
		if _, ok := ev.pickTier(ev.refTime(0, 0, nil), ev.refTime(n-1, 0, nil), ev.lookback, 0); ok {
			return seriesSource{}, false // vectorFromTier may answer
		}
		return src, true
	}
	fe, ok := e.(*metricsql.FuncExpr)
	if !ok || len(fe.Args) != 1 || ev.isVMRollup(fe.Name) {
		return seriesSource{}, false
	}
	def, ok := rangeFuncs[fe.Name]
	if !ok || def.nargs != 1 || def.matrixArg != 0 {
		return seriesSource{}, false
	}
	re, ok := fe.Args[0].(*metricsql.RollupExpr)
	if !ok || re.Window == nil || re.ForSubquery() {
		return seriesSource{}, false
	}
	me, ok := re.Expr.(*metricsql.MetricExpr)
	if !ok || rangeModOf(me) != modNone {
		return seriesSource{}, false
	}
	ra := &rangeArg{rng: re.Window.Duration(ev.windowStep()), off: ev.offsetOf(re.Offset), at: ev.atTime(re.At), selector: true}
	if ra.rng <= 0 {
		return seriesSource{}, false
	}
	n := ev.numSteps()
	if _, ok := tierFuncs[fe.Name]; ok {
		if _, ok := ev.pickTier(ev.refTime(0, ra.off, ra.at), ev.refTime(n-1, ra.off, ra.at), ra.rng, ra.rng); ok {
			return seriesSource{}, false // callRange reads a tier
		}
	}
	return seriesSource{me: me, off: ra.off, at: ra.at, reach: ra.rng, fn: def.fn, ra: ra,
		dropName: !def.keepName && !fe.KeepMetricNames}, true
}
