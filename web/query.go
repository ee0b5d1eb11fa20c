package web

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/internal/metering"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
)

// maxPoints is Prometheus's limit of points per series in a range query.
const maxPoints = 11000

// Bounds used when a time parameter is absent, as Prometheus does.
var (
	minTime = time.Unix(math.MinInt64/1000+62135596801, 0).UTC().UnixMilli()
	maxTime = time.Unix(math.MaxInt64/1000-62135596801, 999999999).UTC().UnixMilli()
)

// queries runs the query endpoints: /api/v1/query, query_range, series,
// labels, label values, status/tsdb, format_query and export.
type queries struct {
	r       storage.Reader
	engine  query.Evaluator // uncached
	cached  query.Evaluator // through the range-result cache; engine when off
	now     func() time.Time
	timeout time.Duration
	version string
	slots   chan struct{} // nil: no global bound
	// tenantLimit bounds each tenant's concurrent queries (0: none).
	tenantLimit func(tenant string) int

	runMu   sync.Mutex
	running map[string]int // queries running per tenant
	// meter counts the queries answered per tenant; nil counts nothing.
	meter *metering.Meter
}

// query serves /api/v1/query.
func (a *queries) query(r *Request) (any, error) {
	tenant, err := r.Tenant()
	if err != nil {
		return nil, err
	}
	q := r.Arg("query")
	if q == "" {
		return nil, badData("invalid parameter \"query\": query must not be empty")
	}
	ts, err := parseTime(r.Arg("time"), a.now().UnixMilli())
	if err != nil {
		return nil, badData("invalid parameter \"time\": %v", err)
	}
	return a.run(r, tenant, func(ctx context.Context) (*query.Result, error) {
		return a.engine.Instant(ctx, tenant, q, ts)
	})
}

// queryRange serves /api/v1/query_range.
func (a *queries) queryRange(r *Request) (any, error) {
	tenant, err := r.Tenant()
	if err != nil {
		return nil, err
	}
	q := r.Arg("query")
	if q == "" {
		return nil, badData("invalid parameter \"query\": query must not be empty")
	}
	start, err := parseTime(r.Arg("start"), 0)
	if err != nil || r.Arg("start") == "" {
		return nil, badData("invalid parameter \"start\": cannot parse %q to a valid timestamp", r.Arg("start"))
	}
	end, err := parseTime(r.Arg("end"), 0)
	if err != nil || r.Arg("end") == "" {
		return nil, badData("invalid parameter \"end\": cannot parse %q to a valid timestamp", r.Arg("end"))
	}
	if end < start {
		return nil, badData("invalid parameter \"end\": end timestamp must not be before start time")
	}
	step, err := parseDuration(r.Arg("step"))
	if err != nil {
		return nil, badData("invalid parameter \"step\": %v", err)
	}
	if step <= 0 {
		return nil, badData("invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer")
	}
	if (end-start)/step >= maxPoints {
		return nil, badData("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")
	}
	eng := a.cached
	if o, _ := readOptions(r); r.Arg("nocache") == "1" || o.Partial || o.Strong {
		eng = a.engine // a partial answer is not kept; a strong read is fresh
	}
	return a.run(r, tenant, func(ctx context.Context) (*query.Result, error) {
		return eng.Range(ctx, tenant, q, start, end, step)
	})
}

// run evaluates a query under the request's timeout and a query slot.
func (a *queries) run(r *Request, tenant string, eval func(context.Context) (*query.Result, error)) (any, error) {
	ctx, cancel, err := a.queryContext(r)
	if err != nil {
		return nil, err
	}
	defer cancel()
	ro, err := readOptions(r)
	if err != nil {
		return nil, err
	}
	ctx = storage.WithReadOptions(ctx, ro)
	release, err := a.acquire(ctx, tenant)
	if err != nil {
		return nil, err
	}
	defer release()
	res, err := eval(ctx)
	if err != nil {
		if clientGone(ctx) {
			return nil, &apiError{typ: errCanceled, err: fmt.Errorf("query canceled: %w", errClientGone)}
		}
		return nil, err
	}
	a.meter.Add(tenant, metering.Queries, 1)
	// Which downsampling tier answered (docs/retention.md), and how much
	// was read for it.
	hd := &r.Ctx.Response.Header
	hd.Set("X-Tsdb-Tier", res.Tier)
	hd.Set("X-Tsdb-Samples-Read", strconv.FormatInt(res.SamplesRead, 10))
	return annotated{data: resultJSON{res}, warnings: append(ro.Warnings(), res.Warnings...), infos: res.Infos}, nil
}

