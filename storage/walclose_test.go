package storage_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

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

// TestCloseWhenTheDataFolderIsGone: a data folder deleted (or unmounted)
// under a running DB fails every Pebble flush from then on; Close reports
// that and returns, rather than wait for a flush that cannot end (it did,
// spinning a core, before Pebble's "file not found" counted as a disk
// that takes no writes).
func TestCloseWhenTheDataFolderIsGone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	db, err := storage.Open(dir, &storage.Options{Shards: 2})
	require.NoError(t, err)
	var b storage.Batch
	for i := range 2000 {
		b.Add(labels.FromStrings("__name__", "m", "i", fmt.Sprint(i)), storage.Sample{T: 15_000, V: float64(i)})
	}
	require.NoError(t, db.Write(context.Background(), "default", &b))
	require.NoError(t, os.RemoveAll(dir))
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	select {
	case err := <-closed:
		require.Error(t, err, "nothing could be flushed or sealed")
	case <-time.After(30 * time.Second):
		t.Fatal("Close still waits 30 s after the data folder was deleted")
	}
}
