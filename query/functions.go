package query

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage"
)

// rangeFn computes one value from the window of a series at one step. ref
// is the window's end, rng its length, ts the step's time; sargs are the
// scalar arguments'
// values at this step.
type rangeFn func(w []Point, ref, rng, ts int64, sargs []float64) (float64, bool)

// rangeFuncDef describes a function over a range vector.
type rangeFuncDef struct {
	matrixArg int  // index of the range-vector argument
	nargs     int  // total arguments
	keepName  bool // keeps __name__
	fn        rangeFn
}

var rangeFuncs = map[string]rangeFuncDef{
	"rate": {0, 1, false, func(w []Point, ref, rng, _ int64, _ []float64) (float64, bool) {
		return extrapolatedRate(w, ref-rng, ref, true, true)
	}},
	"increase": {0, 1, false, func(w []Point, ref, rng, _ int64, _ []float64) (float64, bool) {
		return extrapolatedRate(w, ref-rng, ref, true, false)
	}},
	"delta": {0, 1, false, func(w []Point, ref, rng, _ int64, _ []float64) (float64, bool) {
		return extrapolatedRate(w, ref-rng, ref, false, false)
	}},
	"irate":  {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) { return instantValue(w, true) }},
	"idelta": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) { return instantValue(w, false) }},
	"deriv": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
		if len(w) < 2 {
			return 0, false
		}
		slope, _ := linearRegression(w, w[0].T)
		return slope, true
	}},
	"predict_linear": {0, 2, false, func(w []Point, _, _, ts int64, s []float64) (float64, bool) {
		if len(w) < 2 {
			return 0, false
		}
		// The intercept is at the evaluation time, even with @.
		slope, intercept := linearRegression(w, ts)
		return slope*s[0] + intercept, true
	}},
	"holt_winters": {0, 3, false, holtWinters},
	"resets": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
		if len(w) == 0 {
			return 0, false
		}
		n := 0
		for i := 1; i < len(w); i++ {
			if w[i].F < w[i-1].F {
				n++
			}
		}
		return float64(n), true
	}},
	"changes": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
		if len(w) == 0 {
			return 0, false
		}
		n := 0
		for i := 1; i < len(w); i++ {
			if !(w[i].F == w[i-1].F || (math.IsNaN(w[i].F) && math.IsNaN(w[i-1].F))) {
				n++
			}
		}
		return float64(n), true
	}},
	"avg_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
		if len(w) == 0 {
			return 0, false
		}
		return avgOf(w), true
	}},
	"sum_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
		if len(w) == 0 {
			return 0, false
		}
		var sum, c float64
		for _, p := range w {
			sum, c = kahanSumInc(p.F, sum, c)
		}
		if math.IsInf(sum, 0) {
			return sum, true
		}
		return sum + c, true
	}},
	"count_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
		return float64(len(w)), len(w) > 0
	}},
	"min_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
		if len(w) == 0 {
			return 0, false
		}
		m := w[0].F
		for _, p := range w {
			if p.F < m || math.IsNaN(m) {
				m = p.F
			}
		}
		return m, true
	}},
	"max_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
		if len(w) == 0 {
			return 0, false
		}
		m := w[0].F
		for _, p := range w {
			if p.F > m || math.IsNaN(m) {
				m = p.F
			}
		}
		return m, true
	}},
	"stddev_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
		if len(w) == 0 {
			return 0, false
		}
		return math.Sqrt(variance(w)), true
	}},
	"stdvar_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
		if len(w) == 0 {
			return 0, false
		}
		return variance(w), true
	}},
	"quantile_over_time": {1, 2, false, func(w []Point, _, _, _ int64, s []float64) (float64, bool) {
		if len(w) == 0 {
			return 0, false
		}
		vals := make([]float64, len(w))
		for i, p := range w {
			vals[i] = p.F
		}
		return quantile(s[0], vals), true
	}},
	"last_over_time": {0, 1, true, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
		if len(w) == 0 {
			return 0, false
		}
		return w[len(w)-1].F, true
	}},
	"first_over_time": {0, 1, true, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
		if len(w) == 0 {
			return 0, false
		}
		return w[0].F, true
	}},
	"present_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
		return 1, len(w) > 0
	}},
	"mad_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
		if len(w) == 0 {
			return 0, false
		}
		vals := make([]float64, len(w))
		for i, p := range w {
			if math.IsNaN(p.F) {
				// NaN makes the median, so the deviation, undefined.
				return math.NaN(), true
			}
			vals[i] = p.F
		}
		med := quantile(0.5, slices.Clone(vals))
		for i := range vals {
			vals[i] = math.Abs(vals[i] - med)
		}
		return quantile(0.5, vals), true
	}},
	"ts_of_last_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
		if len(w) == 0 {
			return 0, false
		}
		return float64(w[len(w)-1].T) / 1000, true
	}},
	"ts_of_first_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
		if len(w) == 0 {
			return 0, false
		}
		return float64(w[0].T) / 1000, true
	}},
	"ts_of_min_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
		return tsOfExtreme(w, func(a, b float64) bool { return a <= b })
	}},
	"ts_of_max_over_time": {0, 1, false, func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
		return tsOfExtreme(w, func(a, b float64) bool { return a >= b })
	}},
}

