package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestKPIPredictedBreach: a KPI drifts towards its target on a live
// server; a predicted-breach incident (with ETA, probability, model and a
// chart link) reaches the webhook before the KPI crosses, then the real
// breach opens its own incident and supersedes the prediction.
func TestKPIPredictedBreach(t *testing.T) {
	type event struct {
		at       time.Time
		event    string
		incident map[string]any
	}
	var mu sync.Mutex
	var events []event
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m struct {
			Event    string         `json:"event"`
			Incident map[string]any `json:"incident"`
		}
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		events = append(events, event{time.Now(), m.Event, m.Incident})
		mu.Unlock()
	}))
	defer hook.Close()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "tsdb.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
itsm:
  cis:
    - {name: checkout, kind: service, selector: '{service="checkout"}', owner_group: bizops, impact: high}
  receivers:
    - {name: hook, type: webhook, url: '%s'}
kpis:
  - name: checkout_success
    expr: checkout_success_ratio
    target: 80
    direction: above
    interval: 1s
    step: 1s
    horizon: 30s
    history: 3m
    seasonality: none
    labels: {service: checkout}
`, hook.URL)), 0o644))
	bin := apptest.Build(t)
	db := apptest.StartTSDB(t, bin, t.TempDir(), "--config.file", cfg, "--web.external-url", "http://tsdb.test")
	c := &http.Client{Timeout: 10 * time.Second}
	write := func(samples []prompb.Sample) {
		req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "checkout_success_ratio"}, {Name: "service", Value: "checkout"}},
			Samples: samples,
		}}}
		code, body, err := apptest.RemoteWrite(context.Background(), c, db.URL()+"/api/v1/write", req)
		require.NoError(t, err)
		require.Equal(t, 204, code, body)
	}
	// Three minutes of a steady KPI with a little wobble.
	now := time.Now()
	var hist []prompb.Sample
	for ts := now.Add(-3 * time.Minute); ts.Before(now); ts = ts.Add(time.Second) {
		hist = append(hist, prompb.Sample{Timestamp: ts.UnixMilli(), Value: 100 + 0.3*float64(ts.Unix()%3)})
	}
	write(hist)

	// Then it falls by 0.5 per second: 80 is crossed after 40 s.
	start := time.Now()
	var crossed time.Time
	for i := 0; time.Since(start) < 60*time.Second; i++ {
		v := 100 - 0.5*time.Since(start).Seconds() + 0.3*float64(i%3)
		write([]prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: v}})
		if v < 80 && crossed.IsZero() {
			crossed = time.Now()
		}
		mu.Lock()
		done := false
		for _, e := range events {
			done = done || e.incident["kind"] == "kpi_breach"
		}
		mu.Unlock()
		if done {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	require.False(t, crossed.IsZero())

	mu.Lock()
	defer mu.Unlock()
	var predicted, breach *event
	for i := range events {
		e := &events[i]
		switch {
		case e.incident["kind"] == "predicted_breach" && e.event == "opened" && predicted == nil:
			predicted = e
		case e.incident["kind"] == "kpi_breach" && e.event == "opened" && breach == nil:
			breach = e
		}
	}
	require.NotNil(t, predicted, "a predicted-breach webhook: %v", events)
	require.True(t, predicted.at.Before(crossed), "warned %s before the crossing", crossed.Sub(predicted.at))
	t.Logf("predicted breach delivered %s before the KPI crossed", crossed.Sub(predicted.at).Round(100*time.Millisecond))
	details := predicted.incident["details"].(map[string]any)
	require.Contains(t, details, "eta")
	require.Contains(t, details, "model")
	require.Greater(t, details["breach_probability"].(float64), 0.79)
	require.Equal(t, "http://tsdb.test/api/v1/kpis/checkout_success/chart.svg", predicted.incident["links"].(map[string]any)["forecast_chart"])
	require.Equal(t, "checkout", predicted.incident["ci"])
	require.NotNil(t, breach, "a real breach incident")
	require.Equal(t, "P1", breach.incident["priority"])

	// The API lists the KPI and draws its chart; outputs are series.
	code, body := db.Get(t, "/api/v1/kpis")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"state":"breached"`)
	code, body = db.Get(t, "/api/v1/kpis/checkout_success/chart.svg")
	require.Equal(t, 200, code)
	require.Contains(t, body, "<svg")
	code, body = db.Get(t, "/api/v1/query?query=kpi_breach_probability")
	require.Equal(t, 200, code)
	require.Contains(t, body, `"kpi":"checkout_success"`)
	code, body = db.Get(t, "/api/v1/forecast?query=checkout_success_ratio&target=50&direction=above&horizon=2m&step=1s&history=3m")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, "time_left_seconds")
}
