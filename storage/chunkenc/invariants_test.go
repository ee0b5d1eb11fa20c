//go:build invariants

package chunkenc

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Under the invariants tag the codecs' contracts are checked: a caller
// that breaks them stops at the bug instead of writing a chunk that
// decodes to something else.
func TestContractsChecked(t *testing.T) {
	c := NewXORChunk()
	c.Append(2000, 1)
	require.Panics(t, func() { c.Append(2000, 2) }, "XOR append of a timestamp already there")
	require.Panics(t, func() { EncodeDense(nil, []int64{3, 2}, []float64{1, 1}) }, "dense timestamps out of order")
	require.Panics(t, func() { EncodeDense(nil, []int64{1}, nil) }, "more timestamps than values")
}
