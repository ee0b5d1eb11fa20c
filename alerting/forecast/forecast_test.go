package forecast

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLinearHandComputed(t *testing.T) {
	// y = 1, 2, 2, 4: slope 0.9, intercept 0.9, SSE 0.7, s² = 0.35.
	f, err := Linear{}.Forecast([]float64{1, 2, 2, 4}, 2)
	require.NoError(t, err)
	require.InDelta(t, 4.5, f.Mean[0], 1e-12)
	require.InDelta(t, 5.4, f.Mean[1], 1e-12)
	// σ²(1 + 1/n + (x−x̄)²/Sxx) = 0.35·(1 + 0.25 + 6.25/5) at x = 4.
	require.InDelta(t, math.Sqrt(0.35*2.5), f.Sigma[0], 1e-12)
	require.InDelta(t, math.Sqrt(0.35*(1+0.25+12.25/5)), f.Sigma[1], 1e-12)

	f, err = Linear{}.Forecast([]float64{1, 3, 5, 7}, 1)
	require.NoError(t, err)
	require.InDelta(t, 9, f.Mean[0], 1e-12)
	require.InDelta(t, 0, f.Sigma[0], 1e-12)
	_, err = Linear{}.Forecast([]float64{1, 2}, 1)
	require.ErrorIs(t, err, ErrShort)
}

func TestHoltHandComputed(t *testing.T) {
	// α = β = 0.5 on 1, 2, 4, 7 from l0 = 1, b0 = 1:
	// errors 0, 1, 2.25 → SSE 6.0625; final level 5.875, trend 1.8125.
	f, err := Holt{Alpha: 0.5, Beta: 0.5}.Forecast([]float64{1, 2, 4, 7}, 2)
	require.NoError(t, err)
	require.InDelta(t, 7.6875, f.Mean[0], 1e-12)
	require.InDelta(t, 9.5, f.Mean[1], 1e-12)
	require.InDelta(t, math.Sqrt(6.0625), f.Sigma[0], 1e-12)
	require.InDelta(t, math.Sqrt(6.0625*(1+0.75*0.75)), f.Sigma[1], 1e-12, "c₁ = α(1+β) = 0.75")
}

func TestHoltWintersHandComputed(t *testing.T) {
	// Period 2, α = β = γ = 0.5 on 1, 3, 2, 4, 3, 5 (computed by hand step
	// by step: level 4.248046875, trend 0.4892578125, seasonals
	// −0.7734375 and 0.751953125).
	y := []float64{1, 3, 2, 4, 3, 5}
	f, err := HoltWinters{Period: 2, Alpha: 0.5, Beta: 0.5, Gamma: 0.5}.Forecast(y, 2)
	require.NoError(t, err)
	require.InDelta(t, 3.9638671875, f.Mean[0], 1e-12)
	require.InDelta(t, 5.978515625, f.Mean[1], 1e-12)
	sse := 0.25*0.25 + 0.4375*0.4375 + 0.203125*0.203125 + 0.05859375*0.05859375
	s2 := sse / 1 // n − p − 3 = 1
	require.InDelta(t, math.Sqrt(s2), f.Sigma[0], 1e-12)
	require.InDelta(t, math.Sqrt(s2*(1+0.75*0.75)), f.Sigma[1], 1e-12)
	_, err = HoltWinters{Period: 4}.Forecast(y, 1)
	require.ErrorIs(t, err, ErrShort)
}

func TestAssessHandComputed(t *testing.T) {
	f := Forecast{Mean: []float64{10, 9, 8}, Sigma: []float64{1, 1, 1}}
	a := Assess(f, 8.5, Above)
	require.InDelta(t, 0.6914624612740131, a.StepProbability, 1e-12, "Φ(0.5) at the third step")
	// Three chances with mostly independent noise: well above one step's.
	require.Greater(t, a.Probability, 0.75)
	require.Less(t, a.Probability, 0.95)
	require.Equal(t, 3, a.ETA)
	require.Equal(t, 2, a.ETAEarly, "9 − 1.28 < 8.5")
	require.Equal(t, 0, a.ETALate, "8 + 1.28 stays above")
	b := Assess(Forecast{Mean: []float64{50, 70, 90}, Sigma: []float64{0, 0, 0}}, 80, Below)
	require.Equal(t, 1.0, b.Probability)
	require.Equal(t, 3, b.ETA)
}

