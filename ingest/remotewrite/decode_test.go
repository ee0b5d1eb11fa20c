package remotewrite

import (
	"google.golang.org/protobuf/encoding/protowire"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
)

func v1Request() *prompb.WriteRequest {
	return &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{
				Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "node"}},
				Samples: []prompb.Sample{{Value: 1, Timestamp: 1000}, {Value: math.Float64frombits(storage.StaleNaN), Timestamp: 2000}},
			},
			{
				// Unsorted labels are sorted by the decoder.
				Labels:    []prompb.Label{{Name: "z", Value: "1"}, {Name: "__name__", Value: "temp"}},
				Samples:   []prompb.Sample{{Value: -3.5, Timestamp: -5}},
				Exemplars: []prompb.Exemplar{{Value: 1, Timestamp: 1}},
			},
			{
				Labels:     []prompb.Label{{Name: "__name__", Value: "hist"}},
				Histograms: []prompb.Histogram{{Sum: 1, Timestamp: 1}},
			},
		},
		Metadata: []prompb.MetricMetadata{{MetricFamilyName: "up", Help: "x"}},
	}
}

func TestDecodeV1(t *testing.T) {
	raw, err := v1Request().Marshal()
	require.NoError(t, err)
	var b storage.Batch
	c, err := NewDecoder().DecodeV1(raw, &b)
	require.NoError(t, err)
	require.Equal(t, Counts{Samples: 3, Histograms: 1, Exemplars: 1, Metadata: 1}, c)
	require.Len(t, b.Series, 3)
	require.NotNil(t, b.Series[0].Key, "contiguous labels travel as a key")
	require.Equal(t, labels.FromStrings("__name__", "up", "job", "node"), labelsOf(t, &b, 0))
	require.Equal(t, int64(1000), b.Series[0].Samples[0].T)
	require.True(t, storage.IsStaleNaN(b.Series[0].Samples[1].V))
	require.Equal(t, labels.FromStrings("__name__", "temp", "z", "1"), labelsOf(t, &b, 1))
	require.Equal(t, []storage.Sample{{T: -5, V: -3.5}}, b.Series[1].Samples)
}

func labelsOf(t *testing.T, b *storage.Batch, i int) labels.Labels {
	t.Helper()
	ls, err := b.LabelsOf(i)
	require.NoError(t, err)
	return ls
}

// Labels split by a sample are decoded at once, and still sorted.
func TestDecodeV1InterleavedLabels(t *testing.T) {
	var raw []byte
	label := func(n, v string) []byte {
		var m []byte
		m = protowire.AppendTag(m, 1, protowire.BytesType)
		m = protowire.AppendString(m, n)
		m = protowire.AppendTag(m, 2, protowire.BytesType)
		return protowire.AppendString(m, v)
	}
	var ts []byte
	ts = protowire.AppendTag(ts, 1, protowire.BytesType)
	ts = protowire.AppendBytes(ts, label("job", "a"))
	var smp []byte
	smp = protowire.AppendTag(smp, 1, protowire.Fixed64Type)
	smp = protowire.AppendFixed64(smp, math.Float64bits(2))
	smp = protowire.AppendTag(smp, 2, protowire.VarintType)
	smp = protowire.AppendVarint(smp, 7)
	ts = protowire.AppendTag(ts, 2, protowire.BytesType)
	ts = protowire.AppendBytes(ts, smp)
	ts = protowire.AppendTag(ts, 1, protowire.BytesType)
	ts = protowire.AppendBytes(ts, label("__name__", "m"))
	raw = protowire.AppendTag(raw, 1, protowire.BytesType)
	raw = protowire.AppendBytes(raw, ts)
	var b storage.Batch
	_, err := NewDecoder().DecodeV1(raw, &b)
	require.NoError(t, err)
	require.Len(t, b.Series, 1)
	require.Nil(t, b.Series[0].Key)
	require.Equal(t, labels.FromStrings("__name__", "m", "job", "a"), b.Series[0].Labels)
	require.Equal(t, []storage.Sample{{T: 7, V: 2}}, b.Series[0].Samples)
}

func TestDecodeV2(t *testing.T) {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{
		{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "up", "job", "node"), nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: 1000}, {Value: 2, Timestamp: 2000}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE},
		},
		{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "x"), nil),
			Histograms: []writev2.Histogram{{Sum: 1}},
			Exemplars:  []writev2.Exemplar{{Value: 1}},
		},
	}}
	req.Symbols = st.Symbols()
	raw, err := req.Marshal()
	require.NoError(t, err)
	var b storage.Batch
	c, err := NewDecoder().DecodeV2(raw, &b)
	require.NoError(t, err)
	require.Equal(t, Counts{Samples: 2, Histograms: 1, Exemplars: 1, Metadata: 1}, c)
	require.Len(t, b.Series, 2)
	require.Equal(t, labels.FromStrings("__name__", "up", "job", "node"), b.Series[0].Labels)
	require.Equal(t, []storage.Sample{{T: 1000, V: 1}, {T: 2000, V: 2}}, b.Series[0].Samples)
}

