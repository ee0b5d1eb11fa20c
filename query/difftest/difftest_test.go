// Package difftest compares tsdb's query answers with a real Prometheus
// 3.14 given the same data: the differential test of issue 3.
package difftest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestDifferential sends the same generated data to Prometheus 3.14 and to
// tsdb (floats, classic and native histograms), runs a few hundred
// generated instant and range queries on both, and requires the same
// answers, native histograms compared bucket by bucket.
func TestDifferential(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs Prometheus 3.14")
	}
	promBin := apptest.ReferencePrometheus(t)
	tsdbBin := apptest.Build(t)
	db := apptest.StartTSDB(t, tsdbBin, t.TempDir())
	differential(t, promBin, db.URL(), db.URL(), nil)
}

// startPrometheus starts the reference Prometheus as the differential's
// peer: remote-write receiver on, any sample order accepted.
func startPrometheus(t *testing.T, promBin string) *apptest.Proc {
	return apptest.StartPrometheusBinary(t, promBin, "", `
global: {scrape_interval: 1h, evaluation_interval: 1m}
storage:
  tsdb:
    out_of_order_time_window: 100y
`, "--web.enable-remote-write-receiver", "--query.lookback-delta=5m")
}

// differential writes the generated data through writeURL and to
// Prometheus, waits until ready says the data is readable (nil: at once;
// it is given Prometheus's URL to compare with),
// then compares every generated query's answers read through readURL
// with Prometheus's.
func differential(t *testing.T, promBin, writeURL, readURL string, ready func(end time.Time, promURL string) error) {
	prom := startPrometheus(t, promBin)
	end := time.Now().Truncate(time.Minute).Add(-time.Minute)
	req := generateData(end)
	addHistogramData(t, req, end)
	c := &http.Client{Timeout: time.Minute}
	for _, target := range []string{writeURL, prom.URL()} {
		code, body, err := apptest.RemoteWrite(context.Background(), c, target+"/api/v1/write", req)
		require.NoError(t, err)
		require.Less(t, code, 300, "%s: %s", target, body)
	}
	if ready != nil {
		require.NoError(t, ready(end, prom.URL()))
	}

	if q := os.Getenv("DIFFTEST_DUMP"); q != "" {
		params := url.Values{"query": {q}, "start": {fmt.Sprint(end.Add(-time.Hour).Unix())},
			"end": {fmt.Sprint(end.Unix())}, "step": {"45"}}
		for _, base := range []string{readURL, prom.URL()} {
			r, err := apptest.PostAPI(c, base, "/api/v1/query_range", params)
			require.NoError(t, err)
			t.Logf("%s:\n%s\nwarnings %q infos %q", base, r.Data.Result, r.Warnings, r.Infos)
		}
	}
	seed := uint64(1)
	if v := os.Getenv("DIFFTEST_SEED"); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "DIFFTEST_SEED")
	}
	queries := generateQueries()
	require.GreaterOrEqual(t, len(queries), 200)
	hqueries := histogramQueries()
	queries = append(queries, hqueries...)
	queries = append(queries, generateModifierQueries(rand.New(rand.NewPCG(seed, 11)), end, 80)...)
	t.Logf("seed %d (DIFFTEST_SEED)", seed)
	times := []time.Time{end, end.Add(-7*time.Minute - 13*time.Second), end.Add(-45 * time.Minute)}
	var failures []string
	checked := 0
	for _, q := range queries {
		// The annotations of the histogram queries must match too.
		annotations := slices.Contains(hqueries, q)
		for _, ts := range times {
			params := url.Values{"query": {q}, "time": {fmt.Sprint(ts.Unix())}}
			if annotations {
				if msg := compareAnnotations(c, readURL, prom.URL(), "/api/v1/query", params); msg != "" {
					failures = append(failures, fmt.Sprintf("instant %s at %d: %s", q, ts.Unix(), msg))
				}
			}
			if msg := compare(c, readURL, prom.URL(), "/api/v1/query", params); msg != "" {
				failures = append(failures, fmt.Sprintf("instant %s at %d: %s", q, ts.Unix(), msg))
			}
			checked++
		}
		params := url.Values{"query": {q}, "start": {fmt.Sprint(end.Add(-time.Hour).Unix())},
			"end": {fmt.Sprint(end.Unix())}, "step": {"45"}}
		if annotations {
			if msg := compareAnnotations(c, readURL, prom.URL(), "/api/v1/query_range", params); msg != "" {
				failures = append(failures, fmt.Sprintf("range %s: %s", q, msg))
			}
		}
		if msg := compare(c, readURL, prom.URL(), "/api/v1/query_range", params); msg != "" {
			failures = append(failures, fmt.Sprintf("range %s: %s", q, msg))
		}
		checked++
	}
	t.Logf("%d queries, %d comparisons, %d differ", len(queries), checked, len(failures))
	if len(failures) > 0 {
		if len(failures) > 40 {
			failures = append(failures[:40], fmt.Sprintf("… and %d more", len(failures)-40))
		}
		t.Errorf("tsdb and Prometheus %s differ:\n%s", apptest.ReferencePrometheusRelease, strings.Join(failures, "\n"))
	}
	if os.Getenv("DIFFTEST_VERBOSE") != "" {
		for _, q := range queries {
			t.Log(q)
		}
	}
}