func tsOfExtreme(w []Point, better func(a, b float64) bool) (float64, bool) {
	if len(w) == 0 {
		return 0, false
	}
	best := w[0]
	for _, p := range w[1:] {
		if better(p.F, best.F) || math.IsNaN(best.F) {
			best = p
		}
	}
	return float64(best.T) / 1000, true
}

// extrapolatedRate is Prometheus's rate, increase and delta.
func extrapolatedRate(w []Point, rangeStart, rangeEnd int64, isCounter, isRate bool) (float64, bool) {
	if len(w) < 2 {
		return 0, false
	}
	first, last := w[0], w[len(w)-1]
	result := last.F - first.F
	if isCounter {
		prev := first.F
		for _, p := range w[1:] {
			if p.F < prev {
				result += prev
			}
			prev = p.F
		}
	}
	return extrapolate(first, last, len(w), result, rangeStart, rangeEnd, isCounter, isRate), true
}

// extrapolate is the rest of extrapolatedRate, given a window's first and
// last samples, their number n and its increase (or delta) result: the
// result extrapolated to the window's ends, per second for a rate.
func extrapolate(first, last Point, n int, result float64, rangeStart, rangeEnd int64, isCounter, isRate bool) float64 {
	durationToStart := float64(first.T-rangeStart) / 1000
	durationToEnd := float64(rangeEnd-last.T) / 1000
	sampled := float64(last.T-first.T) / 1000
	avgBetween := sampled / float64(n-1)
	threshold := avgBetween * 1.1
	if durationToStart >= threshold {
		durationToStart = avgBetween / 2
	}
	if isCounter && result > 0 && first.F >= 0 {
		if toZero := sampled * (first.F / result); toZero < durationToStart {
			durationToStart = toZero
		}
	}
	if durationToEnd >= threshold {
		durationToEnd = avgBetween / 2
	}
	factor := (sampled + durationToStart + durationToEnd) / sampled
	if isRate {
		factor /= float64(rangeEnd-rangeStart) / 1000
	}
	return result * factor
}

func instantValue(w []Point, isRate bool) (float64, bool) {
	if len(w) < 2 {
		return 0, false
	}
	last, prev := w[len(w)-1], w[len(w)-2]
	var v float64
	if isRate && last.F < prev.F {
		v = last.F
	} else {
		v = last.F - prev.F
	}
	iv := last.T - prev.T
	if iv == 0 {
		return 0, false
	}
	if isRate {
		v /= float64(iv) / 1000
	}
	return v, true
}

func kahanSumInc(inc, sum, c float64) (float64, float64) {
	t := sum + inc
	switch {
	case math.IsInf(t, 0):
		c = 0
	case math.Abs(sum) >= math.Abs(inc):
		c += (sum - t) + inc
	default:
		c += (inc - t) + sum
	}
	return t, c
}

func linearRegression(w []Point, interceptTime int64) (slope, intercept float64) {
	var n, sumX, cX, sumY, cY, sumXY, cXY, sumX2, cX2 float64
	initY := w[0].F
	constY := true
	for i, p := range w {
		if constY && i > 0 && p.F != initY {
			constY = false
		}
		n++
		x := float64(p.T-interceptTime) / 1e3
		sumX, cX = kahanSumInc(x, sumX, cX)
		sumY, cY = kahanSumInc(p.F, sumY, cY)
		sumXY, cXY = kahanSumInc(x*p.F, sumXY, cXY)
		sumX2, cX2 = kahanSumInc(x*x, sumX2, cX2)
	}
	if constY {
		if math.IsInf(initY, 0) {
			return math.NaN(), math.NaN()
		}
		return 0, initY
	}
	sumX += cX
	sumY += cY
	sumXY += cXY
	sumX2 += cX2
	covXY := sumXY - sumX*sumY/n
	varX := sumX2 - sumX*sumX/n
	slope = covXY / varX
	intercept = sumY/n - slope*sumX/n
	return slope, intercept
}

func avgOf(w []Point) float64 {
	var sum, mean, count, c float64
	incremental := false
	for i, p := range w {
		count = float64(i + 1)
		if !incremental {
			ns, nc := kahanSumInc(p.F, sum, c)
			if count == 1 || !math.IsInf(ns, 0) {
				sum, c = ns, nc
				continue
			}
			incremental = true
			mean = sum / (count - 1)
			c /= count - 1
		}
		q := (count - 1) / count
		mean, c = kahanSumInc(p.F/count, q*mean, q*c)
	}
	if incremental {
		return mean + c
	}
	if count == 1 {
		return sum
	}
	return sum/count + c/count
}

func variance(w []Point) float64 {
	var count, mean, cMean, aux, cAux float64
	for _, p := range w {
		count++
		delta := p.F - (mean + cMean)
		mean, cMean = kahanSumInc(delta/count, mean, cMean)
		aux, cAux = kahanSumInc(delta*(p.F-(mean+cMean)), aux, cAux)
	}
	return (aux + cAux) / count
}

