package storage

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// The log's sample encoding (issue 18). A write's float samples go into one
// block entry, in columns (refs, counts, timestamps, values) so that the
// compressor finds the repeats, and each sample is predicted from the
// previous sample of its series logged in the same WAL segment: its
// timestamp by the previous interval (so a steady scrape costs one zero
// byte), its value by the previous value as a decimal delta (counters and
// integer gauges cost a byte or two, a constant one zero byte) or else by
// XOR. Prediction never reaches into an earlier segment, so every segment
// replays on its own once older ones are truncated; a record's bytes are
// framed and checksummed as before, after compression.

// walPred is the last sample of a series logged in the current segment: the
// base of the next one's prediction. The writer keeps one per series
// (memSeries.walPred, guarded by the shard's appendMu), valid only while
// gen is the shard's walGen; replay keeps one per ref, cleared at each
// segment.
type walPred struct {
	gen   uint64
	t, dt int64
	v     float64
	scale uint8 // the writer's: see appendValue
	xors  uint8 // the writer's: values in a row logged as XOR
}

// blockSeries is one series of a block entry, in write order; a series may
// appear more than once, and prediction runs through its appearances.
type blockSeries struct {
	ref     uint64
	samples []Sample
	pred    *walPred
}

// minCompress is the size under which a record is not compressed: the
// compressed form costs more than it saves there.
const minCompress = 256

// appendBlockEntry appends the block entry of ss, predicting each series
// from its pred when pred.gen is gen and updating pred (and setting its gen)
// to the series' last sample:
//
//	0x08 uvarint(k)                         series
//	     k × varint(ref - previous ref)     (the first from 0)
//	     k × uvarint(n<<1 | predicted)      samples of the series; 1 when the
//	                                        series' previous sample in the
//	                                        segment is the base
//	     varint(tbase)                      the block's first timestamp
//	     uvarint(len) timestamps            per sample varint(t - (t' + dt'))
//	     ⌈N/8⌉ bytes                        bit i (byte i/8, from its lowest
//	                                        bit): sample i of the N has its
//	                                        base's value, bit for bit
//	     values                             per other sample, see appendValue
//
// where t' and dt' are the series' previous timestamp and interval: for a
// series not predicted, t' = tbase, dt' = 0, and its first interval counts
// as 0; its previous value is 0. Logs written before 2026-12 hold 0x07
// blocks instead: no bitmap, and a value like its base is one byte in
// values (valSame). Three values in four are like their base on a node's
// scrape: as bits they cost an eighth of a byte, and leave the values
// column to what differs, so that S2, which finds repeats but does not
// code entropy, keeps the log as small as zstd did (issue 18: 1.02
// against 1.08 bytes a sample on the node workload, at a seventh of the
// CPU).
func appendBlockEntry(dst []byte, ss []blockSeries, gen uint64, ts, vs []byte) (out, tsBuf, vsBuf []byte) {
	dst = append(dst, entryBlockBits)
	dst = binary.AppendUvarint(dst, uint64(len(ss)))
	prev := uint64(0)
	total := 0
	for _, s := range ss {
		dst = binary.AppendVarint(dst, int64(s.ref-prev))
		prev = s.ref
		total += len(s.samples)
	}
	var tbase int64
	for _, s := range ss {
		if len(s.samples) > 0 {
			tbase = s.samples[0].T
			break
		}
	}
	// vs is the bitmap, then the values.
	nb := (total + 7) / 8
	ts, vs = ts[:0], slices.Grow(vs[:0], nb)[:nb]
	clear(vs)
	idx := 0
	for _, s := range ss {
		p := s.pred
		predicted := p.gen == gen
		flag := uint64(0)
		if predicted {
			flag = 1
		} else {
			*p = walPred{gen: gen, t: tbase}
		}
		dst = binary.AppendUvarint(dst, uint64(len(s.samples))<<1|flag)
		for i, smp := range s.samples {
			ts = binary.AppendVarint(ts, smp.T-(p.t+p.dt))
			if math.Float64bits(smp.V) == math.Float64bits(p.v) {
				vs[idx>>3] |= 1 << (idx & 7)
			} else {
				vs = appendValue(vs, p, smp.V)
			}
			idx++
			if i == 0 && !predicted {
				p.dt = 0
			} else {
				p.dt = smp.T - p.t
			}
			p.t, p.v = smp.T, smp.V
		}
	}
	dst = binary.AppendVarint(dst, tbase)
	dst = binary.AppendUvarint(dst, uint64(len(ts)))
	dst = append(dst, ts...)
	return append(dst, vs...), ts, vs
}

