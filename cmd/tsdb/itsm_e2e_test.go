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
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestRuleToIncidentToTicket: a rule fires → an incident with the right
// priority and owner group → PagerDuty- and ServiceNow-shaped webhooks
// (ServiceNow failing for a while) → the alert resolves → the incident
// resolves → both receivers get the resolution.
func TestRuleToIncidentToTicket(t *testing.T) {
	type rec struct {
		mu     sync.Mutex
		bodies []map[string]any
		fail   atomic.Int32
	}
	newRec := func(fails int32) (*rec, string) {
		r := &rec{}
		r.fail.Store(fails)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if r.fail.Add(-1) >= 0 {
				http.Error(w, "unavailable", 503)
				return
			}
			b, _ := io.ReadAll(req.Body)
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			r.mu.Lock()
			r.bodies = append(r.bodies, m)
			r.mu.Unlock()
		}))
		t.Cleanup(srv.Close)
		return r, srv.URL
	}
	last := func(r *rec, key string) string {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.bodies) == 0 {
			return ""
		}
		v, _ := r.bodies[len(r.bodies)-1][key].(string)
		return v
	}
	pd, pdURL := newRec(0)
	sn, snURL := newRec(2)

	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	require.NoError(t, os.WriteFile(rules, []byte(`
groups:
  - name: shop
    interval: 1s
    rules:
      - alert: CheckoutErrors
        expr: checkout_errors > 0
        labels: {severity: critical}
        annotations: {summary: "checkout failing on {{ $labels.service }}"}
`), 0o644))
	cfg := filepath.Join(dir, "tsdb.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
itsm:
  group_by: [alertname]
  cis:
    - {name: checkout, kind: service, selector: '{service="checkout"}', owner_group: payments-oncall, impact: high}
  sla:
    P1: {acknowledge: 15m, resolve: 4h}
  receivers:
    - {name: pd, type: pagerduty, url: '%s', routing_key: rk, secret: s3cret}
    - {name: snow, type: servicenow, url: '%s'}
`, pdURL, snURL)), 0o644))
	bin := apptest.Build(t)
	db := apptest.StartTSDB(t, bin, t.TempDir(), "--rules", rules, "--config.file", cfg)
	c := &http.Client{Timeout: 10 * time.Second}
	push := func(v float64) {
		req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "checkout_errors"}, {Name: "service", Value: "checkout"}},
			Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: v}},
		}}}
		code, body, err := apptest.RemoteWrite(context.Background(), c, db.URL()+"/api/v1/write", req)
		require.NoError(t, err)
		require.Equal(t, 204, code, body)
	}
	type incident struct {
		ID, Status, Priority, Title string
		OwnerGroup                  string `json:"owner_group"`
	}
	incidents := func() []incident {
		resp, err := c.Get(db.URL() + "/api/v1/incidents")
		require.NoError(t, err)
		defer resp.Body.Close()
		var r struct{ Data []incident }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
		return r.Data
	}
	require.Eventually(t, func() bool { push(3); return len(incidents()) == 1 }, 30*time.Second, 300*time.Millisecond)
	inc := incidents()[0]
	require.Equal(t, "P1", inc.Priority)
	require.Equal(t, "payments-oncall", inc.OwnerGroup)
	require.Equal(t, "open", inc.Status)
	require.Equal(t, "checkout failing on checkout", inc.Title)
	require.Eventually(t, func() bool { return last(pd, "event_action") == "trigger" && last(sn, "state") == "1" },
		30*time.Second, 200*time.Millisecond, "both receivers got the new incident (ServiceNow after retries)")

	// The metric goes stale: alert resolved → incident resolved → tickets.
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "checkout_errors"}, {Name: "service", Value: "checkout"}},
		Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: staleNaN()}},
	}}}
	code, body, err := apptest.RemoteWrite(context.Background(), c, db.URL()+"/api/v1/write", req)
	require.NoError(t, err)
	require.Equal(t, 204, code, body)
	require.Eventually(t, func() bool { return incidents()[0].Status == "resolved" }, 20*time.Second, 200*time.Millisecond)
	require.Eventually(t, func() bool { return last(pd, "event_action") == "resolve" && last(sn, "state") == "6" },
		30*time.Second, 200*time.Millisecond)

	// Operators act through the API: close it.
	resp, err := c.Post(db.URL()+"/api/v1/incidents/"+inc.ID+"/close", "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "closed", incidents()[0].Status)
}
