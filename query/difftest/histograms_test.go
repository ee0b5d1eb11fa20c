package difftest

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// addHistogramData adds native histograms to req: an exponential counter
// histogram per job and instance (one resets, one changes its schema
// midway), a gauge histogram, and a counter with custom buckets, a
// sample every 15 s for 2 h before end.
func addHistogramData(t testing.TB, req *prompb.WriteRequest, end time.Time) {
	rng := rand.New(rand.NewPCG(43, 8))
	start := end.Add(-2 * time.Hour)
	add := func(lbls []prompb.Label, f func(i int) *histogram.Histogram) {
		ts := prompb.TimeSeries{Labels: lbls}
		for i, at := 0, start; !at.After(end); i, at = i+1, at.Add(15*time.Second) {
			if h := f(i); h != nil {
				ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(at.UnixMilli(), h))
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
	// counts are the observations of a histogram of schema 0: a zero
	// bucket and six positive buckets from (1/16, 1/8] to (2, 4].
	type counts struct {
		zero uint64
		pos  [6]int64
		sum  float64
	}
	toHist := func(c counts, schema int32, hint histogram.CounterResetHint) *histogram.Histogram {
		h := &histogram.Histogram{
			Schema: 0, ZeroThreshold: 0.001, ZeroCount: c.zero, Sum: c.sum, CounterResetHint: hint,
			PositiveSpans: []histogram.Span{{Offset: -2, Length: 6}},
		}
		count := c.zero
		prev := int64(0)
		for _, n := range c.pos {
			count += uint64(n)
			h.PositiveBuckets = append(h.PositiveBuckets, n-prev)
			prev = n
		}
		h.Count = count
		if schema < 0 {
			require.NoError(t, h.ReduceResolution(schema))
		}
		return h
	}
	for _, job := range []string{"api", "db"} {
		for inst := 1; inst <= 3; inst++ {
			in := "i" + strconv.Itoa(inst)
			var c counts
			add(lbl("__name__", "rpc_latency_seconds", "job", job, "instance", in), func(i int) *histogram.Histogram {
				if job == "db" && inst == 2 && i == 200 {
					c = counts{} // a restart
				}
				for range rng.IntN(8 * inst) {
					b := rng.IntN(6)
					c.pos[b]++
					c.sum += math.Ldexp(1, b-2) * 0.75
				}
				c.zero += uint64(rng.IntN(2))
				schema := int32(0)
				if job == "api" && inst == 3 && i >= 240 {
					schema = -1 // the sender lowered its resolution
				}
				return toHist(c, schema, histogram.UnknownCounterReset)
			})
		}
	}
	var g counts
	add(lbl("__name__", "queue_size_histogram", "job", "api"), func(int) *histogram.Histogram {
		for b := range g.pos {
			g.pos[b] = int64(rng.IntN(10))
		}
		g.zero = uint64(rng.IntN(3))
		g.sum = float64(rng.IntN(100))
		return toHist(g, 0, histogram.GaugeType)
	})
	var cb [4]uint64
	var cbSum float64
	add(lbl("__name__", "request_size_bytes", "job", "api"), func(int) *histogram.Histogram {
		h := &histogram.Histogram{Schema: histogram.CustomBucketsSchema, CustomValues: []float64{100, 1000, 10000},
			PositiveSpans: []histogram.Span{{Offset: 0, Length: 4}}}
		var prev int64
		var count uint64
		for b := range cb {
			n := uint64(rng.IntN(5))
			cb[b] += n
			cbSum += float64(n) * []float64{50, 500, 5000, 20000}[b]
			count += cb[b]
			h.PositiveBuckets = append(h.PositiveBuckets, int64(cb[b])-prev)
			prev = int64(cb[b])
		}
		h.Count, h.Sum = count, cbSum
		return h
	})
}

// histogramQueries are the queries over native histograms.
func histogramQueries() []string {
	h := `rpc_latency_seconds`
	return []string{
		h, h + `{job="api"}`, `queue_size_histogram`, `request_size_bytes`,
		`rate(` + h + `[5m])`, `increase(` + h + `[10m])`, `irate(` + h + `[1m])`, `delta(queue_size_histogram[5m])`,
		`idelta(queue_size_histogram[1m])`, `rate(request_size_bytes[5m])`,
		`sum by (job) (rate(` + h + `[5m]))`, `avg(rate(` + h + `[5m]))`, `sum(` + h + `)`,
		`histogram_quantile(0.9, sum by (job) (rate(` + h + `[5m])))`,
		`histogram_quantile(0.5, rate(` + h + `[5m]))`, `histogram_quantile(0.99, rate(request_size_bytes[10m]))`,
		`histogram_quantile(0.1, queue_size_histogram)`,
		`histogram_fraction(0, 0.5, rate(` + h + `[5m]))`, `histogram_fraction(100, 5000, rate(request_size_bytes[5m]))`,
		`histogram_count(rate(` + h + `[5m]))`, `histogram_sum(rate(` + h + `[5m]))`, `histogram_avg(rate(` + h + `[5m]))`,
		`histogram_stddev(` + h + `)`, `histogram_stdvar(queue_size_histogram)`, `histogram_count(` + h + `)`,
		`sum_over_time(queue_size_histogram[5m])`, `avg_over_time(queue_size_histogram[5m])`,
		`last_over_time(` + h + `[5m])`, `count_over_time(` + h + `[5m])`, `max_over_time(` + h + `[5m])`,
		`resets(` + h + `[1h])`, `changes(queue_size_histogram[10m])`,
		`rate(` + h + `[5m]) * 60`, `queue_size_histogram / 2`, `2 * queue_size_histogram`,
		h + ` - ` + h + ` offset 5m`, `queue_size_histogram + queue_size_histogram`,
		`max(` + h + `)`, `count(` + h + `)`, `topk(1, ` + h + `)`, `timestamp(` + h + `)`,
		`sort(` + h + `)`, `-queue_size_histogram`, `rate(` + h + `[5m])[10m:1m]`,
		`increase(` + h + `[10m:1m])`, `histogram_count(sum(rate(` + h + `[5m])))`,
		`label_replace(queue_size_histogram, "q", "$1", "job", "(.*)")`,
		`queue_size_histogram == queue_size_histogram`, `queue_size_histogram > 1`,
		`queue_size_histogram </ 1`, `queue_size_histogram >/ 0.5`,
		`histogram_quantile(0.9, rate(` + h + `[5m]) * 2)`, `sum(rate(` + h + `[5m])) / 2`,
		`rate(` + h + `[5m]) + rate(` + h + `[5m])`, `rate(` + h + `[5m]) - on(job, instance) rate(` + h + `[10m])`,
		`histogram_avg(sum by (job) (rate(` + h + `[5m])))`, `avg_over_time(` + h + `[10m])`,
		`sum_over_time(rate(` + h + `[5m])[10m:1m])`, `quantile(0.5, rate(` + h + `[5m]))`,
		`count_values("x", queue_size_histogram)`, `histogram_fraction(-Inf, 1, ` + h + `)`,
		`absent(` + h + `)`, `vector(1) and on() ` + h, h + ` unless ` + h + `{job="api"}`,
		`queue_size_histogram or vector(1)`, `group by (job) (` + h + `)`, `delta(` + h + `[5m])`,
		`irate(queue_size_histogram[1m])`, `rate(queue_size_histogram[5m])`, `stddev(` + h + `)`,
		`min_over_time(queue_size_histogram[5m])`, `queue_size_histogram + 1`, `1 - queue_size_histogram`,
		`queue_size_histogram * queue_size_histogram`, `histogram_quantile(0.5, {__name__=~"request_size_bytes|queue_size_histogram"})`,
		`sum({__name__=~"request_size_bytes|queue_size_histogram"})`, `rate(request_size_bytes[5m]) + rate(` + h + `[5m])`,
		`sum by (job) ({__name__=~"temperature|queue_size_histogram"})`,
	}
}

// histogramJSON is a histogram as the query API encodes it.
type histogramJSON struct {
	Count   string  `json:"count"`
	Sum     string  `json:"sum"`
	Buckets [][]any `json:"buckets"`
}

// histogramPointEq compares [ts, {histogram}] points.
func histogramPointEq(a, b []any) bool {
	if len(a) != 2 || len(b) != 2 || a[0] != b[0] {
		return false
	}
	var x, y histogramJSON
	ja, _ := json.Marshal(a[1])
	jb, _ := json.Marshal(b[1])
	if json.Unmarshal(ja, &x) != nil || json.Unmarshal(jb, &y) != nil {
		return false
	}
	if !valueEq(x.Count, y.Count) || !valueEq(x.Sum, y.Sum) || len(x.Buckets) != len(y.Buckets) {
		return false
	}
	for i := range x.Buckets {
		p, q := x.Buckets[i], y.Buckets[i]
		if len(p) != 4 || len(q) != 4 || p[0] != q[0] {
			return false
		}
		for k := 1; k < 4; k++ {
			sp, _ := p[k].(string)
			sq, _ := q[k].(string)
			if !valueEq(sp, sq) {
				return false
			}
		}
	}
	return true
}

func valueEq(a, b string) bool {
	return pointEq([]any{0.0, a}, []any{0.0, b})
}

func describeHistogramPoint(p []any) string {
	j, _ := json.Marshal(p)
	return string(j)
}

func TestHistogramPointEq(t *testing.T) {
	p := func(s string) []any {
		var v []any
		require.NoError(t, json.Unmarshal([]byte(s), &v))
		return v
	}
	a := p(`[1, {"count":"2","sum":"3","buckets":[[0,"1","2","2"]]}]`)
	require.True(t, histogramPointEq(a, p(`[1, {"count":"2.0000000000001","sum":"3","buckets":[[0,"1","2","2"]]}]`)))
	require.False(t, histogramPointEq(a, p(`[1, {"count":"2","sum":"3","buckets":[[0,"1","2","3"]]}]`)))
	require.False(t, histogramPointEq(a, p(`[1, {"count":"2","sum":"3","buckets":[[3,"1","2","2"]]}]`)))
	require.False(t, histogramPointEq(a, p(`[1, {"count":"2","sum":"3"}]`)))
	require.False(t, histogramPointEq(a, p(`[2, {"count":"2","sum":"3","buckets":[[0,"1","2","2"]]}]`)))
}

// annotationPos is the position Prometheus's API appends to an
// annotation, which tsdb does not know (MetricsQL's parser has none).
var annotationPos = regexp.MustCompile(` \(\d+:\d+\)$`)

// compareAnnotations returns "" when both answer with the same warnings
// and infos, positions aside.
func compareAnnotations(c *http.Client, ours, theirs, path string, params url.Values) string {
	a, err := apptest.PostAPI(c, ours, path, params)
	if err != nil {
		return "tsdb: " + err.Error()
	}
	b, err := apptest.PostAPI(c, theirs, path, params)
	if err != nil {
		return "prometheus: " + err.Error()
	}
	norm := func(ss []string) []string {
		out := make([]string, 0, len(ss))
		for _, s := range ss {
			out = append(out, annotationPos.ReplaceAllString(s, ""))
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	if x, y := norm(a.Warnings), norm(b.Warnings); !slices.Equal(x, y) {
		return fmt.Sprintf("warnings %q vs %q", x, y)
	}
	if x, y := norm(a.Infos), norm(b.Infos); !slices.Equal(x, y) {
		return fmt.Sprintf("infos %q vs %q", x, y)
	}
	return ""
}
