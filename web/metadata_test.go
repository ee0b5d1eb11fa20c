package web

import (
	"context"
	"math"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// newExtrasAPI serves a DB holding metadata and exemplars of tenant
// default and of tenant acme.
func newExtrasAPI(t *testing.T) *API {
	db := st.Open(t, nil)
	b := storage.Batch{Metadata: []storage.Metadata{
		{Family: "http_requests_total", Type: "counter", Help: "Requests served."},
		{Family: "rq_seconds", Type: "histogram", Unit: "seconds", Help: "Request time."},
	}}
	b.Series = []storage.SeriesSamples{
		{
			Labels:  labels.FromStrings("__name__", "http_requests_total", "job", "api"),
			Samples: []storage.Sample{{T: 1_000_000, V: 1}},
			Exemplars: []storage.Exemplar{
				{Labels: labels.FromStrings("trace_id", "abc"), T: 1_000_500, V: 0.5},
				{Labels: labels.FromStrings("trace_id", "def", "span_id", "7"), T: 1_002_000, V: 3},
			},
		},
		{
			Labels:    labels.FromStrings("__name__", "rq_seconds_bucket", "job", "api", "le", "1"),
			Exemplars: []storage.Exemplar{{Labels: labels.FromStrings("trace_id", "xyz"), T: 999_999, V: 0.25}},
		},
	}
	require.NoError(t, db.Write(context.Background(), "default", &b))
	acme := storage.Batch{Metadata: []storage.Metadata{{Family: "acme_only", Type: "gauge"}}}
	require.NoError(t, db.Write(context.Background(), "acme", &acme))
	return New(Deps{Reader: db, Engine: query.NewEngine(db, nil), Now: time.Now, Version: "test"})
}

func TestMetadataAPI(t *testing.T) {
	a := newExtrasAPI(t)
	f := func(params url.Values, want string) {
		t.Helper()
		code, env := call(t, a, "/api/v1/metadata", false, params)
		require.Equal(t, 200, code)
		require.Equal(t, "success", env.Status)
		require.JSONEq(t, want, string(env.Data))
	}
	both := `{"http_requests_total":[{"type":"counter","unit":"","help":"Requests served."}],` +
		`"rq_seconds":[{"type":"histogram","unit":"seconds","help":"Request time."}]}`
	f(url.Values{}, both)
	f(url.Values{"limit": {"-1"}, "limit_per_metric": {"1"}}, both)
	f(url.Values{"limit": {"1"}}, `{"http_requests_total":[{"type":"counter","unit":"","help":"Requests served."}]}`)
	f(url.Values{"limit": {"0"}}, `{}`)
	f(url.Values{"metric": {"rq_seconds"}}, `{"rq_seconds":[{"type":"histogram","unit":"seconds","help":"Request time."}]}`)
	f(url.Values{"metric": {"nope"}}, `{}`)

	code, env := call(t, a, "/api/v1/metadata", false, url.Values{"limit": {"x"}})
	require.Equal(t, 400, code)
	require.Equal(t, "bad_data", env.ErrorType)
	require.Equal(t, "limit must be a number", env.Error)
	code, env = call(t, a, "/api/v1/metadata", false, url.Values{"limit_per_metric": {"1.5"}})
	require.Equal(t, 400, code)
	require.Equal(t, "limit_per_metric must be a number", env.Error)
}

func TestMetadataAPIPerTenant(t *testing.T) {
	a := newExtrasAPI(t)
	code, body := do(a, "GET", "/api/v1/metadata", "acme", "")
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"status":"success","data":{"acme_only":[{"type":"gauge","unit":"","help":""}]}}`, body)
	code, body = do(a, "GET", "/api/v1/query_exemplars?query=http_requests_total", "acme", "")
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"status":"success","data":[]}`, body)
}

func TestQueryExemplarsAPI(t *testing.T) {
	a := newExtrasAPI(t)
	f := func(params url.Values, want string) {
		t.Helper()
		code, env := call(t, a, "/api/v1/query_exemplars", false, params)
		require.Equal(t, 200, code, env.Error)
		require.JSONEq(t, want, string(env.Data))
	}
	rq := `{"seriesLabels":{"__name__":"http_requests_total","job":"api"},"exemplars":[` +
		`{"labels":{"trace_id":"abc"},"value":"0.5","timestamp":1000.5},` +
		`{"labels":{"span_id":"7","trace_id":"def"},"value":"3","timestamp":1002}]}`
	bucket := `{"seriesLabels":{"__name__":"rq_seconds_bucket","job":"api","le":"1"},"exemplars":[` +
		`{"labels":{"trace_id":"xyz"},"value":"0.25","timestamp":999.999}]}`
	f(url.Values{"query": {"http_requests_total"}}, "["+rq+"]")
	// The selectors of an expression, over a range.
	f(url.Values{"query": {`sum(rate(http_requests_total[5m])) / histogram_quantile(0.9, rate(rq_seconds_bucket{job="api"}[5m]))`}, "start": {"999"}, "end": {"1001"}},
		`[{"seriesLabels":{"__name__":"http_requests_total","job":"api"},"exemplars":[{"labels":{"trace_id":"abc"},"value":"0.5","timestamp":1000.5}]},`+bucket+`]`)
	f(url.Values{"query": {`{job="api"}`}, "start": {"1970-01-01T00:16:39Z"}}, "["+rq+","+bucket+"]")
	f(url.Values{"query": {"nothing_here"}}, `[]`)

	bad := func(params url.Values, want string) {
		t.Helper()
		code, env := call(t, a, "/api/v1/query_exemplars", false, params)
		require.Equal(t, 400, code)
		require.Equal(t, "bad_data", env.ErrorType)
		require.Contains(t, env.Error, want)
	}
	bad(url.Values{}, `invalid parameter "query"`)
	bad(url.Values{"query": {"rate(("}}, `invalid parameter "query"`)
	bad(url.Values{"query": {"up"}, "start": {"x"}}, `cannot parse "x"`)
	bad(url.Values{"query": {"up"}, "start": {"10"}, "end": {"5"}}, "end timestamp must not be before start timestamp")
}

func TestPromTimestampAndFloat(t *testing.T) {
	f := func(ms int64, want string) {
		t.Helper()
		require.Equal(t, want, string(appendPromTimestamp(nil, ms)))
	}
	f(1_234_567, "1234.567")
	f(1_234_500, "1234.500")
	f(1_234_005, "1234.005")
	f(1_234_000, "1234")
	f(-1_500, "-1.500")
	require.Equal(t, "0.1", string(appendPromFloat(nil, 0.1)))
	require.Equal(t, "100000000000000000000", string(appendPromFloat(nil, 1e20)))
	require.Equal(t, "+Inf", string(appendPromFloat(nil, math.Inf(1))))
}
