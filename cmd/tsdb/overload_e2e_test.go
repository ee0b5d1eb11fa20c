package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/benchmarks/peer"
	"github.com/emsdb/tsdb/internal/apptest"
)

// TestOverloadShedsAndKeepsServing floods one tenant past its ingestion
// rate and query concurrency for ten seconds while another tenant writes
// and queries at a normal pace: the flood gets 429s with Retry-After and
// clear messages and stores no more than its rate allows; the calm tenant
// sees no error at all; memory stays under the budget and the server
// stays ready.
func TestOverloadShedsAndKeepsServing(t *testing.T) {
	const rate, burst = 20000, 20000
	cfg := filepath.Join(t.TempDir(), "tsdb.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
limits:
  tenants:
    noisy: {ingest_rate: %d, ingest_burst: %d, max_query_concurrency: 2}
`, rate, burst)), 0o644))
	const budget = 1 << 30
	db := apptest.StartTSDB(t, apptest.Build(t), t.TempDir(), "--config.file", cfg, "--memory.budget-bytes", strconv.Itoa(budget))
	c := &http.Client{Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	base := start.Add(-time.Hour).UnixMilli()

	type counts struct{ ok, limited, other atomic.Int64 }
	var noisyW, calmW, noisyQ, calmQ counts
	var mu sync.Mutex
	var unexpected []string
	note := func(cn *counts, code int, body string, hdr http.Header, limitWord string) {
		switch {
		case code/100 == 2:
			cn.ok.Add(1)
		case code == 429 && hdr.Get("Retry-After") != "" && strings.Contains(body, limitWord):
			cn.limited.Add(1)
		default:
			cn.other.Add(1)
			mu.Lock()
			unexpected = append(unexpected, fmt.Sprintf("%d %s", code, body))
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	var noisyNext atomic.Int64 // timestamps of the flood: each write is new
	noisyNext.Store(base)
	for range 3 { // the flood
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				from := noisyNext.Add(200) - 200
				code, hdr, body := rawWrite(t, c, db.URL(), "noisy", 10, 200, from)
				note(&noisyW, code, body, hdr, "ingest_rate")
			}
		}()
	}
	wg.Add(1)
	go func() { // the calm tenant: 1000 samples every 200 ms
		defer wg.Done()
		from := base
		for ctx.Err() == nil {
			code, hdr, body := rawWrite(t, c, db.URL(), "calm", 10, 100, from)
			note(&calmW, code, body, hdr, "")
			from += 100
			time.Sleep(200 * time.Millisecond)
		}
	}()
	query := func(tenant string, cn *counts, pause time.Duration) {
		defer wg.Done()
		for ctx.Err() == nil {
			q := url.Values{"query": {"sum(rate(" + tenant + "_metric[5m]))"}, "start": {strconv.FormatInt(start.Add(-time.Hour).Unix(), 10)},
				"end": {strconv.FormatInt(time.Now().Unix(), 10)}, "step": {"5"}}
			req, _ := http.NewRequest("GET", db.URL()+"/api/v1/query_range?"+q.Encode(), nil)
			req.Header.Set("X-Scope-OrgID", tenant)
			resp, err := c.Do(req)
			if err != nil {
				note(cn, 0, err.Error(), nil, "")
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			note(cn, resp.StatusCode, string(b), resp.Header, "max_query_concurrency")
			time.Sleep(pause)
		}
	}
	for range 6 { // a dashboard storm on the noisy tenant
		wg.Add(1)
		go query("noisy", &noisyQ, 0)
	}
	wg.Add(1)
	go query("calm", &calmQ, 100*time.Millisecond)
	var maxRSS int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			now, _, _ := peer.ProcRSS(db.PID())
			maxRSS = max(maxRSS, now)
			time.Sleep(250 * time.Millisecond)
		}
	}()
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	t.Logf("noisy writes: %d ok, %d limited; noisy queries: %d ok, %d limited; calm writes %d ok, calm queries %d ok; max RSS %d MiB",
		noisyW.ok.Load(), noisyW.limited.Load(), noisyQ.ok.Load(), noisyQ.limited.Load(), calmW.ok.Load(), calmQ.ok.Load(), maxRSS>>20)
	require.Empty(t, unexpected, "every answer is a success or a clear 429")
	require.Positive(t, noisyW.limited.Load(), "the flood is limited")
	require.Positive(t, noisyW.ok.Load())
	require.Positive(t, noisyQ.ok.Load())
	require.Zero(t, calmW.other.Load()+calmW.limited.Load(), "the calm tenant's writes all succeed")
	require.Zero(t, calmQ.other.Load()+calmQ.limited.Load(), "the calm tenant's queries all succeed")
	require.Greater(t, calmQ.ok.Load(), int64(20))
	require.Less(t, maxRSS, int64(budget), "memory stays under the budget")
	code, _ := db.Get(t, "/-/ready")
	require.Equal(t, 200, code)

	// The flood stored what its rate allows, no more (every 429 stored
	// nothing), and not much less.
	stored := int64(0)
	exp, err := apptest.Export(c, db.URL(), "noisy_metric", "X-Scope-OrgID", "noisy")
	require.NoError(t, err)
	for _, s := range exp {
		stored += int64(len(s.Timestamps))
	}
	require.Equal(t, noisyW.ok.Load()*2000, stored, "accepted writes are stored whole, refused ones not at all")
	allowed := int64(rate*elapsed) + burst
	require.LessOrEqual(t, stored, allowed, "no more than rate × time + burst")
	require.GreaterOrEqual(t, stored, allowed/2, "the limit does not throttle far below its rate")
}

// rawWrite sends one remote-write request of series × samples.
func rawWrite(t *testing.T, c *http.Client, base, tenant string, series, samples int, from int64) (int, http.Header, string) {
	var wr prompb.WriteRequest
	for s := range series {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: tenant + "_metric"}, {Name: "s", Value: strconv.Itoa(s)}}}
		for i := range samples {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: from + int64(i), Value: float64(i)})
		}
		wr.Timeseries = append(wr.Timeseries, ts)
	}
	raw, err := wr.Marshal()
	require.NoError(t, err)
	req, _ := http.NewRequest("POST", base+"/api/v1/write", strings.NewReader(string(snappy.Encode(nil, raw))))
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("X-Scope-OrgID", tenant)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}
