package query

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// A series of floats keeps Series.Histograms nil all the way through (the
// float path stays pointer-free); a series that turns into histograms
// carries them beside its points, in step with them.
func TestSeriesHistogramsBesidePoints(t *testing.T) {
	db := st.Open(t, nil)
	ctx := context.Background()
	var b storage.Batch
	b.Add(labels.FromStrings("__name__", "f"), storage.Sample{T: 0, V: 1}, storage.Sample{T: 60_000, V: 2})
	mixed := labels.FromStrings("__name__", "m")
	b.Add(mixed, storage.Sample{T: 0, V: 5})
	b.AddHistograms(mixed, storage.HSample{T: 60_000, H: &histogram.FloatHistogram{Count: 3, Sum: 4}})
	require.NoError(t, db.Write(ctx, "default", &b))
	eng := NewEngine(db, nil)

	res, err := eng.Range(ctx, "default", `f * 2`, 0, 120_000, 60_000)
	require.NoError(t, err)
	require.Len(t, res.Series, 1)
	require.Nil(t, res.Series[0].Histograms)
	require.Len(t, res.Series[0].Points, 3)

	res, err = eng.Range(ctx, "default", `m`, 0, 120_000, 60_000)
	require.NoError(t, err)
	require.Len(t, res.Series, 1)
	s := res.Series[0]
	require.Len(t, s.Points, 3)
	require.Len(t, s.Histograms, 3)
	require.Nil(t, s.H(0))
	require.Equal(t, 5.0, s.Points[0].F)
	require.Equal(t, 3.0, s.H(1).Count)
	require.Equal(t, 3.0, s.H(2).Count, "looked back a minute")

	// Functions of floats drop histograms; histogram functions drop floats.
	res, err = eng.Instant(ctx, "default", `abs(m)`, 60_000)
	require.NoError(t, err)
	require.Empty(t, res.Series)
	res, err = eng.Instant(ctx, "default", `histogram_count(m) + histogram_sum(m)`, 60_000)
	require.NoError(t, err)
	require.Len(t, res.Series, 1)
	require.Equal(t, 7.0, res.Series[0].Points[0].F)

	// A window holding both: rate warns and gives nothing.
	res, err = eng.Instant(ctx, "default", `rate(m[2m])`, 60_000)
	require.NoError(t, err)
	require.Empty(t, res.Series)
	require.Equal(t, []string{`PromQL warning: encountered a mix of histograms and floats for metric name "m"`}, res.Warnings)
}
