package limits

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
)

func TestInFlight(t *testing.T) {
	ctx := context.Background()
	f := NewInFlight(100, 50*time.Millisecond)
	_, err := f.Reserve(ctx, 60)
	require.NoError(t, err)
	require.Equal(t, int64(60), f.Used())

	// Over the budget: waits, then is busy, says when to retry, holds nothing.
	start := time.Now()
	_, err = f.Reserve(ctx, 50)
	require.ErrorIs(t, err, ErrBusy)
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	require.Equal(t, 50*time.Millisecond, storage.RetryAfter(err))
	require.Contains(t, err.Error(), "--ingest.max-inflight-bytes")
	require.Equal(t, int64(60), f.Used())

	// More than the whole budget can never fit: at once.
	_, err = f.Reserve(ctx, 101)
	require.ErrorIs(t, err, ErrTooLarge)
	require.Contains(t, err.Error(), "more than the whole in-flight budget")

	// A release wakes a waiter.
	f = NewInFlight(100, time.Minute)
	a, err := f.Reserve(ctx, 60)
	require.NoError(t, err)
	got := make(chan error)
	go func() {
		b, err := f.Reserve(ctx, 50)
		if err == nil {
			require.NoError(t, b.Grow(ctx, 10))
			b.Release()
		}
		got <- err
	}()
	time.Sleep(10 * time.Millisecond) // let it wait; it passes either way
	a.Release()
	a.Release() // twice is harmless
	require.NoError(t, <-got)
	require.Zero(t, f.Used())
	require.Equal(t, int64(60), f.Peak(), "never 60 and 60 at once")
}

func TestReadAllReservesAsItGrows(t *testing.T) {
	ctx := context.Background()
	f := NewInFlight(1<<20, time.Millisecond)
	res, err := f.Reserve(ctx, 0)
	require.NoError(t, err)
	body := bytes.Repeat([]byte("x"), 300<<10)
	got, err := res.ReadAll(ctx, bytes.NewReader(body), 400<<10, 0)
	require.NoError(t, err)
	require.Equal(t, body, got)
	require.GreaterOrEqual(t, res.Bytes(), int64(len(body)), "the buffer is reserved")
	require.Equal(t, res.Bytes(), f.Used())
	res.Release()

	// Over the limit: 413 naming the flag.
	res, _ = f.Reserve(ctx, 0)
	_, err = res.ReadAll(ctx, bytes.NewReader(body), 100<<10, 0)
	require.ErrorIs(t, err, ErrTooLarge)
	require.Contains(t, err.Error(), "larger than the limit of 102400 bytes (--ingest.max-decoded-bytes)")
	res.Release()

	// A size hint sizes the buffer once; a lying one is only a hint.
	res, _ = f.Reserve(ctx, 0)
	got, err = res.ReadAll(ctx, strings.NewReader("abc"), 100, 3)
	require.NoError(t, err)
	require.Equal(t, "abc", string(got))
	got, err = res.ReadAll(ctx, bytes.NewReader(body[:5000]), 10000, 10)
	require.NoError(t, err)
	require.Len(t, got, 5000)
	res.Release()
	require.Zero(t, f.Used())
}
