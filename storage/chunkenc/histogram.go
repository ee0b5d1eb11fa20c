package chunkenc

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/prometheus/prometheus/model/histogram"
)

// Histogram chunk layout (see storage/docs/format-chunks.md):
//
//	version(1)=2 uvarint(n) varint(firstT) varint(lastT), then a bitstream,
//	per sample:
//	  t:       nothing for sample 0; else dod = (t_i - t_{i-1}) - d_{i-1}
//	           (d_0 = 0) as '0' | '10' 14 bits | '110' 17 bits |
//	           '1110' 20 bits | '1111' 64 bits
//	  hint:    2 bits, the CounterResetHint
//	  layout:  sample 0 always, later ones after a '1' bit ('0': as before):
//	           schema (8 bits, two's complement), zero threshold (64 bits),
//	           positive then negative spans (uvarint count, then per span
//	           zigzag offset and length as uvarints), for schema -53
//	           uvarint(count) and 64 bits per custom value
//	  counts:  '1' integers: zero count and each bucket (positive, then
//	           negative) as the zigzag residual to a prediction from the
//	           bucket's history (see histogram_ints.go), Rice- or
//	           gamma-coded; then count - (zero count + buckets) as a
//	           dod-style signed field.
//	           '0' floats: zero count, buckets, then count, each XOR'd
//	           with a prediction in a window kept per count slot (see
//	           histogram_floats.go)
//	  sum:     XOR'd with the previous sum as in XOR chunks
//
// Timestamps may come in any order (the WAL keeps a batch as written);
// sealed chunks hold strictly increasing ones.
//
// Version 1 differs in float counts only: count, zero count and buckets,
// each XOR'd with the previous sample's same value, '0' equal, else '1',
// 6 bits of leading zeros, 6 bits of significant bits (64 as 0), the bits.
// It is still read; nothing writes it.
const (
	histVersion   = 2
	histVersionV1 = 1
)

const riceEscape = 24

const maxSafeInt = 1 << 53

// EncodeHistograms appends the histogram chunk encoding of the samples
// (ts[i], hs[i]) to dst; len(ts) == len(hs) >= 1 and each histogram is
// valid (FloatHistogram.Validate).
func EncodeHistograms(dst []byte, ts []int64, hs []*histogram.FloatHistogram) []byte {
	dst = append(dst, histVersion)
	dst = binary.AppendUvarint(dst, uint64(len(ts)))
	dst = binary.AppendVarint(dst, ts[0])
	dst = binary.AppendVarint(dst, ts[len(ts)-1])
	e := histEncoder{w: bitWriter{b: dst}, leading: 0xff}
	for i := range ts {
		e.append(i, ts[i], hs[i])
	}
	return e.w.b
}

// histEncoder holds the state carried from one sample to the next.
type histEncoder struct {
	w        bitWriter
	prevT    int64
	prevD    int64
	prev     *histogram.FloatHistogram
	prevInts bool
	idx      bucketIndexes // absolute indexes of prev's buckets
	sumBits  uint64
	leading  uint8
	trailing uint8
	st       intStates
	fst      floatStates
	cur      bucketIndexes
}

// bucketIndexes lists the absolute bucket indexes of a layout.
type bucketIndexes struct{ pos, neg []int32 }

func (b *bucketIndexes) fill(h *histogram.FloatHistogram) {
	b.pos = expandSpans(b.pos[:0], h.PositiveSpans)
	b.neg = expandSpans(b.neg[:0], h.NegativeSpans)
}

func expandSpans(dst []int32, spans []histogram.Span) []int32 {
	idx := int32(0)
	for _, s := range spans {
		idx += s.Offset
		for j := uint32(0); j < s.Length; j++ {
			dst = append(dst, idx)
			idx++
		}
	}
	return dst
}

