package remotewrite

import (
	"context"
	"math"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// written posts a 2.0 request to h and returns the status and the three
// written-count headers.
func written(t *testing.T, h *Handler, req *writev2.Request) (int, [3]string) {
	t.Helper()
	raw, err := req.Marshal()
	require.NoError(t, err)
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.Header.SetContentType("application/x-protobuf;proto=io.prometheus.write.v2.Request")
	ctx.Request.SetBody(snappy.Encode(nil, raw))
	h.Serve(&ctx)
	hd := &ctx.Response.Header
	return ctx.Response.StatusCode(), [3]string{
		string(hd.Peek("X-Prometheus-Remote-Write-Samples-Written")),
		string(hd.Peek("X-Prometheus-Remote-Write-Histograms-Written")),
		string(hd.Peek("X-Prometheus-Remote-Write-Exemplars-Written")),
	}
}

// The written counts of 2.0 say what storage kept: histograms stored,
// exemplars out of order not; and the exemplars and metadata can be read.
func TestHandlerV2WrittenHeadersTellTheTruth(t *testing.T) {
	db := st.Open(t, nil)
	h := New(db, nil)
	ih, fh, _ := testHistograms()
	syms := writev2.NewSymbolTable()
	series := labels.FromStrings("__name__", "rq_seconds", "job", "a")
	ex := func(trace string, ts int64) writev2.Exemplar {
		return writev2.Exemplar{LabelsRefs: syms.SymbolizeLabels(labels.FromStrings("trace_id", trace), nil), Value: 0.5, Timestamp: ts}
	}
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{
		{
			LabelsRefs: syms.SymbolizeLabels(series, nil),
			Histograms: []writev2.Histogram{writev2.FromIntHistogram(0, 1000, ih), writev2.FromFloatHistogram(0, 2000, fh)},
			Exemplars:  []writev2.Exemplar{ex("abc", 2000)},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM, HelpRef: syms.Symbolize("Request time."), UnitRef: syms.Symbolize("seconds")},
		},
		{
			LabelsRefs: syms.SymbolizeLabels(labels.FromStrings("__name__", "up"), nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: 1000}, {Value: 1, Timestamp: 2000}},
		},
	}}
	req.Symbols = syms.Symbols()
	code, hdr := written(t, h, req)
	require.Equal(t, 204, code)
	require.Equal(t, [3]string{"2", "2", "1"}, hdr)

	// The same again: the exemplar repeats its series' newest and counts,
	// as in Prometheus. One older than it does not.
	code, hdr = written(t, h, req)
	require.Equal(t, 204, code)
	require.Equal(t, [3]string{"2", "2", "1"}, hdr)
	req.Timeseries[0].Exemplars = append(req.Timeseries[0].Exemplars, ex("old", 1500))
	req.Symbols = syms.Symbols()
	code, hdr = written(t, h, req)
	require.Equal(t, 204, code)
	require.Equal(t, [3]string{"2", "2", "1"}, hdr)

	got, err := db.Exemplars(context.Background(), "default", math.MinInt64, math.MaxInt64,
		[][]*labels.Matcher{{labels.MustNewMatcher(labels.MatchEqual, "__name__", "rq_seconds")}})
	require.NoError(t, err)
	require.Equal(t, []storage.SeriesExemplars{{Labels: series, Exemplars: []storage.Exemplar{{Labels: labels.FromStrings("trace_id", "abc"), T: 2000, V: 0.5}}}}, got)
	md, err := db.Metadata("default", "", -1, -1)
	require.NoError(t, err)
	require.Equal(t, []storage.Metadata{{Family: "rq_seconds", Type: "histogram", Unit: "seconds", Help: "Request time."}}, md)

	// Samples older than retention are not written, and not counted (a
	// new store takes both exemplars, in order).
	dbr := st.Open(t, &storage.Options{Retention: 48 * 3600e9})
	code, hdr = written(t, New(dbr, nil), req)
	require.Equal(t, 204, code)
	require.Equal(t, [3]string{"0", "0", "2"}, hdr)
}
