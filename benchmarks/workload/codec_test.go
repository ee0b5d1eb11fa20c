package workload

import (
	"math"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/emsdb/tsdb/storage/chunkenc"
)

// BenchmarkDenseOnNodeExporter reports what the dense chunk codec makes of
// the node-exporter workload, per kind of series, raw and after zstd over
// 32 KiB runs of chunks (as Pebble compresses its blocks).
func BenchmarkDenseOnNodeExporter(b *testing.B) {
	for _, m := range []Model{Recorded, Noisy} {
		b.Run(string(m), func(b *testing.B) { benchDense(b, m) })
	}
}

func benchDense(b *testing.B, m Model) {
	const n, steps = 5000, 240
	w, err := NewNodeExporterModel(m, n, 1_700_000_000_000, 15_000, 1)
	if err != nil {
		b.Fatal(err)
	}
	type agg struct {
		samples int
		chunks  [][]byte
	}
	kinds := map[string]*agg{}
	ts := make([]int64, steps)
	vs := make([]float64, steps)
	for i := range n {
		for s := range steps {
			ts[s], vs[s] = w.Timestamp(i, s), w.Next(i)
		}
		k := classify(vs)
		a := kinds[k]
		if a == nil {
			a = &agg{}
			kinds[k] = a
		}
		a.samples += steps
		a.chunks = append(a.chunks, chunkenc.EncodeDense(nil, ts, vs))
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	var totS, totRaw, totZ int
	for _, k := range []string{"constant", "counter", "other"} {
		a := kinds[k]
		if a == nil {
			continue
		}
		raw, z := 0, 0
		var block []byte
		for _, c := range a.chunks {
			raw += len(c)
			block = append(block, c...)
			if len(block) >= 32<<10 {
				z += len(enc.EncodeAll(block, nil))
				block = block[:0]
			}
		}
		if len(block) > 0 {
			z += len(enc.EncodeAll(block, nil))
		}
		totS, totRaw, totZ = totS+a.samples, totRaw+raw, totZ+z
		b.ReportMetric(float64(a.samples), k+"-samples")
		b.ReportMetric(float64(raw)/float64(a.samples), k+"-raw-B/sample")
		b.ReportMetric(float64(z)/float64(a.samples), k+"-zstd-B/sample")
	}
	b.ReportMetric(float64(totRaw)/float64(totS), "raw-B/sample")
	b.ReportMetric(float64(totZ)/float64(totS), "zstd-B/sample")
}

func classify(vs []float64) string {
	constant, mono := true, true
	for i := 1; i < len(vs); i++ {
		if vs[i] != vs[0] && !(math.IsNaN(vs[i]) && math.IsNaN(vs[0])) {
			constant = false
		}
		if vs[i] < vs[i-1] {
			mono = false
		}
	}
	switch {
	case constant:
		return "constant"
	case mono:
		return "counter"
	}
	return "other"
}