// quantile is Prometheus's φ-quantile with linear interpolation; it sorts
// vals (NaN first).
func quantile(q float64, vals []float64) float64 {
	if len(vals) == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	if q < 0 {
		return math.Inf(-1)
	}
	if q > 1 {
		return math.Inf(1)
	}
	sort.Slice(vals, func(i, j int) bool {
		if math.IsNaN(vals[i]) {
			return true
		}
		return vals[i] < vals[j]
	})
	n := float64(len(vals))
	rank := q * (n - 1)
	lower := math.Max(0, math.Floor(rank))
	upper := math.Min(n-1, lower+1)
	weight := rank - math.Floor(rank)
	return vals[int(lower)]*(1-weight) + vals[int(upper)]*weight
}

func holtWinters(w []Point, _, _, _ int64, s []float64) (float64, bool) {
	if len(w) < 2 {
		return 0, false
	}
	sf, tf := s[0], s[1]
	var s0, s1, b float64
	s1 = w[0].F
	b = w[1].F - w[0].F
	for i := 1; i < len(w); i++ {
		x := sf * w[i].F
		if i > 1 {
			b = tf*(s1-s0) + (1-tf)*b
		}
		y := (1 - sf) * (s1 + b)
		s0, s1 = s1, x+y
	}
	return s1, true
}

