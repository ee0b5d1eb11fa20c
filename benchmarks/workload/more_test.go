package workload

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDevops(t *testing.T) {
	w := NewDevops(3, 0, 10_000, 1)
	require.Equal(t, 3*64, w.Len())
	require.Equal(t, "host_0", w.Labels(0).Get("hostname"))
	require.Equal(t, 11, w.Labels(0).Len(), "__name__ and TSBS's ten host tags")
	names := map[string]bool{}
	for i := range w.Len() {
		names[w.Labels(i).String()] = true
		for range 5 {
			v := w.Next(i)
			if n := w.Labels(i).Get("__name__"); n == "cpu_usage_user" {
				require.True(t, v >= 0 && v <= 100, "a percentage: %v", v)
			}
		}
	}
	require.Len(t, names, w.Len(), "distinct series")
	a, b := NewDevops(2, 0, 10_000, 7), NewDevops(2, 0, 10_000, 7)
	for i := range a.Len() {
		require.Equal(t, a.Next(i), b.Next(i), "a function of the seed")
	}
}

func TestIoTIrregularButOrdered(t *testing.T) {
	w := NewIoT(50, 0, 60_000, 1)
	require.Equal(t, 150, w.Len())
	irregular := false
	for i := range w.Len() {
		prev := w.Timestamp(i, 0)
		for s := 1; s < 50; s++ {
			ts := w.Timestamp(i, s)
			require.Greater(t, ts, prev, "increasing per series")
			if ts-prev != 60_000 {
				irregular = true
			}
			prev = ts
		}
	}
	require.True(t, irregular)
}

func TestChurnCreatesSeries(t *testing.T) {
	w := NewChurn(10, 20, 0, 15_000, 1)
	require.Equal(t, 100, w.Len())
	require.Equal(t, w.Labels(5), w.LabelsAt(5, 0))
	require.NotEqual(t, w.LabelsAt(5, 0).Get("pod"), w.LabelsAt(5, 1).Get("pod"))
	require.Equal(t, w.LabelsAt(5, 0).Get("pod"), w.LabelsAt(7, 0).Get("pod"), "one pod per slot")
	// 100 steps with pods replaced every 20: about 5 to 6 pods per slot.
	n := w.SeriesCreated(100)
	require.GreaterOrEqual(t, n, 500)
	require.LessOrEqual(t, n, 600)
}

func TestHighCard(t *testing.T) {
	w := NewHighCard(1000, 0, 15_000, 1)
	require.Equal(t, 1000, w.Len())
	require.Equal(t, "0000999", w.Labels(999).Get("id"))
}
