package query

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

func TestLimitsGiveClearErrors(t *testing.T) {
	db := st.Open(t, nil)
	var b storage.Batch
	for i := range 50 {
		var smp []storage.Sample
		for ts := int64(0); ts < 600_000; ts += 15_000 {
			smp = append(smp, storage.Sample{T: ts, V: 1})
		}
		b.Add(labels.FromStrings("__name__", "m", "i", fmt.Sprint(i)), smp...)
	}
	require.NoError(t, db.Write(context.Background(), "default", &b))
	ctx := context.Background()

	_, err := NewEngine(db, &Options{MaxSeries: 10}).Instant(ctx, "default", "sum(m)", 600_000)
	var qe *Error
	require.ErrorAs(t, err, &qe)
	require.Equal(t, ErrExecution, qe.Type)
	require.ErrorContains(t, err, "more than 10 series")

	_, err = NewEngine(db, &Options{MaxSamples: 100}).Instant(ctx, "default", "rate(m[10m])", 600_000)
	require.ErrorContains(t, err, "too many samples")
	// An aggregation of a range function holds one series' window at a
	// time (aggregateRange), as Prometheus does: 40 samples.
	_, err = NewEngine(db, &Options{MaxSamples: 100}).Instant(ctx, "default", "sum(rate(m[10m]))", 600_000)
	require.NoError(t, err)
	_, err = NewEngine(db, &Options{MaxSamples: 30}).Instant(ctx, "default", "sum(rate(m[10m]))", 600_000)
	require.ErrorContains(t, err, "too many samples")

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = NewEngine(db, nil).Range(cctx, "default", "sum(rate(m[1m]))", 0, 600_000, 1000)
	require.ErrorAs(t, err, &qe)
	require.Contains(t, []ErrorType{ErrCanceled, ErrTimeout}, qe.Type)

	_, err = NewEngine(db, &Options{Timeout: time.Nanosecond}).Range(ctx, "default", "sum(rate(m[1m]))", 0, 600_000, 1000)
	require.ErrorAs(t, err, &qe)
	require.Equal(t, ErrTimeout, qe.Type)
	require.True(t, errors.Is(err, qe))
}
