package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

func clusterReadConfig(t *testing.T, broker, zone, node string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), node+".yml")
	doc := fmt.Sprintf(`cluster:
  brokers: [%s]
  partitions: 4
  replication_factor: 1
  zone: %s
  node: %s
  produce_timeout: 3s
  session_timeout: 6s
  secret: e2e-secret
`, broker, zone, node)
	require.NoError(t, os.WriteFile(p, []byte(doc), 0o644))
	return p
}

// clusterReadData is 30 series of 60 samples, one a minute over the hour
// before base, in 6 writes of 10 minutes.
func clusterReadData(base int64) []*prompb.WriteRequest {
	var reqs []*prompb.WriteRequest
	for w := range 6 {
		req := &prompb.WriteRequest{}
		for s := range 30 {
			ts := prompb.TimeSeries{Labels: []prompb.Label{
				{Name: "__name__", Value: "cluster_read"},
				{Name: "job", Value: "j" + strconv.Itoa(s%4)},
				{Name: "s", Value: strconv.Itoa(s)},
			}}
			for k := range 10 {
				m := int64(w*10 + k)
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: base - (60-m)*60_000, Value: float64(s*100) + float64(m*m)/7})
			}
			req.Timeseries = append(req.Timeseries, ts)
		}
		reqs = append(reqs, req)
	}
	return reqs
}

