package metering_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/internal/metering"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// BenchmarkReaderScan reads 200 series of 1,000 samples each through the
// storage Reader directly and through the Meter's counting Reader: the
// cost of counting samples scanned.
func BenchmarkReaderScan(b *testing.B) {
	db := st.Open(b, &storage.Options{NoSync: true})
	var batch storage.Batch
	for s := range 200 {
		smp := make([]storage.Sample, 1000)
		for i := range smp {
			smp[i] = storage.Sample{T: int64(i) * 15000, V: float64(i)}
		}
		batch.Add(labels.FromStrings("__name__", "m", "s", fmt.Sprint(s)), smp...)
	}
	ctx := context.Background()
	if err := db.Write(ctx, "default", &batch); err != nil {
		b.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	m := metering.New(metering.Options{Store: db})
	for _, c := range []struct {
		name string
		r    storage.Reader
	}{{"direct", db}, {"metered", m.Reader(db)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				q, err := c.r.Querier(ctx, "default", math.MinInt64, math.MaxInt64)
				if err != nil {
					b.Fatal(err)
				}
				ss := q.Select(ctx, nil, st.Eq("__name__", "m"))
				var it storage.Iterator
				for ss.Next() {
					it = ss.At().Iterator(it)
					for it.Next() {
						n++
					}
				}
				if err := q.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
