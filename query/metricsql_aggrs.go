package query

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/labels"
)

// MetricsQL's own aggregate functions, as VictoriaMetrics's
// app/vmselect/promql/aggr.go computes them: over whole series (a value
// at every step), so that topk_avg can rank series by their average over
// the range.

// vmRangeRank are the topk_* and bottomk_* functions: the value a series
// is ranked by.
var vmRangeRank = map[string]func([]float64) float64{
	"avg": func(v []float64) float64 {
		sum, n := 0.0, 0
		for _, x := range v {
			if !math.IsNaN(x) {
				sum += x
				n++
			}
		}
		if n == 0 {
			return math.NaN()
		}
		return sum / float64(n)
	},
	"max": func(v []float64) float64 {
		m := math.NaN()
		for _, x := range v {
			if math.IsNaN(m) || x > m {
				m = x
			}
		}
		return m
	},
	"min": func(v []float64) float64 {
		m := math.NaN()
		for _, x := range v {
			if math.IsNaN(m) || x < m {
				m = x
			}
		}
		return m
	},
	"median": func(v []float64) float64 { return vmQuantile(0.5, v) },
	"last": func(v []float64) float64 {
		for i := len(v) - 1; i >= 0; i-- {
			if !math.IsNaN(v[i]) {
				return v[i]
			}
		}
		return math.NaN()
	},
}

