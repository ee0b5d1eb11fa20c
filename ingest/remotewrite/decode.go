package remotewrite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"unsafe"

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

// Counts tells what a decoded request held.
type Counts struct {
	Samples    int // float samples decoded into the batch
	Histograms int // native histogram samples decoded into the batch
	Exemplars  int // exemplars decoded into the batch
	Metadata   int // metadata entries (1.0) or series with metadata (2.0)
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
	hsamples  []storage.HSample
	exemplars []storage.Exemplar
	symbols   []string
	refs      []uint32
	exSB      labels.ScratchBuilder
	exRefs    []uint32
	// keys holds the Keys of a 2.0 request's series: their labels in
	// 1.0's wire form (Label fields), which labelsOfKey decodes.
	keys []byte
}

// NewDecoder returns a Decoder.
func NewDecoder() *Decoder {
	d := &Decoder{sb: labels.NewScratchBuilder(16), keySB: labels.NewScratchBuilder(16), exSB: labels.NewScratchBuilder(4)}
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
	d.reset()
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
		if field == 3 && typ == protowire.BytesType { // metadata
			m, err := r.bytes()
			if err != nil {
				return c, err
			}
			md, err := decodeV1Metadata(m)
			if err != nil {
				return c, fmt.Errorf("metadata %d: %w", c.Metadata, err)
			}
			b.Metadata = append(b.Metadata, md)
			c.Metadata++
			d.n.Metadata++
			d.n.Bytes += len(m)
			if d.over() {
				if err := d.reserveAhead(); err != nil {
					return c, err
				}
			}
			continue
		}
		if (field == 4 || field == 5) && typ == protowire.BytesType {
			v2Fields++
		}
		if err := r.skip(field, typ); err != nil { // unknown fields
			return c, err
		}
	}
	if series == 0 && v2Fields > 0 {
		return c, fmt.Errorf("%w: it has no timeseries (field 1) but %d symbols or timeseries of io.prometheus.write.v2.Request (fields 4 and 5): it looks like remote-write 2.0", ErrOtherVersion, v2Fields)
	}
	return c, nil
}

func (d *Decoder) decodeV1Series(msg []byte, b *storage.Batch, c *Counts) error {
	start, hstart, estart := len(d.samples), len(d.hsamples), len(d.exemplars)
	r := pbReader{b: msg}
	keyStart, keyEnd, contiguous := -1, -1, true
	for !r.done() {
		off := len(msg) - len(r.b)
		// Fast paths for what every sender writes: a Label or a Sample
		// of under 128 bytes, tag and length one byte each. Anything else,
		// and any doubt, goes the general way below. NB: they repeat the
		// Label and Sample cases' bookkeeping on purpose: one-byte fast
		// paths in pbReader's key and bytes instead (not inlined) decoded
		// a request of 2,000 series in 148–157 µs, against 112–138 here.
		if b0 := r.b[0]; (b0 == tagLabel || b0 == tagSample) && len(r.b) >= 2 && r.b[1] < 0x80 && int(r.b[1])+2 <= len(r.b) {
			body := r.b[2 : 2+int(r.b[1])]
			if b0 == tagLabel {
				r.b = r.b[2+len(body):]
				if keyStart < 0 {
					keyStart = off
				} else if keyEnd != off {
					contiguous = false
				}
				keyEnd = len(msg) - len(r.b)
				continue
			}
			if s, ok := decodeSampleFast(body); ok {
				r.b = r.b[2+len(body):]
				d.samples = append(d.samples, s)
				if d.n.Samples++; d.n.Samples > d.quota.Samples {
					if err := d.reserveAhead(); err != nil {
						return err
					}
				}
				continue
			}
		}
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
		case field == 3 && typ == protowire.BytesType: // Exemplar
			m, err := r.bytes()
			if err != nil {
				return err
			}
			e, err := d.decodeV1Exemplar(m)
			if err != nil {
				return d.seriesErrorV1(msg, "exemplar", err)
			}
			if err := d.addExemplar(e, len(m)); err != nil {
				return err
			}
		case field == 4 && typ == protowire.BytesType: // Histogram
			m, err := r.bytes()
			if err != nil {
				return err
			}
			h, n, err := decodeHistogram(m)
			if err != nil {
				return d.seriesErrorV1(msg, "histogram", err)
			}
			if err := d.addHistogram(h, n); err != nil {
				return err
			}
		default:
			if err := r.skip(field, typ); err != nil {
				return err
			}
		}
	}
	ss, ok := d.seriesSamples(start, hstart, estart, c)
	if !ok {
		return nil // nothing but labels
	}
	if d.n.Series++; d.over() {
		if err := d.reserveAhead(); err != nil {
			return err
		}
	}
	if keyStart >= 0 && contiguous {
		ss.Key = msg[keyStart:keyEnd]
		b.Series = append(b.Series, ss)
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
	ss.Labels = lset
	b.Series = append(b.Series, ss)
	return nil
}

