// Package queryload times dashboard queries against any Prometheus-API
// server: each query repeated, latencies reported as p50 and p99, and a
// dashboard refresh (the same range query, its window moved one step) to
// show what a result cache saves.
package queryload

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Query is one dashboard query: instant at End, or a range over Range
// ending at End with Step.
type Query struct {
	Name  string `json:"name"`
	Expr  string `json:"expr"`
	Range time.Duration
	Step  time.Duration
	// NoCache asks the server not to answer from its result cache
	// (nocache=1, as tsdb and VictoriaMetrics read it; others ignore it).
	NoCache bool
}

// NodeDashboard is a node-exporter dashboard's queries.
func NodeDashboard() []Query {
	q := []Query{
		{Name: "cpu by mode", Expr: `sum by (mode) (rate(node_cpu_seconds_total[5m]))`},
		{Name: "load avg by host", Expr: `avg by (instance) (node_load1)`},
		{Name: "max memory available", Expr: `max(node_memory_MemAvailable_bytes)`},
		{Name: "top 10 network rx", Expr: `topk(10, rate(node_network_receive_bytes_total[5m]))`},
		{Name: "disk busy by host", Expr: `sum by (instance) (rate(node_disk_io_time_seconds_total[5m]))`},
		{Name: "regex over names", Expr: `count({__name__=~"node_network_.*", device=~"eth.*|lo"})`},
		{Name: "filesystem free %", Expr: `100 * node_filesystem_avail_bytes / node_filesystem_size_bytes`},
	}
	var out []Query
	for _, x := range q {
		out = append(out, x)
		out = append(out, Query{Name: x.Name + " (1h range)", Expr: x.Expr, Range: time.Hour, Step: time.Minute})
	}
	return out
}

// Stat is the timing of one query.
type Stat struct {
	Name   string  `json:"name"`
	Expr   string  `json:"expr"`
	Range  bool    `json:"range"`
	Runs   int     `json:"runs"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	Series int     `json:"series"`
}

// Run runs each query runs times, one at a time.
func Run(ctx context.Context, base string, end time.Time, qs []Query, runs int) ([]Stat, error) {
	c := &http.Client{Timeout: 2 * time.Minute}
	var out []Stat
	for _, q := range qs {
		st := Stat{Name: q.Name, Expr: q.Expr, Range: q.Range > 0, Runs: runs}
		var lat []time.Duration
		for i := range runs {
			d, n, err := do(ctx, c, base, q, end, i == 0)
			if err != nil {
				return out, fmt.Errorf("%s: %w", q.Name, err)
			}
			lat = append(lat, d)
			st.Series = n
		}
		st.P50Ms, st.P99Ms = pct(lat, 0.5), pct(lat, 0.99)
		out = append(out, st)
	}
	return out, nil
}

// Refresh times a dashboard refresh: the range query once at end, then
// runs times with the window moved one step further each time.
func Refresh(ctx context.Context, base string, end time.Time, q Query, runs int) (Stat, error) {
	c := &http.Client{Timeout: 2 * time.Minute}
	st := Stat{Name: q.Name + " (refresh)", Expr: q.Expr, Range: true, Runs: runs}
	start := end.Add(-time.Duration(runs) * q.Step).Truncate(q.Step)
	if _, _, err := do(ctx, c, base, q, start, false); err != nil {
		return st, err
	}
	var lat []time.Duration
	for i := 1; i <= runs; i++ {
		d, n, err := do(ctx, c, base, q, start.Add(time.Duration(i)*q.Step), false)
		if err != nil {
			return st, err
		}
		lat = append(lat, d)
		st.Series = n
	}
	st.P50Ms, st.P99Ms = pct(lat, 0.5), pct(lat, 0.99)
	return st, nil
}

// request builds the API request for q evaluated at (or ending at) end.
func request(ctx context.Context, base string, q Query, end time.Time) (*http.Request, error) {
	params := url.Values{"query": {q.Expr}}
	path := "/api/v1/query"
	if q.Range > 0 {
		path = "/api/v1/query_range"
		e := end.Truncate(q.Step)
		params.Set("start", strconv.FormatInt(e.Add(-q.Range).Unix(), 10))
		params.Set("end", strconv.FormatInt(e.Unix(), 10))
		params.Set("step", strconv.FormatFloat(q.Step.Seconds(), 'f', -1, 64))
	} else {
		params.Set("time", strconv.FormatInt(end.Unix(), 10))
	}
	if q.NoCache {
		params.Set("nocache", "1")
	}
	return http.NewRequestWithContext(ctx, http.MethodPost, base+path+"?"+params.Encode(), nil)
}

func do(ctx context.Context, c *http.Client, base string, q Query, end time.Time, check bool) (time.Duration, int, error) {
	req, err := request(ctx, base, q, end)
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("%s: %s", resp.Status, body)
	}
	var r struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, 0, err
	}
	return d, len(r.Data.Result), nil
}

func pct(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return float64(s[max(0, min(len(s)-1, i))].Microseconds()) / 1000
}
