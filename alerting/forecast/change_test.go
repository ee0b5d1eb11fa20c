package forecast

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDetectChange tells the explanations apart on series built to be
// each: noise around a level is no change; the same noise with a drift
// over its last 16 points is a new trend, whose forecast goes on down;
// with a drop of the same size 8 points ago and flat since, a new level,
// whose forecast stays flat (eight noisy points leave room for a slope,
// so the shift takes some of the weight); with a drop 24 points ago and
// a drift since, a shift, whose forecast goes on down from the new
// level.
func TestDetectChange(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	noise := make([]float64, 200)
	for i := range noise {
		noise[i] = 100 + r.NormFloat64()
	}
	c := DetectChange(noise, 20, 0, 96)
	require.NotNil(t, c)
	require.Greater(t, c.None, 0.8, "%+v", c)

	drift := append([]float64(nil), noise...)
	for i := 184; i < 200; i++ {
		drift[i] -= 0.6 * float64(i-183)
	}
	c = DetectChange(drift, 20, 0, 96)
	require.Greater(t, c.Trend, 0.8, "%+v", c)
	require.InDelta(t, 16, c.TrendAt, 4)
	require.Less(t, c.TrendForecast.Mean[19], drift[199]-8, "the drift goes on")

	step := append([]float64(nil), noise...)
	for i := 192; i < 200; i++ {
		step[i] -= 6
	}
	c = DetectChange(step, 20, 0, 96)
	require.Greater(t, c.Level+c.Shift, 0.8, "%+v", c)
	require.Greater(t, c.Level, c.Shift, "%+v", c)
	require.Equal(t, 8, c.LevelAt)
	require.InDelta(t, 94, c.LevelForecast.Mean[19], 1.5, "the new level stays")

	shift := append([]float64(nil), noise...)
	for i := 176; i < 200; i++ {
		shift[i] -= 6 + 0.3*float64(i-175)
	}
	c = DetectChange(shift, 20, 0, 96)
	require.Greater(t, c.Shift, 0.8, "%+v", c)
	require.InDelta(t, 24, c.ShiftAt, 2)
	require.InDelta(t, 100-6-0.3*44, c.ShiftForecast.Mean[19], 2, "the drift goes on from the new level")

	require.Nil(t, DetectChange(noise[:10], 5, 0, 96), "too short")
}

// TestChangeThen: a drop 60 points ago, flat for 44 points, then a drift
// over the last 16: the window's most likely change is the drop, and
// the points after it, weighed on their own, are a new trend — which
// carries the breach probability past a target the new level stays
// above.
func TestChangeThen(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	y := make([]float64, 200)
	for i := range y {
		y[i] = 100 + r.NormFloat64()
		if i >= 140 {
			y[i] -= 8
		}
		if i >= 184 {
			y[i] -= 0.6 * float64(i-183)
		}
	}
	c := DetectChange(y, 20, 0, 96)
	require.NotNil(t, c.Then, "%+v", c)
	require.Greater(t, c.Then.Trend, 0.8, "%+v", c.Then)
	require.InDelta(t, 16, c.Then.TrendAt, 4)
	at := func(f Forecast) float64 { return Assess(f, 80, Above).Probability }
	require.Less(t, at(c.LevelForecast)+at(c.ShiftForecast), 0.5, "the drop alone stays above")
	with := c.probability(0, at)
	c.Then = nil
	require.Greater(t, with, 0.5, "the drift since breaches")
	require.Greater(t, with, c.probability(0, at)+0.3, "the drop alone does not")
}

// TestSeasonalChange: on a daily cycle whose trough deepens a little
// more each day, the moving seasonal profile explains the deepening, so
// it is no change; a drift of the whole cycle is a new trend.
func TestSeasonalChange(t *testing.T) {
	const p = 24
	r := rand.New(rand.NewPCG(3, 3))
	series := func(noise float64) []float64 {
		y := make([]float64, 10*p)
		for i := range y {
			amp := 3 + 0.5*float64(max(i-6*p, 0))/p // deeper by 0.5 a day for the last 4 days
			y[i] = 100 + amp*math.Sin(2*math.Pi*float64(i)/p) + noise*r.NormFloat64()
		}
		return y
	}
	c := DetectChange(series(0.3), 24, p, 48)
	require.Greater(t, c.None, 0.5, "%+v", c)

	// SeasonalDrift carries the deepening on: tomorrow's trough is deeper
	// than today's (95.125 without noise; 94.625 tomorrow, less what
	// smoothing over neighbouring phases takes off a trough).
	f, err := SeasonalDrift{Period: p, Seasons: 3}.Forecast(series(0), p)
	require.NoError(t, err)
	trough := func(xs []float64) float64 {
		m := math.Inf(1)
		for _, x := range xs {
			m = math.Min(m, x)
		}
		return m
	}
	require.Less(t, trough(f.Mean), 95.125-0.25)
	require.Greater(t, trough(f.Mean), 94.625-0.25)

	drift := make([]float64, 10*p)
	for i := range drift {
		drift[i] = 100 + 3*math.Sin(2*math.Pi*float64(i)/p) + 0.2*r.NormFloat64()
		if i >= 10*p-12 {
			drift[i] -= 0.3 * float64(i-(10*p-13))
		}
	}
	c = DetectChange(drift, 24, p, 48)
	require.Greater(t, c.Trend+c.Shift, 0.8, "%+v", c)
	require.Greater(t, c.Trend, c.Shift, "%+v", c)
}

