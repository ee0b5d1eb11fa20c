package storage

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// TestMemSeriesSize keeps a series in memory within the allocator's
// 288-byte size class (the next is 320): a million series carry every byte
// a million times.
func TestMemSeriesSize(t *testing.T) {
	require.LessOrEqual(t, unsafe.Sizeof(memSeries{}), uintptr(288))
}
