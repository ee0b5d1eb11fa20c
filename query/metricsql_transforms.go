package query

import (
	"math"
	"math/rand"
	"sort"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/labels"
)

// MetricsQL's transform functions that look along a series, as
// VictoriaMetrics's app/vmselect/promql/transform.go computes them, over
// dense series (a value at every step of the query, NaN where none).

// vmSeriesTransforms change the values of one series in place; the
// scalar arguments (all but the series, in order) come at every step.
// The series is the last argument, except where seriesFirst says.
var vmSeriesTransforms = map[string]struct {
	nargs       int
	seriesFirst bool
	dropName    bool // drops __name__ even with keep_metric_names
	fn          func(v []float64, ts func(int) int64, s [][]float64)
}{
	"running_sum": {1, false, true, func(v []float64, _ func(int) int64, _ [][]float64) {
		vmRunning(v, func(a, b float64, _ int) float64 { return a + b })
	}},
	"running_avg": {1, false, true, func(v []float64, _ func(int) int64, _ [][]float64) { vmRunning(v, vmRunningAvg) }},
	"running_min": {1, false, true, func(v []float64, _ func(int) int64, _ [][]float64) {
		vmRunning(v, func(a, b float64, _ int) float64 { return min(a, b) })
	}},
	"running_max": {1, false, true, func(v []float64, _ func(int) int64, _ [][]float64) {
		vmRunning(v, func(a, b float64, _ int) float64 { return max(a, b) })
	}},
	"keep_last_value": {1, false, false, func(v []float64, _ func(int) int64, _ [][]float64) {
		last := v[0]
		for i, x := range v {
			if !math.IsNaN(x) {
				last = x
				continue
			}
			v[i] = last
		}
	}},
	"keep_next_value": {1, false, false, func(v []float64, _ func(int) int64, _ [][]float64) {
		next := v[len(v)-1]
		for i := len(v) - 1; i >= 0; i-- {
			if !math.IsNaN(v[i]) {
				next = v[i]
				continue
			}
			v[i] = next
		}
	}},
	"interpolate":   {1, false, false, func(v []float64, _ func(int) int64, _ [][]float64) { vmInterpolate(v) }},
	"remove_resets": {1, false, false, func(v []float64, _ func(int) int64, _ [][]float64) { vmRemoveResets(v) }},
	"range_stddev": {1, false, false, func(v []float64, _ func(int) int64, _ [][]float64) {
		fill(v, math.Sqrt(vmStdvar(v)))
	}},
	"range_stdvar": {1, false, false, func(v []float64, _ func(int) int64, _ [][]float64) { fill(v, vmStdvar(v)) }},
	"range_mad":    {1, false, false, func(v []float64, _ func(int) int64, _ [][]float64) { fill(v, vmMAD(v)) }},
	"range_zscore": {1, false, false, func(v []float64, _ func(int) int64, _ [][]float64) {
		sd, avg := math.Sqrt(vmStdvar(v)), vmMean(v)
		for i, x := range v {
			v[i] = (x - avg) / sd
		}
	}},
	"range_trim_zscore": {2, false, false, func(v []float64, _ func(int) int64, s [][]float64) {
		z := math.Abs(s[0][0])
		sd, avg := math.Sqrt(vmStdvar(v)), vmMean(v)
		for i, x := range v {
			if math.Abs(x-avg)/sd > z {
				v[i] = math.NaN()
			}
		}
	}},
	"range_trim_outliers": {2, false, false, func(v []float64, _ func(int) int64, s [][]float64) {
		dMax := s[0][0] * vmMAD(v)
		med := vmQuantile(0.5, v)
		for i, x := range v {
			if math.Abs(x-med) > dMax {
				v[i] = math.NaN()
			}
		}
	}},
	"range_trim_spikes": {2, false, false, func(v []float64, _ func(int) int64, s [][]float64) {
		phi := s[0][0] / 2
		a := make([]float64, 0, len(v))
		for _, x := range v {
			if !math.IsNaN(x) {
				a = append(a, x)
			}
		}
		sort.Float64s(a)
		hi, lo := vmQuantileSorted(1-phi, a), vmQuantileSorted(phi, a)
		for i, x := range v {
			if x > hi || x < lo {
				v[i] = math.NaN()
			}
		}
	}},
	"range_linear_regression": {1, false, false, func(v []float64, ts func(int) int64, _ [][]float64) {
		t0 := ts(0)
		icpt, slope := vmLinearRegression(v, ts, t0)
		for i := range v {
			v[i] = icpt + slope*float64(ts(i)-t0)/1e3
		}
	}},
	"smooth_exponential": {2, true, false, func(v []float64, _ func(int) int64, s [][]float64) {
		// Leading NaNs, then leading infinities, are left as they are.
		i := 0
		for i < len(v) && math.IsNaN(v[i]) {
			i++
		}
		j := i
		for j < len(v) && math.IsInf(v[j], 0) {
			j++
		}
		if j < len(v) {
			i = j
		}
		if i >= len(v) {
			return
		}
		avg := v[i]
		for i++; i < len(v); i++ {
			x := v[i]
			switch {
			case math.IsNaN(x):
				continue
			case math.IsInf(x, 0):
				v[i] = avg
				continue
			}
			sf := s[0][i]
			if math.IsNaN(sf) {
				sf = 1
			}
			sf = math.Max(0, math.Min(1, sf))
			avg = avg*(1-sf) + x*sf
			v[i] = avg
		}
	}},
}