// call evaluates a function call.
func (ev *evaluator) call(fe *metricsql.FuncExpr) Matrix {
	name := fe.Name
	if m, ok := ev.callVMRollup(fe); ok {
		return m
	}
	if def, ok := rangeFuncs[name]; ok {
		return ev.callRange(fe, def)
	}
	switch name {
	case "time":
		m := ev.constant(0)
		for k := range m[0].Points {
			m[0].Points[k].F = float64(m[0].Points[k].T) / 1000
		}
		return m
	case "pi":
		return ev.constant(math.Pi)
	case "start":
		return ev.constant(float64(ev.qStart) / 1000)
	case "end":
		return ev.constant(float64(ev.qEnd) / 1000)
	case "step":
		if ev.instant {
			return ev.constant(0)
		}
		return ev.constant(float64(ev.interval) / 1000)
	case "vector":
		ev.wantArgs(fe, 1)
		m := ev.eval(fe.Args[0])
		return m
	case "scalar":
		ev.wantArgs(fe, 1)
		v := ev.eval(fe.Args[0])
		return ev.rangeEval(func(_ int, ts int64, a []Vector) Vector {
			v, found := math.NaN(), false
			for _, s := range a[0] {
				if s.H != nil {
					continue
				}
				if found {
					return Vector{{F: math.NaN()}}
				}
				v, found = s.F, true
			}
			return Vector{{F: v}}
		}, v)
	case "timestamp":
		ev.wantArgs(fe, 1)
		arg := fe.Args[0]
		if me, ok := arg.(*metricsql.MetricExpr); ok {
			return ev.dropNames(ev.vectorSelector(me, 0, nil, true))
		}
		if re, ok := arg.(*metricsql.RollupExpr); ok && re.Window == nil && !re.ForSubquery() {
			if me, ok := re.Expr.(*metricsql.MetricExpr); ok {
				return ev.dropNames(ev.vectorSelector(me, ev.offsetOf(re.Offset), ev.atTime(re.At), true))
			}
		}
		return ev.rangeEval(func(_ int, ts int64, a []Vector) Vector {
			out := make(Vector, 0, len(a[0]))
			for _, s := range a[0] {
				out = append(out, Sample{Metric: ev.dropName(s.Metric), T: ts, F: float64(s.T) / 1000})
			}
			return out
		}, ev.eval(arg))
	case "absent":
		ev.wantArgs(fe, 1)
		v := ev.eval(fe.Args[0])
		ls := absentLabels(fe.Args[0])
		return ev.rangeEval(func(_ int, _ int64, a []Vector) Vector {
			if len(a[0]) > 0 {
				return nil
			}
			return Vector{{Metric: ls, F: 1}}
		}, v)
	case "absent_over_time":
		ev.wantArgs(fe, 1)
		ra := ev.matrixArg(fe.Args[0])
		ls := labels.EmptyLabels()
		if re, ok := fe.Args[0].(*metricsql.RollupExpr); ok && !re.ForSubquery() {
			ls = absentLabels(re.Expr)
		}
		n := ev.numSteps()
		var pts []Point
		cur := make([][2]int, len(ra.series))
		for k := range n {
			ev.spend(1 + len(ra.series))
			ref := ev.refTime(k, ra.off, ra.at)
			any := false
			for i, s := range ra.series {
				if len(ra.window(s.Points, ref, &cur[i][0], &cur[i][1])) > 0 {
					any = true
				}
			}
			if !any {
				ev.addSamples(1)
				pts = append(pts, Point{T: ev.stepTime(k), F: 1})
			}
		}
		ev.release(ra.series)
		return Matrix{{Metric: ls, Points: pts}}
	case "abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "sgn",
		"acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg", "rad":
		ev.wantArgs(fe, 1)
		if name == "sgn" && ev.vm {
			return ev.vmSgn(fe)
		}
		f := mathFuncs[name]
		return ev.mapVector(ev.eval(fe.Args[0]), func(s Sample) (float64, bool) { return f(s.F), true }, fe.KeepMetricNames)
	case "round":
		if len(fe.Args) < 1 || len(fe.Args) > 2 {
			ev.fail(badData("expected 1 or 2 arguments in call to round, got %d", len(fe.Args)))
		}
		v := ev.eval(fe.Args[0])
		var to Matrix
		if len(fe.Args) == 2 {
			to = ev.eval(fe.Args[1])
		}
		return ev.mapVectorK(v, func(k int, s Sample) (float64, bool) {
			nearest := 1.0
			if to != nil {
				nearest = scalarAt(to, k)
			}
			inv := 1.0 / nearest
			return math.Floor(s.F*inv+0.5) / inv, true
		}, fe.KeepMetricNames)
	case "clamp":
		ev.wantArgs(fe, 3)
		v, lo, hi := ev.eval(fe.Args[0]), ev.eval(fe.Args[1]), ev.eval(fe.Args[2])
		return ev.mapVectorK(v, func(k int, s Sample) (float64, bool) {
			l, h := scalarAt(lo, k), scalarAt(hi, k)
			if h < l {
				return 0, false
			}
			return math.Max(l, math.Min(h, s.F)), true
		}, fe.KeepMetricNames)
	case "clamp_min", "clamp_max":
		ev.wantArgs(fe, 2)
		v, b := ev.eval(fe.Args[0]), ev.eval(fe.Args[1])
		return ev.mapVectorK(v, func(k int, s Sample) (float64, bool) {
			if name == "clamp_min" {
				return math.Max(scalarAt(b, k), s.F), true
			}
			return math.Min(scalarAt(b, k), s.F), true
		}, fe.KeepMetricNames)
	case "day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year":
		f := dateFuncs[name]
		if len(fe.Args) == 0 {
			m := ev.constant(0)
			for k := range m[0].Points {
				m[0].Points[k].F = f(time.UnixMilli(m[0].Points[k].T).UTC())
			}
			return m
		}
		ev.wantArgs(fe, 1)
		return ev.mapVector(ev.eval(fe.Args[0]), func(s Sample) (float64, bool) {
			if math.IsNaN(s.F) || math.IsInf(s.F, 0) {
				return s.F, true
			}
			return f(time.Unix(int64(s.F), 0).UTC()), true
		}, fe.KeepMetricNames)
	case "label_replace":
		return ev.labelReplace(fe)
	case "label_join":
		return ev.labelJoin(fe)
	case "sort", "sort_desc":
		ev.wantArgs(fe, 1)
		return ev.rangeEval(func(_ int, _ int64, a []Vector) Vector {
			return slices.DeleteFunc(a[0], func(s Sample) bool { return s.H != nil })
		}, ev.eval(fe.Args[0]))
	case "sort_by_label", "sort_by_label_desc":
		if len(fe.Args) < 1 {
			ev.fail(badData("expected at least 1 argument in call to %s", name))
		}
		return ev.eval(fe.Args[0])
	case "histogram_count", "histogram_sum", "histogram_avg", "histogram_stddev", "histogram_stdvar":
		ev.wantArgs(fe, 1)
		f := histogramFuncs[name]
		return ev.rangeEval(func(_ int, ts int64, a []Vector) Vector {
			out := make(Vector, 0, len(a[0]))
			for _, s := range a[0] {
				if s.H != nil {
					out = append(out, Sample{Metric: ev.dropOnlyName(s.Metric), T: ts, F: f(s.H)})
				}
			}
			return out
		}, ev.eval(fe.Args[0]))
	case "histogram_fraction":
		if m, ok := ev.callVMBuckets(fe); ok {
			return m // VictoriaMetrics's, in a MetricsQL-only query
		}
		ev.wantArgs(fe, 3)
		return ev.histogramFraction(ev.eval(fe.Args[0]), ev.eval(fe.Args[1]), ev.eval(fe.Args[2]))
	case "info":
		return ev.infoFunc(fe)
	case "histogram_quantiles":
		if m, ok := ev.callVMBuckets(fe); ok {
			return m // MetricsQL's histogram_quantiles("phi", q1, …, buckets)
		}
		return ev.histogramQuantiles(fe)
	case "histogram_quantile":
		ev.wantArgs(fe, 2)
		return ev.histogramQuantile(ev.eval(fe.Args[0]), ev.eval(fe.Args[1]))
	}
	if m, ok := ev.callMetricsQL(fe); ok {
		return m
	}
	if m, ok := ev.callVMBuckets(fe); ok {
		return m
	}
	if m, ok := ev.callVMValues(fe); ok {
		return m
	}
	if m, ok := ev.callMetricsQLTransform(fe); ok {
		return m
	}
	if m, ok := ev.callVMLabels(fe); ok {
		return m
	}
	ev.fail(badData("unknown function with name %q", name))
	return nil
}

func (ev *evaluator) wantArgs(fe *metricsql.FuncExpr, n int) {
	if len(fe.Args) != n {
		ev.fail(badData("expected %d argument(s) in call to %q, got %d", n, fe.Name, len(fe.Args)))
	}
}

var mathFuncs = map[string]func(float64) float64{
	"abs": math.Abs, "ceil": math.Ceil, "floor": math.Floor, "exp": math.Exp, "sqrt": math.Sqrt,
	"ln": math.Log, "log2": math.Log2, "log10": math.Log10,
	"sgn": func(v float64) float64 {
		switch {
		case v < 0:
			return -1
		case v > 0:
			return 1
		}
		return v
	},
	"acos": math.Acos, "acosh": math.Acosh, "asin": math.Asin, "asinh": math.Asinh, "atan": math.Atan,
	"atanh": math.Atanh, "cos": math.Cos, "cosh": math.Cosh, "sin": math.Sin, "sinh": math.Sinh,
	"tan": math.Tan, "tanh": math.Tanh,
	"deg": func(v float64) float64 { return v * 180 / math.Pi },
	"rad": func(v float64) float64 { return v * math.Pi / 180 },
}

