package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestKill9LosesNoAcknowledgedWrite: a child tsdb ingesting over HTTP is
// killed with SIGKILL at random moments, many times; after each restart
// every acknowledged sample — floats and native histograms — must be read
// back through /api/v1/export.
func TestKill9LosesNoAcknowledgedWrite(t *testing.T) {
	bin := apptest.Build(t)
	dir := t.TempDir()
	const (
		rounds  = 8
		writers = 4
		series  = 50 // per writer
	)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	// acked[writer][series] = acknowledged timestamps; the value of a
	// sample is a function of (writer, series, ts), so it is checkable.
	value := func(w, s int, ts int64) float64 { return float64(w*1_000_000+s*1000) + float64(ts%997) }
	acked := make([]map[int64]bool, writers)
	for i := range acked {
		acked[i] = map[int64]bool{}
	}
	var next [writers]int64 // next timestamp per writer, continuing across rounds
	client := &http.Client{Timeout: 10 * time.Second}
	total := 0
	for round := range rounds {
		p := apptest.StartTSDB(t, bin, dir, "--shards", "2")
		verify(t, client, p, acked, value, series)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					mu.Lock()
					ts := next[w]
					next[w] += 1000
					mu.Unlock()
					req := &prompb.WriteRequest{}
					for s := range series {
						req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
							Labels: []prompb.Label{
								{Name: "__name__", Value: "crash_test"},
								{Name: "s", Value: strconv.Itoa(s)},
								{Name: "w", Value: strconv.Itoa(w)},
							},
							Samples: []prompb.Sample{{Timestamp: ts, Value: value(w, s, ts)}},
						})
					}
					// One native histogram series per writer, whose count
					// tells the sample apart.
					c := uint64(value(w, 0, ts))
					req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
						Labels: []prompb.Label{{Name: "__name__", Value: "crash_hist"}, {Name: "w", Value: strconv.Itoa(w)}},
						Histograms: []prompb.Histogram{prompb.FromIntHistogram(ts, &histogram.Histogram{
							Schema: 0, ZeroThreshold: 0.001, ZeroCount: c, Count: c + 1, Sum: float64(c),
							PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []int64{1},
						})},
					})
					code, _, err := apptest.RemoteWrite(ctx, client, p.URL()+"/api/v1/write", req)
					if err == nil && code == 204 {
						mu.Lock()
						acked[w][ts] = true
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
		p.Kill() // SIGKILL while writes are in flight
		cancel()
		wg.Wait()
		n := 0
		for _, a := range acked {
			n += len(a)
		}
		t.Logf("round %d: killed; %d requests acknowledged so far", round, n)
		total = n
	}
	require.Greater(t, total, rounds*writers, "the writers got acknowledgements")
	p := apptest.StartTSDB(t, bin, dir)
	verify(t, client, p, acked, value, series)
	p.Stop(t)
	// After a clean stop everything is sealed; a last start reads it all
	// from disk with an empty log.
	p = apptest.StartTSDB(t, bin, dir)
	verify(t, client, p, acked, value, series)
	p.Stop(t)
}

func verify(t *testing.T, c *http.Client, p *apptest.Proc, acked []map[int64]bool, value func(w, s int, ts int64) float64, series int) {
	t.Helper()
	got, err := apptest.Export(c, p.URL(), `{__name__="crash_test"}`)
	require.NoError(t, err)
	stored := map[string]map[int64]float64{}
	for _, s := range got {
		key := s.Metric["w"] + "/" + s.Metric["s"]
		m := map[int64]float64{}
		for i, ts := range s.Timestamps {
			m[ts] = s.Value(i)
		}
		stored[key] = m
	}
	lost := 0
	for w, a := range acked {
		for ts := range a {
			for s := range series {
				v, ok := stored[fmt.Sprintf("%d/%d", w, s)][ts]
				if !ok {
					lost++
					continue
				}
				require.Equal(t, value(w, s, ts), v, "writer %d series %d ts %d", w, s, ts)
			}
		}
	}
	require.Zero(t, lost, "acknowledged samples lost after kill -9\n%s", p.Log())

	hists, err := apptest.Export(c, p.URL(), `{__name__="crash_hist"}`)
	require.NoError(t, err)
	counts := map[string]map[int64]float64{}
	for _, s := range hists {
		m := map[int64]float64{}
		for i, ts := range s.HistogramTimestamps {
			var h struct {
				Count float64 `json:"count"`
			}
			require.NoError(t, json.Unmarshal(s.Histograms[i], &h), "%s", s.Histograms[i])
			m[ts] = h.Count
		}
		counts[s.Metric["w"]] = m
	}
	for w, a := range acked {
		for ts := range a {
			got, ok := counts[strconv.Itoa(w)][ts]
			if !ok {
				lost++
				continue
			}
			require.Equal(t, value(w, 0, ts)+1, got, "histogram of writer %d at %d", w, ts)
		}
	}
	require.Zero(t, lost, "acknowledged histograms lost after kill -9\n%s", p.Log())
}
