package query

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// MetricsQL's functions over histogram buckets, as VictoriaMetrics's
// app/vmselect/promql/transform.go computes them: buckets with a
// `vmrange` label (VictoriaMetrics's histograms, histogram_over_time's
// and the histogram aggregate's) are turned into cumulative `le` buckets
// first, and the buckets of a histogram are the series with equal labels
// but `le`, over dense series.

// callVMBuckets evaluates prometheus_buckets, buckets_limit,
// histogram_share, MetricsQL's histogram_quantiles("phi", q1, …, buckets)
// and, in a MetricsQL-only query, histogram_fraction; ok is false for any
// other call.
func (ev *evaluator) callVMBuckets(fe *metricsql.FuncExpr) (Matrix, bool) {
	switch fe.Name {
	case "prometheus_buckets":
		ev.wantArgs(fe, 1)
		return ev.vmDense(ev.eval(fe.Args[0]), vmBucketsToLE), true
	case "buckets_limit":
		ev.wantArgs(fe, 2)
		limit := int(scalarAt(ev.eval(fe.Args[0]), 0))
		if limit <= 0 {
			ev.fail(badData("limit must be greater than 0; got %d", limit))
		}
		// NB: as VictoriaMetrics, the first and the last bucket always stay.
		return ev.vmDense(ev.eval(fe.Args[1]), func(ds []denseSeries) []denseSeries {
			return vmBucketsLimit(max(limit, 3), vmBucketsToLE(ds))
		}), true
	case "histogram_share":
		if len(fe.Args) < 2 || len(fe.Args) > 3 {
			ev.fail(badData("unexpected number of args; got %d; want 2...3", len(fe.Args)))
		}
		les := ev.scalarSteps(ev.eval(fe.Args[0]))
		bounds := ""
		if len(fe.Args) == 3 {
			bounds = stringArg(ev, fe, 2)
		}
		return ev.vmDense(ev.eval(fe.Args[1]), func(ds []denseSeries) []denseSeries {
			return vmPerGroup(vmGroupLE(vmBucketsToLE(ds)), bounds, func(k int, g []leSeries) (float64, float64, float64) {
				if math.IsNaN(les[k]) {
					return math.NaN(), math.NaN(), math.NaN()
				}
				vmFixBrokenBuckets(k, g)
				return vmShare(k, les[k], g)
			})
		}), true
	case "histogram_fraction":
		if !ev.vm {
			return nil, false
		}
		ev.wantArgs(fe, 3)
		lo, hi := ev.scalarSteps(ev.eval(fe.Args[0])), ev.scalarSteps(ev.eval(fe.Args[1]))
		if lo[0] >= hi[0] {
			ev.fail(badData("lower le cannot be greater than upper le; got lower le: %f, upper le: %f", lo[0], hi[0]))
		}
		return ev.vmDense(ev.eval(fe.Args[2]), func(ds []denseSeries) []denseSeries {
			return vmPerGroup(vmGroupLE(vmBucketsToLE(ds)), "", func(k int, g []leSeries) (float64, float64, float64) {
				if math.IsNaN(lo[k]) || math.IsNaN(hi[k]) {
					return math.NaN(), 0, 0
				}
				vmFixBrokenBuckets(k, g)
				u, _, _ := vmShare(k, hi[k], g)
				l, _, _ := vmShare(k, lo[k], g)
				return u - l, 0, 0
			})
		}), true
	case "histogram_quantiles":
		if !vmHistogramQuantiles(fe) {
			return nil, false // Prometheus's histogram_quantiles(v, "label", …)
		}
		if len(fe.Args) < 3 {
			ev.fail(badData("unexpected number of args: %d; expecting at least 3 args", len(fe.Args)))
		}
		dst := stringArg(ev, fe, 0)
		var phis [][]float64
		for _, a := range fe.Args[1 : len(fe.Args)-1] {
			phis = append(phis, ev.scalarSteps(ev.eval(a)))
		}
		return ev.vmDense(ev.eval(fe.Args[len(fe.Args)-1]), func(ds []denseSeries) []denseSeries {
			var out []denseSeries
			for _, phi := range phis {
				// Every quantile from its own copy: the buckets are
				// changed as they are read.
				cp := make([]denseSeries, len(ds))
				for i, d := range ds {
					cp[i] = denseSeries{ls: d.ls, v: append([]float64(nil), d.v...)}
				}
				phiStr := fmt.Sprintf("%g", phi[0])
				for _, d := range vmPerGroup(vmGroupLE(vmBucketsToLE(cp)), "", func(k int, g []leSeries) (float64, float64, float64) {
					return vmBucketQuantile(k, phi[k], g)
				}) {
					d.ls = labels.NewBuilder(d.ls).Set(dst, phiStr).Labels()
					out = append(out, d)
				}
			}
			return out
		}), true
	}
	return nil, false
}

