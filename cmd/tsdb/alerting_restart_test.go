package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestForStateSurvivesKill: an alert pending when tsdb is killed keeps its
// active-since time after the restart, so `for` does not start over.
func TestForStateSurvivesKill(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.yml")
	require.NoError(t, os.WriteFile(rules, []byte(`
groups:
  - name: restart
    interval: 1s
    rules:
      - alert: Slow
        expr: slow_metric > 0
        for: 1h
`), 0o644))
	bin := apptest.Build(t)
	data := t.TempDir()
	c := &http.Client{Timeout: 10 * time.Second}
	push := func(db *apptest.Proc) {
		req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "slow_metric"}},
			Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 1}},
		}}}
		code, body, err := apptest.RemoteWrite(context.Background(), c, db.URL()+"/api/v1/write", req)
		require.NoError(t, err)
		require.Equal(t, 204, code, body)
	}
	activeAt := func(db *apptest.Proc) string {
		resp, err := c.Get(db.URL() + "/api/v1/alerts")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Alerts []struct {
					State    string `json:"state"`
					ActiveAt string `json:"activeAt"`
				} `json:"alerts"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&r) != nil || len(r.Data.Alerts) != 1 || r.Data.Alerts[0].State != "pending" {
			return ""
		}
		return r.Data.Alerts[0].ActiveAt
	}
	db := apptest.StartTSDB(t, bin, data, "--rules", rules)
	var before string
	require.Eventually(t, func() bool {
		push(db)
		before = activeAt(db)
		return before != ""
	}, 20*time.Second, 300*time.Millisecond)
	time.Sleep(1500 * time.Millisecond) // a few more evaluations write ALERTS_FOR_STATE
	db.Kill()

	db = apptest.StartTSDB(t, bin, data, "--rules", rules)
	var after string
	require.Eventually(t, func() bool {
		push(db)
		after = activeAt(db)
		return after != ""
	}, 20*time.Second, 300*time.Millisecond)
	require.Equal(t, before, after, "active since the first run, not since the restart")

	// The history shows one inactive → pending, not a second one at the
	// restart.
	resp, err := c.Get(db.URL() + "/api/v1/alerts/history?alertname=Slow")
	require.NoError(t, err)
	defer resp.Body.Close()
	var h struct {
		Data struct {
			Transitions []struct {
				From string `json:"from"`
				To   string `json:"to"`
			} `json:"transitions"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&h))
	tr := h.Data.Transitions
	require.Len(t, tr, 1, "%+v", tr)
	require.Equal(t, "inactive", tr[0].From)
	require.Equal(t, "pending", tr[0].To)
}