func (e *histEncoder) append(i int, t int64, h *histogram.FloatHistogram) {
	w := &e.w
	if i > 0 {
		d := t - e.prevT
		writeSignedField(w, d-e.prevD)
		e.prevD = d
	}
	e.prevT = t
	w.writeBits(uint64(h.CounterResetHint)&3, 2)
	same := i > 0 && sameLayout(e.prev, h)
	if i > 0 {
		w.writeBits(b2u(!same), 1)
	}
	if !same {
		writeLayout(w, e.prev, h)
		e.cur.fill(h)
	} else {
		e.cur.pos = append(e.cur.pos[:0], e.idx.pos...)
		e.cur.neg = append(e.cur.neg[:0], e.idx.neg...)
	}
	comparable := e.prev != nil && e.prev.Schema == h.Schema && slices.Equal(e.prev.CustomValues, h.CustomValues)
	ints := integral(h)
	w.writeBits(b2u(ints), 1)
	if ints {
		gauge := h.CounterResetHint == histogram.GaugeType
		switch {
		case !comparable || !e.prevInts:
			e.st.reset(len(e.cur.pos), len(e.cur.neg))
		case !same:
			e.st.remap(&e.idx, &e.cur)
		}
		writeCount(w, &e.st.zero, int64(h.ZeroCount), gauge)
		for j, v := range h.PositiveBuckets {
			writeCount(w, &e.st.pos[j], int64(v), gauge)
		}
		for j, v := range h.NegativeBuckets {
			writeCount(w, &e.st.neg[j], int64(v), gauge)
		}
		total := int64(h.ZeroCount)
		for _, v := range h.PositiveBuckets {
			total += int64(v)
		}
		for _, v := range h.NegativeBuckets {
			total += int64(v)
		}
		writeSignedField(w, int64(h.Count)-total)
	} else {
		switch {
		case !comparable:
			e.fst.reset(nil, &e.idx, &e.cur)
		case e.prevInts:
			e.fst.reset(e.prev, &e.idx, &e.cur)
		case !same:
			e.fst.remap(&e.idx, &e.cur)
		}
		writeFloatCounts(w, &e.fst, h)
	}
	e.writeSum(math.Float64bits(h.Sum))
	e.prev, e.prevInts = h, ints
	e.idx, e.cur = e.cur, e.idx
}

func (e *histEncoder) writeSum(vb uint64) {
	w := &e.w
	x := vb ^ e.sumBits
	e.sumBits = vb
	if x == 0 {
		w.writeBits(0, 1)
		return
	}
	lead := uint8(min(bits.LeadingZeros64(x), 31))
	trail := uint8(bits.TrailingZeros64(x))
	if e.leading != 0xff && lead >= e.leading && trail >= e.trailing {
		w.writeBits(0b10, 2)
		w.writeBits(x>>e.trailing, int(64-e.leading-e.trailing))
		return
	}
	e.leading, e.trailing = lead, trail
	sig := 64 - lead - trail
	w.writeBits(0b11, 2)
	w.writeBits(uint64(lead), 5)
	w.writeBits(uint64(sig&63), 6)
	w.writeBits(x>>trail, int(sig))
}

// prevAt walks a previous sample's buckets alongside the current ones:
// the value of the previous sample at each current index, 0 where it had
// no bucket.
type prevAt struct {
	idx  []int32
	vals []float64
	j    int
}

func (p *prevAt) at(i int32) float64 {
	for p.j < len(p.idx) && p.idx[p.j] < i {
		p.j++
	}
	if p.j < len(p.idx) && p.idx[p.j] == i && p.j < len(p.vals) {
		return p.vals[p.j]
	}
	return 0
}

// writeSignedField writes x in the timestamp dod buckets.
func writeSignedField(w *bitWriter, x int64) {
	switch {
	case x == 0:
		w.writeBits(0, 1)
	case fitsSigned(x, 14):
		w.writeBits(0b10, 2)
		w.writeBits(uint64(x), 14)
	case fitsSigned(x, 17):
		w.writeBits(0b110, 3)
		w.writeBits(uint64(x), 17)
	case fitsSigned(x, 20):
		w.writeBits(0b1110, 4)
		w.writeBits(uint64(x), 20)
	default:
		w.writeBits(0b1111, 4)
		w.writeBits(uint64(x), 64)
	}
}

