package chunkenc

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Dense chunk layout (see storage/docs/format-chunks.md):
//
//	version(1)=1 mode(1) uvarint(n) varint(minT) varint(maxT)
//	timestamps: n-1 zigzag varints (first delta, then delta-of-deltas)
//	values:     mode 0 (xor): n uvarints bits(v)^bits(prev)
//	            mode 1 (int): varint(v0) then n-1 zigzag varint deltas
//	            mode 2 (decimal): byte k, then as mode 1 over v*10^k
//	            (every value v == float64(m)/10^k exactly, |m| < 2^53)
const (
	denseVersion = 1
	modeXOR      = 0
	modeInt      = 1
	modeDecimal  = 2
)

// pow10 holds the exact powers of ten a decimal mode may use.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// decimalScale returns the smallest k such that every value is exactly
// float64(m)/10^k for an integer |m| < 2^53 (Clinger's fast path makes
// that division correctly rounded), or -1.
func decimalScale(vs []float64) int {
	for k := 1; k < len(pow10); k++ {
		ok := true
		for _, v := range vs {
			m := math.Round(v * pow10[k])
			if math.IsNaN(v) || math.Abs(m) >= maxExactInt || m/pow10[k] != v || (v == 0 && math.Signbit(v)) {
				ok = false
				break
			}
		}
		if ok {
			return k
		}
	}
	return -1
}

const maxExactInt = 1 << 53

func isInt(v float64) bool {
	return v == math.Trunc(v) && math.Abs(v) < maxExactInt && !(v == 0 && math.Signbit(v))
}

// EncodeDense appends the dense encoding of the samples (len(ts) ==
// len(vs) >= 1, ts strictly increasing) to dst.
func EncodeDense(dst []byte, ts []int64, vs []float64) []byte {
	mode := byte(modeInt)
	for _, v := range vs {
		if !isInt(v) {
			mode = modeXOR
			break
		}
	}
	k := 0
	if mode == modeXOR {
		if k = decimalScale(vs); k > 0 {
			mode = modeDecimal
		}
	}
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
	if mode == modeInt || mode == modeDecimal {
		if mode == modeDecimal {
			dst = append(dst, byte(k))
		}
		prev := int64(0)
		for _, v := range vs {
			x := int64(math.Round(v * pow10[k]))
			dst = binary.AppendVarint(dst, x-prev)
			prev = x
		}
		return dst
	}
	var prev uint64
	for _, v := range vs {
		b := math.Float64bits(v)
		dst = binary.AppendUvarint(dst, b^prev)
		prev = b
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
	if len(b) < 2 || b[0] != denseVersion || b[1] > modeDecimal {
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

// DecodeDense appends the decoded samples to ts and vs.
func DecodeDense(b []byte, ts []int64, vs []float64) ([]int64, []float64, error) {
	h, err := parseDense(b)
	if err != nil {
		return ts, vs, err
	}
	body := h.body
	t, d := h.minT, int64(0)
	ts = append(ts, t)
	for i := 1; i < h.n; i++ {
		x, k := binary.Varint(body)
		if k <= 0 {
			return ts, vs, fmt.Errorf("%w: timestamp %d", ErrCorrupt, i)
		}
		body = body[k:]
		if i == 1 {
			d = x
		} else {
			d += x
		}
		t += d
		ts = append(ts, t)
	}
	if t != h.maxT {
		return ts, vs, fmt.Errorf("%w: timestamps end at %d, header says %d", ErrCorrupt, t, h.maxT)
	}
	var prevI int64
	var prevB uint64
	scale := 1.0
	if h.mode == modeDecimal {
		if len(body) == 0 || int(body[0]) == 0 || int(body[0]) >= len(pow10) {
			return ts, vs, fmt.Errorf("%w: bad decimal scale", ErrCorrupt)
		}
		scale = pow10[body[0]]
		body = body[1:]
	}
	for i := 0; i < h.n; i++ {
		if h.mode != modeXOR {
			x, k := binary.Varint(body)
			if k <= 0 {
				return ts, vs, fmt.Errorf("%w: value %d", ErrCorrupt, i)
			}
			body = body[k:]
			prevI += x
			vs = append(vs, float64(prevI)/scale)
			continue
		}
		x, k := binary.Uvarint(body)
		if k <= 0 {
			return ts, vs, fmt.Errorf("%w: value %d", ErrCorrupt, i)
		}
		body = body[k:]
		prevB ^= x
		vs = append(vs, math.Float64frombits(prevB))
	}
	if len(body) != 0 {
		return ts, vs, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(body))
	}
	return ts, vs, nil
}

// NewDenseIterator decodes b and iterates it.
func NewDenseIterator(b []byte) Iterator {
	ts, vs, err := DecodeDense(b, nil, nil)
	if err != nil {
		return &denseIter{err: err}
	}
	return &denseIter{ts: ts, vs: vs, i: -1}
}

type denseIter struct {
	ts  []int64
	vs  []float64
	i   int
	err error
}

func (it *denseIter) Next() bool {
	if it.err != nil || it.i+1 >= len(it.ts) {
		it.i = len(it.ts)
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
	return it.i < len(it.ts)
}

func (it *denseIter) At() (int64, float64) { return it.ts[it.i], it.vs[it.i] }
func (it *denseIter) Err() error           { return it.err }
