// Package chunkenc holds the sample codecs: XORChunk, the append-only
// in-memory head chunk, and the dense codec of sealed chunks on disk. Both
// are bit-exact for every float64, stale markers and NaN payloads
// included.
//
// Both encode timestamps as zigzag varint delta-of-deltas (a regular
// scrape interval becomes a run of zero bytes that Pebble's zstd block
// compression removes). Values:
//
//   - XOR: uvarint(bits(v) XOR bits(prev)), so a repeated value is one
//     byte. Byte-aligned, unlike Gorilla's bitstream.
//     TODO(eng): bit-pack as Gorilla does to cut head memory. #2
//
//   - dense: when every value is an integer below 2^53 (counters), zigzag
//     varint deltas of the integers; otherwise the XOR form.
//
//     c := chunkenc.NewXORChunk()
//     c.Append(1000, 1)
//     b, n := c.Snapshot(nil)
//     it := chunkenc.NewXORIterator(b, n)
package chunkenc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrCorrupt reports bytes that do not decode.
var ErrCorrupt = errors.New("chunkenc: corrupt chunk")

// Iterator walks samples in ascending timestamp order.
type Iterator interface {
	Next() bool
	SeekTo(t int64) bool
	At() (int64, float64)
	Err() error
}

// XORChunk is an append-only chunk; not safe for concurrent use.
type XORChunk struct {
	b          []byte
	n          int
	minT, maxT int64
	tDelta     int64
	vbits      uint64
}

// NewXORChunk returns an empty chunk.
func NewXORChunk() *XORChunk { return &XORChunk{} }

// Append adds a sample; t must be greater than the last appended t.
func (c *XORChunk) Append(t int64, v float64) {
	bits := math.Float64bits(v)
	switch c.n {
	case 0:
		c.b = binary.AppendVarint(c.b, t)
		c.minT = t
	case 1:
		c.tDelta = t - c.maxT
		c.b = binary.AppendVarint(c.b, c.tDelta)
	default:
		d := t - c.maxT
		c.b = binary.AppendVarint(c.b, d-c.tDelta)
		c.tDelta = d
	}
	c.b = binary.AppendUvarint(c.b, bits^c.vbits)
	c.vbits = bits
	c.maxT = t
	c.n++
}

// NumSamples returns the number of samples.
func (c *XORChunk) NumSamples() int { return c.n }

// MinTime returns the first timestamp.
func (c *XORChunk) MinTime() int64 { return c.minT }

// MaxTime returns the last timestamp.
func (c *XORChunk) MaxTime() int64 { return c.maxT }

// Size returns the encoded size in bytes.
func (c *XORChunk) Size() int { return len(c.b) }

// Snapshot appends a copy of the encoding to dst, with the sample count.
func (c *XORChunk) Snapshot(dst []byte) ([]byte, int) { return append(dst, c.b...), c.n }

// Reset empties the chunk, keeping its buffer.
func (c *XORChunk) Reset() { *c = XORChunk{b: c.b[:0]} }

// NewXORIterator iterates the first n samples of an XOR encoding.
func NewXORIterator(b []byte, n int) Iterator { return &xorIter{b: b, n: n} }

type xorIter struct {
	b      []byte
	n, i   int
	t, d   int64
	bits   uint64
	err    error
	primed bool
}

func (it *xorIter) Next() bool {
	if it.err != nil || it.i >= it.n {
		return false
	}
	x, k := binary.Varint(it.b)
	if k <= 0 {
		return it.fail()
	}
	it.b = it.b[k:]
	switch it.i {
	case 0:
		it.t = x
	case 1:
		it.d = x
		it.t += x
	default:
		it.d += x
		it.t += it.d
	}
	u, k := binary.Uvarint(it.b)
	if k <= 0 {
		return it.fail()
	}
	it.b = it.b[k:]
	it.bits ^= u
	it.i++
	it.primed = true
	return true
}

func (it *xorIter) fail() bool {
	it.err = fmt.Errorf("%w: xor sample %d of %d", ErrCorrupt, it.i, it.n)
	return false
}

func (it *xorIter) SeekTo(t int64) bool {
	if it.primed && it.t >= t {
		return true
	}
	for it.Next() {
		if it.t >= t {
			return true
		}
	}
	return false
}

func (it *xorIter) At() (int64, float64) { return it.t, math.Float64frombits(it.bits) }
func (it *xorIter) Err() error           { return it.err }