// pow10 are the decimal scales a value delta is tried at: those of the
// dense chunks (a duration in nanoseconds as seconds needs 10^9).
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// Value modes, the low 3 bits of a value's first uvarint.
const (
	valSame   = 0 // the previous value's bits
	valDec    = 1 // 1..5: decimal at scale pow10[mode-1]; delta in the high bits
	valDecExt = 6 // decimal at scale pow10[5 + the next 4 bits]; delta above them
	valXOR    = 7 // leading and trailing zero bytes in the high bits; then the XOR's other bytes
)

// shortScales are the scales valDec carries in the mode; larger ones are
// valDecExt's.
const shortScales = 5

// xorRetry is how often a series whose values keep failing every scale
// tries them all again: in between it tries only its last scale, so a
// series of full-precision floats costs two attempts a value, not 16.
const xorRetry = 16

// decimal returns m with v == m / 10^e exactly (bit for bit), when there
// is one below 2^53.
func decimal(v float64, e int) (int64, bool) {
	if e == 0 { // the common case, without a division
		if !(math.Abs(v) < 1<<53) {
			return 0, false
		}
		m := int64(v)
		return m, math.Float64bits(float64(m)) == math.Float64bits(v)
	}
	m := math.Round(v * pow10[e])
	if !(math.Abs(m) < 1<<53) {
		return 0, false
	}
	mi := int64(m)
	return mi, math.Float64bits(float64(mi)/pow10[e]) == math.Float64bits(v)
}

// appendValue appends v predicted from p.v:
//
//	uvarint(0)                                v has prev's bits
//	uvarint(zigzag(m - m')<<3 | e+1)          v = m/10^e, prev = m'/10^e exactly, e in 0..4
//	uvarint(zigzag(m - m')<<7 | (e-5)<<3 | 6) the same, e in 5..15
//	uvarint((lz<<3 | tz)<<3 | 7) bytes         otherwise: x = bits(v) ^ bits(prev) without its lz
//	                                          leading and tz trailing zero bytes, big-endian
//
// The scale of the last decimal delta is in p.scale, tried first next time:
// a series keeps its precision. After a value that no scale fits, only
// that scale is tried for xorRetry-1 values.
func appendValue(dst []byte, p *walPred, v float64) []byte {
	prev := p.v
	pb, vb := math.Float64bits(prev), math.Float64bits(v)
	if pb == vb {
		return append(dst, valSame)
	}
	last := len(pow10) - 1
	if p.xors%xorRetry != 0 {
		last = -1
	}
	for k := -1; k <= last; k++ {
		e := k
		if k < 0 {
			e = int(p.scale)
		} else if k == int(p.scale) {
			continue
		}
		m, ok := decimal(v, e)
		if !ok {
			continue
		}
		pm, ok := decimal(prev, e)
		if !ok {
			continue
		}
		// |m - pm| < 2^54: the zigzag shifted by 7 fits in 64 bits.
		d := m - pm
		p.scale, p.xors = uint8(e), 0
		z := uint64((d << 1) ^ (d >> 63))
		if e < shortScales {
			return binary.AppendUvarint(dst, z<<3|uint64(valDec+e))
		}
		return binary.AppendUvarint(dst, z<<7|uint64(e-shortScales)<<3|valDecExt)
	}
	p.xors++
	// As Gorilla's XOR, in whole bytes: the bytes between the leading and
	// the trailing zero bytes.
	x := pb ^ vb
	lz, tz := bits.LeadingZeros64(x)/8, bits.TrailingZeros64(x)/8
	dst = binary.AppendUvarint(dst, uint64(lz<<3|tz)<<3|valXOR)
	for i := 7 - lz; i >= tz; i-- {
		dst = append(dst, byte(x>>(8*i)))
	}
	return dst
}

