package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// getTenant fetches path from p as tenant and decodes the envelope's data.
func getTenant(t *testing.T, p *apptest.Proc, tenant, path string) (int, json.RawMessage) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.URL()+path, nil)
	require.NoError(t, err)
	req.Header.Set("X-Scope-OrgID", tenant)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(b, &env)
	if env.Data == nil {
		env.Data = b
	}
	return resp.StatusCode, env.Data
}

// tsdb stores its own metrics as a scrape of job="tsdb" would, in a tenant
// of its own, and not when the interval is 0.
func TestSelfMonitoring(t *testing.T) {
	bin := apptest.Build(t)
	db := apptest.StartTSDB(t, bin, t.TempDir(), "--self-monitor.interval", "200ms")
	q := "/api/v1/query?query=" + url.QueryEscape(`count by (__name__) ({job="tsdb", __name__=~"up|tsdb_http_requests_total|tsdb_http_request_duration_seconds_bucket|go_goroutines|scrape_duration_seconds"})`)
	require.Eventually(t, func() bool {
		_, data := getTenant(t, db, "tsdb", q)
		return strings.Count(string(data), `"__name__"`) == 5
	}, 20*time.Second, 200*time.Millisecond, "tsdb's own metrics in the tenant tsdb")
	_, data := getTenant(t, db, "tsdb", "/api/v1/query?query="+url.QueryEscape(`up{job="tsdb"}`))
	require.Contains(t, string(data), `"instance":"`+db.Addr+`"`)
	require.Contains(t, string(data), `"1"]`)
	_, data = getTenant(t, db, "default", "/api/v1/query?query="+url.QueryEscape(`up{job="tsdb"}`))
	require.JSONEq(t, `{"resultType":"vector","result":[]}`, string(data), "not in the default tenant")

	off := apptest.StartTSDB(t, bin, t.TempDir(), "--self-monitor.interval", "0")
	time.Sleep(time.Second)
	_, data = getTenant(t, off, "tsdb", "/api/v1/query?query=up")
	require.JSONEq(t, `{"resultType":"vector","result":[]}`, string(data), "off with an interval of 0")
}

// make run's first-run configuration: its config file in the data folder,
// the alert rules about tsdb stored once for its tenant, where the
// first-hour alert goes pending at once; three KPIs of its own; ad hoc
// forecasts without any kpis:; the console is told the tenant exists.
func TestFirstRun(t *testing.T) {
	bin := apptest.Build(t)
	data := t.TempDir()
	args := []string{"--first-run", "--self-monitor.interval", "500ms", "--rules.evaluation-interval", "1s"}
	db := apptest.StartTSDB(t, bin, data, args...)
	cfgPath := filepath.Join(data, "first-run.yml")
	b, err := os.ReadFile(cfgPath)
	require.NoError(t, err)
	require.Equal(t, firstRunConfig, b)

	code, rules := getTenant(t, db, "tsdb", "/api/v1/rules")
	require.Equal(t, 200, code, string(rules))
	require.Contains(t, string(rules), `"name":"tsdb"`)
	require.Contains(t, string(rules), `"name":"tsdb-first-hour"`)
	require.Eventually(t, func() bool {
		_, alerts := getTenant(t, db, "tsdb", "/api/v1/alerts")
		return strings.Contains(string(alerts), `"alertname":"TsdbReceivesNoData"`)
	}, 30*time.Second, 250*time.Millisecond, "nobody sends data: the first-hour alert is pending")

	code, kpis := getTenant(t, db, "tsdb", "/api/v1/kpis")
	require.Equal(t, 200, code, string(kpis))
	for _, k := range []string{"tsdb_query_latency_p95", "tsdb_memory_in_use", "tsdb_disk_used"} {
		require.Contains(t, string(kpis), `"name":"`+k+`"`)
	}
	code, _ = getTenant(t, db, "default", "/api/v1/kpis")
	require.Equal(t, 200, code, "no KPIs in the default tenant, yet the engine answers")
	code, fc := getTenant(t, db, "tsdb", "/api/v1/forecast?"+url.Values{
		"query": {`max(go_goroutines{job="tsdb"})`}, "target": {"100000"}, "direction": {"below"},
		"step": {"1s"}, "history": {"1m"}, "horizon": {"1m"}, "seasonality": {"none"}}.Encode())
	require.NotEqual(t, 404, code, "ad hoc forecasts need no kpis: section: %s", fc)

	_, me := getTenant(t, db, "default", "/api/v1/status/whoami")
	require.Contains(t, string(me), `"known_tenants":["tsdb"]`)

	// A restart keeps an edited config and stores the rules only once.
	db.Stop(t)
	edited := append(append([]byte{}, firstRunConfig...), "# edited\n"...)
	require.NoError(t, os.WriteFile(cfgPath, edited, 0o644))
	db = apptest.StartTSDB(t, bin, data, args...)
	b, err = os.ReadFile(cfgPath)
	require.NoError(t, err)
	require.Equal(t, edited, b)
	_, again := getTenant(t, db, "tsdb", "/api/v1/rules")
	require.Equal(t, strings.Count(string(rules), `"name":"`), strings.Count(string(again), `"name":"`), "no group stored twice")
}

// The first-run rules are the example self-monitoring rules plus the
// first-hour group: the example file stays the one to copy.
func TestFirstRunRulesAreTheExamples(t *testing.T) {
	example, err := os.ReadFile("../../examples/tsdb-alerts.yml")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(firstRunAlerts), string(example)), "cmd/tsdb/firstrun/tsdb-alerts.yml must begin with examples/tsdb-alerts.yml")
	var out strings.Builder
	f := filepath.Join(t.TempDir(), "first-run-alerts.yml")
	require.NoError(t, os.WriteFile(f, firstRunAlerts, 0o644))
	require.Equal(t, 0, rulesCheck([]string{f}, &out), out.String())
}
