package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The bar redraws at most ten times a second and exactly once at 100 %,
// however often it is told (tsdb import drew one frame per input line).
func TestProgressBarFrames(t *testing.T) {
	var out bytes.Buffer
	pb := newBar(&out, "import", 1000)
	for i := range 1000 {
		pb.set(int64(i))
	}
	for range 100 {
		pb.set(1000)
	}
	frames := strings.Split(out.String(), "\r")[1:]
	require.LessOrEqual(t, len(frames), 3, "frames: %q", frames)
	require.Contains(t, frames[len(frames)-1], "100.0%")
	require.Equal(t, 1, strings.Count(out.String(), "100.0%"))
}

// tsdb rules replay counts the evaluations it makes: a range not aligned
// to the interval no longer ends at 95.2 %.
func TestEvalTimes(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
	end := start.Add(20 * time.Minute)
	first, n := evalTimes(start, end, time.Minute)
	require.Equal(t, start.Add(30*time.Second), first)
	require.Equal(t, 20, n)
	got := 0
	for ts := first; !ts.After(end); ts = ts.Add(time.Minute) {
		got++
	}
	require.Equal(t, got, n)
	_, n = evalTimes(start, start.Add(10*time.Second), time.Minute)
	require.Zero(t, n)
}
