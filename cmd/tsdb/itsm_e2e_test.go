package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
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
// (ServiceNow failing for a while) → tsdb is killed and restarted → the
// escalation timer still runs from the opening → PagerDuty acknowledges
// through its signed webhook → ServiceNow comes back and gets every event
// in order → the alert resolves → the incident resolves → both receivers
// get the resolution.
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
				http.Error(w, "unavailable", http.StatusServiceUnavailable)
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
	sn, snURL := newRec(1 << 20) // down until the restart is over

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
  escalation:
    P1: [{after: 10s, group: payments-lead}]
  groups: {payments-oncall: [kim], payments-lead: [park]}
  receivers:
    - {name: pd, type: pagerduty, url: '%s', routing_key: rk, secret: s3cret, inbound_secret: pd-in}
    - {name: snow, type: servicenow, url: '%s'}
`, pdURL, snURL)), 0o644))
	bin := apptest.Build(t)
	data := t.TempDir()
	db := apptest.StartTSDB(t, bin, data, "--rules", rules, "--config.file", cfg)
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
		OwnerGroup                  string              `json:"owner_group"`
		EscalatedTo                 []string            `json:"escalated_to"`
		Recipients                  map[string][]string `json:"recipients"`
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
	require.Equal(t, []string{"kim"}, inc.Recipients["payments-oncall"])
	require.Eventually(t, func() bool { return last(pd, "event_action") == "trigger" }, 30*time.Second, 200*time.Millisecond)
	require.Empty(t, inc.EscalatedTo)

	// kill -9 in the middle: ServiceNow has received nothing yet.
	db.Kill()
	db = apptest.StartTSDB(t, bin, data, "--rules", rules, "--config.file", cfg)
	push(3)
	require.Eventually(t, func() bool {
		push(3)
		is := incidents()
		return len(is) == 1 && is[0].ID == inc.ID && len(is[0].EscalatedTo) == 1
	}, 30*time.Second, 300*time.Millisecond, "the same incident, escalated on the timer started before the restart")
	require.Equal(t, "payments-lead", incidents()[0].EscalatedTo[0])

	// PagerDuty acknowledges: its V3 webhook, signed, flows back.
	ack := `{"event":{"event_type":"incident.acknowledged","agent":{"summary":"Kim"},"data":{"type":"incident","incident_key":"default/` + inc.ID + `"}}}`
	mac := hmac.New(sha256.New, []byte("pd-in"))
	mac.Write([]byte(ack))
	areq, _ := http.NewRequest("POST", db.URL()+"/api/v1/itsm/inbound/pd", strings.NewReader(ack))
	areq.Header.Set("X-PagerDuty-Signature", "v1="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := c.Do(areq)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "acknowledged", incidents()[0].Status)

	// ServiceNow is back: everything, in order, from before and after the restart.
	sn.fail.Store(0)
	require.Eventually(t, func() bool { return last(sn, "state") == "2" }, 30*time.Second, 200*time.Millisecond)
	sn.mu.Lock()
	require.Equal(t, "1", sn.bodies[0]["state"], "the opening event first")
	require.Equal(t, "opened", sn.bodies[0]["u_tsdb_event"])
	var snEvents []string
	for _, b := range sn.bodies {
		snEvents = append(snEvents, b["u_tsdb_event"].(string))
	}
	sn.mu.Unlock()
	require.Contains(t, snEvents, "escalated")
	require.Equal(t, "acknowledged", snEvents[len(snEvents)-1])

	// The metric goes stale: the source is silent, which is not a
	// recovery — the incident stays open and says so (no_data: keep_open).
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "checkout_errors"}, {Name: "service", Value: "checkout"}},
		Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: staleNaN()}},
	}}}
	code, body, err := apptest.RemoteWrite(context.Background(), c, db.URL()+"/api/v1/write", req)
	require.NoError(t, err)
	require.Equal(t, 204, code, body)
	silent := func() bool {
		resp, err := c.Get(db.URL() + "/api/v1/incidents/" + inc.ID)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "silent since")
	}
	require.Eventually(t, silent, 20*time.Second, 200*time.Millisecond, "the timeline says the source went silent")
	require.NotEqual(t, "resolved", incidents()[0].Status)

	// The source reports again, recovered: alert resolved → incident
	// resolved → tickets.
	require.Eventually(t, func() bool { push(0); return incidents()[0].Status == "resolved" }, 20*time.Second, 300*time.Millisecond)
	require.Eventually(t, func() bool { return last(pd, "event_action") == "resolve" && last(sn, "state") == "6" },
		30*time.Second, 200*time.Millisecond)

	// Operators act through the API: close it.
	resp, err = c.Post(db.URL()+"/api/v1/incidents/"+inc.ID+"/close", "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "closed", incidents()[0].Status)
}
