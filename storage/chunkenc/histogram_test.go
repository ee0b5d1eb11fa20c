package chunkenc

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/stretchr/testify/require"
)

// requireSameHistogram compares two histograms bit for bit (NaN sums,
// stale markers and -0 included), treating nil and empty slices alike.
func requireSameHistogram(t testing.TB, want, got *histogram.FloatHistogram, msg string) {
	t.Helper()
	require.Equal(t, want.CounterResetHint, got.CounterResetHint, msg)
	require.Equal(t, want.Schema, got.Schema, msg)
	require.Equal(t, math.Float64bits(want.ZeroThreshold), math.Float64bits(got.ZeroThreshold), msg)
	require.Equal(t, math.Float64bits(want.ZeroCount), math.Float64bits(got.ZeroCount), msg)
	require.Equal(t, math.Float64bits(want.Count), math.Float64bits(got.Count), msg)
	require.Equal(t, math.Float64bits(want.Sum), math.Float64bits(got.Sum), msg)
	eqSpans := func(a, b []histogram.Span) {
		require.Equal(t, len(a), len(b), msg)
		for i := range a {
			require.Equal(t, a[i], b[i], msg)
		}
	}
	eqFloats := func(a, b []float64) {
		require.Equal(t, len(a), len(b), msg)
		for i := range a {
			require.Equal(t, math.Float64bits(a[i]), math.Float64bits(b[i]), "%s: value %d", msg, i)
		}
	}
	eqSpans(want.PositiveSpans, got.PositiveSpans)
	eqSpans(want.NegativeSpans, got.NegativeSpans)
	eqFloats(want.PositiveBuckets, got.PositiveBuckets)
	eqFloats(want.NegativeBuckets, got.NegativeBuckets)
	eqFloats(want.CustomValues, got.CustomValues)
}

func histRoundTrip(t testing.TB, ts []int64, hs []*histogram.FloatHistogram) []byte {
	t.Helper()
	b := EncodeHistograms(nil, ts, hs)
	n, first, last, err := HistogramBounds(b)
	require.NoError(t, err)
	require.Equal(t, len(ts), n)
	require.Equal(t, ts[0], first)
	require.Equal(t, ts[len(ts)-1], last)
	gts, ghs, err := DecodeHistograms(b, nil, nil)
	require.NoError(t, err)
	require.Equal(t, ts, gts)
	for i := range hs {
		requireSameHistogram(t, hs[i], ghs[i], "sample "+string(rune('0'+i%10)))
	}
	return b
}

func TestHistogramRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range []histSeries{latencySeries(rng, 300, 50), customSeries(rng, 200), gaugeSeries(rng, 100)} {
		t.Run(s.name, func(t *testing.T) { histRoundTrip(t, s.ts, s.floats()) })
	}
	// Float counts (version 2 coding): scaled, rates, and float samples
	// alternating with integral ones over changing layouts.
	{
		s := latencySeries(rng, 300, 50)
		t.Run("float counts", func(t *testing.T) { histRoundTrip(t, s.ts, fractional(s)) })
		t.Run("rates", func(t *testing.T) { histRoundTrip(t, s.ts, rates(s)) })
		mixed := fractional(s)
		for i, h := range s.floats() {
			if i%3 == 2 {
				mixed[i] = h
			}
		}
		t.Run("float and integral", func(t *testing.T) { histRoundTrip(t, s.ts, mixed) })
	}
	stale := math.Float64frombits(0x7ff0000000000002)
	mixed := []*histogram.FloatHistogram{
		{Schema: 1, ZeroThreshold: 0.001, ZeroCount: 2, Count: 7, Sum: 12.5,
			PositiveSpans: []histogram.Span{{Offset: -2, Length: 2}, {Offset: 3, Length: 1}}, PositiveBuckets: []float64{1, 2, 1},
			NegativeSpans: []histogram.Span{{Offset: 0, Length: 1}}, NegativeBuckets: []float64{1}},
		// float counts
		{Schema: 1, ZeroThreshold: 0.001, ZeroCount: 2.5, Count: 7.25, Sum: -1,
			PositiveSpans: []histogram.Span{{Offset: -2, Length: 2}, {Offset: 3, Length: 1}}, PositiveBuckets: []float64{1.5, 2, math.NaN()},
			NegativeSpans: []histogram.Span{{Offset: 0, Length: 1}}, NegativeBuckets: []float64{math.Copysign(0, -1)}},
		// stale marker
		{Sum: stale},
		// a reset, new layout, explicit hints
		{CounterResetHint: histogram.CounterReset, Schema: 8, Count: 1, Sum: 0.3, PositiveSpans: []histogram.Span{{Offset: 1000, Length: 1}}, PositiveBuckets: []float64{1}},
		{CounterResetHint: histogram.NotCounterReset, Schema: 8, Count: 3, Sum: 0.6, PositiveSpans: []histogram.Span{{Offset: 1000, Length: 1}}, PositiveBuckets: []float64{2}},
		{CounterResetHint: histogram.GaugeType, Schema: -53, Count: 4, Sum: 1, CustomValues: []float64{1, 2}, PositiveSpans: []histogram.Span{{Offset: 0, Length: 3}}, PositiveBuckets: []float64{1, 0, 3}},
		{Schema: -53, Count: 1 << 52, Sum: math.Inf(1), CustomValues: []float64{1, 2}, PositiveSpans: []histogram.Span{{Offset: 0, Length: 3}}, PositiveBuckets: []float64{1, 1<<52 - 2, 1}},
		{Schema: -4, Count: math.NaN(), Sum: math.NaN()},
	}
	// Timestamps in any order (as in the WAL), repeated too.
	ts := []int64{5, 1, 1 << 40, -7, 9, 9, math.MinInt64 / 4, 3}
	histRoundTrip(t, ts, mixed)
	for i := range mixed {
		histRoundTrip(t, ts[i:i+1], mixed[i:i+1])
	}
}

