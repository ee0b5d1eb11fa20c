package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// Sample is one observation: a timestamp in milliseconds since the Unix epoch
// and a float64 value. Prometheus stale markers (see IsStaleNaN) are ordinary
// values to storage and are kept bit-exactly.
type Sample struct {
	T int64
	V float64
}

// HSample is one native histogram observation: a timestamp in milliseconds
// and a histogram (exponential schema or custom buckets). Integer
// histograms travel as float histograms with integral counts; storage
// encodes those as integers. H's CounterResetHint says whether the sample
// is a gauge histogram (GaugeType) or, for a counter histogram, what the
// sender knew of a reset; storage keeps the hint and may refine an unknown
// one by comparing with the previous sample, as Prometheus' head does. A
// stale marker is a histogram whose Sum is the StaleNaN bit pattern.
type HSample struct {
	T int64
	H *histogram.FloatHistogram
}

// SeriesSamples is the samples of one label set in a Batch.
type SeriesSamples struct {
	Labels labels.Labels
	// Key optionally identifies the label set in the writer's own encoding
	// (remote-write: the wire bytes of its labels); equal keys must mean
	// equal label sets. Storage remembers which series a key named and then
	// skips decoding, validating and looking up its labels. With a Key,
	// Labels may be left empty: Batch.Decode yields them when needed.
	Key     []byte
	Samples []Sample
	// Histograms are the native histogram samples of the label set. A
	// series may hold floats at some timestamps and histograms at others,
	// as in Prometheus; at one timestamp it holds one value, the one
	// written last.
	Histograms []HSample
	// Exemplars are trace references attached to the series' samples.
	// Storage keeps a bounded number per tenant, newest first to go when
	// full; they are not subject to the durability promise of samples
	// (they survive a clean restart, a crash may lose the last ones).
	Exemplars []Exemplar
}

// Exemplar is one exemplar: its own labels (trace_id, span_id, …), a
// value and a timestamp in milliseconds.
type Exemplar struct {
	Labels labels.Labels
	T      int64
	V      float64
}

// Metadata describes a metric family: its type (counter, gauge,
// histogram, gaugehistogram, summary, info, stateset or unknown), unit
// and help text, as Prometheus' /api/v1/metadata answers them. Storage
// keeps the latest per tenant and family name, across restarts.
type Metadata struct {
	Family string
	Type   string
	Unit   string
	Help   string
}

// Batch is what ingest hands to storage in one call. The zero value is an
// empty batch ready to use.
type Batch struct {
	Series []SeriesSamples
	// Decode turns a Key into its labels, for series given by Key alone.
	Decode func(key []byte) (labels.Labels, error)
	// Metadata is metric metadata the sender told along with the batch.
	Metadata []Metadata
}

// LabelsOf returns the labels of series i, decoding its Key if need be.
func (b *Batch) LabelsOf(i int) (labels.Labels, error) {
	s := &b.Series[i]
	if !s.Labels.IsEmpty() || s.Key == nil || b.Decode == nil {
		return s.Labels, nil
	}
	return b.Decode(s.Key)
}

// Add appends samples for lset to the batch.
func (b *Batch) Add(lset labels.Labels, samples ...Sample) {
	b.Series = append(b.Series, SeriesSamples{Labels: lset, Samples: samples})
}

// AddHistograms appends histogram samples for lset to the batch.
func (b *Batch) AddHistograms(lset labels.Labels, hs ...HSample) {
	b.Series = append(b.Series, SeriesSamples{Labels: lset, Histograms: hs})
}

// Len returns the number of samples in the batch, histograms included.
func (b *Batch) Len() int {
	n := 0
	for i := range b.Series {
		n += len(b.Series[i].Samples) + len(b.Series[i].Histograms)
	}
	return n
}

// Reset empties the batch, keeping its capacity.
func (b *Batch) Reset() {
	clear(b.Series)
	b.Series = b.Series[:0]
	b.Decode = nil
	clear(b.Metadata)
	b.Metadata = b.Metadata[:0]
}

// Writer is how ingest hands samples to storage. Write returns only after
// every sample in b is durable: a crash one instant after a nil return loses
// none of them. A batch that fails validation is rejected whole and changes
// nothing; the error then wraps ErrInvalidSeries or ErrInvalidSample. Write
// does not retain b; the caller may reuse it. Write is safe for concurrent use.
type Writer interface {
	Write(ctx context.Context, tenant string, b *Batch) error
}

// Reader is how query reads. mint and maxt are inclusive, in milliseconds.
// It is safe for concurrent use.
type Reader interface {
	Querier(ctx context.Context, tenant string, mint, maxt int64) (Querier, error)
}

// SelectHints narrows a Select. A nil *SelectHints means the querier's whole
// time range.
type SelectHints struct {
	Start, End int64 // inclusive, milliseconds; narrowed to the querier's range
	// Limit caps the number of series returned; 0 means no limit. When the
	// limit cuts the result short, SeriesSet.Err is nil and Truncated
	// reports true through the optional Truncater interface.
	Limit int
	// Fields says which fields of its buckets a caller of SelectTier
	// reads (the others are left zero, and not decoded); zero means all.
	// Select ignores it.
	Fields BucketFields
	// Newest says that the caller reads only each series' newest sample
	// in the range (LastSampler): Select then does not bring the series'
	// head chunks into the CPU's caches ahead of the reads (warm.go).
	Newest bool
}

