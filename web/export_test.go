package web

import (
	"context"
	"math"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/ingest/jsonl"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// exportAll returns what /api/v1/export answers for every series of db.
func exportAll(t *testing.T, db *storage.DB) string {
	t.Helper()
	a := New(Deps{Reader: db, Engine: query.NewEngine(db, nil), Now: time.Now, Version: "test"})
	q := url.Values{"match[]": {`{__name__!=""}`}, "start": {"0"}, "end": {"100"}}
	code, body := do(a, "GET", "/api/v1/export?"+q.Encode(), "", "")
	require.Equal(t, 200, code, body)
	return body
}

// TestExportHistograms: native histograms are exported in the series'
// line, every field exact, and JSON lines decoded by ingest/jsonl into
// another DB export the same bytes.
func TestExportHistograms(t *testing.T) {
	stale := math.Float64frombits(storage.StaleNaN)
	db := st.Open(t, nil)
	b := storage.Batch{Series: []storage.SeriesSamples{
		{
			Labels:  labels.FromStrings("__name__", "rq", "quote", `say "hi"`),
			Samples: []storage.Sample{{T: 1000, V: 0.25}, {T: 2000, V: stale}},
			Histograms: []storage.HSample{
				{T: 3000, H: &histogram.FloatHistogram{
					CounterResetHint: histogram.CounterReset, Schema: 1, ZeroThreshold: 0.001, ZeroCount: 2, Count: 14, Sum: 18.4,
					PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 2}}, PositiveBuckets: []float64{1, 2, 1, 1},
					NegativeSpans: []histogram.Span{{Offset: -3, Length: 2}}, NegativeBuckets: []float64{3, 4.5},
				}},
				{T: 4000, H: &histogram.FloatHistogram{CounterResetHint: histogram.GaugeType, Count: 0.5, Sum: math.Inf(-1), ZeroCount: 0.5}},
				{T: 5000, H: &histogram.FloatHistogram{
					Schema: histogram.CustomBucketsSchema, Count: 6, Sum: 1e-300,
					PositiveSpans: []histogram.Span{{Offset: 0, Length: 3}}, PositiveBuckets: []float64{1, 3, 2},
					CustomValues: []float64{-0.5, 1, 1e9},
				}},
				{T: 6000, H: &histogram.FloatHistogram{Sum: stale}},
			},
		},
		{Labels: labels.FromStrings("__name__", "only_h"), Histograms: []storage.HSample{{T: 7000, H: &histogram.FloatHistogram{Count: 1, ZeroCount: 1, ZeroThreshold: 1e-128}}}},
	}}
	require.NoError(t, db.Write(context.Background(), "default", &b))
	want := `{"metric":{"__name__":"only_h"},"values":[],"timestamps":[],"histograms":[` +
		`{"schema":0,"zero_threshold":1e-128,"zero_count":1,"count":1,"sum":0,"counter_reset_hint":"unknown"}],"histogram_timestamps":[7000]}` + "\n" +
		`{"metric":{"__name__":"rq","quote":"say \"hi\""},"values":[0.25,"StaleNaN"],"timestamps":[1000,2000],"histograms":[` +
		`{"schema":1,"zero_threshold":0.001,"zero_count":2,"count":14,"sum":18.4,"positive_spans":[{"offset":0,"length":2},{"offset":1,"length":2}],"positive_buckets":[1,2,1,1],"negative_spans":[{"offset":-3,"length":2}],"negative_buckets":[3,4.5],"counter_reset_hint":"reset"},` +
		`{"schema":0,"zero_threshold":0,"zero_count":0.5,"count":0.5,"sum":"-Inf","counter_reset_hint":"gauge"},` +
		`{"schema":-53,"zero_threshold":0,"zero_count":0,"count":6,"sum":1e-300,"positive_spans":[{"offset":0,"length":3}],"positive_buckets":[1,3,2],"custom_values":[-0.5,1,1e+09],"counter_reset_hint":"unknown"},` +
		`{"schema":0,"zero_threshold":0,"zero_count":0,"count":0,"sum":"StaleNaN","counter_reset_hint":"unknown"}` +
		`],"histogram_timestamps":[3000,4000,5000,6000]}` + "\n"
	got := exportAll(t, db)
	require.Equal(t, want, got)

	var back storage.Batch
	var d jsonl.Decoder
	require.NoError(t, d.Decode([]byte(got), &back))
	db2 := st.Open(t, nil)
	require.NoError(t, db2.Write(context.Background(), "default", &back))
	require.Equal(t, want, exportAll(t, db2))
}
