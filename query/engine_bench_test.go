package query

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// benchDB holds an hour of node-like CPU counters at 15 s: hosts × 2 CPUs
// × 8 modes series, flushed so that most samples are in sealed chunks, as
// on a server that has been up for a while.
func benchDB(b testing.TB, hosts int) (*storage.DB, int64) {
	db := st.Open(b, nil)
	end := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC).UnixMilli()
	rng := rand.New(rand.NewPCG(1, 2))
	modes := []string{"idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"}
	var batch storage.Batch
	for h := range hosts {
		batch.Reset()
		for cpu := range 2 {
			for _, mode := range modes {
				ls := labels.FromStrings("__name__", "node_cpu_seconds_total", "instance", fmt.Sprintf("host-%05d:9100", h),
					"job", "node", "cpu", fmt.Sprint(cpu), "mode", mode)
				smp := make([]storage.Sample, 240)
				v := rng.Float64() * 1e5
				for i := range smp {
					v += rng.Float64() * 15
					smp[i] = storage.Sample{T: end - int64(239-i)*15000, V: float64(int64(v*100)) / 100}
				}
				batch.Add(ls, smp...)
			}
		}
		if err := db.Write(context.Background(), "default", &batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	return db, end
}

// BenchmarkDashboardQueries runs the node dashboard's typical queries over
// 1,000 hosts (16,000 CPU series, an hour each).
func BenchmarkDashboardQueries(b *testing.B) {
	db, end := benchDB(b, 1000)
	eng := NewEngine(db, nil)
	for _, q := range []struct{ name, expr string }{
		{"instant-cpu-by-mode", `sum by (mode) (rate(node_cpu_seconds_total[5m]))`},
		{"instant-one-host", `sum by (mode) (rate(node_cpu_seconds_total{instance="host-00042:9100"}[5m]))`},
		{"instant-regex", `count(node_cpu_seconds_total{instance=~"host-000.*", mode="idle"})`},
	} {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := eng.Instant(context.Background(), "default", q.expr, end); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("range-1h-cpu-by-mode", func(b *testing.B) {
		for b.Loop() {
			if _, err := eng.Range(context.Background(), "default", `sum by (mode) (rate(node_cpu_seconds_total[5m]))`, end-3600_000, end, 15000); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEvalLoops runs, over 200 hosts (3,200 CPU series, an hour
// each), a range query through each evaluation loop that counts samples
// and looks at the context: selectors, window functions, subqueries,
// binary operators, aggregations, label rewriting and offsets.
func BenchmarkEvalLoops(b *testing.B) {
	db, end := benchDB(b, 200)
	eng := NewEngine(db, nil)
	for _, q := range []struct{ name, expr string }{
		{"selector", `node_cpu_seconds_total{mode="idle"}`},
		{"rate", `rate(node_cpu_seconds_total[5m])`},
		{"quantile-over-time", `quantile_over_time(0.9, node_cpu_seconds_total[10m])`},
		{"subquery", `max_over_time(rate(node_cpu_seconds_total{mode="user"}[5m])[30m:1m])`},
		{"binary", `rate(node_cpu_seconds_total{mode="user"}[5m]) / on(instance, cpu) rate(node_cpu_seconds_total{mode="idle"}[5m])`},
		{"sum-by-mode", `sum by (mode) (rate(node_cpu_seconds_total[5m]))`},
		{"avg-by-instance", `avg by (instance) (node_cpu_seconds_total)`},
		{"topk", `topk(5, rate(node_cpu_seconds_total{mode="user"}[5m]))`},
		{"label-replace", `label_replace(rate(node_cpu_seconds_total{mode="user"}[5m]), "host", "$1", "instance", "(.*):.*")`},
		{"offset", `sum by (mode) (rate(node_cpu_seconds_total[5m])) offset 10m`},
		{"constant", `vector(1) + 2 * time()`},
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

// BenchmarkRangeCacheRefresh is a dashboard's refresh of an hour at a
// minute over 200 hosts' series (a rate per host: 200 series of 61 steps)
// through the result cache, within the step its last cached one was
// final in: the steps since are computed, the rest merged from the cache.
func BenchmarkRangeCacheRefresh(b *testing.B) {
	db, end := benchDB(b, 200)
	eng := NewEngine(db, nil)
	rc, err := NewResultCache(64<<20, 5*time.Minute, func() time.Time { return time.UnixMilli(end) })
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	c := NewCached(eng, rc)
	q := `sum by (instance) (rate(node_cpu_seconds_total{mode="user"}[5m]))`
	if _, err := c.Range(context.Background(), "default", q, end-3600_000, end, 60_000); err != nil {
		b.Fatal(err)
	}
	rc.c.Wait()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Range(context.Background(), "default", q, end-3600_000, end, 60_000); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdDashboard is the node dashboard's rate aggregation on a
// live server's memory: 100,000 series whose hour of samples is still in
// head chunks, written a few samples at a time for all of them, as
// remote write fills them, so that a series' memory lies among all the
// others'; 3,200 of them are read. "cold" evicts the CPU's caches before
// each query (a dashboard's next refresh finds them full of the ingest's
// and the other panels' memory), "hot" runs it again and again.
func BenchmarkColdDashboard(b *testing.B) {
	db := st.Open(b, &storage.Options{NoSync: true})
	end := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC).UnixMilli()
	const hosts, fillers, steps, round = 200, 484, 240, 20
	modes := []string{"idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"}
	var lsets []labels.Labels
	for h := range hosts {
		inst := fmt.Sprintf("host-%05d:9100", h)
		for cpu := range 2 {
			for _, mode := range modes {
				lsets = append(lsets, labels.FromStrings("__name__", "node_cpu_seconds_total", "instance", inst, "job", "node", "cpu", fmt.Sprint(cpu), "mode", mode))
			}
		}
		for i := range fillers {
			lsets = append(lsets, labels.FromStrings("__name__", "node_filler", "instance", inst, "job", "node", "i", fmt.Sprint(i)))
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([]float64, len(lsets))
	var batch storage.Batch
	for r := 0; r < steps; r += round {
		for lo := 0; lo < len(lsets); lo += 1000 {
			batch.Reset()
			for i := lo; i < min(lo+1000, len(lsets)); i++ {
				smp := make([]storage.Sample, round)
				for k := range smp {
					vals[i] += float64(rng.IntN(1500)) / 100
					smp[k] = storage.Sample{T: end - int64(steps-1-r-k)*15000, V: vals[i]}
				}
				batch.Add(lsets[i], smp...)
			}
			if err := db.Write(context.Background(), "default", &batch); err != nil {
				b.Fatal(err)
			}
		}
	}
	eng := NewEngine(db, nil)
	trash := make([]byte, 256<<20)
	for _, q := range []struct{ name, expr string }{
		{"cpu-by-mode", `sum by (mode) (rate(node_cpu_seconds_total[5m]))`},
		{"count", `count(node_cpu_seconds_total)`},
	} {
		for _, cold := range []bool{false, true} {
			name := q.name + "/hot"
			if cold {
				name = q.name + "/cold"
			}
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					if cold {
						b.StopTimer()
						for i := 0; i < len(trash); i += 64 {
							trash[i]++
						}
						b.StartTimer()
					}
					if _, err := eng.Instant(context.Background(), "default", q.expr, end); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
