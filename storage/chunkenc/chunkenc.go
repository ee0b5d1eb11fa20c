// Package chunkenc holds the sample codecs: XORChunk, the append-only
// in-memory head chunk, and the dense codec of sealed chunks on disk. Both
// are bit-exact for every float64, stale markers and NaN payloads
// included.
//
//   - XOR: Gorilla's bitstream (Pelkonen et al., VLDB 2015), as Prometheus's
//     head chunks: delta-of-delta timestamps in 1 to 68 bits (a regular
//     interval costs 1 bit) and XOR'd values with a leading/trailing zero
//     window (a repeated value costs 1 bit). It keeps the head small in
//     memory; see xor.go.
//
//   - dense: byte-aligned for Pebble's zstd: zigzag varint delta-of-delta
//     timestamps, and values as integer or decimal deltas when every value
//     allows it, else XOR'd uvarints; see dense.go.
//
//     c := chunkenc.NewXORChunk()
//     c.Append(1000, 1)
//     b, n := c.Snapshot(nil)
//     it := chunkenc.NewXORIterator(b, n)
package chunkenc

import "errors"

// ErrCorrupt reports bytes that do not decode.
var ErrCorrupt = errors.New("chunkenc: corrupt chunk")

// Iterator walks samples in ascending timestamp order.
type Iterator interface {
	Next() bool
	SeekTo(t int64) bool
	At() (int64, float64)
	Err() error
}