// vmDense applies f to m as dense series and accounts for the dense
// series f makes or drops.
func (ev *evaluator) vmDense(m Matrix, f func([]denseSeries) []denseSeries) Matrix {
	ds := ev.densify(m)
	n := ev.numSteps()
	ev.spend(n * len(ds))
	out := f(ds)
	ev.addSamples(n * (len(out) - len(ds)))
	return ev.sparsify(out)
}

// leSeries is one bucket of a histogram: its upper bound and its counts.
type leSeries struct {
	le float64
	v  []float64
}

// vmBucketsToLE is VictoriaMetrics's vmrangeBucketsToLE: the series with
// a `vmrange` label ("start...end") become cumulative buckets labelled
// `le` (zero buckets merged into the next, a bucket added at the start of
// every gap and a +Inf one at the end); series with an `le` label are kept
// as they are, and the others are left out.
func vmBucketsToLE(ds []denseSeries) []denseSeries {
	type vmr struct {
		startStr, endStr string
		start, end       float64
		d                denseSeries
	}
	out := make([]denseSeries, 0, len(ds))
	groups := map[string][]vmr{}
	var keys []string
	for _, d := range ds {
		r := d.ls.Get("vmrange")
		if r == "" {
			if d.ls.Has("le") {
				out = append(out, d)
			}
			continue
		}
		startStr, endStr, ok := strings.Cut(r, "...")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseFloat(startStr, 64)
		end, err2 := strconv.ParseFloat(endStr, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		d.ls = labels.NewBuilder(d.ls).Del("le", "vmrange").Labels()
		k := d.ls.String()
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], vmr{startStr, endStr, start, end, d})
	}
	isZero := func(v []float64) bool {
		for _, x := range v {
			if x > 0 {
				return false
			}
		}
		return true
	}
	withLE := func(ls labels.Labels, le string) labels.Labels { return labels.NewBuilder(ls).Set("le", le).Labels() }
	zeros := func(n int) []float64 { return make([]float64, n) }
	for _, k := range keys {
		xss := groups[k]
		sort.SliceStable(xss, func(i, j int) bool { return xss[i].end < xss[j].end })
		var buckets []denseSeries
		byEnd := map[string]int{} // le -> index in buckets
		var prev vmr
		havePrev := false
		for _, xs := range xss {
			if isZero(xs.d.v) {
				continue
			}
			if !havePrev || xs.start != prev.end {
				if _, ok := byEnd[xs.startStr]; !ok {
					byEnd[xs.startStr] = len(buckets)
					buckets = append(buckets, denseSeries{ls: withLE(xs.d.ls, xs.startStr), v: zeros(len(xs.d.v))})
				}
			}
			if i, ok := byEnd[xs.endStr]; ok {
				vmMergeNonOverlapping(buckets[i].v, xs.d.v)
			} else {
				byEnd[xs.endStr] = len(buckets)
				buckets = append(buckets, denseSeries{ls: withLE(xs.d.ls, xs.endStr), v: xs.d.v})
			}
			prev, havePrev = xs, true
		}
		if havePrev && !math.IsInf(prev.end, 1) && !isZero(prev.d.v) {
			buckets = append(buckets, denseSeries{ls: withLE(prev.d.ls, "+Inf"), v: zeros(len(prev.d.v))})
		}
		if len(buckets) == 0 {
			continue
		}
		for i := range buckets[0].v {
			count := 0.0
			for _, b := range buckets {
				if v := b.v[i]; !math.IsNaN(v) && v > 0 {
					count += v
				}
				b.v[i] = count
			}
		}
		out = append(out, buckets...)
	}
	return out
}

