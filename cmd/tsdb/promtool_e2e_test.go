package main

import (
	"context"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestPromtoolQueries: Debian's promtool, a real Prometheus API client,
// runs instant and range queries against tsdb.
func TestPromtoolQueries(t *testing.T) {
	promtool := apptest.NeedBinary(t, "promtool", "prometheus")
	bin := apptest.Build(t)
	db := apptest.StartTSDB(t, bin, t.TempDir())

	now := time.Now().Truncate(time.Second)
	req := &prompb.WriteRequest{}
	for i, inst := range []string{"a", "b"} {
		ts := prompb.TimeSeries{Labels: []prompb.Label{
			{Name: "__name__", Value: "http_requests_total"}, {Name: "instance", Value: inst}, {Name: "job", Value: "api"},
		}}
		for k := 0; k <= 40; k++ {
			t := now.Add(-10 * time.Minute).Add(time.Duration(k) * 15 * time.Second)
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: t.UnixMilli(), Value: float64(k * 15 * (i + 1))})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	code, body, err := apptest.RemoteWrite(context.Background(), &http.Client{Timeout: 10 * time.Second}, db.URL()+"/api/v1/write", req)
	require.NoError(t, err)
	require.Equal(t, 204, code, body)

	run := func(args ...string) string {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		require.NoError(t, err, "promtool %v: %s", args, out)
		return string(out)
	}
	at := strconv.FormatInt(now.Unix(), 10)
	out := run("query", "instant", "--time", at, db.URL(), `sum by (job) (rate(http_requests_total[5m]))`)
	require.Contains(t, out, `{job="api"} => `, out)
	v, err := strconv.ParseFloat(strings.Fields(strings.SplitN(out, "=> ", 2)[1])[0], 64)
	require.NoError(t, err)
	require.InDelta(t, 3, v, 1e-9, "1/s + 2/s")
	require.Contains(t, out, "@["+at)

	out = run("query", "instant", "--time", at, db.URL(), `http_requests_total{instance="b"}`)
	require.Contains(t, out, `http_requests_total{instance="b", job="api"} => 1200 @[`+at)

	start := strconv.FormatInt(now.Add(-2*time.Minute).Unix(), 10)
	out = run("query", "range", "--start", start, "--end", at, "--step", "1m", db.URL(), `http_requests_total{instance="a"}`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, out) // the series, then 3 points
	require.Contains(t, lines[0], `http_requests_total{instance="a", job="api"} =>`)
	require.Contains(t, out, "600 @["+at)

	// A bad query is an error promtool reports.
	cmd := exec.Command(promtool, "query", "instant", db.URL(), `sum(`)
	bad, err := cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(bad), "bad_data")
}
