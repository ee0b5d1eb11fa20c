package query

import (
	"container/heap"
	"math"
	"slices"
	"sort"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/schema"

	"github.com/emsdb/tsdb/storage"
)

// hasMetadataLabel reports whether ls has a __type__ or __unit__ label.
func hasMetadataLabel(ls labels.Labels) bool {
	return ls.Get(model.MetricTypeLabel) != "" || ls.Get(model.MetricUnitLabel) != ""
}

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
func (ev *evaluator) aggregateRange(name string, ae *metricsql.AggrFuncExpr, param Matrix) (Matrix, bool) {
	vecArg := 0
	switch name {
	case "sum", "avg", "count", "group", "min", "max":
	case "topk", "bottomk":
		vecArg = 1
	default:
		return nil, false
	}
	if ev.generalPaths {
		return nil, false
	}
	src, ok := ev.seriesSource(ae.Args[vecArg])
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
	var (
		acc  *simpleAcc
		kacc *topAcc
	)
	if param != nil {
		kacc = newTopAcc(name == "topk", n, param)
	} else {
		acc = newSimpleAcc(name, n)
	}
	// outputs are the hashes of the output label sets so far, when the
	// function drops names: two equal ones, or two that merely share a
	// hash, send the query the general way.
	//
	// A selector that names its metric (__name__="…") selects series
	// that all share the name: their outputs can be alike only where
	// two differ in a metadata label alone, so while none has one they
	// are distinct without hashing them — hashing every label of every
	// series was a sixth of a rate's CPU over 1,584 series (issue 18).
	var outputs map[uint64]struct{}
	named := slices.ContainsFunc(sets[0], func(m *labels.Matcher) bool {
		return m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual
	})
	unhashed := src.dropName && named && !ev.delayNameRemoval
	if src.dropName && !unhashed {
		outputs = map[uint64]struct{}{}
	}
	// keepInput: the groups of a function's outputs are those of its
	// inputs when the grouping is by labels none of which is a metadata
	// label (the outputs differ from the inputs only in those) and no
	// output's labels are kept (topk keeps its members').
	keepInput := param == nil && ae.Modifier.Op != "without" && !slices.ContainsFunc(ae.Modifier.Args, schema.IsMetadataLabel)
	var hbuf []byte
	var (
		it  storage.Iterator
		ts  []int64
		vs  []float64
		pts []Point
		j   int32 // the series' index
	)
	ss := ev.q.Select(ev.ctx, &storage.SelectHints{Start: mint, End: hi, Newest: src.fn == nil && n == 1}, sets[0]...)
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
		switch {
		case unhashed:
			if hasMetadataLabel(ls) {
				return giveUp() // the general path tells them apart
			}
			if !keepInput {
				out = ev.dropName(ls)
			}
		case src.dropName:
			var h uint64
			if ev.delayNameRemoval {
				out = ev.dropName(ls) // marked: the name stays until the end
				h = out.Hash()
			} else {
				// The output's identity, without building it: every label
				// but the metadata ones (HashWithoutLabels leaves the name
				// out of itself).
				h, hbuf = ls.HashWithoutLabels(hbuf, model.MetricTypeLabel, model.MetricUnitLabel)
				if !keepInput {
					out = ev.dropName(ls)
				}
			}
			if _, ok := outputs[h]; ok {
				return giveUp() // callRange merges them, or fails
			}
			outputs[h] = struct{}{}
		}
		g := gi.id(out)
		if len(gi.labels)*n > maxSimpleCells {
			return giveUp()
		}
		add := func(i, k int, v float64) { acc.add(i, j, v) }
		if kacc != nil {
			kacc.grow(len(gi.labels))
			kacc.labels = append(kacc.labels, out)
			add = func(i, k int, v float64) { kacc.add(i, k, j, v) }
		} else {
			acc.grow(len(gi.labels))
		}
		if src.fn != nil {
			wlo, whi := 0, 0
			for k := range n {
				ref := ev.refTime(k, src.off, src.at)
				w := src.ra.window(pts, ref, &wlo, &whi)
				ev.spend(1 + len(w))
				if v, ok := src.fn(w, ref, src.ra.rng, ev.stepTime(k), nil); ok {
					add(g*n+k, k, v)
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
				add(g*n+k, k, pts[at].F)
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
	if kacc != nil {
		return ev.topResult(kacc), true
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

// topAcc is aggregateRange's topk or bottomk: a heap per group and step,
// cell g*n+k, of the series (by index) selectK would pick, built by the
// same pushes and replacements in the same order, so that equal values
// end the same way.
type topAcc struct {
	top    bool
	n      int     // steps
	k      []int   // the heaps' sizes by step (param, 0 where NaN)
	nan    []bool  // the param is NaN at the step
	cells  []kCell // by cell
	labels []labels.Labels
}

type kCell struct {
	first int32 // the first member's series index
	h     kHeap[kEntry]
}

type kEntry struct {
	f float64
	j int32
}

func newTopAcc(top bool, steps int, param Matrix) *topAcc {
	a := &topAcc{top: top, n: steps, k: make([]int, steps), nan: make([]bool, steps)}
	for k := range steps {
		switch p := scalarAt(param, k); {
		case math.IsNaN(p):
			a.nan[k] = true
		case p >= 1<<62:
			a.k[k] = math.MaxInt
		default:
			a.k[k] = int(math.Max(0, p))
		}
	}
	return a
}

func (a *topAcc) grow(groups int) { a.cells = extend(a.cells, groups*a.n) }

// add takes value f of series j into cell i at step k, as selectK does.
func (a *topAcc) add(i, k int, j int32, f float64) {
	c := &a.cells[i]
	if len(c.h.s) == 0 && c.h.s == nil {
		c.first = j
		c.h.top = a.top
		c.h.s = make([]kEntry, 0, min(a.k[k], 16))
	}
	h := &c.h
	switch {
	case len(h.s) < a.k[k]:
		heap.Push(h, kEntry{f, j})
	case len(h.s) == 0:
	case (a.top && h.s[0].f < f) || (!a.top && h.s[0].f > f) || (math.IsNaN(h.s[0].f) && !math.IsNaN(f)):
		h.s[0] = kEntry{f, j}
		if a.k[k] > 1 {
			heap.Fix(h, 0)
		}
	}
}

func (e kEntry) kValue() float64 { return e.f }

// topResult is the series topk or bottomk picked, as rangeEvalSeries
// gathers aggregateGroups' answers: step by step, the groups in the order
// of their first member, each group's picks best first.
func (ev *evaluator) topResult(a *topAcc) Matrix {
	n := a.n
	groups := len(a.cells) / max(n, 1)
	out := newOutMatrix(ev)
	var order []int
	for k := range n {
		if a.nan[k] {
			ev.failf("Parameter value is NaN")
		}
		ev.spend(1 + groups)
		order = order[:0]
		for g := range groups {
			if len(a.cells[g*n+k].h.s) > 0 {
				order = append(order, g)
			}
		}
		slices.SortFunc(order, func(x, y int) int { return int(a.cells[x*n+k].first) - int(a.cells[y*n+k].first) })
		ts := ev.stepTime(k)
		for _, g := range order {
			h := &a.cells[g*n+k].h
			sort.Sort(sort.Reverse(h))
			for _, e := range h.s {
				out.add(a.labels[e.j], ts, e.f, nil)
			}
		}
	}
	return out.m
}
