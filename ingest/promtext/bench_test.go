package promtext

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emsdb/tsdb/storage"
)

func BenchmarkDecode(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("# TYPE node_cpu_seconds_total counter\n")
	for i := range 1000 {
		fmt.Fprintf(&sb, "node_cpu_seconds_total{cpu=\"%d\",mode=\"idle\",instance=\"h%d\"} %d.25\n", i%16, i/16, i*7)
	}
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var batch storage.Batch
		if _, err := Decode(body, "", 0, &batch); err != nil || len(batch.Series) != 1000 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "samples/s")
}
