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

// BenchmarkWriteNoSync is BenchmarkWrite's CPU path alone: one writer, no
// fsync, so validation, the index, the log record and the head chunks are
// what it measures. Heads are sealed as they fill.
func BenchmarkWriteNoSync(b *testing.B) {
	const series = 10000
	lsets := make([]labels.Labels, series)
	for i := range lsets {
		lsets[i] = labels.FromStrings("__name__", fmt.Sprintf("node_metric_%d", i%400), "instance", fmt.Sprintf("host-%d:9100", i/400), "job", "node")
	}
	db := st.Open(b, &storage.Options{NoSync: true})
	ctx := context.Background()
	b.ReportAllocs()
	var batch storage.Batch
	i := 0
	for b.Loop() {
		batch.Reset()
		ts := int64(i/(series/2000)) * 15000
		for j := range 2000 {
			batch.Add(lsets[(i*2000+j)%series], storage.Sample{T: ts, V: float64(i)})
		}
		if err := db.Write(ctx, "default", &batch); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)*2000/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkSelect reads every sample of 2,000 series (an hour at 15 s,
// mostly sealed) through one querier per iteration.
func BenchmarkSelect(b *testing.B) {
	db := st.Open(b, &storage.Options{NoSync: true})
	ctx := context.Background()
	var batch storage.Batch
	for h := range 200 {
		batch.Reset()
		for m := range 10 {
			smp := make([]storage.Sample, 240)
			for i := range smp {
				smp[i] = storage.Sample{T: int64(i) * 15000, V: float64(h*m + i)}
			}
			batch.Add(labels.FromStrings("__name__", fmt.Sprintf("m%d", m), "instance", fmt.Sprintf("host-%d", h)), smp...)
		}
		if err := db.Write(ctx, "default", &batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	re := labels.MustNewMatcher(labels.MatchRegexp, "__name__", "m.*")
	b.ReportAllocs()
	for b.Loop() {
		q, err := db.Querier(ctx, "default", 0, 3600_000)
		if err != nil {
			b.Fatal(err)
		}
		ss := q.Select(ctx, nil, re)
		var it storage.Iterator
		for ss.Next() {
			it = ss.At().Iterator(it)
			for it.Next() {
			}
		}
		_ = q.Close()
	}
}

// BenchmarkWriteSmallBatches writes batches of 10 samples without fsync:
// the fixed cost of a write (the log record, the usage counter, the
// Pebble batch) dominates, as with many small MQTT or import writes.
func BenchmarkWriteSmallBatches(b *testing.B) {
	const series = 1000
	lsets := make([]labels.Labels, series)
	for i := range lsets {
		lsets[i] = labels.FromStrings("__name__", fmt.Sprintf("node_metric_%d", i%100), "instance", fmt.Sprintf("host-%d:9100", i/100), "job", "node")
	}
	db := st.Open(b, &storage.Options{NoSync: true, Shards: 1})
	ctx := storage.WithIngestProtocol(context.Background(), "mqtt")
	b.ReportAllocs()
	var batch storage.Batch
	i := 0
	for b.Loop() {
		batch.Reset()
		ts := int64(i/(series/10)) * 15000
		for j := range 10 {
			batch.Add(lsets[(i*10+j)%series], storage.Sample{T: ts, V: float64(i)})
		}
		if err := db.Write(ctx, "default", &batch); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)*10/b.Elapsed().Seconds(), "samples/s")
}
