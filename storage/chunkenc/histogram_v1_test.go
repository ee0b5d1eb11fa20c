package chunkenc

import (
	"math"
	"os"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/stretchr/testify/require"
)

// v1FixtureSamples is the data of testdata/histogram_v1.bin, a chunk
// written by the version 1 encoder (float counts XOR'd with a fresh
// 12-bit header each). It is spelled out here, not drawn from the test
// series generators, so that it cannot drift from the fixture's bytes.
func v1FixtureSamples() ([]int64, []*histogram.FloatHistogram) {
	var ts []int64
	var hs []*histogram.FloatHistogram
	for i := range 40 {
		ts = append(ts, 1_700_000_000_000+int64(i)*15000+int64(i%7/6))
		n := 3 + i/10 // the layout grows every 10 samples
		h := &histogram.FloatHistogram{
			Schema: 2, ZeroThreshold: 1e-128,
			PositiveSpans:   []histogram.Span{{Offset: -1, Length: uint32(n)}},
			PositiveBuckets: make([]float64, n),
			NegativeSpans:   []histogram.Span{{Offset: 2, Length: 1}},
			NegativeBuckets: []float64{float64(i / 3)},
			ZeroCount:       float64(i % 4),
			Sum:             float64(i) * 1.37,
		}
		if i >= 10 && i%10 != 5 { // float counts, but for one integral sample in ten
			h.ZeroCount *= 0.1
			h.NegativeBuckets[0] *= 0.1
		}
		h.Count = h.ZeroCount + h.NegativeBuckets[0]
		for j := range h.PositiveBuckets {
			v := float64(i*(j+1) + i*j%3)
			if i >= 10 && i%10 != 5 {
				v *= 0.1
			}
			h.PositiveBuckets[j] = v
			h.Count += v
		}
		if i == 20 {
			h.CounterResetHint = histogram.CounterReset
		}
		hs = append(hs, h)
	}
	// Odd values: NaN, -0, the stale marker.
	hs[30].PositiveBuckets[1] = math.NaN()
	hs[31].NegativeBuckets[0] = math.Copysign(0, -1)
	hs[32].Sum = math.Float64frombits(0x7ff0000000000002)
	return ts, hs
}

// TestHistogramDecodeV1 decodes a chunk written in version 1: chunks
// already on disk stay readable.
func TestHistogramDecodeV1(t *testing.T) {
	b, err := os.ReadFile("testdata/histogram_v1.bin")
	require.NoError(t, err)
	require.Equal(t, byte(1), b[0], "version")
	ts, hs := v1FixtureSamples()
	gts, ghs, err := DecodeHistograms(b, nil, nil)
	require.NoError(t, err)
	require.Equal(t, ts, gts)
	for i := range hs {
		requireSameHistogram(t, hs[i], ghs[i], "sample")
	}
}
