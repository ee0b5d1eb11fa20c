package remotewrite

import (
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/emsdb/tsdb/storage"
)

// benchSeries is the shape of one node_exporter scrape sent by Prometheus:
// 2000 series (the default max_samples_per_send) of 5 labels, one sample each.
const benchSeries = 2000

func benchLabels(i int) labels.Labels {
	return labels.FromStrings(
		"__name__", fmt.Sprintf("node_metric_%d", i%100),
		"cpu", fmt.Sprintf("%d", i%8),
		"instance", fmt.Sprintf("host-%d.example.com:9100", i/100),
		"job", "node",
		"mode", "user",
	)
}

func benchV1(b *testing.B) []byte {
	req := &prompb.WriteRequest{}
	for i := range benchSeries {
		var ls []prompb.Label
		benchLabels(i).Range(func(l labels.Label) { ls = append(ls, prompb.Label{Name: l.Name, Value: l.Value}) })
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  ls,
			Samples: []prompb.Sample{{Value: float64(i) * 1.5, Timestamp: 1700000000000 + int64(i)}},
		})
	}
	raw, err := req.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

func benchV2(b *testing.B) []byte {
	syms := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for i := range benchSeries {
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: syms.SymbolizeLabels(benchLabels(i), nil),
			Samples:    []writev2.Sample{{Value: float64(i) * 1.5, Timestamp: 1700000000000 + int64(i)}},
		})
	}
	req.Symbols = syms.Symbols()
	raw, err := req.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkDecodeV1 decodes a remote-write 1.0 request; labels stay as keys.
func BenchmarkDecodeV1(b *testing.B) {
	raw := benchV1(b)
	d := NewDecoder()
	var batch storage.Batch
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		batch.Reset()
		c, err := d.DecodeV1(raw, &batch)
		if err != nil || c.Samples != benchSeries {
			b.Fatal(c, err)
		}
	}
	b.ReportMetric(float64(benchSeries*b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkDecodeV1Labels decodes a 1.0 request and then the labels of
// every key, as storage does for series it has not seen.
func BenchmarkDecodeV1Labels(b *testing.B) {
	raw := benchV1(b)
	d := NewDecoder()
	var batch storage.Batch
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		batch.Reset()
		if _, err := d.DecodeV1(raw, &batch); err != nil {
			b.Fatal(err)
		}
		for i := range batch.Series {
			if _, err := batch.LabelsOf(i); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(benchSeries*b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkDecodeV2 decodes a remote-write 2.0 request.
func BenchmarkDecodeV2(b *testing.B) {
	raw := benchV2(b)
	d := NewDecoder()
	var batch storage.Batch
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		batch.Reset()
		c, err := d.DecodeV2(raw, &batch)
		if err != nil || c.Samples != benchSeries {
			b.Fatal(c, err)
		}
	}
	b.ReportMetric(float64(benchSeries*b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkDecodeV1Reserve decodes a 1.0 request telling Reserve what it
// decodes, as the handler does to reserve memory; compare with
// BenchmarkDecodeV1.
func BenchmarkDecodeV1Reserve(b *testing.B) {
	raw := benchV1(b)
	d := NewDecoder()
	var total Size
	d.Reserve = func(more Size) error {
		total.Series += more.Series
		total.Samples += more.Samples
		return nil
	}
	var batch storage.Batch
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		batch.Reset()
		c, err := d.DecodeV1(raw, &batch)
		if err != nil || c.Samples != benchSeries {
			b.Fatal(c, err)
		}
	}
	if total.Samples < benchSeries {
		b.Fatal(total)
	}
}

// BenchmarkDecodeAndWrite decodes a request of 2000 known series and
// writes it into storage (no fsync): the whole CPU path of a write after
// the HTTP layer, 1.0 against 2.0 (the cluster's records are 2.0).
func BenchmarkDecodeAndWrite(b *testing.B) {
	for _, v := range []string{"v1", "v2"} {
		b.Run(v, func(b *testing.B) {
			raw := benchV1(b)
			if v == "v2" {
				raw = benchV2(b)
			}
			db, err := storage.Open(b.TempDir(), &storage.Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			d := NewDecoder()
			var batch storage.Batch
			b.ReportAllocs()
			for b.Loop() {
				batch.Reset()
				if v == "v1" {
					_, err = d.DecodeV1(raw, &batch)
				} else {
					_, err = d.DecodeV2(raw, &batch)
				}
				if err != nil {
					b.Fatal(err)
				}
				if err := db.Write(b.Context(), "default", &batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(benchSeries*b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkDecodeAndWriteMany is BenchmarkDecodeAndWrite over 100,000
// known series, 50 requests of 2,000 written in turn with a new timestamp
// each round: what a server with many active series sees, where a
// request's series are no longer in the CPU's caches (the key cache, the
// series and their head chunks are memory misses).
func BenchmarkDecodeAndWriteMany(b *testing.B) {
	const requests = 50
	raws := make([][]byte, requests)
	for r := range raws {
		req := &prompb.WriteRequest{}
		for i := range benchSeries {
			var ls []prompb.Label
			benchLabels(r*benchSeries + i).Range(func(l labels.Label) { ls = append(ls, prompb.Label{Name: l.Name, Value: l.Value}) })
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{}}})
		}
		raw, err := req.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		raws[r] = raw
	}
	db, err := storage.Open(b.TempDir(), &storage.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	d := NewDecoder()
	var batch storage.Batch
	write := func(n int) {
		batch.Reset()
		if _, err := d.DecodeV1(raws[n%requests], &batch); err != nil {
			b.Fatal(err)
		}
		// Every series gets one sample a round, 15 s after the last.
		ts := 1700000000000 + int64(n/requests)*15000
		for i := range batch.Series {
			batch.Series[i].Samples[0] = storage.Sample{T: ts, V: float64(n)}
		}
		if err := db.Write(b.Context(), "default", &batch); err != nil {
			b.Fatal(err)
		}
	}
	for n := range requests { // create the series
		write(n)
	}
	n := requests
	b.ReportAllocs()
	for b.Loop() {
		write(n)
		n++
	}
	b.ReportMetric(float64(benchSeries*b.N)/b.Elapsed().Seconds(), "samples/s")
}
