package query

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// BenchmarkTierRange runs range queries over 96 days of 200 series at 15m
// from raw samples and from the 1h and 1d tiers: the tier read path
// (tier choice, SelectTier, block reads, the functions over buckets).
func BenchmarkTierRange(b *testing.B) {
	const series, days = 200, 96
	end := tierStart.Add(days * 24 * time.Hour)
	now := end.Add(3 * time.Hour)
	db := st.Open(b, &storage.Options{
		Now:   func() time.Time { return now },
		Tiers: []storage.Tier{{Resolution: time.Hour}, {Resolution: 24 * time.Hour}},
	})
	ctx := context.Background()
	for s := range series {
		var smp []storage.Sample
		for ts := tierStart.UnixMilli(); ts < end.UnixMilli(); ts += 900_000 {
			v := float64(ts/900_000) * float64(s%7+1)
			if s%2 == 1 {
				v = math.Round(5000+4000*math.Sin(float64(ts)/3.6e6+float64(s))) / 100
			}
			smp = append(smp, storage.Sample{T: ts, V: v})
		}
		name := []string{"c", "g"}[s%2]
		st.Write(b, db, "default", storage.SeriesSamples{
			Labels:  labels.FromStrings("__name__", name, "i", fmt.Sprint(s), "job", fmt.Sprint(s%10)),
			Samples: smp,
		})
	}
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := db.BuildTiers(ctx); err != nil {
		b.Fatal(err)
	}
	raw := NewEngine(db, &Options{TierMinRange: -1})
	tiered := NewEngine(db, nil)
	for _, q := range []struct {
		expr string
		step time.Duration
	}{
		{`sum by (job) (rate(c[1h]))`, time.Hour},
		{`avg by (job) (avg_over_time(g[1d]))`, 24 * time.Hour},
		{`sum by (job) (increase(c[1d]))`, 24 * time.Hour},
	} {
		for _, e := range []struct {
			name string
			eng  *Engine
		}{{"raw", raw}, {"tier", tiered}} {
			b.Run(fmt.Sprintf("%s/%s", q.expr, e.name), func(b *testing.B) {
				b.ReportAllocs()
				var res *Result
				for b.Loop() {
					var err error
					if res, err = e.eng.Range(ctx, "default", q.expr, tierStart.Add(q.step).UnixMilli(), end.UnixMilli(), q.step.Milliseconds()); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(res.SamplesRead), "points/op")
			})
		}
	}
}