// writeLayout writes h's layout; after the first sample (prev != nil) a
// bit first says whether schema, zero threshold and custom values
// changed ('1': written again) or only the spans did ('0').
func writeLayout(w *bitWriter, prev, h *histogram.FloatHistogram) {
	head := prev == nil || prev.Schema != h.Schema ||
		math.Float64bits(prev.ZeroThreshold) != math.Float64bits(h.ZeroThreshold) ||
		!slices.Equal(prev.CustomValues, h.CustomValues)
	if prev != nil {
		w.writeBits(b2u(head), 1)
	}
	if head {
		w.writeBits(uint64(uint8(int8(h.Schema))), 8)
		w.writeBits(math.Float64bits(h.ZeroThreshold), 64)
		if h.Schema == histogram.CustomBucketsSchema {
			writeUvarintBits(w, uint64(len(h.CustomValues)))
			for _, v := range h.CustomValues {
				w.writeBits(math.Float64bits(v), 64)
			}
		}
	}
	writeSpans(w, h.PositiveSpans)
	writeSpans(w, h.NegativeSpans)
}

func writeSpans(w *bitWriter, spans []histogram.Span) {
	writeUvarintBits(w, uint64(len(spans)))
	for _, s := range spans {
		writeUvarintBits(w, zigzag(int64(s.Offset)))
		writeUvarintBits(w, uint64(s.Length))
	}
}

func writeUvarintBits(w *bitWriter, u uint64) {
	var buf [binary.MaxVarintLen64]byte
	for _, b := range binary.AppendUvarint(buf[:0], u) {
		w.writeBits(uint64(b), 8)
	}
}

func sameLayout(a, b *histogram.FloatHistogram) bool {
	return a.Schema == b.Schema &&
		math.Float64bits(a.ZeroThreshold) == math.Float64bits(b.ZeroThreshold) &&
		slices.Equal(a.PositiveSpans, b.PositiveSpans) &&
		slices.Equal(a.NegativeSpans, b.NegativeSpans) &&
		slices.Equal(a.CustomValues, b.CustomValues)
}

// integral reports whether every count of h is a non-negative integer
// below 2^53 (and not -0), so that it is stored as an integer exactly.
func integral(h *histogram.FloatHistogram) bool {
	ok := func(v float64) bool {
		return v >= 0 && v < maxSafeInt && v == math.Trunc(v) && !(v == 0 && math.Signbit(v))
	}
	if !ok(h.Count) || !ok(h.ZeroCount) {
		return false
	}
	for _, v := range h.PositiveBuckets {
		if !ok(v) {
			return false
		}
	}
	for _, v := range h.NegativeBuckets {
		if !ok(v) {
			return false
		}
	}
	return true
}

