package vmdifftest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/query"
)

const knownFile = "testdata/known_mismatches.txt"

// step is the range queries' step; their start and end are multiples of
// it, as VictoriaMetrics aligns them.
const step = time.Minute

// TestVictoriaMetricsDifferential sends the same generated data to
// VictoriaMetrics and to tsdb, runs generated MetricsQL-only queries (every
// function metricsql knows, in a form Prometheus's parser refuses, plus
// MetricsQL's own syntax) as instant and range queries on both, and
// counts per function the answers that are the same, differ, or come
// from one side only. Differences not in testdata/known_mismatches.txt
// fail the test, and so do listed ones that are gone.
func TestVictoriaMetricsDifferential(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs VictoriaMetrics")
	}
	vmBin := apptest.ReferenceVictoriaMetrics(t)
	db := apptest.StartTSDB(t, apptest.Build(t), t.TempDir())
	vm := apptest.StartVictoriaMetrics(t, vmBin)

	end := time.Now().Truncate(time.Hour).Add(-time.Hour)
	req := generateData(end)
	c := &http.Client{Timeout: time.Minute}
	for _, target := range []string{db.URL(), vm.URL()} {
		code, body, err := apptest.RemoteWrite(context.Background(), c, target+"/api/v1/write", req)
		require.NoError(t, err)
		require.Less(t, code, 300, "%s: %s", target, body)
	}
	vm.ForceFlush(t)

	cases := generateQueries(t)
	if q := os.Getenv("VMDIFFTEST_QUERY"); q != "" {
		cases = []tcase{{fn: "adhoc", q: q}}
	}
	instants := []struct {
		name string
		ts   time.Time
	}{{"end", end}, {"end-7m13s", end.Add(-7*time.Minute - 13*time.Second)}}
	type tally struct{ same, differ, oursOnly, theirsOnly int }
	per := map[string]*tally{}
	got := map[string]string{} // mismatch key -> why
	comparisons := 0
	for _, tc := range cases {
		if per[tc.fn] == nil {
			per[tc.fn] = &tally{}
		}
		count := func(key string, o outcome) {
			comparisons++
			switch o.kind {
			case same:
				per[tc.fn].same++
				return
			case differ:
				per[tc.fn].differ++
			case oursOnly:
				per[tc.fn].oursOnly++
			case theirsOnly:
				per[tc.fn].theirsOnly++
			}
			got[key] = o.why
		}
		for _, in := range instants {
			params := url.Values{"query": {tc.q}, "time": {strconv.FormatInt(in.ts.Unix(), 10)}}
			count("instant@"+in.name+"\t"+tc.q, compare(c, db.URL(), vm.URL(), "/api/v1/query", params))
		}
		params := url.Values{"query": {tc.q}, "start": {strconv.FormatInt(end.Add(-time.Hour).Unix(), 10)},
			"end": {strconv.FormatInt(end.Unix(), 10)}, "step": {strconv.Itoa(int(step.Seconds()))}}
		count("range\t"+tc.q, compare(c, db.URL(), vm.URL(), "/api/v1/query_range", params))
	}

	fns := slices.Sorted(func(yield func(string) bool) {
		for k := range per {
			if !yield(k) {
				return
			}
		}
	})
	var total tally
	var lines []string
	for _, fn := range fns {
		x := per[fn]
		total.same += x.same
		total.differ += x.differ
		total.oursOnly += x.oursOnly
		total.theirsOnly += x.theirsOnly
		if x.differ+x.oursOnly+x.theirsOnly > 0 {
			lines = append(lines, fmt.Sprintf("  %-28s same %3d  differ %3d  only tsdb %3d  only VictoriaMetrics %3d", fn, x.same, x.differ, x.oursOnly, x.theirsOnly))
		}
	}
	t.Logf("%d queries (%d functions), %d comparisons: %d same, %d differ, %d answered only by tsdb, %d only by VictoriaMetrics\nfunctions with differences:\n%s",
		len(cases), len(fns), comparisons, total.same, total.differ, total.oursOnly, total.theirsOnly, strings.Join(lines, "\n"))
	if os.Getenv("VMDIFFTEST_QUERY") != "" {
		for k, why := range got {
			t.Logf("%s: %s", k, why)
		}
		return
	}
	checkKnown(t, got)
}

