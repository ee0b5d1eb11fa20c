package web

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// testHistogram is {schema:0 count:6 sum:10 z_bucket:1 z_bucket_w:0.001
// buckets:[2 3]}: a zero bucket and the buckets (0.5,1] and (1,2].
func testHistogram() *histogram.FloatHistogram {
	return &histogram.FloatHistogram{
		Schema: 0, Count: 6, Sum: 10, ZeroThreshold: 0.001, ZeroCount: 1,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}},
		PositiveBuckets: []float64{2, 3},
	}
}

// The JSON Prometheus 3.14's jsonutil.MarshalHistogram writes for it.
const testHistogramJSON = `{"count":"6","sum":"10","buckets":[[3,"-0.001","0.001","1"],[0,"0.5","1","2"],[0,"1","2","3"]]}`

func TestHistogramJSON(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	db := st.Open(t, nil)
	end := now.UnixMilli()
	var b storage.Batch
	// A series that holds floats for its first two minutes, then
	// histograms, as a series may in Prometheus.
	ls := labels.FromStrings("__name__", "rpc_duration_seconds", "job", "api")
	b.Add(ls, storage.Sample{T: end - 240_000, V: 1}, storage.Sample{T: end - 180_000, V: 2})
	b.AddHistograms(ls,
		storage.HSample{T: end - 120_000, H: testHistogram()},
		storage.HSample{T: end - 60_000, H: testHistogram()},
		storage.HSample{T: end, H: testHistogram()})
	require.NoError(t, db.Write(context.Background(), "default", &b))
	a := New(Deps{Reader: db, Engine: query.NewEngine(db, nil), Now: func() time.Time { return now }, Version: "test"})

	code, env := call(t, a, "/api/v1/query", false, url.Values{"query": {"rpc_duration_seconds"}, "time": {"1700000000"}})
	require.Equal(t, 200, code, env.Error)
	require.JSONEq(t, `{"resultType":"vector","result":[{"metric":{"__name__":"rpc_duration_seconds","job":"api"},"histogram":[1700000000,`+testHistogramJSON+`]}]}`, string(env.Data))

	code, env = call(t, a, "/api/v1/query_range", false, url.Values{"query": {"rpc_duration_seconds"},
		"start": {"1699999760"}, "end": {"1700000000"}, "step": {"60s"}})
	require.Equal(t, 200, code, env.Error)
	require.JSONEq(t, `{"resultType":"matrix","result":[{"metric":{"__name__":"rpc_duration_seconds","job":"api"},`+
		`"values":[[1699999760,"1"],[1699999820,"2"]],`+
		`"histograms":[[1699999880,`+testHistogramJSON+`],[1699999940,`+testHistogramJSON+`],[1700000000,`+testHistogramJSON+`]]}]}`, string(env.Data))

	// What Grafana's heatmap asks: the rate of the histograms.
	code, env = call(t, a, "/api/v1/query", false, url.Values{"query": {"histogram_count(rate(rpc_duration_seconds[2m]))"}, "time": {"1700000000"}})
	require.Equal(t, 200, code, env.Error)
	require.JSONEq(t, `{"resultType":"vector","result":[{"metric":{"job":"api"},"value":[1700000000,"0"]}]}`, string(env.Data))
}

func TestHistogramJSONValues(t *testing.T) {
	f := func(v float64, want string) {
		t.Helper()
		require.Equal(t, want, string(appendValue(nil, v)))
	}
	// As Prometheus's jsonutil.MarshalFloat.
	f(1, `"1"`)
	f(0.5, `"0.5"`)
	f(1e-7, `"1e-07"`)
	f(1e21, `"1e+21"`)
	f(123456789, `"123456789"`)
	f(0, `"0"`)

	h := &histogram.FloatHistogram{
		Schema: -53, Count: 5, Sum: 12, CustomValues: []float64{1, 5},
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 3}},
		PositiveBuckets: []float64{1, 0, 4},
	}
	// Custom buckets: [-Inf,1] (the first includes -Inf), (1,5] (empty, left
	// out), (5,+Inf].
	require.JSONEq(t, `{"count":"5","sum":"12","buckets":[[3,"-Inf","1","1"],[0,"5","+Inf","4"]]}`, string(appendHistogram(nil, h)))
	require.JSONEq(t, `{"count":"0","sum":"0"}`, string(appendHistogram(nil, &histogram.FloatHistogram{})))
}
