package main

import (
	"context"
	"net/http"
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