// readOptions reads what a request asks of a read across a cluster
// (docs/cluster.md): partial_response=true accepts an answer without the
// partitions no node can serve, with a warning naming them (as Thanos
// and VictoriaMetrics); read_consistency=strong, or the header
// X-Read-Consistency: strong (Mimir's), waits until the data of every
// write acknowledged before the request is readable. A single node
// ignores both.
func readOptions(r *Request) (*storage.ReadOptions, error) {
	o := &storage.ReadOptions{}
	switch p := r.Arg("partial_response"); p {
	case "", "false", "0":
	case "true", "1":
		o.Partial = true
	default:
		return o, badData("invalid parameter \"partial_response\": %q is not true or false", p)
	}
	c := r.Arg("read_consistency")
	if c == "" {
		c = r.Header("X-Read-Consistency")
	}
	switch c {
	case "", "eventual":
	case "strong":
		o.Strong = true
	default:
		return o, badData("invalid parameter \"read_consistency\": %q is not strong or eventual", c)
	}
	return o, nil
}

// queryContext applies the timeout parameter, capped by the server's.
func (a *queries) queryContext(r *Request) (context.Context, func(), error) {
	timeout := a.timeout
	if t := r.Arg("timeout"); t != "" {
		d, err := parseDuration(t)
		if err != nil || d <= 0 {
			return nil, nil, badData("invalid parameter \"timeout\": cannot parse %q to a valid duration", t)
		}
		if td := time.Duration(d) * time.Millisecond; timeout == 0 || td < timeout {
			timeout = td
		}
	}
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	c, cancel := requestContext(r, timeout)
	return c, cancel, nil
}

// acquire takes a query slot, waiting while all are busy; a tenant at its
// own concurrency limit is refused at once (429), so that one tenant's
// dashboards cannot queue out the others.
func (a *queries) acquire(ctx context.Context, tenant string) (func(), error) {
	release := func() {}
	if a.tenantLimit != nil {
		if limit := a.tenantLimit(tenant); limit > 0 {
			a.runMu.Lock()
			if a.running[tenant] >= limit {
				a.runMu.Unlock()
				return nil, &apiError{typ: errTooMany, err: fmt.Errorf("tenant %s already runs %d queries, its limit (max_query_concurrency); retry shortly", tenant, limit)}
			}
			a.running[tenant]++
			a.runMu.Unlock()
			release = func() {
				a.runMu.Lock()
				a.running[tenant]--
				a.runMu.Unlock()
			}
		}
	}
	if a.slots == nil {
		return release, nil
	}
	select {
	case a.slots <- struct{}{}:
		return func() { <-a.slots; release() }, nil
	case <-ctx.Done():
		release()
		return nil, &apiError{typ: errTimeout, err: errors.New("query timed out waiting for a free query slot (too many concurrent queries)")}
	}
}

// parseTime parses a Prometheus API time: RFC 3339 or Unix seconds with
// an optional fraction. It returns milliseconds.
func parseTime(s string, def int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || f*1000 < float64(minTime) || f*1000 > float64(maxTime) {
			return 0, badData("time %q is out of range", s)
		}
		return int64(math.Round(f * 1000)), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixMilli(), nil
	}
	return 0, badData("cannot parse %q to a valid timestamp", s)
}

// parseDuration parses a step or timeout: a float of seconds or a
// Prometheus duration. It returns milliseconds.
func parseDuration(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("missing duration")
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f*1000 > math.MaxInt64/2 {
			return 0, errors.New("duration out of range")
		}
		return int64(math.Round(f * 1000)), nil
	}
	d, err := query.ParseDuration(s)
	if err != nil {
		return 0, errors.New("cannot parse " + strconv.Quote(s) + " to a valid duration")
	}
	return d, nil
}

