package web

import (
	"github.com/prometheus/prometheus/model/histogram"

	"github.com/emsdb/tsdb/query"
)

// appendSeriesPoints appends the points of a matrix series as Prometheus
// does: the floats as "values", then the native histograms as
// "histograms", each key left out when it has no points.
func appendSeriesPoints(b []byte, s *query.Series) []byte {
	n := 0
	for i, p := range s.Points {
		if s.H(i) != nil {
			continue
		}
		if n == 0 {
			b = append(b, `,"values":[`...)
		} else {
			b = append(b, ',')
		}
		n++
		b = appendPoint(b, p)
	}
	if n > 0 {
		b = append(b, ']')
	}
	n = 0
	for i, p := range s.Points {
		h := s.H(i)
		if h == nil {
			continue
		}
		if n == 0 {
			b = append(b, `,"histograms":[`...)
		} else {
			b = append(b, ',')
		}
		n++
		b = appendHistogramPoint(b, p.T, h)
	}
	if n > 0 {
		b = append(b, ']')
	}
	return b
}

// appendHistogramPoint appends [ts, {histogram}].
func appendHistogramPoint(b []byte, t int64, h *histogram.FloatHistogram) []byte {
	b = append(b, '[')
	b = appendTime(b, t)
	b = append(b, ',')
	b = appendHistogram(b, h)
	return append(b, ']')
}

// appendHistogram appends a native histogram as Prometheus's
// jsonutil.MarshalHistogram does, the shape Grafana's heatmaps read:
// {"count":"…","sum":"…","buckets":[[boundaries,"lower","upper","count"],…]}
// with the empty buckets left out; boundaries tells which ends are
// inclusive (0: upper only, 1: lower only, 2: neither, 3: both).
func appendHistogram(b []byte, h *histogram.FloatHistogram) []byte {
	b = append(b, `{"count":`...)
	b = appendValue(b, h.Count)
	b = append(b, `,"sum":`...)
	b = appendValue(b, h.Sum)
	found := false
	it := h.AllBucketIterator()
	for it.Next() {
		bk := it.At()
		if bk.Count == 0 {
			continue
		}
		if !found {
			b = append(b, `,"buckets":[`...)
			found = true
		} else {
			b = append(b, ',')
		}
		boundaries := byte('2')
		switch {
		case bk.LowerInclusive && bk.UpperInclusive:
			boundaries = '3'
		case bk.LowerInclusive:
			boundaries = '1'
		case bk.UpperInclusive:
			boundaries = '0'
		}
		b = append(b, '[', boundaries, ',')
		b = appendValue(b, bk.Lower)
		b = append(b, ',')
		b = appendValue(b, bk.Upper)
		b = append(b, ',')
		b = appendValue(b, bk.Count)
		b = append(b, ']')
	}
	if found {
		b = append(b, ']')
	}
	return append(b, '}')
}
