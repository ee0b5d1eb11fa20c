package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestPrometheusRemoteWrite: Debian's real Prometheus scrapes itself and
// tsdb, remote-writes everything to tsdb, and tsdb holds exactly the
// samples Prometheus holds.
func TestPrometheusRemoteWrite(t *testing.T) {
	bin := apptest.Build(t)
	db := apptest.StartTSDB(t, bin, t.TempDir())
	promAddr := apptest.FreePort(t)
	cfg := fmt.Sprintf(`
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - {job_name: prom, static_configs: [{targets: ['%s']}]}
  - {job_name: tsdb, static_configs: [{targets: ['%s']}]}
remote_write:
  - url: '%s/api/v1/write'
    queue_config: {batch_send_deadline: 1s, max_samples_per_send: 500}
`, promAddr, db.Addr, db.URL())
	prom := apptest.StartPrometheus(t, promAddr, cfg)
	c := &http.Client{Timeout: 30 * time.Second}

	// Let a few scrapes happen and reach tsdb.
	var got []apptest.ExportedSeries
	require.Eventually(t, func() bool {
		var err error
		got, err = apptest.Export(c, db.URL(), `{__name__="up"}`)
		return err == nil && len(got) == 2 && len(got[0].Timestamps) >= 5 && len(got[1].Timestamps) >= 5
	}, 60*time.Second, 500*time.Millisecond, "tsdb did not receive up for both jobs\n%s", prom.Log())

	// Every sample Prometheus stored up to the newest one tsdb has must be
	// in tsdb with the same value.
	for _, s := range got {
		job := s.Metric["job"]
		last := s.Timestamps[len(s.Timestamps)-1]
		want := promRaw(t, c, prom.URL(), fmt.Sprintf(`up{job=%q}[5m]`, job), last)
		require.NotEmpty(t, want, job)
		have := map[int64]float64{}
		for i, ts := range s.Timestamps {
			have[ts] = s.Value(i)
		}
		for ts, v := range want {
			require.Contains(t, have, ts, "job %s: sample at %d missing", job, ts)
			require.Equal(t, v, have[ts], "job %s at %d", job, ts)
		}
	}
	// Many series arrive, not only up: Prometheus' own metrics.
	all, err := apptest.Export(c, db.URL(), `{job="prom"}`)
	require.NoError(t, err)
	require.Greater(t, len(all), 100, "prometheus exposes hundreds of series")
	code, body := db.Get(t, "/metrics")
	require.Equal(t, 200, code)
	require.Contains(t, body, `tsdb_remote_write_requests_total{code="204",version="1.0"}`)
	prom.Stop(t)
	db.Stop(t)
}

// promRaw returns the raw samples of a range-vector selector at time ms.
func promRaw(t *testing.T, c *http.Client, base, q string, ms int64) map[int64]float64 {
	t.Helper()
	u := base + "/api/v1/query?query=" + url.QueryEscape(q) + "&time=" + strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
	resp, err := c.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	out := map[int64]float64{}
	for _, res := range r.Data.Result {
		for _, v := range res.Values {
			ts := int64(v[0].(float64)*1000 + 0.5)
			f, err := strconv.ParseFloat(v[1].(string), 64)
			require.NoError(t, err)
			out[ts] = f
		}
	}
	return out
}
