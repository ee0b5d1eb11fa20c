package forecast

import (
	"fmt"
	"math"
)

// Change is what the recent past says about a change of course that the
// backtests cannot see yet: over the last Window points (seasonal
// profile removed), four explanations compete by their Bayesian
// information criterion — no change (a line: the backtested models
// stand), a change of trend at some point (a hinge: the KPI started to
// drift), a change of level at some point (a step: it moved once and
// stays), and both at once (a shift: it jumped and drifts on from
// there), each change by its likelihood averaged over where it starts.
// Their weights, with a prior that favours no change, average
// the breach probabilities: a drift that started two hours ago on a noisy
// KPI is believed as soon as the data support it, while a step that
// stays above the target is not read as a drift.
type Change struct {
	Window int
	// Weights of no change, a new trend, a new level and a shift (they
	// sum to 1).
	None, Trend, Level, Shift float64
	// At is where the new trend, level or shift starts, in points before
	// the end.
	TrendAt, LevelAt, ShiftAt int
	// TrendForecast continues the new trend, LevelForecast the new level
	// (with the window's slope), ShiftForecast the new slope from the new
	// level.
	TrendForecast, LevelForecast, ShiftForecast Forecast
	// Profile is the seasonal profile the weighing removed: "fixed" or
	// "moving".
	Profile string
	// Then weighs the points after the most likely change on their own
	// (nil: no change is the most likely, or too few points after it):
	// a further change of course since — a drift that set in after a
	// step — which one change per window cannot tell. Its None is the
	// most likely change's forecast.
	Then *Change
}

// probability averages a breach probability over the explanations by
// their weights: p0 is the probability with no change, at that of a
// forecast. The most likely change's forecast gives way to the further
// changes Then weighs; when the backtests have seen that change (seen),
// "nothing since" is p0 rather than the change's own forecast: the
// backtested models were chosen on what came after it and carry its
// season and slope, which the change's line, fitted with a profile of
// the whole history, does not.
func (c *Change) probability(p0 float64, at func(Forecast) float64) float64 {
	pt, pl, ps := at(c.TrendForecast), at(c.LevelForecast), at(c.ShiftForecast)
	if c.Then != nil {
		q := func(p float64) float64 {
			if c.seen() {
				p = p0
			}
			return c.Then.probability(p, at)
		}
		switch c.dominant() {
		case 1:
			pt = q(pt)
		case 2:
			pl = q(pl)
		case 3:
			ps = q(ps)
		}
	}
	return c.None*p0 + c.Trend*pt + c.Level*pl + c.Shift*ps
}

// dominant is the most likely explanation: 0 no change, 1 a new trend,
// 2 a new level, 3 a shift.
func (c *Change) dominant() int {
	switch max(c.None, c.Trend, c.Level, c.Shift) {
	case c.None:
		return 0
	case c.Trend:
		return 1
	case c.Level:
		return 2
	default:
		return 3
	}
}

// since is how many points the most likely change lies before the end
// (0: no change is the most likely).
func (c *Change) since() int {
	return [...]int{0, c.TrendAt, c.LevelAt, c.ShiftAt}[c.dominant()]
}

// changePrior is the prior weight of each kind of change against no
// change; the accuracy suite in benchmarks/kpiaccuracy chose it (0.05,
// 0.1 and 0.2 tried with the three changes; 0.1 warned most with the
// fewest false warnings, by one or two; with the changes averaged over
// their positions, 0.2 did as 0.1 and 0.05 warned falsely more often at
// 15 minutes, where the changes keep the backtested models from reading
// a step as a drift).
const changePrior = 0.1

// minSegment is the fewest points after a change.
const minSegment = 5

// seen reports whether the backtests have seen the most likely change:
// it lies half the horizon back or more, so that their recent folds
// (origins an eighth, a quarter and half the horizon before the end)
// were fitted on points after it, and the backtested models' forecasts
// follow what came after it.
func (c *Change) seen() bool { return 2*c.since() >= len(c.TrendForecast.Mean) }