// readValue decodes what appendValue wrote for prev.
func (r *recReader) value(prev float64) float64 {
	h := r.uvarint()
	if r.err != nil {
		return 0
	}
	switch mode := h & 7; {
	case mode == valSame:
		if h != 0 {
			r.corrupt("value header %#x", h)
		}
		return prev
	case mode == valXOR:
		lz, tz := h>>6, h>>3&7
		if lz+tz > 7 {
			r.corrupt("value header %#x", h)
			return 0
		}
		var x uint64
		for _, c := range r.bytes(8 - lz - tz) {
			x = x<<8 | uint64(c)
		}
		return math.Float64frombits(math.Float64bits(prev) ^ x<<(8*tz))
	case mode == valDecExt:
		e := shortScales + h>>3&15
		if e >= uint64(len(pow10)) {
			r.corrupt("value header %#x", h)
			return 0
		}
		z := h >> 7
		d := int64(z>>1) ^ -int64(z&1)
		pm := math.Round(prev * pow10[e]) // exact: the writer checked
		return float64(int64(pm)+d) / pow10[e]
	case mode-valDec < shortScales:
		e := mode - valDec
		z := h >> 3
		d := int64(z>>1) ^ -int64(z&1)
		pm := math.Round(prev * pow10[e]) // exact: the writer checked
		return float64(int64(pm)+d) / pow10[e]
	default:
		r.corrupt("value mode %d", mode)
		return 0
	}
}

func (r *recReader) corrupt(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: wal entry: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	r.b = nil
}

// recDecoder is replay's state across records: the prediction bases of the
// current segment and scratch buffers. Reset it at each segment.
type recDecoder struct {
	preds   map[uint64]*walPred
	samples []Sample
	raw     []byte // a decompressed record
	refs    []uint64
	counts  []uint64
}

func newRecDecoder() *recDecoder { return &recDecoder{preds: map[uint64]*walPred{}} }

// reset forgets the prediction bases: a new segment begins.
func (d *recDecoder) reset() { clear(d.preds) }

