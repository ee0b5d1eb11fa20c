package remotewrite

import (
	"errors"
	"fmt"
	"math"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/emsdb/tsdb/storage"
)

// ErrMalformed wraps every decoding error: the request body is not a valid
// message of the protocol it claims to be.
var ErrMalformed = errors.New("remotewrite: malformed request")

// ErrOtherVersion reports a body that is a message of the other protocol
// version than the one it was decoded as: read as the other version it
// would store nothing.
var ErrOtherVersion = errors.New("remotewrite: body of the other protocol version")

// ErrNoMetricName reports a series without a metric name (__name__), which
// the remote-write specification requires of every series.
var ErrNoMetricName = errors.New("remotewrite: series without a metric name")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Counts tells what a decoded request held besides float samples.
type Counts struct {
	Samples    int // float samples decoded into the batch
	Histograms int // native histogram samples, not stored
	Exemplars  int // exemplars, not stored
}

// Decoder decodes remote-write messages into storage batches. It reuses
// its buffers between calls and is not safe for concurrent use; keep one
// per goroutine (or in a sync.Pool).
type Decoder struct {
	// Reserve, when set, is told what decoding takes as it goes, before
	// or as each series, sample and symbol is decoded: it receives counts
	// ahead of what has been decoded (never behind by more than one item).
	// An error from it stops decoding and is returned as is. The handler
	// reserves memory from the in-flight budget with it.
	Reserve func(more Size) error
	// n is what this call has decoded; quota what Reserve was told;
	// reserveErr what Reserve answered, returned without context.
	n, quota   Size
	reserveErr error

	sb    labels.ScratchBuilder
	keySB labels.ScratchBuilder
	// decodeKey is labelsOfKey, bound once: batches point at it.
	decodeKey func([]byte) (labels.Labels, error)
	samples   []storage.Sample
	symbols   []string
	refs      []uint32
}

// NewDecoder returns a Decoder.
func NewDecoder() *Decoder {
	d := &Decoder{sb: labels.NewScratchBuilder(16), keySB: labels.NewScratchBuilder(16)}
	d.decodeKey = d.labelsOfKey
	return d
}

// DecodeV1 decodes an uncompressed prometheus.WriteRequest (remote-write
// 1.0) and appends its series to b. On error b may hold part of the
// request; the caller must discard it.
//
// A series whose labels are contiguous on the wire (as every sender writes
// them) is handed over by Key, the raw bytes of its Label fields, and its
// labels are decoded only if storage has not seen that key; b.Decode is
// set for that. Malformed labels then fail the Write with ErrInvalidSeries.
func (d *Decoder) DecodeV1(buf []byte, b *storage.Batch) (Counts, error) {
	var c Counts
	d.samples = d.samples[:0]
	d.n, d.quota, d.reserveErr = Size{}, Size{}, nil
	b.Decode = d.decodeKey
	r := pbReader{b: buf}
	series, v2Fields := 0, 0
	for !r.done() {
		field, typ, err := r.key()
		if err != nil {
			return c, err
		}
		if field == 1 && typ == protowire.BytesType { // timeseries
			msg, err := r.bytes()
			if err != nil {
				return c, err
			}
			series++
			if err := d.decodeV1Series(msg, b, &c); err != nil {
				if d.reserveErr != nil {
					return c, d.reserveErr
				}
				return c, fmt.Errorf("timeseries %d: %w", series-1, err)
			}
			continue
		}
		if (field == 4 || field == 5) && typ == protowire.BytesType {
			v2Fields++
		}
		if err := r.skip(field, typ); err != nil { // metadata (3) and unknown fields
			return c, err
		}
	}
	if series == 0 && v2Fields > 0 {
		return c, fmt.Errorf("%w: it has no timeseries (field 1) but %d symbols or timeseries of io.prometheus.write.v2.Request (fields 4 and 5): it looks like remote-write 2.0", ErrOtherVersion, v2Fields)
	}
	return c, nil
}