// logMeanExp is ln of the mean of exp(x) over xs, without overflow
// (−Inf for none).
func logMeanExp(xs []float64) float64 {
	if len(xs) == 0 {
		return math.Inf(-1)
	}
	m := math.Inf(-1)
	for _, x := range xs {
		m = math.Max(m, x)
	}
	s := 0.0
	for _, x := range xs {
		s += math.Exp(x - m)
	}
	return m + math.Log(s/float64(len(xs)))
}

// DetectChange weighs the explanations of y's last window points
// (window ≥ 3·minSegment) after removing the seasonal profile of the
// given period (0: none), and forecasts h steps under the changes. It
// returns nil when y is too short.
func DetectChange(y []float64, h, period, window int) *Change {
	return detectChange(y, h, period, window, 0)
}

// detectChange is DetectChange with one more profile to try: the moving
// profile of the given number of seasons (0: none), that of the
// backtested model's phase lines.
func detectChange(y []float64, h, period, window, seasons int) *Change {
	n := len(y)
	window = min(window, n)
	if window < 3*minSegment {
		return nil
	}
	// NB: ways to remove the season: a fixed profile, and one whose
	// shape moves (each phase on its own line over the last three
	// seasons, less their common trend), so that a daily trough that
	// deepens is neither a drift nor a step. The one under which the
	// best explanation fits better wins.
	//
	// When the backtests chose phase lines over two seasons, their
	// profile joins: it fits the window closer than the others (its
	// lines run through the last season), so it mostly wins, and the
	// backtests, which judged it out of sample, had chosen it. A trough
	// that began to sink within the last three days is then no step
	// under the three-season profile that keeps the next trough high.
	var best *Change
	bestBIC := math.Inf(1)
	type cand struct {
		name     string
		prof, pv func(int) float64
	}
	fp, fv := profile(y, period)
	cands := []cand{{name: "fixed", prof: fp, pv: fv}}
	if mp, mv := movingProfile(y, period, 3); mp != nil {
		cands = append(cands, cand{"moving", mp, mv})
	}
	if seasons > 0 && seasons != 3 {
		if mp, mv := movingProfile(y, period, seasons); mp != nil {
			cands = append(cands, cand{fmt.Sprintf("moving%d", seasons), mp, mv})
		}
	}
	var bc cand
	for _, c := range cands {
		ch, b := weigh(y, h, window, c.prof, c.pv)
		if b < bestBIC {
			best, bestBIC, bc = ch, b, c
			best.Profile = c.name
		}
	}
	// NB: one change per window: after a step, a drift that sets in
	// later is the step's "no change" unless the points after the step
	// are weighed on their own.
	for c := best; c.since() >= 3*minSegment; c = c.Then {
		c.Then, _ = weigh(y, h, c.since(), bc.prof, bc.pv)
		c.Then.Profile = bc.name
	}
	return best
}

