package web

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/query"
)

// BenchmarkMatrixJSON formats a dashboard's range answer: 198 series of
// 61 steps (an hour at a minute), their values gauges as exporters write
// them (two decimals), counters (integers) or rates (every digit).
func BenchmarkMatrixJSON(b *testing.B) {
	kinds := map[string]func(*rand.Rand) float64{
		"gauge":   func(r *rand.Rand) float64 { return float64(r.IntN(500)) / 100 },
		"counter": func(r *rand.Rand) float64 { return float64(r.Int64N(1 << 40)) },
		"rate":    func(r *rand.Rand) float64 { return r.Float64() * 1e3 },
	}
	for _, kind := range []string{"gauge", "counter", "rate"} {
		b.Run(kind, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			res := &query.Result{Type: query.ValueMatrix}
			const start, step = 1796494642000, 60000
			for i := range 198 {
				s := query.Series{Metric: labels.FromStrings("instance", fmt.Sprintf("host-%05d:9100", i))}
				for j := range 61 {
					s.Points = append(s.Points, query.Point{T: start + int64(j)*step, F: kinds[kind](rng)})
				}
				res.Series = append(res.Series, s)
			}
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				buf = resultJSON{res}.AppendJSON(buf[:0])
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}