func synthetic(n, period int, trend, amp, noise float64, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	y := make([]float64, n)
	for i := range y {
		y[i] = 100 + trend*float64(i) + amp*math.Sin(2*math.Pi*float64(i)/float64(period)) + noise*r.NormFloat64()
	}
	return y
}

func TestSelectAndDetect(t *testing.T) {
	seasonal := synthetic(24*8, 24, 0.01, 10, 0.5, 1)
	require.Equal(t, 24, DetectPeriod(seasonal, 24, 24*7))
	sel, err := Select(seasonal, 12, 24)
	require.NoError(t, err)
	require.Equal(t, "holt_winters", sel.Model, "%+v", sel.Scores)
	require.Len(t, sel.Scores, 9)
	for _, s := range sel.Scores {
		require.Empty(t, s.Err)
		require.False(t, math.IsNaN(s.MAPE))
	}
	// 12 steps ahead of i = 191: 100 + 0.01·203 + 10·sin(2π·203/24).
	want := 100 + 0.01*203 + 10*math.Sin(2*math.Pi*203/24)
	require.InDelta(t, want, sel.Mean[11], 2)

	trend := synthetic(100, 24, 0.5, 0, 0.2, 2)
	require.Equal(t, 0, DetectPeriod(trend, 24), "a trend is not a season")
	sel, err = Select(trend, 10, 0)
	require.NoError(t, err)
	require.InDelta(t, 100+0.5*109, sel.Mean[9], 1)
	require.Contains(t, []string{"linear", "holt"}, sel.Model)

	_, err = Select([]float64{1, 2}, 5, 0)
	require.ErrorIs(t, err, ErrShort)
}

// Intervals hold what they promise on data from the model's own world.
func TestIntervalCoverage(t *testing.T) {
	inside, total := 0, 0
	for seed := range uint64(200) {
		y := synthetic(80, 24, 0.3, 0, 1, seed)
		sel, err := Select(y[:70], 10, 0)
		require.NoError(t, err)
		for i := range 10 {
			if math.Abs(y[70+i]-sel.Mean[i]) <= Z80*sel.Sigma[i] {
				inside++
			}
			total++
		}
	}
	cover := float64(inside) / float64(total)
	require.Greater(t, cover, 0.72, "80%% interval covers %.2f", cover)
}

func BenchmarkSelectSeasonal(b *testing.B) {
	y := synthetic(96*7, 96, 0.001, 5, 0.5, 3)
	for b.Loop() {
		_, _ = Select(y, 96, 96)
	}
}

// TestSeasonalLinearFewSeasons: with three seasons of history and a
// drift over the last one, the local trend is the drift's whole slope —
// the profile comes from the two seasons before it, so the drift does
// not go a third into the profile — and the forecast continues it.
func TestSeasonalLinearFewSeasons(t *testing.T) {
	const p, h = 24, 12
	shape := func(i int) float64 { return 5 * math.Sin(2*math.Pi*float64(i%p)/p) }
	y := make([]float64, 3*p)
	truth := make([]float64, 3*p+h)
	for i := range truth {
		truth[i] = 100 + shape(i)
		if d := i - 2*p; d > 0 {
			truth[i] -= 0.25 * float64(d)
		}
	}
	copy(y, truth)
	f, err := SeasonalLinear{Period: p, Window: p}.Forecast(y, h)
	require.NoError(t, err)
	for i := range h {
		require.InDelta(t, truth[3*p+i], f.Mean[i], 1e-9, "step %d", i+1)
	}
	// With four seasons or more the profile comes from all of them.
	y4 := make([]float64, 4*p)
	for i := range y4 {
		y4[i] = 100 + shape(i)
	}
	f, err = SeasonalLinear{Period: p, Window: p}.Forecast(y4, h)
	require.NoError(t, err)
	for i := range h {
		require.InDelta(t, 100+shape(4*p+i), f.Mean[i], 1e-9, "step %d", i+1)
	}
}