// decodeBlock reads a block entry (after its type byte: bits for 0x08,
// with the bitmap of values like their base) and hands each series'
// samples to fn; they are valid only during the call.
func (d *recDecoder) decodeBlock(r *recReader, bits bool, fn func(ref uint64, samples []Sample) error) error {
	k := r.uvarint()
	if k > uint64(len(r.b)) { // each series takes at least 2 bytes
		return fmt.Errorf("%w: wal block claims %d series in %d bytes", ErrCorrupt, k, len(r.b))
	}
	d.refs, d.counts = d.refs[:0], d.counts[:0]
	ref := uint64(0)
	for range k {
		ref += uint64(r.varint())
		d.refs = append(d.refs, ref)
	}
	total := uint64(0)
	for range k {
		c := r.uvarint()
		d.counts = append(d.counts, c)
		total += c >> 1
	}
	tbase := r.varint()
	tsCol := recReader{b: r.bytes(r.uvarint())}
	if r.err != nil {
		return r.err
	}
	if total > uint64(len(tsCol.b)) || (!bits && total > uint64(len(r.b))) { // each takes at least a byte
		return fmt.Errorf("%w: wal block claims %d samples in %d bytes", ErrCorrupt, total, len(r.b))
	}
	var same []byte
	if bits {
		same = r.bytes((total + 7) / 8)
		if r.err != nil {
			return fmt.Errorf("%w: wal block of %d series: %w", ErrCorrupt, k, r.err)
		}
		if total%8 != 0 && same[len(same)-1]>>(total%8) != 0 {
			return fmt.Errorf("%w: wal block's value bitmap has bits past its %d samples", ErrCorrupt, total)
		}
	}
	idx := 0
	for i, ref := range d.refs {
		n, predicted := d.counts[i]>>1, d.counts[i]&1 == 1
		p := d.preds[ref]
		switch {
		case p == nil && predicted:
			return fmt.Errorf("%w: wal block predicts series %d from a sample not in the segment", ErrCorrupt, ref)
		case p == nil:
			p = &walPred{}
			d.preds[ref] = p
		}
		if !predicted {
			*p = walPred{t: tbase}
		}
		d.samples = d.samples[:0]
		for j := range n {
			t := p.t + p.dt + tsCol.varint()
			v := p.v
			if same == nil || same[idx>>3]&(1<<(idx&7)) == 0 {
				v = r.value(p.v)
			}
			idx++
			if r.err != nil || tsCol.err != nil {
				return fmt.Errorf("%w: wal block of %d series: %w", ErrCorrupt, k, cmpErr(r.err, tsCol.err))
			}
			if j == 0 && !predicted {
				p.dt = 0
			} else {
				p.dt = t - p.t
			}
			p.t, p.v = t, v
			d.samples = append(d.samples, Sample{T: t, V: v})
		}
		if err := fn(ref, d.samples); err != nil {
			return err
		}
	}
	if len(tsCol.b) > 0 {
		return fmt.Errorf("%w: wal block has %d bytes of timestamps left", ErrCorrupt, len(tsCol.b))
	}
	return nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// compressRecord appends the S2 record of rec to dst[:0]; compressed is
// false when that would not be smaller, and rec is then logged as it is
// (out still returns dst's buffer, for reuse).
func compressRecord(dst, rec []byte) (out []byte, compressed bool) {
	if len(rec) < minCompress {
		return dst[:0], false
	}
	if n := 1 + s2.MaxEncodedLen(len(rec)); cap(dst) < n {
		dst = make([]byte, 0, n)
	}
	dst = append(dst[:0], recordS2)
	z := s2.Encode(dst[1:cap(dst)], rec) // NB: in place, dst has room
	dst = dst[:1+len(z)]
	return dst, len(dst) < len(rec)
}

// maxRecord bounds a decompressed record: a write of a few million
// samples; a larger claim is corruption, not an allocation to attempt.
const maxRecord = 1 << 30

// decompress returns the record inside an S2 or zstd record (rec starts
// with its 0x81 or 0x80).
func (d *recDecoder) decompress(rec []byte) ([]byte, error) {
	kind, rec := rec[0], rec[1:]
	var raw []byte
	if kind == recordS2 {
		n, err := s2.DecodedLen(rec)
		if err != nil || n > maxRecord {
			return nil, fmt.Errorf("%w: wal s2 record: length %d: %v", ErrCorrupt, n, err)
		}
		if cap(d.raw) < n {
			d.raw = make([]byte, n)
		}
		if raw, err = s2.Decode(d.raw[:cap(d.raw)], rec); err != nil {
			return nil, fmt.Errorf("%w: wal s2 record: %v", ErrCorrupt, err)
		}
	} else {
		n, k := binary.Uvarint(rec)
		if k <= 0 || n > maxRecord {
			return nil, fmt.Errorf("%w: wal zstd record of %d bytes", ErrCorrupt, n)
		}
		var err error
		if raw, err = zstdDecoder().DecodeAll(rec[k:], d.raw[:0]); err != nil {
			return nil, fmt.Errorf("%w: wal zstd record: %v", ErrCorrupt, err)
		}
		if uint64(len(raw)) != n {
			return nil, fmt.Errorf("%w: wal zstd record of %d bytes holds %d", ErrCorrupt, n, len(raw))
		}
	}
	d.raw = raw
	if len(raw) > 0 && (raw[0] == recordZstd || raw[0] == recordS2) {
		return nil, fmt.Errorf("%w: wal record compressed twice", ErrCorrupt)
	}
	return raw, nil
}

// zstdDecoder is shared by every replay: DecodeAll is safe for concurrent
// use.
var zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxRecord))
	if err != nil {
		panic(fmt.Sprintf("BUG: zstd options: %v", err))
	}
	return dec
})
