package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/benchmarks/peer"
	"github.com/emsdb/tsdb/internal/apptest"
)

// The adversarial suite (make chaos runs only these): each attack a
// hostile client or a fault can make, against the real binary. The server
// must answer a clear error and stay up, a cheap query must keep
// answering meanwhile, and RSS must stay under a stated bound.

// chaosRSSBound is the most RSS the server may reach during any attack:
// twice its memory budget.
const (
	chaosBudget   = 512 << 20
	chaosRSSBound = 2 * chaosBudget
)

// chaosServer starts tsdb with the bounds an operator would set.
func chaosServer(t *testing.T, dir string, args ...string) *apptest.Proc {
	base := []string{"--web.enable-admin-api", "--memory.budget-bytes", strconv.Itoa(chaosBudget),
		"--query.timeout", "5s", "--query.max-samples", "20000000"}
	return apptest.StartTSDB(t, apptest.Build(t), dir, append(base, args...)...)
}

// watchdog asks a cheap query every 200 ms and records the worst latency
// and RSS until stopped; a failure or a dead server is recorded too.
type watchdog struct {
	p        *apptest.Proc
	stop     chan struct{}
	done     chan struct{}
	worst    atomic.Int64 // ms
	peakRSS  atomic.Int64
	failures atomic.Int64
	lastErr  atomic.Value
}

func watch(t *testing.T, p *apptest.Proc) *watchdog {
	w := &watchdog{p: p, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-w.stop:
				w.probe() // at least once, however short the attack
				return
			case <-tk.C:
			}
			w.probe()
		}
	}()
	return w
}

// probe asks the cheap query once and samples RSS.
func (w *watchdog) probe() {
	p := w.p
	c := &http.Client{Timeout: 3 * time.Second}
	{
		{
			t0 := time.Now()
			resp, err := c.Get(p.URL() + "/api/v1/query?query=1%2B1")
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			if err != nil {
				w.failures.Add(1)
				w.lastErr.Store(err.Error())
			}
			if ms := time.Since(t0).Milliseconds(); ms > w.worst.Load() {
				w.worst.Store(ms)
			}
			if rss, _, err := peer.ProcRSS(p.PID()); err == nil && rss > w.peakRSS.Load() {
				w.peakRSS.Store(rss)
			}
		}
	}
}

// check stops the watchdog and asserts the server stayed up, responsive
// and within its memory bound.
func (w *watchdog) check(t *testing.T, attack string) {
	t.Helper()
	close(w.stop)
	<-w.done
	require.False(t, w.p.Exited(), "%s: the server died\n%s", attack, w.p.Log())
	require.Zero(t, w.failures.Load(), "%s: the cheap query failed meanwhile: %v", attack, w.lastErr.Load())
	require.Less(t, w.peakRSS.Load(), int64(chaosRSSBound), "%s: RSS bound", attack)
	t.Logf("%s: cheap query worst %d ms, peak RSS %d MiB", attack, w.worst.Load(), w.peakRSS.Load()>>20)
}

// ask sends one request and returns its status, body and duration.
func ask(t *testing.T, method, u, contentType, body string) (int, string, time.Duration) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	t0 := time.Now()
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	require.NoError(t, err, "%s %s", method, u)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), time.Since(t0)
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

const formType = "application/x-www-form-urlencoded"

