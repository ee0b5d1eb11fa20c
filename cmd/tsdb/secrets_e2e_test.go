package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/internal/auth"
)

// TestSecretsNeverShown configures every kind of credential (receiver
// URLs with passwords, routing keys, signing and inbound secrets, Jira
// passwords, MQTT passwords, SNMP communities and v3 passwords), makes
// every one of them be used and fail (unreachable receivers, broker and
// agents) with debug logging, then reads every API as admin: no secret
// appears in any answer or in the log.
func TestSecretsNeverShown(t *testing.T) {
	dir := t.TempDir()
	secrets := []string{"PD-URL-PASS", "RK-SECRET-1", "HMAC-SECRET-2", "INBOUND-SECRET-3", "JIRA-PASS-4", "MQTT-PASS-5",
		"SNMP-AUTH-6", "SNMP-PRIV-7", "COMMUNITY-8", "HOOK-URL-PASS", "root-token"}
	deadUDP := apptest.FreeUDPPort(t)
	cfg := filepath.Join(dir, "tsdb.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
auth:
  users:
    - {name: admin, token_sha256: %s, roles: [admin], tenants: ["*"]}
itsm:
  receivers:
    - {name: pd, type: pagerduty, url: 'http://pd:PD-URL-PASS@127.0.0.1:1/v2/enqueue', routing_key: RK-SECRET-1, secret: HMAC-SECRET-2, inbound_secret: INBOUND-SECRET-3, timeout: 1s}
    - {name: jira, type: jira, url: 'http://127.0.0.1:1', project: OPS, username: bot, password: JIRA-PASS-4, timeout: 1s}
    - {name: hook, type: webhook, url: 'http://hook:HOOK-URL-PASS@127.0.0.1:1/x', timeout: 1s}
mqtt:
  - broker: mqtt://127.0.0.1:1
    client_id: secrets-test
    username: bot
    password: MQTT-PASS-5
    subscriptions: [{topic: "a/#", format: value, metric: m}]
snmp:
  interval: 1s
  timeout: 300ms
  targets:
    - {name: v3dev, address: '%s', version: "3", v3: {username: u, security_level: authPriv, auth_protocol: SHA, auth_password: SNMP-AUTH-6, priv_protocol: AES, priv_password: SNMP-PRIV-7}}
    - {name: v2dev, address: '%s', community: COMMUNITY-8}
`, auth.HashToken("root-token"), deadUDP, deadUDP)), 0o644))
	rules := filepath.Join(dir, "rules.yml")
	require.NoError(t, os.WriteFile(rules, []byte("groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: Always\n        expr: vector(1)\n        labels: {severity: critical}\n"), 0o644))
	db := apptest.StartTSDB(t, apptest.Build(t), filepath.Join(dir, "data"), "--config.file", cfg, "--rules", rules, "--log.level", "debug", "--web.enable-admin-api")
	c := &http.Client{Timeout: 10 * time.Second}
	get := func(method, path, body string, headers ...string) (int, string) {
		req, err := http.NewRequest(method, db.URL()+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer root-token")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The alert fires, an incident opens and every receiver fails to take it.
	require.Eventually(t, func() bool {
		_, body := get("GET", "/api/v1/incidents", "")
		return strings.Contains(body, "Always")
	}, 20*time.Second, 200*time.Millisecond)
	require.Eventually(t, func() bool {
		l := db.Log()
		return strings.Contains(l, "component=itsm") && strings.Contains(l, "component=snmp") && strings.Contains(l, "component=mqtt")
	}, 20*time.Second, 200*time.Millisecond, "every source and receiver has failed and logged")
	time.Sleep(3 * time.Second) // a few retries more

	var seen []string
	code, body := get("POST", "/api/v1/itsm/inbound/pd", `{"event":{}}`, "Content-Type", "application/json", "X-PagerDuty-Signature", "v1=00")
	require.Equal(t, 401, code, body)
	seen = append(seen, body)
	_, list := get("GET", "/api/v1/incidents", "")
	id := list[strings.Index(list, `"id":"`)+6:]
	id = id[:strings.Index(id, `"`)]
	for _, p := range []string{"/api/v1/incidents", "/api/v1/incidents/" + id, "/api/v1/incidents/" + id + "/report", "/api/v1/problems",
		"/api/v1/groups", "/api/v1/maintenance", "/api/v1/reports/sla", "/api/v1/reports/sla?format=html", "/api/v1/rules", "/api/v1/alerts",
		"/api/v1/alerts/history", "/api/v1/status/ingest", "/api/v1/status/buildinfo", "/api/v1/status/tsdb", "/metrics",
		"/config/v1/rules", "/api/v1/labels", "/api/v1/label/__name__/values", "/api/v1/export?match[]={__name__=~\".+\"}",
		"/api/v1/query?query=snmp_up", "/console/", "/"} {
		code, body := get("GET", p, "")
		require.Less(t, code, 500, "%s: %s", p, body)
		seen = append(seen, p+" → "+body)
	}
	seen = append(seen, "log → "+db.Log())
	for _, text := range seen {
		for _, s := range secrets {
			require.NotContains(t, text, s, "a secret is shown")
		}
	}
}
