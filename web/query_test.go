package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// newTestAPI serves a DB holding two series of up and one counter, with a
// sample every 15 s for 10 minutes ending at now.
func newTestAPI(t testing.TB, now time.Time) *API {
	db := st.Open(t, nil)
	end := now.UnixMilli()
	var b storage.Batch
	for i, inst := range []string{"a", "b"} {
		var up, reqs []storage.Sample
		for ts := end - 600_000; ts <= end; ts += 15_000 {
			up = append(up, storage.Sample{T: ts, V: 1})
			reqs = append(reqs, storage.Sample{T: ts, V: float64((ts-end+600_000)/1000) * float64(i+1)})
		}
		b.Add(labels.FromStrings("__name__", "up", "job", "node", "instance", inst), up...)
		b.Add(labels.FromStrings("__name__", "http_requests_total", "job", "api", "instance", inst), reqs...)
	}
	require.NoError(t, db.Write(context.Background(), "default", &b))
	eng := query.NewEngine(db, nil)
	return New(Deps{Reader: db, Engine: eng, Now: func() time.Time { return now }, Version: "test"})
}

type envelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

// call requests path on a GET (or form POST when post) with params.
func call(t *testing.T, a *API, path string, post bool, params url.Values) (int, envelope) {
	t.Helper()
	var ctx fasthttp.RequestCtx
	if post {
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.Header.SetContentType("application/x-www-form-urlencoded")
		ctx.Request.SetBodyString(params.Encode())
		ctx.Request.SetRequestURI(path)
	} else {
		ctx.Request.Header.SetMethod("GET")
		ctx.Request.SetRequestURI(path + "?" + params.Encode())
	}
	a.Handler(&ctx)
	var env envelope
	require.NoError(t, json.Unmarshal(ctx.Response.Body(), &env), string(ctx.Response.Body()))
	require.Equal(t, "application/json", string(ctx.Response.Header.ContentType()))
	return ctx.Response.StatusCode(), env
}

