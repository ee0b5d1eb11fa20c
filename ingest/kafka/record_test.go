package kafka

import (
	"fmt"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/emsdb/tsdb/ingest/remotewrite"
	"github.com/emsdb/tsdb/storage"
)

// The hash decides where a series lives in a running cluster: these values
// must never change.
func TestSeriesHashIsStable(t *testing.T) {
	f := func(tenant string, lset labels.Labels, want uint64) {
		t.Helper()
		require.Equal(t, want, SeriesHash(tenant, lset), "%s %s", tenant, lset)
	}
	f("default", labels.FromStrings("__name__", "up", "job", "node"), 0x7d1491e62f87e3e3)
	f("acme", labels.FromStrings("__name__", "up", "job", "node"), 0xec0f9c774e197334)
	f("default", labels.EmptyLabels(), 0x219303c7c93f9668)
	// The bytes hashed are those SeriesHash documents.
	require.Equal(t, xxhash.Sum64String("default\xff__name__\xfeup\xffjob\xfenode\xff"),
		SeriesHash("default", labels.FromStrings("__name__", "up", "job", "node", "empty", "")))
}

func TestPartitionIsTenantAwareAndIgnoresEmptyLabels(t *testing.T) {
	lset := labels.FromStrings("__name__", "up", "job", "node")
	require.NotEqual(t, SeriesHash("a", lset), SeriesHash("b", lset))
	require.Equal(t, SeriesHash("a", lset), SeriesHash("a", labels.FromStrings("__name__", "up", "job", "node", "zone", "")))
	// The separators keep a label from reading as another one.
	require.NotEqual(t, SeriesHash("a", labels.FromStrings("ab", "c")), SeriesHash("a", labels.FromStrings("a", "bc")))
	require.NotEqual(t, SeriesHash("a", labels.FromStrings("x", "1")), SeriesHash("ax", labels.FromStrings("", "1")))
	// Series spread over every partition.
	seen := map[int32]int{}
	for i := range 1000 {
		p := Partition("t", labels.FromStrings("__name__", "m", "i", fmt.Sprint(i)), 16)
		require.True(t, p >= 0 && p < 16)
		seen[p]++
	}
	require.Len(t, seen, 16)
	for p, n := range seen {
		require.Greater(t, n, 30, "partition %d", p)
	}
}

func testBatch() *storage.Batch {
	fh := &histogram.FloatHistogram{
		CounterResetHint: histogram.GaugeType,
		Schema:           0,
		Count:            3.5,
		Sum:              -2,
		ZeroCount:        0.5,
		PositiveSpans:    []histogram.Span{{Offset: -2, Length: 2}},
		PositiveBuckets:  []float64{1, 2},
	}
	ih := (&histogram.Histogram{
		CounterResetHint: histogram.NotCounterReset,
		Schema:           1,
		ZeroThreshold:    0.001,
		ZeroCount:        2,
		Count:            14,
		Sum:              18.4,
		PositiveSpans:    []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 2}},
		PositiveBuckets:  []int64{1, 1, -1, 0},
		NegativeSpans:    []histogram.Span{{Offset: 0, Length: 2}},
		NegativeBuckets:  []int64{3, 1},
	}).ToFloat(nil)
	ch := (&histogram.Histogram{
		Schema:          histogram.CustomBucketsSchema,
		Count:           6,
		Sum:             7,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 3}},
		PositiveBuckets: []int64{1, 2, -1},
		CustomValues:    []float64{0.1, 1, 10},
	}).ToFloat(nil)
	b := &storage.Batch{}
	for i := range 20 {
		b.Add(labels.FromStrings("__name__", "up", "instance", fmt.Sprint(i)), storage.Sample{T: 1000, V: float64(i)}, storage.Sample{T: 2000, V: -float64(i)})
	}
	b.Series = append(b.Series, storage.SeriesSamples{
		Labels:     labels.FromStrings("__name__", "rq_seconds", "job", "a"),
		Samples:    []storage.Sample{{T: 500, V: 1}},
		Histograms: []storage.HSample{{T: 1000, H: ih}, {T: 2000, H: fh}, {T: 3000, H: ch}},
		Exemplars:  []storage.Exemplar{{Labels: labels.FromStrings("span_id", "1", "trace_id", "abc"), V: 0.5, T: 1234}},
	})
	b.Metadata = []storage.Metadata{
		{Family: "rq_seconds", Type: "histogram", Help: "Request time.", Unit: "seconds"},
		{Family: "up", Type: "gauge", Help: "Is it up?"},
	}
	return b
}