// vmMergeNonOverlapping copies src's values into dst, unless more than
// two steps have values in both, as VictoriaMetrics's
// mergeNonOverlappingTimeseries.
func vmMergeNonOverlapping(dst, src []float64) {
	overlaps := 0
	for i, v := range src {
		if !math.IsNaN(v) && !math.IsNaN(dst[i]) {
			overlaps++
		}
	}
	if overlaps > 2 || len(src) <= 2 {
		return
	}
	for i, v := range src {
		if !math.IsNaN(v) {
			dst[i] = v
		}
	}
}

// vmBucketsLimit is buckets_limit: in every histogram (the series equal
// but for `le`) of more than limit buckets, the empty buckets at both
// ends are dropped, then the neighbouring pair with the fewest hits over
// the range is merged (the first and the last bucket kept) until limit
// are left.
func vmBucketsLimit(limit int, ds []denseSeries) []denseSeries {
	type bucket struct {
		le, hits float64
		d        denseSeries
	}
	groups := map[string][]bucket{}
	var keys []string
	for _, d := range ds {
		s := d.ls.Get("le")
		if s == "" {
			continue
		}
		le, err := strconv.ParseFloat(s, 64)
		if err != nil {
			continue
		}
		k := labels.NewBuilder(d.ls).Del("le").Labels().String()
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], bucket{le: le, d: d})
	}
	var out []denseSeries
	for _, k := range keys {
		g := groups[k]
		if len(g) <= limit {
			for _, b := range g {
				out = append(out, b.d)
			}
			continue
		}
		sort.SliceStable(g, func(i, j int) bool { return g[i].le < g[j].le })
		for n := range g[0].d.v {
			prev := 0.0
			for i := range g {
				v := g[i].d.v[n]
				g[i].hits += v - prev
				prev = v
			}
		}
		empty := func(h float64) bool { return !math.IsNaN(h) && math.Abs(h) < 1e-9 }
		l, r := 0, len(g)-1
		for r-l+1 > limit && empty(g[r].hits) {
			r--
		}
		for r-l+1 > limit && empty(g[l].hits) {
			l++
		}
		g = g[l : r+1]
		for len(g) > limit {
			minIdx := 1
			minHits := g[1].hits + g[2].hits
			for i := range g[1 : len(g)-2] {
				if h := g[i+1].hits + g[i+2].hits; h < minHits {
					minIdx, minHits = i+1, h
				}
			}
			g[minIdx+1].hits += g[minIdx].hits
			g = append(g[:minIdx], g[minIdx+1:]...)
		}
		for _, b := range g {
			out = append(out, b.d)
		}
	}
	return out
}

// vmHistogram is a histogram's labels (`le` and __name__ removed) and its
// buckets.
type vmHistogram struct {
	ls      labels.Labels
	buckets []leSeries
}

// vmGroupLE is VictoriaMetrics's groupLeTimeseries: the series with a
// numeric `le` grouped by their other labels, __name__ dropped; each
// group's buckets sorted by le, those of equal le summed (mergeSameLE).
func vmGroupLE(ds []denseSeries) []vmHistogram {
	var out []vmHistogram
	index := map[string]int{}
	for _, d := range ds {
		s := d.ls.Get("le")
		if s == "" {
			continue
		}
		le, err := strconv.ParseFloat(s, 64)
		if err != nil {
			continue
		}
		ls := labels.NewBuilder(d.ls).Del(model.MetricNameLabel, "le").Labels()
		k := ls.String()
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, vmHistogram{ls: ls})
		}
		out[i].buckets = append(out[i].buckets, leSeries{le: le, v: d.v})
	}
	for i := range out {
		g := out[i].buckets
		sort.SliceStable(g, func(a, b int) bool { return g[a].le < g[b].le })
		merged := g[:1]
		for _, b := range g[1:] {
			last := &merged[len(merged)-1]
			if b.le != last.le {
				merged = append(merged, b)
				continue
			}
			for k, v := range b.v {
				last.v[k] += v
			}
		}
		out[i].buckets = merged
	}
	return out
}

