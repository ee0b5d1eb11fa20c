package jsonl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage"
)

// ErrMalformed reports a body that is not JSON lines as export writes
// them; the error names the line.
var ErrMalformed = errors.New("jsonl: malformed line")

// LineError is a malformed line: its number (from 1) and what is wrong.
// It wraps ErrMalformed.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Unwrap makes errors.Is(err, ErrMalformed) true.
func (e *LineError) Unwrap() []error { return []error{ErrMalformed, e.Err} }

// What one line holds once decoded, as the in-flight budget counts it:
// measured with bodies of the shortest elements (TestBodiesStayInBudget)
// and rounded up. A line costs its bytes several times over (the
// decoder's copy, the label strings, storage's write item), every array
// element (one per comma) its decoded value, the Sample it becomes and
// the garbage of growing slices, and every object (one per '{': the
// line, a histogram, a span) a FloatHistogram and what storage makes of
// it. Every line is besides a series storage may have to create (its
// head entry, index postings, the label set interned): lines of one
// sample each take ~1.6 KiB apiece at their peak under the race
// detector, which the byte, element and object costs alone undercount.
const (
	lineByteBytes = 4
	elementBytes  = 64
	objectBytes   = 512
	seriesBytes   = 512
)

// Cost returns the memory decoding and writing line holds, in bytes:
// what a caller reserves before it hands the line to Decode.
func Cost(line []byte) int64 {
	return int64(len(line))*lineByteBytes + int64(bytes.Count(line, []byte{','})+1)*elementBytes +
		int64(bytes.Count(line, []byte{'{'}))*objectBytes + seriesBytes
}

// line is one line as encoding/json decodes it.
type line struct {
	Metric              map[string]string `json:"metric"`
	Values              []number          `json:"values"`
	Timestamps          []int64           `json:"timestamps"`
	Histograms          []hist            `json:"histograms"`
	HistogramTimestamps []int64           `json:"histogram_timestamps"`
}

// hist is export's histogram object.
type hist struct {
	Schema           int32    `json:"schema"`
	ZeroThreshold    number   `json:"zero_threshold"`
	ZeroCount        number   `json:"zero_count"`
	Count            number   `json:"count"`
	Sum              number   `json:"sum"`
	PositiveSpans    []span   `json:"positive_spans"`
	PositiveBuckets  []number `json:"positive_buckets"`
	NegativeSpans    []span   `json:"negative_spans"`
	NegativeBuckets  []number `json:"negative_buckets"`
	CustomValues     []number `json:"custom_values"`
	CounterResetHint string   `json:"counter_reset_hint"`
}

type span struct {
	Offset int32  `json:"offset"`
	Length uint32 `json:"length"`
}

// number is a float64 written as a JSON number or as one of the strings
// "NaN", "+Inf", "-Inf" and "StaleNaN".
type number float64

