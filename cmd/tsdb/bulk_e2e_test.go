package main

import (
	"context"
	"math"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/storage"
)

// roundTripHistograms are native histograms of every kind, as remote
// write 1.0 carries them: an integer exponential one with both sides and
// a zero bucket, a float gauge one, one of custom buckets, a counter reset
// and a stale marker.
func roundTripHistograms(base int64) []prompb.Histogram {
	ih := &histogram.Histogram{
		Schema: 1, ZeroThreshold: 0.001, ZeroCount: 2, Count: 14, Sum: 18.4,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 2}},
		PositiveBuckets: []int64{1, 1, -1, 0},
		NegativeSpans:   []histogram.Span{{Offset: -3, Length: 2}},
		NegativeBuckets: []int64{3, 1},
	}
	bigger := ih.Copy()
	bigger.Count, bigger.ZeroCount, bigger.Sum = 15, 3, 20.125
	reset := ih.Copy()
	reset.Count, reset.ZeroCount, reset.Sum = 1, 1, 0.5
	reset.PositiveBuckets, reset.NegativeBuckets = []int64{0, 0, 0, 0}, []int64{0, 0}
	gauge := &histogram.FloatHistogram{
		CounterResetHint: histogram.GaugeType, Schema: 0, Count: 3.5, Sum: -2, ZeroCount: 0.5,
		PositiveSpans: []histogram.Span{{Offset: -2, Length: 2}}, PositiveBuckets: []float64{1, 2},
	}
	custom := &histogram.Histogram{
		Schema: histogram.CustomBucketsSchema, Count: 6, Sum: 7,
		PositiveSpans: []histogram.Span{{Offset: 0, Length: 3}}, PositiveBuckets: []int64{1, 2, -1},
		CustomValues: []float64{0.1, 1, 10},
	}
	stale := &histogram.FloatHistogram{Sum: math.Float64frombits(storage.StaleNaN)}
	return []prompb.Histogram{
		prompb.FromIntHistogram(base+1_000_000, ih),
		prompb.FromIntHistogram(base+1_015_000, bigger),
		prompb.FromIntHistogram(base+1_030_000, reset),
		prompb.FromFloatHistogram(base+1_045_000, gauge),
		prompb.FromIntHistogram(base+1_060_000, custom),
		prompb.FromFloatHistogram(base+1_075_000, stale),
	}
}

// TestExportImportRoundTrip: tsdb export writes every sample to a file, as
// JSON lines and as Prometheus text; tsdb import of either into another
// server gives back the same series and samples: every one from JSON
// lines, native histograms and stale markers included, the floats but the
// stale markers from text, which has no form for the others.
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
	// A series of histograms only, and one that changes from floats to
	// histograms and back (a stale float marker among them).
	wr.Timeseries = append(wr.Timeseries,
		prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "rq_seconds"}, {Name: "job", Value: "x"}}, Histograms: roundTripHistograms(base)},
		prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "mixed"}, {Name: "job", Value: "x"}},
			Samples:    []prompb.Sample{{Timestamp: base, Value: 1}, {Timestamp: base + 15_000, Value: math.Float64frombits(storage.StaleNaN)}, {Timestamp: base + 2_000_000, Value: 2}},
			Histograms: roundTripHistograms(base)[:3]})
	code, body, err := apptest.RemoteWrite(context.Background(), c, src.URL()+"/api/v1/write", &wr)
	require.NoError(t, err)
	require.Equal(t, 204, code, body)
	want, err := apptest.Export(c, src.URL(), `{job="x"}`)
	require.NoError(t, err)
	require.Len(t, want, 5)
	var wantText []apptest.ExportedSeries
	for _, s := range want {
		switch s.Metric["__name__"] {
		case "rq_seconds":
			require.Len(t, s.Histograms, 6)
			require.Empty(t, s.Values)
			require.Contains(t, string(s.Histograms[5]), `"sum":"StaleNaN"`)
			require.Contains(t, string(s.Histograms[2]), `"counter_reset_hint":"reset"`)
			require.Contains(t, string(s.Histograms[3]), `"counter_reset_hint":"gauge"`)
			require.Contains(t, string(s.Histograms[4]), `"schema":-53`)
			continue // text has no form for histograms
		case "mixed":
			require.Len(t, s.Histograms, 3)
			require.Equal(t, []any{1.0, "StaleNaN", 2.0}, s.Values)
			s = apptest.ExportedSeries{Metric: s.Metric, Values: []any{1.0, 2.0}, Timestamps: []int64{s.Timestamps[0], s.Timestamps[2]}}
		}
		wantText = append(wantText, s)
	}

	dir := t.TempDir()
	for _, format := range []string{"jsonl", "prom"} {
		file := filepath.Join(dir, "dump."+format)
		out, err := exec.Command(bin, "export", "--url", src.URL(), "--match", `{job="x"}`, "--format", format, "--out", file).CombinedOutput()
		require.NoError(t, err, "%s", out)
		if format == "prom" {
			require.Contains(t, string(out), "skipped 9 native histogram samples")
		} else {
			require.NotContains(t, string(out), "skipped")
		}
		dst := apptest.StartTSDB(t, bin, t.TempDir())
		out, err = exec.Command(bin, "import", "--url", dst.URL(), "--file", file, "--format", format, "--chunk-bytes", "4096").CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "import [")
		got, err := apptest.Export(c, dst.URL(), `{job="x"}`)
		require.NoError(t, err)
		if format == "prom" {
			require.Equal(t, wantText, got, format)
		} else {
			require.Equal(t, want, got, format)
		}
	}
	out, err := exec.Command(bin, "import", "--url", src.URL(), "--file", filepath.Join(dir, "missing.prom")).CombinedOutput()
	require.Error(t, err, "%s", out)
}