func (d *Decoder) decodeV1Series(msg []byte, b *storage.Batch, c *Counts) error {
	start := len(d.samples)
	r := pbReader{b: msg}
	keyStart, keyEnd, contiguous := -1, -1, true
	for !r.done() {
		off := len(msg) - len(r.b)
		field, typ, err := r.key()
		if err != nil {
			return err
		}
		switch {
		case field == 1 && typ == protowire.BytesType: // Label
			if _, err := r.bytes(); err != nil {
				return err
			}
			if keyStart < 0 {
				keyStart = off
			} else if keyEnd != off {
				contiguous = false
			}
			keyEnd = len(msg) - len(r.b)
		case field == 2 && typ == protowire.BytesType: // Sample
			m, err := r.bytes()
			if err != nil {
				return err
			}
			s, err := decodeSample(m)
			if err != nil {
				return err
			}
			d.samples = append(d.samples, s)
			if d.n.Samples++; d.n.Samples > d.quota.Samples {
				if err := d.reserveAhead(); err != nil {
					return err
				}
			}
		case field == 3 && typ == protowire.BytesType:
			c.Exemplars++
			if _, err := r.bytes(); err != nil {
				return err
			}
		case field == 4 && typ == protowire.BytesType:
			c.Histograms++
			if _, err := r.bytes(); err != nil {
				return err
			}
		default:
			if err := r.skip(field, typ); err != nil {
				return err
			}
		}
	}
	n := len(d.samples) - start
	if n == 0 {
		return nil // exemplar- or histogram-only series
	}
	c.Samples += n
	if d.n.Series++; d.over() {
		if err := d.reserveAhead(); err != nil {
			return err
		}
	}
	samples := d.samples[start:len(d.samples):len(d.samples)]
	if keyStart >= 0 && contiguous {
		b.Series = append(b.Series, storage.SeriesSamples{Key: msg[keyStart:keyEnd], Samples: samples})
		return nil
	}
	// Labels interleaved with other fields (or none): decode them now.
	lset, err := d.labelsOf(&d.sb, msg)
	if err != nil {
		return err
	}
	if err := checkName(lset); err != nil {
		return err
	}
	b.Add(lset, samples...)
	return nil
}

// checkName refuses a series without a metric name, as the remote-write
// specification says receivers must.
func checkName(lset labels.Labels) error {
	if lset.Get(model.MetricNameLabel) == "" {
		return fmt.Errorf("%w: %s has no %s label", ErrNoMetricName, lset, model.MetricNameLabel)
	}
	return nil
}

// labelsOfKey decodes the labels of a series Key. Storage calls it only
// for keys it has not seen, so the check of the metric name costs nothing
// on the hot path.
func (d *Decoder) labelsOfKey(key []byte) (labels.Labels, error) {
	lset, err := d.labelsOf(&d.keySB, key)
	if err != nil {
		return lset, err
	}
	return lset, checkName(lset)
}

// labelsOf decodes the Label fields (1) of a v1 TimeSeries message, or of
// a Key cut out of one, skipping other fields.
func (d *Decoder) labelsOf(sb *labels.ScratchBuilder, msg []byte) (labels.Labels, error) {
	sb.Reset()
	r := pbReader{b: msg}
	for !r.done() {
		field, typ, err := r.key()
		if err != nil {
			return labels.EmptyLabels(), err
		}
		if field != 1 || typ != protowire.BytesType {
			if err := r.skip(field, typ); err != nil {
				return labels.EmptyLabels(), err
			}
			continue
		}
		m, err := r.bytes()
		if err != nil {
			return labels.EmptyLabels(), err
		}
		name, value, err := decodeLabel(m)
		if err != nil {
			return labels.EmptyLabels(), err
		}
		sb.Add(name, value)
	}
	sb.Sort()
	return sb.Labels(), nil
}

