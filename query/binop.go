package query

import (
	"errors"
	"math"
	"slices"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

func isComparison(op string) bool {
	switch op {
	case "==", "!=", ">", "<", ">=", "<=":
		return true
	}
	return false
}

func isSetOp(op string) bool { return op == "and" || op == "or" || op == "unless" }

// dropsName reports whether op drops __name__ from its result.
func dropsName(op string, returnBool bool) bool {
	return returnBool || (!isComparison(op) && !isTrim(op))
}

// binop applies an arithmetic or comparison operator; keep is false when a
// comparison filters the element out.
func binop(op string, l, r float64) (float64, bool) {
	switch op {
	case "+":
		return l + r, true
	case "-":
		return l - r, true
	case "*":
		return l * r, true
	case "/":
		return l / r, true
	case "%":
		return math.Mod(l, r), true
	case "^":
		return math.Pow(l, r), true
	case "atan2":
		return math.Atan2(l, r), true
	case "==":
		return l, l == r
	case "!=":
		return l, l != r
	case ">":
		return l, l > r
	case "<":
		return l, l < r
	case ">=":
		return l, l >= r
	case "<=":
		return l, l <= r
	}
	return math.NaN(), false
}

func (ev *evaluator) binary(be *metricsql.BinaryOpExpr) Matrix {
	op := strings.ToLower(be.Op)
	lt, rt := mustType(be.Left), mustType(be.Right)
	if lt == ValueString || rt == ValueString || lt == ValueMatrix || rt == ValueMatrix {
		ev.fail(badData("binary expression must contain only scalar and instant vector types"))
	}
	if isComparison(op) && lt == ValueScalar && rt == ValueScalar && !be.Bool {
		ev.fail(badData("comparisons between scalars must use BOOL modifier"))
	}
	if isSetOp(op) && (lt == ValueScalar || rt == ValueScalar) {
		ev.fail(badData("set operator %q not allowed in binary scalar expression", op))
	}
	if be.Bool && !isComparison(op) {
		ev.fail(badData("bool modifier can only be used on comparison operators"))
	}
	if op == "default" && rt == ValueScalar {
		if l, ok := ev.filterKeepingSeries(be.Left); ok {
			return ev.binaryMetricsQL(op, l, ev.eval(be.Right), true)
		}
	}
	l, r := ev.eval(be.Left), ev.eval(be.Right)
	if op == "default" || op == "if" || op == "ifnot" {
		return ev.binaryMetricsQL(op, l, r, rt == ValueScalar)
	}
	if _, fill := splitFill(be.GroupModifier.Args); fill.any() && (lt == ValueScalar || rt == ValueScalar) {
		// The parser refuses this first (checkFillModifiers).
		ev.fail(badData("filling in missing series only allowed between instant vectors"))
	}
	switch {
	case lt == ValueScalar && rt == ValueScalar:
		return ev.rangeEval(func(_ int, ts int64, a []Vector) Vector {
			v, keep := binop(op, a[0][0].F, a[1][0].F)
			if be.Bool {
				v = b2f(keep)
			}
			return Vector{{T: ts, F: v}}
		}, l, r)
	case lt == ValueScalar || rt == ValueScalar:
		swap := lt == ValueScalar
		return ev.rangeEval(func(_ int, ts int64, a []Vector) Vector {
			vec, sc := a[0], a[1]
			if swap {
				vec, sc = a[1], a[0]
			}
			if len(sc) == 0 {
				return nil
			}
			s := sc[0].F
			out := make(Vector, 0, len(vec))
			for _, smp := range vec {
				lv, rv := smp.F, s
				lh, rh := smp.H, (*histogram.FloatHistogram)(nil)
				if swap {
					lv, rv = rv, lv
					lh, rh = rh, lh
				}
				var h *histogram.FloatHistogram
				var v float64
				var keep bool
				if lh == nil && rh == nil && !isTrim(op) {
					v, keep = binop(op, lv, rv)
				} else {
					var ok bool
					if v, h, keep, ok = ev.histogramBinop(op, lv, rv, lh, rh, false); !ok {
						continue
					}
				}
				if isComparison(op) && swap {
					v, h = rv, rh
				}
				if be.Bool {
					v, h, keep = b2f(keep), nil, true
				}
				if !keep {
					continue
				}
				ls := smp.Metric
				if dropsName(op, be.Bool) && !be.KeepMetricNames {
					ls = ev.dropName(ls)
				}
				out = append(out, Sample{Metric: ls, T: ts, F: v, H: h})
			}
			return out
		}, l, r)
	}
	matchOn, fill := splitFill(be.GroupModifier.Args)
	m := &matching{
		on:      be.GroupModifier.Op == "on",
		labels:  matchOn,
		card:    cardOneToOne,
		include: be.JoinModifier.Args,
		fill:    fill,

		delayNameRemoval: ev.delayNameRemoval,
	}
	switch {
	case isSetOp(op) && fill.any():
		// The parser refuses this first (checkFillModifiers).
		ev.fail(badData("filling in missing series not allowed for set operators"))
	case isSetOp(op):
		m.card = cardManyToMany
	case strings.EqualFold(be.JoinModifier.Op, "group_left"):
		m.card = cardManyToOne
	case strings.EqualFold(be.JoinModifier.Op, "group_right"):
		m.card = cardOneToMany
	}
	memo := newBinopMemo(len(l), len(r))
	return ev.rangeEvalPair(func(ts int64, lv, rv Vector, li, ri []int) Vector {
		sides := &sideIdx{memo: memo, l: li, r: ri}
		if ev.generalPaths {
			sides = nil
		}
		switch op {
		case "and":
			return ev.and(lv, rv, m, sides)
		case "or":
			return ev.or(lv, rv, m, sides)
		case "unless":
			return ev.unless(lv, rv, m, sides)
		}
		return ev.vectorBinop(op, lv, rv, m, be.Bool, be.KeepMetricNames, ts, sides)
	}, l, r)
}

// binopMemo keeps what a vector binary operation works out per series,
// or pair of series, for the next steps: the match signatures and the
// result labels (at every step for every sample they were a string and a
// label set built anew: issue 18, most of a range query's time in
// `100 * node_filesystem_avail_bytes / node_filesystem_size_bytes`).
type binopMemo struct {
	sig    [2][]string // by side and series
	has    [2][]bool
	result map[[2]int32]labels.Labels // by left and right series
	// right and matched are a step's maps (joiner's), cleared and reused
	// by the next: built and grown anew at every step they were a tenth
	// of a range binary operation's time.
	right   map[string]int
	matched map[string]map[string]bool
}

func newBinopMemo(nl, nr int) *binopMemo {
	return &binopMemo{
		sig:     [2][]string{make([]string, nl), make([]string, nr)},
		has:     [2][]bool{make([]bool, nl), make([]bool, nr)},
		result:  make(map[[2]int32]labels.Labels, max(nl, nr)),
		right:   make(map[string]int, max(nl, nr)),
		matched: make(map[string]map[string]bool, max(nl, nr)),
	}
}

// sideIdx gives the samples of one step's vectors their series: l[i] is
// the series of the left vector's sample i. A nil *sideIdx memoizes
// nothing.
type sideIdx struct {
	memo    *binopMemo
	l, r    []int
	swapped bool // vectorBinop swapped the sides (one-to-many)
}

// sig is m.sig of sample i of the left (side 0) or right (side 1)
// vector.
func (s *sideIdx) sig(m *matching, side, i int, ls labels.Labels) string {
	if s == nil {
		return m.sig(ls)
	}
	idx := s.l
	if (side == 1) != s.swapped {
		idx = s.r
	}
	mside := side
	if s.swapped {
		mside = 1 - side
	}
	j := idx[i]
	if !s.memo.has[mside][j] {
		s.memo.sig[mside][j], s.memo.has[mside][j] = m.sig(ls), true
	}
	return s.memo.sig[mside][j]
}

// series is the series of sample i of a side (-1 when s is nil), in the
// memo's sides.
func (s *sideIdx) series(side, i int) int32 {
	if s == nil || i < 0 {
		return -1
	}
	if (side == 1) != s.swapped {
		return int32(s.r[i])
	}
	return int32(s.l[i])
}

// rangeEvalPair is rangeEval for two vector arguments, telling f the
// series of each sample.
func (ev *evaluator) rangeEvalPair(f func(ts int64, lv, rv Vector, li, ri []int) Vector, l, r Matrix) Matrix {
	n := ev.numSteps()
	cl, cr := make([]int, len(l)), make([]int, len(r))
	lv, rv := make(Vector, 0, len(l)), make(Vector, 0, len(r))
	li, ri := make([]int, 0, len(l)), make([]int, 0, len(r))
	out := newOutMatrixSized(ev, max(len(l), len(r)))
	at := func(m Matrix, c []int, ts int64, v Vector, idx []int) (Vector, []int) {
		v, idx = v[:0], idx[:0]
		for j := range m {
			if p, ok := pointAt(m[j].Points, &c[j], ts); ok {
				v = append(v, Sample{Metric: m[j].Metric, T: ts, F: p.F, H: m[j].H(c[j])})
				idx = append(idx, j)
			}
		}
		return v, idx
	}
	for k := range n {
		ev.spend(1 + len(l) + len(r))
		ts := ev.stepTime(k)
		lv, li = at(l, cl, ts, lv, li)
		rv, ri = at(r, cr, ts, rv, ri)
		for _, s := range f(ts, lv, rv, li, ri) {
			out.add(s.Metric, ts, s.F, s.H)
		}
	}
	ev.release(l, r)
	return out.m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

type cardinality int

const (
	cardOneToOne cardinality = iota
	cardManyToOne
	cardOneToMany
	cardManyToMany
)

type matching struct {
	on      bool
	labels  []string
	card    cardinality
	include []string
	sorted  []string
	buf     []byte          // sig's, reused
	lb      *labels.Builder // resultMetric's, reused
	fill    fillValues
	// delayNameRemoval: see resultMetric.
	delayNameRemoval bool
}

// sig is the match signature of ls: the values of the on() labels, or of
// all labels but the ignoring() ones and __name__.
func (m *matching) sig(ls labels.Labels) string {
	if m.sorted == nil {
		m.sorted = slices.Clone(m.labels)
		if !m.on {
			// The mark of delayed name removal is no label to match on.
			m.sorted = append(m.sorted, model.MetricNameLabel, dropNameLabel)
		}
		slices.Sort(m.sorted) // the Bytes… functions want sorted names
	}
	if m.on {
		m.buf = ls.BytesWithLabels(m.buf[:0], m.sorted...)
	} else {
		m.buf = ls.BytesWithoutLabels(m.buf[:0], m.sorted...)
	}
	return string(m.buf)
}

func (ev *evaluator) and(l, r Vector, m *matching, sides *sideIdx) Vector {
	if len(l) == 0 || len(r) == 0 {
		return nil
	}
	right := map[string]bool{}
	for i, s := range r {
		right[sides.sig(m, 1, i, s.Metric)] = true
	}
	var out Vector
	for i, s := range l {
		if right[sides.sig(m, 0, i, s.Metric)] {
			out = append(out, s)
		}
	}
	return out
}

func (ev *evaluator) or(l, r Vector, m *matching, sides *sideIdx) Vector {
	left := map[string]bool{}
	out := make(Vector, 0, len(l)+len(r))
	for i, s := range l {
		left[sides.sig(m, 0, i, s.Metric)] = true
		out = append(out, s)
	}
	for i, s := range r {
		if !left[sides.sig(m, 1, i, s.Metric)] {
			out = append(out, s)
		}
	}
	return out
}

func (ev *evaluator) unless(l, r Vector, m *matching, sides *sideIdx) Vector {
	right := map[string]bool{}
	for i, s := range r {
		right[sides.sig(m, 1, i, s.Metric)] = true
	}
	var out Vector
	for i, s := range l {
		if !right[sides.sig(m, 0, i, s.Metric)] {
			out = append(out, s)
		}
	}
	return out
}

// vectorBinop applies an arithmetic or comparison operator between two
// vectors, as Prometheus's VectorBinop: each series of the "many" side
// meets the series of the other with the same match signature; with fill
// modifiers one without a match meets a stand-in with the fill value and
// the match labels of its own.
func (ev *evaluator) vectorBinop(op string, lhs, rhs Vector, m *matching, returnBool, keepNames bool, ts int64, sides *sideIdx) Vector {
	if (len(lhs) == 0 && len(rhs) == 0) || ((len(lhs) == 0 || len(rhs) == 0) && !m.fill.any()) {
		return nil
	}
	if m.card == cardOneToMany {
		lhs, rhs = rhs, lhs
		if sides != nil {
			swapped := *sides
			swapped.swapped = true
			sides = &swapped
		}
	}
	j := &joiner{ev: ev, op: op, m: m, returnBool: returnBool, keepNames: keepNames, ts: ts, sides: sides}
	if sides != nil {
		clear(sides.memo.matched)
		j.matched = sides.memo.matched
	} else {
		j.matched = make(map[string]map[string]bool, len(lhs))
	}
	right := j.indexRight(rhs)
	for i, ls := range lhs {
		sig := sides.sig(m, 0, i, ls.Metric)
		ri, found := right[sig]
		var rs Sample
		if found {
			rs = rhs[ri]
		} else {
			if m.fill.rhs == nil {
				continue
			}
			rs, ri = Sample{Metric: matchLabels(ls.Metric, m), F: *m.fill.rhs}, -1
		}
		j.join(ls, rs, sig, sides.series(0, i), sides.series(1, ri))
	}
	// NB: after the swap of a one-to-many operation the fill values keep
	// their sides, as in Prometheus 3.14 (so in `a * on(x) group_right
	// fill_left(1) b` it is b that is filled).
	if m.fill.lhs != nil {
		for i, rs := range rhs {
			sig := sides.sig(m, 1, i, rs.Metric)
			if _, done := j.matched[sig]; done {
				continue
			}
			j.join(Sample{Metric: matchLabels(rs.Metric, m), F: *m.fill.lhs}, rs, sig, -1, sides.series(1, i))
		}
	}
	return j.out
}

// joiner is the state of one step of a vector binary operation.
type joiner struct {
	ev                    *evaluator
	op                    string
	m                     *matching
	returnBool, keepNames bool
	ts                    int64
	// matched holds, by match signature, the results (for one-to-one
	// operations nil) of the signatures already joined.
	matched map[string]map[string]bool
	out     Vector
	sides   *sideIdx // nil: nothing memoized
}

// indexRight maps the "one" side by match signature, refusing two series
// with the same.
func (j *joiner) indexRight(rhs Vector) map[string]int {
	var right map[string]int
	if j.sides != nil {
		clear(j.sides.memo.right)
		right = j.sides.memo.right
	} else {
		right = make(map[string]int, len(rhs))
	}
	for i, rs := range rhs {
		sig := j.sides.sig(j.m, 1, i, rs.Metric)
		if d, found := right[sig]; found {
			dup := rhs[d]
			side := "right"
			if j.m.card == cardOneToMany {
				side = "left"
			}
			j.ev.failf("found duplicate series for the match group %s on the %s hand-side of the operation: [%s, %s];many-to-many matching not allowed: matching labels must be unique on one side",
				matchLabels(rs.Metric, j.m).String(), side, unmarked(rs.Metric).String(), unmarked(dup.Metric).String())
		}
		right[sig] = i
	}
	return right
}

// join applies the operator to a pair of matched samples (after the swap
// of a one-to-many operation) and adds the result unless a comparison
// filters it out.
// li and ri are the series of ls and rs (-1: a fill value's stand-in),
// by which their result labels are memoized.
func (j *joiner) join(ls, rs Sample, sig string, li, ri int32) {
	m := j.m
	fl, fr := ls.F, rs.F
	hl, hr := ls.H, rs.H
	if m.card == cardOneToMany {
		fl, fr = fr, fl
		hl, hr = hr, hl
	}
	var v float64
	var h *histogram.FloatHistogram
	var keep bool
	if hl == nil && hr == nil && !isTrim(j.op) {
		v, keep = binop(j.op, fl, fr)
	} else {
		var ok bool
		if v, h, keep, ok = j.ev.histogramBinop(j.op, fl, fr, hl, hr, true); !ok {
			return
		}
	}
	if j.returnBool {
		v, h, keep = b2f(keep), nil, true
	}
	var metric labels.Labels
	key := [2]int32{li, ri}
	if j.sides != nil && j.sides.swapped {
		key = [2]int32{ri, li} // the memo's sides are the query's
	}
	if known, ok := j.sides.result(key); ok {
		metric = known
	} else {
		metric = resultMetric(ls.Metric, rs.Metric, j.op, m, j.returnBool, j.keepNames)
		j.sides.keep(key, metric)
	}
	inserted, exists := j.matched[sig]
	if m.card == cardOneToOne {
		if exists {
			j.ev.failf("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)")
		}
		j.matched[sig] = nil
	} else {
		k := metric.String()
		if !exists {
			inserted = map[string]bool{}
			j.matched[sig] = inserted
		} else if inserted[k] {
			j.ev.failf("multiple matches for labels: grouping labels must ensure unique results")
		}
		inserted[k] = true
	}
	if keep {
		j.out = append(j.out, Sample{Metric: metric, T: j.ts, F: v, H: h})
	}
}

func matchLabels(ls labels.Labels, m *matching) labels.Labels {
	b := labels.NewBuilder(ls)
	if m.on {
		b.Keep(m.labels...)
	} else {
		b.Del(model.MetricNameLabel, dropNameLabel)
		b.Del(m.labels...)
	}
	return b.Labels()
}

func resultMetric(lhs, rhs labels.Labels, op string, m *matching, returnBool, keepNames bool) labels.Labels {
	b := m.lb // reused: a builder per result series was the binary operations' largest allocation
	if b == nil {
		b = labels.NewBuilder(lhs)
		m.lb = b
	} else {
		b.Reset(lhs)
	}
	// With delayed name removal a comparison with bool marks its result
	// (arithmetic drops the name at once all the same), and the marks of
	// the sides are not passed on, as in Prometheus 3.14.
	mark := m.delayNameRemoval && returnBool && !keepNames
	if m.delayNameRemoval {
		b.Del(dropNameLabel)
	}
	if dropsName(op, returnBool) && !keepNames && !mark {
		// The type and unit labels go with the name (see dropName).
		b.Del(model.MetricNameLabel, model.MetricTypeLabel, model.MetricUnitLabel)
	}
	if m.card == cardOneToOne {
		if m.on {
			b.Keep(m.labels...)
		} else {
			b.Del(m.labels...)
		}
	}
	for _, ln := range m.include {
		if v := rhs.Get(ln); v != "" {
			b.Set(ln, v)
		} else {
			b.Del(ln)
		}
	}
	if mark {
		b.Set(dropNameLabel, "1")
	}
	return b.Labels()
}

// histogramBinop applies op where one side or both are histograms, as
// Prometheus's vectorElemBinop: histogram*float, float*histogram and
// histogram/float scale it, histogram±histogram adds or subtracts, ==
// and != compare histograms; everything else is an incompatible pair.
// ok is false when the element is dropped (after its annotation): also
// on a counter reset collision between two vectors (vectors is true), as
// Prometheus drops such results.
func (ev *evaluator) histogramBinop(op string, lf, rf float64, lh, rh *histogram.FloatHistogram, vectors bool) (float64, *histogram.FloatHistogram, bool, bool) {
	typ := func(h *histogram.FloatHistogram) string {
		if h == nil {
			return "float"
		}
		return "histogram"
	}
	incompatible := func() (float64, *histogram.FloatHistogram, bool, bool) {
		ev.infoIncompatibleTypes(op, typ(lh), typ(rh))
		return 0, nil, false, false
	}
	switch {
	case lh == nil && rh == nil:
		return incompatible()
	case lh == nil:
		if op == "*" {
			return 0, rh.Copy().Mul(lf).Compact(0), true, true
		}
		return incompatible()
	case rh == nil:
		switch op {
		case "*":
			return 0, lh.Copy().Mul(rf).Compact(0), true, true
		case "/":
			return 0, lh.Copy().Div(rf).Compact(0), true, true
		case "</":
			return 0, lh.Copy().TrimBuckets(rf, true), true, true
		case ">/":
			return 0, lh.Copy().TrimBuckets(rf, false), true, true
		}
		return incompatible()
	}
	switch op {
	case "+", "-":
		var res *histogram.FloatHistogram
		var collision, reconciled bool
		var err error
		what := "addition"
		if op == "+" {
			res, collision, reconciled, err = lh.Copy().Add(rh)
		} else {
			what = "subtraction"
			res, collision, reconciled, err = lh.Copy().Sub(rh)
		}
		if err != nil {
			if errors.Is(err, histogram.ErrHistogramsIncompatibleSchema) {
				ev.warnIncompatibleBucketLayout(op)
				return 0, nil, false, false
			}
			ev.fail(execErr("%v", err))
		}
		if op == "-" {
			res.CounterResetHint = histogram.GaugeType
		}
		if reconciled {
			ev.infoMismatchedCustomBuckets(what)
		}
		if collision {
			ev.warnCounterResetCollision(what)
			if vectors {
				return 0, nil, false, false
			}
		}
		return 0, res.Compact(0), true, true
	case "==":
		return 0, lh, lh.Equals(rh), true
	case "!=":
		return 0, lh, !lh.Equals(rh), true
	}
	return incompatible()
}

// result is the result labels memoized for a pair of series.
func (s *sideIdx) result(key [2]int32) (labels.Labels, bool) {
	if s == nil || key[0] < 0 || key[1] < 0 {
		return labels.Labels{}, false
	}
	ls, ok := s.memo.result[key]
	return ls, ok
}

func (s *sideIdx) keep(key [2]int32, ls labels.Labels) {
	if s != nil && key[0] >= 0 && key[1] >= 0 {
		s.memo.result[key] = ls
	}
}