// withLabels gives each series of b its labels (a decoded 2.0 series
// comes by Key, its labels decoded only when storage needs them).
func withLabels(t *testing.T, b *storage.Batch) {
	t.Helper()
	for i := range b.Series {
		lset, err := b.LabelsOf(i)
		require.NoError(t, err)
		b.Series[i].Labels = lset
	}
}

// decodeAll decodes records as the consumer does and returns, per
// partition, what they hold.
func decodeAll(t *testing.T, tenant string, recs []*kgo.Record) map[int32]*storage.Batch {
	t.Helper()
	out := map[int32]*storage.Batch{}
	for _, r := range recs {
		require.Equal(t, tenant, tenantOf(r))
		require.Nil(t, r.Key)
		var b storage.Batch
		_, err := remotewrite.NewDecoder().DecodeV2(r.Value, &b) // a decoder per record: the batches keep its buffers
		require.NoError(t, err)
		withLabels(t, &b)
		all := out[r.Partition]
		if all == nil {
			all = &storage.Batch{}
			out[r.Partition] = all
		}
		all.Series = append(all.Series, b.Series...)
		all.Metadata = append(all.Metadata, b.Metadata...)
	}
	return out
}

// A batch comes back from its records whole, each series in its
// partition: samples, native histograms (integer ones as floats, as
// storage takes them), exemplars and metadata.
func TestEncodeRoundTrip(t *testing.T) {
	b := testBatch()
	recs, err := Encode("acme", b, 4)
	require.NoError(t, err)
	require.LessOrEqual(t, len(recs), 4, "one record per partition for a small batch")
	got := decodeAll(t, "acme", recs)
	want := map[string]storage.SeriesSamples{}
	for _, s := range b.Series {
		want[s.Labels.String()] = s
	}
	gotSeries := map[string]storage.SeriesSamples{}
	var gotMeta []storage.Metadata
	for p, pb := range got {
		for _, s := range pb.Series {
			require.Equal(t, Partition("acme", s.Labels, 4), p, "series %s", s.Labels)
			prev := gotSeries[s.Labels.String()] // samples and histograms travel in two TimeSeries
			prev.Labels = s.Labels
			prev.Samples = append(prev.Samples, s.Samples...)
			prev.Histograms = append(prev.Histograms, s.Histograms...)
			prev.Exemplars = append(prev.Exemplars, s.Exemplars...)
			gotSeries[s.Labels.String()] = prev
		}
		for _, m := range pb.Metadata {
			require.Equal(t, Partition("acme", labels.FromStrings("__name__", m.Family), 4), p, "metadata of %s", m.Family)
			gotMeta = append(gotMeta, m)
		}
	}
	require.Equal(t, want, gotSeries)
	require.ElementsMatch(t, b.Metadata, gotMeta)
}

// A part too large for one record becomes several records of its
// partition, in order; a series larger than a record is split.
func TestEncodeSplitsLargeParts(t *testing.T) {
	b := &storage.Batch{}
	long := labels.FromStrings("__name__", "long")
	var ss []storage.Sample
	for i := range 3*seriesChunk + 5 {
		ss = append(ss, storage.Sample{T: int64(i), V: float64(i)})
	}
	b.Add(long, ss...)
	for i := range 40000 {
		b.Add(labels.FromStrings("__name__", "many", "i", fmt.Sprint(i)), storage.Sample{T: 1, V: 1})
	}
	recs, err := Encode("t", b, 2)
	require.NoError(t, err)
	require.Greater(t, len(recs), 4)
	var back []storage.Sample
	n := 0
	for _, r := range recs {
		require.Less(t, len(r.Value), 2*recordTargetBytes)
		var rb storage.Batch
		_, err := remotewrite.NewDecoder().DecodeV2(r.Value, &rb)
		require.NoError(t, err)
		withLabels(t, &rb)
		for _, s := range rb.Series {
			n++
			if labels.Equal(s.Labels, long) {
				require.Equal(t, Partition("t", long, 2), r.Partition)
				back = append(back, s.Samples...)
			}
		}
	}
	require.Equal(t, ss, back, "the long series, in order")
	require.Equal(t, 40000+4, n)
}
