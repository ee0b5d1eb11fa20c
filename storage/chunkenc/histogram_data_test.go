package chunkenc

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/prometheus/prometheus/model/histogram"
)

// histSeries is a realistic histogram series for tests and benchmarks:
// timestamps 15 s apart (with a little jitter) and integer histograms.
type histSeries struct {
	name string
	ts   []int64
	hs   []*histogram.Histogram
}

func (s histSeries) floats() []*histogram.FloatHistogram {
	out := make([]*histogram.FloatHistogram, len(s.hs))
	for i, h := range s.hs {
		out[i] = h.ToFloat(nil)
	}
	return out
}

func jitteredTimes(rng *rand.Rand, n int) []int64 {
	ts := make([]int64, n)
	t := int64(1_700_000_000_000)
	for i := range ts {
		ts[i] = t
		t += 15000
		if rng.IntN(10) == 0 {
			t += int64(rng.IntN(5)) - 2 // scrape jitter of a few ms
		}
	}
	return ts
}

// latencySeries is a counter histogram of request latencies (schema 3,
// log-normal around 50 ms: some 20 to 40 populated buckets), at rate
// requests per scrape.
func latencySeries(rng *rand.Rand, n int, rate float64) histSeries {
	const schema = 3
	counts := map[int32]uint64{}
	var zero, count uint64
	sum := 0.0
	s := histSeries{name: "latency schema 3", ts: jitteredTimes(rng, n)}
	for range n {
		obs := int(rate/2 + rng.Float64()*rate)
		for range obs {
			v := math.Exp(rng.NormFloat64()*0.9 + math.Log(0.05))
			count++
			sum += v
			if v <= 1e-128 {
				zero++
				continue
			}
			idx := int32(math.Ceil(math.Log2(v) * (1 << schema)))
			counts[idx]++
		}
		s.hs = append(s.hs, buildHistogram(schema, counts, zero, count, sum, nil, histogram.UnknownCounterReset))
	}
	return s
}

// customSeries is a counter histogram with classic buckets (schema -53).
func customSeries(rng *rand.Rand, n int) histSeries {
	bounds := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	counts := map[int32]uint64{}
	var count uint64
	sum := 0.0
	s := histSeries{name: "custom buckets", ts: jitteredTimes(rng, n)}
	for range n {
		for range 20 + rng.IntN(40) {
			v := math.Exp(rng.NormFloat64() + math.Log(0.1))
			idx, _ := slices.BinarySearch(bounds, v)
			counts[int32(idx)]++
			count++
			sum += v
		}
		s.hs = append(s.hs, buildHistogram(histogram.CustomBucketsSchema, counts, 0, count, sum, bounds, histogram.UnknownCounterReset))
	}
	return s
}

// gaugeSeries is a gauge histogram (schema 0) whose counts move both ways.
func gaugeSeries(rng *rand.Rand, n int) histSeries {
	s := histSeries{name: "gauge schema 0", ts: jitteredTimes(rng, n)}
	for range n {
		counts := map[int32]uint64{}
		var count uint64
		sum := 0.0
		for range 100 + rng.IntN(20) {
			v := 1 + rng.ExpFloat64()*30
			counts[int32(math.Ceil(math.Log2(v)))]++
			count++
			sum += v
		}
		s.hs = append(s.hs, buildHistogram(0, counts, 0, count, sum, nil, histogram.GaugeType))
	}
	return s
}

// buildHistogram makes an integer histogram of the populated indexes,
// filling gaps of up to two buckets with empty ones as client libraries do.
func buildHistogram(schema int32, counts map[int32]uint64, zero, count uint64, sum float64, bounds []float64, hint histogram.CounterResetHint) *histogram.Histogram {
	idxs := make([]int32, 0, len(counts))
	for i := range counts {
		idxs = append(idxs, i)
	}
	slices.Sort(idxs)
	h := &histogram.Histogram{CounterResetHint: hint, Schema: schema, Count: count, ZeroCount: zero, Sum: sum, CustomValues: bounds}
	if bounds == nil {
		h.ZeroThreshold = 1e-128
	}
	var prev int64
	next := int32(0)
	for k, i := range idxs {
		switch {
		case k == 0:
			h.PositiveSpans = append(h.PositiveSpans, histogram.Span{Offset: i, Length: 1})
		case i-next <= 2:
			for ; next < i; next++ {
				h.PositiveSpans[len(h.PositiveSpans)-1].Length++
				h.PositiveBuckets = append(h.PositiveBuckets, -prev)
				prev = 0
			}
			h.PositiveSpans[len(h.PositiveSpans)-1].Length++
		default:
			h.PositiveSpans = append(h.PositiveSpans, histogram.Span{Offset: i - next, Length: 1})
		}
		c := int64(counts[i])
		h.PositiveBuckets = append(h.PositiveBuckets, c-prev)
		prev = c
		next = i + 1
	}
	return h
}
