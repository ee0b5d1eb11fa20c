package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestRulerConfigAPI: rule groups written through the Mimir-style API (as
// Grafana's alerting UI does) run, are per tenant, and survive restarts.
func TestRulerConfigAPI(t *testing.T) {
	bin := apptest.Build(t)
	data := t.TempDir()
	db := apptest.StartTSDB(t, bin, data)
	c := &http.Client{Timeout: 10 * time.Second}
	do := func(db *apptest.Proc, method, path, tenant, body string) (int, string) {
		req, err := http.NewRequest(method, db.URL()+path, strings.NewReader(body))
		require.NoError(t, err)
		if tenant != "" {
			req.Header.Set("X-Scope-OrgID", tenant)
		}
		req.Header.Set("Content-Type", "application/yaml")
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	group := "name: ops\ninterval: 10s\nrules:\n  - alert: Down\n    expr: up == 0\n    for: 1m\n    labels: {severity: page}\n"
	code, body := do(db, "POST", "/config/v1/rules/team-a", "acme", group)
	require.Equal(t, 202, code, body)
	code, body = do(db, "POST", "/config/v1/rules/team-a", "acme", "name: bad\nrules:\n  - alert: X\n    expr: sum(\n")
	require.Equal(t, 400, code)
	require.Contains(t, body, "could not parse expression")

	code, body = do(db, "GET", "/prometheus/config/v1/rules", "acme", "")
	require.Equal(t, 200, code)
	require.Contains(t, body, "team-a:")
	require.Contains(t, body, "alert: Down")
	code, _ = do(db, "GET", "/config/v1/rules/team-a", "other-tenant", "")
	require.Equal(t, 404, code, "tenants do not see each other's rules")

	rulesOf := func(db *apptest.Proc, tenant string) []string {
		_, body := do(db, "GET", "/api/v1/rules", tenant, "")
		var r struct {
			Data struct {
				Groups []struct {
					Name  string `json:"name"`
					Rules []struct {
						Name string `json:"name"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &r), body)
		var out []string
		for _, g := range r.Data.Groups {
			for _, rl := range g.Rules {
				out = append(out, g.Name+"/"+rl.Name)
			}
		}
		return out
	}
	require.Equal(t, []string{"ops/Down"}, rulesOf(db, "acme"))
	require.Empty(t, rulesOf(db, "other-tenant"))

	db.Stop(t)
	db = apptest.StartTSDB(t, bin, data)
	require.Equal(t, []string{"ops/Down"}, rulesOf(db, "acme"), "stored groups survive a restart")
	code, body = do(db, "GET", "/config/v1/rules/team-a/ops", "acme", "")
	require.Equal(t, 200, code)
	require.Contains(t, body, "severity: page")

	code, _ = do(db, "DELETE", "/config/v1/rules/team-a/ops", "acme", "")
	require.Equal(t, 202, code)
	require.Empty(t, rulesOf(db, "acme"))
	code, _ = do(db, "DELETE", "/config/v1/rules/team-a/ops", "acme", "")
	require.Equal(t, 404, code)
}
