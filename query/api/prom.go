package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/internal/tenancy"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
)

// maxPoints is Prometheus's limit of points per series in a range query.
const maxPoints = 11000

// Engine is what the query endpoints need.
type Engine interface {
	Instant(ctx context.Context, tenant, q string, ts int64) (*query.Result, error)
	Range(ctx context.Context, tenant, q string, start, end, step int64) (*query.Result, error)
	RangeCached(ctx context.Context, rc *query.ResultCache, tenant, q string, start, end, step int64) (*query.Result, error)
}

// Query serves /api/v1/query.
func (a *API) Query(ctx *fasthttp.RequestCtx) {
	tenant, err := tenancy.FromRequest(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	q := arg(ctx, "query")
	if q == "" {
		writeError(ctx, badData("invalid parameter \"query\": query must not be empty"))
		return
	}
	ts, err := parseTime(arg(ctx, "time"), a.opts.Now().UnixMilli())
	if err != nil {
		writeError(ctx, badData("invalid parameter \"time\": %v", err))
		return
	}
	qctx, cancel, err := a.queryContext(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	defer cancel()
	release, err := a.acquire(qctx, tenant)
	if err != nil {
		writeError(ctx, err)
		return
	}
	defer release()
	res, err := a.engine.Instant(qctx, tenant, q, ts)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeResult(ctx, res)
}

// QueryRange serves /api/v1/query_range.
func (a *API) QueryRange(ctx *fasthttp.RequestCtx) {
	tenant, err := tenancy.FromRequest(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	q := arg(ctx, "query")
	if q == "" {
		writeError(ctx, badData("invalid parameter \"query\": query must not be empty"))
		return
	}
	start, err := parseTime(arg(ctx, "start"), 0)
	if err != nil || arg(ctx, "start") == "" {
		writeError(ctx, badData("invalid parameter \"start\": cannot parse %q to a valid timestamp", arg(ctx, "start")))
		return
	}
	end, err := parseTime(arg(ctx, "end"), 0)
	if err != nil || arg(ctx, "end") == "" {
		writeError(ctx, badData("invalid parameter \"end\": cannot parse %q to a valid timestamp", arg(ctx, "end")))
		return
	}
	if end < start {
		writeError(ctx, badData("invalid parameter \"end\": end timestamp must not be before start time"))
		return
	}
	step, err := parseDuration(arg(ctx, "step"))
	if err != nil {
		writeError(ctx, badData("invalid parameter \"step\": %v", err))
		return
	}
	if step <= 0 {
		writeError(ctx, badData("invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"))
		return
	}
	if (end-start)/step >= maxPoints {
		writeError(ctx, badData("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"))
		return
	}
	qctx, cancel, err := a.queryContext(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	defer cancel()
	release, err := a.acquire(qctx, tenant)
	if err != nil {
		writeError(ctx, err)
		return
	}
	defer release()
	rc := a.opts.Cache
	if arg(ctx, "nocache") == "1" {
		rc = nil
	}
	res, err := a.engine.RangeCached(qctx, rc, tenant, q, start, end, step)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeResult(ctx, res)
}

// queryContext applies the timeout parameter, capped by the server's.
func (a *API) queryContext(ctx *fasthttp.RequestCtx) (context.Context, func(), error) {
	timeout := a.opts.QueryTimeout
	if t := arg(ctx, "timeout"); t != "" {
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
	// Not ctx: a fasthttp RequestCtx outside a server cannot be a parent.
	c, cancel := context.WithTimeout(context.Background(), timeout)
	return c, cancel, nil
}

// acquire takes a query slot, waiting while all are busy; a tenant at its
// own concurrency limit is refused at once (429), so that one tenant's
// dashboards cannot queue out the others.
func (a *API) acquire(ctx context.Context, tenant string) (func(), error) {
	release := func() {}
	if a.opts.TenantQueryLimit != nil {
		if limit := a.opts.TenantQueryLimit(tenant); limit > 0 {
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

// appendTime appends a timestamp as Prometheus does: seconds, up to
// millisecond precision.
func appendTime(b []byte, t int64) []byte {
	return strconv.AppendFloat(b, float64(t)/1000, 'f', -1, 64)
}

// appendValue appends a sample value as a JSON string, as Prometheus does.
func appendValue(b []byte, v float64) []byte {
	b = append(b, '"')
	switch {
	case math.IsNaN(v):
		b = append(b, "NaN"...)
	case math.IsInf(v, 1):
		b = append(b, "+Inf"...)
	case math.IsInf(v, -1):
		b = append(b, "-Inf"...)
	default:
		b = strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	return append(b, '"')
}

func appendPoint(b []byte, p query.Point) []byte {
	b = append(b, '[')
	b = appendTime(b, p.T)
	b = append(b, ',')
	b = appendValue(b, p.F)
	return append(b, ']')
}

// writeResult answers with a query result in Prometheus's shape.
func writeResult(ctx *fasthttp.RequestCtx, res *query.Result) {
	b := []byte(`{"status":"success","data":{"resultType":"`)
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
			b = append(b, `,"value":`...)
			b = appendPoint(b, s.Points[0])
			b = append(b, '}')
		}
		b = append(b, ']')
	case query.ValueMatrix:
		b = append(b, '[')
		for i, s := range res.Series {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"metric":`...)
			b = appendLabelsJSON(b, s.Metric)
			b = append(b, `,"values":[`...)
			for j, p := range s.Points {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendPoint(b, p)
			}
			b = append(b, "]}"...)
		}
		b = append(b, ']')
	}
	b = append(b, '}')
	for _, ann := range []struct {
		name string
		list []string
	}{{"warnings", res.Warnings}, {"infos", res.Infos}} {
		if len(ann.list) == 0 {
			continue
		}
		b = append(b, `,"`+ann.name+`":[`...)
		for i, w := range ann.list {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, w)
		}
		b = append(b, ']')
	}
	b = append(b, "}\n"...)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// Series serves /api/v1/series.
func (a *API) Series(ctx *fasthttp.RequestCtx) {
	tenant, sets, start, end, limit, ok := a.listParams(ctx, true)
	if !ok {
		return
	}
	c, cancel := context.WithTimeout(context.Background(), a.opts.QueryTimeout)
	defer cancel()
	q, err := a.r.Querier(c, tenant, start, end)
	if err != nil {
		writeError(ctx, err)
		return
	}
	defer q.Close()
	var list []labels.Labels
	seen := map[string]bool{}
	truncated := false
	for _, set := range sets {
		ss := q.Select(c, &storage.SelectHints{Start: start, End: end}, set...)
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
			writeError(ctx, err)
			return
		}
	}
	slices.SortFunc(list, labels.Compare)
	if limit > 0 && len(list) > limit {
		list, truncated = list[:limit], true
	}
	b := []byte(`{"status":"success","data":[`)
	for i, ls := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendLabelsJSON(b, ls)
	}
	b = append(b, ']')
	if truncated {
		b = append(b, `,"warnings":["results truncated due to limit"]`...)
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, "}\n"...))
}

// Labels serves /api/v1/labels.
func (a *API) Labels(ctx *fasthttp.RequestCtx) {
	tenant, sets, start, end, limit, ok := a.listParams(ctx, false)
	if !ok {
		return
	}
	c, cancel := context.WithTimeout(context.Background(), a.opts.QueryTimeout)
	defer cancel()
	q, err := a.r.Querier(c, tenant, start, end)
	if err != nil {
		writeError(ctx, err)
		return
	}
	defer q.Close()
	var names []string
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	for _, set := range sets {
		n, err := q.LabelNames(c, set...)
		if err != nil {
			writeError(ctx, err)
			return
		}
		names = append(names, n...)
	}
	writeStrings(ctx, names, limit)
}

// LabelValues serves /api/v1/label/<name>/values.
func (a *API) LabelValues(ctx *fasthttp.RequestCtx, name string) {
	if name == "" || !utf8.ValidString(name) {
		writeError(ctx, badData("invalid label name: %q", name))
		return
	}
	tenant, sets, start, end, limit, ok := a.listParams(ctx, false)
	if !ok {
		return
	}
	c, cancel := context.WithTimeout(context.Background(), a.opts.QueryTimeout)
	defer cancel()
	q, err := a.r.Querier(c, tenant, start, end)
	if err != nil {
		writeError(ctx, err)
		return
	}
	defer q.Close()
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	var vals []string
	for _, set := range sets {
		v, err := q.LabelValues(c, name, set...)
		if err != nil {
			writeError(ctx, err)
			return
		}
		vals = append(vals, v...)
	}
	writeStrings(ctx, vals, limit)
}

func writeStrings(ctx *fasthttp.RequestCtx, vals []string, limit int) {
	sort.Strings(vals)
	vals = slices.Compact(vals)
	truncated := false
	if limit > 0 && len(vals) > limit {
		vals, truncated = vals[:limit], true
	}
	b := []byte(`{"status":"success","data":[`)
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, v)
	}
	b = append(b, ']')
	if truncated {
		b = append(b, `,"warnings":["results truncated due to limit"]`...)
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, "}\n"...))
}

// listParams reads tenant, match[] (required for series), start, end and
// limit, answering the error itself.
func (a *API) listParams(ctx *fasthttp.RequestCtx, needMatch bool) (string, [][]*labels.Matcher, int64, int64, int, bool) {
	tenant, err := tenancy.FromRequest(ctx)
	if err != nil {
		writeError(ctx, err)
		return "", nil, 0, 0, 0, false
	}
	var sets [][]*labels.Matcher
	if needMatch || len(args(ctx)("match[]")) > 0 {
		if sets, err = matchers(ctx); err != nil {
			writeError(ctx, err)
			return "", nil, 0, 0, 0, false
		}
	}
	start, end, err := timeRange(ctx)
	if err != nil {
		writeError(ctx, err)
		return "", nil, 0, 0, 0, false
	}
	limit := 0
	if l := arg(ctx, "limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 0 {
			writeError(ctx, badData("invalid parameter \"limit\": cannot parse %q to a non-negative integer", l))
			return "", nil, 0, 0, 0, false
		}
	}
	return tenant, sets, start, end, limit, true
}

// BuildInfo serves /api/v1/status/buildinfo. The version is
// Prometheus-like so that Grafana uses its newer API calls.
func (a *API) BuildInfo(ctx *fasthttp.RequestCtx) {
	b := []byte(`{"status":"success","data":{"version":"2.53.0","revision":"tsdb","branch":"main","buildUser":"tsdb","buildDate":"","goVersion":`)
	b = appendJSONString(b, runtime.Version())
	b = append(b, `,"tsdbVersion":`...)
	b = appendJSONString(b, a.opts.Version)
	// The ruler config API exists: Grafana then lets operators edit rules.
	b = append(b, `,"features":{"ruler_config_api":"true","alertmanager_config_api":"false","query_sharding":"false","federated_rules":"false"}`...)
	b = append(b, "}}\n"...)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// Metadata serves /api/v1/metadata: metric metadata is not stored yet.
func (a *API) Metadata(ctx *fasthttp.RequestCtx) { writeData(ctx, []byte(`{}`)) }

// QueryExemplars serves /api/v1/query_exemplars: exemplars are not stored.
func (a *API) QueryExemplars(ctx *fasthttp.RequestCtx) { writeData(ctx, []byte(`[]`)) }

// FormatQuery serves /api/v1/format_query.
func (a *API) FormatQuery(ctx *fasthttp.RequestCtx) {
	e, err := query.Parse(arg(ctx, "query"))
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeData(ctx, appendJSONString(nil, string(e.AppendString(nil))))
}

// TSDBStatus serves /api/v1/status/tsdb: cardinality by metric name, label
// and label pair (top `limit`, default 10).
func (a *API) TSDBStatus(ctx *fasthttp.RequestCtx) {
	tenant, err := tenancy.FromRequest(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	limit := 10
	if l := arg(ctx, "limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit <= 0 {
			writeError(ctx, badData("invalid parameter \"limit\": cannot parse %q to a positive integer", l))
			return
		}
	}
	c, cancel := context.WithTimeout(context.Background(), a.opts.QueryTimeout)
	defer cancel()
	q, err := a.r.Querier(c, tenant, minTime, maxTime)
	if err != nil {
		writeError(ctx, err)
		return
	}
	defer q.Close()
	all, _ := labels.NewMatcher(labels.MatchRegexp, labels.MetricName, ".+")
	byName := map[string]int{}
	byPair := map[string]int{}
	valuesByLabel := map[string]map[string]struct{}{}
	bytesByLabel := map[string]int{}
	n := 0
	ss := q.Select(c, nil, all)
	for ss.Next() {
		n++
		ss.At().Labels().Range(func(l labels.Label) {
			if l.Name == labels.MetricName {
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
		writeError(ctx, err)
		return
	}
	counts := map[string]int{}
	for k, v := range valuesByLabel {
		counts[k] = len(v)
	}
	b := []byte(`{"headStats":{"numSeries":`)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `,"numLabelPairs":`...)
	b = strconv.AppendInt(b, int64(len(byPair)), 10)
	b = append(b, `,"chunkCount":0,"minTime":0,"maxTime":0},"seriesCountByMetricName":`...)
	b = appendTop(b, byName, limit)
	b = append(b, `,"labelValueCountByLabelName":`...)
	b = appendTop(b, counts, limit)
	b = append(b, `,"memoryInBytesByLabelName":`...)
	b = appendTop(b, bytesByLabel, limit)
	b = append(b, `,"seriesCountByLabelValuePair":`...)
	b = appendTop(b, byPair, limit)
	b = append(b, '}')
	writeData(ctx, b)
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