func fill(v []float64, x float64) {
	for i := range v {
		v[i] = x
	}
}

func vmRunningAvg(a, b float64, idx int) float64 { return a + (b-a)/float64(idx+1) }

// vmRunning replaces every value from the first non-NaN one on by the
// running aggregate so far (a NaN takes the aggregate before it).
func vmRunning(v []float64, f func(a, b float64, idx int) float64) {
	i := 0
	for i < len(v) && math.IsNaN(v[i]) {
		i++
	}
	if i >= len(v) {
		return
	}
	prev := v[i]
	rest := v[i+1:]
	for j, x := range rest {
		if !math.IsNaN(x) {
			prev = f(prev, x, j+1)
		}
		rest[j] = prev
	}
}

// vmInterpolate fills the NaNs between two values linearly.
func vmInterpolate(all []float64) {
	lo, hi := 0, len(all)
	for lo < hi && math.IsNaN(all[lo]) {
		lo++
	}
	for hi > lo && math.IsNaN(all[hi-1]) {
		hi--
	}
	v := all[lo:hi]
	prev := math.NaN()
	for i := 0; i < len(v); i++ {
		if !math.IsNaN(v[i]) {
			continue
		}
		if i > 0 {
			prev = v[i-1]
		}
		j := i + 1
		for j < len(v) && math.IsNaN(v[j]) {
			j++
		}
		next := prev
		if j < len(v) {
			next = v[j]
		}
		if math.IsNaN(prev) {
			prev = next
		}
		delta := (next - prev) / float64(j-i+1)
		for ; i < j; i++ {
			prev += delta
			v[i] = prev
		}
	}
}

// vmRemoveResets adds, after every drop of a counter, what it lost.
func vmRemoveResets(v []float64) {
	i := 0
	for i < len(v) && math.IsNaN(v[i]) {
		i++
	}
	if i >= len(v) {
		return
	}
	v = v[i:]
	var correction float64
	prev := v[0]
	for j, x := range v {
		if math.IsNaN(x) {
			continue
		}
		if d := x - prev; d < 0 {
			if -d*8 < prev {
				correction += prev - x // a partial reset
			} else {
				correction += prev
			}
		}
		prev = x
		v[j] = x + correction
	}
}

// vmLinearRegression fits v (NaNs left out) at times ts(i) and returns
// the value at t0 and the slope per second.
func vmLinearRegression(v []float64, ts func(int) int64, t0 int64) (float64, float64) {
	if len(v) == 0 {
		return math.NaN(), math.NaN()
	}
	same := true
	for _, x := range v[1:] {
		if x != v[0] {
			same = false
			break
		}
	}
	if same {
		return v[0], 0
	}
	var vSum, tSum, tvSum, ttSum float64
	n := 0
	for i, x := range v {
		if math.IsNaN(x) {
			continue
		}
		dt := float64(ts(i)-t0) / 1e3
		vSum += x
		tSum += dt
		tvSum += dt * x
		ttSum += dt * dt
		n++
	}
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	k := 0.0
	if tDiff := ttSum - tSum*tSum/float64(n); math.Abs(tDiff) >= 1e-6 {
		k = (tvSum - tSum*vSum/float64(n)) / tDiff
	}
	return vSum/float64(n) - k*tSum/float64(n), k
}

