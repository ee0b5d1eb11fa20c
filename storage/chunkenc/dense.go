package chunkenc

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"

	"github.com/emsdb/tsdb/storage/internal/invariants"
)

// Dense chunk layout (see storage/docs/format-chunks.md):
//
//	version(1)=1 mode(1) uvarint(n) varint(minT) varint(maxT)
//	timestamps: n-1 zigzag varints (first delta, then delta-of-deltas)
//	values, by mode & 3:
//	  0 (xor):     n uvarints bits(v)^bits(prev)
//	  1 (int):     integers m_i = v_i
//	  2 (decimal): byte k (1..15), then integers m_i = v_i * 10^k, where
//	               every v_i == float64(m_i)/10^k exactly and |m_i| < 2^53
//	  for 1 and 2: if mode & 8 (exceptions): uvarint(count), then count
//	               times uvarint(gap to the previous exception's index,
//	               the first from -1) and 8 bytes of the value's bits,
//	               little-endian; an exception's m_i repeats m_{i-1} (0 at
//	               i = 0). Then the integers as zigzag varints: m_0 and
//	               deltas, or if mode & 4, m_0, m_1-m_0 and delta-of-deltas.
//
// The encoder tries the forms the values allow and keeps the shortest.
const (
	denseVersion = 1
	modeXOR      = 0
	modeInt      = 1
	modeDecimal  = 2
	kindMask     = 3
	flagDoD      = 4
	flagExc      = 8
)

// pow10 holds the exact powers of ten a decimal mode may use.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

const maxExactInt = 1 << 53

// representable reports whether v == float64(m)/10^k for an integer
// |m| < 2^53 (Clinger's fast path makes that division correctly rounded,
// so the decoder gets v back bit for bit).
func representable(v float64, k int) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) || (v == 0 && math.Signbit(v)) {
		return false
	}
	m := math.Round(v * pow10[k])
	return math.Abs(m) < maxExactInt && m/pow10[k] == v
}

// chooseScale returns the smallest k for which all but at most n/16 of
// the values are representable, and the indexes of those that are not.
func chooseScale(vs []float64, exc []int) (int, []int, bool) {
	limit := len(vs) / 16
	for k := range len(pow10) {
		exc = exc[:0]
		for i, v := range vs {
			if !representable(v, k) {
				if exc = append(exc, i); len(exc) > limit {
					break
				}
			}
		}
		if len(exc) <= limit {
			return k, exc, true
		}
	}
	return 0, exc, false
}

// EncodeDense appends the dense encoding of the samples (len(ts) ==
// len(vs) >= 1, ts strictly increasing) to dst.
//
// NB: the forms are sized before any is written, and only the shortest is
// written (the first of equals, in the order XOR, deltas, delta-of-deltas):
// sealing encodes every sample once, and writing all three forms was half
// of its CPU.
func EncodeDense(dst []byte, ts []int64, vs []float64) []byte {
	if invariants.Enabled {
		checkDenseInput(ts, vs)
	}
	var (
		ints  []int64
		onStk [256]int64 // a head chunk's worth (240 by default) without allocating
		excs  [32]int
	)
	mode, size := byte(modeXOR), xorValuesSize(vs)
	k, exc, ok := chooseScale(vs, excs[:0])
	if ok {
		if ints = onStk[:0]; len(vs) > len(onStk) {
			ints = make([]int64, 0, len(vs))
		}
		ints = ints[:len(vs)]
		e := 0
		for i, v := range vs {
			if e < len(exc) && exc[e] == i {
				e++
				if i > 0 {
					ints[i] = ints[i-1]
				}
				continue
			}
			ints[i] = int64(math.Round(v * pow10[k]))
		}
		m := byte(modeInt)
		head := 0
		if k > 0 {
			m, head = modeDecimal, 1
		}
		if len(exc) > 0 {
			m |= flagExc
			head += uvarintLen(uint64(len(exc))) + 8*len(exc)
			prev := -1
			for _, i := range exc {
				head += uvarintLen(uint64(i - prev))
				prev = i
			}
		}
		deltas, dods := intValuesSizes(ints)
		if head+deltas < size {
			mode, size = m, head+deltas
		}
		if head+dods < size {
			mode, size = m|flagDoD, head+dods
		}
	}
	dst = slices.Grow(dst, 2+4*binary.MaxVarintLen64+len(ts)+size)
	dst = append(dst, denseVersion, mode)
	dst = binary.AppendUvarint(dst, uint64(len(ts)))
	dst = binary.AppendVarint(dst, ts[0])
	dst = binary.AppendVarint(dst, ts[len(ts)-1])
	var prevD int64
	for i := 1; i < len(ts); i++ {
		d := ts[i] - ts[i-1]
		if i == 1 {
			dst = binary.AppendVarint(dst, d)
		} else {
			dst = binary.AppendVarint(dst, d-prevD)
		}
		prevD = d
	}
	if mode == modeXOR {
		return appendXORValues(dst, vs)
	}
	if mode&kindMask == modeDecimal {
		dst = append(dst, byte(k))
	}
	if len(exc) > 0 {
		dst = binary.AppendUvarint(dst, uint64(len(exc)))
		prev := -1
		for _, i := range exc {
			dst = binary.AppendUvarint(dst, uint64(i-prev))
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(vs[i]))
			prev = i
		}
	}
	return appendIntValues(dst, ints, mode&flagDoD != 0)
}

