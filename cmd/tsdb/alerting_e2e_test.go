package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestAlertThroughAlertmanager walks an alert through pending, firing and
// resolved on a live server, checking /api/v1/alerts, ALERTS, and what a
// real Alertmanager delivered to a webhook.
func TestAlertThroughAlertmanager(t *testing.T) {
	// The webhook receiver.
	var mu sync.Mutex
	var got []string // statuses delivered
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var msg struct {
			Status string `json:"status"`
			Alerts []struct {
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		if json.Unmarshal(b, &msg) == nil && len(msg.Alerts) > 0 && msg.Alerts[0].Labels["alertname"] == "TestHigh" {
			mu.Lock()
			got = append(got, msg.Status)
			mu.Unlock()
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	am := apptest.StartAlertmanager(t, fmt.Sprintf(`
route:
  receiver: hook
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs: [{url: 'http://%s/hook', send_resolved: true}]
`, ln.Addr()))

	rules := filepath.Join(t.TempDir(), "rules.yml")
	require.NoError(t, os.WriteFile(rules, []byte(`
groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: TestHigh
        expr: test_metric > 0
        for: 3s
        labels: {severity: page}
        annotations: {summary: "value {{ $value }}"}
`), 0o644))
	bin := apptest.Build(t)
	db := apptest.StartTSDB(t, bin, t.TempDir(), "--rules", rules, "--alertmanager.url", am.URL())

	c := &http.Client{Timeout: 10 * time.Second}
	push := func(v float64) {
		req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "test_metric"}, {Name: "job", Value: "e2e"}},
			Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: v}},
		}}}
		code, body, err := apptest.RemoteWrite(context.Background(), c, db.URL()+"/api/v1/write", req)
		require.NoError(t, err)
		require.Equal(t, 204, code, body)
	}
	state := func() string {
		resp, err := c.Get(db.URL() + "/api/v1/alerts")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Alerts []struct {
					State  string            `json:"state"`
					Labels map[string]string `json:"labels"`
				} `json:"alerts"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&r) != nil || len(r.Data.Alerts) == 0 {
			return "inactive"
		}
		return r.Data.Alerts[0].State
	}
	var seen []string
	note := func() {
		s := state()
		if len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && state() != "firing" {
		push(5)
		note()
		time.Sleep(300 * time.Millisecond)
	}
	note()
	require.Equal(t, []string{"inactive", "pending", "firing"}, seen[max(0, len(seen)-3):], "states seen: %v", seen)

	// ALERTS says the same.
	resp, err := c.PostForm(db.URL()+"/api/v1/query", url.Values{"query": {`ALERTS{alertname="TestHigh",alertstate="firing"}`}})
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), `"severity":"page"`)

	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[0] == "firing"
	}, 20*time.Second, 200*time.Millisecond, "alertmanager delivered the firing alert")

	// The metric goes stale: resolved, and Alertmanager says so.
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "test_metric"}, {Name: "job", Value: "e2e"}},
		Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: staleNaN()}},
	}}}
	code, rb, err := apptest.RemoteWrite(context.Background(), c, db.URL()+"/api/v1/write", req)
	require.NoError(t, err)
	require.Equal(t, 204, code, rb)
	require.Eventually(t, func() bool { return state() == "inactive" }, 15*time.Second, 200*time.Millisecond)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[len(got)-1] == "resolved"
	}, 30*time.Second, 200*time.Millisecond, "alertmanager delivered the resolution: %v", got)
}

func staleNaN() float64 { return math.Float64frombits(0x7ff0000000000002) }
