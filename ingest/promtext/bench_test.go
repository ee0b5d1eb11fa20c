package promtext

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emsdb/tsdb/storage"
)

// BenchmarkDecode decodes 1000 samples: with no metadata at all ("plain"),
// with one TYPE line (a node exporter family, "type"), and with HELP,
// TYPE and UNIT for every 10 samples ("families", OpenMetrics with an
// exemplar on each sample).
func BenchmarkDecode(b *testing.B) {
	bodies := map[string]func(sb *strings.Builder, i int){
		"plain": func(sb *strings.Builder, i int) {
			fmt.Fprintf(sb, "node_cpu_seconds_total{cpu=\"%d\",mode=\"idle\",instance=\"h%d\"} %d.25\n", i%16, i/16, i*7)
		},
		"type": func(sb *strings.Builder, i int) {
			if i == 0 {
				sb.WriteString("# TYPE node_cpu_seconds_total counter\n")
			}
			fmt.Fprintf(sb, "node_cpu_seconds_total{cpu=\"%d\",mode=\"idle\",instance=\"h%d\"} %d.25\n", i%16, i/16, i*7)
		},
		"families": func(sb *strings.Builder, i int) {
			if i%10 == 0 {
				fmt.Fprintf(sb, "# HELP f%d_seconds Time spent.\n# TYPE f%d_seconds counter\n# UNIT f%d_seconds seconds\n", i, i, i)
			}
			fmt.Fprintf(sb, "f%d_seconds_total{cpu=\"%d\",mode=\"idle\",instance=\"h%d\"} %d.25 # {trace_id=\"t%d\"} 0.5 1700000000.123\n", i-i%10, i%16, i/16, i*7, i)
		},
	}
	for _, name := range []string{"plain", "type", "families"} {
		b.Run(name, func(b *testing.B) {
			var sb strings.Builder
			for i := range 1000 {
				bodies[name](&sb, i)
			}
			ct := ""
			if name == "families" {
				sb.WriteString("# EOF\n")
				ct = "application/openmetrics-text"
			}
			body := []byte(sb.String())
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var batch storage.Batch
				if _, err := Decode(body, ct, 0, &batch); err != nil || len(batch.Series) != 1000 {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
