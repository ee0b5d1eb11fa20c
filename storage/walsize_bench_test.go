package storage_test

import (
	"context"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/emsdb/tsdb/benchmarks/workload"
	"github.com/emsdb/tsdb/storage"
)

// ingestNode writes steps samples of each of n series of the benchmarks'
// node-exporter-like workload (the recorded model: value statistics of real
// scrapes, as bin/compare sends them) in batches of 2000, one sample per
// series in scrape order, and returns how many it wrote. It is
// deterministic.
func ingestNode(tb testing.TB, db storage.Writer, n, steps int) int {
	w, err := workload.NewNodeExporterModel(workload.Recorded, n, 1_700_000_000_000, 15_000, 1)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	var b storage.Batch
	written := 0
	for step := range steps {
		for i := range n {
			b.Add(w.Labels(i), storage.Sample{T: w.Timestamp(i, step), V: w.Next(i)})
			if len(b.Series) == 2000 || i == n-1 {
				if err := db.Write(ctx, "default", &b); err != nil {
					tb.Fatal(err)
				}
				written += len(b.Series)
				b.Reset()
			}
		}
	}
	return written
}

// dirBytes is the size of every file under dir.
func dirBytes(tb testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// BenchmarkWALSize ingests 20k node-exporter-like series × 240 samples (an
// hour at 15 s) and reports the log's and the whole data folder's bytes per
// sample right after the ingest, before anything is truncated (issue 18),
// with the write cost per sample. Run with -benchtime=1x.
func BenchmarkWALSize(b *testing.B) {
	series, steps := 20000, 240
	if testing.Short() {
		series, steps = 2000, 60
	}
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		db, err := storage.Open(dir, &storage.Options{NoSync: true, Shards: 2})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		n := ingestNode(b, db, series, steps)
		took := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(took.Nanoseconds())/float64(n), "ns/sample")
		b.ReportMetric(float64(storage.WALBytes(db))/float64(n), "wal-B/sample")
		b.ReportMetric(float64(dirBytes(b, dir))/float64(n), "dir-B/sample")
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(dirBytes(b, dir))/float64(n), "closed-B/sample")
		b.StartTimer()
	}
}
