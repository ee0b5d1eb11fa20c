package workload

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func TestNodeExporterIsDeterministicAndRealistic(t *testing.T) {
	for _, m := range []Model{Recorded, Noisy} {
		t.Run(string(m), func(t *testing.T) {
			w0, err := NewNodeExporterModel(m, 1, 0, 15_000, 7)
			require.NoError(t, err)
			per := w0.PerHost()
			require.Greater(t, per, 400, "a whole node-exporter")
			n := per + 10 // a second, partial host
			a, err := NewNodeExporterModel(m, n, 1_000_000, 15_000, 7)
			require.NoError(t, err)
			b, err := NewNodeExporterModel(m, n, 1_000_000, 15_000, 7)
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

				counter := strings.HasSuffix(ls.Get(model.MetricNameLabel), "_total")
				prev, first := math.NaN(), 0.0
				for step := range 50 {
					require.Equal(t, a.Timestamp(i, step), b.Timestamp(i, step))
					if step > 0 {
						require.Equal(t, int64(15_000), a.Timestamp(i, step)-a.Timestamp(i, step-1))
					}
					v := a.Next(i)
					require.Equal(t, math.Float64bits(v), math.Float64bits(b.Next(i)), "same seed, same values")
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
			// Like a real host: a good share of series never move, many do.
			require.Greater(t, constant, n/5)
			require.Greater(t, changing, n/5)
		})
	}
}

func TestStatsRoundTrip(t *testing.T) {
	stats, err := ReadStats(bytes.NewReader(nodeExporterStats))
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, WriteStats(&buf, stats))
	again, err := ReadStats(&buf)
	require.NoError(t, err)
	require.Equal(t, len(stats), len(again))
	for i := range stats {
		require.True(t, labels.Equal(stats[i].Labels, again[i].Labels))
		require.Equal(t, stats[i].PChange, again[i].PChange)
	}
	_, err = ReadStats(strings.NewReader("up\tgauge\n"))
	require.Error(t, err)
}

func TestRecord(t *testing.T) {
	s0 := "# TYPE c counter\nc_total{a=\"x\"} 10\ng 1.5\ngone 1\n"
	s1 := "# TYPE c counter\nc_total{a=\"x\"} 14\ng 1.5\n"
	s2 := "# TYPE c counter\nc_total{a=\"x\"} 20\ng 2.25\n"
	stats, err := Record([][]byte{[]byte(s0), []byte(s1), []byte(s2)})
	require.NoError(t, err)
	require.Len(t, stats, 2, "a series missing from a scrape is left out")
	require.True(t, stats[0].Counter)
	require.Equal(t, 1.0, stats[0].PChange)
	require.Equal(t, 5.0, stats[0].Mean)
	require.Equal(t, 1.0, stats[0].SD)
	require.Equal(t, 1.0, stats[0].Quantum)
	require.False(t, stats[1].Counter)
	require.Equal(t, 0.5, stats[1].PChange)
	require.Equal(t, 0.01, stats[1].Quantum)
}

func TestQuantum(t *testing.T) {
	require.Equal(t, 1.0, quantum(7))
	require.Equal(t, 4096.0, quantum(8192))
	require.Equal(t, 0.01, quantum(74.83))
	require.Equal(t, 0.0, quantum(0.20700000000000002))
	require.Equal(t, 1e-9, quantum(0.000175341))
	require.Equal(t, 1.0, quantum(1.4398728e+07))
}