func zigzag(x int64) uint64   { return uint64(x<<1) ^ uint64(x>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// HistogramBounds returns the sample count and the first and last
// timestamps of a histogram chunk without decoding it.
func HistogramBounds(b []byte) (n int, firstT, lastT int64, err error) {
	h, err := parseHistHeader(b)
	return h.n, h.first, h.last, err
}

type histHeader struct {
	version     byte
	n           int
	first, last int64
	body        []byte
}

func parseHistHeader(b []byte) (histHeader, error) {
	var h histHeader
	if len(b) < 1 || (b[0] != histVersion && b[0] != histVersionV1) {
		return h, fmt.Errorf("%w: histogram chunk version", ErrCorrupt)
	}
	version := b[0]
	b = b[1:]
	n, k := binary.Uvarint(b)
	// Every sample takes at least 5 bits.
	if k <= 0 || n == 0 || n > uint64(len(b))*2 {
		return h, fmt.Errorf("%w: histogram chunk sample count", ErrCorrupt)
	}
	b = b[k:]
	first, k := binary.Varint(b)
	if k <= 0 {
		return h, fmt.Errorf("%w: histogram chunk first timestamp", ErrCorrupt)
	}
	b = b[k:]
	last, k := binary.Varint(b)
	if k <= 0 {
		return h, fmt.Errorf("%w: histogram chunk last timestamp", ErrCorrupt)
	}
	return histHeader{version: version, n: int(n), first: first, last: last, body: b[k:]}, nil
}

// DecodeHistograms decodes a histogram chunk, appending to ts and hs. Each
// histogram is new and the caller's.
func DecodeHistograms(b []byte, ts []int64, hs []*histogram.FloatHistogram) ([]int64, []*histogram.FloatHistogram, error) {
	hdr, err := parseHistHeader(b)
	if err != nil {
		return ts, hs, err
	}
	d := histDecoder{r: bitReader{b: hdr.body}, version: hdr.version, leading: 0xff}
	t := hdr.first
	for i := 0; i < hdr.n; i++ {
		if i > 0 {
			dod, ok := d.r.readSignedField()
			if !ok {
				return ts, hs, fmt.Errorf("%w: histogram chunk: truncated at sample %d", ErrCorrupt, i)
			}
			d.prevD += dod
			t += d.prevD
		}
		h, err := d.next(i)
		if err != nil {
			return ts, hs, fmt.Errorf("%w: histogram chunk sample %d: %v", ErrCorrupt, i, err)
		}
		ts = append(ts, t)
		hs = append(hs, h)
	}
	if t != hdr.last {
		return ts, hs, fmt.Errorf("%w: histogram chunk ends at %d, header says %d", ErrCorrupt, t, hdr.last)
	}
	return ts, hs, nil
}

type histDecoder struct {
	r        bitReader
	version  byte
	prevD    int64
	prev     *histogram.FloatHistogram
	prevInts bool
	idx      bucketIndexes
	cur      bucketIndexes
	st       intStates
	fst      floatStates
	sumBits  uint64
	leading  uint8
	trailing uint8
}

var errTruncated = fmt.Errorf("truncated")

func (d *histDecoder) next(i int) (*histogram.FloatHistogram, error) {
	r := &d.r
	hint, ok := r.readBits(2)
	if !ok {
		return nil, errTruncated
	}
	h := &histogram.FloatHistogram{CounterResetHint: histogram.CounterResetHint(hint)}
	changed := i == 0
	if i > 0 {
		if changed, ok = r.readBit(); !ok {
			return nil, errTruncated
		}
	}
	if changed {
		if err := d.readLayout(h, d.prev); err != nil {
			return nil, err
		}
		d.cur.fill(h)
	} else {
		p := d.prev
		h.Schema, h.ZeroThreshold = p.Schema, p.ZeroThreshold
		h.PositiveSpans = slices.Clone(p.PositiveSpans)
		h.NegativeSpans = slices.Clone(p.NegativeSpans)
		h.CustomValues = p.CustomValues // immutable, shared as Prometheus does
		d.cur.pos = append(d.cur.pos[:0], d.idx.pos...)
		d.cur.neg = append(d.cur.neg[:0], d.idx.neg...)
	}
	h.PositiveBuckets = make([]float64, len(d.cur.pos))
	h.NegativeBuckets = make([]float64, len(d.cur.neg))
	comparable := d.prev != nil && d.prev.Schema == h.Schema && slices.Equal(d.prev.CustomValues, h.CustomValues)
	ints, ok := r.readBit()
	if !ok {
		return nil, errTruncated
	}
	if ints {
		gauge := h.CounterResetHint == histogram.GaugeType
		switch {
		case !comparable || !d.prevInts:
			d.st.reset(len(d.cur.pos), len(d.cur.neg))
		case changed:
			d.st.remap(&d.idx, &d.cur)
		}
		total, ok := r.readCount(&d.st.zero, gauge)
		if !ok {
			return nil, errTruncated
		}
		h.ZeroCount = float64(total)
		for j := range h.PositiveBuckets {
			v, ok := r.readCount(&d.st.pos[j], gauge)
			if !ok {
				return nil, errTruncated
			}
			h.PositiveBuckets[j] = float64(v)
			total += v
		}
		for j := range h.NegativeBuckets {
			v, ok := r.readCount(&d.st.neg[j], gauge)
			if !ok {
				return nil, errTruncated
			}
			h.NegativeBuckets[j] = float64(v)
			total += v
		}
		rest, ok := r.readSignedField()
		if !ok {
			return nil, errTruncated
		}
		h.Count = float64(total + rest)
	} else if d.version >= 2 {
		switch {
		case !comparable:
			d.fst.reset(nil, &d.idx, &d.cur)
		case d.prevInts:
			d.fst.reset(d.prev, &d.idx, &d.cur)
		case changed:
			d.fst.remap(&d.idx, &d.cur)
		}
		if err := r.readFloatCounts(&d.fst, h); err != nil {
			return nil, err
		}
	} else {
		var pc, pz float64
		var ppos, pneg []float64
		if comparable {
			pc, pz, ppos, pneg = d.prev.Count, d.prev.ZeroCount, d.prev.PositiveBuckets, d.prev.NegativeBuckets
		}
		if h.Count, ok = r.readFloatXOR(pc); !ok {
			return nil, errTruncated
		}
		if h.ZeroCount, ok = r.readFloatXOR(pz); !ok {
			return nil, errTruncated
		}
		if !d.readFloatBuckets(h.PositiveBuckets, d.cur.pos, ppos, d.idx.pos) ||
			!d.readFloatBuckets(h.NegativeBuckets, d.cur.neg, pneg, d.idx.neg) {
			return nil, errTruncated
		}
	}
	if err := d.readSum(); err != nil {
		return nil, err
	}
	h.Sum = math.Float64frombits(d.sumBits)
	if len(h.PositiveBuckets) == 0 {
		h.PositiveBuckets = nil
	}
	if len(h.NegativeBuckets) == 0 {
		h.NegativeBuckets = nil
	}
	d.prev, d.prevInts = h, ints
	d.idx, d.cur = d.cur, d.idx
	return h, nil
}

func (d *histDecoder) readFloatBuckets(dst []float64, curIdx []int32, prev []float64, prevIdx []int32) bool {
	p := prevAt{idx: prevIdx, vals: prev}
	for j, ix := range curIdx {
		v, ok := d.r.readFloatXOR(p.at(ix))
		if !ok {
			return false
		}
		dst[j] = v
	}
	return true
}

func (d *histDecoder) readSum() error {
	r := &d.r
	b, ok := r.readBit()
	if !ok {
		return errTruncated
	}
	if !b {
		return nil
	}
	if b, ok = r.readBit(); !ok {
		return errTruncated
	}
	if !b {
		if d.leading == 0xff {
			return fmt.Errorf("sum reuses a window before one was set")
		}
		x, ok := r.readBits(int(64 - d.leading - d.trailing))
		if !ok {
			return errTruncated
		}
		d.sumBits ^= x << d.trailing
		return nil
	}
	lead, ok1 := r.readBits(5)
	sig, ok2 := r.readBits(6)
	if !ok1 || !ok2 {
		return errTruncated
	}
	if sig == 0 {
		sig = 64
	}
	if lead+sig > 64 {
		return fmt.Errorf("sum window of %d+%d bits", lead, sig)
	}
	x, ok := r.readBits(int(sig))
	if !ok {
		return errTruncated
	}
	d.leading, d.trailing = uint8(lead), uint8(64-lead-sig)
	d.sumBits ^= x << d.trailing
	return nil
}

func (d *histDecoder) readLayout(h, prev *histogram.FloatHistogram) error {
	r := &d.r
	head := true
	if prev != nil {
		var ok bool
		if head, ok = r.readBit(); !ok {
			return errTruncated
		}
	}
	if head {
		if err := d.readLayoutHead(h); err != nil {
			return err
		}
	} else {
		h.Schema, h.ZeroThreshold, h.CustomValues = prev.Schema, prev.ZeroThreshold, prev.CustomValues
	}
	var err error
	if h.PositiveSpans, err = r.readSpans(); err != nil {
		return err
	}
	h.NegativeSpans, err = r.readSpans()
	return err
}

func (d *histDecoder) readLayoutHead(h *histogram.FloatHistogram) error {
	r := &d.r
	schema, ok := r.readBits(8)
	if !ok {
		return errTruncated
	}
	h.Schema = int32(int8(uint8(schema)))
	if !histogram.IsValidSchema(h.Schema) {
		return fmt.Errorf("schema %d", h.Schema)
	}
	zt, ok := r.readBits(64)
	if !ok {
		return errTruncated
	}
	h.ZeroThreshold = math.Float64frombits(zt)
	if h.Schema == histogram.CustomBucketsSchema {
		n, ok := r.readUvarint()
		if !ok || n > uint64(8*len(r.b)-r.pos)/64 {
			return fmt.Errorf("custom values count")
		}
		h.CustomValues = make([]float64, n)
		for j := range h.CustomValues {
			v, _ := r.readBits(64)
			h.CustomValues[j] = math.Float64frombits(v)
		}
	}
	return nil
}

func (r *bitReader) readSpans() ([]histogram.Span, error) {
	n, ok := r.readUvarint()
	if !ok {
		return nil, errTruncated
	}
	// A span takes at least two bytes.
	if n > uint64(8*len(r.b)-r.pos)/16 {
		return nil, fmt.Errorf("%d spans", n)
	}
	if n == 0 {
		return nil, nil
	}
	spans := make([]histogram.Span, n)
	total := uint64(0)
	for j := range spans {
		off, ok1 := r.readUvarint()
		length, ok2 := r.readUvarint()
		if !ok1 || !ok2 {
			return nil, errTruncated
		}
		o := unzigzag(off)
		if o < math.MinInt32 || o > math.MaxInt32 || (j > 0 && o < 0) || length > math.MaxUint32 {
			return nil, fmt.Errorf("span %d: offset %d length %d", j, o, length)
		}
		// Every bucket takes at least one bit: more than are left is
		// corrupt, and must not size an allocation.
		if total += length; total > uint64(8*len(r.b)-r.pos) {
			return nil, fmt.Errorf("spans of %d buckets", total)
		}
		spans[j] = histogram.Span{Offset: int32(o), Length: uint32(length)}
	}
	return spans, nil
}

func (r *bitReader) readSignedField() (int64, bool) {
	n := 0
	for n < 4 {
		b, ok := r.readBit()
		if !ok {
			return 0, false
		}
		if !b {
			break
		}
		n++
	}
	var size int
	switch n {
	case 0:
		return 0, true
	case 1:
		size = 14
	case 2:
		size = 17
	case 3:
		size = 20
	default:
		size = 64
	}
	v, ok := r.readBits(size)
	if !ok {
		return 0, false
	}
	if size < 64 && v >= 1<<(size-1) {
		v -= 1 << size // sign-extend
	}
	return int64(v), true
}

func (r *bitReader) readFloatXOR(prev float64) (float64, bool) {
	b, ok := r.readBit()
	if !ok {
		return 0, false
	}
	if !b {
		return prev, true
	}
	lead, ok1 := r.readBits(6)
	sig, ok2 := r.readBits(6)
	if !ok1 || !ok2 {
		return 0, false
	}
	if sig == 0 {
		sig = 64
	}
	if lead+sig > 64 {
		return 0, false
	}
	x, ok := r.readBits(int(sig))
	if !ok {
		return 0, false
	}
	return math.Float64frombits(math.Float64bits(prev) ^ x<<(64-lead-sig)), true
}