func TestQueryShapesGrafanaReads(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a := newTestAPI(t, now)

	// Grafana's health check, as a form POST.
	code, env := call(t, a, "/api/v1/query", true, url.Values{"query": {"1+1"}, "time": {"1700000000"}})
	require.Equal(t, 200, code)
	require.Equal(t, "success", env.Status)
	require.JSONEq(t, `{"resultType":"scalar","result":[1700000000,"2"]}`, string(env.Data))

	code, env = call(t, a, "/api/v1/query", false, url.Values{"query": {`sum by (job) (rate(http_requests_total[5m]))`}, "time": {"1700000000"}})
	require.Equal(t, 200, code)
	var vec struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(env.Data, &vec))
	require.Equal(t, "vector", vec.ResultType)
	require.Len(t, vec.Result, 1)
	require.Equal(t, map[string]string{"job": "api"}, vec.Result[0].Metric)
	require.Equal(t, 1700000000.0, vec.Result[0].Value[0])
	v, err := strconv.ParseFloat(vec.Result[0].Value[1].(string), 64)
	require.NoError(t, err)
	require.InDelta(t, 3, v, 1e-9, "1/s + 2/s")

	code, env = call(t, a, "/api/v1/query_range", false, url.Values{"query": {`up{instance="a"}`},
		"start": {"1699999880"}, "end": {"1700000000"}, "step": {"60s"}})
	require.Equal(t, 200, code)
	var mat struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(env.Data, &mat))
	require.Equal(t, "matrix", mat.ResultType)
	require.Len(t, mat.Result, 1)
	require.Len(t, mat.Result[0].Values, 3)
	require.Equal(t, []any{1699999880.0, "1"}, mat.Result[0].Values[0][:])

	code, env = call(t, a, "/api/v1/query", false, url.Values{"query": {`"text"`}, "time": {"1700000000"}})
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"resultType":"string","result":[1700000000,"text"]}`, string(env.Data))
}

func TestQueryErrors(t *testing.T) {
	a := newTestAPI(t, time.Unix(1_700_000_000, 0))
	for _, tc := range []struct {
		path   string
		params url.Values
		code   int
		typ    string
		msg    string
	}{
		{"/api/v1/query", url.Values{"query": {"sum("}}, 400, "bad_data", "invalid parameter \"query\""},
		{"/api/v1/query", url.Values{}, 400, "bad_data", "query must not be empty"},
		{"/api/v1/query", url.Values{"query": {"up"}, "time": {"yesterday"}}, 400, "bad_data", "invalid parameter \"time\""},
		{"/api/v1/query_range", url.Values{"query": {"up"}, "start": {"10"}, "end": {"0"}, "step": {"1"}}, 400, "bad_data", "end timestamp must not be before start time"},
		{"/api/v1/query_range", url.Values{"query": {"up"}, "start": {"0"}, "end": {"100000"}, "step": {"1"}}, 400, "bad_data", "11,000 points"},
		{"/api/v1/query_range", url.Values{"query": {"up"}, "start": {"0"}, "end": {"10"}, "step": {"0"}}, 400, "bad_data", "zero or negative"},
		{"/api/v1/query_range", url.Values{"query": {"up[5m]"}, "start": {"0"}, "end": {"10"}, "step": {"1"}}, 400, "bad_data", "range query"},
		// Two series end up with one label set: an execution error.
		{"/api/v1/query", url.Values{"query": {`label_replace(up, "instance", "x", "instance", ".*")`}, "time": {"1700000000"}}, 422, "execution", "same labelset"},
		{"/api/v1/series", url.Values{}, 400, "bad_data", "no match[] parameter provided"},
		{"/api/v1/series", url.Values{"match[]": {`{job=~".*"}`}}, 400, "bad_data", "non-empty matcher"},
	} {
		code, env := call(t, a, tc.path, false, tc.params)
		require.Equal(t, tc.code, code, "%v: %s", tc.params, env.Error)
		require.Equal(t, "error", env.Status)
		require.Equal(t, tc.typ, env.ErrorType, env.Error)
		require.Contains(t, env.Error, tc.msg)
	}
}

func TestSeriesLabelsValues(t *testing.T) {
	a := newTestAPI(t, time.Unix(1_700_000_000, 0))
	code, env := call(t, a, "/api/v1/series", false, url.Values{"match[]": {"up"}, "limit": {"40000"}})
	require.Equal(t, 200, code)
	require.JSONEq(t, `[{"__name__":"up","instance":"a","job":"node"},{"__name__":"up","instance":"b","job":"node"}]`, string(env.Data))

	code, env = call(t, a, "/api/v1/series", false, url.Values{"match[]": {"up"}, "limit": {"1"}})
	require.Equal(t, 200, code)
	require.Equal(t, []string{"results truncated due to limit"}, env.Warnings)

	code, env = call(t, a, "/api/v1/labels", true, url.Values{"match[]": {"up"}})
	require.Equal(t, 200, code)
	require.JSONEq(t, `["__name__","instance","job"]`, string(env.Data))

	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/api/v1/label/__name__/values?match[]=" + url.QueryEscape(`{job="api"}`))
	a.Handler(&ctx)
	require.JSONEq(t, `{"status":"success","data":["http_requests_total"]}`, string(ctx.Response.Body()))

	code, env = call(t, a, "/api/v1/status/buildinfo", false, nil)
	require.Equal(t, 200, code)
	var bi map[string]any
	require.NoError(t, json.Unmarshal(env.Data, &bi))
	require.Equal(t, "2.53.0", bi["version"], "Prometheus-like, so Grafana uses match[] on label calls")
	require.Equal(t, "true", bi["features"].(map[string]any)["ruler_config_api"], "Grafana enables its ruler")

	code, env = call(t, a, "/api/v1/status/tsdb", false, url.Values{"limit": {"1"}})
	require.Equal(t, 200, code)
	var status struct {
		HeadStats struct {
			NumSeries  int   `json:"numSeries"`
			ChunkCount int   `json:"chunkCount"`
			MinTime    int64 `json:"minTime"`
			MaxTime    int64 `json:"maxTime"`
		} `json:"headStats"`
		ByName []struct {
			Name  string `json:"name"`
			Value int    `json:"value"`
		} `json:"seriesCountByMetricName"`
	}
	require.NoError(t, json.Unmarshal(env.Data, &status))
	require.Equal(t, 4, status.HeadStats.NumSeries)
	require.Equal(t, 4, status.HeadStats.ChunkCount, "one head chunk per series")
	require.Equal(t, int64(1_700_000_000_000-600_000), status.HeadStats.MinTime)
	require.Equal(t, int64(1_700_000_000_000), status.HeadStats.MaxTime)
	require.Len(t, status.ByName, 1)
	require.Equal(t, 2, status.ByName[0].Value)
}

func TestQueryTimeoutParameter(t *testing.T) {
	a := newTestAPI(t, time.Unix(1_700_000_000, 0))
	code, env := call(t, a, "/api/v1/query", false, url.Values{"query": {"up"}, "timeout": {"banana"}})
	require.Equal(t, 400, code)
	require.Contains(t, env.Error, "timeout")
	code, _ = call(t, a, "/api/v1/query", false, url.Values{"query": {"up"}, "timeout": {"5s"}, "time": {fmt.Sprint(1_700_000_000)}})
	require.Equal(t, 200, code)
}

func TestOtherGrafanaEndpoints(t *testing.T) {
	a := newTestAPI(t, time.Unix(1_700_000_000, 0))
	for _, tc := range []struct {
		path string
		want string
	}{
		{"/api/v1/metadata", `{}`},
		{"/api/v1/query_exemplars", `[]`},
	} {
		for _, post := range []bool{false, true} {
			code, env := call(t, a, tc.path, post, url.Values{"query": {"up"}, "start": {"0"}, "end": {"1"}})
			require.Equal(t, 200, code)
			require.Equal(t, "success", env.Status)
			require.JSONEq(t, tc.want, string(env.Data))
		}
	}
	code, env := call(t, a, "/api/v1/format_query", false, url.Values{"query": {"sum(rate(x[5m]))by(job)"}})
	require.Equal(t, 200, code)
	require.JSONEq(t, `"sum(rate(x[5m])) by(job)"`, string(env.Data))
}