// checkKnown compares the mismatches found with the list in knownFile.
func checkKnown(t *testing.T, got map[string]string) {
	t.Helper()
	known, unstable := readKnown(t)
	if os.Getenv("VMDIFFTEST_UPDATE") != "" {
		for k := range unstable { // they stay listed, differing or not
			got[k] = "unstable"
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range got {
				if !yield(k) {
					return
				}
			}
		})
		var b strings.Builder
		b.WriteString("# Queries whose answers differ from VictoriaMetrics " + apptest.ReferenceVictoriaMetricsVersion +
			" today (query/vmdifftest).\n# kind<TAB>query; rewrite with VMDIFFTEST_UPDATE=1. A leading ~ marks an unstable one\n" +
			"# (VictoriaMetrics breaks ties and orders series in no promised order): it may differ or not, and is kept.\n")
		for _, k := range keys {
			if unstable[k] {
				b.WriteString("~")
			}
			b.WriteString(k + "\n")
		}
		require.NoError(t, os.WriteFile(knownFile, []byte(b.String()), 0o644))
		return
	}
	var fresh, fixed []string
	for k, why := range got {
		if !known[k] && !unstable[k] {
			fresh = append(fresh, k+": "+why)
		}
	}
	for k := range known {
		if _, ok := got[k]; !ok {
			fixed = append(fixed, k)
		}
	}
	slices.Sort(fresh)
	slices.Sort(fixed)
	t.Logf("%d known mismatches (and %d unstable), %d new, %d gone", len(known), len(unstable), len(fresh), len(fixed))
	if len(fresh) > 0 {
		t.Errorf("new differences from VictoriaMetrics (fix them, or list them in %s with VMDIFFTEST_UPDATE=1):\n%s", knownFile, strings.Join(fresh, "\n"))
	}
	if len(fixed) > 0 {
		t.Errorf("listed differences that are gone (remove them from %s):\n%s", knownFile, strings.Join(fixed, "\n"))
	}
}

// readKnown reads knownFile: the differences expected, and the unstable
// ones (a leading ~) that may differ or not from run to run.
func readKnown(t *testing.T) (known, unstable map[string]bool) {
	t.Helper()
	known, unstable = map[string]bool{}, map[string]bool{}
	f, err := os.Open(knownFile)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		switch l := sc.Text(); {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "~"):
			unstable[l[1:]] = true
		default:
			known[l] = true
		}
	}
	require.NoError(t, sc.Err())
	return known, unstable
}

