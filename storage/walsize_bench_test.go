package storage_test

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage"
)

// nodeLike is a node-exporter-like stream (issue 18's measurement): hosts
// of 500 series, each host scraped every 15 s at its own offset, about half
// the series constant gauges, the others integer counters (some idle),
// centisecond counters (CPU seconds), page-count gauges and durations in
// seconds to the nanosecond (Go's GC pauses, scrape durations: 0.000175341,
// which the log took as XOR until it had scales up to 10^15). Samples go out
// as remote write sends them: batches of 2000, one sample per series, in
// scrape order. It is deterministic.
type nodeLike struct {
	lsets  []labels.Labels
	offset []int64
	kind   []uint8
	val    []float64
	ns     []int64 // kind 5: the duration in nanoseconds
	rng    *rand.Rand
}

const nodeLikePerHost = 500

func newNodeLike(n int) *nodeLike {
	w := &nodeLike{lsets: make([]labels.Labels, n), offset: make([]int64, n), kind: make([]uint8, n),
		val: make([]float64, n), ns: make([]int64, n), rng: rand.New(rand.NewPCG(18, 18))}
	for i := range n {
		host := i / nodeLikePerHost
		w.lsets[i] = labels.FromStrings("__name__", fmt.Sprintf("node_metric_%d", i%nodeLikePerHost/4),
			"cpu", fmt.Sprint(i%4), "instance", fmt.Sprintf("host-%05d:9100", host), "job", "node")
		w.offset[i] = int64(host*7919) % 15000
		switch r := w.rng.IntN(100); {
		case r < 45:
			w.kind[i], w.val[i] = 0, float64(w.rng.IntN(1<<20))
		case r < 60:
			w.kind[i], w.val[i] = 1, 0 // idle counter
		case r < 78:
			w.kind[i], w.val[i] = 2, float64(w.rng.IntN(1<<30))
		case r < 90:
			w.kind[i], w.val[i] = 3, float64(w.rng.IntN(1e7))/100
		case r < 96:
			w.kind[i], w.val[i] = 4, float64(4096*w.rng.IntN(1<<20))
		default:
			w.kind[i], w.ns[i] = 5, int64(50_000+w.rng.IntN(500_000))
			w.val[i] = float64(w.ns[i]) / 1e9
		}
	}
	return w
}

// next returns series i's next value.
func (w *nodeLike) next(i int) float64 {
	switch w.kind[i] {
	case 1:
		if w.rng.IntN(50) == 0 {
			w.val[i]++
		}
	case 2:
		w.val[i] += float64(w.rng.IntN(2000))
	case 3:
		w.val[i] = math.Round(w.val[i]*100+float64(w.rng.IntN(1500))) / 100
	case 4:
		w.val[i] += float64(4096 * (w.rng.IntN(201) - 100))
	case 5:
		// As an exporter prints it: the nearest float64 to the decimal.
		w.ns[i] = max(1000, w.ns[i]+int64(w.rng.IntN(20001)-10000))
		w.val[i] = float64(w.ns[i]) / 1e9
	}
	return w.val[i]
}

// ingest writes steps samples of every series in batches of 2000 and
// returns how many it wrote.
func (w *nodeLike) ingest(tb testing.TB, db storage.Writer, steps int) int {
	ctx := context.Background()
	var b storage.Batch
	n := 0
	for step := range steps {
		for i := range w.lsets {
			b.Add(w.lsets[i], storage.Sample{T: int64(step)*15000 + w.offset[i], V: w.next(i)})
			if len(b.Series) == 2000 || i == len(w.lsets)-1 {
				if err := db.Write(ctx, "default", &b); err != nil {
					tb.Fatal(err)
				}
				n += len(b.Series)
				b.Reset()
			}
		}
	}
	return n
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
		w := newNodeLike(series)
		dir := b.TempDir()
		db, err := storage.Open(dir, &storage.Options{NoSync: true, Shards: 2})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		n := w.ingest(b, db, steps)
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