// aggregateMetricsQL evaluates the aggregate functions only MetricsQL
// has; ok is false for any other name.
func (ev *evaluator) aggregateMetricsQL(ae *metricsql.AggrFuncExpr) (Matrix, bool) {
	name := ae.Name
	var rank func([]float64) float64
	top := false
	switch {
	case strings.HasPrefix(name, "topk_"):
		rank, top = vmRangeRank[strings.TrimPrefix(name, "topk_")], true
	case strings.HasPrefix(name, "bottomk_"):
		rank = vmRangeRank[strings.TrimPrefix(name, "bottomk_")]
	}
	nargs := map[string]int{"median": 1, "share": 1, "zscore": 1, "mode": 1, "sum2": 1, "geomean": 1, "distinct": 1,
		"mad": 1, "outliers_iqr": 1, "outliers_mad": 2, "outliersk": 2, "any": 1, "histogram": 1}
	want, known := nargs[name]
	switch {
	case rank != nil:
		if len(ae.Args) < 2 || len(ae.Args) > 3 {
			ev.fail(badData("expected 2 or 3 arguments in call to %q, got %d", name, len(ae.Args)))
		}
	case name == "quantiles":
		if len(ae.Args) < 3 {
			ev.fail(badData("expected at least 3 arguments in call to %q, got %d", name, len(ae.Args)))
		}
	case known:
		if len(ae.Args) != want {
			ev.fail(badData("expected %d argument(s) in call to %q, got %d", want, name, len(ae.Args)))
		}
	default:
		return nil, false
	}
	without := strings.EqualFold(ae.Modifier.Op, "without")
	grouping := ae.Modifier.Args
	var param []float64
	var str string
	switch {
	case rank != nil || name == "outliers_mad" || name == "outliersk":
		param = ev.scalarSteps(ev.eval(ae.Args[0]))
		if rank != nil && len(ae.Args) == 3 {
			s, ok := ae.Args[2].(*metricsql.StringExpr)
			if !ok {
				ev.fail(badData("expected a string as the third argument of %q", name))
			}
			str = s.S
		}
	case name == "quantiles":
		s, ok := ae.Args[0].(*metricsql.StringExpr)
		if !ok {
			ev.fail(badData("expected a label name string as the first argument of %q", name))
		}
		str = s.S
		for _, a := range ae.Args[1 : len(ae.Args)-1] {
			param = append(param, scalarAt(ev.eval(a), 0))
		}
	}
	ds := ev.densify(ev.eval(ae.Args[len(ae.Args)-1]))
	n := ev.numSteps()

	// Groups in the order their first series comes.
	type group struct {
		ls labels.Labels
		ss []denseSeries
	}
	var groups []*group
	index := map[uint64][]*group{}
	for _, d := range ds {
		ev.spend(1)
		gl := groupLabels(d.ls, grouping, without)
		h := gl.Hash()
		var g *group
		for _, x := range index[h] {
			if labels.Equal(x.ls, gl) {
				g = x
			}
		}
		if g == nil {
			g = &group{ls: gl}
			index[h] = append(index[h], g)
			groups = append(groups, g)
		}
		g.ss = append(g.ss, d)
	}

	var out []denseSeries
	col := make([]float64, 0, len(ds))
	column := func(ss []denseSeries, k int) []float64 {
		col = col[:0]
		for _, s := range ss {
			col = append(col, s.v[k])
		}
		return col
	}
	for _, g := range groups {
		ev.spend(n * len(g.ss))
		switch {
		case rank != nil:
			out = append(out, vmRangeTopK(g.ss, g.ls, param, str, rank, top)...)
		case name == "outliersk":
			medians := make([]float64, n)
			for k := range n {
				medians[k] = vmQuantile(0.5, column(g.ss, k))
			}
			out = append(out, vmRangeTopK(g.ss, g.ls, param, "", func(v []float64) float64 {
				sum2 := 0.0
				for k, x := range v {
					d := x - medians[k]
					sum2 += d * d
				}
				return sum2
			}, true)...)
		case name == "quantiles":
			qs := make([]denseSeries, len(param))
			for j, phi := range param {
				qs[j] = denseSeries{ls: labels.NewBuilder(g.ls).Set(str, fmt.Sprintf("%g", phi)).Labels(), v: nanSlice(n)}
			}
			for k := range n {
				c := column(g.ss, k)
				sorted := make([]float64, 0, len(c))
				for _, v := range c {
					if !math.IsNaN(v) {
						sorted = append(sorted, v)
					}
				}
				sort.Float64s(sorted)
				for j, phi := range param {
					qs[j].v[k] = vmQuantileSorted(phi, sorted)
				}
			}
			out = append(out, qs...)
		case name == "share" || name == "zscore":
			for k := range n {
				c := column(g.ss, k)
				if name == "share" {
					sum := 0.0
					for _, v := range c {
						if !math.IsNaN(v) && v >= 0 {
							sum += v
						}
					}
					for _, s := range g.ss {
						if v := s.v[k]; v < 0 {
							s.v[k] = math.NaN()
						} else {
							s.v[k] = v / sum
						}
					}
					continue
				}
				avg, sd := vmMean(c), math.Sqrt(vmStdvar(c))
				for _, s := range g.ss {
					s.v[k] = (s.v[k] - avg) / sd
				}
			}
			out = append(out, g.ss...)
		case name == "any":
			// The group's first series, its labels kept (VictoriaMetrics
			// keeps the first it meets, in no promised order).
			out = append(out, g.ss[0])
		case name == "histogram":
			// VictoriaMetrics's histogram of the group's values at every
			// step (the `vmrange` buckets of github.com/VictoriaMetrics/
			// metrics), as cumulative `le` buckets.
			out = append(out, vmBucketsToLE(vmHistogramSteps(g.ls, g.ss, n))...)
		case name == "outliers_iqr" || name == "outliers_mad":
			lo, hi := make([]float64, n), make([]float64, n)
			for k := range n {
				c := column(g.ss, k)
				if name == "outliers_iqr" {
					q25, q75 := vmQuantile(0.25, c), vmQuantile(0.75, c)
					iqr := 1.5 * (q75 - q25)
					lo[k], hi[k] = q25-iqr, q75+iqr
					continue
				}
				med := vmQuantile(0.5, c)
				mad := vmMAD(c) * param[k]
				lo[k], hi[k] = med-mad, med+mad
			}
			for _, s := range g.ss {
				for k, v := range s.v {
					// |v - median| > mad, and v outside the IQR bounds.
					if v > hi[k] || v < lo[k] {
						out = append(out, s)
						break
					}
				}
			}
		default:
			// One series per group, labelled by the group.
			r := denseSeries{ls: g.ls, v: make([]float64, n)}
			for k := range n {
				r.v[k] = vmAggrColumn(name, column(g.ss, k))
			}
			out = append(out, r)
		}
	}
	// Account for the dense series made and dropped since densify.
	ev.addSamples(n*len(out) - n*len(ds))
	return ev.sparsify(out), true
}