// callMetricsQLTransform evaluates the transform functions of
// vmSeriesTransforms, range_normalize, drop_empty_series and
// drop_common_labels; ok is false for any other name.
func (ev *evaluator) callMetricsQLTransform(fe *metricsql.FuncExpr) (Matrix, bool) {
	switch fe.Name {
	case "drop_empty_series":
		ev.wantArgs(fe, 1)
		return ev.eval(fe.Args[0]), true
	case "range_normalize":
		var out []denseSeries
		for _, a := range fe.Args {
			for _, d := range ev.densify(ev.eval(a)) {
				lo, hi := math.Inf(1), math.Inf(-1)
				for _, x := range d.v {
					if !math.IsNaN(x) {
						lo, hi = math.Min(lo, x), math.Max(hi, x)
					}
				}
				if math.IsInf(hi-lo, 0) {
					ev.addSamples(-len(d.v))
					continue
				}
				for i, x := range d.v {
					d.v[i] = (x - lo) / (hi - lo)
				}
				out = append(out, d)
			}
		}
		return ev.sparsify(out), true
	case "drop_common_labels":
		if len(fe.Args) < 1 {
			ev.fail(badData("expected at least 1 argument in call to %q", fe.Name))
		}
		var m Matrix
		for _, a := range fe.Args {
			m = append(m, ev.eval(a)...)
		}
		counts := map[labels.Label]int{}
		for _, s := range m {
			ev.spend(1)
			s.Metric.Range(func(l labels.Label) { counts[l]++ })
		}
		var common []string
		for l, c := range counts {
			if c == len(m) {
				common = append(common, l.Name)
			}
		}
		for i := range m {
			m[i].Metric = labels.NewBuilder(m[i].Metric).Del(common...).Labels()
		}
		return ev.checkDuplicates(m), true
	}
	def, ok := vmSeriesTransforms[fe.Name]
	if !ok {
		return nil, false
	}
	ev.wantArgs(fe, def.nargs)
	series := len(fe.Args) - 1
	if def.seriesFirst {
		series = 0
	}
	var scalars [][]float64
	for i, a := range fe.Args {
		if i != series {
			scalars = append(scalars, ev.scalarSteps(ev.eval(a)))
		}
	}
	ds := ev.densify(ev.eval(fe.Args[series]))
	ts := ev.stepTime
	for i := range ds {
		ev.spend(len(ds[i].v))
		def.fn(ds[i].v, ts, scalars)
		if def.dropName {
			ds[i].ls = ev.dropName(ds[i].ls)
		}
	}
	return ev.sparsify(ds), true
}

// callVMValues evaluates bitmap_and, bitmap_or, bitmap_xor, now, rand,
// rand_normal and rand_exponential as VictoriaMetrics does; ok is false
// for any other name.
func (ev *evaluator) callVMValues(fe *metricsql.FuncExpr) (Matrix, bool) {
	switch fe.Name {
	case "bitmap_and", "bitmap_or", "bitmap_xor":
		// The values and the mask as unsigned integers; __name__ is
		// dropped unless keep_metric_names.
		ev.wantArgs(fe, 2)
		op := map[string]func(a, b uint64) uint64{
			"bitmap_and": func(a, b uint64) uint64 { return a & b },
			"bitmap_or":  func(a, b uint64) uint64 { return a | b },
			"bitmap_xor": func(a, b uint64) uint64 { return a ^ b },
		}[fe.Name]
		mask := ev.scalarSteps(ev.eval(fe.Args[1]))
		return ev.vmDense(ev.eval(fe.Args[0]), func(ds []denseSeries) []denseSeries {
			for i := range ds {
				for k, v := range ds[i].v {
					if w := mask[k]; !math.IsNaN(v) && !math.IsNaN(w) {
						ds[i].v[k] = float64(op(uint64(v), uint64(w)))
					} else {
						ds[i].v[k] = math.NaN()
					}
				}
				if !fe.KeepMetricNames {
					ds[i].ls = ev.dropName(ds[i].ls)
				}
			}
			return ds
		}), true
	case "now":
		// The time the query is evaluated, in seconds, at every step.
		ev.wantArgs(fe, 0)
		return ev.constant(float64(time.Now().UnixNano()) / 1e9), true
	case "rand", "rand_normal", "rand_exponential":
		// A number at every step from a generator seeded by the argument,
		// or by the clock.
		if len(fe.Args) > 1 {
			ev.fail(badData("unexpected number of args; got %d; want 0 or 1", len(fe.Args)))
		}
		seed := time.Now().UnixNano()
		if len(fe.Args) == 1 {
			seed = int64(scalarAt(ev.eval(fe.Args[0]), 0))
		}
		r := rand.New(rand.NewSource(seed))
		next := map[string]func() float64{"rand": r.Float64, "rand_normal": r.NormFloat64, "rand_exponential": r.ExpFloat64}[fe.Name]
		m := ev.constant(0)
		for k := range m[0].Points {
			m[0].Points[k].F = next()
		}
		return m, true
	}
	return nil, false
}

// vmSgn is sgn as VictoriaMetrics answers it in a MetricsQL-only query:
// over its dense series, where a step without a value is NaN, which its
// sgn turns into 0 (neither below nor above zero), so a series answers
// 0 at every step it has no value at.
func (ev *evaluator) vmSgn(fe *metricsql.FuncExpr) Matrix {
	return ev.vmDense(ev.eval(fe.Args[0]), func(ds []denseSeries) []denseSeries {
		for i := range ds {
			for k, v := range ds[i].v {
				switch {
				case v < 0:
					ds[i].v[k] = -1
				case v > 0:
					ds[i].v[k] = 1
				default:
					ds[i].v[k] = 0
				}
			}
			if !fe.KeepMetricNames {
				ds[i].ls = ev.dropName(ds[i].ls)
			}
		}
		return ds
	})
}
