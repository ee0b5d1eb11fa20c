package query

import (
	"math"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
)

// denseSeries is a series as VictoriaMetrics holds it while it evaluates:
// a value at every step, NaN where there is none. MetricsQL's transform
// and aggregate functions that look along a series (running_sum,
// topk_avg, interpolate, …) are written over it, as VictoriaMetrics
// writes them, so that they answer as it does.
type denseSeries struct {
	ls labels.Labels
	v  []float64
}

// densify turns m into dense series, leaving out those with no float
// point (VictoriaMetrics drops empty series before aggregating) and the
// native histograms (MetricsQL has none). It consumes m; the dense
// values count as samples held until sparsify.
func (ev *evaluator) densify(m Matrix) []denseSeries {
	n := ev.numSteps()
	out := make([]denseSeries, 0, len(m))
	for _, s := range m {
		ev.spend(n + len(s.Points))
		var v []float64
		for j, p := range s.Points {
			k := ev.stepIndex(p.T)
			if s.H(j) != nil || k < 0 || math.IsNaN(p.F) {
				continue
			}
			if v == nil {
				v = nanSlice(n)
			}
			v[k] = p.F
		}
		if v != nil {
			out = append(out, denseSeries{ls: s.Metric, v: v})
		}
	}
	ev.release(m)
	ev.addSamples(n * len(out))
	return out
}

// sparsify turns dense series back into a Matrix, leaving out the NaNs
// and the series left with nothing, and releases the dense values.
// Series with equal labels are merged (failing when two have a point at
// the same step).
func (ev *evaluator) sparsify(ds []denseSeries) Matrix {
	ev.addSamples(-ev.numSteps() * len(ds))
	out := make(Matrix, 0, len(ds))
	for _, d := range ds {
		ev.spend(len(d.v))
		var pts []Point
		for k, v := range d.v {
			if !math.IsNaN(v) {
				pts = append(pts, Point{T: ev.stepTime(k), F: v})
			}
		}
		if len(pts) > 0 {
			ev.addSamples(len(pts))
			out = append(out, Series{Metric: d.ls, Points: pts})
		}
	}
	return ev.checkDuplicates(out)
}

// stepIndex is the step whose time is t, -1 when t is no step's time.
func (ev *evaluator) stepIndex(t int64) int {
	if t < ev.start || t > ev.end || (t-ev.start)%ev.interval != 0 {
		return -1
	}
	return int((t - ev.start) / ev.interval)
}

func nanSlice(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = math.NaN()
	}
	return v
}

// scalarSteps is a scalar argument's value at every step.
func (ev *evaluator) scalarSteps(m Matrix) []float64 {
	n := ev.numSteps()
	out := make([]float64, n)
	for k := range out {
		out[k] = scalarAt(m, k)
	}
	return out
}

// vmQuantile is VictoriaMetrics's quantile: NaNs are left out, and a phi
// outside [0, 1] is -Inf or +Inf. It does not change vals.
func vmQuantile(phi float64, vals []float64) float64 {
	a := make([]float64, 0, len(vals))
	for _, v := range vals {
		if !math.IsNaN(v) {
			a = append(a, v)
		}
	}
	sort.Float64s(a)
	return vmQuantileSorted(phi, a)
}

func vmQuantileSorted(phi float64, a []float64) float64 {
	if len(a) == 0 || math.IsNaN(phi) {
		return math.NaN()
	}
	if phi < 0 {
		return math.Inf(-1)
	}
	if phi > 1 {
		return math.Inf(1)
	}
	n := float64(len(a))
	rank := phi * (n - 1)
	lo := math.Max(0, math.Floor(rank))
	hi := math.Min(n-1, lo+1)
	w := rank - math.Floor(rank)
	return a[int(lo)]*(1-w) + a[int(hi)]*w
}

// vmMAD is the median absolute deviation of the non-NaN values.
func vmMAD(vals []float64) float64 {
	med := vmQuantile(0.5, vals)
	d := make([]float64, 0, len(vals))
	for _, v := range vals {
		if !math.IsNaN(v) {
			d = append(d, math.Abs(v-med))
		}
	}
	return vmQuantile(0.5, d)
}

// vmStdvar is the population variance of the non-NaN values (NaN when
// there are none).
func vmStdvar(vals []float64) float64 {
	var avg, count, q float64
	for _, v := range vals {
		if math.IsNaN(v) {
			continue
		}
		count++
		avgNew := avg + (v-avg)/count
		q += (v - avg) * (v - avgNew)
		avg = avgNew
	}
	if count == 0 {
		return math.NaN()
	}
	return q / count
}

// vmMean is the mean of the non-NaN values.
func vmMean(vals []float64) float64 {
	var sum float64
	n := 0
	for _, v := range vals {
		if !math.IsNaN(v) {
			sum += v
			n++
		}
	}
	return sum / float64(n)
}

// lessNaNFirst orders a before b with NaN below every number, as
// VictoriaMetrics's lessWithNaNs.
func lessNaNFirst(a, b float64) bool {
	if math.IsNaN(a) {
		return !math.IsNaN(b)
	}
	if math.IsNaN(b) {
		return false
	}
	return a < b
}

// greaterNaNFirst orders a before b with NaN above every number, as
// VictoriaMetrics's greaterWithNaNs.
func greaterNaNFirst(a, b float64) bool {
	if math.IsNaN(a) {
		return !math.IsNaN(b)
	}
	if math.IsNaN(b) {
		return false
	}
	return a > b
}
