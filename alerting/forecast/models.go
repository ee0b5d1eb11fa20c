// Package forecast fits time-series models to evenly spaced history and
// forecasts it with prediction intervals: a least-squares linear trend (as
// predict_linear), Holt's double exponential smoothing, and additive
// Holt-Winters with a seasonal period. Select picks the model with the
// least rolling-backtest error on the series' own history; Assess turns a
// forecast into a breach probability and an expected time of breach.
//
// The package is pure computation: no storage, no clocks.
package forecast

import (
	"errors"
	"fmt"
	"math"
)

// Forecast is a model's forecast for steps 1..h after the last
// observation: Mean[i] and Sigma[i] (the standard deviation of the
// forecast error) are for step i+1.
type Forecast struct {
	Model string
	Mean  []float64
	Sigma []float64
}

// Model fits a series and forecasts it.
type Model interface {
	Name() string
	// MinPoints is the shortest history the model can fit.
	MinPoints() int
	// Forecast fits y and forecasts h steps ahead.
	Forecast(y []float64, h int) (Forecast, error)
}

// ErrShort reports too little history for a model.
var ErrShort = errors.New("forecast: not enough history")

// Linear is an ordinary least-squares trend, as PromQL's predict_linear,
// over the whole history or, with a Window, over its last Window points.
type Linear struct{ Window int }

// Name implements Model.
func (m Linear) Name() string {
	if m.Window > 0 {
		return fmt.Sprintf("linear_last%d", m.Window)
	}
	return "linear"
}

// MinPoints implements Model.
func (Linear) MinPoints() int { return 3 }

// Forecast implements Model. Intervals are the regression's prediction
// intervals: σ²(1 + 1/n + (x−x̄)²/Sxx).
func (m Linear) Forecast(y []float64, h int) (Forecast, error) {
	if m.Window > 0 && len(y) > m.Window {
		y = y[len(y)-m.Window:]
	}
	n := len(y)
	if n < 3 {
		return Forecast{}, ErrShort
	}
	f := Forecast{Model: m.Name(), Mean: make([]float64, h), Sigma: make([]float64, h)}
	if m.Window > 0 {
		y = y[levelShift(y):]
	}
	lineForecast(y, f.Mean, f.Sigma)
	return f, nil
}

// levelShift finds a step in y: the split into two flat segments that
// explains y clearly better than a line does (a third less squared error)
// and leaves at least 4 points after it. It returns the index the latest
// level starts at, 0 when there is no step. A trend fitted across a step
// would read the step as a slope.
func levelShift(y []float64) int {
	n := len(y)
	if n < 12 {
		return 0
	}
	a, b, _, _ := fitLine(y)
	lineSSE := 0.0
	for i, v := range y {
		e := v - (a + b*float64(i))
		lineSSE += e * e
	}
	// Prefix sums give each split's two-mean SSE in O(1).
	s, s2 := make([]float64, n+1), make([]float64, n+1)
	for i, v := range y {
		s[i+1], s2[i+1] = s[i]+v, s2[i]+v*v
	}
	sse := func(i, j int) float64 { // of y[i:j] around its mean
		k := float64(j - i)
		sum := s[j] - s[i]
		return s2[j] - s2[i] - sum*sum/k
	}
	best, at := math.Inf(1), 0
	for k := 4; k <= n-4; k++ {
		if v := sse(0, k) + sse(k, n); v < best {
			best, at = v, k
		}
	}
	if best < lineSSE*2/3 {
		return at
	}
	return 0
}

// lineForecast fits a line to y and writes the forecast and its
// prediction-interval standard deviations for the len(mean) steps after y.
func lineForecast(y, mean, sigma []float64) {
	n := len(y)
	a, b, xm, sxx := fitLine(y)
	sse := 0.0
	for i, v := range y {
		e := v - (a + b*float64(i))
		sse += e * e
	}
	s2 := sse / float64(n-2)
	for i := range mean {
		x := float64(n - 1 + i + 1)
		mean[i] = a + b*x
		sigma[i] = math.Sqrt(s2 * (1 + 1/float64(n) + (x-xm)*(x-xm)/sxx))
	}
}

// SeasonalLinear removes a seasonal profile (the mean of each phase of
// the detrended history) and fits a linear trend to the last Window
// points of what is left: a local trend on a seasonal KPI.
type SeasonalLinear struct{ Period, Window int }

