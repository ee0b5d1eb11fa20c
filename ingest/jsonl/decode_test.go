package jsonl

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
)

// body has a float series with every special value, a series with floats
// and histograms of each kind (exponential with both sides, a gauge, custom
// buckets, a stale marker) and an empty line.
const body = `{"metric":{"__name__":"up","job":"a","empty":""},"values":[1,0.25,"NaN","+Inf","-Inf","StaleNaN",-1e300],"timestamps":[1,2,3,4,5,6,7]}

{"metric":{"__name__":"rq_seconds","job":"a"},"values":[5],"timestamps":[500],` +
	`"histograms":[` +
	`{"schema":1,"zero_threshold":0.001,"zero_count":2,"count":14,"sum":18.4,"positive_spans":[{"offset":0,"length":2},{"offset":1,"length":2}],"positive_buckets":[1,2,1,1],"negative_spans":[{"offset":-1,"length":2}],"negative_buckets":[3,4],"counter_reset_hint":"not_reset"},` +
	`{"schema":0,"zero_threshold":0,"zero_count":0.5,"count":3.5,"sum":-2,"positive_spans":[{"offset":-2,"length":2}],"positive_buckets":[1,2],"counter_reset_hint":"gauge"},` +
	`{"schema":-53,"zero_threshold":0,"zero_count":0,"count":6,"sum":7,"positive_spans":[{"offset":0,"length":3}],"positive_buckets":[1,3,2],"custom_values":[0.1,1,10],"counter_reset_hint":"unknown"},` +
	`{"schema":0,"zero_threshold":0,"zero_count":0,"count":0,"sum":"StaleNaN","counter_reset_hint":"reset"}` +
	`],"histogram_timestamps":[1000,2000,3000,4000]}
`

func TestDecode(t *testing.T) {
	var b storage.Batch
	var reserved int64
	d := Decoder{Reserve: func(n int64) error { reserved += n; return nil }}
	require.NoError(t, d.Decode([]byte(body), &b))
	require.Len(t, b.Series, 2)

	up := b.Series[0]
	require.Equal(t, labels.FromStrings("__name__", "up", "job", "a"), up.Labels, "an empty value is no label")
	require.Len(t, up.Samples, 7)
	require.Equal(t, storage.Sample{T: 2, V: 0.25}, up.Samples[1])
	require.True(t, math.IsNaN(up.Samples[2].V) && !storage.IsStaleNaN(up.Samples[2].V))
	require.Equal(t, math.Inf(1), up.Samples[3].V)
	require.Equal(t, math.Inf(-1), up.Samples[4].V)
	require.True(t, storage.IsStaleNaN(up.Samples[5].V), "bit-exact stale marker")
	require.Equal(t, -1e300, up.Samples[6].V)
	require.Empty(t, up.Histograms)

	rq := b.Series[1]
	require.Equal(t, []storage.Sample{{T: 500, V: 5}}, rq.Samples)
	require.Len(t, rq.Histograms, 4)
	require.Equal(t, storage.HSample{T: 1000, H: &histogram.FloatHistogram{
		CounterResetHint: histogram.NotCounterReset, Schema: 1, ZeroThreshold: 0.001, ZeroCount: 2, Count: 14, Sum: 18.4,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 2}},
		PositiveBuckets: []float64{1, 2, 1, 1},
		NegativeSpans:   []histogram.Span{{Offset: -1, Length: 2}},
		NegativeBuckets: []float64{3, 4},
	}}, rq.Histograms[0])
	require.Equal(t, histogram.GaugeType, rq.Histograms[1].H.CounterResetHint)
	require.Nil(t, rq.Histograms[1].H.NegativeSpans)
	require.Equal(t, []float64{0.1, 1, 10}, rq.Histograms[2].H.CustomValues)
	require.Equal(t, int32(histogram.CustomBucketsSchema), rq.Histograms[2].H.Schema)
	require.True(t, storage.IsStaleHistogram(rq.Histograms[3].H))
	require.Equal(t, histogram.CounterReset, rq.Histograms[3].H.CounterResetHint)

	lines := strings.Split(body, "\n")
	require.Equal(t, Cost([]byte(lines[0]))+Cost([]byte(lines[2])), reserved, "every line reserved its cost, the empty one nothing")
}

