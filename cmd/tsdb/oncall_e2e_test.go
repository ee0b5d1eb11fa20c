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

// TestOnCallEscalationE2E: the real server with an on-call rotation and
// an escalation policy from the config file: a rule fires → the incident
// is assigned to the person on call (lee, covering by an override) →
// the policy's first step notifies the on-call at once, its second step
// reaches the webhook receiver after its delay, not before.
func TestOnCallEscalationE2E(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	escalations := func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		var out []map[string]any
		for _, m := range got {
			if m["event"] == "escalated" {
				out = append(out, m["incident"].(map[string]any))
			}
		}
		return out
	}

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
`), 0o644))
	now := time.Now().UTC()
	cfg := filepath.Join(dir, "tsdb.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
itsm:
  cis:
    - {name: checkout, kind: service, selector: '{service="checkout"}', owner_group: payments-oncall, impact: high}
  groups: {payments-oncall: [kim, lee], payments-lead: [park]}
  rotations:
    - name: payments-primary
      group: payments-oncall
      participants: [kim, lee]
      handover: daily
      at: "00:00"
      timezone: Europe/Berlin
      overrides:
        - {person: lee, start: %s, end: %s}
  escalation_policies:
    - name: payments
      groups: [payments-oncall]
      steps:
        - {after: 0s, oncall: payments-oncall}
        - {after: 8s, group: payments-lead}
  receivers:
    - {name: hook, type: webhook, url: '%s', events: [escalated]}
`, now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339), hook.URL)), 0o644))
	db := apptest.StartTSDB(t, apptest.Build(t), t.TempDir(), "--rules", rules, "--config.file", cfg)
	c := &http.Client{Timeout: 10 * time.Second}
	getJSON := func(path string, v any) {
		resp, err := c.Get(db.URL() + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, path)
		require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
	}

	var oncall struct {
		Data []struct{ Person, Rotation string }
	}
	getJSON("/api/v1/oncall?group=payments-oncall", &oncall)
	require.Len(t, oncall.Data, 1)
	require.Equal(t, "lee", oncall.Data[0].Person, "lee covers by the override")

	type incident struct {
		ID, Assignee string
		Policy       string    `json:"escalation_policy"`
		OpenedAt     time.Time `json:"opened_at"`
		EscalatedTo  []string  `json:"escalated_to"`
	}
	incidents := func() []incident {
		var r struct{ Data []incident }
		getJSON("/api/v1/incidents", &r)
		return r.Data
	}
	push := func(v float64) {
		req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "checkout_errors"}, {Name: "service", Value: "checkout"}},
			Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: v}},
		}}}
		code, body, err := apptest.RemoteWrite(context.Background(), c, db.URL()+"/api/v1/write", req)
		require.NoError(t, err)
		require.Equal(t, 204, code, body)
	}
	require.Eventually(t, func() bool { push(1); return len(incidents()) == 1 }, 30*time.Second, 300*time.Millisecond)
	inc := incidents()[0]
	require.Equal(t, "lee", inc.Assignee, "assigned to the person on call for the owner group")
	require.Equal(t, "payments", inc.Policy)

	// Step 1 (the on-call, at once) then step 2 (payments-lead, after
	// 8s) reach the webhook, in order, each as an escalated event.
	require.Eventually(t, func() bool { return len(escalations()) >= 2 }, 40*time.Second, 250*time.Millisecond)
	es := escalations()
	step := func(i int) map[string]any { return es[i]["escalation"].(map[string]any) }
	require.Equal(t, "on-call of payments-oncall", step(0)["target"])
	require.Equal(t, []any{"lee"}, step(0)["notified"])
	require.Equal(t, "group payments-lead", step(1)["target"])
	require.Equal(t, []any{"park"}, step(1)["notified"])
	at, err := time.Parse(time.RFC3339Nano, step(1)["at"].(string))
	require.NoError(t, err)
	require.GreaterOrEqual(t, at.Sub(inc.OpenedAt), 8*time.Second, "the second step waits its delay")
	require.Equal(t, []string{"lee", "payments-lead"}, incidents()[0].EscalatedTo)
}
