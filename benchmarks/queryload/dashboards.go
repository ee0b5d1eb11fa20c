package queryload

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"
)

// withRanges adds a 1h range version (1m step) of every query.
func withRanges(q []Query) []Query {
	var out []Query
	for _, x := range q {
		out = append(out, x, Query{Name: x.Name + " (1h range)", Expr: x.Expr, Range: time.Hour, Step: time.Minute})
	}
	return out
}

// Dashboard returns the dashboard queries of a workload (node, devops,
// iot, churn, highcard, backfill).
func Dashboard(workload string) []Query {
	switch workload {
	case "devops": // TSBS devops query types, in PromQL
		return withRanges([]Query{
			{Name: "single-groupby-1-1-1", Expr: `max(max_over_time(cpu_usage_user{hostname="host_0"}[1m]))`},
			{Name: "cpu-max-all-8", Expr: `max by (hostname) ({__name__=~"cpu_.*", hostname=~"host_[0-7]"})`},
			{Name: "double-groupby-1", Expr: `avg by (hostname) (avg_over_time(cpu_usage_user[5m]))`},
			{Name: "high-cpu-all", Expr: `cpu_usage_user > 90`},
			{Name: "lastpoint", Expr: `max by (hostname) (timestamp(mem_used_percent))`},
			{Name: "groupby-orderby-limit", Expr: `topk(5, max by (hostname) (max_over_time(cpu_usage_user[5m])))`},
		})
	case "iot":
		return withRanges([]Query{
			{Name: "avg temperature by site", Expr: `avg by (site) (iot_temperature_celsius)`},
			{Name: "min battery by site", Expr: `min by (site) (min_over_time(iot_battery_volts[1h]))`},
			{Name: "low batteries", Expr: `count(iot_battery_volts < 3.1)`},
			{Name: "humidity by model", Expr: `avg by (model) (avg_over_time(iot_humidity_percent[10m]))`},
		})
	case "churn":
		return withRanges([]Query{
			{Name: "cpu by namespace", Expr: `sum by (namespace) (rate(container_cpu_usage_seconds_total[5m]))`},
			{Name: "pods", Expr: `count(count by (pod) (container_memory_rss))`},
			{Name: "top 10 memory", Expr: `topk(10, container_memory_working_set_bytes)`},
			{Name: "memory by node", Expr: `sum by (node) (container_memory_rss)`},
		})
	case "highcard":
		return []Query{
			{Name: "regex over ids", Expr: `count(hc_requests_total{id=~"0012.*5"})`},
			{Name: "suffix regex", Expr: `count(hc_requests_total{id=~".*99"})`},
			{Name: "rate by shard", Expr: `sum by (shard) (rate(hc_requests_total[5m]))`},
			{Name: "count all", Expr: `count(hc_requests_total)`},
		}
	case "backfill":
		return []Query{
			{Name: "cpu by mode, 30d", Expr: `sum by (mode) (rate(node_cpu_seconds_total[1h]))`, Range: 30 * 24 * time.Hour, Step: time.Hour},
			{Name: "load by host, 30d", Expr: `avg by (instance) (node_load1)`, Range: 30 * 24 * time.Hour, Step: time.Hour},
			{Name: "memory now", Expr: `max(node_memory_MemAvailable_bytes)`},
		}
	}
	return NodeDashboard()
}

// Load is the outcome of concurrent clients running a dashboard.
type Load struct {
	Clients int     `json:"clients"`
	Seconds float64 `json:"seconds"`
	Queries int     `json:"queries"`
	QPS     float64 `json:"qps"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	Errors  int     `json:"errors"`
}

// Concurrent runs the queries round-robin from clients goroutines for d.
func Concurrent(ctx context.Context, base string, end time.Time, qs []Query, clients int, d time.Duration) Load {
	c := &http.Client{Timeout: 2 * time.Minute}
	stop := time.Now().Add(d)
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	var wg sync.WaitGroup
	t0 := time.Now()
	for k := range clients {
		wg.Go(func() {
			for i := k; time.Now().Before(stop) && ctx.Err() == nil; i++ {
				dd, _, err := do(ctx, c, base, qs[i%len(qs)], end, false)
				mu.Lock()
				if err != nil {
					errs++
				} else {
					lat = append(lat, dd)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	el := time.Since(t0).Seconds()
	return Load{Clients: clients, Seconds: el, Queries: len(lat), QPS: float64(len(lat)) / el, P50Ms: pct(lat, 0.5), P99Ms: pct(lat, 0.99), Errors: errs}
}

// Result is a query's answer reduced for comparison: series (labels as
// text) to their values.
type Result map[string][]float64

// Fetch runs q once and returns its answer.
func Fetch(ctx context.Context, base string, end time.Time, q Query) (Result, error) {
	req, err := request(ctx, base, q, end)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, body)
	}
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
				Values [][]any           `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	out := Result{}
	for _, s := range r.Data.Result {
		keys := make([]string, 0, len(s.Metric))
		for k := range s.Metric {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		id := "{"
		for _, k := range keys {
			id += k + "=" + strconv.Quote(s.Metric[k]) + ","
		}
		id += "}"
		pts := s.Values
		if s.Value != nil {
			pts = [][]any{s.Value}
		}
		for _, p := range pts {
			if len(p) == 2 {
				str, _ := p[1].(string)
				v, _ := strconv.ParseFloat(str, 64)
				out[id] = append(out[id], v)
			}
		}
	}
	return out, nil
}

// metricsQLRollups are the functions whose MetricsQL meaning differs from
// PromQL's: VictoriaMetrics' rate, increase and delta take the last sample
// before the window as their start and do not extrapolate to the window's
// edges, and irate/idelta follow suit.
var metricsQLRollups = regexp.MustCompile(`\b(rate|irate|increase|delta|idelta)\s*\(`)

// MetricsQLDiffers reports whether expr uses a function whose MetricsQL
// answer differs from PromQL's by design, so that a MetricsQL server's
// answer cannot be compared with Prometheus's.
func MetricsQLDiffers(expr string) bool { return metricsQLRollups.MatchString(expr) }

// Diff describes how b differs from a (empty: the same, values within a
// relative 1e-6).
func Diff(a, b Result) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d series vs %d", len(a), len(b))
	}
	for id, va := range a {
		vb, ok := b[id]
		if !ok {
			return "series " + id + " missing"
		}
		if len(va) != len(vb) {
			return fmt.Sprintf("%s: %d points vs %d", id, len(va), len(vb))
		}
		for i := range va {
			x, y := va[i], vb[i]
			if math.IsNaN(x) && math.IsNaN(y) {
				continue
			}
			if math.Abs(x-y) > 1e-6*math.Max(math.Abs(x), math.Abs(y)) && math.Abs(x-y) > 1e-9 {
				return fmt.Sprintf("%s point %d: %v vs %v", id, i, x, y)
			}
		}
	}
	return ""
}