// TestChaosQueries: the queries that used to kill the process — deep
// nesting, tiny-resolution subqueries, WITH expansion — and a query that
// overran its timeout, through every endpoint that parses, and as a rule
// posted through the ruler config API.
func TestChaosQueries(t *testing.T) {
	p := chaosServer(t, t.TempDir())
	w := watch(t, p)
	deep := strings.Repeat("(", 400_000) + "1" + strings.Repeat(")", 400_000)
	with := "WITH (a0=1"
	for i := 1; i <= 26; i++ {
		with += fmt.Sprintf(", a%d=a%d+a%d", i, i-1, i-1)
	}
	with += ") a26"
	now := strconv.FormatInt(time.Now().Unix(), 10)
	for _, c := range []struct {
		name, path, body string
		code             int
		want             string
	}{
		{"deep query", "/api/v1/query", form("query", deep), 400, "limit"},
		{"deep query_range", "/api/v1/query_range", form("query", deep, "start", "0", "end", "60", "step", "15"), 400, "limit"},
		{"deep series", "/api/v1/series", form("match[]", deep), 400, "limit"},
		{"deep format_query", "/api/v1/format_query", form("query", deep), 400, "limit"},
		{"tiny subquery", "/api/v1/query", form("query", "sum_over_time(vector(1)[7d:1ms])", "time", now), 422, "--query.max-samples"},
		{"tiny subquery range", "/api/v1/query_range", form("query", "sum_over_time(vector(1)[1d:1ms])", "start", now, "end", now, "step", "60"), 422, "--query.max-samples"},
		{"WITH expansion", "/api/v1/query", form("query", with), 400, "limit"},
	} {
		code, body, took := ask(t, "POST", p.URL()+c.path, formType, c.body)
		require.Equal(t, c.code, code, "%s: %.300s", c.name, body)
		require.Contains(t, body, c.want, c.name)
		require.Less(t, took, 10*time.Second, c.name)
		t.Logf("%s: %d in %s: %.160s", c.name, code, took.Round(time.Millisecond), body)
	}

	// The deadline holds: a heavy query under a 2 s timeout ends within
	// a small margin (it ran 25 s before every loop looked at the clock).
	end := time.Now().Truncate(time.Minute)
	req := &prompb.WriteRequest{}
	for i := range 50 {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "i", Value: strconv.Itoa(i)}}}
		for at := end.Add(-12 * time.Hour); !at.After(end); at = at.Add(15 * time.Second) {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at.UnixMilli(), Value: float64(at.Unix()%97 + int64(i))})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	code, body, err := apptest.RemoteWrite(context.Background(), &http.Client{Timeout: time.Minute}, p.URL()+"/api/v1/write", req)
	require.NoError(t, err)
	require.Equal(t, 204, code, body)
	heavy := "quantile_over_time(0.5, sin(max_over_time(m[1m:1s]))[6h:1s])"
	code, body, took := ask(t, "POST", p.URL()+"/api/v1/query_range", formType, form("query", heavy, "start", strconv.FormatInt(end.Add(-6*time.Hour).Unix(), 10),
		"end", strconv.FormatInt(end.Unix(), 10), "step", "60", "timeout", "2s"))
	require.Contains(t, []int{422, 503}, code, "%.300s", body)
	require.Less(t, took, 3*time.Second, "the 2 s timeout holds: %s", body)
	t.Logf("heavy query under a 2 s timeout: %d after %s", code, took.Round(time.Millisecond))

	// As rules posted through the ruler config API: a deep one is refused,
	// a tiny-resolution one is accepted, fails at every evaluation and
	// takes nothing down.
	group := "name: chaos\ninterval: 1s\nrules:\n  - record: deep\n    expr: " + strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000) + "\n"
	code, body, _ = ask(t, "POST", p.URL()+"/config/v1/rules/ns", "application/yaml", group)
	require.Equal(t, 400, code, "%.300s", body)
	require.Contains(t, body, "--query.max-depth")
	group = "name: chaos\ninterval: 1s\nrules:\n  - record: tiny\n    expr: sum_over_time(vector(1)[7d:1ms])\n"
	code, body, _ = ask(t, "POST", p.URL()+"/config/v1/rules/ns", "application/yaml", group)
	require.Equal(t, 202, code, body)
	require.Eventually(t, func() bool {
		_, body, _ := ask(t, "GET", p.URL()+"/api/v1/rules", "", "")
		return strings.Contains(body, `"health":"err"`) && strings.Contains(body, "max-samples")
	}, 15*time.Second, 500*time.Millisecond, "the rule reports why it fails")
	time.Sleep(3 * time.Second) // a few more evaluations
	w.check(t, "queries")
}

// TestChaosDeleteSurvivesKill9: a delete that answered 204 is durable:
// after kill -9 five seconds later and a restart, the deleted series are
// gone from series, label values and the TSDB status.
func TestChaosDeleteSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	p := chaosServer(t, dir, "--shards", "4")
	c := &http.Client{Timeout: 30 * time.Second}
	ts := time.Now().Add(-time.Minute).UnixMilli()
	for batch := range 4 {
		req := &prompb.WriteRequest{}
		for i := range 5000 {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels:  []prompb.Label{{Name: "__name__", Value: "doomed"}, {Name: "i", Value: strconv.Itoa(batch*5000 + i)}},
				Samples: []prompb.Sample{{Timestamp: ts, Value: 1}},
			})
		}
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "kept"}, {Name: "b", Value: strconv.Itoa(batch)}},
			Samples: []prompb.Sample{{Timestamp: ts, Value: 1}},
		})
		code, body, err := apptest.RemoteWrite(context.Background(), c, p.URL()+"/api/v1/write", req)
		require.NoError(t, err)
		require.Equal(t, 204, code, body)
	}
	code, body, _ := ask(t, "POST", p.URL()+"/api/v1/admin/tsdb/delete_series", formType, form("match[]", "doomed"))
	require.Equal(t, 204, code, body)
	time.Sleep(5 * time.Second)
	p.Kill()
	p = chaosServer(t, dir, "--shards", "4")
	count := func(q string) int {
		code, body, _ := ask(t, "GET", p.URL()+q, "", "")
		require.Equal(t, 200, code, body)
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &env))
		var list []any
		require.NoError(t, json.Unmarshal(env.Data, &list), body)
		return len(list)
	}
	require.Zero(t, count("/api/v1/series?match[]=doomed"), "deleted series resurrected")
	require.Equal(t, 4, count("/api/v1/series?match[]=kept"))
	require.Equal(t, 4, count("/api/v1/label/b/values"))
	require.Zero(t, count("/api/v1/label/i/values"))
	_, body, _ = ask(t, "GET", p.URL()+"/api/v1/status/tsdb", "", "")
	require.NotContains(t, body, `"doomed"`)
}

// TestChaosConcurrentAttacks: several attacks at once (each alone is
// bounded; together they must still leave room for the cheap query).
func TestChaosConcurrentAttacks(t *testing.T) {
	p := chaosServer(t, t.TempDir())
	w := watch(t, p)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := "sum_over_time(vector(1)[7d:1ms])"
			if i%2 == 1 {
				q = strings.Repeat("(", 200_000) + "1" + strings.Repeat(")", 200_000)
			}
			for range 3 {
				code, body, _ := ask(t, "POST", p.URL()+"/api/v1/query", formType, form("query", q, "time", now))
				if code != 400 && code != 422 && code != 503 {
					t.Errorf("attack %d: %d %.200s", i, code, body)
				}
			}
		}()
	}
	wg.Wait()
	w.check(t, "concurrent attacks")
}