// uvarintLen is the length of x as a uvarint.
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// varintLen is the length of x as a zigzag varint.
func varintLen(x int64) int { return uvarintLen(uint64(x<<1) ^ uint64(x>>63)) }

// xorValuesSize is the length of appendXORValues(nil, vs).
func xorValuesSize(vs []float64) int {
	var prev uint64
	n := 0
	for _, v := range vs {
		b := math.Float64bits(v)
		n += uvarintLen(b ^ prev)
		prev = b
	}
	return n
}

// intValuesSizes are the lengths of appendIntValues(nil, ints, false) and
// of appendIntValues(nil, ints, true).
func intValuesSizes(ints []int64) (deltas, dods int) {
	var prev, prevD int64
	for i, x := range ints {
		d := x - prev
		n := varintLen(d)
		deltas += n
		if i >= 2 {
			n = varintLen(d - prevD)
		}
		dods += n
		prev, prevD = x, d
	}
	return deltas, dods
}

// checkDenseInput fails unless ts and vs are one or more samples in
// strictly increasing time order: EncodeDense's contract, which its
// callers (the sealer, deletes) must keep.
func checkDenseInput(ts []int64, vs []float64) {
	if len(ts) == 0 || len(ts) != len(vs) {
		_ = invariants.Failf("chunkenc: dense chunk of %d timestamps and %d values", len(ts), len(vs))
	}
	for i := 1; i < len(ts); i++ {
		if ts[i] <= ts[i-1] {
			_ = invariants.Failf("chunkenc: dense chunk timestamp %d at %d after %d", ts[i], i, ts[i-1])
		}
	}
}

func appendXORValues(dst []byte, vs []float64) []byte {
	var prev uint64
	for _, v := range vs {
		b := math.Float64bits(v)
		dst = binary.AppendUvarint(dst, b^prev)
		prev = b
	}
	return dst
}

func appendIntValues(dst []byte, ints []int64, dod bool) []byte {
	var prev, prevD int64
	for i, x := range ints {
		d := x - prev
		if dod && i >= 2 {
			dst = binary.AppendVarint(dst, d-prevD)
		} else {
			dst = binary.AppendVarint(dst, d)
		}
		prev, prevD = x, d
	}
	return dst
}

type denseHeader struct {
	mode       byte
	n          int
	minT, maxT int64
	body       []byte
}

