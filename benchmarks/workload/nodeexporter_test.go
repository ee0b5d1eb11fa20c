package workload

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func TestNodeExporterIsDeterministicAndRealistic(t *testing.T) {
	per := PerHost()
	require.Greater(t, per, 400, "the embedded scrape is a whole node-exporter")
	n := per + 10 // a second, partial host
	a, err := NewNodeExporter(n, 1_000_000, 15_000, 7)
	require.NoError(t, err)
	b, err := NewNodeExporter(n, 1_000_000, 15_000, 7)
	require.NoError(t, err)
	require.Equal(t, n, a.Len())

	seen := map[string]bool{}
	var constant, changing int
	for i := range n {
		ls := a.Labels(i)
		require.True(t, labels.Equal(ls, b.Labels(i)))
		require.False(t, seen[ls.String()], "duplicate series %s", ls)
		seen[ls.String()] = true
		require.Equal(t, "node", ls.Get("job"))
		require.True(t, strings.HasPrefix(ls.Get("instance"), "host-"))

		counter := strings.HasSuffix(ls.Get(labels.MetricName), "_total")
		prev, first := math.NaN(), 0.0
		for step := range 50 {
			require.Equal(t, a.Timestamp(i, step), b.Timestamp(i, step))
			if step > 0 {
				require.Equal(t, int64(15_000), a.Timestamp(i, step)-a.Timestamp(i, step-1))
			}
			v := a.Next(i)
			require.Equal(t, v, b.Next(i), "same seed, same values")
			if counter && step > 0 {
				require.GreaterOrEqual(t, v, prev, "%s: counters never decrease", ls)
			}
			if step == 0 {
				first = v
			}
			prev = v
		}
		if prev == first || (math.IsNaN(prev) && math.IsNaN(first)) {
			constant++
		} else {
			changing++
		}
	}
	// Like a real host: a good share of series never move, most do.
	require.Greater(t, constant, n/5)
	require.Greater(t, changing, n/3)
}

func TestQuantum(t *testing.T) {
	require.Equal(t, 1.0, quantum(7))
	require.Equal(t, 4096.0, quantum(8192))
	require.Equal(t, 0.01, quantum(74.83))
	require.Equal(t, 0.0, quantum(0.20700000000000002))
}