// weigh weighs the explanations of y's last window points less prof; it
// also returns the best explanation's BIC. pv, when not nil, is the
// variance of prof as an estimate, which the forecasts' intervals add.
func weigh(y []float64, h, window int, prof, pv func(int) float64) (*Change, float64) {
	n := len(y)
	w := make([]float64, window)
	off := n - window
	for i := range w {
		w[i] = y[off+i] - prof(off+i)
	}
	wn := float64(window)
	// No change: a line.
	_, _, _, _, sse0 := lineFit(w)
	// A new trend at k: a + b·t + c·max(0, t−k); a new level: a + b·t + d·[t ≥ k].
	sse1, k1 := math.Inf(1), 0
	sse2, k2 := math.Inf(1), 0
	sse3, k3 := math.Inf(1), 0
	floor := 1e-12 * (1 + sse0)
	bic := func(sse float64, params int) float64 {
		return wn*math.Log(math.Max(sse, floor)/wn) + float64(params)*math.Log(wn)
	}
	// NB: a change is weighed by its likelihood averaged over where it
	// starts (each position alike), not by that of the position that
	// fits best: the best of dozens of positions also fits the noise, more
	// than the one parameter a BIC charges for it. A noisy drift of a few
	// points, which some position of a step fits by chance, is then a
	// drift sooner. Its forecast still starts at the best position.
	var e1, e2, e3 []float64 // −BIC/2 at each position
	// NB: a step may be as recent as the last point, a new trend needs
	// minSegment points: a step one to four points ago is not a drift.
	for k := minSegment; k < window; k++ {
		if k <= window-minSegment {
			s := hingeSSE(w, k)
			e1 = append(e1, -bic(s, 3)/2)
			if s < sse1 {
				sse1, k1 = s, k
			}
			s = shiftFit(w, k).sse
			e3 = append(e3, -bic(s, 4)/2)
			if s < sse3 {
				sse3, k3 = s, k
			}
		}
		s := stepSSE(w, k)
		e2 = append(e2, -bic(s, 3)/2)
		if s < sse2 {
			sse2, k2 = s, k
		}
	}
	// NB: the shift pays for its extra parameter: a drift that a step
	// explains as well stays a step.
	b0 := bic(sse0, 2)
	b1, b2, b3 := -2*logMeanExp(e1), -2*logMeanExp(e2), -2*logMeanExp(e3)
	bm := math.Min(math.Min(b0, b1), math.Min(b2, b3))
	l0 := math.Exp(-(b0 - bm) / 2)
	l1 := changePrior * math.Exp(-(b1-bm)/2)
	l2 := changePrior * math.Exp(-(b2-bm)/2)
	l3 := changePrior * math.Exp(-(b3-bm)/2)
	tot := l0 + l1 + l2 + l3
	// The profile candidates compete by the best single explanation.
	best := math.Min(math.Min(b0, bic(sse1, 4)), math.Min(bic(sse2, 4), bic(sse3, 5)))
	c := &Change{Window: window, None: l0 / tot, Trend: l1 / tot, Level: l2 / tot, Shift: l3 / tot,
		TrendAt: window - k1, LevelAt: window - k2, ShiftAt: window - k3}
	// The new trend: the hinge continued, its slope as uncertain as a
	// line's through the points after the change.
	c.TrendForecast = Forecast{Model: "trend_change", Mean: make([]float64, h), Sigma: make([]float64, h)}
	hf := ls3(w, func(t int) float64 { return math.Max(0, float64(t-k1)) })
	seg := float64(window - k1)
	s2 := hf.sse / float64(max(window-4, 1))
	xm, sxx := (seg-1)/2, seg*(seg*seg-1)/12
	last := hf.c[0] + hf.c[1]*float64(window-1) + hf.c[2]*float64(window-1-k1)
	slope := shrink(hf.c[1]+hf.c[2], s2/sxx)
	for i := range h {
		c.TrendForecast.Mean[i] = last + slope*float64(i+1)
		x := float64(window-k1+i) - xm
		c.TrendForecast.Sigma[i] = math.Sqrt(s2 * (1 + 1/seg + x*x/sxx))
	}
	// The new level: the level after the step, with the window's slope.
	c.LevelForecast = Forecast{Model: "level_change", Mean: make([]float64, h), Sigma: make([]float64, h)}
	a, b, d, ls2 := stepFit(w, k2)
	m := float64(window - k2)
	for i := range h {
		t := float64(window + i)
		c.LevelForecast.Mean[i] = a + b*t + d
		c.LevelForecast.Sigma[i] = math.Sqrt(ls2 * (1 + 1/m))
	}
	// The shift: the new slope from the new level, both known only from
	// the points after the change.
	c.ShiftForecast = Forecast{Model: "shift_change", Mean: make([]float64, h), Sigma: make([]float64, h)}
	sf := shiftFit(w, k3)
	seg = float64(window - k3)
	s2 = sf.sse / float64(max(window-5, 1))
	xm, sxx = (seg-1)/2, seg*(seg*seg-1)/12
	last = sf.c[0] + sf.c[1]*float64(window-1) + sf.c[2]*float64(window-1-k3) + sf.c[3]
	slope = shrink(sf.c[1]+sf.c[2], s2/sxx)
	for i := range h {
		c.ShiftForecast.Mean[i] = last + slope*float64(i+1)
		x := float64(window-k3+i) - xm
		c.ShiftForecast.Sigma[i] = math.Sqrt(s2 * (1 + 1/seg + x*x/sxx))
	}
	for i := range h {
		s := prof(n + i)
		c.TrendForecast.Mean[i] += s
		c.LevelForecast.Mean[i] += s
		c.ShiftForecast.Mean[i] += s
		if pv != nil {
			// NB: a profile extrapolated a season ahead is as uncertain
			// as SeasonalDrift's forecast; without it the new level
			// would carry the moving profile's next trough as if it
			// were known.
			v := pv(n + i)
			c.TrendForecast.Sigma[i] = math.Sqrt(c.TrendForecast.Sigma[i]*c.TrendForecast.Sigma[i] + v)
			c.LevelForecast.Sigma[i] = math.Sqrt(c.LevelForecast.Sigma[i]*c.LevelForecast.Sigma[i] + v)
			c.ShiftForecast.Sigma[i] = math.Sqrt(c.ShiftForecast.Sigma[i]*c.ShiftForecast.Sigma[i] + v)
		}
	}
	return c, best
}

