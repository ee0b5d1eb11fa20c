package chunkenc

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// nodeLike returns 240 samples at 15 s of a counter, a float counter with
// two decimals, a random-walk gauge and a constant.
func nodeLike(kind int, rng *rand.Rand) ([]int64, []float64) {
	ts := make([]int64, 240)
	vs := make([]float64, 240)
	v := 1000.0
	for i := range ts {
		ts[i] = 1_700_000_000_000 + int64(i)*15000 + int64(rng.IntN(11)-5)
		switch kind {
		case 0:
			v += float64(rng.IntN(5000))
		case 1:
			v += float64(1500+rng.IntN(20)) / 100
		case 2:
			v += float64(rng.IntN(201)-100) / 100
		}
		// Scraped values are parsed from text: shortest decimals.
		v = math.Round(v*100) / 100
		vs[i] = v
	}
	return ts, vs
}

func BenchmarkDenseEncode(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	enc, _ := zstd.NewWriter(nil)
	for kind, name := range []string{"counter", "float-counter", "gauge", "constant"} {
		ts, vs := nodeLike(kind, rng)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var out []byte
			for b.Loop() {
				out = EncodeDense(out[:0], ts, vs)
			}
			// 32 KiB of such chunks through zstd, as in a Pebble block.
			var block []byte
			n := 0
			for len(block) < 32<<10 {
				t2, v2 := nodeLike(kind, rng)
				block = EncodeDense(block, t2, v2)
				n += len(t2)
			}
			b.ReportMetric(float64(len(out))/240, "bytes/sample")
			b.ReportMetric(float64(len(enc.EncodeAll(block, nil)))/float64(n), "zstd-bytes/sample")
		})
	}
}

func BenchmarkDenseDecode(b *testing.B) {
	ts, vs := nodeLike(1, rand.New(rand.NewPCG(1, 1)))
	buf := EncodeDense(nil, ts, vs)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	var dts []int64
	var dvs []float64
	for b.Loop() {
		dts, dvs, _ = DecodeDense(buf, dts[:0], dvs[:0])
	}
}

func BenchmarkXORAppend(b *testing.B) {
	ts, vs := nodeLike(1, rand.New(rand.NewPCG(1, 1)))
	b.ReportAllocs()
	c := NewXORChunk()
	for b.Loop() {
		c.Reset()
		for i := range ts {
			c.Append(ts[i], vs[i])
		}
	}
	b.ReportMetric(float64(c.Size())/240, "bytes/sample")
}

func BenchmarkXORIterate(b *testing.B) {
	buf, n := xorEncode(nodeLike(1, rand.New(rand.NewPCG(1, 1))))
	b.ReportAllocs()
	for b.Loop() {
		it := NewXORIterator(buf, n)
		for it.Next() {
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/sample")
}

// xorEncode returns the head chunk of the samples and their count.
func xorEncode(ts []int64, vs []float64) ([]byte, int) {
	c := NewXORChunk()
	for i := range ts {
		c.Append(ts[i], vs[i])
	}
	return c.Snapshot(nil)
}

// BenchmarkXORAppendRange reads a head chunk as a range query does: all
// of it at once (xorIter.AppendRange), not a Next and an At per sample.
func BenchmarkXORAppendRange(b *testing.B) {
	buf, n := xorEncode(nodeLike(1, rand.New(rand.NewPCG(1, 1))))
	gts, gvs := make([]int64, 0, n), make([]float64, 0, n)
	b.ReportAllocs()
	for b.Loop() {
		it := NewXORIterator(buf, n).(RangeAppender)
		gts, gvs, _ = it.AppendRange(math.MinInt64, math.MaxInt64, gts[:0], gvs[:0])
	}
	if len(gts) != n {
		b.Fatalf("read %d of %d samples", len(gts), n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/sample")
}

// BenchmarkDenseIteratorWindow is how a range query reads a sealed
// chunk: open it, seek into it and read a 5-minute window (20 of its
// samples), leaving the iterator unfinished (issue 18's profile: the
// decode buffers then never went back to their pool).
func BenchmarkDenseIteratorWindow(b *testing.B) {
	ts, vs := nodeLike(1, rand.New(rand.NewPCG(1, 1)))
	buf := EncodeDense(nil, ts, vs)
	mid := ts[len(ts)/2]
	b.ReportAllocs()
	for b.Loop() {
		it := NewDenseIterator(buf)
		if !it.SeekTo(mid) {
			b.Fatal("seek")
		}
		for range 20 {
			it.Next()
		}
	}
}

// BenchmarkDecodeDenseWindow is how storage reads a sealed chunk for a
// query (issue 18): the 5-minute window at the end of the hour (an
// instant query's), decoded into buffers reused from chunk to chunk.
func BenchmarkDecodeDenseWindow(b *testing.B) {
	ts, vs := nodeLike(1, rand.New(rand.NewPCG(1, 1)))
	buf := EncodeDense(nil, ts, vs)
	mint, maxt := ts[len(ts)-1]-300_000, ts[len(ts)-1]
	b.ReportAllocs()
	var dts []int64
	var dvs []float64
	for b.Loop() {
		dts, dvs, _ = DecodeDenseWindow(buf, mint, maxt, dts[:0], dvs[:0])
		if len(dts) < 19 {
			b.Fatal("window", len(dts))
		}
	}
}

// BenchmarkXORHeadMemory fills heads as a server's series fill theirs (a
// fresh chunk each, 240 node-like samples) and reports what one holds on
// the heap — its buffer and resume marks — against the bytes its samples
// encode to: a million heads are most of a server's memory.
func BenchmarkXORHeadMemory(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	const heads = 4000
	var samples [4][2][]int64
	var values [4][]float64
	for k := range 4 {
		ts, vs := nodeLike(k, rng)
		samples[k][0], values[k] = ts, vs
	}
	var held, encoded float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		cs := make([]*XORChunk, heads)
		for i := range cs {
			cs[i] = NewXORChunk()
		}
		for j := range 240 {
			for i, c := range cs {
				c.Append(samples[i%4][0][j], values[i%4][j])
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		held = float64(after.HeapAlloc-before.HeapAlloc) / heads
		encoded = 0
		for _, c := range cs {
			encoded += float64(c.Size())
		}
		encoded /= heads
		runtime.KeepAlive(cs)
	}
	b.ReportMetric(held, "B/head")
	b.ReportMetric(encoded, "encoded-B/head")
}