func TestDecodeMalformed(t *testing.T) {
	raw, err := v1Request().Marshal()
	require.NoError(t, err)
	bad := map[string][]byte{
		"truncated":         raw[:len(raw)-3],
		"bad varint":        {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"length overrun":    {0x0a, 0x7f, 0x00},
		"field zero":        {0x00, 0x01},
		"group wire type":   {0x0b},
		"truncated fixed64": {0x0a, 0x04, 0x12, 0x02, 0x09, 0x01},
	}
	for name, b := range bad {
		var batch storage.Batch
		_, err := NewDecoder().DecodeV1(b, &batch)
		require.ErrorIs(t, err, ErrMalformed, name)
	}
	// v2: refs outside the table, odd refs, symbols[0] not empty.
	f := func(name string, req *writev2.Request) {
		t.Helper()
		raw, err := req.Marshal()
		require.NoError(t, err)
		var batch storage.Batch
		_, err = NewDecoder().DecodeV2(raw, &batch)
		require.ErrorIs(t, err, ErrMalformed, name)
	}
	sample := []writev2.Sample{{Value: 1, Timestamp: 1}}
	f("ref outside", &writev2.Request{Symbols: []string{"", "a"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 5}, Samples: sample}}})
	f("odd refs", &writev2.Request{Symbols: []string{"", "a"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1}, Samples: sample}}})
	f("symbol 0", &writev2.Request{Symbols: []string{"a"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{0, 0}, Samples: sample}}})
}

// Unknown fields of every wire type are skipped, groups included, and a
// malformed body says what could not be read.
func TestDecodeSkipsUnknownFields(t *testing.T) {
	raw, err := v1Request().Marshal()
	require.NoError(t, err)
	raw = protowire.AppendTag(raw, 15, protowire.StartGroupType)
	raw = protowire.AppendTag(raw, 1, protowire.Fixed32Type)
	raw = protowire.AppendFixed32(raw, 7)
	raw = protowire.AppendTag(raw, 15, protowire.EndGroupType)
	raw = protowire.AppendTag(raw, 16, protowire.Fixed64Type)
	raw = protowire.AppendFixed64(raw, 7)
	var b storage.Batch
	c, err := NewDecoder().DecodeV1(raw, &b)
	require.NoError(t, err)
	require.Equal(t, 3, c.Samples)

	_, err = NewDecoder().DecodeV1(raw[:len(raw)-3], &b)
	require.ErrorIs(t, err, ErrMalformed)
	require.EqualError(t, err, "remotewrite: malformed request: field 16: unexpected EOF")
	_, err = NewDecoder().DecodeV1([]byte{0x0a, 0x7f, 0x00}, &b)
	require.EqualError(t, err, "remotewrite: malformed request: length-delimited field: unexpected EOF")
}

// TestDecodeV2Keys: a 2.0 series without metadata comes by Key (its
// labels in 1.0's wire form), whose labels are the series' own, sorted,
// whatever order the references came in; each series has its own key,
// and one without a name is refused when its labels are decoded.
func TestDecodeV2Keys(t *testing.T) {
	syms := []string{"", "job", "node", "__name__", "up", "instance", "a", "b"}
	req := &writev2.Request{Symbols: syms, Timeseries: []writev2.TimeSeries{
		{LabelsRefs: []uint32{1, 2, 3, 4, 5, 6}, Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}}, // job, __name__, instance: unsorted
		{LabelsRefs: []uint32{3, 4, 5, 7}, Samples: []writev2.Sample{{Value: 2, Timestamp: 1}}},
		{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 3, Timestamp: 1}}}, // no name
	}}
	raw, err := req.Marshal()
	require.NoError(t, err)
	var b storage.Batch
	_, err = NewDecoder().DecodeV2(raw, &b)
	require.NoError(t, err)
	require.Len(t, b.Series, 3)
	want := []labels.Labels{
		labels.FromStrings("__name__", "up", "instance", "a", "job", "node"),
		labels.FromStrings("__name__", "up", "instance", "b"),
	}
	for i, w := range want {
		require.NotNil(t, b.Series[i].Key)
		require.True(t, b.Series[i].Labels.IsEmpty(), "built only when needed")
		got, err := b.LabelsOf(i)
		require.NoError(t, err)
		require.Equal(t, w, got)
	}
	require.NotEqual(t, b.Series[0].Key, b.Series[1].Key)
	_, err = b.LabelsOf(2)
	require.ErrorIs(t, err, ErrNoMetricName)
}
