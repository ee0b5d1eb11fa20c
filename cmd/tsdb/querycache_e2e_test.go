package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestQueryCacheSurvivesCleanRestart: the range results a dashboard
// cached are saved at a clean shutdown and loaded by the next start, so
// the same range query after the restart is answered from the cache
// (tsdb_query_cache_hits_total) with the same body; the file is consumed
// at start-up, and a run without the cache and `tsdb rules replay`, which
// writes into the past offline, remove one left by a stop.
func TestQueryCacheSurvivesCleanRestart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	start := func(args ...string) (string, func()) {
		t.Helper()
		sc, err := parseServeFlags(append([]string{"--listen", "127.0.0.1:0", "--data", data}, args...))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		ready, done := make(chan string, 1), make(chan error, 1)
		go func() { done <- runServer(ctx, sc, slog.New(slog.DiscardHandler), ready) }()
		select {
		case addr := <-ready:
			return "http://" + addr, func() { cancel(); require.NoError(t, <-done) }
		case err := <-done:
			t.Fatal(err)
		}
		return "", nil
	}
	c := &http.Client{Timeout: 10 * time.Second}
	get := func(u string) string {
		t.Helper()
		resp, err := c.Get(u)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode, string(b))
		return string(b)
	}
	hits := func(base string) string {
		for _, l := range strings.Split(get(base+"/metrics"), "\n") {
			if v, ok := strings.CutPrefix(l, "tsdb_query_cache_hits_total "); ok {
				return v
			}
		}
		t.Fatal("no tsdb_query_cache_hits_total")
		return ""
	}

	base, stop := start()
	end := time.Now().Add(-30 * time.Minute).Truncate(time.Minute)
	var ts prompb.TimeSeries
	ts.Labels = []prompb.Label{{Name: "__name__", Value: "c_total"}, {Name: "job", Value: "j"}}
	for at := end.Add(-2 * time.Hour); !at.After(end); at = at.Add(15 * time.Second) {
		ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at.UnixMilli(), Value: float64(at.Unix() % 100000)})
	}
	code, body, err := apptest.RemoteWrite(context.Background(), c, base+"/api/v1/write", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts}})
	require.NoError(t, err)
	require.Equal(t, 204, code, body)
	q := "/api/v1/query_range?" + url.Values{"query": {"sum(rate(c_total[5m]))"},
		"start": {strconv.FormatInt(end.Add(-time.Hour).Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)}, "step": {"60"}}.Encode()
	want := get(base + q)
	require.Contains(t, want, `"values":[[`)
	require.Equal(t, "0", hits(base))
	stop()
	path := filepath.Join(data, queryCacheFile)
	_, err = os.Stat(path)
	require.NoError(t, err, "saved at the clean stop")

	base, stop = start()
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "consumed at start-up")
	require.Equal(t, want, get(base+q))
	require.Equal(t, "1", hits(base), "answered from the saved results")
	stop()

	// A run without the cache writes what saved results would miss: they
	// go at its start.
	_, err = os.Stat(path)
	require.NoError(t, err)
	_, stop = start("--query.cache-bytes", "0")
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "removed by a run without the cache")
	stop()

	// An offline replay writes into the past: the saved results go.
	base, stop = start()
	get(base + q)
	stop()
	_, err = os.Stat(path)
	require.NoError(t, err)
	rules := filepath.Join(t.TempDir(), "rules.yml")
	require.NoError(t, os.WriteFile(rules, []byte("groups:\n  - name: g\n    rules:\n      - record: r\n        expr: sum(c_total)\n"), 0o644))
	require.NoError(t, replay([]string{"--rules", rules, "--data", data,
		"--from", end.Add(-time.Hour).Format(time.RFC3339), "--to", end.Format(time.RFC3339)}, io.Discard))
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "removed by the replay")
}