// finishSeries appends the series being built to b. Samples are sliced out
// of d.samples, which is only appended to during one Decode call, so the
// batch may keep the slices until the next call.
func (d *Decoder) finishSeries(b *storage.Batch, start int, c *Counts) error {
	n := len(d.samples) - start
	if n == 0 {
		return nil // exemplar- or histogram-only series
	}
	d.sb.Sort()
	lset := d.sb.Labels()
	if err := checkName(lset); err != nil {
		return err
	}
	if d.n.Series++; d.over() {
		if err := d.reserveAhead(); err != nil {
			return err
		}
	}
	b.Add(lset, d.samples[start:len(d.samples):len(d.samples)]...)
	c.Samples += n
	return nil
}

func decodeLabel(m []byte) (name, value string, err error) {
	r := pbReader{b: m}
	for !r.done() {
		field, typ, err := r.key()
		if err != nil {
			return "", "", err
		}
		switch {
		case field == 1 && typ == protowire.BytesType:
			v, err := r.bytes()
			if err != nil {
				return "", "", err
			}
			name = string(v)
		case field == 2 && typ == protowire.BytesType:
			v, err := r.bytes()
			if err != nil {
				return "", "", err
			}
			value = string(v)
		default:
			if err := r.skip(field, typ); err != nil {
				return "", "", err
			}
		}
	}
	return name, value, nil
}

// decodeSample reads a Sample of either version: value (1, double) and
// timestamp (2, int64); v2's start_timestamp (3) is skipped.
func decodeSample(m []byte) (storage.Sample, error) {
	var s storage.Sample
	r := pbReader{b: m}
	for !r.done() {
		field, typ, err := r.key()
		if err != nil {
			return s, err
		}
		switch {
		case field == 1 && typ == protowire.Fixed64Type:
			v, err := r.fixed64()
			if err != nil {
				return s, err
			}
			s.V = math.Float64frombits(v)
		case field == 2 && typ == protowire.VarintType:
			v, err := r.varint()
			if err != nil {
				return s, err
			}
			s.T = int64(v)
		default:
			if err := r.skip(field, typ); err != nil {
				return s, err
			}
		}
	}
	return s, nil
}

// DecodeV2 decodes an uncompressed io.prometheus.write.v2.Request
// (remote-write 2.0) and appends its series to b. Labels are references
// into the request's symbols table, whose first entry must be "".
func (d *Decoder) DecodeV2(buf []byte, b *storage.Batch) (Counts, error) {
	var c Counts
	d.samples = d.samples[:0]
	d.symbols = d.symbols[:0]
	d.n, d.quota, d.reserveErr = Size{}, Size{}, nil
	// Symbols may come after the series on the wire: read them first.
	r := pbReader{b: buf}
	for !r.done() {
		field, typ, err := r.key()
		if err != nil {
			return c, err
		}
		if field == 4 && typ == protowire.BytesType {
			v, err := r.bytes()
			if err != nil {
				return c, err
			}
			d.symbols = append(d.symbols, string(v))
			if d.n.Symbols++; d.n.Symbols > d.quota.Symbols {
				if err := d.reserveAhead(); err != nil {
					return c, err
				}
			}
			continue
		}
		if err := r.skip(field, typ); err != nil {
			return c, err
		}
	}
	if len(d.symbols) > 0 && d.symbols[0] != "" {
		return c, malformed("symbols[0] must be the empty string, got %q", d.symbols[0])
	}
	r = pbReader{b: buf}
	series, v1Fields := 0, 0
	for !r.done() {
		field, typ, err := r.key()
		if err != nil {
			return c, err
		}
		if field == 5 && typ == protowire.BytesType {
			msg, err := r.bytes()
			if err != nil {
				return c, err
			}
			series++
			if err := d.decodeV2Series(msg, b, &c); err != nil {
				if d.reserveErr != nil {
					return c, d.reserveErr
				}
				return c, fmt.Errorf("timeseries %d: %w", series-1, err)
			}
			continue
		}
		if field == 1 && typ == protowire.BytesType { // reserved in 2.0
			v1Fields++
		}
		if err := r.skip(field, typ); err != nil {
			return c, err
		}
	}
	if series == 0 && v1Fields > 0 {
		return c, fmt.Errorf("%w: it has no timeseries (field 5) but %d timeseries of prometheus.WriteRequest (field 1): it looks like remote-write 1.0", ErrOtherVersion, v1Fields)
	}
	return c, nil
}

