package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/internal/auth"
	"github.com/emsdb/tsdb/internal/metering"
)

// usageClient talks to a tsdb with the users of usageConfig.
type usageClient struct {
	t *testing.T
	p *apptest.Proc
	c *http.Client
}

var usageUsers = map[string]string{"admin": "Bearer root", "writer": "Bearer w", "acme": "Bearer r-acme", "": ""}

func usageConfig(t *testing.T) string {
	cfg := filepath.Join(t.TempDir(), "tsdb.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
auth:
  users:
    - {name: admin, token_sha256: %s, roles: [admin], tenants: ["*"]}
    - {name: writer, token_sha256: %s, roles: [write], tenants: ["*"]}
    - {name: acme-reader, token_sha256: %s, roles: [read], tenants: [acme]}
limits:
  tenants:
    acme: {max_series: 12}
`, auth.HashToken("root"), auth.HashToken("w"), auth.HashToken("r-acme"))), 0o644))
	return cfg
}

func (u *usageClient) do(user, method, path, ctype, tenant string, body []byte, hdr ...string) (int, http.Header, string) {
	u.t.Helper()
	req, err := http.NewRequest(method, u.p.URL()+path, bytes.NewReader(body))
	require.NoError(u.t, err)
	if a := usageUsers[user]; a != "" {
		req.Header.Set("Authorization", a)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := u.c.Do(req)
	require.NoError(u.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// write sends body as tenant and wants a 2xx.
func (u *usageClient) write(tenant, path, ctype string, body []byte) {
	u.t.Helper()
	code, _, out := u.do("writer", "POST", path, ctype, tenant, body)
	require.Less(u.t, code, 300, "%s: %s", path, out)
}

func (u *usageClient) query(tenant, q string) {
	u.t.Helper()
	code, _, out := u.do("admin", "GET", "/api/v1/query?query="+url.QueryEscape(q), "", tenant, nil)
	require.Equal(u.t, 200, code, out)
}

// report reads this month's usage as user, for tenant= when not "".
func (u *usageClient) report(user, tenant string) map[string]metering.TenantReport {
	u.t.Helper()
	path := "/api/v1/usage"
	if tenant != "" {
		path += "?tenant=" + tenant
	}
	code, _, out := u.do(user, "GET", path, "", "", nil)
	require.Equal(u.t, 200, code, out)
	var r struct{ Data metering.Report }
	require.NoError(u.t, json.Unmarshal([]byte(out), &r), out)
	m := map[string]metering.TenantReport{}
	for _, tr := range r.Data.Tenants {
		m[tr.Tenant] = tr
	}
	return m
}

func remoteWriteBody(t *testing.T, name string, series, samples int, from int64) []byte {
	var wr prompb.WriteRequest
	for s := range series {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: name}, {Name: "s", Value: fmt.Sprint(s)}}}
		for i := range samples {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: from + int64(i)*1000, Value: float64(i)})
		}
		wr.Timeseries = append(wr.Timeseries, ts)
	}
	raw, err := wr.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, raw)
}

// TestUsageMetering runs the binary with two tenants writing through four
// protocols and querying; the usage report (JSON and CSV), the role rules
// and the tsdb_usage_* metrics agree with what was done, after a clean
// restart, and the samples ingested stay exact after a kill -9 right
// after a write was acknowledged.
func TestUsageMetering(t *testing.T) {
	cfg, dir, bin := usageConfig(t), t.TempDir(), apptest.Build(t)
	args := []string{"--config.file", cfg, "--self-monitor.interval", "0", "--web.enable-admin-api",
		"--metering.flush-interval", "200ms", "--metering.sample-interval", "500ms"}
	u := &usageClient{t: t, p: apptest.StartTSDB(t, bin, dir, args...), c: &http.Client{Timeout: 20 * time.Second}}
	now := time.Now().Add(-time.Minute)
	ms, ns := now.UnixMilli(), now.UnixNano()

	// acme: 9 series × 10 samples by remote write, 5 samples of one series
	// by line protocol: 10 series of its limit of 12.
	u.write("acme", "/api/v1/write", "application/x-protobuf", remoteWriteBody(t, "rw", 9, 10, ms))
	var lp strings.Builder
	for i := range 5 {
		fmt.Fprintf(&lp, "cpu,host=a v=%d %d\n", i, ns+int64(i)*1e9)
	}
	u.write("acme", "/write?db=x", "text/plain", []byte(lp.String()))
	// globex: 3 samples as JSON lines, 2 as Prometheus text.
	u.write("globex", "/api/v1/import", "application/json",
		fmt.Appendf(nil, `{"metric":{"__name__":"j"},"values":[1,2,3],"timestamps":[%d,%d,%d]}`+"\n", ms, ms+1000, ms+2000))
	u.write("globex", "/api/v1/import/prometheus", "text/plain", []byte("p1 1\np2 2\n"))
	// A write refused whole counts nothing.
	code, _, out := u.do("writer", "POST", "/api/v1/import", "application/json", "globex", []byte(`{"metric":{"__name__":"j"},"values":[1]`))
	require.Equal(t, 400, code, out)

	u.query("acme", "sum(rw)")
	u.query("acme", "count(cpu_v)")
	u.query("globex", "j")
	// The series sampler has run twice, and the meter flushed.
	time.Sleep(1200 * time.Millisecond)

	check := func(r map[string]metering.TenantReport) {
		t.Helper()
		acme, globex := r["acme"].Total, r["globex"].Total
		require.Equal(t, uint64(95), acme.SamplesIngested)
		require.Equal(t, map[string]uint64{"remote_write": 90, "influx": 5}, acme.SamplesIngestedByProtocol)
		require.Equal(t, uint64(2), acme.Queries)
		// An instant selector reads each series' newest sample only when
		// storage can tell it (storage.LastSampler): sum(rw) reads one of
		// each of 9 series, count(cpu_v) one of 1.
		require.Equal(t, uint64(9+1), acme.SamplesScanned, "sum(rw) reads the newest of 9 series, count(cpu_v) of 1")
		require.Equal(t, uint64(10), acme.ActiveSeriesMax)
		require.Greater(t, acme.SeriesHours, 0.0)
		require.Equal(t, uint64(5), globex.SamplesIngested)
		require.Equal(t, map[string]uint64{"jsonl": 3, "prometheus_import": 2}, globex.SamplesIngestedByProtocol)
		require.Equal(t, uint64(1), globex.Queries)
		require.True(t, r["acme"].NearLimit, "10 of 12 series: %+v", r["acme"].Limits)
		require.Equal(t, "max_series", r["acme"].Limits[0].Name)
		require.False(t, r["globex"].NearLimit)
	}
	// Admins see every tenant; a tenant's reader sees its own only.
	all := u.report("admin", "")
	require.Contains(t, all, "acme")
	require.Contains(t, all, "globex")
	check(all)
	own := u.report("acme", "")
	require.Len(t, own, 1)
	require.Contains(t, own, "acme")
	code, _, out = u.do("acme", "GET", "/api/v1/usage?tenant=globex", "", "", nil)
	require.Equal(t, 403, code, out)
	code, _, _ = u.do("", "GET", "/api/v1/usage", "", "", nil)
	require.Equal(t, 401, code)
	code, _, out = u.do("admin", "GET", "/api/v1/usage?from=2026-02-30", "", "", nil)
	require.Equal(t, 400, code)
	require.Contains(t, out, `is not a date as YYYY-MM-DD`)

	// A clean restart keeps it all.
	u.p.Stop(t)
	u.p = apptest.StartTSDB(t, bin, dir, args...)
	check(u.report("admin", ""))

	// CSV, and the same figures as series.
	code, hdr, out := u.do("admin", "GET", "/api/v1/usage?tenant=globex", "", "", nil, "Accept", "text/csv")
	require.Equal(t, 200, code, out)
	require.Equal(t, "text/csv; charset=utf-8", hdr.Get("Content-Type"))
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	require.NoError(t, err)
	last := recs[len(recs)-1]
	col := func(name string) string {
		for i, h := range recs[0] {
			if h == name {
				return last[i]
			}
		}
		t.Fatalf("no column %s in %v", name, recs[0])
		return ""
	}
	require.Equal(t, "total", last[0])
	require.Equal(t, "globex", col("tenant"))
	require.Equal(t, "5", col("samples_ingested"))
	require.Equal(t, "3", col("samples_ingested_jsonl"))
	require.Equal(t, "1", col("queries"))
	code, _, out = u.do("admin", "GET", "/metrics", "", "", nil)
	require.Equal(t, 200, code)
	for _, want := range []string{
		`tsdb_usage_samples_ingested_total{protocol="remote_write",tenant="acme"} 90`,
		`tsdb_usage_samples_ingested_total{protocol="prometheus_import",tenant="globex"} 2`,
		`tsdb_usage_queries_total{tenant="acme"} 2`,
		`tsdb_usage_active_series{tenant="acme"} 10`,
	} {
		require.Contains(t, out, want)
	}

	// An acknowledged write, a backup (its snapshot flushes the counters
	// to disk while the log still holds the write), then kill -9: the
	// replayed write is not counted again.
	u.write("acme", "/api/v1/write", "application/x-protobuf", remoteWriteBody(t, "rw", 9, 5, ms+100_000))
	backupDir := filepath.Join(t.TempDir(), "backup")
	bout, err := exec.Command(bin, "backup", "--url", u.p.URL(), "--to", backupDir, "--token", "root").CombinedOutput()
	require.NoError(t, err, string(bout))
	u.p.Kill()
	u.p = apptest.StartTSDB(t, bin, dir, args...)
	r := u.report("admin", "acme")
	require.Equal(t, uint64(90+45), r["acme"].Total.SamplesIngestedByProtocol["remote_write"])
	require.Equal(t, uint64(2), r["acme"].Total.Queries, "flushed before the kill")
	// Killed right after an acknowledged write: it is counted, once, and
	// again after a second kill.
	u.write("acme", "/api/v1/write", "application/x-protobuf", remoteWriteBody(t, "rw", 1, 7, ms+200_000))
	for range 2 {
		u.p.Kill()
		u.p = apptest.StartTSDB(t, bin, dir, args...)
		r = u.report("admin", "acme")
		require.Equal(t, uint64(95+45+7), r["acme"].Total.SamplesIngested)
	}

	// The backup restores with the usage it was taken with.
	u.p.Stop(t)
	restored := filepath.Join(t.TempDir(), "restored")
	rout, err := exec.Command(bin, "restore", "--from", backupDir, "--data", restored).CombinedOutput()
	require.NoError(t, err, string(rout))
	u.p = apptest.StartTSDB(t, bin, restored, args...)
	r = u.report("admin", "")
	require.Equal(t, uint64(95+45), r["acme"].Total.SamplesIngested)
	require.Equal(t, uint64(5), r["globex"].Total.SamplesIngested)
}