func parseDense(b []byte) (denseHeader, error) {
	var h denseHeader
	if len(b) < 2 || b[0] != denseVersion || b[1]&kindMask > modeDecimal || b[1] > flagExc|flagDoD|kindMask ||
		(b[1]&kindMask == modeXOR && b[1] != modeXOR) {
		return h, fmt.Errorf("%w: bad dense header", ErrCorrupt)
	}
	h.mode = b[1]
	b = b[2:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n == 0 || n > uint64(len(b)) { // every sample takes >= 1 byte
		return h, fmt.Errorf("%w: bad sample count", ErrCorrupt)
	}
	b = b[k:]
	minT, k := binary.Varint(b)
	if k <= 0 {
		return h, fmt.Errorf("%w: bad minT", ErrCorrupt)
	}
	b = b[k:]
	maxT, k := binary.Varint(b)
	if k <= 0 || maxT < minT {
		return h, fmt.Errorf("%w: bad maxT", ErrCorrupt)
	}
	h.n, h.minT, h.maxT, h.body = int(n), minT, maxT, b[k:]
	return h, nil
}

// DenseBounds reads the sample count and time bounds from the header.
func DenseBounds(b []byte) (n int, minT, maxT int64, err error) {
	h, err := parseDense(b)
	return h.n, h.minT, h.maxT, err
}

// zigzag1 decodes a one-byte zigzag varint (c < 0x80). The decode loops
// take the one-byte case inline before calling binary.Varint, which the
// compiler does not inline: timestamps' delta-of-deltas and counters'
// deltas are mostly one byte (issue 18's profile: a third of decoding
// went to the call).
func zigzag1(c byte) int64 { return int64(c>>1) ^ -int64(c&1) }

// zigzag2 decodes a two-byte zigzag varint (c0 >= 0x80, c1 < 0x80):
// counters' deltas scaled to integers are mostly one or two bytes.
func zigzag2(c0, c1 byte) int64 {
	u := uint64(c0&0x7f) | uint64(c1)<<7
	return int64(u>>1) ^ -int64(u&1)
}

// DecodeDense appends the decoded samples to ts and vs.
func DecodeDense(b []byte, ts []int64, vs []float64) ([]int64, []float64, error) {
	return DecodeDenseWindow(b, math.MinInt64, math.MaxInt64, ts, vs)
}

// DecodeDenseWindow appends the decoded samples with mint <= t <= maxt to
// ts and vs. The whole chunk is decoded and checked as by DecodeDense
// (values are deltas: those before the window are needed for it); only
// the window is stored, so that a query reading 5 minutes of a sealed
// hour writes 20 samples, not 240.
func DecodeDenseWindow(b []byte, mint, maxt int64, ts []int64, vs []float64) ([]int64, []float64, error) {
	h, err := parseDense(b)
	if err != nil {
		return ts, vs, err
	}
	body := h.body
	// lo and hi bound the window's indexes: [lo, hi).
	lo, hi := 0, h.n
	if mint > h.minT || maxt < h.maxT {
		lo, hi = h.n, h.n
	}
	// NB: sized once: grown by append, the two slices cost a dozen
	// allocations a chunk when they are not pooled buffers (issue 18's
	// profile: a quarter of a rate query's CPU).
	want := h.n
	if lo != 0 {
		want = windowEstimate(h, mint, maxt)
	}
	ts, vs = slices.Grow(ts, want), slices.Grow(vs, want)
	t, d := h.minT, int64(0)
	for i := 0; i < h.n; i++ {
		if i > 0 {
			var x int64
			if len(body) > 0 && body[0] < 0x80 {
				x, body = zigzag1(body[0]), body[1:]
			} else {
				var k int
				if x, k = binary.Varint(body); k <= 0 {
					return ts, vs, fmt.Errorf("%w: timestamp %d", ErrCorrupt, i)
				}
				body = body[k:]
			}
			if i == 1 {
				d = x
			} else {
				d += x
			}
			t += d
		}
		if t >= mint && t <= maxt {
			if lo > i {
				lo = i
			}
			hi = i + 1
			ts = append(ts, t)
		}
	}
	if t != h.maxT {
		return ts, vs, fmt.Errorf("%w: timestamps end at %d, header says %d", ErrCorrupt, t, h.maxT)
	}
	if h.mode == modeXOR {
		var prevB uint64
		for i := 0; i < h.n; i++ {
			x, k := binary.Uvarint(body)
			if k <= 0 {
				return ts, vs, fmt.Errorf("%w: value %d", ErrCorrupt, i)
			}
			body = body[k:]
			prevB ^= x
			if i >= lo && i < hi {
				vs = append(vs, math.Float64frombits(prevB))
			}
		}
	} else {
		var err error
		if vs, body, err = decodeIntValues(h, body, lo, hi, vs); err != nil {
			return ts, vs, err
		}
	}
	if len(body) != 0 {
		return ts, vs, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(body))
	}
	return ts, vs, nil
}

// windowEstimate is about how many of h's samples fall in [mint, maxt],
// as if evenly spaced, and not fewer: slack for jitter, at most all.
func windowEstimate(h denseHeader, mint, maxt int64) int {
	lo, hi := max(mint, h.minT), min(maxt, h.maxT)
	if lo > hi {
		return 0
	}
	span := h.maxT - h.minT
	if span <= 0 {
		return h.n
	}
	f := float64(hi-lo) / float64(span) * float64(h.n-1)
	return min(h.n, int(f)+3)
}