var dateFuncs = map[string]func(time.Time) float64{
	"day_of_month": func(t time.Time) float64 { return float64(t.Day()) },
	"day_of_week":  func(t time.Time) float64 { return float64(t.Weekday()) },
	"day_of_year":  func(t time.Time) float64 { return float64(t.YearDay()) },
	"days_in_month": func(t time.Time) float64 {
		return float64(32 - time.Date(t.Year(), t.Month(), 32, 0, 0, 0, 0, time.UTC).Day())
	},
	"hour":   func(t time.Time) float64 { return float64(t.Hour()) },
	"minute": func(t time.Time) float64 { return float64(t.Minute()) },
	"month":  func(t time.Time) float64 { return float64(t.Month()) },
	"year":   func(t time.Time) float64 { return float64(t.Year()) },
}

// callRange evaluates a function over a range vector.
func (ev *evaluator) callRange(fe *metricsql.FuncExpr, def rangeFuncDef) Matrix {
	if len(fe.Args) != def.nargs {
		ev.fail(badData("expected %d argument(s) in call to %q, got %d", def.nargs, fe.Name, len(fe.Args)))
	}
	var scalars []Matrix
	for i, a := range fe.Args {
		if i != def.matrixArg {
			scalars = append(scalars, ev.eval(a))
		}
	}
	if tf, ok := tierFuncs[fe.Name]; ok {
		if m, ok := ev.rangeFromTier(fe, def, tf); ok {
			return m
		}
	}
	ra := ev.matrixArg(fe.Args[def.matrixArg])
	if fe.Name == "holt_winters" {
		for k := range ev.numSteps() {
			sf, tf := scalarAt(scalars[0], k), scalarAt(scalars[1], k)
			if sf <= 0 || sf >= 1 {
				ev.failf("invalid smoothing factor. Expected: 0 < sf < 1, got: %v", sf)
			}
			if tf <= 0 || tf >= 1 {
				ev.failf("invalid trend factor. Expected: 0 < tf < 1, got: %v", tf)
			}
		}
	}
	if fe.Name == "quantile_over_time" {
		for k := range ev.numSteps() {
			if q := scalarAt(scalars[0], k); q < 0 || q > 1 || math.IsNaN(q) {
				ev.warn("PromQL warning: quantile value should be between 0 and 1, got %v", q)
			}
		}
	}
	keep := def.keepName || fe.KeepMetricNames
	out := newOutMatrix(ev)
	sargs := make([]float64, len(scalars))
	n := ev.numSteps()
	// A float output series gets room for a point a step at once, carved
	// from slabs shared by the outputs (capacity capped, so one that
	// grows moves alone): appending one point at a time was half of a
	// range query's allocation (BenchmarkDashboardQueries range-1h).
	var outSlab []Point
	outPoints := func(n int) []Point {
		if n > pointSlab/4 {
			return nil // long queries: grown as the points come
		}
		if len(outSlab)+n > cap(outSlab) {
			outSlab = make([]Point, 0, pointSlab)
		}
		k := len(outSlab)
		outSlab = outSlab[:k+n]
		return outSlab[k : k : k+n]
	}
	for _, s := range ra.series {
		ls := s.Metric
		if !keep {
			ls = ev.dropName(ls)
		}
		hist := hasHistograms(s.Histograms)
		lo, hi := 0, 0
		slot := -1 // the output series, found once (by the first output)
		for k := range n {
			ref := ev.refTime(k, ra.off, ra.at)
			w := ra.window(s.Points, ref, &lo, &hi)
			// A window function's work grows with the window (quantiles
			// sort it).
			ev.spend(1 + len(w))
			for i := range scalars {
				sargs[i] = scalarAt(scalars[i], k)
			}
			if ra.mod != modNone {
				var hs []*histogram.FloatHistogram
				if hist {
					hs = s.Histograms[lo:hi]
				}
				if p, ok := ev.extendedRange(fe.Name, def, s.Metric, w, hs, ref, ra, ev.stepTime(k), sargs); ok {
					if slot < 0 {
						slot = out.slot(ls)
					}
					ev.addSamples(1)
					out.m[slot].add(Point{T: ev.stepTime(k), F: p.F}, p.H)
				}
				continue
			}
			if hist {
				if p, ok := ev.rangeHist(fe.Name, def, s.Metric, w, s.Histograms[lo:hi], ref, ra.rng, ev.stepTime(k), sargs); ok {
					if slot < 0 {
						slot = out.slot(ls)
					}
					ev.addSamples(1)
					out.m[slot].add(Point{T: ev.stepTime(k), F: p.F}, p.H)
				}
				continue
			}
			if v, ok := def.fn(w, ref, ra.rng, ev.stepTime(k), sargs); ok {
				if slot < 0 {
					slot = out.slot(ls)
					if cap(out.m[slot].Points) == 0 {
						out.m[slot].Points = outPoints(n)
					}
				}
				ev.addSamples(1)
				out.m[slot].add(Point{T: ev.stepTime(k), F: v}, nil)
			}
		}
	}
	ev.release(ra.series)
	ev.recycle(ra.slabs) // the outputs are points of their own
	// Points of one series may have been added out of step order when
	// several input series share the output labels.
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
	return out.m
}

