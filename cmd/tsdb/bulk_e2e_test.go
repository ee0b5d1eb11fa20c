package main

import (
	"context"
	"math"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestExportImportRoundTrip: tsdb export writes every sample to a file, as
// JSON lines and as Prometheus text; tsdb import of either into another
// server gives back the same series and samples.
func TestExportImportRoundTrip(t *testing.T) {
	bin := apptest.Build(t)
	src := apptest.StartTSDB(t, bin, t.TempDir())
	c := &http.Client{Timeout: 10 * time.Second}
	base := time.Now().Add(-2 * time.Hour).UnixMilli()
	var wr prompb.WriteRequest
	for s, name := range []string{"a_total", "b", `c`} {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: name}, {Name: "job", Value: "x"}, {Name: "quote", Value: `say "hi"`}}}
		for i := range 500 {
			v := float64(i*(s+1)) + 0.25
			switch {
			case s == 1 && i == 7:
				v = math.Inf(1)
			case s == 2 && i == 9:
				v = 1e300
			}
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: base + int64(i)*15000, Value: v})
		}
		wr.Timeseries = append(wr.Timeseries, ts)
	}
	code, body, err := apptest.RemoteWrite(context.Background(), c, src.URL()+"/api/v1/write", &wr)
	require.NoError(t, err)
	require.Equal(t, 204, code, body)
	want, err := apptest.Export(c, src.URL(), `{job="x"}`)
	require.NoError(t, err)
	require.Len(t, want, 3)

	dir := t.TempDir()
	for _, format := range []string{"jsonl", "prom"} {
		file := filepath.Join(dir, "dump."+format)
		out, err := exec.Command(bin, "export", "--url", src.URL(), "--match", `{job="x"}`, "--format", format, "--out", file).CombinedOutput()
		require.NoError(t, err, "%s", out)
		dst := apptest.StartTSDB(t, bin, t.TempDir())
		out, err = exec.Command(bin, "import", "--url", dst.URL(), "--file", file, "--format", format, "--chunk-bytes", "4096").CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "import [")
		got, err := apptest.Export(c, dst.URL(), `{job="x"}`)
		require.NoError(t, err)
		require.Equal(t, want, got, format)
	}
	out, err := exec.Command(bin, "import", "--url", src.URL(), "--file", filepath.Join(dir, "missing.prom")).CombinedOutput()
	require.Error(t, err, "%s", out)
}
