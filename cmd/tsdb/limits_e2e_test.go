package main

import (
	"bytes"
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
)

// TestTenantLimits: over its ingestion rate a tenant gets 429 with
// Retry-After and nothing of the refused write is stored; over its series
// limit, 400 naming the limit; other tenants are unaffected.
func TestTenantLimits(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "tsdb.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
limits:
  tenants:
    small: {ingest_rate: 1000, ingest_burst: 1000, max_series: 5, max_labels_per_series: 6}
`), 0o644))
	db := apptest.StartTSDB(t, apptest.Build(t), t.TempDir(), "--config.file", cfg)
	c := &http.Client{Timeout: 10 * time.Second}
	post := func(tenant, path, ctype string, body []byte) (int, http.Header, string) {
		req, _ := http.NewRequest("POST", db.URL()+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("X-Scope-OrgID", tenant)
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	base := time.Now().Add(-time.Hour).UnixMilli()
	rw := func(name string, series, samples int, from int64) []byte {
		var wr prompb.WriteRequest
		for s := range series {
			ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: name}, {Name: "s", Value: fmt.Sprint(s)}}}
			for i := range samples {
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: from + int64(i), Value: 1})
			}
			wr.Timeseries = append(wr.Timeseries, ts)
		}
		raw, err := wr.Marshal()
		require.NoError(t, err)
		return snappy.Encode(nil, raw)
	}
	code, _, body := post("small", "/api/v1/write", "application/x-protobuf", rw("m", 1, 800, base))
	require.Equal(t, 204, code, body)
	code, hdr, body := post("small", "/api/v1/write", "application/x-protobuf", rw("m", 1, 800, base+800))
	require.Equal(t, 429, code, body)
	require.Contains(t, body, "ingest_rate")
	require.NotEmpty(t, hdr.Get("Retry-After"))
	code, hdr, body = post("small", "/write?db=x", "text/plain", []byte(strings.Repeat("lp v=1\n", 900)))
	require.Equal(t, 429, code, "line protocol too: %s", body)
	require.NotEmpty(t, hdr.Get("Retry-After"))
	code, _, body = post("big", "/api/v1/write", "application/x-protobuf", rw("m", 1, 800, base+800))
	require.Equal(t, 204, code, "other tenants are not limited: %s", body)

	// Nothing of the refused write was stored.
	exp, err := apptest.Export(c, db.URL(), "m", "X-Scope-OrgID", "small")
	require.NoError(t, err)
	require.Len(t, exp, 1)
	require.Len(t, exp[0].Timestamps, 800, "the 429 write stored none of its samples")

	time.Sleep(1100 * time.Millisecond) // the bucket refills
	code, _, body = post("small", "/api/v1/write", "application/x-protobuf", rw("n", 6, 1, base))
	require.Equal(t, 400, code, body)
	require.Contains(t, body, "max_series")
	code, _, body = post("small", "/api/v1/import/prometheus", "text/plain", []byte(`wide{a="1",b="2",c="3",d="4",e="5",f="6"} 1`+"\n"))
	require.Equal(t, 400, code, body)
	require.Contains(t, body, "max_labels_per_series")
}