// TestTwoSeasonProfile: a trough that began to sink a day and a half ago
// is a change under the three-season profile, which keeps the next
// trough high; with the two-season lines that the backtests chose it is
// no change.
func TestTwoSeasonProfile(t *testing.T) {
	const p = 24
	r := rand.New(rand.NewPCG(5, 5))
	y := make([]float64, 10*p)
	for i := range y {
		amp := 3 + 2*float64(max(i-(10*p-36), 0))/p // 2 deeper a day for the last 36 points
		y[i] = 100 + amp*math.Sin(2*math.Pi*float64(i)/p) + 0.3*r.NormFloat64()
	}
	c := detectChange(y, 24, p, 48, 2)
	require.Equal(t, "moving2", c.Profile, "%+v", c)
	require.Greater(t, c.None, 0.5, "%+v", c)
}

// TestShrink: a slope well above its standard error stays, one within it
// is pulled toward zero.
func TestShrink(t *testing.T) {
	require.InDelta(t, 1, shrink(1, 0.01), 0.01)
	require.InDelta(t, 0.1*0.02/(0.02+0.02), shrink(0.1, 0.02), 1e-12)
	require.Zero(t, shrink(0, 1))
	require.Less(t, shrink(-0.1, 0.02), 0.0)
}

// TestProfileVariance: a fixed profile from four seasons of unit noise
// is known to about a quarter of the noise's variance at each phase.
func TestProfileVariance(t *testing.T) {
	const p = 48
	r := rand.New(rand.NewPCG(9, 9))
	y := make([]float64, 4*p)
	for i := range y {
		y[i] = 100 + 3*math.Sin(2*math.Pi*float64(i)/p) + r.NormFloat64()
	}
	prof, v := profile(y, p)
	require.InDelta(t, 3*math.Sin(2*math.Pi*5/p), prof(5), 1.5)
	require.InDelta(t, 0.25, v(5), 0.08)
}

// TestChangeAveragedOverPositions: over 300 windows of unit noise, and
// the same with a drift of 0.7 a point over their last six points, a
// change weighed by its likelihood averaged over where it starts reads
// the noise as a change less often (1 % of windows; 5 % when weighed by
// its best position) and the drift as a drift more often (87 % against
// 73 %), as a step less often (10 % against 24 %).
func TestChangeAveragedOverPositions(t *testing.T) {
	const n = 300
	var changed, drifted, stepped int
	for s := range n {
		r := rand.New(rand.NewPCG(uint64(s), 11))
		y := make([]float64, 200)
		for i := range y {
			y[i] = 100 + r.NormFloat64()
		}
		if c := DetectChange(y, 24, 0, 48); c.None < 0.5 {
			changed++
		}
		for i := 194; i < 200; i++ {
			y[i] -= 0.7 * float64(i-193)
		}
		c := DetectChange(y, 24, 0, 48)
		if c.Trend+c.Shift > 0.5 {
			drifted++
		}
		if c.Level > c.Trend+c.Shift {
			stepped++
		}
	}
	require.LessOrEqual(t, changed, n*3/100, "noise read as a change")
	require.GreaterOrEqual(t, drifted, n*80/100, "a drift read as a drift")
	require.LessOrEqual(t, stepped, n*15/100, "a drift read as a step")
}

// TestChangeSeenByBacktests: when the most likely change lies half the
// horizon back or more, the backtests' recent folds were fitted on what
// came after it, so with nothing since, the probability is theirs (p0),
// not the change's own forecast's; a more recent change keeps its own.
func TestChangeSeenByBacktests(t *testing.T) {
	p := map[string]float64{"trend": 0.2, "level": 0.1, "shift": 0.3}
	at := func(f Forecast) float64 { return p[f.Model] }
	c := &Change{Level: 1, LevelAt: 12,
		TrendForecast: Forecast{Model: "trend", Mean: make([]float64, 24)},
		LevelForecast: Forecast{Model: "level"}, ShiftForecast: Forecast{Model: "shift"},
		Then: &Change{None: 1},
	}
	require.InDelta(t, 0.9, c.probability(0.9, at), 1e-12, "a step 12 points back, horizon 24")
	c.LevelAt = 11
	require.InDelta(t, 0.1, c.probability(0.9, at), 1e-12, "a step 11 points back")
	c.Then = nil
	c.LevelAt = 12
	require.InDelta(t, 0.1, c.probability(0.9, at), 1e-12, "no further weighing: the step's own")
}
