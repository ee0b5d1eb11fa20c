package storage

import (
	"fmt"
	"math"
	"testing"
)

// BenchmarkTierBlockDecode decodes one block, with every field and with
// the few a function reads: a 1d block of 32 days and a 1h block of 8.
func BenchmarkTierBlockDecode(b *testing.B) {
	for _, tc := range []struct {
		res  int64
		name string
	}{{dayMillis, "1d"}, {3600_000, "1h"}} {
		n := blockDays(tc.res)
		period := periodOf(20500, n)
		agg := bucketAgg{res: tc.res}
		v := 0.0
		for t := dayStart(period) + 1; t <= dayStart(period+n); t += 15_000 {
			v += float64(t%7) + 0.25
			agg.add(t, math.Round(v*100)/100)
		}
		bs := agg.buckets()
		block := encodeTierBlock(nil, period, tc.res, bs)
		for _, f := range []struct {
			name   string
			fields BucketFields
		}{{"all", AllFields}, {"count+sum", FieldCount | FieldSum}, {"rate", FieldCount | FieldFirst | FieldLast | FieldInc | FieldFirstT | FieldLastT}} {
			b.Run(fmt.Sprintf("%s-%dd/%s", tc.name, n, f.name), func(b *testing.B) {
				var dst []Bucket
				var sc tierScratch
				b.ReportAllocs()
				b.SetBytes(int64(len(block)))
				for b.Loop() {
					var err error
					if dst, err = decodeTierBlockFields(dst[:0], period, block, f.fields, math.MinInt64, math.MaxInt64, &sc); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(bs)), "buckets/block")
			})
		}
	}
}