// vmHistogramSteps counts the values of ss at every step in
// VictoriaMetrics's `vmrange` buckets: a series labelled ls and vmrange
// per bucket met, 0 at the steps without a value in it.
func vmHistogramSteps(ls labels.Labels, ss []denseSeries, n int) []denseSeries {
	var h metrics.Histogram
	var out []denseSeries
	index := map[string]int{}
	for k := range n {
		h.Reset()
		for _, s := range ss {
			h.Update(s.v[k])
		}
		h.VisitNonZeroBuckets(func(vmrange string, c uint64) {
			i, ok := index[vmrange]
			if !ok {
				i = len(out)
				index[vmrange] = i
				out = append(out, denseSeries{ls: labels.NewBuilder(ls).Set("vmrange", vmrange).Labels(), v: make([]float64, n)})
			}
			out[i].v[k] = float64(c)
		})
	}
	return out
}

// vmAggrColumn aggregates the values of a group at one step into one.
func vmAggrColumn(name string, c []float64) float64 {
	switch name {
	case "median":
		return vmQuantile(0.5, c)
	case "mad":
		return vmMAD(c)
	case "mode":
		a := make([]float64, 0, len(c))
		for _, v := range c {
			if !math.IsNaN(v) {
				a = append(a, v)
			}
		}
		return vmMode(math.NaN(), a)
	case "distinct":
		seen := map[float64]bool{}
		for _, v := range c {
			if !math.IsNaN(v) {
				seen[v] = true
			}
		}
		if len(seen) == 0 {
			return math.NaN()
		}
		return float64(len(seen))
	case "sum2", "geomean":
		acc, n := 0.0, 0
		if name == "geomean" {
			acc = 1
		}
		for _, v := range c {
			if math.IsNaN(v) {
				continue
			}
			if name == "sum2" {
				acc += v * v
			} else {
				acc *= v
			}
			n++
		}
		if n == 0 {
			return math.NaN()
		}
		if name == "geomean" {
			return math.Pow(acc, 1/float64(n))
		}
		return acc
	}
	return math.NaN()
}

// vmMode is the most frequent value of a (no NaNs; a is sorted in
// place), the smallest of equally frequent ones; prev when a is empty.
func vmMode(prev float64, a []float64) float64 {
	if len(a) == 0 {
		return prev
	}
	sort.Float64s(a)
	j, dMax, mode := -1, 0, prev
	for i, v := range a {
		if prev == v {
			continue
		}
		if d := i - j; d > dMax || math.IsNaN(mode) {
			dMax, mode = d, prev
		}
		j, prev = i, v
	}
	if d := len(a) - j; d > dMax || math.IsNaN(mode) {
		mode = prev
	}
	return mode
}

// vmRangeTopK keeps, at every step k, the ks[k] series of ss ranked
// highest (top) or lowest by rank over the whole range; with other set
// ("label" or "label=value") it adds a series of the sum of the others.
func vmRangeTopK(ss []denseSeries, gl labels.Labels, ks []float64, other string, rank func([]float64) float64, top bool) []denseSeries {
	type ranked struct {
		s denseSeries
		r float64
	}
	rs := make([]ranked, len(ss))
	for i, s := range ss {
		rs[i] = ranked{s, rank(s.v)}
	}
	less := greaterNaNFirst
	if top {
		less = lessNaNFirst
	}
	// Ascending in rank: the kept series are the last ones.
	sort.SliceStable(rs, func(i, j int) bool { return less(rs[i].r, rs[j].r) })
	var rest *denseSeries
	if other != "" && len(rs) > 0 {
		name, value := other, other
		if i := strings.IndexByte(other, '='); i >= 0 {
			name, value = other[:i], other[i+1:]
		}
		// Labelled as the group, from the lowest-ranked series.
		rest = &denseSeries{ls: labels.NewBuilder(gl).Set(name, value).Labels(), v: make([]float64, len(ks))}
		for k, kv := range ks {
			kn := clampK(kv, len(rs))
			sum, n := 0.0, 0
			for _, r := range rs[:len(rs)-kn] {
				if v := r.s.v[k]; !math.IsNaN(v) {
					sum += v
					n++
				}
			}
			if n == 0 {
				sum = math.NaN()
			}
			rest.v[k] = sum
		}
	}
	out := make([]denseSeries, 0, len(rs)+1)
	for k, kv := range ks {
		kn := clampK(kv, len(rs))
		for _, r := range rs[:len(rs)-kn] {
			r.s.v[k] = math.NaN()
		}
	}
	for _, r := range rs {
		out = append(out, r.s)
	}
	if rest != nil {
		out = append(out, *rest)
	}
	return out
}

func clampK(k float64, n int) int {
	if math.IsNaN(k) || k < 0 {
		return 0
	}
	if k > float64(n) {
		return n
	}
	return int(k)
}
