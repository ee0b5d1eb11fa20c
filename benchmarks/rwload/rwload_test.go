package rwload

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/benchmarks/workload"
)

func TestEncodeIsValidRemoteWriteInSeriesOrder(t *testing.T) {
	w, err := workload.NewNodeExporter(1000, 0, 15_000, 1)
	require.NoError(t, err)
	ref, err := workload.NewNodeExporter(1000, 0, 15_000, 1)
	require.NoError(t, err)
	streams := Encode(w, 5, 3, 700)
	require.Len(t, streams, 3)

	got := map[string][]prompb.Sample{}
	total := 0
	for _, s := range streams {
		for _, b := range s {
			raw, err := snappy.Decode(nil, b.Data)
			require.NoError(t, err)
			var req prompb.WriteRequest
			require.NoError(t, req.Unmarshal(raw))
			require.Len(t, req.Timeseries, b.Samples)
			require.LessOrEqual(t, b.Samples, 700)
			for _, ts := range req.Timeseries {
				k := labelsOf(ts).String()
				got[k] = append(got[k], ts.Samples...)
				total += len(ts.Samples)
			}
		}
	}
	require.Equal(t, 5000, total)
	for i := range ref.Len() {
		k := ref.Labels(i).String()
		require.Len(t, got[k], 5, k)
		for step := range 5 {
			v := ref.Next(i)
			require.Equal(t, ref.Timestamp(i, step), got[k][step].Timestamp, "in time order")
			if v == v {
				require.Equal(t, v, got[k][step].Value)
			}
		}
	}
}

func labelsOf(ts prompb.TimeSeries) labels.Labels {
	b := labels.NewScratchBuilder(len(ts.Labels))
	for _, l := range ts.Labels {
		b.Add(l.Name, l.Value)
	}
	return b.Labels()
}

func TestSendRetriesAndCounts(t *testing.T) {
	var calls atomic.Int64
	var mu sync.Mutex
	bodies := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if calls.Add(1)%3 == 0 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		require.Equal(t, "snappy", r.Header.Get("Content-Encoding"))
		mu.Lock()
		bodies++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	w, err := workload.NewNodeExporter(100, 0, 15_000, 1)
	require.NoError(t, err)
	streams := Encode(w, 10, 2, 100)
	res, err := Send(context.Background(), Config{URL: srv.URL}, streams)
	require.NoError(t, err)
	require.Equal(t, int64(1000), res.Samples)
	require.Equal(t, int64(10), res.Requests)
	require.Equal(t, 10, bodies)
	require.Positive(t, res.Retries)
	require.Positive(t, res.SamplesPerSec)

	// A 400 is final.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad labels", http.StatusBadRequest)
	}))
	defer bad.Close()
	_, err = Send(context.Background(), Config{URL: bad.URL}, streams)
	require.ErrorContains(t, err, "bad labels")
}

func TestSendSpreadsStreamsOverURLs(t *testing.T) {
	var got [2]atomic.Int64
	srv := func(i int) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			got[i].Add(1)
			w.WriteHeader(http.StatusNoContent)
		}))
	}
	a, b := srv(0), srv(1)
	defer a.Close()
	defer b.Close()
	w, err := workload.NewNodeExporter(90, 0, 15_000, 1)
	require.NoError(t, err)
	// Three streams of 30 series × 2 steps, 20 samples a body: streams 0
	// and 2 go to a, stream 1 to b.
	streams := Encode(w, 2, 3, 20)
	var acked atomic.Int64
	res, err := Send(context.Background(), Config{URLs: []string{a.URL, b.URL}, Acked: &acked}, streams)
	require.NoError(t, err)
	require.Equal(t, int64(180), res.Samples)
	require.Equal(t, int64(180), acked.Load())
	require.Equal(t, int64(len(streams[0])+len(streams[2])), got[0].Load())
	require.Equal(t, int64(len(streams[1])), got[1].Load())
}
