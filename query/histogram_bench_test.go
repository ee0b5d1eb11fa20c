package query

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// BenchmarkHistogramQueries runs what Grafana's heatmap and latency
// panels ask of native histograms over 200 services (an hour of
// exponential histograms of 20 buckets at 15 s each), as range queries.
func BenchmarkHistogramQueries(b *testing.B) {
	db := st.Open(b, nil)
	end := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC).UnixMilli()
	rng := rand.New(rand.NewPCG(1, 2))
	var batch storage.Batch
	for s := range 200 {
		buckets := make([]float64, 20)
		hs := make([]storage.HSample, 240)
		var count, sum float64
		for i := range hs {
			for range 50 {
				k := rng.IntN(20)
				buckets[k]++
				count++
				sum += float64(k)
			}
			hs[i] = storage.HSample{T: end - int64(239-i)*15000, H: &histogram.FloatHistogram{
				Schema: 3, Count: count, Sum: sum, ZeroThreshold: 1e-128,
				PositiveSpans:   []histogram.Span{{Offset: -5, Length: 20}},
				PositiveBuckets: append([]float64(nil), buckets...),
			}}
		}
		batch.AddHistograms(labels.FromStrings("__name__", "http_request_duration_seconds", "job", fmt.Sprintf("svc-%03d", s%20), "instance", fmt.Sprint(s)), hs...)
	}
	if err := db.Write(context.Background(), "default", &batch); err != nil {
		b.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	eng := NewEngine(db, nil)
	for _, q := range []struct{ name, expr string }{
		{"heatmap", `sum by (job) (rate(http_request_duration_seconds[5m]))`},
		{"quantile", `histogram_quantile(0.99, sum by (job) (rate(http_request_duration_seconds[5m])))`},
		{"count", `histogram_count(rate(http_request_duration_seconds[5m]))`},
	} {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := eng.Range(context.Background(), "default", q.expr, end-3600_000, end, 15000); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
