package query

import (
	"errors"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// hpoint is a point of a window that holds native histograms: a float F,
// or a histogram H when H is not nil.
type hpoint struct {
	T int64
	F float64
	H *histogram.FloatHistogram
}

// hasHistograms reports whether any entry of hs is a histogram.
func hasHistograms(hs []*histogram.FloatHistogram) bool {
	for _, h := range hs {
		if h != nil {
			return true
		}
	}
	return false
}

// hpoints joins a window's points with their histograms into buf.
func hpoints(buf []hpoint, w []Point, hs []*histogram.FloatHistogram) []hpoint {
	buf = buf[:0]
	for i, p := range w {
		buf = append(buf, hpoint{T: p.T, F: p.F, H: hs[i]})
	}
	return buf
}

// splitPoints returns the float points of w and the number of histograms.
func splitPoints(w []hpoint) (floats []Point, hists int) {
	for _, p := range w {
		if p.H == nil {
			floats = append(floats, Point{T: p.T, F: p.F})
		} else {
			hists++
		}
	}
	return floats, hists
}

// rangeHist computes a range function over a window that holds native
// histograms, as Prometheus 3 does: functions of floats ignore the
// histograms (with an info when floats remain), rate and friends,
// sum_over_time and avg_over_time compute histograms, the others count
// or pick samples of either kind.
func (ev *evaluator) rangeHist(name string, def rangeFuncDef, metric labels.Labels, pts []Point, hs []*histogram.FloatHistogram, ref, rng, ts int64, sargs []float64) (hpoint, bool) {
	mname := metric.Get(model.MetricNameLabel)
	w := hpoints(ev.hbuf, pts, hs)
	ev.hbuf = w // reused by the next window: nothing below keeps w
	switch name {
	case "rate", "increase", "delta":
		return ev.histogramRate(mname, w, ref-rng, ref, name != "delta", name == "rate")
	case "irate", "idelta":
		return ev.histogramInstant(mname, w, name == "irate")
	case "resets", "changes":
		if len(w) == 0 {
			return hpoint{}, false
		}
		n := 0
		for i := 1; i < len(w); i++ {
			prev, cur := w[i-1], w[i]
			switch {
			case (prev.H == nil) != (cur.H == nil):
				n++
			case cur.H == nil && name == "resets":
				if cur.F < prev.F {
					n++
				}
			case cur.H == nil:
				if !(cur.F == prev.F || (cur.F != cur.F && prev.F != prev.F)) {
					n++
				}
			case name == "resets":
				if cur.H.DetectReset(prev.H) {
					n++
				}
			default:
				if !cur.H.Equals(prev.H) {
					n++
				}
			}
		}
		return hpoint{F: float64(n)}, true
	case "count_over_time", "present_over_time", "last_over_time", "first_over_time",
		"ts_of_last_over_time", "ts_of_first_over_time", "absent_over_time":
		if len(w) == 0 {
			return hpoint{}, false
		}
		switch name {
		case "last_over_time":
			return w[len(w)-1], true
		case "first_over_time":
			return w[0], true
		}
		v, ok := def.fn(pts, ref, rng, ts, sargs)
		return hpoint{F: v}, ok
	case "sum_over_time", "avg_over_time":
		floats, hists := splitPoints(w)
		switch {
		case hists == 0:
			v, ok := def.fn(pts, ref, rng, ts, sargs)
			return hpoint{F: v}, ok
		case len(floats) > 0:
			ev.warnMixedFloatsHistograms(mname)
			return hpoint{}, false
		}
		return ev.histogramSumOverTime(mname, w, name == "avg_over_time")
	}
	// A function of floats.
	floats, hists := splitPoints(w)
	if hists > 0 && len(floats) > 0 {
		switch name {
		case "deriv", "predict_linear":
			if len(floats) >= 1 {
				ev.infoHistogramIgnoredInMixedRange(mname)
			}
		default:
			ev.infoHistogramIgnoredInMixedRange(mname)
		}
	}
	if len(floats) == 0 {
		return hpoint{}, false
	}
	v, ok := def.fn(floats, ref, rng, ts, sargs)
	return hpoint{F: v}, ok
}

// histogramRate is rate, increase and delta over a window of histograms,
// as Prometheus's extrapolatedRate and histogramRate.
func (ev *evaluator) histogramRate(name string, w []hpoint, rangeStart, rangeEnd int64, isCounter, isRate bool) (hpoint, bool) {
	floats, hists := splitPoints(w)
	if hists > 0 && len(floats) > 0 {
		ev.warnMixedFloatsHistograms(name)
		return hpoint{}, false
	}
	if hists == 0 {
		v, ok := extrapolatedRate(floats, rangeStart, rangeEnd, isCounter, isRate)
		return hpoint{F: v}, ok
	}
	if len(w) < 2 {
		return hpoint{}, false
	}
	prev, last := w[0].H, w[len(w)-1].H
	usingCustom := prev.UsesCustomBuckets()
	if isCounter && (prev.CounterResetHint == histogram.GaugeType || last.CounterResetHint == histogram.GaugeType) {
		ev.warnNotCounter(name)
	}
	if isCounter && w[1].H.DetectReset(prev) {
		second := w[1].H
		prev = &histogram.FloatHistogram{Schema: second.Schema, CustomValues: second.CustomValues}
		usingCustom = second.UsesCustomBuckets()
	}
	if last.UsesCustomBuckets() != usingCustom {
		ev.warnMixedExponentialCustom(name)
		return hpoint{}, false
	}
	minSchema := min(last.Schema, prev.Schema)
	for _, p := range w[1 : len(w)-1] {
		if !isCounter {
			continue
		}
		if p.H.CounterResetHint == histogram.GaugeType {
			ev.warnNotCounter(name)
		}
		minSchema = min(minSchema, p.H.Schema)
		if p.H.UsesCustomBuckets() != usingCustom {
			ev.warnMixedExponentialCustom(name)
			return hpoint{}, false
		}
	}
	h, err := last.CopyToSchema(minSchema)
	if err != nil {
		ev.fail(execErr("%v", err))
	}
	if !ev.histogramOp(name, "subtraction", func() (bool, error) {
		_, _, reconciled, err := h.Sub(prev)
		return reconciled, err
	}) {
		return hpoint{}, false
	}
	if isCounter {
		for i := 1; i < len(w); i++ {
			cur := w[i].H
			if cur.DetectReset(prev) {
				if !ev.histogramOp(name, "addition", func() (bool, error) {
					_, _, reconciled, err := h.Add(prev)
					return reconciled, err
				}) {
					return hpoint{}, false
				}
			}
			prev = cur
		}
	} else if w[0].H.CounterResetHint != histogram.GaugeType || last.CounterResetHint != histogram.GaugeType {
		ev.warnNotGauge(name)
	}
	h.CounterResetHint = histogram.GaugeType
	h.Compact(0)

	firstT, lastT := w[0].T, w[len(w)-1].T
	durationToStart := float64(firstT-rangeStart) / 1000
	durationToEnd := float64(rangeEnd-lastT) / 1000
	sampled := float64(lastT-firstT) / 1000
	avgBetween := sampled / float64(len(w)-1)
	threshold := avgBetween * 1.1
	if durationToStart >= threshold {
		durationToStart = avgBetween / 2
	}
	if isCounter && h.Count > 0 && w[0].H.Count >= 0 {
		if toZero := sampled * (w[0].H.Count / h.Count); toZero < durationToStart {
			durationToStart = toZero
		}
	}
	if durationToEnd >= threshold {
		durationToEnd = avgBetween / 2
	}
	factor := 1.0
	if sampled != 0 {
		factor = (sampled + durationToStart + durationToEnd) / sampled
	}
	if isRate {
		factor /= float64(rangeEnd-rangeStart) / 1000
	}
	h.Mul(factor)
	return hpoint{H: h}, true
}

// histogramOp runs a histogram addition or subtraction, turning its
// outcome into annotations as Prometheus does; false when the histograms
// cannot be combined (the result is then dropped).
func (ev *evaluator) histogramOp(name, op string, f func() (bool, error)) bool {
	reconciled, err := f()
	if err != nil {
		if errors.Is(err, histogram.ErrHistogramsIncompatibleSchema) {
			ev.warnMixedExponentialCustom(name)
			return false
		}
		ev.fail(execErr("%v", err))
	}
	if reconciled {
		ev.infoMismatchedCustomBuckets(op)
	}
	return true
}

// histogramInstant is irate and idelta over a window whose last two
// samples may be histograms.
func (ev *evaluator) histogramInstant(name string, w []hpoint, isRate bool) (hpoint, bool) {
	if len(w) < 2 {
		return hpoint{}, false
	}
	p0, p1 := w[len(w)-2], w[len(w)-1]
	iv := p1.T - p0.T
	if iv == 0 {
		return hpoint{}, false
	}
	switch {
	case p0.H == nil && p1.H == nil:
		v, ok := instantValue([]Point{{T: p0.T, F: p0.F}, {T: p1.T, F: p1.F}}, isRate)
		return hpoint{F: v}, ok
	case p0.H == nil || p1.H == nil:
		ev.warnMixedFloatsHistograms(name)
		return hpoint{}, false
	}
	h := p1.H.Copy()
	if isRate && (p1.H.CounterResetHint == histogram.GaugeType || p0.H.CounterResetHint == histogram.GaugeType) {
		ev.warnNotCounter(name)
	}
	if !isRate && (p1.H.CounterResetHint != histogram.GaugeType || p0.H.CounterResetHint != histogram.GaugeType) {
		ev.warnNotGauge(name)
	}
	if !isRate || !p1.H.DetectReset(p0.H) {
		if !ev.histogramOp(name, "subtraction", func() (bool, error) {
			_, _, reconciled, err := h.Sub(p0.H)
			return reconciled, err
		}) {
			return hpoint{}, false
		}
	}
	h.CounterResetHint = histogram.GaugeType
	h.Compact(0)
	if isRate {
		h.Div(float64(iv) / 1000)
	}
	return hpoint{H: h}, true
}

// histogramSumOverTime is sum_over_time (or avg_over_time) of a window of
// histograms, with Kahan summation as Prometheus.
func (ev *evaluator) histogramSumOverTime(name string, w []hpoint, avg bool) (hpoint, bool) {
	var resetSeen, notResetSeen, reconciledSeen bool
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
		if reconciledSeen {
			ev.infoMismatchedCustomBuckets("aggregation")
		}
	}()
	fail := func(err error) (hpoint, bool) {
		if errors.Is(err, histogram.ErrHistogramsIncompatibleSchema) {
			ev.warnMixedExponentialCustom(name)
			return hpoint{}, false
		}
		ev.fail(execErr("%v", err))
		return hpoint{}, false
	}
	sum := w[0].H.Copy()
	track(sum)
	if !avg {
		var comp *histogram.FloatHistogram
		for _, p := range w[1:] {
			track(p.H)
			var reconciled bool
			var err error
			comp, _, reconciled, err = sum.KahanAdd(p.H, comp)
			if err != nil {
				return fail(err)
			}
			reconciledSeen = reconciledSeen || reconciled
		}
		if comp != nil {
			var reconciled bool
			var err error
			sum, _, reconciled, err = sum.Add(comp)
			if err != nil {
				return fail(err)
			}
			reconciledSeen = reconciledSeen || reconciled
		}
		return hpoint{H: sum}, true
	}
	var (
		mean, kahanC *histogram.FloatHistogram
		count        = 1.0
		incremental  bool
	)
	for i, p := range w[1:] {
		track(p.H)
		count = float64(i + 2)
		if !incremental {
			sumCopy := sum.Copy()
			var cCopy *histogram.FloatHistogram
			if kahanC != nil {
				cCopy = kahanC.Copy()
			}
			var reconciled bool
			var err error
			cCopy, _, reconciled, err = sumCopy.KahanAdd(p.H, cCopy)
			if err != nil {
				return fail(err)
			}
			reconciledSeen = reconciledSeen || reconciled
			if !sumCopy.HasOverflow() {
				sum, kahanC = sumCopy, cCopy
				continue
			}
			incremental = true
			mean = sum.Copy().Div(count - 1)
			if kahanC != nil {
				kahanC.Div(count - 1)
			}
		}
		q := (count - 1) / count
		if kahanC != nil {
			kahanC.Mul(q)
		}
		toAdd := p.H.Copy().Div(count)
		var reconciled bool
		var err error
		kahanC, _, reconciled, err = mean.Mul(q).KahanAdd(toAdd, kahanC)
		if err != nil {
			return fail(err)
		}
		reconciledSeen = reconciledSeen || reconciled
	}
	if incremental {
		if kahanC != nil {
			if _, _, _, err := mean.Add(kahanC); err != nil {
				return fail(err)
			}
		}
		return hpoint{H: mean}, true
	}
	if kahanC != nil {
		if _, _, _, err := sum.Div(count).Add(kahanC.Div(count)); err != nil {
			return fail(err)
		}
		return hpoint{H: sum}, true
	}
	return hpoint{H: sum.Div(count)}, true
}
