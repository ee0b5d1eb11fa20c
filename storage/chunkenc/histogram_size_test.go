package chunkenc

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	promchunk "github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
)

// chunkSamples is how many samples each chunk holds in the comparison:
// Prometheus' head cuts a chunk at 120 samples at most (and histogram
// chunks at about 1 KiB, which only makes its chunks more numerous).
const chunkSamples = 120

// promIntBytes is the size of Prometheus' integer histogram chunks
// (HistogramChunk) holding s, cut every chunkSamples samples or when
// Prometheus itself asks for a new chunk (a reset, a layout it cannot
// recode).
func promIntBytes(t testing.TB, s histSeries) int {
	total := 0
	var c promchunk.Chunk
	var app promchunk.Appender
	n := 0
	for i, h := range s.hs {
		if c == nil || n == chunkSamples {
			if c != nil {
				total += len(c.Bytes())
			}
			c = promchunk.NewHistogramChunk()
			var err error
			app, err = c.Appender()
			require.NoError(t, err)
			n = 0
		}
		nc, recoded, napp, err := app.AppendHistogram(nil, 0, s.ts[i], h, false)
		require.NoError(t, err)
		switch {
		case nc != nil && recoded: // the new chunk replaces the current one
			c, app = nc, napp
		case nc != nil: // a new chunk is cut
			total += len(c.Bytes())
			c, app, n = nc, napp, 0
		}
		n++
	}
	return total + len(c.Bytes())
}

// promFloatBytes is the same with FloatHistogramChunk.
func promFloatBytes(t testing.TB, ts []int64, hs []*histogram.FloatHistogram) int {
	total := 0
	var c promchunk.Chunk
	var app promchunk.Appender
	n := 0
	for i, h := range hs {
		if c == nil || n == chunkSamples {
			if c != nil {
				total += len(c.Bytes())
			}
			c = promchunk.NewFloatHistogramChunk()
			var err error
			app, err = c.Appender()
			require.NoError(t, err)
			n = 0
		}
		nc, recoded, napp, err := app.AppendFloatHistogram(nil, 0, ts[i], h, false)
		require.NoError(t, err)
		switch {
		case nc != nil && recoded: // the new chunk replaces the current one
			c, app = nc, napp
		case nc != nil: // a new chunk is cut
			total += len(c.Bytes())
			c, app, n = nc, napp, 0
		}
		n++
	}
	return total + len(c.Bytes())
}

func ourBytes(ts []int64, hs []*histogram.FloatHistogram) int {
	total := 0
	for i := 0; i < len(ts); i += chunkSamples {
		j := min(i+chunkSamples, len(ts))
		total += len(EncodeHistograms(nil, ts[i:j], hs[i:j]))
	}
	return total
}

// withPromHints sets the counter reset hints as storage does before
// sealing (Prometheus' appender refuses an unknown hint on some resets).
func withPromHints(hs []*histogram.FloatHistogram) []*histogram.FloatHistogram {
	out := make([]*histogram.FloatHistogram, len(hs))
	for i, h := range hs {
		out[i] = h.Copy()
		if h.CounterResetHint == histogram.GaugeType || i == 0 {
			continue
		}
		if h.DetectReset(hs[i-1]) {
			out[i].CounterResetHint = histogram.CounterReset
		} else {
			out[i].CounterResetHint = histogram.NotCounterReset
		}
	}
	return out
}

// fractional makes a float histogram series with non-integral counts (a
// counter scaled by 0.1, as after a unit conversion).
func fractional(s histSeries) []*histogram.FloatHistogram {
	hs := s.floats()
	for _, h := range hs {
		h.Count *= 0.1
		h.ZeroCount *= 0.1
		for i := range h.PositiveBuckets {
			h.PositiveBuckets[i] *= 0.1
		}
	}
	return hs
}

// rates makes a gauge float histogram series of the per-second rate of s
// over a 5 minute window (what a recording rule over rate() writes back):
// counts that are no scaled integers and move both ways.
func rates(s histSeries) []*histogram.FloatHistogram {
	const window = 20 // samples: 5 minutes at 15 s
	fhs := s.floats()
	out := make([]*histogram.FloatHistogram, len(fhs))
	var cur, old bucketIndexes
	for i, h := range fhs {
		r := h.Copy()
		r.CounterResetHint = histogram.GaugeType
		var o *histogram.FloatHistogram
		if i >= window {
			o = fhs[i-window]
		} else {
			o = &histogram.FloatHistogram{}
		}
		cur.fill(h)
		old.fill(o)
		p := prevAt{idx: old.pos, vals: o.PositiveBuckets}
		for j, ix := range cur.pos {
			r.PositiveBuckets[j] = (h.PositiveBuckets[j] - p.at(ix)) / 300
		}
		r.Count = (h.Count - o.Count) / 300
		r.ZeroCount = (h.ZeroCount - o.ZeroCount) / 300
		r.Sum = (h.Sum - o.Sum) / 300
		out[i] = r
	}
	return out
}