// seriesSamples slices what the series being decoded holds out of the
// decoder's buffers, which are only appended to during one Decode call,
// so the batch may keep the slices until the next call. It reports false
// when the series holds nothing, and counts what it holds in c.
func (d *Decoder) seriesSamples(start, hstart, estart int, c *Counts) (storage.SeriesSamples, bool) {
	n, nh, ne := len(d.samples)-start, len(d.hsamples)-hstart, len(d.exemplars)-estart
	if n+nh+ne == 0 {
		return storage.SeriesSamples{}, false
	}
	c.Samples += n
	ss := storage.SeriesSamples{Samples: d.samples[start:len(d.samples):len(d.samples)]}
	if nh > 0 {
		c.Histograms += nh
		ss.Histograms = d.hsamples[hstart:len(d.hsamples):len(d.hsamples)]
	}
	if ne > 0 {
		c.Exemplars += ne
		ss.Exemplars = d.exemplars[estart:len(d.exemplars):len(d.exemplars)]
	}
	return ss, true
}

// addHistogram keeps a decoded histogram sample of n buckets.
func (d *Decoder) addHistogram(h storage.HSample, n int) error {
	d.hsamples = append(d.hsamples, h)
	d.n.Histograms++
	d.n.Buckets += n
	if d.over() {
		return d.reserveAhead()
	}
	return nil
}

// addExemplar keeps a decoded exemplar that was size bytes on the wire.
func (d *Decoder) addExemplar(e storage.Exemplar, size int) error {
	d.exemplars = append(d.exemplars, e)
	d.n.Exemplars++
	d.n.Bytes += size
	if d.over() {
		return d.reserveAhead()
	}
	return nil
}

// seriesErrorV1 names the series of a 1.0 TimeSeries message msg in an
// error about one of its histograms or exemplars.
func (d *Decoder) seriesErrorV1(msg []byte, what string, err error) error {
	lset, lerr := d.labelsOf(&d.sb, msg)
	if lerr != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s of series %s: %w", what, lset, err)
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
		name, value, err := decodeLabelView(m)
		if err != nil {
			return labels.EmptyLabels(), err
		}
		sb.Add(name, value)
	}
	sb.Sort()
	return sb.Labels(), nil
}

// finishSeries appends the series being built in d.sb to b, with what
// it holds from start, hstart and estart on, and its metadata if set.
func (d *Decoder) finishSeries(b *storage.Batch, start, hstart, estart int, md v2Metadata, c *Counts) error {
	ss, ok := d.seriesSamples(start, hstart, estart, c)
	if !ok && !md.set {
		return nil // nothing but labels
	}
	d.sb.Sort()
	lset := d.sb.Labels()
	if err := checkName(lset); err != nil {
		return err
	}
	if md.set {
		c.Metadata++
		if err := d.addV2Metadata(b, lset.Get(model.MetricNameLabel), md); err != nil {
			return err
		}
	}
	if !ok {
		return nil
	}
	if d.n.Series++; d.over() {
		if err := d.reserveAhead(); err != nil {
			return err
		}
	}
	ss.Labels = lset
	b.Series = append(b.Series, ss)
	return nil
}