// generateData: counters, gauges and classic histograms over three jobs,
// four instances and three paths (about 250 series), a sample every 15 s
// for 3 h before end, with counter resets and gaps.
func generateData(end time.Time) *prompb.WriteRequest {
	rng := rand.New(rand.NewPCG(17, 4))
	req := &prompb.WriteRequest{}
	start := end.Add(-3 * time.Hour)
	add := func(lbls []prompb.Label, f func(i int) (float64, bool)) {
		ts := prompb.TimeSeries{Labels: lbls}
		for i, t := 0, start; !t.After(end); i, t = i+1, t.Add(15*time.Second) {
			if v, ok := f(i); ok {
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
	for j, job := range []string{"api", "db", "web"} {
		for inst := 1; inst <= 4; inst++ {
			in := "i" + strconv.Itoa(inst)
			for p, path := range []string{"/a", "/b", "/c"} {
				var c float64
				rate := float64(inst*(p+1)) * 0.7
				add(lbl("__name__", "requests_total", "job", job, "instance", in, "path", path), func(i int) (float64, bool) {
					if (inst+p+j)%5 == 0 && i == 300 {
						c = 0 // a restart
					}
					c += rate*15 + float64(rng.IntN(10))
					return c, true
				})
			}
			g := 40 + float64(10*j+inst)
			add(lbl("__name__", "temperature", "job", job, "instance", in), func(i int) (float64, bool) {
				if (inst == 3 && i >= 500 && i < 560) || (job == "web" && inst == 4 && i > 600) {
					return 0, false // a gap, and a series that stops
				}
				g += rng.NormFloat64() * 2
				// Distinct per series, so that no two series tie.
				return math.Round(g*100)/100 + float64(inst)*1e-4 + float64(j)*1e-5, true
			})
			var buckets [5]float64
			for b, le := range []string{"0.1", "0.5", "1", "5", "+Inf"} {
				add(lbl("__name__", "latency_seconds_bucket", "job", job, "instance", in, "le", le), func(i int) (float64, bool) {
					if b == 0 {
						inc := float64(rng.IntN(20))
						for k := range buckets {
							buckets[k] += inc * float64(k+1) / 5
						}
					}
					return math.Floor(buckets[b]), true
				})
			}
			for _, mode := range []string{"user", "system", "idle"} {
				add(lbl("__name__", "cpu_seconds_total", "job", job, "instance", in, "mode", mode), func(i int) (float64, bool) {
					return float64(i) * 15 * float64(len(mode)) / 10, i%40 != 7
				})
			}
		}
	}
	return req
}

type tcase struct{ fn, q string }

// generateQueries returns the queries with the function each one tests:
// one or two for every function metricsql parses, each in a form
// Prometheus's parser refuses, then MetricsQL's own syntax. Queries
// Prometheus's parser accepts are left out: those answer as Prometheus does
// and query/difftest checks them.
func generateQueries(t *testing.T) []tcase {
	var out []tcase
	add := func(fn string, qs ...string) {
		for _, q := range qs {
			if query.ParsePromQL(q) == nil {
				continue
			}
			out = append(out, tcase{fn, q})
		}
	}
	// Chosen at random by VictoriaMetrics (or by the clock): they cannot
	// be compared.
	skip := map[string]bool{"": true, "rand": true, "rand_normal": true, "rand_exponential": true, "now": true,
		"any": true, "limitk": true, "label_graphite_group": true}
	rollupArgs := map[string][]string{
		"count_eq_over_time": {"%s, 50"}, "count_gt_over_time": {"%s, 50"}, "count_le_over_time": {"%s, 50"},
		"count_ne_over_time": {"%s, 50"}, "share_gt_over_time": {"%s, 50"}, "share_le_over_time": {"%s, 50"},
		"share_eq_over_time": {"%s, 50"}, "sum_eq_over_time": {"%s, 50"}, "sum_gt_over_time": {"%s, 50"},
		"sum_le_over_time": {"%s, 50"}, "predict_linear": {"%s, 600"}, "quantile_over_time": {"0.3, %s"},
		"quantiles_over_time": {`"phi", 0.1, 0.9, %s`}, "hoeffding_bound_lower": {"0.9, %s"},
		"hoeffding_bound_upper": {"0.9, %s"}, "holt_winters": {"%s, 0.5, 0.5"},
		"aggr_over_time": {`("min_over_time", "max_over_time"), %s`}, "duration_over_time": {"%s, 1m"},
		"count_values_over_time": {`"v", %s`},
	}
	for _, fn := range metricsqlFuncs(t, "rollup.go") {
		if skip[fn] {
			continue
		}
		form := []string{"%s"}
		if a, ok := rollupArgs[fn]; ok {
			form = a
		}
		for _, f := range form {
			add(fn, fn+"("+fmt.Sprintf(f, "temperature[10m]")+")",
				fn+"("+fmt.Sprintf(f, "requests_total")+")",
				fn+"("+fmt.Sprintf(f, `temperature{instance="i3"}[2i]`)+")")
		}
	}
	transformArgs := map[string]string{
		"smooth_exponential": "%s, 0.5", "range_quantile": "0.5, %s", "range_trim_outliers": "1, %s",
		"range_trim_spikes": "0.1, %s", "range_trim_zscore": "1, %s", "limit_offset": "2, 1, %s",
		"bitmap_and": "%s, 3", "bitmap_or": "%s, 3", "bitmap_xor": "%s, 3",
		"label_set": `%s, "a", "b"`, "label_del": `%s, "job"`, "label_keep": `%s, "job"`,
		"label_copy": `%s, "job", "j"`, "label_move": `%s, "job", "j"`, "label_lowercase": `%s, "job"`,
		"label_uppercase": `%s, "job"`, "label_value": `label_set(%s, "x", "1.5"), "x"`,
		"label_match": `%s, "instance", "i[12]"`, "label_mismatch": `%s, "instance", "i[12]"`,
		"label_transform": `%s, "instance", "i", "host-"`, "label_map": `%s, "job", "api", "API"`,
		"labels_equal": `label_set(%s, "a", "api"), "a", "job"`, "union": "%s, requests_total",
		"clamp": "%s, 45, 55", "clamp_min": "%s, 50", "clamp_max": "%s, 50", "round": "%s, 0.5",
		"label_join": `%s, "both", "-", "job", "instance"`, "label_replace": `%s, "host", "$1", "instance", "i(.*)"`,
		"histogram_quantile": "0.9, %s", "histogram_quantiles": `"phi", 0.5, 0.9, %s`,
		"histogram_share": "0.5, %s", "histogram_fraction": "0, 0.5, %s", "buckets_limit": "3, %s",
		"sort_by_label": `%s, "instance"`, "sort_by_label_desc": `%s, "instance"`,
		"sort_by_label_numeric": `%s, "instance"`, "sort_by_label_numeric_desc": `%s, "instance"`,
		"timezone_offset": `"Europe/Berlin"`, "vector": "1", "scalar": "sum(%s)",
		"absent": `%s{job="none"}`,
	}
	histogramArg := map[string]bool{"histogram_quantile": true, "histogram_quantiles": true, "histogram_share": true,
		"histogram_fraction": true, "buckets_limit": true, "histogram_avg": true, "histogram_stddev": true,
		"histogram_stdvar": true, "prometheus_buckets": true}
	for _, fn := range metricsqlFuncs(t, "transform.go") {
		if skip[fn] {
			continue
		}
		f := "%s"
		if a, ok := transformArgs[fn]; ok {
			f = a
		}
		arg := "temperature"
		if histogramArg[fn] {
			arg = `sum(rate(latency_seconds_bucket)) by (le)`
		}
		switch {
		case !strings.Contains(f, "%s"):
			add(fn, fn+"("+f+")", fn+"("+f+") + 0 default 1")
		default:
			add(fn, fn+"("+fmt.Sprintf(f, arg)+")", fn+"("+fmt.Sprintf(f, arg)+") keep_metric_names",
				fn+"("+fmt.Sprintf(f, "rate(requests_total)")+")")
		}
	}
	aggrArgs := map[string]string{
		"topk": "2, %s", "bottomk": "2, %s", "outliersk": "2, %s", "quantile": "0.3, %s",
		"quantiles": `"phi", 0.1, 0.5, 0.9, %s`, "count_values": `"v", round(%s)`, "outliers_mad": "1, %s",
	}
	for _, fn := range metricsqlFuncs(t, "aggr.go") {
		if skip[fn] {
			continue
		}
		f := "%s"
		if a, ok := aggrArgs[fn]; ok {
			f = a
		} else if strings.HasPrefix(fn, "topk_") || strings.HasPrefix(fn, "bottomk_") {
			f = "2, %s"
		}
		add(fn, fn+"("+fmt.Sprintf(f, "temperature")+")", fn+"("+fmt.Sprintf(f, "temperature")+") by (job)",
			fn+"("+fmt.Sprintf(f, "rate(requests_total)")+") by (instance)",
			// NB: limit 3 of the three jobs: VictoriaMetrics keeps the
			// first groups it meets, in no promised order, so a limit
			// below the groups' count would compare a random pick.
			fn+"("+fmt.Sprintf(f, "temperature")+") by (job) limit 3")
	}
	// MetricsQL's own syntax.
	add("default", `sum(rate(nonexistent_total[5m])) default 0`, `(temperature > 1000) default 0`,
		`temperature{instance="i3"} default 42`, `sum(rate(requests_total[5m])) by (job) default 0`,
		`(temperature > 50) default temperature`, `nonexistent default 1`)
	add("if", `temperature if temperature > 50`, `temperature if 1`, `sum(temperature) by (job) if sum(temperature) by (job) > 200`)
	add("ifnot", `temperature ifnot temperature > 50`, `temperature ifnot nonexistent`)
	add("keep_metric_names", `rate(requests_total[5m]) keep_metric_names`, `abs(temperature - 50) keep_metric_names`,
		`ln(temperature) keep_metric_names`, `round(temperature) keep_metric_names`)
	add("with", `WITH (r = rate(requests_total[5m])) sum(r) by (job)`, `WITH (f(x) = x * 2) f(temperature)`,
		`WITH (sel = {job="api"}) temperature{sel} + 1`, `WITH (t = temperature, lim = 50) t > lim`)
	add("window", `rate(requests_total[1i])`, `increase(requests_total[3i])`, `avg_over_time(temperature[5i])`,
		`rate(requests_total)`, `increase(requests_total)`, `irate(requests_total)`, `max_over_time(temperature)`,
		`sum(rate(requests_total)) by (job)`, `deriv(temperature)`, `changes(temperature)`,
		`rate(requests_total[5m:])`, `max_over_time(temperature[1h:])`)
	add("offset", `sum(temperature) offset 5m`, `rate(requests_total) offset 10m`, `sum(rate(requests_total[5m])) by (job) offset 1h`)
	add("number", `temperature > 50Ki / 1024`, `temperature * 1e0 + 1m`)
	return out
}

// metricsqlFuncs lists the functions one of metricsql's tables declares
// (rollup.go, transform.go, aggr.go), read from the module cache: the
// package keeps them unexported.
func metricsqlFuncs(t *testing.T, file string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/VictoriaMetrics/metricsql").Output()
	require.NoError(t, err, "go list -m metricsql")
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), file))
	require.NoError(t, err)
	var names []string
	for _, m := range funcEntry.FindAllStringSubmatch(string(src), -1) {
		names = append(names, m[1])
	}
	require.NotEmpty(t, names, "no functions found in metricsql's %s", file)
	return names
}

