package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/internal/auth"
)

// TestAuthRolesAndTenants runs the binary with users of every role and two
// tenants: each endpoint group answers 401 without credentials, 403 to the
// wrong role, and serves the right one; and no API of one tenant shows the
// other's data.
func TestAuthRolesAndTenants(t *testing.T) {
	pw, err := auth.HashPassword("kim-pass")
	require.NoError(t, err)
	users := map[string]string{ // name -> Authorization header
		"reader-acme": "Bearer r-acme", "reader-beta": "Bearer r-beta", "writer-acme": "Bearer w-acme",
		"writer-beta": "Bearer w-beta", "operator-acme": "Basic " + base64.StdEncoding.EncodeToString([]byte("kim:kim-pass")),
		"admin": "Bearer root",
	}
	cfg := filepath.Join(t.TempDir(), "tsdb.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
auth:
  users:
    - {name: reader-acme, token_sha256: %s, roles: [read], tenants: [acme]}
    - {name: reader-beta, token_sha256: %s, roles: [read], tenants: [beta]}
    - {name: writer-acme, token_sha256: %s, roles: [write], tenants: [acme]}
    - {name: writer-beta, token_sha256: %s, roles: [write], tenants: [beta]}
    - {name: operator-acme, username: kim, password_hash: '%s', roles: [operator], tenants: [acme]}
    - {name: admin, token_sha256: %s, roles: [admin], tenants: ["*"]}
itsm:
  receivers: []
kpis:
  - {name: acme_orders, tenant: acme, expr: secret_metric, target: 1, direction: above, interval: 1s, step: 1s, horizon: 10s, history: 1m, seasonality: none}
`, auth.HashToken("r-acme"), auth.HashToken("r-beta"), auth.HashToken("w-acme"), auth.HashToken("w-beta"), pw, auth.HashToken("root"))), 0o644))
	bin := apptest.Build(t)
	db := apptest.StartTSDB(t, bin, t.TempDir(), "--config.file", cfg, "--web.enable-admin-api")
	c := &http.Client{Timeout: 20 * time.Second}
	do := func(user, method, path, ctype, tenant string, body []byte) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, db.URL()+path, bytes.NewReader(body))
		require.NoError(t, err)
		if user != "" {
			req.Header.Set("Authorization", users[user])
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if tenant != "" {
			req.Header.Set("X-Scope-OrgID", tenant)
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	rw := func(team string) []byte {
		wr := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "secret_metric"}, {Name: "team", Value: team}},
			Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 1}},
		}}}
		raw, err := wr.Marshal()
		require.NoError(t, err)
		return snappy.Encode(nil, raw)
	}

	type ep struct {
		method, path, ctype string
		body                []byte
		need                string // the least role that may
	}
	ruleGroup := []byte("name: g\nrules:\n  - record: r\n    expr: vector(1)\n")
	eps := []ep{
		{"POST", "/api/v1/write", "application/x-protobuf", rw("acme"), "write"},
		{"POST", "/api/v1/import/prometheus", "text/plain", []byte("imported 1\n"), "write"},
		{"POST", "/write?db=x", "text/plain", []byte("m v=1"), "write"},
		{"GET", "/api/v1/query?query=up", "", nil, "read"},
		{"GET", "/api/v1/labels", "", nil, "read"},
		{"GET", "/api/v1/export?match[]=up", "", nil, "read"},
		{"GET", "/api/v1/rules", "", nil, "read"},
		{"GET", "/api/v1/incidents", "", nil, "read"},
		{"GET", "/api/v1/status/ingest", "", nil, "read"},
		{"GET", "/api/v1/status/whoami", "", nil, "read"},
		{"GET", "/metrics", "", nil, "metrics"}, // every tenant's rule groups: the operators'
		{"POST", "/api/v1/incidents", "application/json", []byte(`{"title":"t"}`), "operator"},
		{"POST", "/config/v1/rules/ns", "application/yaml", ruleGroup, "admin"},
		{"POST", "/api/v1/admin/tsdb/snapshot", "", nil, "admin"},
		{"POST", "/-/reload", "", nil, "admin"},
		{"GET", "/debug/pprof/", "", nil, "admin"},
	}
	may := map[string][]string{
		"write":    {"writer-acme", "admin"},
		"read":     {"reader-acme", "operator-acme", "admin"},
		"operator": {"operator-acme", "admin"},
		"metrics":  {"admin"},
		"admin":    {"admin"},
	}
	for _, e := range eps {
		code, body := do("", e.method, e.path, e.ctype, "", e.body)
		require.Equal(t, 401, code, "%s %s without credentials: %s", e.method, e.path, body)
		require.Contains(t, body, "authentication required")
		for _, u := range []string{"reader-acme", "writer-acme", "operator-acme", "admin"} {
			code, body = do(u, e.method, e.path, e.ctype, "", e.body)
			if contains(may[e.need], u) {
				require.NotContains(t, []int{401, 403}, code, "%s %s as %s: %s", e.method, e.path, u, body)
			} else {
				require.Equal(t, 403, code, "%s %s as %s: %s", e.method, e.path, u, body)
				require.Contains(t, body, "lacks the "+e.need+" role")
			}
		}
	}
	for _, p := range []string{"/-/healthy", "/-/ready", "/console/", "/console/app.js"} { // the console's files hold no data

		code, _ := do("", "GET", p, "", "", nil)
		require.Equal(t, 200, code, p)
	}
	code, _ := do("reader-acme", "GET", "/api/v1/query?query=up", "", "", nil)
	require.Equal(t, 200, code)
	code, body := do("", "GET", "/api/v1/query?query=up", "", "", nil)
	require.Equal(t, 401, code, body)
	code, body = do("reader-acme", "GET", "/api/v1/query?query=up", "", "beta", nil)
	require.Equal(t, 403, code, "a tenant the token is not bound to: %s", body)

	// Tenant isolation: each writer writes its own team's series.
	code, body = do("writer-beta", "POST", "/api/v1/write", "application/x-protobuf", "", rw("beta"))
	require.Equal(t, 204, code, body)
	code, body = do("operator-acme", "POST", "/api/v1/incidents", "application/json", "", []byte(`{"title":"acme only"}`))
	require.Equal(t, 201, code, body)
	for _, c := range []struct{ reader, own, other string }{{"reader-acme", "acme", "beta"}, {"reader-beta", "beta", "acme"}} {
		for _, path := range []string{"/api/v1/query?query=secret_metric", "/api/v1/series?match[]=secret_metric", "/api/v1/label/team/values",
			"/api/v1/export?match[]=secret_metric", "/api/v1/status/ingest", "/api/v1/query_range?query=secret_metric&start=" + fmt.Sprint(time.Now().Unix()-3600) + "&end=" + fmt.Sprint(time.Now().Unix()+60) + "&step=60"} {
			code, body := do(c.reader, "GET", path, "", "", nil)
			require.Equal(t, 200, code, body)
			require.Contains(t, body, c.own, "%s sees its own data at %s", c.reader, path)
			require.NotContains(t, body, c.other, "%s must not see %s's data at %s: %s", c.reader, c.other, path, body)
		}
	}
	code, body = do("operator-acme", "GET", "/api/v1/status/whoami", "", "", nil)
	require.Equal(t, 200, code, body)
	require.JSONEq(t, `{"status":"success","data":{"auth":true,"user":"operator-acme","roles":["operator"],"tenants":["acme"],"tenant":"acme"}}`, body)
	code, body = do("reader-beta", "GET", "/api/v1/kpis", "", "", nil)
	require.Equal(t, 200, code, body)
	require.NotContains(t, body, "acme_orders", "beta does not see acme's KPIs")
	code, body = do("reader-beta", "GET", "/api/v1/kpis/acme_orders", "", "", nil)
	require.Equal(t, 404, code, body)
	code, body = do("reader-acme", "GET", "/api/v1/kpis", "", "", nil)
	require.Equal(t, 200, code, body)
	require.Contains(t, body, "acme_orders")
	code, body = do("reader-beta", "GET", "/api/v1/incidents", "", "", nil)
	require.Equal(t, 200, code)
	require.NotContains(t, body, "acme only")
	code, body = do("reader-acme", "GET", "/api/v1/incidents", "", "", nil)
	require.Equal(t, 200, code, body)
	require.Contains(t, body, "acme only")
	// The rule group the admin stored for acme (its default "*" → default
	// tenant; name it) is not beta's.
	code, body = do("admin", "POST", "/config/v1/rules/ns", "application/yaml", "acme", []byte(strings.Replace(string(ruleGroup), "name: g", "name: acme-group", 1)))
	require.Contains(t, []int{200, 202}, code, body)
	code, body = do("reader-beta", "GET", "/api/v1/rules", "", "", nil)
	require.Equal(t, 200, code)
	require.NotContains(t, body, "acme-group")
	code, body = do("reader-acme", "GET", "/api/v1/rules", "", "", nil)
	require.Equal(t, 200, code, body)
	require.Contains(t, body, "acme-group")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