// timeRange reads start and end.
func timeRange(r *Request) (int64, int64, error) {
	start, err := parseTime(r.Arg("start"), minTime)
	if err != nil {
		return 0, 0, badData("invalid parameter \"start\": %v", err)
	}
	end, err := parseTime(r.Arg("end"), maxTime)
	if err != nil {
		return 0, 0, badData("invalid parameter \"end\": %v", err)
	}
	if end < start {
		return 0, 0, badData("invalid parameter \"end\": end timestamp must not be before start time")
	}
	return start, end, nil
}

// matchers reads the match[] parameters; at least one is required.
func matchers(r *Request) ([][]*labels.Matcher, error) {
	raw := r.Args("match[]")
	if len(raw) == 0 {
		return nil, badData("no match[] parameter provided")
	}
	var out [][]*labels.Matcher
	for _, s := range raw {
		sets, err := query.ParseSelector(s)
		if err != nil {
			return nil, err
		}
		out = append(out, sets...)
	}
	return out, nil
}

// resultJSON is a query result in Prometheus's shape.
type resultJSON struct{ res *query.Result }

func appendTime(b []byte, t int64) []byte {
	// NB: below 10^15 ms, the shortest decimal of float64(t)/1000 is t's
	// own digits with the point three places in: it has at most 15
	// significant digits, which a float64 keeps apart, and any shorter
	// decimal is at least 0.001 away. Formatting the integer is several
	// times cheaper, and a range query's answer is mostly timestamps.
	const limit = 1_000_000_000_000_000
	if t <= -limit || t >= limit {
		return strconv.AppendFloat(b, float64(t)/1000, 'f', -1, 64)
	}
	if t < 0 {
		b = append(b, '-')
		t = -t
	}
	b = strconv.AppendInt(b, t/1000, 10)
	if ms := t % 1000; ms != 0 {
		b = append(b, '.', byte('0'+ms/100))
		if ms%100 != 0 {
			b = append(b, byte('0'+ms/10%10))
			if ms%10 != 0 {
				b = append(b, byte('0'+ms%10))
			}
		}
	}
	return b
}

// appendValue appends a sample value as a JSON string, as Prometheus's
// jsonutil.MarshalFloat does: exponent notation below 1e-6 and from 1e21.
func appendValue(b []byte, v float64) []byte {
	b = append(b, '"')
	switch {
	case math.IsNaN(v):
		b = append(b, "NaN"...)
	case math.IsInf(v, 1):
		b = append(b, "+Inf"...)
	case math.IsInf(v, -1):
		b = append(b, "-Inf"...)
	case v == math.Trunc(v) && math.Abs(v) < 1<<53 && (v != 0 || !math.Signbit(v)):
		// An integer (a counter, a count): its digits, as 'f' prints
		// them, without the float formatting.
		b = strconv.AppendInt(b, int64(v), 10)
	case isShortDecimal(v):
		b = appendShortDecimal(b, v)
	default:
		format := byte('f')
		if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
			format = 'e'
		}
		b = strconv.AppendFloat(b, v, format, -1, 64)
	}
	return append(b, '"')
}

// A short decimal is a value under 2^30 that is a decimal of at most six
// fractional digits — a gauge as exporters write it (a load average of
// 2.47, a temperature of 36.6): its shortest decimal, which strconv finds
// with the general algorithm, is then those digits.
//
// NB: why one multiplication decides it. Below 2^30 a float64's spacing is
// at most 2^-23, under a quarter of 10^-6, so at most one decimal of six
// fractional digits rounds to v, and every shorter decimal is one of
// those; and v·10^6 stays under 2^50, where the rounding of the product
// (at most 1/16) cannot move the nearest integer n. So if n/10^6 — a
// division of two exact float64s, rounded once, as parsing the decimal
// rounds it — gives v back, n/10^6 is v's shortest decimal once its
// trailing zeros are dropped; if not, no decimal of six digits is.
const shortDecimalScale = 1e6

