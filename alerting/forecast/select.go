package forecast

import (
	"fmt"
	"math"
	"sort"
)

// Score is a model's rolling-backtest error.
type Score struct {
	Model string  `json:"model"`
	MAE   float64 `json:"mae"`
	MAPE  float64 `json:"mape"` // percent; NaN when the actuals are all zero
	// Calibration is the ratio of the backtest's squared errors to the
	// model's own forecast variances (RMS of e/σ); ≥1 widens intervals.
	Calibration float64 `json:"calibration"`
	Err         string  `json:"error,omitempty"`
}

// Selection is the outcome of Select: the chosen model's forecast over
// the full history and every candidate's score.
type Selection struct {
	Forecast
	Scores []Score
}

// Backtest forecasts h steps from `folds` origins spread over the last
// part of y, each fitted on everything before it, and scores the errors.
func Backtest(m Model, y []float64, h, folds int) Score {
	sc := Score{Model: m.Name()}
	n := len(y)
	h = min(h, n/4)
	if h < 1 || n-folds*h < m.MinPoints() {
		sc.Err, sc.MAE, sc.MAPE = ErrShort.Error(), math.Inf(1), math.NaN()
		return sc
	}
	var abs, pct, z2 float64
	var cnt, pcnt int
	for k := folds; k >= 1; k-- {
		origin := n - k*h
		f, err := m.Forecast(y[:origin], h)
		if err != nil {
			sc.Err, sc.MAE, sc.MAPE = err.Error(), math.Inf(1), math.NaN()
			return sc
		}
		for i := range h {
			e := y[origin+i] - f.Mean[i]
			abs += math.Abs(e)
			if y[origin+i] != 0 {
				pct += math.Abs(e / y[origin+i])
				pcnt++
			}
			if f.Sigma[i] > 0 {
				z2 += e * e / (f.Sigma[i] * f.Sigma[i])
			}
			cnt++
		}
	}
	sc.MAE = abs / float64(cnt)
	sc.MAPE = math.NaN()
	if pcnt > 0 {
		sc.MAPE = 100 * pct / float64(pcnt)
	}
	sc.Calibration = math.Sqrt(z2 / float64(cnt))
	return sc
}

// Candidates are the models tried for a series with the given seasonal
// period in steps (0: none).
func Candidates(period int) []Model {
	ms := []Model{Linear{}, Holt{}}
	if period >= 2 {
		ms = append(ms, HoltWinters{Period: period})
	}
	return ms
}

// Select backtests every candidate on y, picks the one with the least MAE,
// refits it on all of y and forecasts h steps; intervals are widened by
// the chosen model's backtest calibration when it is above 1.
func Select(y []float64, h int, period int) (Selection, error) {
	var sel Selection
	best := -1
	models := Candidates(period)
	bh := max(h, 1)
	if period >= 2 {
		bh = max(bh, period/2) // judge seasonal models over a good part of a season
	}
	for i, m := range models {
		sc := Backtest(m, y, bh, 3)
		sel.Scores = append(sel.Scores, sc)
		if sc.Err == "" && (best < 0 || sc.MAE < sel.Scores[best].MAE) {
			best = i
		}
	}
	if best < 0 {
		// Too short to backtest: the simplest model that fits.
		for i, m := range models {
			if len(y) >= m.MinPoints() {
				best = i
				break
			}
		}
		if best < 0 {
			return sel, fmt.Errorf("%w: %d points", ErrShort, len(y))
		}
	}
	f, err := models[best].Forecast(y, h)
	if err != nil {
		return sel, err
	}
	if c := sel.Scores[best].Calibration; c > 1 && !math.IsInf(c, 0) {
		for i := range f.Sigma {
			f.Sigma[i] *= c
		}
	}
	sel.Forecast = f
	return sel, nil
}

// DetectPeriod returns the candidate period (in steps) with the strongest
// autocorrelation above 0.3 among those y covers at least twice, or 0.
func DetectPeriod(y []float64, candidates ...int) int {
	n := len(y)
	if n < 8 {
		return 0
	}
	// Detrend, so that a trend does not look like seasonality.
	a, b, _, _ := fitLine(y)
	r := make([]float64, n)
	var v float64
	for i, x := range y {
		r[i] = x - (a + b*float64(i))
		v += r[i] * r[i]
	}
	if v == 0 {
		return 0
	}
	best, bestAC := 0, 0.3
	for _, p := range candidates {
		if p < 2 || 2*p > n {
			continue
		}
		c := 0.0
		for i := p; i < n; i++ {
			c += r[i] * r[i-p]
		}
		if ac := c / v; ac > bestAC {
			best, bestAC = p, ac
		}
	}
	return best
}

// Direction says which side of the target is good.
type Direction int

// Directions: the KPI must stay above (a floor) or below (a ceiling).
const (
	Above Direction = iota
	Below
)

// Assessment is a forecast judged against a target.
type Assessment struct {
	// Probability of a breach within the horizon: the largest
	// per-step probability of being on the wrong side.
	Probability float64
	// ETA is the first step (1-based) at which the mean forecast is on the
	// wrong side, or 0 if it stays on the right side within the horizon.
	ETA int
	// ETAEarly and ETALate bracket the ETA with the 80% interval: the first
	// step the 80% band touches the target, and the first step the whole
	// band is past it (0: not within the horizon).
	ETAEarly, ETALate int
}

// z80 and z95 are the two-sided normal quantiles of the intervals.
const (
	Z80 = 1.2815515655446004
	Z95 = 1.959963984540054
)

// Assess judges f against target.
func Assess(f Forecast, target float64, dir Direction) Assessment {
	var a Assessment
	for i, mu := range f.Mean {
		sd := f.Sigma[i]
		var p float64
		switch {
		case sd <= 0 || math.IsNaN(sd):
			if (dir == Above && mu < target) || (dir == Below && mu > target) {
				p = 1
			}
		case dir == Above:
			p = normCDF((target - mu) / sd)
		default:
			p = 1 - normCDF((target-mu)/sd)
		}
		a.Probability = max(a.Probability, p)
		wrong := func(v float64) bool { return (dir == Above && v < target) || (dir == Below && v > target) }
		if a.ETA == 0 && wrong(mu) {
			a.ETA = i + 1
		}
		lo, hi := mu-Z80*sd, mu+Z80*sd
		early, late := lo, hi
		if dir == Below {
			early, late = hi, lo
		}
		if a.ETAEarly == 0 && wrong(early) {
			a.ETAEarly = i + 1
		}
		if a.ETALate == 0 && wrong(late) {
			a.ETALate = i + 1
		}
	}
	return a
}

func normCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

// Median returns the median of xs (NaN when empty); xs is reordered.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	sort.Float64s(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}
