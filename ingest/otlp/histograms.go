package otlp

import (
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/histogram"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/emsdb/tsdb/storage"
)

// defaultZeroThreshold is the zero bucket's width when the sender gives
// none, as Prometheus.
const defaultZeroThreshold = 1e-128

// maxBuckets caps the buckets of one histogram point, so that a small
// body with a huge offset gap cannot make a huge histogram.
const maxBuckets = 1 << 14

// exponentialToNative converts an OTLP exponential histogram point to a
// native histogram as Prometheus does: the scale is the schema; a scale
// above 8 is downscaled to 8 by merging buckets; one below -4 is refused.
// NB: Prometheus ignores the point's zero_threshold (a TODO in its code)
// and always uses 1e-128; this uses the sender's when it gives one.
func exponentialToNative(p pmetric.ExponentialHistogramDataPoint) (storage.HSample, error) {
	scale := p.Scale()
	if scale < histogram.ExponentialSchemaMin {
		return storage.HSample{}, fmt.Errorf("exponential histogram scale %d is below the least native histogram schema %d", scale, histogram.ExponentialSchemaMin)
	}
	if n := p.Positive().BucketCounts().Len() + p.Negative().BucketCounts().Len(); n > maxBuckets {
		return storage.HSample{}, fmt.Errorf("exponential histogram of %d buckets is over the limit of %d", n, maxBuckets)
	}
	var scaleDown int32
	if scale > histogram.ExponentialSchemaMax {
		scaleDown = scale - histogram.ExponentialSchemaMax
		scale = histogram.ExponentialSchemaMax
	}
	zt := p.ZeroThreshold()
	if !(zt > 0) || math.IsInf(zt, 0) { // also NaN
		zt = defaultZeroThreshold
	}
	if p.Flags().NoRecordedValue() {
		return storage.HSample{H: staleHistogram(scale, nil)}, nil
	}
	pSpans, pDeltas := bucketsLayout(p.Positive().BucketCounts().AsRaw(), p.Positive().Offset(), scaleDown, true)
	nSpans, nDeltas := bucketsLayout(p.Negative().BucketCounts().AsRaw(), p.Negative().Offset(), scaleDown, true)
	h := &histogram.Histogram{
		// NB: the counter reset hint stays unknown, as Prometheus: storage
		// detects resets by comparing with the previous sample.
		CounterResetHint: histogram.UnknownCounterReset,
		Schema:           scale,
		ZeroThreshold:    zt,
		ZeroCount:        p.ZeroCount(),
		Count:            p.Count(),
		PositiveSpans:    pSpans,
		PositiveBuckets:  pDeltas,
		NegativeSpans:    nSpans,
		NegativeBuckets:  nDeltas,
	}
	if p.HasSum() {
		h.Sum = p.Sum()
	}
	if err := h.Validate(); err != nil {
		return storage.HSample{}, fmt.Errorf("exponential histogram: %w", err)
	}
	return storage.HSample{H: h.ToFloat(nil)}, nil
}

// explicitToCustomBuckets converts an OTLP explicit-bucket histogram point
// to a native histogram with custom buckets (schema -53), as Prometheus
// does with convert_histograms_to_nhcb: the explicit bounds are the custom
// values.
func explicitToCustomBuckets(p pmetric.HistogramDataPoint) (storage.HSample, error) {
	bounds := p.ExplicitBounds().AsRaw()
	if len(bounds) > maxBuckets {
		return storage.HSample{}, fmt.Errorf("histogram of %d buckets is over the limit of %d", len(bounds), maxBuckets)
	}
	if p.Flags().NoRecordedValue() {
		return storage.HSample{H: staleHistogram(histogram.CustomBucketsSchema, bounds)}, nil
	}
	buckets := p.BucketCounts().AsRaw()
	offset := 0
	for offset < len(buckets) && buckets[offset] == 0 {
		offset++
	}
	spans, deltas := bucketsLayout(buckets[offset:], int32(offset), 0, false)
	h := &histogram.Histogram{
		CounterResetHint: histogram.UnknownCounterReset,
		Schema:           histogram.CustomBucketsSchema,
		Count:            p.Count(),
		PositiveSpans:    spans,
		PositiveBuckets:  deltas,
		CustomValues:     bounds,
	}
	if p.HasSum() {
		h.Sum = p.Sum()
	}
	if err := h.Validate(); err != nil {
		return storage.HSample{}, fmt.Errorf("histogram with custom buckets: %w", err)
	}
	return storage.HSample{H: h.ToFloat(nil)}, nil
}

// staleHistogram is a stale marker of the given schema.
func staleHistogram(schema int32, customValues []float64) *histogram.FloatHistogram {
	return &histogram.FloatHistogram{
		Schema:       schema,
		Sum:          math.Float64frombits(storage.StaleNaN),
		CustomValues: customValues,
	}
}

// bucketsLayout turns OTLP bucket counts starting at offset into native
// histogram spans and deltas, merging 2^scaleDown buckets into one. With
// adjustOffset the indices are shifted by one: an OTLP exponential bucket
// at index i is (base^i, base^(i+1)], a native one at i is
// (base^(i-1), base^i].
//
// It is Prometheus' convertBucketsLayout
// (storage/remote/otlptranslator/prometheusremotewrite/histograms.go,
// Apache-2.0, Copyright The Prometheus Authors), unchanged in behaviour.
func bucketsLayout(bucketCounts []uint64, offset, scaleDown int32, adjustOffset bool) ([]histogram.Span, []int64) {
	if len(bucketCounts) == 0 {
		return nil, nil
	}
	var (
		spans     []histogram.Span
		deltas    []int64
		count     int64
		prevCount int64
	)
	appendDelta := func(count int64) {
		spans[len(spans)-1].Length++
		deltas = append(deltas, count-prevCount)
		prevCount = count
	}
	// bucketIdx is the index of the bucket being collected in count.
	bucketIdx := offset>>scaleDown + 1
	// lastIdx is the index of the last bucket appended to the spans.
	lastIdx := bucketIdx - 1
	initialOffset := offset
	if adjustOffset {
		initialOffset = initialOffset>>scaleDown + 1
	}
	spans = append(spans, histogram.Span{Offset: initialOffset})
	appendBucket := func() {
		gap := bucketIdx - lastIdx - 1
		if gap > 2 {
			// A gap of more than two buckets starts a new span (the
			// constant of client_golang).
			spans = append(spans, histogram.Span{Offset: gap})
		} else {
			for range gap {
				appendDelta(0)
			}
		}
		appendDelta(count)
		lastIdx = bucketIdx
	}
	for i := range bucketCounts {
		next := (int32(i)+offset)>>scaleDown + 1
		if bucketIdx == next { // not enough buckets collected to merge yet
			count += int64(bucketCounts[i])
			continue
		}
		// Empty buckets are not appended: the gap before the next
		// appended bucket covers them.
		if count != 0 {
			appendBucket()
		}
		count = int64(bucketCounts[i])
		bucketIdx = next
	}
	appendBucket() // always the last bucket
	return spans, deltas
}
