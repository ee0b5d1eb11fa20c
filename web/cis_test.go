package web

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/alerting/ruler"
	"github.com/emsdb/tsdb/internal/apptest"
)

// TestCIsAPI: CIs and their dependencies are created, listed, changed
// and deleted through the API, with clear 400s (unknown fields, unknown
// targets, cycles), 409s (the config file's, names taken, CIs depended
// on), the operator role, the audit log and storage across a restart;
// alerts map to them, and the incidents of dependent CIs show as
// children.
func TestCIsAPI(t *testing.T) {
	dir := t.TempDir()
	clk := apptest.NewClock(time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC))
	a := openOnCallAPI(t, dir, clk)

	code, data, msg := a.do("tok-op", "POST", "/api/v1/cis", `{"name":"switch-1","kind":"network device","selector":"{device=\"switch-1\"}","owner_group":"payments","impact":"high"}`)
	require.Equal(t, 201, code, msg)
	require.Equal(t, "api", data.(map[string]any)["source"])
	for _, s := range []string{"server-1", "server-2"} {
		code, _, msg = a.do("tok-op", "POST", "/api/v1/cis", `{"name":"`+s+`","selector":"{instance=\"`+s+`\"}","depends_on":["switch-1","checkout"]}`)
		require.Equal(t, 201, code, msg)
	}
	code, _, _ = a.do("tok-op", "POST", "/api/v1/cis", `{"name":"switch-1"}`)
	require.Equal(t, 409, code, "the name is taken")
	code, _, _ = a.do("tok-read", "POST", "/api/v1/cis", `{"name":"switch-2"}`)
	require.Equal(t, 403, code, "readers do not change CIs")
	code, _, _ = a.do("tok-read", "DELETE", "/api/v1/cis/server-1", "")
	require.Equal(t, 403, code)

	for _, c := range []struct{ method, uri, body, want string }{
		{"POST", "/api/v1/cis", `{"name":"x","depends":["switch-1"]}`, `unknown field "depends"`},
		{"POST", "/api/v1/cis", `{"name":"x","depends_on":["nope"]}`, `depends_on: no CI "nope" (create it first)`},
		{"POST", "/api/v1/cis", `{"name":"x","depends_on":["x"]}`, "a CI cannot depend on itself"},
		{"POST", "/api/v1/cis", `{"name":"x","impact":"huge"}`, `impact "huge" (high, medium, low)`},
		{"POST", "/api/v1/cis", `{"name":"x","selector":"{a=}"}`, "selector"},
		{"POST", "/api/v1/cis", `{"name":""}`, "a name is required"},
		{"PUT", "/api/v1/cis/switch-1", `{"depends_on":["server-1"]}`, "depends_on makes a cycle: server-1 → switch-1 → server-1"},
		{"PUT", "/api/v1/cis/switch-1", `{"name":"switch-2"}`, `the body names CI "switch-2", the path "switch-1"`},
	} {
		code, _, msg := a.do("tok-op", c.method, c.uri, c.body)
		require.Equal(t, 400, code, c.body)
		require.Contains(t, msg, c.want, c.body)
	}
	code, _, msg = a.do("tok-op", "PUT", "/api/v1/cis/checkout", `{"selector":"{a=\"b\"}"}`)
	require.Equal(t, 409, code, msg)
	require.Contains(t, msg, "in the config file")
	code, _, msg = a.do("tok-op", "DELETE", "/api/v1/cis/switch-1", "")
	require.Equal(t, 409, code, msg)
	require.Contains(t, msg, "depended on by server-1, server-2")
	code, _, _ = a.do("tok-op", "DELETE", "/api/v1/cis/missing", "")
	require.Equal(t, 404, code)
	code, data, msg = a.do("tok-op", "PUT", "/api/v1/cis/server-2", `{"selector":"{instance=\"server-2\"}","depends_on":["switch-1"],"owner_group":"payments"}`)
	require.Equal(t, 200, code, msg)
	require.Len(t, data.(map[string]any)["history"], 2)

	// The switch fails, then a server: one incident with a child.
	fire := func(k, v string) {
		a.m.HandleAlert(ruler.Event{Tenant: "acme", Alert: &ruler.Alert{Labels: labels.FromStrings("alertname", "Down", "severity", "critical", k, v)},
			From: ruler.StatePending, To: ruler.StateFiring, At: clk.Now()})
	}
	fire("device", "switch-1")
	fire("instance", "server-1")
	code, data, _ = a.do("tok-read", "GET", "/api/v1/cis", "")
	require.Equal(t, 200, code)
	byName := map[string]map[string]any{}
	for _, v := range data.([]any) {
		byName[v.(map[string]any)["name"].(string)] = v.(map[string]any)
	}
	require.Len(t, byName, 4)
	require.Equal(t, []any{"server-1", "server-2"}, byName["switch-1"]["dependents"])
	require.Equal(t, []any{"switch-1", "checkout"}, byName["server-1"]["depends_on"])
	sw := byName["switch-1"]["incidents"].([]any)[0].(map[string]any)
	srv := byName["server-1"]["incidents"].([]any)[0].(map[string]any)
	require.Equal(t, sw["id"], srv["parent"])
	require.Equal(t, []any{srv["id"]}, sw["children"])
	code, data, _ = a.do("tok-read", "GET", "/api/v1/incidents/"+srv["id"].(string), "")
	require.Equal(t, 200, code)
	require.Equal(t, sw["id"], data.(map[string]any)["parent"])
	require.Equal(t, true, data.(map[string]any)["quiet"])

	// Audited, and stored across a restart.
	code, data, _ = a.do("tok-admin", "GET", "/api/v1/audit?action=ci", "")
	require.Equal(t, 200, code)
	require.Len(t, data, 4)
	e := data.([]any)[0].(map[string]any)
	require.Equal(t, "ci.change", e["action"])
	require.Equal(t, "server-2", e["object"])
	require.Contains(t, e["summary"], "CI server-2 changed: selector {instance=\"server-2\"}, owner payments, impact medium, depends on switch-1")
	a.close()
	b := openOnCallAPI(t, dir, clk)
	_, data, _ = b.do("tok-read", "GET", "/api/v1/cis", "")
	require.Len(t, data, 4, "the API's CIs are stored")
	code, _, msg = b.do("tok-op", "DELETE", "/api/v1/cis/server-2", "")
	require.Equal(t, 200, code, msg)
	_, data, _ = b.do("tok-admin", "GET", "/api/v1/audit?action=ci.delete", "")
	require.Len(t, data, 1)
	b.close()
	c := openOnCallAPI(t, dir, clk)
	_, data, _ = c.do("tok-read", "GET", "/api/v1/cis", "")
	require.Len(t, data, 3, "the deleted CI stays deleted")
}