// generateData: counters, gauges and classic histograms over two jobs and
// three instances, a sample every 15 s for 2 h before end, with a counter
// reset, a gap and a stale marker.
func generateData(end time.Time) *prompb.WriteRequest {
	rng := rand.New(rand.NewPCG(42, 7))
	req := &prompb.WriteRequest{}
	start := end.Add(-2 * time.Hour)
	add := func(lbls []prompb.Label, f func(i int, t time.Time) (float64, bool)) {
		ts := prompb.TimeSeries{Labels: lbls}
		for i, t := 0, start; !t.After(end); i, t = i+1, t.Add(15*time.Second) {
			if v, ok := f(i, t); ok {
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: t.UnixMilli(), Value: v})
			}
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	lbl := func(kv ...string) []prompb.Label {
		var out []prompb.Label
		for i := 0; i < len(kv); i += 2 {
			out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
		}
		slices.SortFunc(out, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
		return out
	}
	for _, job := range []string{"api", "db"} {
		for inst := 1; inst <= 3; inst++ {
			in := "i" + strconv.Itoa(inst)
			rate := float64(inst) * 1.5
			var c float64
			add(lbl("__name__", "requests_total", "job", job, "instance", in), func(i int, _ time.Time) (float64, bool) {
				if job == "db" && inst == 2 && i == 200 {
					c = 0 // a restart
				}
				c += rate*15 + float64(rng.IntN(10))
				return c, true
			})
			g := 50.0
			add(lbl("__name__", "temperature", "job", job, "instance", in), func(i int, _ time.Time) (float64, bool) {
				if job == "api" && inst == 3 && i >= 300 && i < 340 {
					return 0, false // a gap
				}
				g += rng.NormFloat64() * 2
				// A per-series offset rules out ties: which of two equal
				// values topk keeps depends on the order series are
				// stored in, which Prometheus does not specify.
				return math.Round(g*100)/100 + float64(inst)*1e-4 + float64(len(job))*1e-5, true
			})
			var buckets [5]float64
			for b, le := range []string{"0.1", "0.5", "1", "5", "+Inf"} {
				add(lbl("__name__", "latency_seconds_bucket", "job", job, "instance", in, "le", le), func(i int, _ time.Time) (float64, bool) {
					if b == 0 {
						inc := float64(rng.IntN(20))
						for k := range buckets {
							buckets[k] += inc * float64(k+1) / 5
						}
					}
					return math.Floor(buckets[b]), true
				})
			}
		}
	}
	// A series that goes stale halfway.
	add(lbl("__name__", "up", "job", "api", "instance", "i1"), func(i int, _ time.Time) (float64, bool) {
		if i == 240 {
			return math.Float64frombits(0x7ff0000000000002), true
		}
		return 1, i < 240
	})
	return req
}

func generateQueries() []string {
	sels := []string{`requests_total`, `requests_total{job="api"}`, `temperature`, `temperature{instance=~"i[12]"}`, `up`}
	var qs []string
	for _, fn := range []string{"rate", "irate", "increase", "delta", "idelta", "deriv", "changes", "resets",
		"avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
		"stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time"} {
		for _, w := range []string{"1m", "5m"} {
			for _, s := range sels[:4] {
				qs = append(qs, fmt.Sprintf("%s(%s[%s])", fn, s, w))
			}
		}
	}
	for _, agg := range []string{"sum", "avg", "min", "max", "count", "stddev", "stdvar", "group"} {
		for _, mod := range []string{"", " by (job)", " without (instance)"} {
			qs = append(qs, fmt.Sprintf("%s%s (rate(requests_total[5m]))", agg, mod), fmt.Sprintf("%s%s (temperature)", agg, mod))
		}
	}
	qs = append(qs,
		`topk(2, temperature)`, `bottomk(2, temperature)`, `topk by (job) (1, rate(requests_total[5m]))`,
		`quantile(0.5, temperature)`, `quantile by (job) (0.9, temperature)`,
		`count_values("v", round(temperature / 10))`, `quantile_over_time(0.3, temperature[10m])`,
		`predict_linear(temperature[10m], 600)`, `predict_linear(requests_total[30m], 3600)`,
		`histogram_quantile(0.9, sum by (le) (rate(latency_seconds_bucket[5m])))`,
		`histogram_quantile(0.5, rate(latency_seconds_bucket[5m]))`,
		`histogram_quantile(0.99, sum by (job, le) (rate(latency_seconds_bucket[10m])))`,
		`abs(temperature - 50)`, `ceil(temperature)`, `floor(temperature)`, `round(temperature, 0.5)`,
		`clamp(temperature, 45, 55)`, `clamp_min(temperature, 50)`, `clamp_max(temperature, 50)`,
		`sqrt(temperature)`, `exp(temperature / 100)`, `ln(temperature)`, `log2(temperature)`, `log10(temperature)`,
		`sgn(temperature - 50)`, `-temperature`, `temperature ^ 2`, `temperature % 7`,
		`label_replace(temperature, "host", "$1", "instance", "i(.*)")`,
		`label_join(temperature, "both", "-", "job", "instance")`,
		`absent(nonexistent)`, `absent(temperature)`, `absent_over_time(nonexistent[5m])`,
		`vector(1)`, `scalar(sum(temperature))`, `time()`, `timestamp(temperature)`, `minute(timestamp(temperature))`,
		`hour()`, `day_of_week()`, `days_in_month()`,
		`temperature offset 5m`, `rate(requests_total[5m] offset 10m)`, `temperature @ end()`, `temperature @ start()`,
		`max_over_time(rate(requests_total[1m])[10m:1m])`, `avg_over_time(temperature[15m:2m])`,
		`rate(requests_total[5m]) / on(job, instance) temperature`,
		`rate(requests_total[5m]) * ignoring(job) group_left temperature{job="api"}`,
		`temperature > 50`, `temperature > bool 50`, `50 < temperature`, `temperature == temperature`,
		`temperature and on(instance) temperature{job="db"}`, `temperature or requests_total`,
		`temperature unless temperature{instance="i1"}`, `requests_total{job="api"} or on(instance) temperature`,
		`sum(temperature) / count(temperature)`, `sum by (job) (temperature) / on(job) group_left count by (job) (temperature)`,
		`1 + 2 * 3`, `2 ^ 3 ^ 2`, `time() - timestamp(temperature) > bool 0`,
		`sort(temperature)`, `sort_desc(rate(requests_total[5m]))`,
		`up`, `count_over_time(up[10m])`, `last_over_time(up[10m])`, `absent(up)`,
		`sum(rate(requests_total[5m])) by (job) > 5`, `avg by (instance) (temperature) - on(instance) avg by (instance) (temperature offset 1h)`,
		`changes(temperature[1h])`, `resets(requests_total[2h])`, `increase(requests_total{job="db"}[1h])`,
		`deriv(temperature[30m])`, `irate(requests_total[2m])`, `sum without (le) (rate(latency_seconds_bucket[5m]))`,
		`count(count by (job) (temperature))`, `group by (job) (temperature)`, `stddev by (job) (temperature)`,
		`max_over_time(temperature[1h:5m] offset 10m)`, `min_over_time(sum(temperature)[20m:3m])`,
	)
	return qs
}

// generateModifierQueries returns n random queries of the forms where
// PromQL lets `offset` and `@` come before a subquery's brackets (issue
// 17): `f(sel MODS [r:s] MODS)`, chains of them (`f(g(sel MODS [r:s]) MODS
// [r:s])`, `sel MODS [r:s] MODS [r:s]`), inside aggregations and binary
// operations. @ times are within the data, which ends at end.
func generateModifierQueries(rng *rand.Rand, end time.Time, n int) []string {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	offset := func() string { return "offset " + pick("1m", "5m", "30s", "-2m", "90s", "1h") }
	mods := func() string {
		var ms []string
		if rng.IntN(3) > 0 {
			ms = append(ms, offset())
		}
		if rng.IntN(3) > 0 || len(ms) == 0 {
			at := pick("start()", "end()",
				strconv.FormatInt(end.Add(-time.Duration(rng.IntN(90))*time.Minute-17*time.Second).Unix(), 10))
			ms = append(ms, "@ "+at)
		}
		if len(ms) == 2 && rng.IntN(2) == 0 {
			ms[0], ms[1] = ms[1], ms[0]
		}
		return strings.Join(ms, " ")
	}
	sub := func() string {
		return "[" + pick("5m", "10m", "30m") + ":" + pick("", "30s", "1m", "2m", "5m") + "]"
	}
	counter := []string{"rate", "irate", "increase", "resets", "changes"}
	gauge := []string{"avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
		"last_over_time", "present_over_time", "stddev_over_time", "delta", "idelta", "deriv"}
	// A subquery gets an @ of its own only when its selector has none,
	// and no @ is inside a subquery inside another: Prometheus implements @ as
	// an offset from the evaluation time, recomputed per subquery, and
	// answers otherwise there (docs/query.md, "Known differences").
	inner := func(nested bool) string {
		fns, sel := gauge, pick(`temperature`, `temperature{instance=~"i[12]"}`, `{__name__="temperature",job="db"}`)
		if rng.IntN(2) == 0 {
			fns, sel = counter, pick(`requests_total`, `requests_total{job="api"}`)
		}
		fn := fns[rng.IntN(len(fns))]
		space, pre := pick(" ", ""), mods()
		q := fmt.Sprintf("%s(%s %s%s%s", fn, sel, pre, space, sub())
		switch {
		case rng.IntN(3) > 0:
		case nested || strings.Contains(pre, "@"):
			q += " " + offset()
		default:
			q += " " + mods()
		}
		return q + ")"
	}
	var qs []string
	for range n {
		var q string
		switch rng.IntN(6) {
		case 0, 1:
			q = inner(false)
		case 2:
			// Modifiers after a subquery of a call (on the call itself
			// they are MetricsQL, not PromQL).
			q = fmt.Sprintf("%s(%s%s %s)", pick(gauge[:8]...), inner(true), sub(), mods())
		case 3:
			q = fmt.Sprintf("%s by (job) (%s)", pick("sum", "max", "count"), inner(false))
		case 4:
			q = fmt.Sprintf("%s - %s", inner(false), inner(false))
		case 5:
			// The selector's own subquery chain: a subquery with modifiers
			// taken as a subquery again, then by a function.
			q = fmt.Sprintf("max_over_time(avg_over_time(temperature %s %s %s)%s)", offset(), sub(), offset(), sub())
		}
		qs = append(qs, q)
	}
	return qs
}

type series struct {
	Metric     map[string]string `json:"metric"`
	Value      []any             `json:"value"`
	Values     [][]any           `json:"values"`
	Histogram  []any             `json:"histogram"`
	Histograms [][]any           `json:"histograms"`
}

// compare returns "" when both answer the same.
func compare(c *http.Client, ours, theirs, path string, params url.Values) string {
	a, err := apptest.PostAPI(c, ours, path, params)
	if err != nil {
		return "tsdb: " + err.Error()
	}
	b, err := apptest.PostAPI(c, theirs, path, params)
	if err != nil {
		return "prometheus: " + err.Error()
	}
	if a.Status != b.Status {
		return fmt.Sprintf("status %s (%s) vs %s (%s)", a.Status, a.Error, b.Status, b.Error)
	}
	if a.Status != "success" {
		if a.ErrorType != b.ErrorType {
			return fmt.Sprintf("error type %s vs %s", a.ErrorType, b.ErrorType)
		}
		return ""
	}
	if a.Data.ResultType != b.Data.ResultType {
		return fmt.Sprintf("result type %s vs %s", a.Data.ResultType, b.Data.ResultType)
	}
	switch a.Data.ResultType {
	case "scalar", "string":
		var x, y []any
		_ = json.Unmarshal(a.Data.Result, &x)
		_ = json.Unmarshal(b.Data.Result, &y)
		if !pointEq(x, y) {
			return fmt.Sprintf("%v vs %v", x, y)
		}
		return ""
	}
	var x, y []series
	if err := json.Unmarshal(a.Data.Result, &x); err != nil {
		return err.Error()
	}
	if err := json.Unmarshal(b.Data.Result, &y); err != nil {
		return err.Error()
	}
	key := func(s series) string {
		ks := make([]string, 0, len(s.Metric))
		for k, v := range s.Metric {
			ks = append(ks, k+"="+v)
		}
		slices.Sort(ks)
		return strings.Join(ks, ",")
	}
	ordered := strings.Contains(params.Get("query"), "sort") || strings.HasPrefix(params.Get("query"), "topk") ||
		strings.HasPrefix(params.Get("query"), "bottomk")
	if !ordered || a.Data.ResultType == "matrix" {
		slices.SortFunc(x, func(p, q series) int { return strings.Compare(key(p), key(q)) })
		slices.SortFunc(y, func(p, q series) int { return strings.Compare(key(p), key(q)) })
	}
	if len(x) != len(y) {
		return fmt.Sprintf("%d series vs %d", len(x), len(y))
	}
	for i := range x {
		if key(x[i]) != key(y[i]) {
			return fmt.Sprintf("series %d: {%s} vs {%s}", i, key(x[i]), key(y[i]))
		}
		if a.Data.ResultType == "vector" {
			if (x[i].Histogram == nil) != (y[i].Histogram == nil) {
				return fmt.Sprintf("{%s}: value %v histogram %v vs value %v histogram %v", key(x[i]), x[i].Value, x[i].Histogram, y[i].Value, y[i].Histogram)
			}
			if x[i].Histogram != nil {
				if !histogramPointEq(x[i].Histogram, y[i].Histogram) {
					return fmt.Sprintf("{%s}: %s vs %s", key(x[i]), describeHistogramPoint(x[i].Histogram), describeHistogramPoint(y[i].Histogram))
				}
				continue
			}
			if !pointEq(x[i].Value, y[i].Value) {
				return fmt.Sprintf("{%s}: %v vs %v", key(x[i]), x[i].Value, y[i].Value)
			}
			continue
		}
		if len(x[i].Histograms) != len(y[i].Histograms) {
			return fmt.Sprintf("{%s}: %d histogram points vs %d", key(x[i]), len(x[i].Histograms), len(y[i].Histograms))
		}
		for j := range x[i].Histograms {
			if !histogramPointEq(x[i].Histograms[j], y[i].Histograms[j]) {
				return fmt.Sprintf("{%s} histogram point %d: %s vs %s", key(x[i]), j, describeHistogramPoint(x[i].Histograms[j]), describeHistogramPoint(y[i].Histograms[j]))
			}
		}
		if len(x[i].Values) != len(y[i].Values) {
			return fmt.Sprintf("{%s}: %d points vs %d", key(x[i]), len(x[i].Values), len(y[i].Values))
		}
		for j := range x[i].Values {
			if !pointEq(x[i].Values[j], y[i].Values[j]) {
				return fmt.Sprintf("{%s} point %d: %v vs %v", key(x[i]), j, x[i].Values[j], y[i].Values[j])
			}
		}
	}
	return ""
}

func pointEq(a, b []any) bool {
	if len(a) != 2 || len(b) != 2 || a[0] != b[0] {
		return false
	}
	sa, _ := a[1].(string)
	sb, _ := b[1].(string)
	if sa == sb {
		return true
	}
	fa, err1 := strconv.ParseFloat(sa, 64)
	fb, err2 := strconv.ParseFloat(sb, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	if math.IsNaN(fa) && math.IsNaN(fb) {
		return true
	}
	return math.Abs(fa-fb) <= 1e-9*math.Max(math.Abs(fa), math.Abs(fb))
}