// TestHistogramChunkSmallerThanPrometheus measures bytes per sample of
// our histogram chunks against Prometheus 3's HistogramChunk (integer) and
// FloatHistogramChunk on the same data, prints the table, and fails if
// ours is larger on any of them.
func TestHistogramChunkSmallerThanPrometheus(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	type row struct {
		name      string
		n         int
		ours      int
		promInt   int // 0: not applicable (float counts)
		promFloat int
	}
	var rows []row
	for _, s := range []histSeries{
		latencySeries(rng, 120, 20),
		latencySeries(rng, 1000, 20),
		latencySeries(rng, 1000, 500),
		customSeries(rng, 1000),
		gaugeSeries(rng, 1000),
	} {
		fhs := withPromHints(s.floats())
		r := row{name: fmt.Sprintf("%s, %d samples", s.name, len(s.ts)), n: len(s.ts)}
		r.ours = ourBytes(s.ts, fhs)
		r.promInt = promIntBytes(t, s)
		r.promFloat = promFloatBytes(t, s.ts, fhs)
		rows = append(rows, r)
	}
	{
		s := latencySeries(rng, 1000, 20)
		fhs := withPromHints(fractional(s))
		r := row{name: "latency, float counts (x0.1), 1000 samples", n: 1000}
		r.ours = ourBytes(s.ts, fhs)
		r.promFloat = promFloatBytes(t, s.ts, fhs)
		rows = append(rows, r)
	}
	{
		s := latencySeries(rng, 1000, 20)
		fhs := rates(s)
		r := row{name: "latency, 5m rate (gauge, float counts), 1000 samples", n: 1000}
		r.ours = ourBytes(s.ts, fhs)
		r.promFloat = promFloatBytes(t, s.ts, fhs)
		rows = append(rows, r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-52s %6s %14s %16s\n", "bytes per sample", "ours", "prom integer", "prom float")
	for _, r := range rows {
		pi := "-"
		if r.promInt > 0 {
			pi = fmt.Sprintf("%.1f", float64(r.promInt)/float64(r.n))
		}
		fmt.Fprintf(&b, "%-52s %6.1f %14s %16.1f\n", r.name, float64(r.ours)/float64(r.n), pi, float64(r.promFloat)/float64(r.n))
	}
	t.Log(b.String())
	for _, r := range rows {
		if r.promInt > 0 {
			require.Less(t, r.ours, r.promInt, "%s: ours %d bytes, Prometheus' integer chunks %d", r.name, r.ours, r.promInt)
		}
		require.Less(t, r.ours, r.promFloat, "%s: ours %d bytes, Prometheus' float chunks %d", r.name, r.ours, r.promFloat)
	}
}

func BenchmarkHistogramEncode(b *testing.B) {
	s := latencySeries(rand.New(rand.NewPCG(1, 1)), 240, 50)
	fhs := s.floats()
	b.ReportAllocs()
	var enc []byte
	for b.Loop() {
		enc = EncodeHistograms(enc[:0], s.ts, fhs)
	}
	b.ReportMetric(float64(len(enc))/float64(len(s.ts)), "bytes/sample")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(s.ts)), "ns/sample")
}

func BenchmarkHistogramDecode(b *testing.B) {
	s := latencySeries(rand.New(rand.NewPCG(1, 1)), 240, 50)
	enc := EncodeHistograms(nil, s.ts, s.floats())
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	var ts []int64
	var hs []*histogram.FloatHistogram
	for b.Loop() {
		var err error
		ts, hs, err = DecodeHistograms(enc, ts[:0], hs[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(s.ts)), "ns/sample")
}

// BenchmarkHistogramEncodeFloat is BenchmarkHistogramEncode with float
// counts (the latency series scaled by 0.1).
func BenchmarkHistogramEncodeFloat(b *testing.B) {
	s := latencySeries(rand.New(rand.NewPCG(1, 1)), 240, 50)
	fhs := fractional(s)
	b.ReportAllocs()
	var enc []byte
	for b.Loop() {
		enc = EncodeHistograms(enc[:0], s.ts, fhs)
	}
	b.ReportMetric(float64(len(enc))/float64(len(s.ts)), "bytes/sample")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(s.ts)), "ns/sample")
}

func BenchmarkHistogramDecodeFloat(b *testing.B) {
	s := latencySeries(rand.New(rand.NewPCG(1, 1)), 240, 50)
	enc := EncodeHistograms(nil, s.ts, fractional(s))
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	var ts []int64
	var hs []*histogram.FloatHistogram
	for b.Loop() {
		var err error
		ts, hs, err = DecodeHistograms(enc, ts[:0], hs[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(s.ts)), "ns/sample")
}
