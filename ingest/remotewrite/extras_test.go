package remotewrite

import (
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
)

// testHistograms are one of each kind: an integer exponential histogram
// with both sides and a zero bucket, a float one (a gauge), and one of
// custom buckets (schema -53).
func testHistograms() (*histogram.Histogram, *histogram.FloatHistogram, *histogram.Histogram) {
	ih := &histogram.Histogram{
		CounterResetHint: histogram.NotCounterReset,
		Schema:           1,
		ZeroThreshold:    0.001,
		ZeroCount:        2,
		Count:            14,
		Sum:              18.4,
		PositiveSpans:    []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 2}},
		PositiveBuckets:  []int64{1, 1, -1, 0}, // 1 2 1 1
		NegativeSpans:    []histogram.Span{{Offset: 0, Length: 2}},
		NegativeBuckets:  []int64{3, 1}, // 3 4
	}
	fh := &histogram.FloatHistogram{
		CounterResetHint: histogram.GaugeType,
		Schema:           0,
		Count:            3.5,
		Sum:              -2,
		ZeroCount:        0.5,
		PositiveSpans:    []histogram.Span{{Offset: -2, Length: 2}},
		PositiveBuckets:  []float64{1, 2},
	}
	ch := &histogram.Histogram{
		Schema:          histogram.CustomBucketsSchema,
		Count:           5,
		Sum:             7,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 3}},
		PositiveBuckets: []int64{1, 2, -1}, // 1 3 2
		CustomValues:    []float64{0.1, 1, 10},
	}
	ch.Count = 6
	return ih, fh, ch
}

func TestDecodeV1HistogramsExemplarsMetadata(t *testing.T) {
	ih, fh, ch := testHistograms()
	req := &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{{
			Labels: []prompb.Label{{Name: "__name__", Value: "rq_seconds"}, {Name: "job", Value: "a"}},
			Histograms: []prompb.Histogram{
				prompb.FromIntHistogram(1000, ih),
				prompb.FromFloatHistogram(2000, fh),
				prompb.FromIntHistogram(3000, ch),
			},
			Exemplars: []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 0.5, Timestamp: 1234}},
		}},
		Metadata: []prompb.MetricMetadata{
			{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "rq_seconds", Help: "Request time.", Unit: "seconds"},
			{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "rq_total"},
		},
	}
	raw, err := req.Marshal()
	require.NoError(t, err)
	var b storage.Batch
	c, err := NewDecoder().DecodeV1(raw, &b)
	require.NoError(t, err)
	require.Equal(t, Counts{Histograms: 3, Exemplars: 1, Metadata: 2}, c)
	require.Len(t, b.Series, 1)
	require.Equal(t, labels.FromStrings("__name__", "rq_seconds", "job", "a"), labelsOf(t, &b, 0))
	require.Equal(t, []storage.HSample{{T: 1000, H: ih.ToFloat(nil)}, {T: 2000, H: fh}, {T: 3000, H: ch.ToFloat(nil)}}, b.Series[0].Histograms)
	require.Equal(t, []storage.Exemplar{{Labels: labels.FromStrings("trace_id", "abc"), V: 0.5, T: 1234}}, b.Series[0].Exemplars)
	require.Equal(t, []storage.Metadata{
		{Family: "rq_seconds", Type: "histogram", Help: "Request time.", Unit: "seconds"},
		{Family: "rq_total", Type: "counter"},
	}, b.Metadata)
}