// decodeLabelView is decodeLabel whose strings alias m rather than copy
// it: for labelsOf only, whose ScratchBuilder copies every name and value
// into the Labels it returns (stringlabels) before m can change. Copying
// each one first was two allocations per label, a fifth of a record's
// encoding in a cluster (which decodes every series' key).
func decodeLabelView(m []byte) (name, value string, err error) {
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
			name = unsafe.String(unsafe.SliceData(v), len(v))
		case field == 2 && typ == protowire.BytesType:
			v, err := r.bytes()
			if err != nil {
				return "", "", err
			}
			value = unsafe.String(unsafe.SliceData(v), len(v))
		default:
			if err := r.skip(field, typ); err != nil {
				return "", "", err
			}
		}
	}
	return name, value, nil
}

// decodeLabel decodes a Label message into strings of its own.
func decodeLabel(m []byte) (name, value string, err error) {
	name, value, err = decodeLabelView(m)
	return strings.Clone(name), strings.Clone(value), err
}

// The one-byte tags of a TimeSeries' Label (field 1) and Sample (field 2),
// and of a Sample's value (field 1, fixed64) and timestamp (field 2,
// varint).
const (
	tagLabel     = 1<<3 | byte(protowire.BytesType)
	tagSample    = 2<<3 | byte(protowire.BytesType)
	tagValue     = 1<<3 | byte(protowire.Fixed64Type)
	tagTimestamp = 2<<3 | byte(protowire.VarintType)
)

// decodeSampleFast decodes a Sample written as senders write it: the value
// and then the timestamp, or the value alone (a timestamp of 0 is left
// out). It reports false for any other shape, which decodeSample reads.
func decodeSampleFast(m []byte) (storage.Sample, bool) {
	if len(m) < 9 || m[0] != tagValue {
		return storage.Sample{}, false
	}
	s := storage.Sample{V: math.Float64frombits(binary.LittleEndian.Uint64(m[1:9]))}
	m = m[9:]
	if len(m) == 0 {
		return s, true
	}
	if m[0] != tagTimestamp {
		return storage.Sample{}, false
	}
	var t uint64
	for i, c := range m[1:] {
		if i == 9 {
			return storage.Sample{}, false // a negative timestamp: ten bytes
		}
		t |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if i+2 != len(m) {
				return storage.Sample{}, false // more fields follow
			}
			s.T = int64(t)
			return s, true
		}
	}
	return storage.Sample{}, false
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
	d.reset()
	d.symbols = d.symbols[:0]
	d.keys = d.keys[:0]
	b.Decode = d.decodeKey
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
	start, hstart, estart := len(d.samples), len(d.hsamples), len(d.exemplars)
	var (
		md v2Metadata
		// A histogram's or an exemplar's error names the series, whose
		// labels may come later on the wire: keep it until then.
		partErr error
	)
	r := pbReader{b: msg}
	for !r.done() {
		field, typ, err := r.key()
		if err != nil {
			return err
		}
		switch {
		case field == 1 && (typ == protowire.BytesType || typ == protowire.VarintType): // labels_refs
			if d.refs, err = readRefs(&r, typ, d.refs); err != nil {
				return err
			}
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
			m, err := r.bytes()
			if err != nil {
				return err
			}
			if partErr != nil {
				continue
			}
			h, n, err := decodeHistogram(m)
			if err != nil {
				partErr = fmt.Errorf("histogram: %w", err)
				continue
			}
			if err := d.addHistogram(h, n); err != nil {
				return err
			}
		case field == 4 && typ == protowire.BytesType:
			m, err := r.bytes()
			if err != nil {
				return err
			}
			if partErr != nil {
				continue
			}
			e, err := d.decodeV2Exemplar(m)
			if err != nil {
				partErr = fmt.Errorf("exemplar: %w", err)
				continue
			}
			if err := d.addExemplar(e, len(m)); err != nil {
				return err
			}
		case field == 5 && typ == protowire.BytesType:
			m, err := r.bytes()
			if err != nil {
				return err
			}
			if md, err = decodeV2Metadata(m); err != nil {
				return err
			}
		default: // created_timestamp (6) of drafts, unknown
			if err := r.skip(field, typ); err != nil {
				return err
			}
		}
	}
	if len(d.refs)%2 != 0 {
		return malformed("odd number (%d) of label references", len(d.refs))
	}
	for i := 0; i < len(d.refs); i += 2 {
		n, v := d.refs[i], d.refs[i+1]
		if int(n) >= len(d.symbols) || int(v) >= len(d.symbols) {
			return malformed("label reference %d/%d outside the %d symbols", n, v, len(d.symbols))
		}
	}
	if partErr == nil && !md.set {
		// The common case: the series goes to storage by Key, as a 1.0
		// series does, and its labels are built only for a key storage
		// has not seen (a series created, or its key cache rotated):
		// building them for every series was 40 % of a 2.0 write.
		return d.finishKeyedSeries(b, start, hstart, estart, c)
	}
	d.sb.Reset()
	for i := 0; i < len(d.refs); i += 2 {
		d.sb.Add(d.symbols[d.refs[i]], d.symbols[d.refs[i+1]])
	}
	if partErr != nil {
		d.sb.Sort()
		return fmt.Errorf("series %s: %w", d.sb.Labels(), partErr)
	}
	return d.finishSeries(b, start, hstart, estart, md, c)
}

