package ruler

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// A recording rule over native histograms records histograms.
func TestRecordingRuleHistograms(t *testing.T) {
	db := st.Open(t, nil)
	eng := query.NewEngine(db, nil)
	r := New(eng, db, &recorder{}, nil)
	g := groupFrom(t, r, `
groups:
  - name: h
    interval: 1m
    rules:
      - record: job:latency:sum
        expr: sum by (job) (latency)
`)
	ctx := context.Background()
	t0 := time.Unix(1_700_000_000, 0)
	h := func(n float64) *histogram.FloatHistogram {
		return &histogram.FloatHistogram{Count: n, Sum: 2 * n, PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []float64{n}}
	}
	var b storage.Batch
	b.AddHistograms(labels.FromStrings("__name__", "latency", "job", "a", "instance", "1"), storage.HSample{T: t0.UnixMilli(), H: h(3)})
	b.AddHistograms(labels.FromStrings("__name__", "latency", "job", "a", "instance", "2"), storage.HSample{T: t0.UnixMilli(), H: h(4)})
	require.NoError(t, db.Write(ctx, "default", &b))
	g.Eval(ctx, t0)

	res, err := eng.Instant(ctx, "default", `job:latency:sum`, t0.UnixMilli())
	require.NoError(t, err)
	require.Len(t, res.Series, 1)
	got := res.Series[0].H(0)
	require.NotNil(t, got, "a histogram was recorded, not a float")
	require.Equal(t, 7.0, got.Count)
	require.Equal(t, 14.0, got.Sum)
}