// shrink pulls a slope estimated with variance v toward zero, by
// 2b²/(2b² + v): the posterior mean under a normal prior centred on zero
// whose variance is twice the slope's own square (empirical Bayes; the
// accuracy suite in benchmarks/kpiaccuracy chose the factor two — with
// b² alone a noisy drift lost a warning). A slope read from a few noisy
// points after a change is not carried on at full pace over the
// horizon, while a clear one barely moves.
func shrink(b, v float64) float64 {
	if b == 0 {
		return 0
	}
	return b * b * b / (b*b + v/2)
}

// movingProfile is a seasonal profile whose shape moves: each phase's
// line over the last k seasons (SeasonalDrift's), less the lines'
// common level and trend, so that a trend shared by every phase (a
// drift) stays in the series. It also returns the variance of the
// profile at an index: the phase line's, σ²(1/K + (s−s̄)²/Skk)/W as in
// SeasonalDrift (σ² from three seasons' lines when k is 2). Nil without
// a period or k seasons.
func movingProfile(y []float64, period, k int) (prof, variance func(int) float64) {
	if period < 2 || k < 2 || len(y) < max(k, 3)*period {
		return nil, nil
	}
	a, b, first, half := phaseLines(y, period, k)
	s2 := phaseSSE(y, period, max(k, 3))
	w := float64(2*half + 1)
	season := func(i int) float64 {
		t := i - first
		if t < 0 {
			return math.Floor(float64(t) / float64(period))
		}
		return float64(t / period)
	}
	am, bm := 0.0, 0.0
	for j := range a {
		am += a[j]
		bm += b[j]
	}
	am /= float64(period)
	bm /= float64(period)
	prof = func(i int) float64 {
		t := i - first
		j := ((t % period) + period) % period
		return (a[j] - am) + (b[j]-bm)*season(i)
	}
	variance = func(i int) float64 {
		d := season(i) - float64(k-1)/2
		return s2 * (1/float64(k) + d*d/(float64(k*(k*k-1))/12)) / w
	}
	return prof, variance
}

// profile returns the seasonal profile of y (the mean of each phase of
// the detrended series, centred) as a function of the index, and its
// variance as an estimate: the residual variance over the phase's count
// of seasons. Zero without a period.
func profile(y []float64, period int) (prof, variance func(int) float64) {
	if period < 2 || len(y) < 2*period {
		zero := func(int) float64 { return 0 }
		return zero, zero
	}
	a, b, _, _ := fitLine(y)
	pm, cnt := make([]float64, period), make([]int, period)
	for i, v := range y {
		pm[i%period] += v - (a + b*float64(i))
		cnt[i%period]++
	}
	mean := 0.0
	for i := range pm {
		pm[i] /= float64(cnt[i])
		mean += pm[i]
	}
	mean /= float64(period)
	sse := 0.0
	for i, v := range y {
		e := v - (a + b*float64(i)) - pm[i%period]
		sse += e * e
	}
	s2 := sse / float64(max(len(y)-period-2, 1))
	prof = func(i int) float64 { return pm[i%period] - mean }
	variance = func(i int) float64 { return s2 / float64(cnt[i%period]) }
	return prof, variance
}