// finishKeyedSeries appends the series whose label references are in
// d.refs to b with a Key: its labels as 1.0's Label fields, in d.keys.
func (d *Decoder) finishKeyedSeries(b *storage.Batch, start, hstart, estart int, c *Counts) error {
	ss, ok := d.seriesSamples(start, hstart, estart, c)
	if !ok {
		return nil // nothing but labels
	}
	if d.n.Series++; d.over() {
		if err := d.reserveAhead(); err != nil {
			return err
		}
	}
	k := len(d.keys)
	// The key is a copy of the labels: its bytes count as wire bytes.
	n := 0
	for i := 0; i < len(d.refs); i += 2 {
		n += 8 + len(d.symbols[d.refs[i]]) + len(d.symbols[d.refs[i+1]])
	}
	if d.n.Bytes += n; d.over() {
		if err := d.reserveAhead(); err != nil {
			return err
		}
	}
	for i := 0; i < len(d.refs); i += 2 {
		name, value := d.symbols[d.refs[i]], d.symbols[d.refs[i+1]]
		d.keys = protowire.AppendTag(d.keys, 1, protowire.BytesType)
		d.keys = protowire.AppendVarint(d.keys, uint64(protowire.SizeTag(1)*2+
			protowire.SizeBytes(len(name))+protowire.SizeBytes(len(value))))
		d.keys = protowire.AppendTag(d.keys, 1, protowire.BytesType)
		d.keys = protowire.AppendString(d.keys, name)
		d.keys = protowire.AppendTag(d.keys, 2, protowire.BytesType)
		d.keys = protowire.AppendString(d.keys, value)
	}
	// NB: capacity capped, so that appending the next key cannot write
	// into this one's slice.
	ss.Key = d.keys[k:len(d.keys):len(d.keys)]
	if len(ss.Key) == 0 {
		ss.Key = []byte{} // no labels: still a key, which storage refuses for want of a name
	}
	b.Series = append(b.Series, ss)
	return nil
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
	Series     int // timeseries messages
	Samples    int // float samples
	Symbols    int // symbols (2.0)
	Histograms int // histogram samples
	Buckets    int // their buckets, spans and custom values
	Exemplars  int // exemplars
	Metadata   int // metadata entries
	Bytes      int // wire bytes of exemplars and metadata (their strings), and of 2.0 series' keys
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
		Series:     step(d.n.Series, d.quota.Series),
		Samples:    step(d.n.Samples, d.quota.Samples),
		Symbols:    step(d.n.Symbols, d.quota.Symbols),
		Histograms: step(d.n.Histograms, d.quota.Histograms),
		Buckets:    step(d.n.Buckets, d.quota.Buckets),
		Exemplars:  step(d.n.Exemplars, d.quota.Exemplars),
		Metadata:   step(d.n.Metadata, d.quota.Metadata),
		Bytes:      step(d.n.Bytes, d.quota.Bytes),
	}
	if err := d.Reserve(more); err != nil {
		d.reserveErr = err
		return err
	}
	d.quota.add(more)
	return nil
}