// TestClusterReadPath: one Kafka broker, three tsdb nodes in two zones
// (zone-a: n1 and n2, zone-b: n3). Samples written through n1 are read
// whole through every node (read_consistency=strong waits for them), and
// the answers of the query API, series and label values are those of a
// single node fed the same data, byte for byte. /api/v1/status/cluster
// names the nodes, zones and owners. After kill -9 of n2 the other nodes
// still answer whole at once (n2's partitions from zone-b); with n3
// killed too, a query answers 503 naming the partitions without a
// healthy owner, or, with partial_response=true, what is left with a
// warning.
func TestClusterReadPath(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka broker and four tsdb")
	}
	k := apptest.StartKafka(t, nil)
	bin := apptest.Build(t)
	c := &http.Client{Timeout: 30 * time.Second}
	start := func(zone, node string) *apptest.Proc {
		return apptest.StartTSDB(t, bin, t.TempDir(), "--config.file", clusterReadConfig(t, k.Addr, zone, node), "--self-monitor.interval", "0")
	}
	n1, n2, n3 := start("zone-a", "n1"), start("zone-a", "n2"), start("zone-b", "n3")
	single := apptest.StartTSDB(t, bin, t.TempDir(), "--self-monitor.interval", "0")
	require.Eventually(t, func() bool {
		return owned(t, n1) == 2 && owned(t, n2) == 2 && owned(t, n3) == 4
	}, time.Minute, 200*time.Millisecond, "zone-a's two nodes share the 4 partitions, zone-b's one node has them all")

	base := time.Now().Truncate(time.Minute).UnixMilli()
	for _, req := range clusterReadData(base) {
		for _, u := range []string{n1.URL(), single.URL()} {
			code, body, err := apptest.RemoteWrite(t.Context(), c, u+"/api/v1/write", req)
			require.NoError(t, err)
			require.Equal(t, http.StatusNoContent, code, body)
		}
	}
	at := strconv.FormatFloat(float64(base)/1000, 'f', 3, 64)
	api := func(p *apptest.Proc, path string, params url.Values) (int, string) {
		t.Helper()
		resp, err := c.PostForm(p.URL()+path, params)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	count := func(p *apptest.Proc, extra url.Values) (int, apptest.APIResult) {
		t.Helper()
		params := url.Values{"query": {"sum(count_over_time(cluster_read[2h]))"}, "time": {at}}
		for k, v := range extra {
			params[k] = v
		}
		r, err := apptest.PostAPI(c, p.URL(), "/api/v1/query", params)
		require.NoError(t, err)
		if r.Status != "success" {
			return -1, r
		}
		var v []struct {
			Value [2]any `json:"value"`
		}
		require.NoError(t, json.Unmarshal(r.Data.Result, &v))
		if len(v) == 0 {
			return 0, r
		}
		n, _ := strconv.Atoi(v[0].Value[1].(string))
		return n, r
	}
	const total = 30 * 60

	// Read-your-writes through every node: the owners wait until they
	// have consumed what was produced before the query.
	strong := url.Values{"read_consistency": {"strong"}}
	for _, p := range []*apptest.Proc{n1, n2, n3} {
		n, r := count(p, strong)
		require.Equal(t, total, n, "samples through %s: %+v", p.Addr, r)
	}

	// The same answers as a single node, byte for byte.
	queries := []struct{ path, query string }{
		{"/api/v1/query", "sum by (job) (rate(cluster_read[10m]))"},
		{"/api/v1/query", "topk(3, cluster_read)"},
		{"/api/v1/query", "quantile_over_time(0.9, cluster_read[1h])"},
		{"/api/v1/query_range", "avg by (job) (cluster_read)"},
		{"/api/v1/query_range", "deriv(cluster_read{job=~\"j[12]\"}[15m])"},
		{"/api/v1/series", ""},
		{"/api/v1/label/job/values", ""},
		{"/api/v1/labels", ""},
	}
	for _, q := range queries {
		params := url.Values{"query": {q.query}, "time": {at}, "start": {strconv.FormatInt(base/1000-3600, 10)}, "end": {at}, "step": {"60"}}
		if q.query == "" {
			params = url.Values{"match[]": {"cluster_read"}, "start": {strconv.FormatInt(base/1000-7200, 10)}, "end": {at}}
		}
		_, want := api(single, q.path, params)
		require.Contains(t, want, `"success"`)
		for _, p := range []*apptest.Proc{n1, n2, n3} {
			t0 := time.Now()
			code, got := api(p, q.path, params)
			require.Equal(t, http.StatusOK, code, got)
			require.Equal(t, want, got, "%s %s through %s", q.path, q.query, p.Addr)
			if q.path == "/api/v1/query_range" {
				t.Logf("%s %q through %s: %v", q.path, q.query, p.Addr, time.Since(t0).Round(time.Microsecond))
			}
		}
	}
	// Latency through the fan-out against the single node, same query.
	lat := func(p *apptest.Proc) time.Duration {
		params := url.Values{"query": {"sum by (job) (rate(cluster_read[10m]))"}, "start": {strconv.FormatInt(base/1000-3600, 10)}, "end": {at}, "step": {"60"}, "nocache": {"1"}}
		var ds []time.Duration
		for range 20 {
			t0 := time.Now()
			code, _ := api(p, "/api/v1/query_range", params)
			require.Equal(t, http.StatusOK, code)
			ds = append(ds, time.Since(t0))
		}
		return percentile(ds, 0.5)
	}
	t.Logf("query_range p50 over 20 runs: single node %v, cluster through n1 %v, through n3 (zone-b, all local) %v",
		lat(single), lat(n1), lat(n3))

	// The status: three nodes, two zones, every partition owned in both.
	code, body := n1.Get(t, "/api/v1/status/cluster")
	require.Equal(t, http.StatusOK, code, body)
	var st struct {
		Data struct {
			Nodes []struct {
				Zone, Node, URL string
				Healthy         bool
			} `json:"nodes"`
			Zones []struct {
				Zone       string `json:"zone"`
				Partitions []struct {
					Owner    string `json:"owner"`
					Lag      int64  `json:"lag"`
					Readable bool   `json:"readable"`
				} `json:"partitions"`
			} `json:"zones"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Len(t, st.Data.Nodes, 3, body)
	require.Len(t, st.Data.Zones, 2, body)
	for _, z := range st.Data.Zones {
		require.Len(t, z.Partitions, 4, body)
		for _, p := range z.Partitions {
			require.NotEmpty(t, p.Owner, body)
			require.True(t, p.Readable, body)
		}
	}
	_, metrics := n1.Get(t, "/metrics")
	require.Contains(t, metrics, `tsdb_cluster_partition_lag{partition="0",zone="zone-b"}`)

	// The console's overview shows the same: nodes, owners, readable
	// partitions and lag per zone, and the leader.
	p := page{t, browser(t, 1280, 900)}
	p.do(chromedp.Navigate(n1.URL()+"/console/"), loaded("overview"), visible(`[data-testid="overview-cluster"]`),
		waitText(`[data-testid="cluster-health"]`, "All 3 nodes up · 4 partitions"),
		waitText(`[data-testid="cluster-leader"]`, "Leader (rules, ITSM, KPIs): zone-"))
	ov := p.text(`[data-testid="overview-cluster"]`)
	for _, want := range []string{"zone-a/n1", "zone-a/n2", "zone-b/n3", "(this node)", "0, 1, 2, 3"} {
		require.Contains(t, ov, want)
	}
	require.Equal(t, 2, p.count(`[data-testid="overview-cluster"] [data-zone]`), ov)
	for _, z := range []string{"zone-a", "zone-b"} {
		require.Contains(t, p.text(fmt.Sprintf(`[data-testid="overview-cluster"] [data-zone=%q]`, z)), "4 / 4", ov)
	}
	p.screenshot("cluster-overview.png")

	// kill -9 of n2: n1 and n3 answer whole at once, n2's partitions from
	// zone-b (and, once they moved to n1, still from zone-b: their history
	// is on n2's disk).
	n2.Kill()
	killed := time.Now()
	for _, p := range []*apptest.Proc{n1, n3} {
		n, r := count(p, nil)
		require.Equal(t, total, n, "after kill -9 of n2, through %s: %+v", p.Addr, r)
	}
	t.Logf("kill -9 of n2: the first query through n1 answered whole %v later", time.Since(killed).Round(time.Millisecond))
	require.Eventually(t, func() bool { return owned(t, n1) == 4 }, time.Minute, 200*time.Millisecond, "n2's partitions move to n1")
	t.Logf("n2's partitions moved to n1 %v after the kill", time.Since(killed).Round(time.Millisecond))
	n, r := count(n1, strong)
	require.Equal(t, total, n, "after the move, strong: %+v", r)

	// n3 killed too: n2's partitions have no healthy owner anywhere.
	n3.Kill()
	n, r = count(n1, nil)
	require.Equal(t, -1, n)
	require.Equal(t, "unavailable", r.ErrorType, "%+v", r)
	require.Contains(t, r.Error, "no healthy owner in any zone")
	refused := r.Error
	n, r = count(n1, url.Values{"partial_response": {"true"}})
	require.Greater(t, n, 0, "%+v", r)
	require.Less(t, n, total)
	require.Len(t, r.Warnings, 1)
	require.Contains(t, r.Warnings[0], "the answer is partial")
	t.Logf("with zone-b down too: 503 %q; partial: %d of %d samples, warning %q", refused, n, total, r.Warnings[0])
}

// TestClusterRestartNoSilentGap: a node killed and started again must not
// make a strong read answer short without saying so. n1 and n2 share
// zone-a's partitions, n3 holds them all in zone-b; samples written
// before n1 is killed are, in zone-a, on n1's disk only. From n1's
// restart on, every strong read through n2 (and through n1 once it
// answers) counts every sample, or fails, or warns that it is partial:
// never a success short of samples. (n1 used to announce itself holding
// nothing before it had read back its own last announcement, and for a
// heartbeat zone-a was planned without n1's history.)
func TestClusterRestartNoSilentGap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka broker and three tsdb")
	}
	k := apptest.StartKafka(t, nil)
	bin := apptest.Build(t)
	c := &http.Client{Timeout: 30 * time.Second}
	dir1 := t.TempDir()
	start := func(dir, zone, node string) *apptest.Proc {
		return apptest.StartTSDB(t, bin, dir, "--config.file", clusterReadConfig(t, k.Addr, zone, node), "--self-monitor.interval", "1s")
	}
	n1, n2, n3 := start(dir1, "zone-a", "n1"), start(t.TempDir(), "zone-a", "n2"), start(t.TempDir(), "zone-b", "n3")
	require.Eventually(t, func() bool {
		return owned(t, n1) == 2 && owned(t, n2) == 2 && owned(t, n3) == 4
	}, time.Minute, 200*time.Millisecond, "zone-a's two nodes share the 4 partitions")

	base := time.Now().Truncate(time.Minute).UnixMilli()
	for _, req := range clusterReadData(base) {
		code, body, err := apptest.RemoteWrite(t.Context(), c, n3.URL()+"/api/v1/write", req)
		require.NoError(t, err)
		require.Equal(t, http.StatusNoContent, code, body)
	}
	const total = 30 * 60
	at := strconv.FormatFloat(float64(base)/1000, 'f', 3, 64)
	// count is a strong read's sample count, -1 when it did not succeed
	// whole (an error, or a partial answer with its warning).
	count := func(p *apptest.Proc) int {
		r, err := apptest.PostAPI(c, p.URL(), "/api/v1/query", url.Values{"query": {"sum(count_over_time(cluster_read[2h]))"},
			"time": {at}, "read_consistency": {"strong"}})
		if err != nil || r.Status != "success" || len(r.Warnings) > 0 {
			return -1
		}
		var v []struct {
			Value [2]any `json:"value"`
		}
		require.NoError(t, json.Unmarshal(r.Data.Result, &v))
		if len(v) == 0 {
			return 0
		}
		n, _ := strconv.Atoi(v[0].Value[1].(string))
		return n
	}
	for _, p := range []*apptest.Proc{n1, n2, n3} {
		require.Equal(t, total, count(p), "through %s", p.Addr)
	}

	n1.Kill()
	require.Eventually(t, func() bool { return owned(t, n2) == 4 }, time.Minute, 200*time.Millisecond, "n2 takes over n1's partitions")
	require.Equal(t, total, count(n2), "after the kill, n1's history comes from zone-b")

	n1 = start(dir1, "zone-a", "n1")
	reads, whole := 0, 0
	for end := time.Now().Add(8 * time.Second); time.Now().Before(end); {
		for _, p := range []*apptest.Proc{n2, n1} {
			n := count(p)
			reads++
			if n == total {
				whole++
			} else if n >= 0 {
				t.Fatalf("a strong read through %s after n1's restart answered %d of %d samples, as a success without a warning", p.Addr, n, total)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d strong reads over 8 s after n1's restart: %d whole, %d refused or partial with a warning", reads, whole, reads-whole)
	require.Eventually(t, func() bool { return count(n1) == total && count(n2) == total && count(n3) == total }, time.Minute, 200*time.Millisecond)

	// Self-monitoring goes through the cluster: every node's own metrics
	// (tenant tsdb, instance <zone>/<node>) are read through any node.
	require.Eventually(t, func() bool {
		hr, err := http.NewRequest(http.MethodGet, n2.URL()+"/api/v1/query?"+url.Values{
			"query": {`count by (instance) (up{job="tsdb"})`}, "read_consistency": {"strong"}}.Encode(), nil)
		require.NoError(t, err)
		hr.Header.Set("X-Scope-OrgID", "tsdb")
		resp, err := c.Do(hr)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		for _, inst := range []string{"zone-a/n1", "zone-a/n2", "zone-b/n3"} {
			if !strings.Contains(string(b), `"instance":"`+inst+`"`) {
				return false
			}
		}
		return true
	}, 30*time.Second, 500*time.Millisecond, "every node's self-monitoring read through n2")
}
