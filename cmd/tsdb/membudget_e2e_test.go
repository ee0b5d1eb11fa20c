package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestMemoryBudgetSheds: over its memory budget tsdb refuses writes and
// queries with 503 and Retry-After, and keeps answering probes and
// /metrics.
func TestMemoryBudgetSheds(t *testing.T) {
	db := apptest.StartTSDB(t, apptest.Build(t), t.TempDir(), "--memory.budget-bytes", "1048576") // 1 MiB: always over
	c := &http.Client{Timeout: 10 * time.Second}
	wr := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels: []prompb.Label{{Name: "__name__", Value: "m"}}, Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 1}}}}}
	require.Eventually(t, func() bool {
		code, _, err := apptest.RemoteWrite(context.Background(), c, db.URL()+"/api/v1/write", wr)
		return err == nil && code == 503
	}, 10*time.Second, 100*time.Millisecond)
	resp, err := c.Get(db.URL() + "/api/v1/query?query=m")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 503, resp.StatusCode)
	require.Equal(t, "5", resp.Header.Get("Retry-After"))
	for _, p := range []string{"/-/healthy", "/-/ready", "/metrics"} {
		code, _ := db.Get(t, p)
		require.Equal(t, 200, code, p)
	}
}

// TestGCPercentDefault: the server runs its collector at GOGC=50 unless
// the operator sets GOGC, as /metrics shows.
func TestGCPercentDefault(t *testing.T) {
	bin := apptest.Build(t)
	gogc := func(db *apptest.Proc) string {
		code, body := db.Get(t, "/metrics")
		require.Equal(t, 200, code)
		for _, l := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(l, "go_gc_gogc_percent "); ok {
				return v
			}
		}
		t.Fatalf("no go_gc_gogc_percent in /metrics")
		return ""
	}
	// What /api/v1/status/runtimeinfo reports (it said 100, Go's default,
	// while the collector ran at 50).
	runtimeGOGC := func(db *apptest.Proc) string {
		code, body := db.Get(t, "/api/v1/status/runtimeinfo")
		require.Equal(t, 200, code)
		var r struct {
			Data struct{ GOGC string } `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &r))
		return r.Data.GOGC
	}
	t.Setenv("GOGC", "") // the runtime treats empty as unset
	db := apptest.StartTSDB(t, bin, t.TempDir())
	require.Equal(t, "50", gogc(db))
	require.Equal(t, "50", runtimeGOGC(db))
	t.Setenv("GOGC", "80")
	db = apptest.StartTSDB(t, bin, t.TempDir())
	require.Equal(t, "80", gogc(db))
	require.Equal(t, "80", runtimeGOGC(db))
}

func TestGCPercentFromEnv(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	pct, set := gcPercent(getenv)
	require.True(t, set)
	require.Equal(t, defaultGCPercent, pct)
	env["GOGC"] = "off"
	_, set = gcPercent(getenv)
	require.False(t, set, "the operator's GOGC stands")
}