// decodeIntValues decodes the values of the int and decimal modes and
// appends those of indexes [lo, hi) to vs.
func decodeIntValues(h denseHeader, body []byte, lo, hi int, vs []float64) ([]float64, []byte, error) {
	scale := 1.0
	if h.mode&kindMask == modeDecimal {
		if len(body) == 0 || int(body[0]) == 0 || int(body[0]) >= len(pow10) {
			return vs, body, fmt.Errorf("%w: bad decimal scale", ErrCorrupt)
		}
		scale = pow10[body[0]]
		body = body[1:]
	}
	type exception struct {
		i    int
		bits uint64
	}
	var exc []exception
	if h.mode&flagExc != 0 {
		cnt, k := binary.Uvarint(body)
		if k <= 0 || cnt == 0 || cnt > uint64(h.n) {
			return vs, body, fmt.Errorf("%w: bad exception count", ErrCorrupt)
		}
		body = body[k:]
		exc = make([]exception, cnt)
		prev := -1
		for j := range exc {
			gap, k := binary.Uvarint(body)
			if k <= 0 || gap == 0 || gap > uint64(h.n) || prev+int(gap) >= h.n || len(body) < k+8 {
				return vs, body, fmt.Errorf("%w: bad exception %d", ErrCorrupt, j)
			}
			prev += int(gap)
			exc[j] = exception{prev, binary.LittleEndian.Uint64(body[k:])}
			body = body[k+8:]
		}
	}
	dod := h.mode&flagDoD != 0
	var x, d int64
	e := 0
	for i := 0; i < h.n; i++ {
		var y int64
		switch {
		case len(body) > 0 && body[0] < 0x80:
			y, body = zigzag1(body[0]), body[1:]
		case len(body) > 1 && body[1] < 0x80:
			y, body = zigzag2(body[0], body[1]), body[2:]
		default:
			var k int
			if y, k = binary.Varint(body); k <= 0 {
				return vs, body, fmt.Errorf("%w: value %d", ErrCorrupt, i)
			}
			body = body[k:]
		}
		if dod && i >= 2 {
			d += y
		} else {
			d = y
		}
		x += d
		exceptional := e < len(exc) && exc[e].i == i
		if exceptional {
			e++
		}
		switch {
		case i < lo || i >= hi:
		case exceptional:
			vs = append(vs, math.Float64frombits(exc[e-1].bits))
		default:
			vs = append(vs, float64(x)/scale)
		}
	}
	return vs, body, nil
}

// decodeBufs are decode buffers, reused once an iterator is exhausted.
type decodeBufs struct {
	ts []int64
	vs []float64
}

var bufPool = sync.Pool{New: func() any { return &decodeBufs{} }}

// NewDenseIterator decodes b and iterates it. Its buffers go back to a pool
// when it is exhausted.
func NewDenseIterator(b []byte) Iterator {
	bufs := bufPool.Get().(*decodeBufs)
	ts, vs, err := DecodeDense(b, bufs.ts[:0], bufs.vs[:0])
	if err != nil {
		bufPool.Put(bufs)
		return &denseIter{err: err}
	}
	bufs.ts, bufs.vs = ts, vs
	return &denseIter{ts: ts, vs: vs, i: -1, bufs: bufs}
}

type denseIter struct {
	ts   []int64
	vs   []float64
	i    int
	err  error
	bufs *decodeBufs
}

// release returns the buffers; the iterator is done.
func (it *denseIter) release() {
	if it.bufs != nil {
		bufPool.Put(it.bufs)
		it.bufs, it.ts, it.vs = nil, nil, nil
	}
}

func (it *denseIter) Next() bool {
	if it.err != nil || it.i+1 >= len(it.ts) {
		it.release()
		it.i = 0
		return false
	}
	it.i++
	return true
}

func (it *denseIter) SeekTo(t int64) bool {
	if it.err != nil {
		return false
	}
	if it.i < 0 {
		it.i = 0
	}
	for it.i < len(it.ts) && it.ts[it.i] < t {
		it.i++
	}
	if it.i >= len(it.ts) {
		it.release()
		it.i = 0
		return false
	}
	return true
}

func (it *denseIter) At() (int64, float64) { return it.ts[it.i], it.vs[it.i] }
func (it *denseIter) Err() error           { return it.err }