func isShortDecimal(v float64) bool {
	a := math.Abs(v)
	return a < 1<<30 && a != math.Trunc(a) && math.Round(a*shortDecimalScale)/shortDecimalScale == a
}

// appendShortDecimal appends v's shortest decimal; v is a short decimal
// (so not an integer: its fraction has a digit that is not zero).
func appendShortDecimal(b []byte, v float64) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	n := uint64(math.Round(v * shortDecimalScale))
	b = strconv.AppendUint(b, n/shortDecimalScale, 10)
	frac, digits := n%shortDecimalScale, 6
	for frac%10 == 0 {
		frac /= 10
		digits--
	}
	b = append(b, '.')
	for d := digits - 1; d >= 0; d-- {
		b = append(b, '0')
	}
	for i := len(b) - 1; frac > 0; i-- {
		b[i] = byte('0' + frac%10)
		frac /= 10
	}
	return b
}

func appendPoint(b []byte, p query.Point) []byte {
	b = append(b, '[')
	b = appendTime(b, p.T)
	b = append(b, ',')
	b = appendValue(b, p.F)
	return append(b, ']')
}

func (x resultJSON) AppendJSON(b []byte) []byte {
	res := x.res
	b = append(b, `{"resultType":"`...)
	b = append(b, res.Type...)
	b = append(b, `","result":`...)
	switch res.Type {
	case query.ValueScalar:
		b = appendPoint(b, res.Scalar)
	case query.ValueString:
		b = append(b, '[')
		b = appendTime(b, res.Scalar.T)
		b = append(b, ',')
		b = appendJSONString(b, res.String)
		b = append(b, ']')
	case query.ValueVector:
		b = append(b, '[')
		for i, s := range res.Series {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"metric":`...)
			b = appendLabelsJSON(b, s.Metric)
			if h := s.H(0); h != nil {
				b = append(b, `,"histogram":`...)
				b = appendHistogramPoint(b, s.Points[0].T, h)
			} else {
				b = append(b, `,"value":`...)
				b = appendPoint(b, s.Points[0])
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	case query.ValueMatrix:
		times := newStepTimes(res.Series)
		b = append(b, '[')
		for i, s := range res.Series {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"metric":`...)
			b = appendLabelsJSON(b, s.Metric)
			b = appendSeriesPoints(b, &s, times)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if res.Tier != "" && res.Tier != "raw" {
		// Only when a tier answered: raw answers stay byte for byte
		// Prometheus's.
		b = append(b, `,"tier":`...)
		b = appendJSONString(b, res.Tier)
	}
	return append(b, '}')
}

// listParams are the parameters of series, labels and label values.
type listParams struct {
	tenant     string
	sets       [][]*labels.Matcher
	start, end int64
	limit      int
}

// readListParams reads tenant, match[] (required for series), start, end
// and limit.
func readListParams(r *Request, needMatch bool) (*listParams, error) {
	p := &listParams{}
	var err error
	if p.tenant, err = r.Tenant(); err != nil {
		return nil, err
	}
	if needMatch || len(r.Args("match[]")) > 0 {
		if p.sets, err = matchers(r); err != nil {
			return nil, err
		}
	}
	if p.start, p.end, err = timeRange(r); err != nil {
		return nil, err
	}
	if l := r.Arg("limit"); l != "" {
		if p.limit, err = strconv.Atoi(l); err != nil || p.limit < 0 {
			return nil, badData("invalid parameter \"limit\": cannot parse %q to a non-negative integer", l)
		}
	}
	if len(p.sets) == 0 {
		p.sets = [][]*labels.Matcher{nil}
	}
	return p, nil
}

// truncated is a list cut to the client's limit, with Prometheus's
// warning when it was.
func truncated[T any](list []T, limit int, data func([]T) any) any {
	if limit > 0 && len(list) > limit {
		return annotated{data: data(list[:limit]), warnings: []string{"results truncated due to limit"}}
	}
	return data(list)
}

// seriesJSON is a list of label sets.
type seriesJSON []labels.Labels

func (s seriesJSON) AppendJSON(b []byte) []byte {
	b = append(b, '[')
	for i, ls := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendLabelsJSON(b, ls)
	}
	return append(b, ']')
}