// Querier reads one tenant over a fixed time range. It reflects every write
// acknowledged before it was created (and possibly later ones). A Querier is
// safe for concurrent use; Close releases it.
type Querier interface {
	// Select returns the series matching all matchers, sorted by labels.
	Select(ctx context.Context, hints *SelectHints, ms ...*labels.Matcher) SeriesSet
	// LabelNames returns the sorted label names of series matching ms (all
	// series when ms is empty) that have samples in the querier's range.
	LabelNames(ctx context.Context, ms ...*labels.Matcher) ([]string, error)
	// LabelValues returns the sorted values of label name among series
	// matching ms that have samples in the querier's range.
	LabelValues(ctx context.Context, name string, ms ...*labels.Matcher) ([]string, error)
	Close() error
}

// SeriesSet iterates series: for ss.Next() { s := ss.At() }; then check ss.Err().
type SeriesSet interface {
	Next() bool
	At() Series
	Err() error
}

// Series is one series of a SeriesSet. Labels stays valid after the set
// moves on; the iterator must not be used after the Querier is closed.
type Series interface {
	Labels() labels.Labels
	// Iterator returns an iterator over the series' samples in the
	// querier's range, ascending by time, one value per timestamp. It may
	// reuse it when it is non-nil.
	Iterator(reuse Iterator) Iterator
}

// Iterator walks the samples of a series.
type Iterator interface {
	// Next advances to the next sample; false at the end or on error.
	Next() bool
	// Seek advances to the first sample with timestamp >= t; it never
	// moves backwards. It returns false when there is none.
	SeekTo(t int64) bool
	// At returns the current sample. When the current sample is a native
	// histogram (see HistogramIterator) its float value is meaningless.
	At() (int64, float64)
	Err() error
}

// FloatRangeIterator is what the iterators of storage's series also do:
// append every sample in [mint, maxt] at once (float samples only: a
// series that may hold native histograms has a HistogramIterator, which
// a caller reads sample by sample). A query reads thousands of series; a
// call per sample through the iterators' layers was a third of a
// selector's time (issue 18). Call it on a fresh iterator; it leaves the
// iterator exhausted.
type FloatRangeIterator interface {
	AppendFloats(mint, maxt int64, ts []int64, vs []float64) ([]int64, []float64, error)
}

// LastSampler is implemented by a Series that can often tell its newest
// sample at or before a time without reading its samples: an instant
// query's selector needs only that one (issue 18). known is false when
// the caller must read the samples (the newest is not in memory, is a
// histogram, or is later than maxt); found is whether the newest sample
// at or before maxt lies in [mint, maxt].
type LastSampler interface {
	LastFloat(mint, maxt int64) (t int64, v float64, found, known bool)
}

// AppendFloats appends it's samples in [mint, maxt], through its own
// AppendFloats when it has one, else one by one.
func AppendFloats(it Iterator, mint, maxt int64, ts []int64, vs []float64) ([]int64, []float64, error) {
	if r, ok := it.(FloatRangeIterator); ok {
		return r.AppendFloats(mint, maxt, ts, vs)
	}
	for ok := it.SeekTo(mint); ok; ok = it.Next() {
		t, v := it.At()
		if t > maxt {
			break
		}
		ts, vs = append(ts, t), append(vs, v)
	}
	return ts, vs, it.Err()
}

// HistogramIterator is implemented by the iterators of series that may
// hold native histogram samples; readers check for it once per series
// (an iterator that does not implement it yields floats only).
type HistogramIterator interface {
	Iterator
	// AtHistogram returns the histogram of the current sample, or nil when
	// the current sample is a float. The histogram is the caller's: the
	// iterator does not keep or reuse it.
	AtHistogram() *histogram.FloatHistogram
}

// IsStaleHistogram reports whether h is a Prometheus stale marker.
func IsStaleHistogram(h *histogram.FloatHistogram) bool {
	return h != nil && IsStaleNaN(h.Sum)
}

// MinTime and MaxTime are the earliest and latest timestamps storage keeps,
// in milliseconds (about ±5.8 million years); a sample outside them fails
// the write with ErrInvalidSample.
const (
	MinTime = minStorableT
	MaxTime = maxStorableT
)

// StaleNaN is the bit pattern of Prometheus' stale marker, a NaN that
// marks the end of a series.
const StaleNaN uint64 = 0x7ff0000000000002

// IsStaleNaN reports whether v is a Prometheus stale marker.
func IsStaleNaN(v float64) bool { return math.Float64bits(v) == StaleNaN }

// Sentinel errors. Callers classify with errors.Is.
var (
	// ErrInvalidSeries reports a label set that breaks the rules or limits.
	ErrInvalidSeries = errors.New("storage: invalid series")
	// ErrInvalidSample reports a sample that cannot be stored.
	ErrInvalidSample = errors.New("storage: invalid sample")
	// ErrTooManySeries reports that a write would exceed the active series limit.
	ErrTooManySeries = errors.New("storage: too many series")
	// ErrRateLimited reports a write over its tenant's ingestion rate; the
	// same write may succeed later (see RetryAfter).
	ErrRateLimited = errors.New("storage: ingestion rate limit exceeded")
	// ErrNotWritable reports that the DB refuses writes for now because its
	// disk does not take them (full or failing); the error is a
	// *NotWritableError with the reason. Writes resume by themselves once
	// the disk takes them again (see DB.Writable).
	ErrNotWritable = errors.New("storage: not writable")
	// ErrClosed reports use of a closed DB.
	ErrClosed = errors.New("storage: closed")
	// ErrCorrupt marks data on disk that does not decode.
	ErrCorrupt = errors.New("storage: corrupt data")
)

// invalidSeries formats a validation error wrapping ErrInvalidSeries.
func invalidSeries(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidSeries, fmt.Sprintf(format, args...))
}

// RetryAfter returns how long a writer should wait before retrying a write
// that failed with err (zero when err does not say).
func RetryAfter(err error) time.Duration {
	var r interface{ RetryAfter() time.Duration }
	if errors.As(err, &r) {
		return r.RetryAfter()
	}
	return 0
}
