package remotewrite

import (
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/histogram"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/emsdb/tsdb/storage"
)

// Field numbers of Histogram, the same in prometheus.Histogram (1.0) and
// io.prometheus.write.v2.Histogram (2.0, which adds start_timestamp, 17).
const (
	hCountInt      = 1
	hCountFloat    = 2
	hSum           = 3
	hSchema        = 4
	hZeroThreshold = 5
	hZeroCountInt  = 6
	hZeroCountFlt  = 7
	hNegSpans      = 8
	hNegDeltas     = 9
	hNegCounts     = 10
	hPosSpans      = 11
	hPosDeltas     = 12
	hPosCounts     = 13
	hResetHint     = 14
	hTimestamp     = 15
	hCustomValues  = 16
)

// maxHistogramBuckets bounds the buckets (deltas or counts), spans and
// custom values of one histogram, each kind on its own: it bounds what
// one message may make the decoder allocate before the memory budget is
// told. Prometheus' clients default to 160 buckets.
const maxHistogramBuckets = 1 << 15

// rawHistogram is a Histogram message as read, before it is known to be
// an integer or a float histogram.
type rawHistogram struct {
	t                      int64
	isFloat                bool
	intFields, floatFields int // fields of either kind seen, for mixing
	countInt, zeroInt      uint64
	count, zero            float64
	sum, zeroThreshold     float64
	schema                 int32
	hint                   histogram.CounterResetHint
	negSpans, posSpans     []histogram.Span
	negDeltas, posDeltas   []int64
	negCounts, posCounts   []float64
	custom                 []float64
}

// decodeHistogram reads a Histogram message of either version and returns
// it as a float histogram (integer counts become integral floats), after
// the checks Prometheus makes (spans against buckets, counts, schema,
// custom bounds). It returns the number of buckets, spans and custom
// values it holds, for the memory budget.
func decodeHistogram(m []byte) (storage.HSample, int, error) {
	var h rawHistogram
	r := pbReader{b: m}
	for !r.done() {
		field, typ, err := r.key()
		if err != nil {
			return storage.HSample{}, 0, err
		}
		if err := h.field(&r, field, typ); err != nil {
			return storage.HSample{}, 0, err
		}
	}
	if h.intFields > 0 && h.floatFields > 0 {
		return storage.HSample{}, 0, malformed("histogram mixes integer fields (count_int, zero_count_int, deltas) with float ones (count_float, zero_count_float, counts)")
	}
	n := len(h.negSpans) + len(h.posSpans) + len(h.negDeltas) + len(h.posDeltas) + len(h.negCounts) + len(h.posCounts) + len(h.custom)
	var fh *histogram.FloatHistogram
	if h.isFloat {
		fh = &histogram.FloatHistogram{
			CounterResetHint: h.hint,
			Schema:           h.schema,
			ZeroThreshold:    h.zeroThreshold,
			ZeroCount:        h.zero,
			Count:            h.count,
			Sum:              h.sum,
			PositiveSpans:    h.posSpans,
			NegativeSpans:    h.negSpans,
			PositiveBuckets:  h.posCounts,
			NegativeBuckets:  h.negCounts,
			CustomValues:     h.custom,
		}
		if err := fh.Validate(); err != nil {
			return storage.HSample{}, 0, fmt.Errorf("%w: float histogram at %d: %w", ErrMalformed, h.t, err)
		}
	} else {
		ih := &histogram.Histogram{
			CounterResetHint: h.hint,
			Schema:           h.schema,
			ZeroThreshold:    h.zeroThreshold,
			ZeroCount:        h.zeroInt,
			Count:            h.countInt,
			Sum:              h.sum,
			PositiveSpans:    h.posSpans,
			NegativeSpans:    h.negSpans,
			PositiveBuckets:  h.posDeltas,
			NegativeBuckets:  h.negDeltas,
			CustomValues:     h.custom,
		}
		if err := ih.Validate(); err != nil {
			return storage.HSample{}, 0, fmt.Errorf("%w: histogram at %d: %w", ErrMalformed, h.t, err)
		}
		fh = ih.ToFloat(nil)
	}
	return storage.HSample{T: h.t, H: fh}, n, nil
}