func (d *Decoder) decodeV2Series(msg []byte, b *storage.Batch, c *Counts) error {
	d.refs = d.refs[:0]
	start := len(d.samples)
	r := pbReader{b: msg}
	for !r.done() {
		field, typ, err := r.key()
		if err != nil {
			return err
		}
		switch {
		case field == 1 && typ == protowire.BytesType: // packed labels_refs
			m, err := r.bytes()
			if err != nil {
				return err
			}
			pr := pbReader{b: m}
			for !pr.done() {
				v, err := pr.varint()
				if err != nil {
					return err
				}
				if v > math.MaxUint32 {
					return malformed("label reference %d overflows uint32", v)
				}
				d.refs = append(d.refs, uint32(v))
			}
		case field == 1 && typ == protowire.VarintType: // unpacked labels_refs
			v, err := r.varint()
			if err != nil {
				return err
			}
			if v > math.MaxUint32 {
				return malformed("label reference %d overflows uint32", v)
			}
			d.refs = append(d.refs, uint32(v))
		case field == 2 && typ == protowire.BytesType:
			m, err := r.bytes()
			if err != nil {
				return err
			}
			s, err := decodeSample(m)
			if err != nil {
				return err
			}
			d.samples = append(d.samples, s)
			if d.n.Samples++; d.n.Samples > d.quota.Samples {
				if err := d.reserveAhead(); err != nil {
					return err
				}
			}
		case field == 3 && typ == protowire.BytesType:
			c.Histograms++
			if _, err := r.bytes(); err != nil {
				return err
			}
		case field == 4 && typ == protowire.BytesType:
			c.Exemplars++
			if _, err := r.bytes(); err != nil {
				return err
			}
		default: // metadata (5), created_timestamp (6), unknown
			if err := r.skip(field, typ); err != nil {
				return err
			}
		}
	}
	if len(d.refs)%2 != 0 {
		return malformed("odd number (%d) of label references", len(d.refs))
	}
	d.sb.Reset()
	for i := 0; i < len(d.refs); i += 2 {
		n, v := d.refs[i], d.refs[i+1]
		if int(n) >= len(d.symbols) || int(v) >= len(d.symbols) {
			return malformed("label reference %d/%d outside the %d symbols", n, v, len(d.symbols))
		}
		d.sb.Add(d.symbols[n], d.symbols[v])
	}
	return d.finishSeries(b, start, c)
}

// pbReader reads protobuf wire format with protowire. It never allocates:
// a bytes field is a subslice of the message it was read from. Every error
// wraps ErrMalformed.
type pbReader struct{ b []byte }

func (r *pbReader) done() bool { return len(r.b) == 0 }

// wireError turns a protowire error code into ErrMalformed, saying what
// was being read.
func wireError(what string, n int) error {
	return fmt.Errorf("%w: %s: %w", ErrMalformed, what, protowire.ParseError(n))
}

func (r *pbReader) key() (protowire.Number, protowire.Type, error) {
	num, typ, n := protowire.ConsumeTag(r.b)
	if n < 0 {
		return 0, 0, wireError("field tag", n)
	}
	r.b = r.b[n:]
	return num, typ, nil
}

func (r *pbReader) varint() (uint64, error) {
	v, n := protowire.ConsumeVarint(r.b)
	if n < 0 {
		return 0, wireError("varint", n)
	}
	r.b = r.b[n:]
	return v, nil
}