// lineFit fits a line to y: intercept, slope, x̄, Sxx and the SSE.
func lineFit(y []float64) (a, b, xm, sxx, sse float64) {
	a, b, xm, sxx = fitLine(y)
	for i, v := range y {
		e := v - (a + b*float64(i))
		sse += e * e
	}
	return a, b, xm, sxx, sse
}

// hingeSSE is the least-squares SSE of a + b·t + c·max(0, t−k) on y.
func hingeSSE(y []float64, k int) float64 {
	return ls3(y, func(t int) float64 { return math.Max(0, float64(t-k)) }).sse
}

// stepSSE is the least-squares SSE of a + b·t + d·[t ≥ k] on y.
func stepSSE(y []float64, k int) float64 {
	return ls3(y, func(t int) float64 { return b2f(t >= k) }).sse
}

// stepFit returns the coefficients of a + b·t + d·[t ≥ k] and the
// residual variance.
func stepFit(y []float64, k int) (a, b, d, s2 float64) {
	f := ls3(y, func(t int) float64 { return b2f(t >= k) })
	return f.c[0], f.c[1], f.c[2], f.sse / float64(max(len(y)-4, 1))
}

// shiftFit fits a + b·t + c·max(0, t−k) + d·[t ≥ k] to y: a step and a
// new slope from the same point.
func shiftFit(y []float64, k int) fit {
	return lsq(y, func(t int) float64 { return math.Max(0, float64(t-k)) }, func(t int) float64 { return b2f(t >= k) })
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// fit is a least-squares fit: the coefficients of 1, t and the extra
// regressors in order, and the SSE.
type fit struct {
	c   []float64
	sse float64
}

// ls3 fits y ≈ c0 + c1·t + c2·x(t) by least squares.
func ls3(y []float64, x func(int) float64) fit { return lsq(y, x) }

// lsq fits y ≈ c0 + c1·t + Σ c_{j+2}·xs[j](t) by least squares (normal
// equations, Gaussian elimination with partial pivoting; a singular
// system gives an infinite SSE).
func lsq(y []float64, xs ...func(int) float64) fit {
	p := 2 + len(xs)
	m := make([][]float64, p) // the normal equations, right-hand side last
	for i := range m {
		m[i] = make([]float64, p+1)
	}
	f := make([]float64, p)
	row := func(t int) {
		f[0], f[1] = 1, float64(t)
		for j, x := range xs {
			f[j+2] = x(t)
		}
	}
	for t, v := range y {
		row(t)
		for i := range p {
			for j := range p {
				m[i][j] += f[i] * f[j]
			}
			m[i][p] += f[i] * v
		}
	}
	scale := 0.0
	for i := range p {
		scale = math.Max(scale, math.Abs(m[i][i]))
	}
	for col := range p {
		piv := col
		for r := col + 1; r < p; r++ {
			if math.Abs(m[r][col]) > math.Abs(m[piv][col]) {
				piv = r
			}
		}
		if math.Abs(m[piv][col]) <= 1e-12*scale {
			return fit{sse: math.Inf(1)}
		}
		m[col], m[piv] = m[piv], m[col]
		for r := col + 1; r < p; r++ {
			q := m[r][col] / m[col][col]
			for j := col; j <= p; j++ {
				m[r][j] -= q * m[col][j]
			}
		}
	}
	out := fit{c: make([]float64, p)}
	for i := p - 1; i >= 0; i-- {
		v := m[i][p]
		for j := i + 1; j < p; j++ {
			v -= m[i][j] * out.c[j]
		}
		out.c[i] = v / m[i][i]
	}
	for t, v := range y {
		row(t)
		e := v
		for i := range p {
			e -= out.c[i] * f[i]
		}
		out.sse += e * e
	}
	return out
}