// mapVector applies f to every sample, dropping __name__ unless keep.
func (ev *evaluator) mapVector(m Matrix, f func(Sample) (float64, bool), keep bool) Matrix {
	return ev.mapVectorK(m, func(_ int, s Sample) (float64, bool) { return f(s) }, keep)
}

func (ev *evaluator) mapVectorK(m Matrix, f func(int, Sample) (float64, bool), keep bool) Matrix {
	return ev.rangeEval(func(k int, ts int64, a []Vector) Vector {
		out := make(Vector, 0, len(a[0]))
		for _, s := range a[0] {
			if s.H != nil {
				continue // functions of floats ignore histograms
			}
			v, ok := f(k, s)
			if !ok {
				continue
			}
			ls := s.Metric
			if !keep {
				ls = ev.dropName(ls)
			}
			out = append(out, Sample{Metric: ls, T: ts, F: v})
		}
		return out
	}, m)
}

// absentLabels are the labels absent() reports: the equality matchers of
// a selector, a name matched twice left out.
func absentLabels(e metricsql.Expr) labels.Labels {
	if re, ok := e.(*metricsql.RollupExpr); ok {
		e = re.Expr
	}
	me, ok := e.(*metricsql.MetricExpr)
	if !ok || len(me.LabelFilterss) != 1 {
		return labels.EmptyLabels()
	}
	b := labels.NewBuilder(labels.EmptyLabels())
	seen := map[string]int{}
	for _, lf := range me.LabelFilterss[0] {
		seen[lf.Label]++
	}
	for _, lf := range me.LabelFilterss[0] {
		if lf.Label == model.MetricNameLabel || lf.IsNegative || lf.IsRegexp || seen[lf.Label] > 1 {
			continue
		}
		b.Set(lf.Label, lf.Value)
	}
	return b.Labels()
}

func stringArg(ev *evaluator, fe *metricsql.FuncExpr, i int) string {
	s, ok := fe.Args[i].(*metricsql.StringExpr)
	if !ok {
		ev.fail(badData("expected type string in call to function %q, got %s", fe.Name, typeName(mustType(fe.Args[i]))))
	}
	return s.S
}

func (ev *evaluator) labelReplace(fe *metricsql.FuncExpr) Matrix {
	ev.wantArgs(fe, 5)
	dst, repl, src, rx := stringArg(ev, fe, 1), stringArg(ev, fe, 2), stringArg(ev, fe, 3), stringArg(ev, fe, 4)
	re, err := regexp.Compile("^(?s:" + rx + ")$")
	if err != nil {
		ev.fail(badData("invalid regular expression in label_replace(): %s", rx))
	}
	if !model_labelNameValid(dst) {
		ev.fail(badData("invalid destination label name in label_replace(): %s", dst))
	}
	v := ev.eval(fe.Args[0])
	out := make(Matrix, 0, len(v))
	for _, s := range v {
		ev.spend(1)
		val := s.Metric.Get(src)
		idx := re.FindStringSubmatchIndex(val)
		ls := s.Metric
		if idx != nil {
			res := re.ExpandString(nil, repl, val, idx)
			b := labels.NewBuilder(ls)
			if len(res) == 0 {
				b.Del(dst)
			} else {
				b.Set(dst, string(res))
			}
			if dst == model.MetricNameLabel {
				b.Del(dropNameLabel) // the name is written: keep it
			}
			ls = b.Labels()
		}
		out = append(out, Series{Metric: ls, Points: s.Points, Histograms: s.Histograms})
	}
	return ev.checkDuplicates(out)
}

func (ev *evaluator) labelJoin(fe *metricsql.FuncExpr) Matrix {
	if len(fe.Args) < 3 {
		ev.fail(badData("expected at least 3 argument(s) in call to \"label_join\", got %d", len(fe.Args)))
	}
	dst, sep := stringArg(ev, fe, 1), stringArg(ev, fe, 2)
	var srcs []string
	for i := 3; i < len(fe.Args); i++ {
		src := stringArg(ev, fe, i)
		if !model_labelNameValid(src) {
			ev.fail(badData("invalid source label name in label_join(): %s", src))
		}
		srcs = append(srcs, src)
	}
	if !model_labelNameValid(dst) {
		ev.fail(badData("invalid destination label name in label_join(): %s", dst))
	}
	v := ev.eval(fe.Args[0])
	out := make(Matrix, 0, len(v))
	for _, s := range v {
		ev.spend(1)
		vals := make([]string, len(srcs))
		for i, src := range srcs {
			vals[i] = s.Metric.Get(src)
		}
		b := labels.NewBuilder(s.Metric)
		if j := strings.Join(vals, sep); j == "" {
			b.Del(dst)
		} else {
			b.Set(dst, j)
		}
		if dst == model.MetricNameLabel {
			b.Del(dropNameLabel) // the name is written: keep it
		}
		out = append(out, Series{Metric: b.Labels(), Points: s.Points, Histograms: s.Histograms})
	}
	return ev.checkDuplicates(out)
}

