package influx

import (
	"context"
	"fmt"
	"strings"
	"testing"

	st "github.com/emsdb/tsdb/storage/storagetest"
)

// BenchmarkParse parses Telegraf-like lines (3 fields each).
func BenchmarkParse(b *testing.B) {
	var sb strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&sb, "cpu,host=h%d,cpu=cpu%d usage_user=%d.5,usage_system=0.25,usage_idle=99i 1700000000%09d\n", i%50, i%4, i, i)
	}
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		pts, errs := Parse(body)
		if len(pts) != 1000 || len(errs) != 0 {
			b.Fatal(len(pts), errs)
		}
	}
	b.ReportMetric(float64(3000*b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkWrite parses and durably stores 1000 lines (3000 samples) per op.
func BenchmarkWrite(b *testing.B) {
	db := st.Open(b, nil)
	h := New(db, nil)
	ctx := context.Background()
	k := 0
	for b.Loop() {
		var sb strings.Builder
		for i := range 1000 {
			fmt.Fprintf(&sb, "cpu,host=h%d,cpu=cpu%d usage_user=%d.5,usage_system=0.25,usage_idle=99i %d\n", i%250, i%4, i, (int64(k)+1700000000)*1e9)
		}
		k++
		if _, bad, err := h.write(ctx, "default", "", []byte(sb.String()), nanoseconds); err != nil || bad.n > 0 {
			b.Fatal(err, bad)
		}
	}
	b.ReportMetric(float64(3000*b.N)/b.Elapsed().Seconds(), "samples/s")
}
