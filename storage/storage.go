package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// Sample is one observation: a timestamp in milliseconds since the Unix epoch
// and a float64 value. Prometheus stale markers (see IsStaleNaN) are ordinary
// values to storage and are kept bit-exactly.
type Sample struct {
	T int64
	V float64
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
}

// Batch is what ingest hands to storage in one call. The zero value is an
// empty batch ready to use.
type Batch struct {
	Series []SeriesSamples
	// Decode turns a Key into its labels, for series given by Key alone.
	Decode func(key []byte) (labels.Labels, error)
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

// Len returns the number of samples in the batch.
func (b *Batch) Len() int {
	n := 0
	for i := range b.Series {
		n += len(b.Series[i].Samples)
	}
	return n
}

// Reset empties the batch, keeping its capacity.
func (b *Batch) Reset() {
	clear(b.Series)
	b.Series = b.Series[:0]
	b.Decode = nil
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
	// At returns the current sample.
	At() (int64, float64)
	Err() error
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