// Name implements Model.
func (m SeasonalLinear) Name() string { return fmt.Sprintf("seasonal_linear_last%d", m.Window) }

// MinPoints implements Model: two full seasons.
func (m SeasonalLinear) MinPoints() int { return 2 * max(m.Period, 2) }

// Forecast implements Model.
func (m SeasonalLinear) Forecast(y []float64, h int) (Forecast, error) {
	p, n := m.Period, len(y)
	if p < 2 || n < m.MinPoints() {
		return Forecast{}, ErrShort
	}
	w := n
	if m.Window > 0 {
		w = min(n, max(m.Window, 3))
	}
	// With fewer than four seasons of history, the profile comes from
	// those before the window (two at least): a drift within the window
	// would otherwise go partly into its phases' profile (the more, the
	// fewer the seasons: three weeks of a weekly season) and out of the
	// trend fitted to it. With more, that share is small and every
	// season makes the profile surer.
	past := y
	if n < 4*p && n-w >= 2*p {
		past = y[:n-w]
	}
	prof := phaseProfile(past, p)
	d := make([]float64, w)
	for i := range d {
		t := n - w + i
		d[i] = y[t] - prof[t%p]
	}
	d = d[levelShift(d):]
	f := Forecast{Model: m.Name(), Mean: make([]float64, h), Sigma: make([]float64, h)}
	lineForecast(d, f.Mean, f.Sigma)
	for i := range f.Mean {
		f.Mean[i] += prof[(n+i)%p]
	}
	return f, nil
}

// phaseProfile is the seasonal profile of y with period p, centred on
// zero, fitted together with a linear trend: y ≈ a + b·t + prof[t mod p].
// The slope is the within-phase one (each phase's values against their
// times, around the phase's means), so that the season's own shape is
// not read as a slope — a line fitted first to a sine over two periods
// leans, and its lean comes back in every phase of the profile.
func phaseProfile(y []float64, p int) []float64 {
	ym, tm, cnt := make([]float64, p), make([]float64, p), make([]int, p)
	for i, v := range y {
		ym[i%p] += v
		tm[i%p] += float64(i)
		cnt[i%p]++
	}
	for j := range p {
		if cnt[j] > 0 {
			ym[j] /= float64(cnt[j])
			tm[j] /= float64(cnt[j])
		}
	}
	var sxy, sxx float64
	for i, v := range y {
		dt := float64(i) - tm[i%p]
		sxy += dt * (v - ym[i%p])
		sxx += dt * dt
	}
	b := 0.0
	if sxx > 0 {
		b = sxy / sxx
	}
	prof := make([]float64, p)
	mean := 0.0
	for j := range p {
		prof[j] = ym[j] - b*tm[j]
		mean += prof[j]
	}
	mean /= float64(p)
	for j := range prof {
		prof[j] -= mean
	}
	return prof
}

// fitLine returns intercept a and slope b of y over x = 0…n−1, the mean of
// x and Σ(x−x̄)².
func fitLine(y []float64) (a, b, xm, sxx float64) {
	n := float64(len(y))
	xm = (n - 1) / 2
	ym := 0.0
	for _, v := range y {
		ym += v
	}
	ym /= n
	sxy := 0.0
	for i, v := range y {
		dx := float64(i) - xm
		sxy += dx * (v - ym)
		sxx += dx * dx
	}
	b = sxy / sxx
	return ym - b*xm, b, xm, sxx
}

// Holt is double exponential smoothing (level and trend), additive errors.
// A zero Alpha or Beta means: chosen by least one-step squared error.
type Holt struct{ Alpha, Beta float64 }

// Name implements Model.
func (Holt) Name() string { return "holt" }

// MinPoints implements Model.
func (Holt) MinPoints() int { return 4 }

var (
	alphaGrid = []float64{0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9}
	betaGrid  = []float64{0.01, 0.03, 0.1, 0.2}
	gammaGrid = []float64{0.01, 0.05, 0.1, 0.3}
)

// holtRun smooths y and returns the final level and trend and the sum of
// squared one-step errors.
func holtRun(y []float64, alpha, beta float64) (level, trend, sse float64) {
	level, trend = y[0], y[1]-y[0]
	for _, v := range y[1:] {
		pred := level + trend
		e := v - pred
		sse += e * e
		prev := level
		level = alpha*v + (1-alpha)*pred
		trend = beta*(level-prev) + (1-beta)*trend
	}
	return level, trend, sse
}

