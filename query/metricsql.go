package query

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/labels"
)

// MetricsQL extensions (see docs/query.md for the list).

func init() {
	extra := map[string]rangeFuncDef{
		"median_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
			if len(w) == 0 {
				return 0, false
			}
			return quantile(0.5, values(w)), true
		}},
		"range_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
			if len(w) == 0 {
				return 0, false
			}
			lo, hi := w[0].F, w[0].F
			for _, p := range w {
				lo, hi = math.Min(lo, p.F), math.Max(hi, p.F)
			}
			return hi - lo, true
		}},
		"distinct_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
			if len(w) == 0 {
				return 0, false
			}
			seen := map[float64]bool{}
			for _, p := range w {
				seen[p.F] = true
			}
			return float64(len(seen)), true
		}},
		"increases_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
			return countSteps(w, func(a, b float64) bool { return b > a })
		}},
		"decreases_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
			return countSteps(w, func(a, b float64) bool { return b < a })
		}},
		"sum2_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
			s := 0.0
			for _, p := range w {
				s += p.F * p.F
			}
			return s, len(w) > 0
		}},
		"geomean_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
			s := 0.0
			for _, p := range w {
				s += math.Log(p.F)
			}
			return math.Exp(s / float64(len(w))), len(w) > 0
		}},
		"count_le_over_time": {0, 2, false, func(w []Point, _, _, _ int64, s []float64) (float64, bool) {
			return countIf(w, func(v float64) bool { return v <= s[0] })
		}},
		"count_gt_over_time": {0, 2, false, func(w []Point, _, _, _ int64, s []float64) (float64, bool) {
			return countIf(w, func(v float64) bool { return v > s[0] })
		}},
		"count_eq_over_time": {0, 2, false, func(w []Point, _, _, _ int64, s []float64) (float64, bool) {
			return countIf(w, func(v float64) bool { return v == s[0] })
		}},
		"share_le_over_time": {0, 2, false, func(w []Point, _, _, _ int64, s []float64) (float64, bool) {
			n, ok := countIf(w, func(v float64) bool { return v <= s[0] })
			return n / float64(len(w)), ok
		}},
		"share_gt_over_time": {0, 2, false, func(w []Point, _, _, _ int64, s []float64) (float64, bool) {
			n, ok := countIf(w, func(v float64) bool { return v > s[0] })
			return n / float64(len(w)), ok
		}},
		"tmin_over_time":   rangeFuncs["ts_of_min_over_time"],
		"tmax_over_time":   rangeFuncs["ts_of_max_over_time"],
		"tfirst_over_time": rangeFuncs["ts_of_first_over_time"],
		"tlast_over_time":  rangeFuncs["ts_of_last_over_time"],
		"zscore_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
			if len(w) == 0 {
				return 0, false
			}
			sd := math.Sqrt(variance(w))
			return (w[len(w)-1].F - avgOf(w)) / sd, true
		}},
		"rate_over_sum": {0, 1, false, func(w []Point, _, rng, _ int64, _ []float64) (float64, bool) {
			s := 0.0
			for _, p := range w {
				s += p.F
			}
			return s / (float64(rng) / 1000), len(w) > 0
		}},
		"lag": {0, 1, false, func(w []Point, ref, _, _ int64, _ []float64) (float64, bool) {
			if len(w) == 0 {
				return 0, false
			}
			return float64(ref-w[len(w)-1].T) / 1000, true
		}},
	}
	for k, v := range extra {
		rangeFuncs[k] = v
	}
}

func values(w []Point) []float64 {
	out := make([]float64, len(w))
	for i, p := range w {
		out[i] = p.F
	}
	return out
}

func countSteps(w []Point, f func(a, b float64) bool) (float64, bool) {
	if len(w) == 0 {
		return 0, false
	}
	n := 0
	for i := 1; i < len(w); i++ {
		if f(w[i-1].F, w[i].F) {
			n++
		}
	}
	return float64(n), true
}

func countIf(w []Point, f func(float64) bool) (float64, bool) {
	if len(w) == 0 {
		return 0, false
	}
	n := 0
	for _, p := range w {
		if f(p.F) {
			n++
		}
	}
	return float64(n), true
}

