package limits

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
)

type sink struct{ batches int }

func (s *sink) Write(_ context.Context, _ string, _ *storage.Batch) error { s.batches++; return nil }

func batch(n int, ls labels.Labels) *storage.Batch {
	var b storage.Batch
	smp := make([]storage.Sample, n)
	for i := range smp {
		smp[i] = storage.Sample{T: int64(i), V: 1}
	}
	b.Add(ls, smp...)
	return &b
}

func TestOverrides(t *testing.T) {
	c := Config{Default: Limits{MaxSeries: 100, IngestRate: 10, MaxLabelsPerSeries: 5},
		Tenants: map[string]Limits{"big": {MaxSeries: 1000, IngestRate: 50}}}
	require.NoError(t, c.Validate())
	require.Equal(t, Limits{MaxSeries: 1000, IngestRate: 50, MaxLabelsPerSeries: 5}, c.For("big"))
	require.Equal(t, c.Default, c.For("other"))
	require.Error(t, (&Config{Default: Limits{MaxSeries: -1}}).Validate())
}

func TestRateAndLabels(t *testing.T) {
	now := time.Unix(0, 0)
	l := New(&Config{Default: Limits{IngestRate: 1000, IngestBurst: 2000, MaxLabelsPerSeries: 3, MaxLabelValueLength: 8}}, func() time.Time { return now })
	s := &sink{}
	w := l.Wrap(s)
	ctx := context.Background()
	ok := labels.FromStrings("__name__", "m", "a", "x")
	require.NoError(t, w.Write(ctx, "t", batch(1500, ok)))
	err := w.Write(ctx, "t", batch(1000, ok))
	require.ErrorIs(t, err, storage.ErrRateLimited)
	require.Equal(t, 500*time.Millisecond, storage.RetryAfter(err), "500 samples short at 1000/s")
	require.Equal(t, 1, s.batches, "the refused write reached nothing")
	require.NoError(t, w.Write(ctx, "other", batch(1500, ok)), "tenants have their own buckets")
	now = now.Add(500 * time.Millisecond)
	require.NoError(t, w.Write(ctx, "t", batch(1000, ok)), "the bucket refilled")
	require.ErrorIs(t, w.Write(ctx, "t", batch(3000, ok)), storage.ErrInvalidSample, "larger than the burst: never fits")

	now = now.Add(time.Second)
	err = w.Write(ctx, "t", batch(1, labels.FromStrings("__name__", "m", "a", "x", "b", "y", "c", "z")))
	require.ErrorIs(t, err, storage.ErrInvalidSeries)
	require.Contains(t, err.Error(), "max_labels_per_series")
	err = w.Write(ctx, "t", batch(1, labels.FromStrings("__name__", "m", "a", strings.Repeat("v", 9))))
	require.ErrorIs(t, err, storage.ErrInvalidSeries)
	require.Contains(t, err.Error(), "max_label_value_length")
	var rl *RateLimitError
	require.False(t, errors.As(err, &rl))
}
