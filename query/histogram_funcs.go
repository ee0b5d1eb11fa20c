package query

import (
	"math"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// histogramFuncs are the functions of one native histogram to a float;
// float samples are dropped.
var histogramFuncs = map[string]func(h *histogram.FloatHistogram) float64{
	"histogram_count":  func(h *histogram.FloatHistogram) float64 { return h.Count },
	"histogram_sum":    func(h *histogram.FloatHistogram) float64 { return h.Sum },
	"histogram_avg":    func(h *histogram.FloatHistogram) float64 { return h.Sum / h.Count },
	"histogram_stddev": func(h *histogram.FloatHistogram) float64 { return math.Sqrt(histogramVariance(h)) },
	"histogram_stdvar": histogramVariance,
}

// histogramVariance estimates the variance of the observations of h, each
// taken at its bucket's mean: arithmetic for custom buckets and the zero
// bucket, geometric for exponential buckets.
func histogramVariance(h *histogram.FloatHistogram) float64 {
	mean := h.Sum / h.Count
	var variance, c float64
	it := h.AllBucketIterator()
	for it.Next() {
		b := it.At()
		if b.Count == 0 {
			continue
		}
		var val float64
		switch {
		case h.UsesCustomBuckets():
			val = (b.Upper + b.Lower) / 2
		case b.Lower <= 0 && b.Upper >= 0:
			val = 0
		default:
			val = math.Sqrt(b.Upper * b.Lower)
			if b.Upper < 0 {
				val = -val
			}
		}
		d := val - mean
		variance, c = kahanSumInc(b.Count*d*d, variance, c)
	}
	return (variance + c) / h.Count
}

// nativeQuantile is histogram_quantile of a native histogram, as
// Prometheus's HistogramQuantile: linear interpolation in custom and zero
// buckets, exponential in the others.
func (ev *evaluator) nativeQuantile(q float64, h *histogram.FloatHistogram, name string) float64 {
	if q < 0 {
		return math.Inf(-1)
	}
	if q > 1 {
		return math.Inf(1)
	}
	if h.Count == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	var (
		b     histogram.Bucket[float64]
		count float64
		it    histogram.BucketIterator[float64]
		rank  float64
	)
	forward := math.IsNaN(h.Sum) || q < 0.5
	if forward {
		it = h.AllBucketIterator()
		rank = q * h.Count
	} else {
		it = h.AllReverseBucketIterator()
		rank = (1 - q) * h.Count
	}
	for it.Next() {
		b = it.At()
		if b.Count == 0 {
			continue
		}
		count += b.Count
		if count >= rank {
			break
		}
	}
	if !h.UsesCustomBuckets() && b.Lower < 0 && b.Upper > 0 {
		switch {
		case len(h.NegativeBuckets) == 0 && len(h.PositiveBuckets) > 0:
			b.Lower = 0
		case len(h.PositiveBuckets) == 0 && len(h.NegativeBuckets) > 0:
			b.Upper = 0
		}
	} else if h.UsesCustomBuckets() {
		if b.Lower == math.Inf(-1) {
			if b.Upper <= 0 {
				return b.Upper
			}
			b.Lower = 0
		} else if b.Upper == math.Inf(1) {
			return b.Lower
		}
	}
	if count > h.Count {
		count = h.Count
	}
	if count < rank {
		if math.IsNaN(h.Sum) {
			ev.infoQuantileNaNResult(name)
			return math.NaN()
		}
		return b.Upper
	}
	if forward {
		rank -= count - b.Count
	} else {
		rank = count - rank
	}
	if math.IsNaN(h.Sum) {
		for it.Next() {
			count += it.At().Count
		}
		if count < h.Count {
			ev.infoQuantileNaNSkew(name)
		}
	}
	fraction := rank / b.Count
	if h.UsesCustomBuckets() || (b.Lower <= 0 && b.Upper >= 0) {
		return b.Lower + (b.Upper-b.Lower)*fraction
	}
	logLower := math.Log2(math.Abs(b.Lower))
	logUpper := math.Log2(math.Abs(b.Upper))
	if b.Lower > 0 {
		return math.Exp2(logLower + (logUpper-logLower)*fraction)
	}
	return -math.Exp2(logUpper + (logLower-logUpper)*(1-fraction))
}

// nativeFraction is histogram_fraction of a native histogram, as
// Prometheus's HistogramFraction.
func (ev *evaluator) nativeFraction(lower, upper float64, h *histogram.FloatHistogram, name string) float64 {
	if h.Count == 0 || math.IsNaN(lower) || math.IsNaN(upper) {
		return math.NaN()
	}
	if lower >= upper {
		return 0
	}
	var (
		count, rank, lowerRank, upperRank float64
		lowerSet, upperSet                bool
		it                                = h.AllBucketIterator()
	)
	for it.Next() {
		b := it.At()
		count += b.Count
		zeroBucket := false
		linear := func(v float64) float64 {
			if b.Lower == math.Inf(-1) {
				return b.Count
			}
			return rank + b.Count*b.FractionBelow(v, true)
		}
		exponential := func(v float64) float64 {
			return rank + b.Count*b.FractionBelow(v, false)
		}
		if h.UsesCustomBuckets() {
			if b.Lower == math.Inf(-1) && b.Upper > 0 {
				b.Lower = 0
			}
		} else if b.Lower <= 0 && b.Upper >= 0 {
			zeroBucket = true
			switch {
			case len(h.NegativeBuckets) == 0 && len(h.PositiveBuckets) > 0:
				b.Lower = 0
			case len(h.PositiveBuckets) == 0 && len(h.NegativeBuckets) > 0:
				b.Upper = 0
			}
		}
		if !lowerSet && b.Lower >= lower {
			lowerRank, lowerSet = rank, true
		}
		if !upperSet && b.Lower >= upper {
			upperRank, upperSet = rank, true
		}
		if lowerSet && upperSet {
			break
		}
		if !lowerSet && b.Lower < lower && b.Upper > lower {
			if h.UsesCustomBuckets() || zeroBucket {
				lowerRank = linear(lower)
			} else {
				lowerRank = exponential(lower)
			}
			lowerSet = true
		}
		if !upperSet && b.Lower < upper && b.Upper > upper {
			if h.UsesCustomBuckets() || zeroBucket {
				upperRank = linear(upper)
			} else {
				upperRank = exponential(upper)
			}
			upperSet = true
		}
		if lowerSet && upperSet {
			break
		}
		rank += b.Count
	}
	if math.IsNaN(h.Sum) {
		for it.Next() {
			count += it.At().Count
		}
		if count < h.Count {
			ev.infoFractionNaNs(name)
		}
	} else {
		count = h.Count
	}
	if !lowerSet || lowerRank > count {
		lowerRank = count
	}
	if !upperSet || upperRank > count {
		upperRank = count
	}
	return (upperRank - lowerRank) / h.Count
}

// histogramQuantiles is histogram_quantiles(v, "label", q1, q2, …)
// (experimental): histogram_quantile at each of the quantiles, each
// series labelled with its quantile.
func (ev *evaluator) histogramQuantiles(fe *metricsql.FuncExpr) Matrix {
	if len(fe.Args) < 3 {
		ev.failf("expected at least 3 arguments in call to histogram_quantiles, got %d", len(fe.Args))
	}
	sl, ok := fe.Args[1].(*metricsql.StringExpr)
	if !ok {
		ev.fail(badData("expected type string in call to function %q, got %s", "histogram_quantiles", typeName(mustType(fe.Args[1]))))
	}
	if !model.UTF8Validation.IsValidLabelName(sl.S) {
		ev.fail(badData("invalid quantile label name %q", sl.S))
	}
	out := newOutMatrix(ev)
	for _, qe := range fe.Args[2:] {
		qm := ev.eval(qe)
		// NB: the quantile is a scalar; its value at each step labels
		// that step's samples.
		qs := make([]float64, ev.numSteps())
		for k := range qs {
			qs[k] = scalarAt(qm, k)
		}
		res := ev.histogramQuantile(qm, ev.eval(fe.Args[0]))
		for _, s := range res {
			for i, p := range s.Points {
				k := int((p.T - ev.start) / ev.interval)
				lb := labels.NewBuilder(s.Metric)
				lb.Set(sl.S, labels.FormatOpenMetricsFloat(qs[k]))
				out.add(lb.Labels(), p.T, p.F, s.H(i))
			}
		}
	}
	return out.m
}