// callMetricsQL evaluates the MetricsQL-only functions that are not range
// functions; ok is false for an unknown name.
func (ev *evaluator) callMetricsQL(fe *metricsql.FuncExpr) (Matrix, bool) {
	switch fe.Name {
	case "label_set", "label_del", "label_keep", "label_copy", "label_move", "label_lowercase", "label_uppercase":
		if len(fe.Args) < 1 {
			ev.fail(badData("expected at least 1 argument in call to %q", fe.Name))
		}
		var strs []string
		for i := 1; i < len(fe.Args); i++ {
			strs = append(strs, stringArg(ev, fe, i))
		}
		if (fe.Name == "label_set" || fe.Name == "label_copy" || fe.Name == "label_move") && len(strs)%2 != 0 {
			ev.fail(badData("%s needs label name pairs", fe.Name))
		}
		v := ev.eval(fe.Args[0])
		for i := range v {
			ev.spend(1)
			b := labels.NewBuilder(v[i].Metric)
			ls := v[i].Metric
			switch fe.Name {
			case "label_set":
				for j := 0; j < len(strs); j += 2 {
					b.Set(strs[j], strs[j+1])
				}
			case "label_del":
				b.Del(strs...)
			case "label_keep":
				b.Keep(strs...)
			case "label_copy", "label_move":
				for j := 0; j < len(strs); j += 2 {
					if val := ls.Get(strs[j]); val != "" {
						b.Set(strs[j+1], val)
						if fe.Name == "label_move" {
							b.Del(strs[j])
						}
					}
				}
			case "label_lowercase", "label_uppercase":
				for _, n := range strs {
					if fe.Name == "label_lowercase" {
						b.Set(n, strings.ToLower(ls.Get(n)))
					} else {
						b.Set(n, strings.ToUpper(ls.Get(n)))
					}
				}
			}
			v[i].Metric = b.Labels()
		}
		return ev.checkDuplicates(v), true
	case "label_value":
		ev.wantArgs(fe, 2)
		name := stringArg(ev, fe, 1)
		v := ev.eval(fe.Args[0])
		out := make(Matrix, 0, len(v))
		for _, s := range v {
			ev.spend(1 + len(s.Points))
			f, err := strconv.ParseFloat(s.Metric.Get(name), 64)
			if err != nil {
				continue
			}
			ev.addSamples(len(s.Points))
			pts := make([]Point, len(s.Points))
			for i, p := range s.Points {
				pts[i] = Point{T: p.T, F: f}
			}
			out = append(out, Series{Metric: ev.dropName(s.Metric), Points: pts})
		}
		ev.release(v)
		return ev.checkDuplicates(out), true
	case "union":
		var out Matrix
		seen := map[string]bool{}
		for _, a := range fe.Args {
			for _, s := range ev.eval(a) {
				ev.spend(1)
				if k := s.Metric.String(); !seen[k] {
					seen[k] = true
					out = append(out, s)
				}
			}
		}
		return out, true
	case "limit_offset":
		ev.wantArgs(fe, 3)
		lim, off := ev.eval(fe.Args[0]), ev.eval(fe.Args[1])
		v := ev.eval(fe.Args[2])
		sortSeries(v)
		l, o := int(scalarAt(lim, 0)), int(scalarAt(off, 0))
		if o >= len(v) || l <= 0 {
			return nil, true
		}
		return v[o:min(len(v), o+l)], true
	case "range_first", "range_last", "range_min", "range_max", "range_avg", "range_sum", "range_median", "range_quantile":
		arg := 0
		var phi float64
		if fe.Name == "range_quantile" {
			ev.wantArgs(fe, 2)
			phi = scalarAt(ev.eval(fe.Args[0]), 0)
			arg = 1
		} else {
			ev.wantArgs(fe, 1)
		}
		v := ev.eval(fe.Args[arg])
		for i := range v {
			pts := v[i].Points
			ev.spend(1 + 2*len(pts))
			if len(pts) == 0 {
				continue
			}
			var r float64
			switch fe.Name {
			case "range_first":
				r = pts[0].F
			case "range_last":
				r = pts[len(pts)-1].F
			case "range_min", "range_max":
				r = pts[0].F
				for _, p := range pts {
					if fe.Name == "range_min" {
						r = math.Min(r, p.F)
					} else {
						r = math.Max(r, p.F)
					}
				}
			case "range_avg":
				// VictoriaMetrics's running average, which counts the
				// steps without a point too (a + (b-a)/(idx+1), idx the
				// step from the first point).
				r = pts[0].F
				k0 := ev.stepIndex(pts[0].T)
				for j, p := range pts[1:] {
					idx := j + 1
					if k := ev.stepIndex(p.T); k >= 0 && k0 >= 0 {
						idx = k - k0
					}
					r += (p.F - r) / float64(idx+1)
				}
			case "range_sum":
				for _, p := range pts {
					r += p.F
				}
			case "range_median":
				r = quantile(0.5, values(pts))
			case "range_quantile":
				r = quantile(phi, values(pts))
			}
			// As VictoriaMetrics: the value at every step, the steps
			// without a point too.
			np := make([]Point, ev.numSteps())
			for k := range np {
				np[k] = Point{T: ev.stepTime(k), F: r}
			}
			ev.spend(len(np))
			ev.addSamples(len(np) - len(pts))
			v[i].Points, v[i].Histograms = np, nil
			// As VictoriaMetrics: range_avg, range_min, range_max and
			// range_sum are its running_* functions, which drop __name__
			// even with keep_metric_names; the others keep it.
			switch fe.Name {
			case "range_avg", "range_min", "range_max", "range_sum":
				v[i].Metric = ev.dropName(v[i].Metric)
			}
		}
		return ev.checkDuplicates(v), true
	}
	return nil, false
}