// UnmarshalJSON decodes a number or one of the special strings.
func (n *number) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"StaleNaN"`:
		*n = number(math.Float64frombits(storage.StaleNaN))
		return nil
	case `"NaN"`:
		*n = number(math.NaN())
		return nil
	case `"+Inf"`, `"Inf"`:
		*n = number(math.Inf(1))
		return nil
	case `"-Inf"`:
		*n = number(math.Inf(-1))
		return nil
	}
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return fmt.Errorf("value %s: want a number, \"NaN\", \"+Inf\", \"-Inf\" or \"StaleNaN\"", b)
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("value %s: out of the float64 range", b)
	}
	*n = number(v)
	return nil
}

// hints are the words of counter_reset_hint.
var hints = map[string]histogram.CounterResetHint{
	"unknown":   histogram.UnknownCounterReset,
	"":          histogram.UnknownCounterReset,
	"reset":     histogram.CounterReset,
	"not_reset": histogram.NotCounterReset,
	"gauge":     histogram.GaugeType,
}

// Decoder decodes bodies into batches. Its zero value is ready to use; it
// keeps buffers between bodies and is not safe for concurrent use.
type Decoder struct {
	// Reserve, when set, is told the Cost of each line before the line is
	// decoded; an error from it stops Decode and is returned as is.
	Reserve func(n int64) error

	l line
}

// Decode appends the series of body to b, one SeriesSamples per line with
// a sample. Empty lines are skipped. A malformed line is a *LineError, and
// b then holds the lines before it: the caller drops the batch.
func (d *Decoder) Decode(body []byte, b *storage.Batch) error {
	n := 0
	for len(body) > 0 {
		n++
		var ln []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			ln, body = body[:i], body[i+1:]
		} else {
			ln, body = body, nil
		}
		ln = bytes.TrimSpace(ln)
		if len(ln) == 0 {
			continue
		}
		if d.Reserve != nil {
			if err := d.Reserve(Cost(ln)); err != nil {
				return err
			}
		}
		if err := d.line(ln, b); err != nil {
			return &LineError{Line: n, Err: err}
		}
	}
	return nil
}

// line decodes one line into b.
func (d *Decoder) line(ln []byte, b *storage.Batch) error {
	l := &d.l
	clear(l.Metric)
	// NB: encoding/json decodes into the elements a slice already has
	// without zeroing them: histograms, holding slices, start afresh.
	*l = line{Metric: l.Metric, Values: l.Values[:0], Timestamps: l.Timestamps[:0], HistogramTimestamps: l.HistogramTimestamps[:0]}
	dec := json.NewDecoder(bytes.NewReader(ln))
	dec.DisallowUnknownFields()
	if err := dec.Decode(l); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("more than one JSON value on the line")
	}
	if len(l.Metric) == 0 {
		return errors.New(`no "metric"`)
	}
	if len(l.Values) != len(l.Timestamps) {
		return fmt.Errorf("%d values for %d timestamps", len(l.Values), len(l.Timestamps))
	}
	if len(l.Histograms) != len(l.HistogramTimestamps) {
		return fmt.Errorf("%d histograms for %d histogram_timestamps", len(l.Histograms), len(l.HistogramTimestamps))
	}
	if len(l.Values) == 0 && len(l.Histograms) == 0 {
		return nil
	}
	lb := labels.NewScratchBuilder(len(l.Metric))
	n := 0
	for k, v := range l.Metric {
		if v != "" { // an empty value is no label, as in Prometheus
			lb.Add(k, v)
			n++
		}
	}
	if n == 0 {
		return errors.New(`"metric" has no label with a value`)
	}
	lb.Sort()
	s := storage.SeriesSamples{Labels: lb.Labels()}
	if len(l.Values) > 0 {
		s.Samples = make([]storage.Sample, len(l.Values))
		for i, v := range l.Values {
			s.Samples[i] = storage.Sample{T: l.Timestamps[i], V: float64(v)}
		}
	}
	if len(l.Histograms) > 0 {
		s.Histograms = make([]storage.HSample, len(l.Histograms))
		for i := range l.Histograms {
			h, err := l.Histograms[i].float()
			if err != nil {
				return fmt.Errorf("histogram %d (at %d): %w", i, l.HistogramTimestamps[i], err)
			}
			s.Histograms[i] = storage.HSample{T: l.HistogramTimestamps[i], H: h}
		}
	}
	b.Series = append(b.Series, s)
	return nil
}

// maxBuckets bounds the buckets, spans and custom values of one side of
// a histogram, as remote write does: a larger one is refused before
// storage spends memory on it.
const maxBuckets = 1 << 15

// float returns h as a validated FloatHistogram.
func (h *hist) float() (*histogram.FloatHistogram, error) {
	for _, n := range []int{len(h.PositiveBuckets), len(h.NegativeBuckets), len(h.PositiveSpans), len(h.NegativeSpans), len(h.CustomValues)} {
		if n > maxBuckets {
			return nil, fmt.Errorf("histogram has %d buckets, spans or custom values on one side, more than %d", n, maxBuckets)
		}
	}
	hint, ok := hints[h.CounterResetHint]
	if !ok {
		return nil, fmt.Errorf("counter_reset_hint %q: want unknown, reset, not_reset or gauge", h.CounterResetHint)
	}
	fh := &histogram.FloatHistogram{
		CounterResetHint: hint,
		Schema:           h.Schema,
		ZeroThreshold:    float64(h.ZeroThreshold),
		ZeroCount:        float64(h.ZeroCount),
		Count:            float64(h.Count),
		Sum:              float64(h.Sum),
		PositiveSpans:    spans(h.PositiveSpans),
		NegativeSpans:    spans(h.NegativeSpans),
		PositiveBuckets:  floats(h.PositiveBuckets),
		NegativeBuckets:  floats(h.NegativeBuckets),
		CustomValues:     floats(h.CustomValues),
	}
	if err := fh.Validate(); err != nil {
		return nil, err
	}
	return fh, nil
}

func spans(ss []span) []histogram.Span {
	if ss == nil {
		return nil
	}
	out := make([]histogram.Span, len(ss))
	for i, s := range ss {
		out[i] = histogram.Span{Offset: s.Offset, Length: s.Length}
	}
	return out
}

func floats(ns []number) []float64 {
	if ns == nil {
		return nil
	}
	out := make([]float64, len(ns))
	for i, n := range ns {
		out[i] = float64(n)
	}
	return out
}