func TestDecodeV2HistogramsExemplarsMetadata(t *testing.T) {
	ih, fh, ch := testHistograms()
	syms := writev2.NewSymbolTable()
	meta := writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM, HelpRef: syms.Symbolize("Request time."), UnitRef: syms.Symbolize("seconds")}
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{
		{
			LabelsRefs: syms.SymbolizeLabels(labels.FromStrings("__name__", "rq_seconds", "job", "a"), nil),
			Histograms: []writev2.Histogram{
				writev2.FromIntHistogram(0, 1000, ih),
				writev2.FromFloatHistogram(0, 2000, fh),
				writev2.FromIntHistogram(0, 3000, ch),
			},
			Exemplars: []writev2.Exemplar{{LabelsRefs: syms.SymbolizeLabels(labels.FromStrings("trace_id", "abc", "span_id", "1"), nil), Value: 0.5, Timestamp: 1234}},
			Metadata:  meta,
		},
		// The series of a classic histogram share the family's metadata.
		{LabelsRefs: syms.SymbolizeLabels(labels.FromStrings("__name__", "old_seconds_bucket", "le", "1"), nil), Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}, Metadata: meta},
		{LabelsRefs: syms.SymbolizeLabels(labels.FromStrings("__name__", "old_seconds_count"), nil), Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}, Metadata: meta},
		// Metadata alone is kept too.
		{LabelsRefs: syms.SymbolizeLabels(labels.FromStrings("__name__", "rq_total"), nil), Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER}},
	}}
	req.Symbols = syms.Symbols()
	raw, err := req.Marshal()
	require.NoError(t, err)
	var b storage.Batch
	c, err := NewDecoder().DecodeV2(raw, &b)
	require.NoError(t, err)
	require.Equal(t, Counts{Samples: 2, Histograms: 3, Exemplars: 1, Metadata: 4}, c)
	require.Len(t, b.Series, 3)
	require.Equal(t, []storage.HSample{{T: 1000, H: ih.ToFloat(nil)}, {T: 2000, H: fh}, {T: 3000, H: ch.ToFloat(nil)}}, b.Series[0].Histograms)
	require.Equal(t, []storage.Exemplar{{Labels: labels.FromStrings("span_id", "1", "trace_id", "abc"), V: 0.5, T: 1234}}, b.Series[0].Exemplars)
	require.Equal(t, []storage.Metadata{
		{Family: "rq_seconds", Type: "histogram", Help: "Request time.", Unit: "seconds"},
		{Family: "old_seconds", Type: "histogram", Help: "Request time.", Unit: "seconds"},
		{Family: "rq_total", Type: "counter"},
	}, b.Metadata)
}

// A malformed histogram fails the request, naming the series.
func TestDecodeMalformedHistogram(t *testing.T) {
	f := func(name string, mutate func(*prompb.Histogram), want string) {
		t.Helper()
		ih, _, _ := testHistograms()
		hp := prompb.FromIntHistogram(1000, ih)
		mutate(&hp)
		req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:     []prompb.Label{{Name: "__name__", Value: "rq"}},
			Histograms: []prompb.Histogram{hp},
		}}}
		raw, err := req.Marshal()
		require.NoError(t, err)
		var b storage.Batch
		_, err = NewDecoder().DecodeV1(raw, &b)
		require.ErrorIs(t, err, ErrMalformed, name)
		require.ErrorContains(t, err, `histogram of series {__name__="rq"}`, name)
		require.ErrorContains(t, err, want, name)

		// The same in 2.0.
		syms := writev2.NewSymbolTable()
		h2 := writev2.FromIntHistogram(0, 1000, ih)
		h2.PositiveSpans, h2.PositiveDeltas, h2.Schema, h2.Count, h2.ResetHint = nil, nil, hp.Schema, nil, writev2.Histogram_ResetHint(hp.ResetHint)
		for _, s := range hp.PositiveSpans {
			h2.PositiveSpans = append(h2.PositiveSpans, writev2.BucketSpan{Offset: s.Offset, Length: s.Length})
		}
		h2.PositiveDeltas = hp.PositiveDeltas
		h2.PositiveCounts = hp.PositiveCounts
		switch c := hp.Count.(type) {
		case *prompb.Histogram_CountInt:
			h2.Count = &writev2.Histogram_CountInt{CountInt: c.CountInt}
		case *prompb.Histogram_CountFloat:
			h2.Count = &writev2.Histogram_CountFloat{CountFloat: c.CountFloat}
		}
		req2 := &writev2.Request{Timeseries: []writev2.TimeSeries{{
			Histograms: []writev2.Histogram{h2},
			LabelsRefs: syms.SymbolizeLabels(labels.FromStrings("__name__", "rq"), nil),
		}}}
		req2.Symbols = syms.Symbols()
		raw, err = req2.Marshal()
		require.NoError(t, err)
		_, err = NewDecoder().DecodeV2(raw, &b)
		require.ErrorIs(t, err, ErrMalformed, name)
		require.ErrorContains(t, err, `series {__name__="rq"}: histogram: `, name)
		require.ErrorContains(t, err, want, name)
	}
	f("spans longer than buckets", func(h *prompb.Histogram) { h.PositiveSpans[1].Length = 5 }, "spans need 7 buckets, have 4 buckets")
	f("negative bucket", func(h *prompb.Histogram) { h.PositiveDeltas[0] = -1 }, "negative")
	f("schema", func(h *prompb.Histogram) { h.Schema = 42 }, "invalid schema")
	f("reset hint", func(h *prompb.Histogram) { h.ResetHint = 9 }, "reset_hint 9")
	f("count too small", func(h *prompb.Histogram) { h.Count = &prompb.Histogram_CountInt{CountInt: 1} }, "the Count field is 1")
	f("mixed kinds", func(h *prompb.Histogram) { h.PositiveCounts = []float64{1, 1, 1, 1} }, "mixes integer fields")
	f("too many buckets", func(h *prompb.Histogram) { h.PositiveDeltas = make([]int64, maxHistogramBuckets+1) }, "more than 32768 buckets")
}