// A decoder reused for another body carries nothing over from it: a
// histogram without custom_values after one with them has none.
func TestDecoderReuse(t *testing.T) {
	var d Decoder
	var b storage.Batch
	require.NoError(t, d.Decode([]byte(body), &b))
	b.Reset()
	require.NoError(t, d.Decode([]byte(`{"metric":{"__name__":"x"},"histograms":[{"schema":0,"count":1,"zero_count":1}],"histogram_timestamps":[1]}`), &b))
	require.Len(t, b.Series, 1)
	require.Equal(t, &histogram.FloatHistogram{Count: 1, ZeroCount: 1}, b.Series[0].Histograms[0].H)
	require.Empty(t, b.Series[0].Samples)
}

func TestDecodeRejects(t *testing.T) {
	f := func(in string, line int, want string) {
		t.Helper()
		var b storage.Batch
		var d Decoder
		err := d.Decode([]byte(in), &b)
		require.ErrorIs(t, err, ErrMalformed, in)
		var le *LineError
		require.ErrorAs(t, err, &le)
		require.Equal(t, line, le.Line, in)
		require.ErrorContains(t, err, want, in)
	}
	ok := `{"metric":{"__name__":"a"},"values":[1],"timestamps":[1]}` + "\n"
	f(`{"metric":{"__name__":"a"},"values":[1],"timestamps":[1]`, 1, "unexpected EOF")
	f(ok+"\n"+`{"metric":{"__name__":"a"},"values":[1,2],"timestamps":[1]}`, 3, "2 values for 1 timestamps")
	f(ok+`{"metric":{},"values":[1],"timestamps":[1]}`, 2, `no "metric"`)
	f(`{"values":[1],"timestamps":[1]}`, 1, `no "metric"`)
	f(`{"metric":{"a":""},"values":[1],"timestamps":[1]}`, 1, `"metric" has no label with a value`)
	f(`{"metric":{"__name__":"a"},"value":[1],"timestamps":[1]}`, 1, `unknown field "value"`)
	f(`{"metric":{"__name__":"a"},"values":["1"],"timestamps":[1]}`, 1, `value "1": want a number`)
	f(`{"metric":{"__name__":"a"},"values":[null],"timestamps":[1]}`, 1, `value null`)
	f(`{"metric":{"__name__":"a"},"values":[true],"timestamps":[1]}`, 1, `value true`)
	f(`{"metric":{"__name__":"a"},"values":[1e400],"timestamps":[1]}`, 1, `out of the float64 range`)
	f(`{"metric":{"__name__":"a"},"values":[1],"timestamps":[1.5]}`, 1, `timestamps`)
	f(`{"metric":{"__name__":"a"},"values":[1],"timestamps":[1]} {}`, 1, "more than one JSON value")
	f(`[]`, 1, "cannot unmarshal array")
	f(`{"metric":{"__name__":"a"},"histograms":[{"schema":0}],"histogram_timestamps":[]}`, 1, "1 histograms for 0 histogram_timestamps")
	h := func(obj string) string {
		return `{"metric":{"__name__":"a"},"histograms":[` + obj + `],"histogram_timestamps":[7]}`
	}
	f(h(`{"schema":0,"counter_reset_hint":"maybe"}`), 1, `histogram 0 (at 7): counter_reset_hint "maybe"`)
	f(h(`{"schema":9}`), 1, "got schema 9")
	f(h(`{"schema":0,"positive_spans":[{"offset":0,"length":2}],"positive_buckets":[1]}`), 1, "spans need 2 buckets, have 1 bucket")
	f(h(`{"schema":0,"positive_spans":[{"offset":0,"length":1}],"positive_buckets":[-1]}`), 1, "negative")
	f(h(`{"schema":0,"custom_values":[1]}`), 1, "custom")
	f(h(`{"schema":0,"positive_buckets":[`+strings.Repeat("0,", maxBuckets)+`0]}`), 1, "32769 buckets, spans or custom values on one side, more than 32768")
	f(h(`{"schema":0,"positive_spans":[{"offset":0,"length":-1}]}`), 1, "cannot unmarshal number -1")
	f(h(`{"schema":0,"bucket":1}`), 1, `unknown field "bucket"`)
}