// field reads one field of a Histogram message.
func (h *rawHistogram) field(r *pbReader, field protowire.Number, typ protowire.Type) error {
	switch {
	case field == hCountInt && typ == protowire.VarintType:
		v, err := r.varint()
		h.countInt, h.isFloat = v, false
		h.intFields++
		return err
	case field == hCountFloat && typ == protowire.Fixed64Type:
		v, err := r.fixed64()
		h.count, h.isFloat = math.Float64frombits(v), true
		h.floatFields++
		return err
	case field == hSum && typ == protowire.Fixed64Type:
		v, err := r.fixed64()
		h.sum = math.Float64frombits(v)
		return err
	case field == hSchema && typ == protowire.VarintType:
		v, err := r.varint()
		s := protowire.DecodeZigZag(v)
		if s < math.MinInt32 || s > math.MaxInt32 {
			return malformed("histogram schema %d overflows int32", s)
		}
		h.schema = int32(s)
		return err
	case field == hZeroThreshold && typ == protowire.Fixed64Type:
		v, err := r.fixed64()
		h.zeroThreshold = math.Float64frombits(v)
		return err
	case field == hZeroCountInt && typ == protowire.VarintType:
		v, err := r.varint()
		h.zeroInt = v
		h.intFields++
		return err
	case field == hZeroCountFlt && typ == protowire.Fixed64Type:
		v, err := r.fixed64()
		h.zero = math.Float64frombits(v)
		h.floatFields++
		return err
	case (field == hNegSpans || field == hPosSpans) && typ == protowire.BytesType:
		m, err := r.bytes()
		if err != nil {
			return err
		}
		sp, err := decodeSpan(m)
		if err != nil {
			return err
		}
		dst := &h.posSpans
		if field == hNegSpans {
			dst = &h.negSpans
		}
		if len(*dst) >= maxHistogramBuckets {
			return malformed("histogram has more than %d spans on one side", maxHistogramBuckets)
		}
		*dst = append(*dst, sp)
		return nil
	case field == hNegDeltas || field == hPosDeltas:
		dst := &h.posDeltas
		if field == hNegDeltas {
			dst = &h.negDeltas
		}
		h.intFields++
		return readSint64s(r, typ, dst)
	case field == hNegCounts || field == hPosCounts || field == hCustomValues:
		dst := &h.posCounts
		switch field {
		case hNegCounts:
			dst = &h.negCounts
			h.floatFields++
		case hPosCounts:
			h.floatFields++
		default:
			dst = &h.custom
		}
		return readDoubles(r, typ, dst)
	case field == hResetHint && typ == protowire.VarintType:
		v, err := r.varint()
		if err != nil {
			return err
		}
		switch v {
		case 0:
			h.hint = histogram.UnknownCounterReset
		case 1:
			h.hint = histogram.CounterReset
		case 2:
			h.hint = histogram.NotCounterReset
		case 3:
			h.hint = histogram.GaugeType
		default:
			return malformed("histogram reset_hint %d is not one of 0-3", v)
		}
		return nil
	case field == hTimestamp && typ == protowire.VarintType:
		v, err := r.varint()
		h.t = int64(v)
		return err
	default: // start_timestamp (2.0) and unknown fields
		return r.skip(field, typ)
	}
}

func decodeSpan(m []byte) (histogram.Span, error) {
	var sp histogram.Span
	r := pbReader{b: m}
	for !r.done() {
		field, typ, err := r.key()
		if err != nil {
			return sp, err
		}
		switch {
		case field == 1 && typ == protowire.VarintType:
			v, err := r.varint()
			if err != nil {
				return sp, err
			}
			o := protowire.DecodeZigZag(v)
			if o < math.MinInt32 || o > math.MaxInt32 {
				return sp, malformed("bucket span offset %d overflows int32", o)
			}
			sp.Offset = int32(o)
		case field == 2 && typ == protowire.VarintType:
			v, err := r.varint()
			if err != nil {
				return sp, err
			}
			if v > math.MaxUint32 {
				return sp, malformed("bucket span length %d overflows uint32", v)
			}
			sp.Length = uint32(v)
		default:
			if err := r.skip(field, typ); err != nil {
				return sp, err
			}
		}
	}
	return sp, nil
}

// readSint64s reads a repeated sint64 field, packed or not.
func readSint64s(r *pbReader, typ protowire.Type, dst *[]int64) error {
	switch typ {
	case protowire.VarintType:
		if len(*dst) >= maxHistogramBuckets {
			return tooManyBuckets()
		}
		v, err := r.varint()
		*dst = append(*dst, protowire.DecodeZigZag(v))
		return err
	case protowire.BytesType:
		m, err := r.bytes()
		if err != nil {
			return err
		}
		pr := pbReader{b: m}
		for !pr.done() {
			if len(*dst) >= maxHistogramBuckets {
				return tooManyBuckets()
			}
			v, err := pr.varint()
			if err != nil {
				return err
			}
			*dst = append(*dst, protowire.DecodeZigZag(v))
		}
		return nil
	default:
		return malformed("repeated sint64 field of wire type %d", typ)
	}
}

// readDoubles reads a repeated double field, packed or not.
func readDoubles(r *pbReader, typ protowire.Type, dst *[]float64) error {
	switch typ {
	case protowire.Fixed64Type:
		if len(*dst) >= maxHistogramBuckets {
			return tooManyBuckets()
		}
		v, err := r.fixed64()
		*dst = append(*dst, math.Float64frombits(v))
		return err
	case protowire.BytesType:
		m, err := r.bytes()
		if err != nil {
			return err
		}
		if len(m)%8 != 0 {
			return malformed("packed doubles of %d bytes", len(m))
		}
		if len(*dst)+len(m)/8 > maxHistogramBuckets {
			return tooManyBuckets()
		}
		for i := 0; i < len(m); i += 8 {
			v, _ := protowire.ConsumeFixed64(m[i:])
			*dst = append(*dst, math.Float64frombits(v))
		}
		return nil
	default:
		return malformed("repeated double field of wire type %d", typ)
	}
}

func tooManyBuckets() error {
	return malformed("histogram has more than %d buckets (or custom values) on one side", maxHistogramBuckets)
}
