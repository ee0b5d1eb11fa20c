package query

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestRangeAggregateSimpleMatchesStepwise: the series-by-series path for
// sum, avg, count, group, min and max gives bit for bit what the step-by-step
// path gives (values, NaN and ±Inf, series order), over random series
// with gaps.
func TestRangeAggregateSimpleMatchesStepwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	ev := &evaluator{ctx: context.Background(), start: 1000, end: 1000 + 59*15, interval: 15, maxSamples: math.MaxInt}
	specials := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e308, -1e308, 0}
	for round := range 50 {
		var m Matrix
		for j := range 1 + rng.IntN(40) {
			s := Series{Metric: labels.FromStrings("__name__", "x", "g", fmt.Sprint(rng.IntN(5)), "i", fmt.Sprint(j))}
			for k := range ev.numSteps() {
				if rng.IntN(4) == 0 {
					continue // a gap
				}
				v := rng.NormFloat64() * 1e3
				if rng.IntN(10) == 0 {
					v = specials[rng.IntN(len(specials))]
				}
				s.Points = append(s.Points, Point{T: ev.stepTime(k), F: v})
			}
			m = append(m, s)
		}
		for _, grouping := range [][]string{{"g"}, nil} {
			gid, glabels := ev.seriesGroups(m, grouping, false)
			for _, name := range []string{"sum", "avg", "count", "group", "min", "max"} {
				fast := ev.rangeAggregateSimple(name, m, gid, glabels)
				slow := ev.rangeEvalSeries(func(k int, ts int64, in Vector, idx []int) Vector {
					return ev.aggregateGroups(name, groupByIndex(in, idx, gid, glabels), math.NaN(), ts)
				}, m)
				require.Equal(t, len(slow), len(fast), "round %d %s by %v", round, name, grouping)
				for i := range slow {
					require.True(t, labels.Equal(slow[i].Metric, fast[i].Metric), "round %d %s: series %d order", round, name, i)
					require.Equal(t, len(slow[i].Points), len(fast[i].Points))
					for p := range slow[i].Points {
						a, b := slow[i].Points[p], fast[i].Points[p]
						require.Equal(t, a.T, b.T)
						require.True(t, math.Float64bits(a.F) == math.Float64bits(b.F) || (math.IsNaN(a.F) && math.IsNaN(b.F)),
							"round %d %s %v at %d: %v vs %v", round, name, slow[i].Metric, a.T, a.F, b.F)
					}
				}
			}
		}
	}
}