// Forecast implements Model. The h-step error variance is
// σ²(1 + Σ_{j<h} (α(1+jβ))²), the ETS(A,A,N) formula.
func (m Holt) Forecast(y []float64, h int) (Forecast, error) {
	n := len(y)
	if n < m.MinPoints() {
		return Forecast{}, ErrShort
	}
	alphas, betas := grid(m.Alpha, alphaGrid), grid(m.Beta, betaGrid)
	best, ba, bb := math.Inf(1), 0.0, 0.0
	for _, a := range alphas {
		for _, b := range betas {
			if _, _, sse := holtRun(y, a, b); sse < best {
				best, ba, bb = sse, a, b
			}
		}
	}
	level, trend, sse := holtRun(y, ba, bb)
	s2 := sse / float64(max(n-1-2, 1))
	f := Forecast{Model: "holt", Mean: make([]float64, h), Sigma: make([]float64, h)}
	acc := 1.0
	for i := range h {
		f.Mean[i] = level + float64(i+1)*trend
		f.Sigma[i] = math.Sqrt(s2 * acc)
		c := ba * (1 + float64(i+1)*bb)
		acc += c * c
	}
	return f, nil
}

func grid(fixed float64, g []float64) []float64 {
	if fixed > 0 {
		return []float64{fixed}
	}
	return g
}

// HoltWinters is additive Holt-Winters with a seasonal period of Period
// steps. Zero smoothing parameters are chosen by least one-step squared
// error.
type HoltWinters struct {
	Period             int
	Alpha, Beta, Gamma float64
}

// Name implements Model.
func (HoltWinters) Name() string { return "holt_winters" }

// MinPoints implements Model: two full seasons.
func (m HoltWinters) MinPoints() int { return 2 * max(m.Period, 2) }

// hwInit is the classical start: level the first season's mean, trend the
// mean change between the first two seasons, seasonals the first season's
// deviations from its mean.
func hwInit(y []float64, p int) (level, trend float64, season []float64) {
	m1, m2 := 0.0, 0.0
	for i := range p {
		m1 += y[i]
		m2 += y[p+i]
	}
	m1 /= float64(p)
	m2 /= float64(p)
	season = make([]float64, p)
	for i := range p {
		season[i] = y[i] - m1
	}
	trend = (m2 - m1) / float64(p)
	// The level at the end of the first season.
	return m1 + trend*float64(p-1)/2, trend, season
}

// hwRun smooths y from the second season on; season is updated in place
// and indexed by t mod p.
func hwRun(y []float64, p int, alpha, beta, gamma float64, season []float64) (level, trend, sse float64) {
	level, trend, s0 := hwInit(y, p)
	copy(season, s0)
	for t := p; t < len(y); t++ {
		si := t % p
		pred := level + trend + season[si]
		e := y[t] - pred
		sse += e * e
		prevL, prevT := level, trend
		level = alpha*(y[t]-season[si]) + (1-alpha)*(prevL+prevT)
		trend = beta*(level-prevL) + (1-beta)*prevT
		season[si] = gamma*(y[t]-prevL-prevT) + (1-gamma)*season[si]
	}
	return level, trend, sse
}

// Forecast implements Model. The h-step error variance is
// σ²(1 + Σ_{j<h} (α(1+jβ) + γ·[j mod p = 0])²).
func (m HoltWinters) Forecast(y []float64, h int) (Forecast, error) {
	p := m.Period
	if p < 2 {
		return Forecast{}, errors.New("forecast: holt_winters needs a period of at least 2 steps")
	}
	n := len(y)
	if n < m.MinPoints() {
		return Forecast{}, ErrShort
	}
	season := make([]float64, p)
	best, ba, bb, bg := math.Inf(1), 0.0, 0.0, 0.0
	for _, a := range grid(m.Alpha, alphaGrid) {
		for _, b := range grid(m.Beta, betaGrid) {
			for _, g := range grid(m.Gamma, gammaGrid) {
				if _, _, sse := hwRun(y, p, a, b, g, season); sse < best {
					best, ba, bb, bg = sse, a, b, g
				}
			}
		}
	}
	level, trend, sse := hwRun(y, p, ba, bb, bg, season)
	s2 := sse / float64(max(n-p-3, 1))
	f := Forecast{Model: "holt_winters", Mean: make([]float64, h), Sigma: make([]float64, h)}
	acc := 1.0
	for i := range h {
		j := i + 1
		f.Mean[i] = level + float64(j)*trend + season[(n-1+j)%p]
		f.Sigma[i] = math.Sqrt(s2 * acc)
		c := ba * (1 + float64(j)*bb)
		if j%p == 0 {
			c += bg
		}
		acc += c * c
	}
	return f, nil
}

