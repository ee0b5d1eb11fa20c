package query

import (
	"slices"
	"sort"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// How anchored and smoothed selectors are evaluated, as Prometheus 3.14
// does (promql/engine.go, functions.go; promql-extended-range-selectors).
//
// An anchored range [r] at time t reads (t-r-lookback, t]: the window
// (t-r, t] plus the newest sample before it, which anchors the window's
// start. A smoothed range reads (t-r-lookback, t+lookback] and takes the
// values at t-r and t interpolated between the samples either side. rate,
// increase and delta then take the difference of the values at the two
// ends, without extrapolation; changes and resets (anchored only) count
// from the anchor. A smoothed instant selector interpolates at t between
// the samples around it.

// anchoredFuncs and smoothedFuncs are the functions that may take an
// anchored or smoothed range.
var (
	anchoredFuncs = []string{"changes", "delta", "increase", "rate", "resets"}
	smoothedFuncs = []string{"delta", "increase", "rate"}
)

// checkExtendedFuncs refuses an anchored or smoothed range given to a
// function that cannot take it, with Prometheus's error.
func checkExtendedFuncs(e metricsql.Expr) error {
	var err error
	walk(e, func(x metricsql.Expr) {
		fe, ok := x.(*metricsql.FuncExpr)
		if !ok || err != nil {
			return
		}
		for _, a := range fe.Args {
			re, ok := a.(*metricsql.RollupExpr)
			if !ok || re.Window == nil || re.ForSubquery() {
				continue
			}
			me, ok := re.Expr.(*metricsql.MetricExpr)
			if !ok {
				continue
			}
			allowed := anchoredFuncs
			switch mod := rangeModOf(me); mod {
			case modNone:
				continue
			case modSmoothed:
				allowed = smoothedFuncs
			}
			if !slices.Contains(allowed, fe.Name) {
				err = execErr("%s modifier can only be used with: %s - not with %s", rangeModOf(me), strings.Join(allowed, ", "), fe.Name)
				return
			}
		}
	})
	return err
}

// hasRangeMods reports whether e has an anchored or smoothed selector.
func hasRangeMods(e metricsql.Expr) bool {
	found := false
	walk(e, func(x metricsql.Expr) {
		if me, ok := x.(*metricsql.MetricExpr); ok && rangeModOf(me) != modNone {
			found = true
		}
	})
	return found
}

// boundaries returns, for n points whose times t gives, the index of the
// point that stands for the window's start (the newest at or before
// rangeStart, else the first) and, for a smoothed window, of the one for
// its end (the oldest at or after rangeEnd, else the last).
func boundaries(n int, t func(int) int64, rangeStart, rangeEnd int64, smoothed bool) (first, last int) {
	last = n - 1
	first = max(0, sort.Search(last, func(i int) bool { return t(i) > rangeStart })-1)
	if smoothed {
		last = sort.Search(last, func(i int) bool { return t(i) >= rangeEnd })
	}
	return first, last
}

// interpolate is the value at t on the line from p1 to p2. For a counter
// that resets between them, the line starts at 0.
func interpolate(p1, p2 Point, t int64, isCounter bool) float64 {
	y1, y2 := p1.F, p2.F
	if isCounter && y2 < y1 {
		y1 = 0
	}
	return y1 + (y2-y1)*float64(t-p1.T)/float64(p2.T-p1.T)
}

// leftValue is the value at the window's start: the first point's,
// interpolated to rangeStart when smoothed.
func leftValue(f []Point, first int, rangeStart int64, smoothed, isCounter bool) float64 {
	if smoothed && f[first].T < rangeStart {
		return interpolate(f[first], f[first+1], rangeStart, isCounter)
	}
	return f[first].F
}

// rightValue is the value at the window's end: the last point's,
// interpolated to rangeEnd when smoothed.
func rightValue(f []Point, last int, rangeEnd int64, smoothed, isCounter bool) float64 {
	if smoothed && last > 0 && f[last].T > rangeEnd {
		return interpolate(f[last-1], f[last], rangeEnd, isCounter)
	}
	return f[last].F
}

// extendedRate is rate, increase or delta over an anchored or smoothed
// window f of floats: the difference of its ends, corrected for counter
// resets, over the range rng (ms) for a rate.
func extendedRate(f []Point, rangeStart, rangeEnd, rng int64, smoothed, isCounter, isRate bool) (float64, bool) {
	if len(f) == 0 {
		return 0, false
	}
	first, last := boundaries(len(f), func(i int) int64 { return f[i].T }, rangeStart, rangeEnd, smoothed)
	if f[last].T <= rangeStart || (smoothed && f[first].T > rangeEnd) {
		return 0, false
	}
	left := leftValue(f, first, rangeStart, smoothed, isCounter)
	right := rightValue(f, last, rangeEnd, smoothed, isCounter)
	result := right - left
	if isCounter {
		// The interpolations took care of resets at the ends: only the
		// points strictly inside the window are looked at.
		if f[first].T <= rangeStart {
			first++
		}
		if f[last].T >= rangeEnd {
			last--
		}
		prev := left
		for _, p := range f[first:max(first, last+1)] {
			if p.F < prev {
				result += prev
			}
			prev = p.F
		}
		if right < prev {
			result += prev
		}
	}
	if isRate {
		result /= float64(rng) / 1000
	}
	return result, true
}

// extendFloats is an anchored or smoothed range vector as a query returns
// it: the window (mint, maxt] with a point at mint (the anchor, or the
// value interpolated there) and one at maxt.
func extendFloats(f []Point, mint, maxt int64, smoothed bool) []Point {
	if len(f) == 0 {
		return nil
	}
	first, last := boundaries(len(f), func(i int) int64 { return f[i].T }, mint, maxt, smoothed)
	if f[last].T <= mint {
		return nil
	}
	left := leftValue(f, first, mint, smoothed, false)
	right := rightValue(f, last, maxt, smoothed, false)
	if f[first].T <= mint {
		first++
	}
	if f[last].T >= maxt {
		last--
	}
	out := make([]Point, 0, max(last-first+1, 0)+2)
	out = append(out, Point{T: mint, F: left})
	if first <= last {
		out = append(out, f[first:last+1]...)
	}
	return append(out, Point{T: maxt, F: right})
}

// anchorIndex is where an anchored window of changes or resets starts:
// at the newest point at or before rangeStart. ok is false when no point
// is after rangeStart: there is nothing to count.
func anchorIndex(w []Point, rangeStart int64) (int, bool) {
	i := sort.Search(len(w), func(i int) bool { return w[i].T > rangeStart })
	if i == len(w) {
		return 0, false
	}
	return max(i-1, 0), true
}

// extendedRange computes a function over an anchored or smoothed window
// w of one series (hs its histograms, nil when it has none); the function
// is one checkExtendedFuncs allows.
func (ev *evaluator) extendedRange(name string, def rangeFuncDef, metric labels.Labels, w []Point, hs []*histogram.FloatHistogram, ref int64, ra *rangeArg, ts int64, sargs []float64) (hpoint, bool) {
	rangeStart, rangeEnd := ref-ra.rng, ref
	smoothed := ra.mod == modSmoothed
	mname := metric.Get(model.MetricNameLabel)
	switch name {
	case "rate", "increase", "delta":
		hists := 0
		for _, h := range hs {
			if h != nil {
				hists++
			}
		}
		switch {
		case hists > 0 && hists < len(w):
			ev.warnMixedFloatsHistograms(mname)
			return hpoint{}, false
		case hists > 0:
			hw := hpoints(ev.hbuf, w, hs)
			ev.hbuf = hw
			return ev.extendedHistogramRate(mname, hw, rangeStart, rangeEnd, ra.rng, smoothed, name != "delta", name == "rate")
		}
		v, ok := extendedRate(w, rangeStart, rangeEnd, ra.rng, smoothed, name != "delta", name == "rate")
		return hpoint{F: v}, ok
	case "changes", "resets":
		i, ok := anchorIndex(w, rangeStart)
		if !ok {
			return hpoint{}, false
		}
		w = w[i:]
		if hs != nil {
			hs = hs[i:]
		}
		if hasHistograms(hs) {
			return ev.rangeHist(name, def, metric, w, hs, ref, ra.rng, ts, sargs)
		}
		v, ok := def.fn(w, ref, ra.rng, ts, sargs)
		return hpoint{F: v}, ok
	}
	return hpoint{}, false
}

// extendedHistogramRate is extendedRate over a window of histograms, as
// Prometheus's extendedHistogramRate.
func (ev *evaluator) extendedHistogramRate(name string, h []hpoint, rangeStart, rangeEnd, rng int64, smoothed, isCounter, isRate bool) (hpoint, bool) {
	first, last := boundaries(len(h), func(i int) int64 { return h[i].T }, rangeStart, rangeEnd, smoothed)
	if h[last].T <= rangeStart || (smoothed && h[first].T > rangeEnd) {
		return hpoint{}, false
	}
	custom := h[first].H.UsesCustomBuckets()
	for _, p := range h[first : last+1] {
		if p.H.UsesCustomBuckets() != custom {
			ev.warnMixedExponentialCustom(name)
			return hpoint{}, false
		}
		if isCounter && p.H.CounterResetHint == histogram.GaugeType {
			ev.warnNotCounter(name)
		}
	}
	left := h[first].H.Copy()
	if smoothed && h[first].T < rangeStart {
		var ok bool
		if left, ok = ev.interpolateHistograms(name, h[first], h[first+1], rangeStart, isCounter); !ok {
			return hpoint{}, false
		}
	}
	right := h[last].H.Copy()
	if smoothed && last > 0 && h[last].T > rangeEnd {
		var ok bool
		if right, ok = ev.interpolateHistograms(name, h[last-1], h[last], rangeEnd, isCounter); !ok {
			return hpoint{}, false
		}
	}
	if !isCounter && (left.CounterResetHint != histogram.GaugeType || right.CounterResetHint != histogram.GaugeType) {
		ev.warnNotGauge(name)
	}
	result := right.Copy()
	if !ev.histogramOp(name, "subtraction", func() (bool, error) {
		_, _, reconciled, err := result.Sub(left)
		return reconciled, err
	}) {
		return hpoint{}, false
	}
	if isCounter {
		corr, ok := ev.histogramResets(name, h, first, last, left, right, rangeStart, smoothed)
		if !ok {
			return hpoint{}, false
		}
		if corr != nil && !ev.histogramOp(name, "addition", func() (bool, error) {
			_, _, reconciled, err := result.Add(corr)
			return reconciled, err
		}) {
			return hpoint{}, false
		}
	}
	if isRate {
		result.Div(float64(rng) / 1000)
	}
	result.CounterResetHint = histogram.GaugeType
	return hpoint{H: result.Compact(0)}, true
}

// histogramResets is the correction for the counter resets between the
// ends of a window of histograms (nil when there are none): the sum of
// the histograms before each reset.
func (ev *evaluator) histogramResets(name string, h []hpoint, first, last int, left, right *histogram.FloatHistogram, rangeStart int64, smoothed bool) (*histogram.FloatHistogram, bool) {
	from, prev := first+1, left
	if smoothed && h[first].T < rangeStart && h[first+1].H.DetectReset(h[first].H) {
		// The interpolation at the start spanned this reset already.
		from, prev = from+1, h[first+1].H
	}
	// The last point is right's, whose reset right.DetectReset finds.
	to := last - 1
	if from > to+1 {
		return nil, true
	}
	var corr *histogram.FloatHistogram
	add := func(x *histogram.FloatHistogram) bool {
		if corr == nil {
			corr = x.Copy()
			return true
		}
		return ev.histogramOp(name, "addition", func() (bool, error) {
			_, _, reconciled, err := corr.Add(x)
			return reconciled, err
		})
	}
	for _, p := range h[from : to+1] {
		if p.H.DetectReset(prev) && !add(prev) {
			return nil, false
		}
		prev = p.H
	}
	if right.DetectReset(prev) && !add(prev) {
		return nil, false
	}
	return corr, true
}

// interpolateHistograms is the histogram at t on the line from p1 to p2;
// for a counter that resets between them, the line starts at zero.
func (ev *evaluator) interpolateHistograms(name string, p1, p2 hpoint, t int64, isCounter bool) (*histogram.FloatHistogram, bool) {
	switch t {
	case p1.T:
		return p1.H.Copy(), true
	case p2.T:
		return p2.H.Copy(), true
	}
	fraction := float64(t-p1.T) / float64(p2.T-p1.T)
	if isCounter && p2.H.DetectReset(p1.H) {
		return p2.H.Copy().Mul(fraction), true
	}
	r := p2.H.Copy()
	if !ev.histogramOp(name, "subtraction", func() (bool, error) {
		_, _, reconciled, err := r.Sub(p1.H)
		return reconciled, err
	}) {
		return nil, false
	}
	r.Mul(fraction)
	if !ev.histogramOp(name, "addition", func() (bool, error) {
		_, _, reconciled, err := r.Add(p1.H)
		return reconciled, err
	}) {
		return nil, false
	}
	return r, true
}

// smoothedSelector evaluates a smoothed instant selector: at each step the
// value at its time, interpolated between the samples either side within
// the lookback delta, or the newest before it when none follows.
func (ev *evaluator) smoothedSelector(me *metricsql.MetricExpr, off int64, at *int64) Matrix {
	n := ev.numSteps()
	lb := ev.lookback
	raw := ev.selectSeries(me, ev.refTime(0, off, at)-lb+1, ev.refTime(n-1, off, at)+lb, true)
	out := make(Matrix, 0, len(raw))
	for _, s := range raw {
		mname := s.Metric.Get(model.MetricNameLabel)
		o := Series{Metric: s.Metric}
		a, b := 0, 0 // the window (ref-lb, ref+lb] is s.Points[a:b]
		for k := range n {
			ref := ev.refTime(k, off, at)
			for a < len(s.Points) && s.Points[a].T <= ref-lb {
				a++
			}
			b = max(a, b)
			for b < len(s.Points) && s.Points[b].T <= ref+lb {
				b++
			}
			ev.spend(1 + b - a)
			if a == b {
				continue
			}
			var hs []*histogram.FloatHistogram
			if s.Histograms != nil {
				hs = s.Histograms[a:b]
			}
			p, h, ok := ev.smoothedAt(mname, s.Points[a:b], hs, ref)
			if ok {
				ev.addSamples(1)
				o.add(Point{T: ev.stepTime(k), F: p}, h)
			}
		}
		out = append(out, o)
	}
	ev.release(raw)
	return out
}

// smoothedAt is the value at ref of a smoothed selector over the window w
// (hs its histograms, nil for none).
func (ev *evaluator) smoothedAt(name string, w []Point, hs []*histogram.FloatHistogram, ref int64) (float64, *histogram.FloatHistogram, bool) {
	hists := 0
	for _, h := range hs {
		if h != nil {
			hists++
		}
	}
	if hists > 0 && hists < len(w) {
		ev.warnMixedFloatsHistograms(name)
		return 0, nil, false
	}
	i := sort.Search(len(w), func(i int) bool { return w[i].T >= ref })
	switch {
	case i < len(w) && w[i].T == ref:
		if hists > 0 {
			return 0, hs[i].Copy(), true
		}
		return w[i].F, nil, true
	case i > 0 && i < len(w) && hists > 0:
		prev, next := hs[i-1], hs[i]
		if prev.UsesCustomBuckets() != next.UsesCustomBuckets() {
			ev.warnMixedExponentialCustom(name)
			return 0, nil, false
		}
		// A counter unless both say gauge.
		isCounter := prev.CounterResetHint != histogram.GaugeType || next.CounterResetHint != histogram.GaugeType
		h, ok := ev.interpolateHistograms(name, hpoint{T: w[i-1].T, H: prev}, hpoint{T: w[i].T, H: next}, ref, isCounter)
		return 0, h, ok
	case i > 0 && i < len(w):
		return interpolate(w[i-1], w[i], ref, false), nil, true
	case i > 0 && hists > 0:
		// The hint is about the sample before, which is not this value's.
		h := hs[i-1].Copy()
		h.CounterResetHint = histogram.UnknownCounterReset
		return 0, h, true
	case i > 0:
		return w[i-1].F, nil, true
	}
	return 0, nil, false
}
