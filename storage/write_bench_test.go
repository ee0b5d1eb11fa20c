package storage_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// BenchmarkWrite measures durable writes (real fsync) of batches of 2000
// series at one timestamp, as a remote-write request carries them, from
// parallel writers.
func BenchmarkWrite(b *testing.B) {
	const series = 10000
	lsets := make([]labels.Labels, series)
	for i := range lsets {
		lsets[i] = labels.FromStrings("__name__", fmt.Sprintf("node_metric_%d", i%400), "instance", fmt.Sprintf("host-%d:9100", i/400), "job", "node")
	}
	db := st.Open(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(2)
	var step int64
	b.RunParallel(func(pb *testing.PB) {
		var batch storage.Batch
		i := 0
		for pb.Next() {
			batch.Reset()
			ts := (step + int64(i)) * 15000
			for j := range 2000 {
				batch.Add(lsets[(i*2000+j)%series], storage.Sample{T: ts, V: float64(i)})
			}
			if err := db.Write(ctx, "default", &batch); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)*2000/b.Elapsed().Seconds(), "samples/s")
}