// binaryMetricsQL evaluates default, if and ifnot.
func (ev *evaluator) binaryMetricsQL(op string, l, r Matrix, rScalar bool) Matrix {
	switch op {
	case "default":
		if rScalar {
			// As VictoriaMetrics: with nothing on the left the answer is
			// the default itself (`sum(rate(nonexistent[5m])) default 0`
			// is 0).
			if len(l) == 0 {
				return r
			}
			n := ev.numSteps()
			for i := range l {
				ev.spend(n + len(l[i].Points))
				ev.addSamples(n - len(l[i].Points))
				have := map[int64]bool{}
				for _, p := range l[i].Points {
					have[p.T] = true
				}
				for k := range n {
					if t := ev.stepTime(k); !have[t] {
						l[i].Points = append(l[i].Points, Point{T: t, F: scalarAt(r, k)})
					}
				}
				slices.SortFunc(l[i].Points, func(a, b Point) int { return cmp.Compare(a.T, b.T) })
			}
			return l
		}
		m := &matching{card: cardManyToMany}
		return ev.rangeEval(func(_ int, _ int64, a []Vector) Vector { return ev.or(a[0], a[1], m, nil) }, l, r)
	case "if", "ifnot":
		m := &matching{card: cardManyToMany}
		if rScalar {
			return ev.rangeEval(func(_ int, _ int64, a []Vector) Vector {
				if (len(a[1]) > 0 && !math.IsNaN(a[1][0].F)) == (op == "if") {
					return a[0]
				}
				return nil
			}, l, r)
		}
		return ev.rangeEval(func(_ int, _ int64, a []Vector) Vector {
			if op == "if" {
				return ev.and(a[0], a[1], m, nil)
			}
			return ev.unless(a[0], a[1], m, nil)
		}, l, r)
	}
	ev.fail(badData("unsupported operator %q", op))
	return nil
}

// filterKeepingSeries evaluates a comparison of a vector with a scalar
// (`x > 1000`, `5 < x`) as the left side of `default`, keeping the series
// none of whose points pass, with no points: VictoriaMetrics keeps them
// (as NaN) and `default` fills them, so `(x > 1000) default 0` is 0 for
// every series of x. ok is false for any other expression.
func (ev *evaluator) filterKeepingSeries(e metricsql.Expr) (Matrix, bool) {
	be, isBin := e.(*metricsql.BinaryOpExpr)
	if !isBin || be.Bool || !isComparison(strings.ToLower(be.Op)) {
		return nil, false
	}
	lt, rt := mustType(be.Left), mustType(be.Right)
	vecLeft := lt == ValueVector && rt == ValueScalar
	if !vecLeft && !(lt == ValueScalar && rt == ValueVector) {
		return nil, false
	}
	vec, sc := be.Left, be.Right
	if !vecLeft {
		vec, sc = be.Right, be.Left
	}
	v, s := ev.eval(vec), ev.eval(sc)
	op := strings.ToLower(be.Op)
	for i := range v {
		ev.spend(1 + len(v[i].Points))
		if v[i].Histograms != nil {
			continue
		}
		kept := v[i].Points[:0]
		c := 0
		for _, p := range v[i].Points {
			var r Point
			if pr, ok := pointAt(s[0].Points, &c, p.T); ok {
				r = pr
			} else {
				continue
			}
			a, b := p.F, r.F
			if !vecLeft {
				a, b = b, a
			}
			if _, keep := binop(op, a, b); keep {
				kept = append(kept, p)
			}
		}
		ev.release(Matrix{{Points: v[i].Points[len(kept):]}})
		v[i].Points = kept
	}
	ev.release(s)
	return v, true
}
