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

// sampleShapes are Sample messages in every shape the wire allows, for
// the decoder's fast path (value then timestamp, each once) and the ways
// around it.
func sampleShapes() [][]byte {
	v := protowire.AppendTag(nil, 1, protowire.Fixed64Type)
	v = protowire.AppendFixed64(v, math.Float64bits(2.5))
	ts := func(t int64) []byte {
		b := protowire.AppendTag(nil, 2, protowire.VarintType)
		return protowire.AppendVarint(b, uint64(t))
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	unknown := protowire.AppendVarint(protowire.AppendTag(nil, 7, protowire.VarintType), 9)
	overlong := append(protowire.AppendTag(nil, 2, protowire.VarintType), 0x81, 0x80, 0x00) // 1, in three bytes
	return [][]byte{
		cat(v, ts(1700000000123)), // as senders write it
		cat(v),                    // timestamp 0, left out
		cat(ts(5), v),             // the other order
		cat(v, ts(-5)),            // ten bytes of varint
		cat(v, ts(7), unknown),    // a field after
		cat(v, v, ts(8)),          // the value twice: the last wins
		cat(v, ts(8), ts(9)),      // the timestamp twice
		cat(v, overlong),
		cat(v[:5]),                      // cut
		cat(v, ts(8)[:2], []byte{0x80}), // a varint cut
		{},
	}
}

// TestDecodeV1AgreesWithPrompb: the decoder's fast paths read what the
// generated protobuf code reads, Label fields of every length included.
func TestDecodeV1AgreesWithPrompb(t *testing.T) {
	for i, s := range sampleShapes() {
		for _, valueLen := range []int{3, 120, 300} {
			req := seriesWire(labels.FromStrings("__name__", "m", "long", string(make([]byte, valueLen))), s)
			checkAgainstPrompb(t, req, "shape %d, label value of %d bytes", i, valueLen)
		}
	}
}

// seriesWire is a WriteRequest of one TimeSeries: its labels, then the
// given Sample message.
func seriesWire(lset labels.Labels, sample []byte) []byte {
	var ts []byte
	lset.Range(func(l labels.Label) {
		var lb []byte
		lb = protowire.AppendBytes(protowire.AppendTag(lb, 1, protowire.BytesType), []byte(l.Name))
		lb = protowire.AppendBytes(protowire.AppendTag(lb, 2, protowire.BytesType), []byte(l.Value))
		ts = protowire.AppendBytes(protowire.AppendTag(ts, 1, protowire.BytesType), lb)
	})
	ts = protowire.AppendBytes(protowire.AppendTag(ts, 2, protowire.BytesType), sample)
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), ts)
}

// checkAgainstPrompb decodes raw both ways; where both succeed, they must
// hold the same samples, bit for bit, and the same labels.
func checkAgainstPrompb(t *testing.T, raw []byte, msg string, args ...any) {
	t.Helper()
	ma := append([]any{msg}, args...)
	var want prompb.WriteRequest
	werr := want.Unmarshal(raw)
	var b storage.Batch
	_, err := NewDecoder().DecodeV1(raw, &b)
	if werr != nil || err != nil {
		if werr == nil && err != nil {
			// Ours may refuse more (a series without a name, bad UTF-8),
			// never a well-formed sample the other reads.
			require.NotContains(t, err.Error(), "sample", ma...)
		}
		return
	}
	var got []storage.SeriesSamples
	for _, ss := range b.Series {
		if len(ss.Samples) > 0 {
			got = append(got, ss)
		}
	}
	var wantTS []prompb.TimeSeries
	for _, ts := range want.Timeseries {
		if len(ts.Samples) > 0 {
			wantTS = append(wantTS, ts)
		}
	}
	require.Len(t, got, len(wantTS), ma...)
	for i, ts := range wantTS {
		require.Len(t, got[i].Samples, len(ts.Samples), ma...)
		for j, s := range ts.Samples {
			require.Equal(t, s.Timestamp, got[i].Samples[j].T, ma...)
			require.Equal(t, math.Float64bits(s.Value), math.Float64bits(got[i].Samples[j].V), ma...)
		}
	}
	k := 0
	for i := range b.Series {
		if len(b.Series[i].Samples) == 0 {
			continue
		}
		lset, err := b.LabelsOf(i)
		if err == nil {
			sb := labels.NewScratchBuilder(len(wantTS[k].Labels))
			for _, l := range wantTS[k].Labels {
				sb.Add(l.Name, l.Value)
			}
			sb.Sort()
			require.Equal(t, sb.Labels(), lset, ma...)
		}
		k++
	}
}

// FuzzDecodeV1AgreesWithPrompb: whatever both decoders read, they read
// alike.
func FuzzDecodeV1AgreesWithPrompb(f *testing.F) {
	for _, s := range sampleShapes() {
		f.Add(seriesWire(labels.FromStrings("__name__", "m", "a", "b"), s))
	}
	raw, _ := v1Request().Marshal()
	f.Add(raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkAgainstPrompb(t, b, "input %x", b)
	})
}
