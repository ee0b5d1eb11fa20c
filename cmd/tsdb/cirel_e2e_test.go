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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestSwitchFailureIsOneIncident: the real server, a rule and a webhook
// receiver. A switch and its five servers go down in one write (so their
// alerts fire in one evaluation, in any order): six incidents, the
// switch's the parent of the five others, and one page. A CI made
// through the API, depending on a server, survives a restart.
func TestSwitchFailureIsOneIncident(t *testing.T) {
	var mu sync.Mutex
	var pages []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		pages = append(pages, m)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	require.NoError(t, os.WriteFile(rules, []byte(`
groups:
  - name: net
    interval: 1s
    rules:
      - alert: Down
        expr: reachable == 0
        labels: {severity: critical}
`), 0o644))
	var cis strings.Builder
	cis.WriteString("    - {name: switch-1, kind: network device, selector: '{target=\"switch-1\"}', owner_group: network, impact: high}\n")
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(&cis, "    - {name: server-%d, kind: host, selector: '{target=\"server-%d\"}', owner_group: servers, depends_on: [switch-1]}\n", i, i)
	}
	cfg := filepath.Join(dir, "tsdb.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
itsm:
  group_by: [alertname]
  cis:
%s  groups: {network: [kim], servers: [lee]}
  correlation: {mode: child, window: 5m}
  receivers:
    - {name: hook, type: webhook, url: '%s'}
`, cis.String(), srv.URL)), 0o644))
	bin := apptest.Build(t)
	data := t.TempDir()
	db := apptest.StartTSDB(t, bin, data, "--rules", rules, "--config.file", cfg)
	c := &http.Client{Timeout: 10 * time.Second}

	req := &prompb.WriteRequest{}
	for _, target := range []string{"server-1", "server-2", "server-3", "switch-1", "server-4", "server-5"} {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "reachable"}, {Name: "target", Value: target}},
			Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 0}},
		})
	}
	code, body, err := apptest.RemoteWrite(context.Background(), c, db.URL()+"/api/v1/write", req)
	require.NoError(t, err)
	require.Equal(t, 204, code, body)

	type incident struct {
		ID, CI, Parent string
		Children       []string
		Quiet          bool
	}
	call := func(method, path, body string, out any) int {
		r, err := http.NewRequest(method, db.URL()+path, strings.NewReader(body))
		require.NoError(t, err)
		r.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(r)
		require.NoError(t, err)
		defer resp.Body.Close()
		var env struct{ Data json.RawMessage }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
		if out != nil {
			require.NoError(t, json.Unmarshal(env.Data, out))
		}
		return resp.StatusCode
	}
	var incs []incident
	require.Eventually(t, func() bool {
		incs = nil
		call("GET", "/api/v1/incidents", "", &incs)
		return len(incs) == 6
	}, 30*time.Second, 200*time.Millisecond)
	var sw incident
	for _, inc := range incs {
		if inc.CI == "switch-1" {
			sw = inc
		}
	}
	require.Len(t, sw.Children, 5)
	for _, inc := range incs {
		if inc.CI != "switch-1" {
			require.Equal(t, sw.ID, inc.Parent, inc.CI)
			require.True(t, inc.Quiet, inc.CI)
		}
	}
	// The switch's page comes a second after its opening; any server's
	// would have been queued before it, to the same receiver, in order.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(pages) > 0
	}, 30*time.Second, 100*time.Millisecond)
	mu.Lock()
	require.Len(t, pages, 1, "one page for one switch failure")
	require.Equal(t, "opened", pages[0]["event"])
	require.Equal(t, "switch-1", pages[0]["incident"].(map[string]any)["ci"])
	mu.Unlock()

	// A run-time CI, depending on a server, is stored.
	require.Equal(t, 400, call("POST", "/api/v1/cis", `{"name":"app-1","depends_on":["server-9"]}`, nil))
	require.Equal(t, 201, call("POST", "/api/v1/cis", `{"name":"app-1","selector":"{target=\"app-1\"}","depends_on":["server-1"]}`, nil))
	db.Kill()
	db = apptest.StartTSDB(t, bin, data, "--rules", rules, "--config.file", cfg)
	var list []struct {
		Name      string
		Source    string
		DependsOn []string `json:"depends_on"`
	}
	require.Equal(t, 200, call("GET", "/api/v1/cis", "", &list))
	require.Len(t, list, 7)
	require.Equal(t, "app-1", list[0].Name)
	require.Equal(t, "api", list[0].Source)
	require.Equal(t, []string{"server-1"}, list[0].DependsOn)
}