// SeasonalDrift fits a line through each phase of the last Seasons
// seasons (the values at the same time of day over the last days) and
// extends every phase on its own line: a season whose shape changes — a
// daily trough that sinks a little more each day while the peaks stay —
// is forecast to keep changing, which a fixed seasonal profile cannot
// do. Each phase's line is smoothed over its neighbours (an eighth of a
// season) so that noise at one phase does not read as a trend.
type SeasonalDrift struct{ Period, Seasons int }

// Name implements Model.
func (m SeasonalDrift) Name() string { return fmt.Sprintf("seasonal_drift_%d", m.Seasons) }

// MinPoints implements Model.
func (m SeasonalDrift) MinPoints() int { return max(m.Seasons, 3) * max(m.Period, 2) }

// Forecast implements Model. With K seasons and phases smoothed over W
// neighbours, a step k seasons after the first has the line's prediction
// variance σ²(1 + (1/K + (k−k̄)²/Skk)/W).
//
// With two seasons the lines run through the last two (tomorrow is today
// plus today's change from yesterday): a trough that began to sink
// within the last three days sinks on at its current pace, which the
// three-season lines average away. Two points leave a line no residual,
// so σ² is then the three-season lines'.
func (m SeasonalDrift) Forecast(y []float64, h int) (Forecast, error) {
	p, k := m.Period, max(m.Seasons, 2)
	n := len(y)
	if p < 2 || n < m.MinPoints() {
		return Forecast{}, ErrShort
	}
	a, b, first, half := phaseLines(y, p, k)
	km := float64(k-1) / 2
	skk := float64(k*(k*k-1)) / 12
	s2 := phaseSSE(y, p, max(k, 3))
	w := float64(2*half + 1)
	f := Forecast{Model: m.Name(), Mean: make([]float64, h), Sigma: make([]float64, h)}
	for i := range h {
		t := n + i - first
		j, s := t%p, float64(t/p)
		f.Mean[i] = a[j] + b[j]*s
		f.Sigma[i] = math.Sqrt(s2 * (1 + (1/float64(k)+(s-km)*(s-km)/skk)/w))
	}
	return f, nil
}

// phaseSSE is the residual variance of the phase lines through the last
// k ≥ 3 seasons of y.
func phaseSSE(y []float64, p, k int) float64 {
	a, b, first, _ := phaseLines(y, p, k)
	sse := 0.0
	for s := range k {
		for j := range p {
			e := y[first+s*p+j] - (a[j] + b[j]*float64(s))
			sse += e * e
		}
	}
	return sse / float64(max(p*(k-2), 1))
}

// phaseLines fits a line through each phase j of the last k seasons of y
// (period p): a[j] + b[j]·s at season s = 0…k−1, counted from index
// first; each smoothed over ±half neighbouring phases, around the season.
func phaseLines(y []float64, p, k int) (a, b []float64, first, half int) {
	n := len(y)
	first = n - k*p
	a, b = make([]float64, p), make([]float64, p)
	km := float64(k-1) / 2
	skk := float64(k*(k*k-1)) / 12
	for j := range p {
		ym := 0.0
		for s := range k {
			ym += y[first+s*p+j]
		}
		ym /= float64(k)
		sxy := 0.0
		for s := range k {
			sxy += (float64(s) - km) * (y[first+s*p+j] - ym)
		}
		b[j] = sxy / skk
		a[j] = ym - b[j]*km
	}
	half = max(p/16, 1)
	smooth := func(v []float64) []float64 {
		out := make([]float64, p)
		for j := range p {
			for d := -half; d <= half; d++ {
				out[j] += v[((j+d)%p+p)%p]
			}
			out[j] /= float64(2*half + 1)
		}
		return out
	}
	return smooth(a), smooth(b), first, half
}
