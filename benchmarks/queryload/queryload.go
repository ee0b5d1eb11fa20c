// Package queryload times dashboard queries against any Prometheus-API
// server: each query repeated, latencies reported as p50 and p99, and a
// dashboard refresh (the same range query, its window moved one step) to
// show what a result cache saves.
package queryload

import (
	"bytes"
	"compress/gzip"
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
	stats, errs := RunInterleaved(ctx, []string{base}, end, qs, runs)
	return stats[0], errs[0]
}

// RunInterleaved runs each query runs times on every server of bases, one
// request at a time, taking turns: the servers' k-th runs of a query come
// one after the other (each run starting with the next server), so that
// what else the machine is doing meanwhile — a neighbour's load, a
// collection in the client — falls on all of them alike. A server that
// fails a query is left out from then on: its error says at which query.
func RunInterleaved(ctx context.Context, bases []string, end time.Time, qs []Query, runs int) ([][]Stat, []error) {
	c := &http.Client{Timeout: 2 * time.Minute}
	out := make([][]Stat, len(bases))
	errs := make([]error, len(bases))
	lat := make([][]time.Duration, len(bases))
	for _, q := range qs {
		st := make([]Stat, len(bases))
		for j := range bases {
			st[j] = Stat{Name: q.Name, Expr: q.Expr, Range: q.Range > 0, Runs: runs}
			lat[j] = lat[j][:0]
		}
		for i := range runs {
			for k := range bases {
				j := (i + k) % len(bases)
				if errs[j] != nil {
					continue
				}
				d, n, err := do(ctx, c, bases[j], q, end, i == 0)
				if err != nil {
					errs[j] = fmt.Errorf("%s: %w", q.Name, err)
					continue
				}
				lat[j] = append(lat[j], d)
				st[j].Series = n
			}
		}
		for j := range bases {
			if errs[j] == nil {
				st[j].P50Ms, st[j].P99Ms = pct(lat[j], 0.5), pct(lat[j], 0.99)
				out[j] = append(out[j], st[j])
			}
		}
	}
	return out, errs
}

// Refresh times a dashboard refresh: the range query once at end, then
// runs times with the window moved one step further each time.
func Refresh(ctx context.Context, base string, end time.Time, q Query, runs int) (Stat, error) {
	stats, errs := RefreshInterleaved(ctx, []string{base}, end, q, runs)
	return stats[0], errs[0]
}

// RefreshInterleaved is Refresh on every server of bases, taking turns
// as RunInterleaved does.
func RefreshInterleaved(ctx context.Context, bases []string, end time.Time, q Query, runs int) ([]Stat, []error) {
	c := &http.Client{Timeout: 2 * time.Minute}
	start := end.Add(-time.Duration(runs) * q.Step).Truncate(q.Step)
	stats := make([]Stat, len(bases))
	errs := make([]error, len(bases))
	lat := make([][]time.Duration, len(bases))
	for j := range bases {
		stats[j] = Stat{Name: q.Name + " (refresh)", Expr: q.Expr, Range: true, Runs: runs}
		if _, _, err := do(ctx, c, bases[j], q, start, false); err != nil {
			errs[j] = err
		}
	}
	for i := 1; i <= runs; i++ {
		for k := range bases {
			j := (i + k) % len(bases)
			if errs[j] != nil {
				continue
			}
			d, n, err := do(ctx, c, bases[j], q, start.Add(time.Duration(i)*q.Step), false)
			if err != nil {
				errs[j] = err
				continue
			}
			lat[j] = append(lat[j], d)
			stats[j].Series = n
		}
	}
	for j := range bases {
		stats[j].P50Ms, stats[j].P99Ms = pct(lat[j], 0.5), pct(lat[j], 0.99)
	}
	return stats, errs
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
	// NB: asked for as Grafana asks, a compressed answer is timed until
	// its last byte arrives and inflated after: the server's compression
	// is its own time, the client's inflating is not.
	req.Header.Set("Accept-Encoding", "gzip")
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
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return 0, 0, fmt.Errorf("inflate the answer: %w", err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			return 0, 0, fmt.Errorf("inflate the answer: %w", err)
		}
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
