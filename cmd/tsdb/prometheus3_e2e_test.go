package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// exemplarTarget serves, over HTTP on a loopback port, a native histogram
// and a counter observed with exemplars, as an instrumented application
// does (client_golang: protobuf exposition for Prometheus 3's native
// histograms, OpenMetrics otherwise). It keeps observing until the test
// ends.
func exemplarTarget(t *testing.T) string {
	reg := prometheus.NewRegistry()
	hist := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "app_request_duration_seconds", Help: "Time to serve a request.",
		NativeHistogramBucketFactor: 1.1, NativeHistogramMaxBucketNumber: 100,
	})
	reqs := prometheus.NewCounter(prometheus.CounterOpts{Name: "app_requests_total", Help: "Requests served."})
	reg.MustRegister(hist, reqs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})}
	go srv.Serve(ln) //nolint:errcheck
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			trace := prometheus.Labels{"trace_id": fmt.Sprintf("%016x", i)}
			hist.(prometheus.ExemplarObserver).ObserveWithExemplar(rand.ExpFloat64()/10, trace)
			reqs.(prometheus.ExemplarAdder).AddWithExemplar(1, trace)
		}
	}()
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
		_ = srv.Close()
	})
	return ln.Addr().String()
}

// TestPrometheus3RemoteWriteV2: Prometheus 3.14 scrapes native histograms
// and exemplars and sends them over remote write 2.0, and metadata over
// remote write 1.0; tsdb stores them, answers /api/v1/metadata and
// /api/v1/query_exemplars with them, and Prometheus' own remote-write
// metrics show nothing failed or dropped.
//
// Metadata travels over 1.0 (to another tenant) because Prometheus 3.14
// sends none over 2.0: its scrape loop writes metadata to the WAL only
// when the TSDB option EnableMetadataWALRecords is set, which its main
// never sets (--enable-feature=metadata-wal-records sets only the scrape
// and web options), so every 2.0 series goes with METRIC_TYPE_UNSPECIFIED.
func TestPrometheus3RemoteWriteV2(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs Prometheus 3.14")
	}
	bin := apptest.Build(t)
	promBin := apptest.ReferencePrometheus(t)
	db := apptest.StartTSDB(t, bin, t.TempDir())
	target := exemplarTarget(t)
	promAddr := apptest.FreePort(t)
	cfg := fmt.Sprintf(`
global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_native_histograms: true}
scrape_configs:
  - {job_name: app, static_configs: [{targets: ['%s']}]}
remote_write:
  - url: '%s/api/v1/write'
    protobuf_message: io.prometheus.write.v2.Request
    send_exemplars: true
    send_native_histograms: true
    queue_config: {batch_send_deadline: 1s, max_samples_per_send: 500}
  - url: '%s/api/v1/write'
    headers: {X-Scope-OrgID: v1}
    metadata_config: {send: true, send_interval: 1s}
    queue_config: {batch_send_deadline: 1s, max_samples_per_send: 500}
`, target, db.URL(), db.URL())
	prom := apptest.StartPrometheusBinary(t, promBin, promAddr, cfg, "--enable-feature=exemplar-storage")
	c := &http.Client{Timeout: 30 * time.Second}
	get := func(path string, tenant string) map[string]any {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, db.URL()+path, nil)
		require.NoError(t, err)
		req.Header.Set("X-Scope-OrgID", tenant)
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		code, body := resp.StatusCode, string(b)
		require.Equal(t, 200, code, body)
		var env map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &env), body)
		return env
	}

	// Metadata of both families, from remote write 1.0's metadata.
	var md map[string]any
	require.Eventually(t, func() bool {
		md = get("/api/v1/metadata", "v1")["data"].(map[string]any)
		return md["app_request_duration_seconds"] != nil && md["app_requests_total"] != nil
	}, 60*time.Second, 500*time.Millisecond, "no metadata reached tsdb: %v\n%s\n%s", md, tsdbWriteMetrics(t, db), prom.Log())
	require.Equal(t, []any{map[string]any{"type": "histogram", "unit": "", "help": "Time to serve a request."}}, md["app_request_duration_seconds"])
	require.Equal(t, []any{map[string]any{"type": "counter", "unit": "", "help": "Requests served."}}, md["app_requests_total"])

	// Exemplars of both, with their trace ids.
	now := time.Now()
	exq := "/api/v1/query_exemplars?" + url.Values{
		"query": {`app_requests_total or app_request_duration_seconds`},
		"start": {strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)},
		"end":   {strconv.FormatInt(now.Add(time.Hour).Unix(), 10)},
	}.Encode()
	var series []any
	require.Eventually(t, func() bool {
		series, _ = get(exq, "default")["data"].([]any)
		return len(series) == 2
	}, 60*time.Second, 500*time.Millisecond, "exemplars did not reach tsdb\n%s", prom.Log())
	for _, s := range series {
		s := s.(map[string]any)
		ex := s["exemplars"].([]any)
		require.NotEmpty(t, ex, "%v", s["seriesLabels"])
		first := ex[0].(map[string]any)
		require.Regexp(t, `^[0-9a-f]{16}$`, first["labels"].(map[string]any)["trace_id"])
		require.Equal(t, "app", s["seriesLabels"].(map[string]any)["job"])
	}

	// The native histogram answers as one, to the JSON Grafana's heatmaps
	// read and to PromQL.
	var res []any
	require.Eventually(t, func() bool {
		res, _ = get("/api/v1/query?query=app_request_duration_seconds", "default")["data"].(map[string]any)["result"].([]any)
		return len(res) == 1 && res[0].(map[string]any)["histogram"] != nil
	}, 30*time.Second, 500*time.Millisecond, "no native histogram: %v", res)
	cnt := get("/api/v1/query?query=histogram_count(app_request_duration_seconds)", "default")["data"].(map[string]any)["result"].([]any)
	require.Len(t, cnt, 1)
	n, err := strconv.ParseFloat(cnt[0].(map[string]any)["value"].([]any)[1].(string), 64)
	require.NoError(t, err)
	require.Positive(t, n, "observations counted")

	// Wait until Prometheus has sent histograms, exemplars and samples
	// (and had the answers), then it must report no failure.
	promMetrics := func() string {
		resp, err := c.Get(prom.URL() + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	sentRe := regexp.MustCompile(`(?m)^prometheus_remote_storage_(samples|histograms|exemplars)_total\{[^}]*\} (\S+)$`)
	var metrics string
	require.Eventually(t, func() bool {
		metrics = promMetrics()
		got := map[string]float64{}
		for _, m := range sentRe.FindAllStringSubmatch(metrics, -1) {
			v, err := strconv.ParseFloat(m[2], 64)
			require.NoError(t, err)
			got[m[1]] += v
		}
		return got["histograms"] > 0 && got["exemplars"] > 0 && got["samples"] > 0
	}, 60*time.Second, 500*time.Millisecond, "Prometheus did not send histograms, exemplars and samples")
	bad := regexp.MustCompile(`(?m)^prometheus_remote_storage_\w*(failed|dropped)\w*_total\{[^}]*\} (\S+)$`).FindAllStringSubmatch(metrics, -1)
	require.NotEmpty(t, bad, "the failed/dropped counters are missing:\n%s", metrics)
	for _, m := range bad {
		require.Equal(t, "0", m[2], "%s\n%s", m[0], prom.Log())
	}
	require.NotContains(t, prom.Log(), "statistics indicate some data was not written")
	prom.Stop(t)
	db.Stop(t)
}

// tsdbWriteMetrics returns tsdb's remote-write metrics, for failure messages.
func tsdbWriteMetrics(t *testing.T, db *apptest.Proc) string {
	_, body := db.Get(t, "/metrics")
	return strings.Join(regexp.MustCompile(`(?m)^tsdb_remote_write.*$`).FindAllString(body, -1), "\n")
}