// vmPerGroup makes a series per histogram whose value at step k is f's
// first result; with bounds set, two more, labelled bounds="lower" and
// bounds="upper", of its second and third.
func vmPerGroup(hs []vmHistogram, bounds string, f func(k int, g []leSeries) (float64, float64, float64)) []denseSeries {
	var out []denseSeries
	for _, h := range hs {
		n := len(h.buckets[0].v)
		q := denseSeries{ls: h.ls, v: make([]float64, n)}
		lower := denseSeries{ls: labels.NewBuilder(h.ls).Set(bounds, "lower").Labels(), v: make([]float64, n)}
		upper := denseSeries{ls: labels.NewBuilder(h.ls).Set(bounds, "upper").Labels(), v: make([]float64, n)}
		for k := range n {
			q.v[k], lower.v[k], upper.v[k] = f(k, h.buckets)
		}
		out = append(out, q)
		if bounds != "" {
			out = append(out, lower, upper)
		}
	}
	return out
}

// vmFixBrokenBuckets makes the counts at step k rise with le: a NaN or a
// count below the one before takes the one before (the first, if NaN, 0).
func vmFixBrokenBuckets(k int, g []leSeries) {
	if len(g) < 2 {
		return
	}
	prev := g[0].v[k]
	if math.IsNaN(prev) {
		prev = 0
		g[0].v[k] = 0
	}
	for _, b := range g[1:] {
		if v := b.v[k]; math.IsNaN(v) || prev > v {
			b.v[k] = prev
		} else {
			prev = v
		}
	}
}

// vmShare is the share of the observations at step k at or below leReq,
// interpolated linearly within its bucket, with the shares at the
// bucket's bounds.
func vmShare(k int, leReq float64, g []leSeries) (q, lower, upper float64) {
	if leReq < 0 {
		return 0, 0, 0
	}
	if math.IsInf(leReq, 1) {
		return 1, 1, 1
	}
	var vPrev, lePrev float64
	for _, b := range g {
		v, le := b.v[k], b.le
		if leReq >= le {
			vPrev, lePrev = v, le
			continue
		}
		vLast := g[len(g)-1].v[k]
		lower = vPrev / vLast
		if math.IsInf(le, 1) {
			return lower, lower, 1
		}
		if lePrev == leReq {
			return lower, lower, lower
		}
		upper = v / vLast
		return lower + (v-vPrev)/vLast*(leReq-lePrev)/(le-lePrev), lower, upper
	}
	return 1, 1, 1
}

// vmBucketQuantile is VictoriaMetrics's histogram_quantile at step k.
func vmBucketQuantile(k int, phi float64, g []leSeries) (q, lower, upper float64) {
	nan := math.NaN()
	if math.IsNaN(phi) {
		return nan, nan, nan
	}
	vmFixBrokenBuckets(k, g)
	vLast := 0.0
	if len(g) > 0 {
		vLast = g[len(g)-1].v[k]
	}
	if vLast == 0 {
		return nan, nan, nan
	}
	if phi < 0 {
		return math.Inf(-1), math.Inf(-1), g[0].v[k]
	}
	if phi > 1 {
		return math.Inf(1), vLast, math.Inf(1)
	}
	vReq := vLast * phi
	var vPrev, lePrev float64
	for _, b := range g {
		v, le := b.v[k], b.le
		if v <= 0 {
			lePrev = le
			continue
		}
		if v < vReq {
			vPrev, lePrev = v, le
			continue
		}
		if math.IsInf(le, 0) {
			break
		}
		if v == vPrev {
			return lePrev, lePrev, v
		}
		return lePrev + (le-lePrev)*(vReq-vPrev)/(v-vPrev), lePrev, le
	}
	last := nan
	for i := len(g) - 1; i >= 0; i-- {
		if !math.IsInf(g[i].le, 0) {
			last = g[i].le
			break
		}
	}
	return last, last, math.Inf(1)
}
