package storage_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
)

// TestCloseLeavesAnEmptyLog: a clean stop seals everything and truncates
// the log below the segment it rotated to, so the next start replays
// nothing (twenty restarts in a row).
func TestCloseLeavesAnEmptyLog(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for round := range 20 {
		db, err := storage.Open(dir, &storage.Options{Shards: 2, HeadChunkSamples: 50})
		require.NoError(t, err)
		require.Zero(t, db.Stats().WALBytes, "round %d: the log left by the last stop holds records", round)
		var b storage.Batch
		for i := range 20 {
			b.Add(labels.FromStrings("__name__", "m", "i", fmt.Sprint(i)), storage.Sample{T: int64(round+1) * 15_000, V: float64(i)})
		}
		require.NoError(t, db.Write(ctx, "default", &b))
		require.NoError(t, db.Close())
	}
}
