// Command tierbench measures range queries over long spans answered from
// raw samples and from downsampling tiers (issue 22): query time, samples
// read, and the disk each tier takes. It writes synthetic counters and
// gauges into a temporary DB, builds the tiers, and runs each query both
// ways on the same data.
//
//	go run -tags pebblegozstd ./benchmarks/cmd/tierbench -series 10000 -days 90 -interval 15m
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
)

func main() {
	series := flag.Int("series", 10000, "series to write (half counters, half gauges)")
	days := flag.Int("days", 90, "days of data, ending at midnight")
	interval := flag.Duration("interval", 15*time.Minute, "raw sample interval")
	runs := flag.Int("runs", 3, "runs of each query; the best is reported")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the queries to this file")
	only := flag.String("only", "", "run only the queries containing this string")
	flag.Parse()
	if err := run(*series, *days, *interval, *runs, *cpuprofile, *only); err != nil {
		log.Fatal(err)
	}
}

func run(series, days int, interval time.Duration, runs int, cpuprofile, only string) error {
	dir, err := os.MkdirTemp("", "tierbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	now := end.Add(3 * time.Hour)
	db, err := storage.Open(dir, &storage.Options{
		NoSync: true,
		Now:    func() time.Time { return now },
		Tiers:  []storage.Tier{{Resolution: time.Hour}, {Resolution: 24 * time.Hour}},
	})
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	start := end.Add(-time.Duration(days) * 24 * time.Hour)
	t0 := time.Now()
	lsets := make([]labels.Labels, series)
	for s := range lsets {
		name := []string{"requests_total", "cpu_usage"}[s%2]
		lsets[s] = labels.FromStrings("__name__", name, "instance", fmt.Sprintf("host-%05d", s), "job", fmt.Sprint(s%10))
	}
	step := interval.Milliseconds()
	samples := 0
	for day := start; day.Before(end); day = day.Add(24 * time.Hour) {
		var b storage.Batch
		for s, ls := range lsets {
			var smp []storage.Sample
			for ts := day.UnixMilli(); ts < day.Add(24*time.Hour).UnixMilli(); ts += step {
				v := float64(ts/step) * float64(s%7+1) // counters: monotonic
				if s%2 == 1 {
					v = 50 + 40*math.Sin(float64(ts)/3.6e6+float64(s))
				}
				smp = append(smp, storage.Sample{T: ts, V: math.Round(v*100) / 100})
			}
			samples += len(smp)
			b.Add(ls, smp...)
			if len(b.Series) == 1000 {
				if err := db.Write(ctx, "default", &b); err != nil {
					return err
				}
				b = storage.Batch{}
			}
		}
		if len(b.Series) > 0 {
			if err := db.Write(ctx, "default", &b); err != nil {
				return err
			}
		}
	}
	if err := db.Flush(); err != nil {
		return err
	}
	wrote := time.Since(t0)
	t0 = time.Now()
	if err := db.BuildTiers(ctx); err != nil {
		return err
	}
	built := time.Since(t0)
	// Reopen: everything in tables, and queries read from disk.
	if err := db.Close(); err != nil {
		return err
	}
	if db, err = storage.Open(dir, &storage.Options{Now: func() time.Time { return now },
		Tiers: []storage.Tier{{Resolution: time.Hour}, {Resolution: 24 * time.Hour}}}); err != nil {
		return err
	}
	defer db.Close()
	raw, tiers, err := db.DiskUsage()
	if err != nil {
		return err
	}
	fmt.Printf("data: %d series x %d days at %s = %d samples; written in %s, tiers built in %s\n",
		series, days, interval, samples, wrote.Round(time.Millisecond), built.Round(time.Millisecond))
	fmt.Printf("disk: raw %.1f MiB, 1h tier %.1f MiB, 1d tier %.1f MiB\n",
		mib(raw), mib(tiers[time.Hour]), mib(tiers[24*time.Hour]))

	rawEng := query.NewEngine(db, &query.Options{TierMinRange: -1, MaxSamples: 2e9, Timeout: time.Hour})
	tierEng := query.NewEngine(db, &query.Options{MaxSamples: 2e9, Timeout: time.Hour})
	fmt.Println("| query | range | step | answered by | time | samples read |")
	fmt.Println("|---|---|---|---|---:|---:|")
	qs := []struct {
		q    string
		step time.Duration
	}{
		{`sum by (job) (rate(requests_total[1h]))`, time.Hour},
		{`avg by (job) (avg_over_time(cpu_usage[1d]))`, 24 * time.Hour},
		{`max by (job) (max_over_time(cpu_usage[1d]))`, 24 * time.Hour},
		{`sum by (job) (increase(requests_total[1d]))`, 24 * time.Hour},
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for _, q := range qs {
		if !strings.Contains(q.q, only) {
			continue
		}
		for _, eng := range []*query.Engine{rawEng, tierEng} {
			best := time.Duration(math.MaxInt64)
			var res *query.Result
			for range runs {
				t0 := time.Now()
				r, err := eng.Range(ctx, "default", q.q, start.Add(q.step).UnixMilli(), end.UnixMilli(), q.step.Milliseconds())
				if err != nil {
					return fmt.Errorf("%s: %w", q.q, err)
				}
				best, res = min(best, time.Since(t0)), r
			}
			fmt.Printf("| `%s` | %dd | %s | %s | %s | %d |\n", q.q, days, q.step, res.Tier, best.Round(time.Millisecond), res.SamplesRead)
		}
	}
	return nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