func (s *Size) add(o Size) {
	s.Series += o.Series
	s.Samples += o.Samples
	s.Symbols += o.Symbols
	s.Histograms += o.Histograms
	s.Buckets += o.Buckets
	s.Exemplars += o.Exemplars
	s.Metadata += o.Metadata
	s.Bytes += o.Bytes
}

// reset readies the decoder for a new request.
func (d *Decoder) reset() {
	d.samples = d.samples[:0]
	// Let go of the histograms and labels of the previous request.
	clear(d.hsamples)
	d.hsamples = d.hsamples[:0]
	clear(d.exemplars)
	d.exemplars = d.exemplars[:0]
	d.n, d.quota, d.reserveErr = Size{}, Size{}, nil
}

// over reports whether d.n has outgrown what Reserve was told.
func (d *Decoder) over() bool {
	return d.n.Series > d.quota.Series || d.n.Samples > d.quota.Samples || d.n.Symbols > d.quota.Symbols ||
		d.n.Histograms > d.quota.Histograms || d.n.Buckets > d.quota.Buckets || d.n.Exemplars > d.quota.Exemplars ||
		d.n.Metadata > d.quota.Metadata || d.n.Bytes > d.quota.Bytes
}

// measure counts the series, samples and symbols of an uncompressed
// request of either version without decoding or allocating. The handler
// calls it only when the in-flight budget refuses a request part way
// through decoding: to tell one that can never fit (413) from one that
// must wait its turn (503). A pass of its own for every request would
// cost nearly as much as decoding.
func measure(buf []byte, v2 bool) (Size, error) {
	var sz Size
	seriesField, histField, exField := protowire.Number(1), protowire.Number(4), protowire.Number(3)
	if v2 {
		seriesField, histField, exField = 5, 3, 4
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
				if t != protowire.BytesType {
					if err := sr.skip(f, t); err != nil {
						return sz, err
					}
					continue
				}
				m, err := sr.bytes()
				if err != nil {
					return sz, err
				}
				switch f {
				case 2:
					sz.Samples++
				case histField:
					// An estimate: a bucket takes 1 to 9 bytes.
					sz.Histograms++
					sz.Buckets += len(m) / 2
				case exField:
					sz.Exemplars++
					sz.Bytes += len(m)
				}
			}
		case v2 && field == 4 && typ == protowire.BytesType:
			sz.Symbols++
			if err := r.skip(field, typ); err != nil {
				return sz, err
			}
		case !v2 && field == 3 && typ == protowire.BytesType:
			m, err := r.bytes()
			if err != nil {
				return sz, err
			}
			sz.Metadata++
			sz.Bytes += len(m)
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
	if cap(d.hsamples) > maxSamples {
		d.hsamples = nil
	}
	if cap(d.exemplars) > maxSamples {
		d.exemplars = nil
	}
}
