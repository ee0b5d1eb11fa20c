package query

import (
	"container/heap"
	"errors"
	"math"
	"slices"
	"sort"
	"strconv"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// aggregate evaluates sum, avg, count, topk, … with by/without.
func (ev *evaluator) aggregate(ae *metricsql.AggrFuncExpr) Matrix {
	name := ae.Name
	var param Matrix
	var paramStr string
	vecArg := 0
	switch name {
	case "topk", "bottomk", "quantile", "limitk", "limit_ratio", "count_values":
		if len(ae.Args) != 2 {
			ev.fail(badData("wrong number of arguments for aggregate expression provided, expected 2, got %d", len(ae.Args)))
		}
		vecArg = 1
		if name == "count_values" {
			s, ok := ae.Args[0].(*metricsql.StringExpr)
			if !ok {
				ev.fail(badData("expected type string in aggregation parameter, got %s", typeName(mustType(ae.Args[0]))))
			}
			paramStr = s.S
			if !model_labelNameValid(paramStr) {
				ev.failf("invalid label name %q", paramStr)
			}
		} else {
			param = ev.eval(ae.Args[0])
		}
	case "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar":
		if len(ae.Args) != 1 {
			ev.fail(badData("wrong number of arguments for aggregate expression provided, expected 1, got %d", len(ae.Args)))
		}
	default:
		if m, ok := ev.aggregateMetricsQL(ae); ok {
			return m
		}
		ev.fail(badData("unsupported aggregation %q", name))
	}
	if m, ok := ev.aggregateRange(name, ae, param); ok {
		return m
	}
	v := ev.eval(ae.Args[vecArg])
	without := ae.Modifier.Op == "without"
	grouping := ae.Modifier.Args
	if name == "quantile" {
		for k := range ev.numSteps() {
			if q := scalarAt(param, k); q < 0 || q > 1 || math.IsNaN(q) {
				ev.warn("PromQL warning: quantile value should be between 0 and 1, got %v", q)
			}
		}
	}
	if name != "count_values" && ev.numSteps() > 1 {
		// The groups of a series do not change from step to step: find
		// them once, not at every step.
		gid, glabels := ev.seriesGroups(v, grouping, without)
		switch name {
		case "sum", "avg", "count", "group", "min", "max":
			if len(glabels)*ev.numSteps() <= maxSimpleCells && !matrixHasHistograms(v) {
				return ev.rangeAggregateSimple(name, v, gid, glabels)
			}
		}
		sg := newStepGroups(glabels)
		return ev.rangeEvalSeries(func(k int, ts int64, in Vector, idx []int) Vector {
			p := math.NaN()
			if param != nil {
				p = scalarAt(param, k)
			}
			switch {
			case math.IsNaN(p) && (name == "topk" || name == "bottomk" || name == "limitk"):
				ev.failf("Parameter value is NaN")
			case math.IsNaN(p) && name == "limit_ratio":
				ev.failf("Ratio value is NaN")
			case name == "limit_ratio":
				ev.warnRatio(p)
			}
			groups := sg.group(in, idx, gid)
			if ev.delayNameRemoval {
				markGroups(groups)
			}
			return ev.aggregateGroups(name, groups, p, ts)
		}, v)
	}
	return ev.rangeEval(func(k int, ts int64, a []Vector) Vector {
		in := a[0]
		p := math.NaN()
		if param != nil {
			p = scalarAt(param, k)
		}
		switch {
		case math.IsNaN(p) && (name == "topk" || name == "bottomk" || name == "limitk"):
			ev.failf("Parameter value is NaN")
		case math.IsNaN(p) && name == "limit_ratio":
			ev.failf("Ratio value is NaN")
		case name == "limit_ratio":
			ev.warnRatio(p)
		}
		return ev.aggregateStep(name, in, p, paramStr, grouping, without, ts)
	}, v)
}

// warnRatio warns, as Prometheus does, of a limit_ratio ratio outside
// [-1, 1], which is capped.
func (ev *evaluator) warnRatio(r float64) {
	switch {
	case r > 1:
		ev.warn("PromQL warning: ratio value should be between -1 and 1, got %g, capping to %g", r, 1.0)
	case r < -1:
		ev.warn("PromQL warning: ratio value should be between -1 and 1, got %g, capping to %g", r, -1.0)
	}
}

type aggGroup struct {
	ls      labels.Labels
	samples []Sample
}

func groupLabels(ls labels.Labels, grouping []string, without bool) labels.Labels {
	if without {
		b := labels.NewBuilder(ls)
		b.Del(model.MetricNameLabel, dropNameLabel) // markGroups marks the group
		b.Del(grouping...)
		return b.Labels()
	}
	b := labels.NewScratchBuilder(len(grouping))
	for _, g := range grouping {
		if v := ls.Get(g); v != "" {
			b.Add(g, v)
		}
	}
	b.Sort()
	return b.Labels()
}

// groupLabels is groupLabels(ls, gi.grouping, gi.without), building
// with the index's scratch builder.
func (gi *groupIndex) groupLabels(ls labels.Labels) labels.Labels {
	if gi.without {
		return groupLabels(ls, gi.grouping, true)
	}
	gi.sb.Reset()
	for _, g := range gi.grouping {
		if v := ls.Get(g); v != "" {
			gi.sb.Add(g, v)
		}
	}
	gi.sb.Sort()
	return gi.sb.Labels()
}

func (ev *evaluator) aggregateStep(name string, in Vector, p float64, paramStr string, grouping []string, without bool, ts int64) Vector {
	groups := groupStep(name, in, paramStr, grouping, without)
	if ev.delayNameRemoval {
		markGroups(groups)
	}
	return ev.aggregateGroups(name, groups, p, ts)
}

// groupStep puts one step's samples into their groups, in the order the
// groups first appear.
func groupStep(name string, in Vector, paramStr string, grouping []string, without bool) []*aggGroup {
	if name == "count_values" {
		grouping = slices.DeleteFunc(slices.Clone(grouping), func(g string) bool { return g == paramStr })
	}
	groups := map[uint64][]*aggGroup{}
	var order []*aggGroup
	sorted := slices.Clone(grouping)
	if without {
		sorted = append(sorted, model.MetricNameLabel, dropNameLabel)
	}
	slices.Sort(sorted)
	var buf []byte
	for _, s := range in {
		var h uint64
		if name == "count_values" {
			val := strconv.FormatFloat(s.F, 'f', -1, 64)
			if s.H != nil {
				val = s.H.String()
			}
			ls := labels.NewBuilder(groupLabels(s.Metric, grouping, without)).Set(paramStr, val).Labels()
			h = ls.Hash()
			g := findGroup(groups[h], func(g *aggGroup) bool { return labels.Equal(g.ls, ls) })
			if g == nil {
				g = &aggGroup{ls: ls}
				groups[h] = append(groups[h], g)
				order = append(order, g)
			}
			g.samples = append(g.samples, s)
			continue
		}
		if without {
			h, buf = s.Metric.HashWithoutLabels(buf, sorted...)
		} else {
			h, buf = s.Metric.HashForLabels(buf, sorted...)
		}
		g := findGroup(groups[h], func(g *aggGroup) bool { return sameGroup(g.samples[0].Metric, s.Metric, sorted, without) })
		if g == nil {
			g = &aggGroup{ls: groupLabels(s.Metric, grouping, without)}
			groups[h] = append(groups[h], g)
			order = append(order, g)
		}
		g.samples = append(g.samples, s)
	}
	return order
}

// aggregateGroups computes the aggregation of each group at ts.
func (ev *evaluator) aggregateGroups(name string, order []*aggGroup, p float64, ts int64) Vector {
	var out Vector
	for _, g := range order {
		ss := g.samples
		switch name {
		case "sum", "avg", "count", "count_values", "group", "limitk", "limit_ratio":
		default:
			ss = ev.floatsOnly(name, ss)
			if len(ss) == 0 {
				continue
			}
		}
		if (name == "sum" || name == "avg") && vectorHasHistograms(ss) {
			if h, ok := ev.sumHistograms(ss, name == "avg"); ok {
				out = append(out, Sample{Metric: g.ls, T: ts, H: h})
			}
			continue
		}
		switch name {
		case "sum":
			var sum, c float64
			for _, s := range ss {
				sum, c = kahanSumInc(s.F, sum, c)
			}
			if !math.IsInf(sum, 0) {
				sum += c
			}
			out = append(out, Sample{Metric: g.ls, T: ts, F: sum})
		case "avg":
			pts := make([]Point, len(ss))
			for i, s := range ss {
				pts[i] = Point{F: s.F}
			}
			out = append(out, Sample{Metric: g.ls, T: ts, F: avgOf(pts)})
		case "count", "count_values":
			out = append(out, Sample{Metric: g.ls, T: ts, F: float64(len(ss))})
		case "group":
			out = append(out, Sample{Metric: g.ls, T: ts, F: 1})
		case "min", "max":
			m := ss[0].F
			for _, s := range ss[1:] {
				if math.IsNaN(m) || (name == "min" && s.F < m) || (name == "max" && s.F > m) {
					m = s.F
				}
			}
			out = append(out, Sample{Metric: g.ls, T: ts, F: m})
		case "stddev", "stdvar":
			pts := make([]Point, len(ss))
			for i, s := range ss {
				pts[i] = Point{F: s.F}
			}
			v := variance(pts)
			if name == "stddev" {
				v = math.Sqrt(v)
			}
			out = append(out, Sample{Metric: g.ls, T: ts, F: v})
		case "quantile":
			vals := make([]float64, len(ss))
			for i, s := range ss {
				vals[i] = s.F
			}
			out = append(out, Sample{Metric: g.ls, T: ts, F: quantile(p, vals)})
		case "topk", "bottomk":
			if math.IsNaN(p) {
				ev.failf("Parameter value is NaN")
			}
			kk := int(math.Min(float64(len(ss)), math.Max(0, p)))
			if p >= 1<<62 {
				kk = len(ss)
			}
			if kk == 0 {
				continue
			}
			out = append(out, selectK(ss, kk, name == "topk")...)
		case "limitk":
			if math.IsNaN(p) {
				ev.failf("Parameter value is NaN")
			}
			kk := int(math.Min(float64(len(ss)), math.Max(0, p)))
			out = append(out, ss[:kk]...)
		case "limit_ratio":
			if math.IsNaN(p) {
				ev.failf("Ratio value is NaN")
			}
			r := math.Max(-1, math.Min(1, p))
			for _, s := range ss {
				h := float64(unmarked(s.Metric).Hash()) / float64(math.MaxUint64)
				if (r >= 0 && h < r) || (r < 0 && h >= 1+r) {
					out = append(out, s)
				}
			}
		}
	}
	if name == "topk" || name == "bottomk" || name == "limitk" || name == "limit_ratio" {
		for i := range out {
			out[i].T = ts
		}
	}
	return out
}

// kHeap is Prometheus's heap for topk (smallest at the root) or bottomk
// (biggest at the root); NaN sorts first in both.
// kHeap is the heap of topk and bottomk: of samples (selectK) or of
// series indexes (aggregateRange's topAcc), ordered by their values, the
// worst at the root.
type kHeap[T interface{ kValue() float64 }] struct {
	s   []T
	top bool
}

func (h *kHeap[T]) Len() int      { return len(h.s) }
func (h *kHeap[T]) Swap(i, j int) { h.s[i], h.s[j] = h.s[j], h.s[i] }
func (h *kHeap[T]) Less(i, j int) bool {
	a, b := h.s[i].kValue(), h.s[j].kValue()
	if math.IsNaN(a) {
		return true
	}
	if h.top {
		return a < b
	}
	return a > b
}
func (h *kHeap[T]) Push(x any) { h.s = append(h.s, x.(T)) }
func (h *kHeap[T]) Pop() any {
	x := h.s[len(h.s)-1]
	h.s = h.s[:len(h.s)-1]
	return x
}

func (s Sample) kValue() float64 { return s.F }

// selectK picks topk/bottomk exactly as Prometheus does (which of equal
// values wins depends on the heap), best first.
func selectK(ss []Sample, k int, top bool) []Sample {
	h := &kHeap[Sample]{top: top}
	for _, s := range ss {
		switch {
		case len(h.s) < k:
			heap.Push(h, s)
		case (top && h.s[0].F < s.F) || (!top && h.s[0].F > s.F) || (math.IsNaN(h.s[0].F) && !math.IsNaN(s.F)):
			h.s[0] = s
			if k > 1 {
				heap.Fix(h, 0)
			}
		}
	}
	sort.Sort(sort.Reverse(h))
	return h.s
}

// seriesGroups gives each series of m the index of its group (as
// groupStep would find it) and each group its labels.
func (ev *evaluator) seriesGroups(m Matrix, grouping []string, without bool) ([]int, []labels.Labels) {
	gi := newGroupIndex(grouping, without, ev.delayNameRemoval)
	gid := make([]int, len(m))
	for j := range m {
		ev.spend(1)
		gid[j] = gi.id(m[j].Metric)
	}
	return gid, gi.labels
}

// groupIndex numbers the groups of series as they come, in the order
// groupStep finds them.
type groupIndex struct {
	grouping, sorted []string
	without, marks   bool // marks: delayed name removal
	// byHash is the first group of each hash; next chains the groups
	// whose hashes collide (-1: none), by group id.
	byHash map[uint64]int32
	next   []int32
	// keys holds what each group's labels hash from (the buffer the
	// hash filled), group after group, keyEnd where each ends: a series
	// whose own is the same is of the group, one whose hash merely
	// collides is not. (One buffer, not one allocation a group.)
	keys   []byte
	keyEnd []int
	labels []labels.Labels // by group id
	buf    []byte
	sb     labels.ScratchBuilder
	// byValue is the group of each value of the one label a `by` groups
	// by (sum by (mode)): the value is the key, read without hashing the
	// labels (which was a tenth of such a query's CPU over 1,584 series).
	byValue map[string]int32
}

func newGroupIndex(grouping []string, without, marks bool) *groupIndex {
	sorted := slices.Clone(grouping)
	if without {
		sorted = append(sorted, model.MetricNameLabel, dropNameLabel)
	}
	slices.Sort(sorted)
	return &groupIndex{grouping: grouping, sorted: sorted, without: without, marks: marks, byHash: map[uint64]int32{}}
}

// key is what group id's labels hash from.
func (gi *groupIndex) key(id int) []byte {
	from := 0
	if id > 0 {
		from = gi.keyEnd[id-1]
	}
	return gi.keys[from:gi.keyEnd[id]]
}

// id returns the group of a series labelled ls, adding it if new.
func (gi *groupIndex) id(ls labels.Labels) int {
	if !gi.without && len(gi.sorted) == 0 && !gi.marks {
		// One group of every series (sum, count… without by): nothing
		// of the labels to read.
		if len(gi.labels) == 0 {
			gi.labels = append(gi.labels, labels.EmptyLabels())
		}
		return 0
	}
	if !gi.without && !gi.marks && len(gi.sorted) == 1 {
		v := ls.Get(gi.sorted[0])
		if id, ok := gi.byValue[v]; ok {
			return int(id)
		}
		if gi.byValue == nil {
			gi.byValue = map[string]int32{}
		}
		id := len(gi.labels)
		gl := gi.groupLabels(ls)
		gi.labels = append(gi.labels, gl)
		// NB: the key is the group's own copy of the value, not a part of
		// ls's memory (which the caller may reuse).
		gi.byValue[gl.Get(gi.sorted[0])] = int32(id)
		return id
	}
	var h uint64
	if gi.without {
		h, gi.buf = ls.HashWithoutLabels(gi.buf, gi.sorted...)
	} else {
		h, gi.buf = ls.HashForLabels(gi.buf, gi.sorted...)
	}
	id := -1
	first, seen := gi.byHash[h]
	if seen {
		for g := first; g >= 0; g = gi.next[g] {
			if string(gi.key(int(g))) == string(gi.buf) {
				id = int(g)
				break
			}
		}
	}
	if id < 0 {
		id = len(gi.labels)
		gi.labels = append(gi.labels, gi.groupLabels(ls))
		gi.keys = append(gi.keys, gi.buf...)
		gi.keyEnd = append(gi.keyEnd, len(gi.keys))
		gi.next = append(gi.next, -1)
		if seen {
			gi.next[id] = first // the newest first: the chain is short
		}
		gi.byHash[h] = int32(id)
	}
	if gi.marks && ls.Has(dropNameLabel) {
		// A group is marked when a member is at any step (Prometheus
		// takes the last step's).
		gi.labels[id] = markDropName(gi.labels[id])
	}
	return id
}

// maxSimpleCells bounds the accumulators of rangeAggregateSimple (groups
// × steps, 24 bytes each): beyond it the step-by-step path, which needs
// only one accumulator per group, is used.
const maxSimpleCells = 1 << 20

// rangeAggregateSimple computes sum, count, group, min and max over the
// steps without building each step's vector. It walks series by series
// (each series' points in order, which is kind to the cache) into one
// accumulator per group and step; each accumulator still takes its members
// in series order, as aggregateGroups would (the same Kahan sum, the same
// NaN rules), and at each step the groups come out in the order of their
// first member.
func (ev *evaluator) rangeAggregateSimple(name string, m Matrix, gid []int, glabels []labels.Labels) Matrix {
	n := ev.numSteps()
	acc := newSimpleAcc(name, n)
	acc.grow(len(glabels))
	for j := range m {
		ev.spend(1 + len(m[j].Points))
		base := gid[j] * n
		for _, pt := range m[j].Points {
			d := pt.T - ev.start
			if d < 0 || d%ev.interval != 0 {
				continue // not at a step
			}
			k := int(d / ev.interval)
			if k >= n {
				break
			}
			acc.add(base+k, int32(j), pt.F)
		}
	}
	ev.release(m)
	return ev.simpleResult(acc, glabels)
}

// simpleAcc is rangeAggregateSimple's accumulators: a cell per group and
// step, cell g*n+k for group g at step k.
type simpleAcc struct {
	name         string
	n            int // steps
	acc, comp    []float64
	count, first []int32 // first: the first member's series index
	incremental  []bool  // avg: the cell's sum overflowed (avgOf)
}

func newSimpleAcc(name string, steps int) *simpleAcc {
	return &simpleAcc{name: name, n: steps}
}

// grow makes room for groups groups.
func (a *simpleAcc) grow(groups int) {
	cells := groups * a.n
	if cells <= len(a.acc) {
		return
	}
	a.acc, a.comp = extend(a.acc, cells), extend(a.comp, cells)
	a.count, a.first = extend(a.count, cells), extend(a.first, cells)
	if a.name == "avg" {
		a.incremental = extend(a.incremental, cells)
	}
}

// extend lengthens s to n zero-valued elements, doubling its capacity
// when it must grow (aggregateRange adds a group at a time).
func extend[T any](s []T, n int) []T {
	if n > cap(s) {
		s = slices.Grow(s, max(n, 2*cap(s))-len(s))
	}
	k := len(s)
	s = s[:n]
	clear(s[k:])
	return s
}

// add takes the value f of series j into cell i.
func (a *simpleAcc) add(i int, j int32, f float64) {
	if a.count[i] == 0 {
		a.first[i] = j
		a.acc[i], a.comp[i] = 0, 0
		if a.name == "min" || a.name == "max" {
			a.acc[i] = f
		}
	}
	a.count[i]++
	switch a.name {
	case "sum":
		a.acc[i], a.comp[i] = kahanSumInc(f, a.acc[i], a.comp[i])
	case "avg":
		// avgOf, one value at a time: a Kahan sum until it overflows,
		// then an incremental mean.
		cnt := float64(a.count[i])
		if !a.incremental[i] {
			ns, nc := kahanSumInc(f, a.acc[i], a.comp[i])
			if cnt == 1 || !math.IsInf(ns, 0) {
				a.acc[i], a.comp[i] = ns, nc
				return
			}
			a.incremental[i] = true
			a.acc[i] /= cnt - 1
			a.comp[i] /= cnt - 1
		}
		q := (cnt - 1) / cnt
		a.acc[i], a.comp[i] = kahanSumInc(f/cnt, q*a.acc[i], q*a.comp[i])
	case "min":
		if a.count[i] > 1 && (math.IsNaN(a.acc[i]) || f < a.acc[i]) {
			a.acc[i] = f
		}
	case "max":
		if a.count[i] > 1 && (math.IsNaN(a.acc[i]) || f > a.acc[i]) {
			a.acc[i] = f
		}
	}
}

// simpleResult is the series of the groups glabels from their cells in a.
func (ev *evaluator) simpleResult(a *simpleAcc, glabels []labels.Labels) Matrix {
	n := a.n
	slots := make([]int, len(glabels))
	for i := range slots {
		slots[i] = -1
	}
	// NB: the groups' labels are distinct (groupIndex), so the output is
	// one series a group, in the order they first have a value, with no
	// labels to hash; their points share one allocation.
	out := make(Matrix, 0, len(glabels))
	total := 0
	for _, c := range a.count {
		if c > 0 {
			total++
		}
	}
	slab := make([]Point, 0, total)
	var order []int
	for k := range n {
		ev.spend(1 + len(glabels))
		order = order[:0]
		for g := range glabels {
			if a.count[g*n+k] > 0 {
				order = append(order, g)
			}
		}
		slices.SortFunc(order, func(x, y int) int { return int(a.first[x*n+k]) - int(a.first[y*n+k]) })
		ts := ev.stepTime(k)
		for _, g := range order {
			i := g*n + k
			var v float64
			switch a.name {
			case "sum":
				v = a.acc[i]
				if !math.IsInf(v, 0) {
					v += a.comp[i]
				}
			case "avg":
				switch cnt := float64(a.count[i]); {
				case a.incremental[i]:
					v = a.acc[i] + a.comp[i]
				case cnt == 1:
					v = a.acc[i]
				default:
					v = a.acc[i]/cnt + a.comp[i]/cnt
				}
			case "count":
				v = float64(a.count[i])
			case "group":
				v = 1
			default:
				v = a.acc[i]
			}
			if slots[g] < 0 {
				slots[g] = len(out)
				points := 0
				for _, c := range a.count[g*n : (g+1)*n] {
					if c > 0 {
						points++
					}
				}
				k := len(slab)
				slab = slab[:k+points]
				out = append(out, Series{Metric: glabels[g], Points: slab[k : k : k+points]})
			}
			ev.addSamples(1)
			out[slots[g]].Points = append(out[slots[g]].Points, Point{T: ts, F: v})
		}
	}
	return out
}

// groupByIndex is groupStep for samples whose series' groups are known:
// in[i] is of series idx[i].
func groupByIndex(in Vector, idx, gid []int, glabels []labels.Labels) []*aggGroup {
	return newStepGroups(glabels).group(in, idx, gid)
}

// stepGroups is groupByIndex's groups, reused from step to step: a new
// map and group slices at every step were most of a range query's
// allocations for topk over a thousand series (issue 18: 2.8 MB a query).
// The groups of one step are valid until the next.
type stepGroups struct {
	glabels []labels.Labels
	groups  []aggGroup // by group id
	step    []int      // the step a group was last used at, plus one
	order   []*aggGroup
	calls   int
}

func newStepGroups(glabels []labels.Labels) *stepGroups {
	return &stepGroups{glabels: glabels, groups: make([]aggGroup, len(glabels)), step: make([]int, len(glabels))}
}

func (sg *stepGroups) group(in Vector, idx, gid []int) []*aggGroup {
	sg.calls++
	sg.order = sg.order[:0]
	for i, s := range in {
		id := gid[idx[i]]
		g := &sg.groups[id]
		if sg.step[id] != sg.calls {
			sg.step[id] = sg.calls
			clear(g.samples) // the Samples' labels and histograms
			*g = aggGroup{ls: sg.glabels[id], samples: g.samples[:0]}
			sg.order = append(sg.order, g)
		}
		g.samples = append(g.samples, s)
	}
	return sg.order
}

func findGroup(gs []*aggGroup, match func(*aggGroup) bool) *aggGroup {
	for _, g := range gs {
		if match(g) {
			return g
		}
	}
	return nil
}

// sameGroup reports whether a and b fall in the same group.
func sameGroup(a, b labels.Labels, sortedNames []string, without bool) bool {
	if without {
		return string(a.BytesWithoutLabels(nil, sortedNames...)) == string(b.BytesWithoutLabels(nil, sortedNames...))
	}
	return string(a.BytesWithLabels(nil, sortedNames...)) == string(b.BytesWithLabels(nil, sortedNames...))
}

// matrixHasHistograms reports whether any point of m is a histogram.
func matrixHasHistograms(m Matrix) bool {
	for i := range m {
		if hasHistograms(m[i].Histograms) {
			return true
		}
	}
	return false
}

func vectorHasHistograms(v Vector) bool {
	for i := range v {
		if v[i].H != nil {
			return true
		}
	}
	return false
}

// floatsOnly drops the histograms of a group for an aggregation of
// floats, with Prometheus's info.
func (ev *evaluator) floatsOnly(name string, ss []Sample) []Sample {
	if !vectorHasHistograms(ss) {
		return ss
	}
	ev.infoHistogramIgnoredInAggregation(name)
	out := make([]Sample, 0, len(ss))
	for _, s := range ss {
		if s.H == nil {
			out = append(out, s)
		}
	}
	return out
}

// sumHistograms is sum or avg over a group holding histograms, as
// Prometheus: a group mixing floats and histograms gives nothing and a
// warning, and histograms that do not add up (exponential with custom
// buckets) give nothing and a warning.
func (ev *evaluator) sumHistograms(ss []Sample, avg bool) (*histogram.FloatHistogram, bool) {
	for _, s := range ss {
		if s.H == nil {
			ev.warnMixedFloatsHistogramsAggregation()
			return nil, false
		}
	}
	var resetSeen, notResetSeen bool
	track := func(h *histogram.FloatHistogram) {
		switch h.CounterResetHint {
		case histogram.CounterReset:
			resetSeen = true
		case histogram.NotCounterReset:
			notResetSeen = true
		}
	}
	defer func() {
		if resetSeen && notResetSeen {
			ev.warnCounterResetCollision("aggregation")
		}
	}()
	add := func(f func() (*histogram.FloatHistogram, bool, error), name string) (*histogram.FloatHistogram, bool) {
		c, reconciled, err := f()
		if err != nil {
			if errors.Is(err, histogram.ErrHistogramsIncompatibleSchema) {
				ev.warnMixedExponentialCustom(name)
				return nil, false
			}
			ev.fail(execErr("%v", err))
		}
		if reconciled {
			ev.infoMismatchedCustomBuckets("aggregation")
		}
		return c, true
	}
	value := ss[0].H.Copy()
	track(value)
	var kahanC, mean *histogram.FloatHistogram
	incremental := false
	count := 1.0
	for _, s := range ss[1:] {
		h := s.H
		track(h)
		name := s.Metric.Get(model.MetricNameLabel)
		count++
		if !avg {
			c, ok := add(func() (*histogram.FloatHistogram, bool, error) {
				c, _, r, err := value.KahanAdd(h, kahanC)
				return c, r, err
			}, name)
			if !ok {
				return nil, false
			}
			kahanC = c
			continue
		}
		if !incremental {
			v := value.Copy()
			var c *histogram.FloatHistogram
			if kahanC != nil {
				c = kahanC.Copy()
			}
			c, ok := add(func() (*histogram.FloatHistogram, bool, error) {
				c, _, r, err := v.KahanAdd(h, c)
				return c, r, err
			}, name)
			if !ok {
				return nil, false
			}
			if !v.HasOverflow() {
				value, kahanC = v, c
				continue
			}
			incremental = true
			mean = value.Copy().Div(count - 1)
			if kahanC != nil {
				kahanC.Div(count - 1)
			}
		}
		q := (count - 1) / count
		if kahanC != nil {
			kahanC.Mul(q)
		}
		toAdd := h.Copy().Div(count)
		c, ok := add(func() (*histogram.FloatHistogram, bool, error) {
			c, _, r, err := mean.Mul(q).KahanAdd(toAdd, kahanC)
			return c, r, err
		}, name)
		if !ok {
			return nil, false
		}
		kahanC = c
	}
	switch {
	case avg && incremental:
		if kahanC != nil {
			value, _, _, _ = mean.Add(kahanC)
		} else {
			value = mean
		}
	case avg:
		value.Div(count)
		if kahanC != nil {
			value, _, _, _ = value.Add(kahanC.Div(count))
		}
	case kahanC != nil:
		value, _, _, _ = value.Add(kahanC)
	}
	return value.Compact(0), true
}