var funcEntry = regexp.MustCompile(`(?m)^\s*"([a-z0-9_]*)":\s*true`)

type outcomeKind int

const (
	same outcomeKind = iota
	differ
	oursOnly
	theirsOnly
)

type outcome struct {
	kind outcomeKind
	why  string
}

type series struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
	Values [][]any           `json:"values"`
}

// compare asks both and tells how their answers relate. Series are
// compared as sets (sorted by labels), values with a relative tolerance
// (VictoriaMetrics stores floats as decimals).
func compare(c *http.Client, ours, theirs, path string, params url.Values) outcome {
	a, err := apptest.PostAPI(c, ours, path, params)
	if err != nil {
		return outcome{differ, "tsdb: " + err.Error()}
	}
	b, err := apptest.PostAPI(c, theirs, path, params)
	if err != nil {
		return outcome{differ, "VictoriaMetrics: " + err.Error()}
	}
	switch {
	case a.Status != "success" && b.Status != "success":
		return outcome{same, ""}
	case a.Status != "success":
		return outcome{theirsOnly, "tsdb: " + a.Error}
	case b.Status != "success":
		return outcome{oursOnly, "VictoriaMetrics: " + b.Error}
	}
	x, err := decode(a)
	if err != nil {
		return outcome{differ, "tsdb: " + err.Error()}
	}
	y, err := decode(b)
	if err != nil {
		return outcome{differ, "VictoriaMetrics: " + err.Error()}
	}
	if len(x) != len(y) {
		return outcome{differ, fmt.Sprintf("%d series vs %d (%s vs %s)", len(x), len(y), firstKeys(x), firstKeys(y))}
	}
	for i := range x {
		if x[i].key != y[i].key {
			return outcome{differ, fmt.Sprintf("series %d: {%s} vs {%s}", i, x[i].key, y[i].key)}
		}
		if len(x[i].pts) != len(y[i].pts) {
			return outcome{differ, fmt.Sprintf("{%s}: %d points vs %d", x[i].key, len(x[i].pts), len(y[i].pts))}
		}
		for j := range x[i].pts {
			if !pointEq(x[i].pts[j], y[i].pts[j]) {
				return outcome{differ, fmt.Sprintf("{%s} point %d: %v vs %v", x[i].key, j, x[i].pts[j], y[i].pts[j])}
			}
		}
	}
	return outcome{same, ""}
}