func TestDecodeExemplarAndMetadataErrors(t *testing.T) {
	syms := writev2.NewSymbolTable()
	lrefs := syms.SymbolizeLabels(labels.FromStrings("__name__", "rq"), nil)
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{{
		LabelsRefs: lrefs,
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}},
		Exemplars:  []writev2.Exemplar{{LabelsRefs: []uint32{1, 99}, Value: 1}},
	}}}
	req.Symbols = syms.Symbols()
	raw, err := req.Marshal()
	require.NoError(t, err)
	var b storage.Batch
	_, err = NewDecoder().DecodeV2(raw, &b)
	require.ErrorIs(t, err, ErrMalformed)
	require.ErrorContains(t, err, `series {__name__="rq"}: exemplar`)

	req.Timeseries[0].Exemplars = nil
	req.Timeseries[0].Metadata = writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: 99}
	raw, err = req.Marshal()
	require.NoError(t, err)
	_, err = NewDecoder().DecodeV2(raw, &b)
	require.ErrorIs(t, err, ErrMalformed)
	require.ErrorContains(t, err, "metadata reference 99/0")

	v1 := &prompb.WriteRequest{Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, Help: "no name"}}}
	raw, err = v1.Marshal()
	require.NoError(t, err)
	_, err = NewDecoder().DecodeV1(raw, &b)
	require.ErrorIs(t, err, ErrMalformed)
	require.ErrorContains(t, err, "metadata 0: remotewrite: malformed request: metadata without metric_family_name")
}

// extrasSeedsV1 are fuzz seeds with histograms of each kind, exemplars
// and metadata.
func extrasSeedsV1(t testing.TB) [][]byte {
	ih, fh, ch := testHistograms()
	req := &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{{
			Labels:     []prompb.Label{{Name: "__name__", Value: "h"}},
			Histograms: []prompb.Histogram{prompb.FromIntHistogram(1, ih), prompb.FromFloatHistogram(2, fh), prompb.FromIntHistogram(3, ch)},
			Exemplars:  []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "t"}}, Value: 1, Timestamp: 1}},
		}},
		Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_SUMMARY, MetricFamilyName: "h", Help: "x", Unit: "u"}},
	}
	raw, err := req.Marshal()
	require.NoError(t, err)
	return [][]byte{raw}
}

// extrasSeedsV2 are extrasSeedsV1 in remote write 2.0.
func extrasSeedsV2(t testing.TB) [][]byte {
	ih, fh, ch := testHistograms()
	syms := writev2.NewSymbolTable()
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{{
		LabelsRefs: syms.SymbolizeLabels(labels.FromStrings("__name__", "h_bucket"), nil),
		Histograms: []writev2.Histogram{writev2.FromIntHistogram(0, 1, ih), writev2.FromFloatHistogram(0, 2, fh), writev2.FromIntHistogram(0, 3, ch)},
		Exemplars:  []writev2.Exemplar{{LabelsRefs: syms.SymbolizeLabels(labels.FromStrings("trace_id", "t"), nil), Value: 1, Timestamp: 1}},
		Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM, HelpRef: syms.Symbolize("x")},
	}}}
	req.Symbols = syms.Symbols()
	raw, err := req.Marshal()
	require.NoError(t, err)
	return [][]byte{raw}
}
