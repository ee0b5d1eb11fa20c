package web

import (
	"github.com/prometheus/prometheus/model/histogram"

	"github.com/emsdb/tsdb/query"
)

// appendSeriesPoints appends the points of a matrix series as Prometheus
// does: the floats as "values", then the native histograms as
// "histograms", each key left out when it has no points.
func appendSeriesPoints(b []byte, s *query.Series, times *stepTimes) []byte {
	n, step := 0, 0
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
		b = append(b, '[')
		b, step = times.appendTime(b, p.T, step)
		b = append(b, ',')
		b = appendValue(b, p.F)
		b = append(b, ']')
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

// stepTimes formats the times of a range answer's steps once for all its
// series: a dashboard's answer is a few hundred series over the same
// steps, and formatting a time costs as much as copying it several times.
// The steps are those of the first series with two points; a time off
// them is formatted as it comes.
type stepTimes struct {
	start, step int64
	text        []byte  // the formatted times of steps 0, 1, … back to back
	ends        []int32 // where each step's text ends in text
}

// maxCachedSteps bounds what a stepTimes holds (Prometheus answers at most
// 11,000 points a series).
const maxCachedSteps = 11000

// newStepTimes takes the steps from the first series with two points;
// nil when there is none, or its times are too far out for the sums below
// to stay in range.
func newStepTimes(series []query.Series) *stepTimes {
	for _, s := range series {
		if len(s.Points) < 2 {
			continue
		}
		start, step := s.Points[0].T, s.Points[1].T-s.Points[0].T
		if start <= -1e15 || start >= 1e15 || step <= 0 || step > 1e11 {
			return nil
		}
		n := min(len(s.Points), maxCachedSteps)
		return &stepTimes{start: start, step: step, text: make([]byte, 0, 16*n), ends: make([]int32, 0, n)}
	}
	return nil
}

// appendTime appends t; step is the step at which the series' previous
// time was found (0 at its first point) and the returned step is t's, so
// that a series' walk over the steps costs no division but at a gap.
func (st *stepTimes) appendTime(b []byte, t int64, step int) ([]byte, int) {
	if st == nil || t < st.start {
		return appendTime(b, t), step
	}
	at := st.start + int64(step)*st.step
	if t-at > st.step {
		// A gap, or a series that begins after the first step.
		k := (uint64(t) - uint64(st.start)) / uint64(st.step) // t ≥ start: no overflow
		if k >= maxCachedSteps {
			return appendTime(b, t), step
		}
		step, at = int(k), st.start+int64(k)*st.step
	}
	if at < t {
		step, at = step+1, at+st.step
	}
	if at != t || step >= maxCachedSteps {
		return appendTime(b, t), step
	}
	for len(st.ends) <= step {
		st.text = appendTime(st.text, st.start+int64(len(st.ends))*st.step)
		st.ends = append(st.ends, int32(len(st.text)))
	}
	from := int32(0)
	if step > 0 {
		from = st.ends[step-1]
	}
	return append(b, st.text[from:st.ends[step]]...), step
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