type flat struct {
	key string
	pts [][]any
}

// decode flattens a vector, matrix or scalar into series sorted by labels.
func decode(r apptest.APIResult) ([]flat, error) {
	switch r.Data.ResultType {
	case "scalar", "string":
		var p []any
		if err := json.Unmarshal(r.Data.Result, &p); err != nil {
			return nil, err
		}
		return []flat{{key: "", pts: [][]any{p}}}, nil
	}
	var ss []series
	if err := json.Unmarshal(r.Data.Result, &ss); err != nil {
		return nil, err
	}
	out := make([]flat, 0, len(ss))
	for _, s := range ss {
		ks := make([]string, 0, len(s.Metric))
		for k, v := range s.Metric {
			ks = append(ks, k+"="+v)
		}
		slices.Sort(ks)
		f := flat{key: strings.Join(ks, ",")}
		if s.Value != nil {
			f.pts = [][]any{s.Value}
		} else {
			f.pts = s.Values
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b flat) int { return strings.Compare(a.key, b.key) })
	return out, nil
}

func firstKeys(fs []flat) string {
	var ks []string
	for i := range min(2, len(fs)) {
		ks = append(ks, "{"+fs[i].key+"}")
	}
	return strings.Join(ks, " ")
}

func pointEq(a, b []any) bool {
	if len(a) != 2 || len(b) != 2 {
		return false
	}
	ta, _ := a[0].(float64)
	tb, _ := b[0].(float64)
	if ta != tb {
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
	return math.Abs(fa-fb) <= 1e-9+1e-7*math.Max(math.Abs(fa), math.Abs(fb))
}