func model_labelNameValid(s string) bool { //nolint:revive // mirrors model.LabelName.IsValid
	return s != "" && utf8Valid(s)
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// checkDuplicates merges series with equal labels, failing when two have
// a point at the same step. m is consumed.
func (ev *evaluator) checkDuplicates(m Matrix) Matrix {
	// Most often the labels are all distinct: nothing to merge.
	seen := make(map[uint64][]int, len(m))
	dup := false
	for i := range m {
		ev.spend(1)
		h := m[i].Metric.Hash()
		for _, j := range seen[h] {
			if labels.Equal(m[j].Metric, m[i].Metric) {
				dup = true
			}
		}
		if dup {
			break
		}
		seen[h] = append(seen[h], i)
	}
	if !dup {
		return m
	}
	defer ev.release(m)
	out := newOutMatrix(ev)
	type pt struct {
		ls labels.Labels
		p  Point
		h  *histogram.FloatHistogram
	}
	var all []pt
	for _, s := range m {
		ev.spend(len(s.Points))
		for i, p := range s.Points {
			all = append(all, pt{s.Metric, p, s.H(i)})
		}
	}
	slices.SortStableFunc(all, func(a, b pt) int { return cmp.Compare(a.p.T, b.p.T) })
	ev.checkCtx()
	for _, x := range all {
		out.add(x.ls, x.p.T, x.p.F, x.h)
	}
	return out.m
}

type bucket struct {
	upper, count float64
}

type bucketGroup struct {
	ls      labels.Labels // without le and __name__: the output's labels
	name    string        // the metric name, for annotations
	buckets []bucket
}

// classicHistograms groups the buckets of classic histograms (series with
// an le label) by their other labels, __name__ included, as Prometheus's
// resetHistograms does; the groups' labels drop __name__, so two metrics
// with the same other labels are two groups with one labelset, which
// checkDistinct refuses. The native histograms of vec come back apart;
// one whose labels equal a group's (without le) conflicts with it, and
// both are left out with a warning.
func (ev *evaluator) classicHistograms(vec Vector) ([]*bucketGroup, []Sample) {
	groups := map[string]*bucketGroup{}
	var order []*bucketGroup
	var natives []Sample
	for _, s := range vec {
		if s.H != nil {
			natives = append(natives, s)
			continue
		}
		le := s.Metric.Get("le")
		upper, err := strconv.ParseFloat(le, 64)
		if err != nil || math.IsNaN(upper) {
			ev.warn("PromQL warning: bucket label %q is missing or has a malformed value of %q%s", "le", le, forMetricName(s.Metric.Get(model.MetricNameLabel)))
			continue
		}
		key := labels.NewBuilder(s.Metric).Del("le").Labels().String()
		g := groups[key]
		if g == nil {
			gl := labels.NewBuilder(s.Metric).Del("le")
			if ev.delayNameRemoval {
				gl.Set(dropNameLabel, "1")
			} else {
				gl.Del(model.MetricNameLabel)
			}
			g = &bucketGroup{ls: gl.Labels(), name: s.Metric.Get(model.MetricNameLabel)}
			groups[key] = g
			order = append(order, g)
		}
		g.buckets = append(g.buckets, bucket{upper, s.F})
	}
	if len(natives) > 0 && len(groups) > 0 {
		kept := natives[:0]
		for _, s := range natives {
			if g := groups[s.Metric.String()]; g != nil && len(g.buckets) > 0 {
				ev.warnMixedClassicNative(s.Metric.Get(model.MetricNameLabel))
				g.buckets = nil
				continue
			}
			kept = append(kept, s)
		}
		natives = kept
	}
	return order, natives
}

// forMetricName is the suffix Prometheus's annotations give a metric name
// (maybeAddMetricName): none when the name is empty.
func forMetricName(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" for metric name %q", name)
}

// checkDistinct fails the query, as Prometheus does, when two samples of
// one step's output have the same labels.
func (ev *evaluator) checkDistinct(out Vector) {
	if len(out) < 2 {
		return
	}
	seen := make(map[string]struct{}, len(out))
	for _, s := range out {
		k := s.Metric.String()
		if _, ok := seen[k]; ok {
			ev.failf("vector cannot contain metrics with the same labelset")
		}
		seen[k] = struct{}{}
	}
}

func (ev *evaluator) histogramQuantile(q, v Matrix) Matrix {
	return ev.rangeEval(func(k int, ts int64, a []Vector) Vector {
		phi := scalarAt(q, k)
		if phi < 0 || phi > 1 || math.IsNaN(phi) {
			ev.warn("PromQL warning: quantile value should be between 0 and 1, got %v", phi)
		}
		var out Vector
		groups, natives := ev.classicHistograms(a[1])
		for _, s := range natives {
			out = append(out, Sample{Metric: ev.dropName(s.Metric), T: ts, F: ev.nativeQuantile(phi, s.H, s.Metric.Get(model.MetricNameLabel))})
		}
		for _, g := range groups {
			if len(g.buckets) == 0 {
				continue
			}
			val, forced := bucketQuantile(phi, g.buckets)
			if forced {
				ev.info("PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)%s", forMetricName(g.name))
			}
			out = append(out, Sample{Metric: g.ls, T: ts, F: val})
		}
		ev.checkDistinct(out)
		return out
	}, q, v)
}