func (r *pbReader) bytes() ([]byte, error) {
	v, n := protowire.ConsumeBytes(r.b)
	if n < 0 {
		return nil, wireError("length-delimited field", n)
	}
	r.b = r.b[n:]
	return v, nil
}

func (r *pbReader) fixed64() (uint64, error) {
	v, n := protowire.ConsumeFixed64(r.b)
	if n < 0 {
		return 0, wireError("fixed64", n)
	}
	r.b = r.b[n:]
	return v, nil
}

// skip steps over the value of a field the decoder does not read; groups
// are skipped whole, as protobuf parsers do.
func (r *pbReader) skip(num protowire.Number, typ protowire.Type) error {
	n := protowire.ConsumeFieldValue(num, typ, r.b)
	if n < 0 {
		return wireError(fmt.Sprintf("field %d", num), n)
	}
	r.b = r.b[n:]
	return nil
}

// Size is what decoding a request has produced or may produce.
type Size struct {
	Series  int // timeseries messages
	Samples int // float samples
	Symbols int // symbols (2.0)
}

// reserveAhead makes sure Reserve has been told of everything decoded so
// far, d.n, asking for more than that at a time (a quarter more, at least
// 256 of each kind), so that the check costs an integer comparison per
// item and a call now and then.
func (d *Decoder) reserveAhead() error {
	if d.Reserve == nil {
		return nil
	}
	step := func(n, have int) int {
		if n <= have {
			return 0
		}
		return max(n-have, have/4, 256)
	}
	more := Size{
		Series:  step(d.n.Series, d.quota.Series),
		Samples: step(d.n.Samples, d.quota.Samples),
		Symbols: step(d.n.Symbols, d.quota.Symbols),
	}
	if err := d.Reserve(more); err != nil {
		d.reserveErr = err
		return err
	}
	d.quota.Series += more.Series
	d.quota.Samples += more.Samples
	d.quota.Symbols += more.Symbols
	return nil
}

// over reports whether d.n has outgrown what Reserve was told.
func (d *Decoder) over() bool {
	return d.n.Series > d.quota.Series || d.n.Samples > d.quota.Samples || d.n.Symbols > d.quota.Symbols
}

// measure counts the series, samples and symbols of an uncompressed
// request of either version without decoding or allocating. The handler
// calls it only when the in-flight budget refuses a request part way
// through decoding: to tell one that can never fit (413) from one that
// must wait its turn (503). A pass of its own for every request would
// cost nearly as much as decoding.
func measure(buf []byte, v2 bool) (Size, error) {
	var sz Size
	seriesField := protowire.Number(1)
	if v2 {
		seriesField = 5
	}
	r := pbReader{b: buf}
	for !r.done() {
		field, typ, err := r.key()
		if err != nil {
			return sz, err
		}
		switch {
		case field == seriesField && typ == protowire.BytesType:
			msg, err := r.bytes()
			if err != nil {
				return sz, err
			}
			sz.Series++
			sr := pbReader{b: msg}
			for !sr.done() {
				f, t, err := sr.key()
				if err != nil {
					return sz, err
				}
				if f == 2 && t == protowire.BytesType {
					sz.Samples++
				}
				if err := sr.skip(f, t); err != nil {
					return sz, err
				}
			}
		case v2 && field == 4 && typ == protowire.BytesType:
			sz.Symbols++
			if err := r.skip(field, typ); err != nil {
				return sz, err
			}
		default:
			if err := r.skip(field, typ); err != nil {
				return sz, err
			}
		}
	}
	return sz, nil
}

// Trim drops buffers grown past what ordinary requests need, so that a
// pooled decoder does not keep a huge request's memory.
func (d *Decoder) Trim(maxSamples int) {
	if cap(d.samples) > maxSamples {
		d.samples = nil
	}
	if cap(d.symbols) > maxSamples {
		d.symbols = nil
	}
}
