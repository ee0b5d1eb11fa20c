package storage

import (
	"math"
	"math/rand/v2"
	"testing"
)

// walBenchSteps is 60 scrapes of 2000 series, a remote-write batch each:
// half constant, the others counters, centisecond counters and page
// gauges, as in BenchmarkWALSize.
func walBenchSteps() [][]Sample {
	const series, steps = 2000, 60
	rng := rand.New(rand.NewPCG(18, 18))
	kind := make([]int, series)
	val := make([]float64, series)
	for i := range kind {
		kind[i], val[i] = rng.IntN(5), float64(rng.IntN(1<<20))
	}
	out := make([][]Sample, steps)
	for s := range out {
		out[s] = make([]Sample, series)
		for i := range series {
			switch kind[i] {
			case 1, 2:
				val[i] += float64(rng.IntN(2000))
			case 3:
				val[i] = math.Round(val[i]*100+float64(rng.IntN(1500))) / 100
			}
			out[s][i] = Sample{T: int64(s)*15000 + int64(i/500)*997, V: val[i]}
		}
	}
	return out
}

// BenchmarkWALEncode is the cost of a write's log record of 2000 samples,
// one per series: format 1 (an entry per series, 8-byte values) against the
// predicted block, with and without zstd.
func BenchmarkWALEncode(b *testing.B) {
	steps := walBenchSteps()
	n := len(steps[0])
	report := func(b *testing.B, bytes int) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sample")
		b.ReportMetric(float64(bytes)/float64(n), "B/sample")
	}
	b.Run("format1", func(b *testing.B) {
		var rec []byte
		i := 0
		for b.Loop() {
			rec = rec[:0]
			for j, s := range steps[i%len(steps)] {
				rec = appendSamplesEntry(rec, uint64(j+1), []Sample{s})
			}
			i++
		}
		report(b, len(rec))
	})
	block := func(b *testing.B, codec string) {
		enc := newZstdEncoder()
		defer enc.Close()
		preds := make([]walPred, n)
		blk := make([]blockSeries, n)
		var rec, ts, vs, z []byte
		size, i := 0, 0
		for b.Loop() {
			step := steps[i%len(steps)]
			for j := range blk {
				blk[j] = blockSeries{ref: uint64(j + 1), samples: step[j : j+1], pred: &preds[j]}
			}
			// A new segment every len(steps) records.
			rec, ts, vs = appendBlockEntry(rec[:0], blk, uint64(1+i/len(steps)), ts, vs)
			out := rec
			switch codec {
			case "s2":
				var ok bool
				if z, ok = compressRecord(z, rec); ok {
					out = z
				}
			case "zstd": // before 2026-12
				z = zstdRecord(enc, z, rec)
				out = z
			}
			size += len(out)
			i++
		}
		report(b, size/i) // the mean record: one in len(steps) starts a segment
	}
	b.Run("block", func(b *testing.B) { block(b, "") })
	b.Run("block+s2", func(b *testing.B) { block(b, "s2") })
	b.Run("block+zstd", func(b *testing.B) { block(b, "zstd") })
}

// BenchmarkWALDecode is replay's cost per sample of the records above.
func BenchmarkWALDecode(b *testing.B) {
	steps := walBenchSteps()
	n := len(steps[0])
	preds := make([]walPred, n)
	blk := make([]blockSeries, n)
	var recs [][]byte
	var ts, vs []byte
	for _, step := range steps {
		for j := range blk {
			blk[j] = blockSeries{ref: uint64(j + 1), samples: step[j : j+1], pred: &preds[j]}
		}
		var rec []byte
		rec, ts, vs = appendBlockEntry(nil, blk, 1, ts, vs)
		if z, ok := compressRecord(nil, rec); ok {
			rec = z
		}
		recs = append(recs, rec)
	}
	v := &recordVisitor{samples: func(uint64, []Sample) error { return nil }}
	dec := newRecDecoder()
	i := 0
	for b.Loop() {
		if i%len(recs) == 0 {
			dec.reset()
		}
		if err := decodeRecord(recs[i%len(recs)], v, dec); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sample")
}