// stringsJSON is a list of strings.
type stringsJSON []string

func (s stringsJSON) AppendJSON(b []byte) []byte {
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, v)
	}
	return append(b, ']')
}

// withQuerier reads the listing parameters (match[] required when
// needMatch) and calls f with a querier over their tenant and range,
// under the query timeout.
func (a *queries) withQuerier(r *Request, needMatch bool, f func(context.Context, storage.Querier, *listParams) (any, error)) (any, error) {
	p, err := readListParams(r, needMatch)
	if err != nil {
		return nil, err
	}
	ro, err := readOptions(r)
	if err != nil {
		return nil, err
	}
	c, cancel := requestContext(r, a.timeout)
	defer cancel()
	c = storage.WithReadOptions(c, ro)
	q, err := a.r.Querier(c, p.tenant, p.start, p.end)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	res, err := f(c, q, p)
	if w := ro.Warnings(); err == nil && len(w) > 0 {
		return annotated{data: res, warnings: w}, nil
	}
	return res, err
}

// series serves /api/v1/series.
func (a *queries) series(r *Request) (any, error) {
	return a.withQuerier(r, true, a.seriesOf)
}

func (a *queries) seriesOf(c context.Context, q storage.Querier, p *listParams) (any, error) {
	var list []labels.Labels
	seen := map[string]bool{}
	for _, set := range p.sets {
		ss := q.Select(c, &storage.SelectHints{Start: p.start, End: p.end}, set...)
		for ss.Next() {
			ls := ss.At().Labels()
			k := ls.String()
			if seen[k] {
				continue
			}
			seen[k] = true
			list = append(list, ls)
		}
		if err := ss.Err(); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(list, labels.Compare)
	return truncated(list, p.limit, func(l []labels.Labels) any { return seriesJSON(l) }), nil
}

// labelNames serves /api/v1/labels.
func (a *queries) labelNames(r *Request) (any, error) {
	return a.listStrings(r, func(ctx context.Context, q storage.Querier, ms []*labels.Matcher) ([]string, error) {
		return q.LabelNames(ctx, ms...)
	})
}

// labelValues serves /api/v1/label/{name}/values.
func (a *queries) labelValues(r *Request) (any, error) {
	name := r.Param("name")
	if name == "" || !utf8.ValidString(name) {
		return nil, badData("invalid label name: %q", name)
	}
	return a.listStrings(r, func(ctx context.Context, q storage.Querier, ms []*labels.Matcher) ([]string, error) {
		return q.LabelValues(ctx, name, ms...)
	})
}

// listStrings answers the union of list over the request's match[] sets,
// sorted, without duplicates, cut to its limit.
func (a *queries) listStrings(r *Request, list func(context.Context, storage.Querier, []*labels.Matcher) ([]string, error)) (any, error) {
	return a.withQuerier(r, false, func(c context.Context, q storage.Querier, p *listParams) (any, error) {
		var out []string
		for _, set := range p.sets {
			v, err := list(c, q, set)
			if err != nil {
				return nil, err
			}
			out = append(out, v...)
		}
		return sortedStrings(out, p.limit), nil
	})
}

func sortedStrings(vals []string, limit int) any {
	sort.Strings(vals)
	vals = slices.Compact(vals)
	return truncated(vals, limit, func(l []string) any { return stringsJSON(l) })
}

// buildInfo serves /api/v1/status/buildinfo. The version is
// Prometheus-like so that Grafana uses its newer API calls.
func (a *queries) buildInfo(*Request) (any, error) {
	b := []byte(`{"version":"2.53.0","revision":"tsdb","branch":"main","buildUser":"tsdb","buildDate":"","goVersion":`)
	b = appendJSONString(b, runtime.Version())
	b = append(b, `,"tsdbVersion":`...)
	b = appendJSONString(b, a.version)
	// The ruler config API exists: Grafana then lets operators edit rules.
	b = append(b, `,"features":{"ruler_config_api":"true","alertmanager_config_api":"false","query_sharding":"false","federated_rules":"false"}`...)
	return rawJSON(append(b, '}')), nil
}

// formatQuery serves /api/v1/format_query.
func (a *queries) formatQuery(r *Request) (any, error) {
	e, err := query.Parse(r.Arg("query"))
	if err != nil {
		return nil, err
	}
	return string(e.AppendString(nil)), nil
}

// headStatser is the storage.DB method behind status/tsdb's headStats.
type headStatser interface {
	HeadStats(tenant string) storage.HeadStats
}

// tsdbStatus serves /api/v1/status/tsdb: cardinality by metric name, label
// and label pair (top `limit`, default 10).
func (a *queries) tsdbStatus(r *Request) (any, error) {
	tenant, err := r.Tenant()
	if err != nil {
		return nil, err
	}
	limit := 10
	if l := r.Arg("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit <= 0 {
			return nil, badData("invalid parameter \"limit\": cannot parse %q to a positive integer", l)
		}
	}
	c, cancel := requestContext(r, a.timeout)
	defer cancel()
	q, err := a.r.Querier(c, tenant, minTime, maxTime)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	all, _ := labels.NewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".+")
	byName := map[string]int{}
	byPair := map[string]int{}
	valuesByLabel := map[string]map[string]struct{}{}
	bytesByLabel := map[string]int{}
	n := 0
	ss := q.Select(c, nil, all)
	for ss.Next() {
		n++
		ss.At().Labels().Range(func(l labels.Label) {
			if l.Name == model.MetricNameLabel {
				byName[l.Value]++
			}
			byPair[l.Name+"="+l.Value]++
			vs := valuesByLabel[l.Name]
			if vs == nil {
				vs = map[string]struct{}{}
				valuesByLabel[l.Name] = vs
			}
			if _, ok := vs[l.Value]; !ok {
				vs[l.Value] = struct{}{}
				bytesByLabel[l.Name] += len(l.Value)
			}
		})
	}
	if err := ss.Err(); err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for k, v := range valuesByLabel {
		counts[k] = len(v)
	}
	b := []byte(`{"headStats":{"numSeries":`)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `,"numLabelPairs":`...)
	b = strconv.AppendInt(b, int64(len(byPair)), 10)
	var hs storage.HeadStats
	if h, ok := a.r.(headStatser); ok {
		hs = h.HeadStats(tenant)
	}
	if hs.MinT > hs.MaxT { // no samples
		hs.MinT, hs.MaxT = 0, 0
	}
	b = append(b, `,"chunkCount":`...)
	b = strconv.AppendInt(b, int64(hs.Chunks), 10)
	b = append(b, `,"minTime":`...)
	b = strconv.AppendInt(b, hs.MinT, 10)
	b = append(b, `,"maxTime":`...)
	b = strconv.AppendInt(b, hs.MaxT, 10)
	b = append(b, `},"seriesCountByMetricName":`...)
	b = appendTop(b, byName, limit)
	b = append(b, `,"labelValueCountByLabelName":`...)
	b = appendTop(b, counts, limit)
	b = append(b, `,"memoryInBytesByLabelName":`...)
	b = appendTop(b, bytesByLabel, limit)
	b = append(b, `,"seriesCountByLabelValuePair":`...)
	b = appendTop(b, byPair, limit)
	return rawJSON(append(b, '}')), nil
}

func appendTop(b []byte, m map[string]int, limit int) []byte {
	type kv struct {
		k string
		v int
	}
	list := make([]kv, 0, len(m))
	for k, v := range m {
		list = append(list, kv{k, v})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].v != list[j].v {
			return list[i].v > list[j].v
		}
		return list[i].k < list[j].k
	})
	if len(list) > limit {
		list = list[:limit]
	}
	b = append(b, '[')
	for i, e := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, e.k)
		b = append(b, `,"value":`...)
		b = strconv.AppendInt(b, int64(e.v), 10)
		b = append(b, '}')
	}
	return append(b, ']')
}