func (ev *evaluator) histogramFraction(lo, hi, v Matrix) Matrix {
	return ev.rangeEval(func(k int, ts int64, a []Vector) Vector {
		var out Vector
		groups, natives := ev.classicHistograms(a[2])
		for _, s := range natives {
			out = append(out, Sample{Metric: ev.dropName(s.Metric), T: ts, F: ev.nativeFraction(scalarAt(lo, k), scalarAt(hi, k), s.H, s.Metric.Get(model.MetricNameLabel))})
		}
		for _, g := range groups {
			if len(g.buckets) == 0 {
				continue
			}
			out = append(out, Sample{Metric: g.ls, T: ts, F: bucketFraction(scalarAt(lo, k), scalarAt(hi, k), g.buckets)})
		}
		ev.checkDistinct(out)
		return out
	}, lo, hi, v)
}

func sortBuckets(bs []bucket) []bucket {
	slices.SortFunc(bs, func(a, b bucket) int {
		switch {
		case a.upper < b.upper:
			return -1
		case a.upper > b.upper:
			return 1
		}
		return 0
	})
	if len(bs) == 0 {
		return bs
	}
	merged := bs[:1]
	for _, b := range bs[1:] {
		if b.upper == merged[len(merged)-1].upper {
			merged[len(merged)-1].count += b.count
		} else {
			merged = append(merged, b)
		}
	}
	return merged
}

// bucketFraction estimates the share of observations between lower and
// upper, interpolating linearly inside buckets; the first bucket starts at
// 0 when its upper bound is positive, and nothing is interpolated inside a
// bucket of infinite width.
func bucketFraction(lower, upper float64, bs []bucket) float64 {
	bs = sortBuckets(bs)
	if len(bs) == 0 || !math.IsInf(bs[len(bs)-1].upper, 1) {
		return math.NaN()
	}
	count := bs[len(bs)-1].count
	if count == 0 || math.IsNaN(lower) || math.IsNaN(upper) {
		return math.NaN()
	}
	if lower >= upper {
		return 0
	}
	var rank, lowerRank, upperRank float64
	var lowerSet, upperSet bool
	for i, b := range bs {
		lb := math.Inf(-1)
		if i > 0 {
			lb = bs[i-1].upper
		} else if b.upper > 0 {
			lb = 0
		}
		ub := b.upper
		interp := func(v float64) float64 {
			switch {
			case math.IsInf(lb, -1):
				return b.count
			case math.IsInf(ub, 1):
				return rank
			}
			return rank + (b.count-rank)*(v-lb)/(ub-lb)
		}
		if !lowerSet && lb >= lower {
			lowerRank, lowerSet = rank, true
		}
		if !upperSet && lb >= upper {
			upperRank, upperSet = rank, true
		}
		if lowerSet && upperSet {
			break
		}
		if !lowerSet && lb < lower && ub > lower {
			lowerRank, lowerSet = interp(lower), true
		}
		if !upperSet && lb < upper && ub > upper {
			upperRank, upperSet = interp(upper), true
		}
		if lowerSet && upperSet {
			break
		}
		rank = b.count
	}
	if !lowerSet || lowerRank > count {
		lowerRank = count
	}
	if !upperSet || upperRank > count {
		upperRank = count
	}
	return (upperRank - lowerRank) / count
}

func bucketQuantile(q float64, bs []bucket) (float64, bool) {
	if math.IsNaN(q) {
		return math.NaN(), false
	}
	if q < 0 {
		return math.Inf(-1), false
	}
	if q > 1 {
		return math.Inf(1), false
	}
	bs = sortBuckets(bs)
	if len(bs) == 0 || !math.IsInf(bs[len(bs)-1].upper, 1) {
		return math.NaN(), false
	}
	forced := false
	prev := bs[0].count
	for i := 1; i < len(bs); i++ {
		cur := bs[i].count
		switch {
		case cur == prev:
		case almostEqual(prev, cur, 1e-12):
			bs[i].count = prev
		case cur < prev:
			bs[i].count = prev
			forced = true
		default:
			prev = cur
		}
	}
	if len(bs) < 2 {
		return math.NaN(), forced
	}
	obs := bs[len(bs)-1].count
	if obs == 0 {
		return math.NaN(), forced
	}
	rank := q * obs
	b := sort.Search(len(bs)-1, func(i int) bool { return bs[i].count >= rank })
	if b == len(bs)-1 {
		return bs[len(bs)-2].upper, forced
	}
	if b == 0 && bs[0].upper <= 0 {
		return bs[0].upper, forced
	}
	var start float64
	end, count := bs[b].upper, bs[b].count
	if b > 0 {
		start = bs[b-1].upper
		count -= bs[b-1].count
		rank -= bs[b-1].count
	}
	return start + (end-start)*(rank/count), forced
}

func almostEqual(a, b, eps float64) bool {
	const minNormal = 2.2250738585072014e-308
	if a == b {
		return true
	}
	absSum := math.Abs(a) + math.Abs(b)
	diff := math.Abs(a - b)
	if a == 0 || b == 0 || absSum < minNormal {
		return diff < eps*minNormal
	}
	return diff/math.Min(absSum, math.MaxFloat64) < eps
}

var _ = storage.StaleNaN