func TestHistogramDecodeRejectsGarbage(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	s := latencySeries(rng, 20, 30)
	good := EncodeHistograms(nil, s.ts, s.floats())
	for _, b := range [][]byte{nil, {1}, {2, 1, 0, 0}, {1, 0, 0, 0}, good[:len(good)-1], good[:len(good)/2], {1, 0xff, 0xff, 0xff, 0x0f, 0, 0}} {
		_, _, err := DecodeHistograms(b, nil, nil)
		require.ErrorIs(t, err, ErrCorrupt, "%x", b)
	}
	// Version 2 float counts: every truncation is an error, every single
	// bit flipped an error or a chunk, never a panic.
	fs := latencySeries(rng, 12, 30)
	fgood := EncodeHistograms(nil, fs.ts, fractional(fs))
	require.Equal(t, byte(histVersion), fgood[0])
	for n := range len(fgood) {
		_, _, err := DecodeHistograms(fgood[:n], nil, nil)
		require.ErrorIs(t, err, ErrCorrupt, "truncated to %d bytes", n)
	}
	flipped := make([]byte, len(fgood))
	for bit := range 8 * len(fgood) {
		copy(flipped, fgood)
		flipped[bit/8] ^= 0x80 >> (bit % 8)
		if _, _, err := DecodeHistograms(flipped, nil, nil); err != nil {
			require.ErrorIs(t, err, ErrCorrupt, "bit %d flipped", bit)
		}
	}
	// A slot that reuses its window before it has one.
	one := []*histogram.FloatHistogram{{Count: 0.5, ZeroCount: 0.5, Sum: 1}}
	b := EncodeHistograms(nil, []int64{0}, one)
	_, _, err := DecodeHistograms(b, nil, nil)
	require.NoError(t, err)
	// The body: hint (2 bits), layout (schema 8, zero threshold 64, no
	// spans 8+8), ints '0', then the zero count: patch its '111' (a new
	// window) to '110'.
	bit := 8*(len(b)-len(mustHeader(t, b).body)) + 2 + 8 + 64 + 16 + 1
	bitAt := func(i int) byte { return b[i/8] >> (7 - i%8) & 1 }
	require.Equal(t, []byte{1, 1, 1}, []byte{bitAt(bit), bitAt(bit + 1), bitAt(bit + 2)})
	b[(bit+2)/8] &^= 0x80 >> ((bit + 2) % 8)
	_, _, err = DecodeHistograms(b, nil, nil)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, "zero count: window reused before one was set")
}

func mustHeader(t testing.TB, b []byte) histHeader {
	h, err := parseHistHeader(b)
	require.NoError(t, err)
	return h
}

// FuzzHistogramChunk decodes arbitrary bytes: an error, never a panic, and
// whatever decodes encodes back to a chunk that decodes the same.
func FuzzHistogramChunk(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range []histSeries{latencySeries(rng, 5, 10), customSeries(rng, 3), gaugeSeries(rng, 2)} {
		f.Add(EncodeHistograms(nil, s.ts, s.floats()))
	}
	// Float counts (version 2); version 1 and more version 2 chunks are
	// in testdata/fuzz/FuzzHistogramChunk.
	s := latencySeries(rng, 6, 10)
	f.Add(EncodeHistograms(nil, s.ts, fractional(s)))
	f.Add(EncodeHistograms(nil, s.ts, rates(s)))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, hs, err := DecodeHistograms(b, nil, nil)
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		for _, h := range hs {
			if h.Validate() != nil {
				return // the encoder takes valid histograms only
			}
		}
		histRoundTrip(t, ts, hs)
	})
}
