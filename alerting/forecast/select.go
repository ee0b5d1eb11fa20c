package forecast

import (
	"fmt"
	"math"
	"math/rand/v2"
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
	// Others are the other candidates' forecasts over the full history
	// with their weights (inverse fourth power of the backtest MAE, normalised over
	// all candidates including the chosen one, whose weight is Weight).
	Others  []Forecast
	Weights []float64
	Weight  float64
	// Base is the backtested choice; Forecast is the new trend's instead
	// when Change says the KPI most likely started to drift.
	Base Forecast
	// Change weighs a recent change of course (nil: too short to tell).
	Change *Change
}

// Backtest is a rolling-origin backtest weighted to the recent past:
// origins h/8, h/4, h/2, h and 2h steps before the end (up to `folds` of
// them), each fitted on everything before it and forecasting up to h
// steps or to the end. Every fold counts the same, so the short recent
// folds, which see a change first, weigh as much as the long old ones.
func Backtest(m Model, y []float64, h, folds int) Score {
	sc := Score{Model: m.Name()}
	n := len(y)
	h = min(h, n/4)
	var origins []int
	for _, back := range []int{h / 8, h / 4, h / 2, h, 2 * h} {
		if back >= 1 && len(origins) < folds && (len(origins) == 0 || n-back != origins[len(origins)-1]) {
			origins = append(origins, n-back)
		}
	}
	if h < 1 || len(origins) == 0 || origins[len(origins)-1] < m.MinPoints() {
		sc.Err, sc.MAE, sc.MAPE = ErrShort.Error(), math.Inf(1), math.NaN()
		return sc
	}
	var mae, mape, z2 float64
	var pfolds, cnt int
	for _, origin := range origins {
		steps := min(h, n-origin)
		f, err := m.Forecast(y[:origin], steps)
		if err != nil {
			sc.Err, sc.MAE, sc.MAPE = err.Error(), math.Inf(1), math.NaN()
			return sc
		}
		var abs, pct float64
		var pcnt int
		for i := range steps {
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
		mae += abs / float64(steps)
		if pcnt > 0 {
			mape += 100 * pct / float64(pcnt)
			pfolds++
		}
	}
	sc.MAE = mae / float64(len(origins))
	sc.MAPE = math.NaN()
	if pfolds > 0 {
		sc.MAPE = mape / float64(pfolds)
	}
	sc.Calibration = math.Sqrt(z2 / float64(cnt))
	return sc
}

// Candidates are the models tried for a series forecast h steps ahead
// with the given seasonal period in steps (0: none): linear trends over
// all of the history and over the last h steps, Holt, and with a season
// Holt-Winters, a seasonal local trend and each phase on its line over
// the last three and the last two seasons (a trough that sinks on).
func Candidates(h, period int) []Model {
	w, short := max(h, 8), max(h/4, 8)
	ms := []Model{Linear{}, Linear{Window: w}, Linear{Window: short}, Holt{}}
	if period >= 2 {
		ms = append(ms, HoltWinters{Period: period}, SeasonalLinear{Period: period, Window: w}, SeasonalLinear{Period: period, Window: short},
			SeasonalDrift{Period: period, Seasons: 3}, SeasonalDrift{Period: period, Seasons: 2})
	}
	return ms
}

// maxCalibration caps how much a bad backtest widens the intervals.
const maxCalibration = 1.5

// Select backtests every candidate on y, picks the one with the least MAE,
// refits it on all of y and forecasts h steps; intervals are widened by
// the chosen model's backtest calibration when it is above 1.
func Select(y []float64, h int, period int) (Selection, error) {
	var sel Selection
	best := -1
	models := Candidates(h, period)
	bh := max(h, 1)
	if period >= 2 {
		bh = max(bh, period/2) // judge seasonal models over a good part of a season
	}
	for i, m := range models {
		sc := Backtest(m, y, bh, 5)
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
	fit := func(i int) (Forecast, error) {
		f, err := models[i].Forecast(y, h)
		if err != nil {
			return f, err
		}
		if c := sel.Scores[i].Calibration; c > 1 && !math.IsInf(c, 0) {
			c = min(c, maxCalibration)
			for j := range f.Sigma {
				f.Sigma[j] *= c
			}
		}
		return f, nil
	}
	f, err := fit(best)
	if err != nil {
		return sel, err
	}
	sel.Forecast, sel.Base = f, f
	// A change of course the backtests cannot see yet: a window of twice
	// the horizon (at least 24 points) before now.
	seasons := 0
	if m, ok := models[best].(SeasonalDrift); ok {
		seasons = m.Seasons
	}
	if c := detectChange(y, h, period, max(2*h, 24), seasons); c != nil {
		sel.Change = c
		switch {
		case c.Trend >= 0.5:
			sel.Forecast = c.TrendForecast
		case c.Shift >= 0.5:
			sel.Forecast = c.ShiftForecast
		}
	}
	// Weights for the averaged breach probability: models within twice the
	// best backtest error, by the inverse fourth power of their error (the
	// accuracy suite in benchmarks/kpiaccuracy chose the power).
	bestMAE := sel.Scores[best].MAE
	inv := func(mae float64) float64 { return 1 / math.Max(mae*mae*mae*mae, 1e-300) }
	total := inv(bestMAE)
	if bestMAE == 0 || math.IsInf(bestMAE, 0) {
		sel.Weight = 1
		return sel, nil
	}
	for i, sc := range sel.Scores {
		if i == best || sc.Err != "" || sc.MAE > 2*bestMAE {
			continue
		}
		of, err := fit(i)
		if err != nil {
			continue
		}
		sel.Others = append(sel.Others, of)
		sel.Weights = append(sel.Weights, inv(sc.MAE))
		total += inv(sc.MAE)
	}
	sel.Weight = inv(bestMAE) / total
	for i := range sel.Weights {
		sel.Weights[i] /= total
	}
	return sel, nil
}

// AssessSelection judges the chosen forecast against the target (ETA,
// step probability) and averages the breach probability over the
// candidates by their weights, so that one model's quirk (a trend read
// into a level shift) does not raise a warning on its own.
//
// With a Change, that average is the probability under "no change", and
// the new trend's, the new level's and the shift's probabilities join
// it by the change's weights (the most likely change's own by those of
// the changes after it, Change.Then).
func AssessSelection(sel Selection, target float64, dir Direction) Assessment {
	a := Assess(sel.Forecast, target, dir)
	base := a
	if sel.Change != nil || len(sel.Others) > 0 {
		base = Assess(sel.Base, target, dir)
	}
	p := base.Probability
	if len(sel.Others) > 0 {
		p *= sel.Weight
		for i, f := range sel.Others {
			p += sel.Weights[i] * Assess(f, target, dir).Probability
		}
	}
	if c := sel.Change; c != nil {
		p = c.probability(p, func(f Forecast) float64 { return Assess(f, target, dir).Probability })
	}
	a.Probability = p
	return a
}

// ProbabilityAt is the probability that step i (0-based) of the
// forecast is on the wrong side of the target, averaged as
// AssessSelection averages: over the backtested candidates by their
// weights, then with a change of course by its weights. A KPI judged at
// a deadline breaches only there.
func ProbabilityAt(sel Selection, i int, target float64, dir Direction) float64 {
	at := func(f Forecast) float64 {
		if i < 0 || i >= len(f.Mean) {
			return 0
		}
		mu, sd := f.Mean[i], f.Sigma[i]
		switch {
		case sd <= 0 || math.IsNaN(sd):
			if (dir == Above && mu < target) || (dir == Below && mu > target) {
				return 1
			}
			return 0
		case dir == Above:
			return normCDF((target - mu) / sd)
		default:
			return 1 - normCDF((target-mu)/sd)
		}
	}
	p := at(sel.Base)
	if len(sel.Others) > 0 {
		p *= sel.Weight
		for j, f := range sel.Others {
			p += sel.Weights[j] * at(f)
		}
	}
	if c := sel.Change; c != nil {
		p = c.probability(p, at)
	}
	return p
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
	// Probability of a breach within the horizon: that any future value is
	// on the wrong side, from simulated paths whose error has a part common
	// to all steps (the model's level and trend error, growing with the
	// step) and an independent part per step (the one-step noise).
	Probability float64
	// StepProbability is the largest probability of a single step being on
	// the wrong side (a lower bound of Probability).
	StepProbability float64
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
		a.StepProbability = max(a.StepProbability, p)
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
	a.Probability = max(crossProbability(f, target, dir), a.StepProbability)
	return a
}

// paths is the number of simulated paths; a fixed seed keeps Assess
// deterministic.
const paths = 500

func crossProbability(f Forecast, target float64, dir Direction) float64 {
	if len(f.Mean) == 0 {
		return 0
	}
	r := rand.New(rand.NewPCG(0x6b7069, 0x666f7265))
	noise := f.Sigma[0]
	common := make([]float64, len(f.Sigma))
	for i, s := range f.Sigma {
		common[i] = math.Sqrt(math.Max(s*s-noise*noise, 0))
	}
	hits := 0
	for range paths {
		zc := r.NormFloat64()
		for i, mu := range f.Mean {
			v := mu + zc*common[i] + r.NormFloat64()*noise
			if (dir == Above && v < target) || (dir == Below && v > target) {
				hits++
				break
			}
		}
	}
	return float64(hits) / paths
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
