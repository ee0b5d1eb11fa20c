package storage_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
	"github.com/emsdb/tsdb/storage/wal"
)

// A log written before issue 18 (format 1 sample entries) replays, and so
// does one holding both formats in its segments.
func TestOldFormatWALReplays(t *testing.T) {
	dir := t.TempDir()
	db := st.OpenDir(t, dir, &storage.Options{Shards: 1})
	require.NoError(t, db.Close())

	lset := labels.FromStrings("__name__", "old", "job", "node")
	want := []storage.Sample{{T: 1000, V: 1}, {T: 16000, V: 2.5}, {T: 31000, V: math.Float64frombits(0x7ff0000000000002)}}
	w, err := wal.Open(filepath.Join(dir, "shard-000", "wal"), nil)
	require.NoError(t, err)
	require.NoError(t, w.Replay(func([]byte) error { return nil }))
	pos, err := w.Append(storage.OldFormatRecord(1, "default", 7, lset, want))
	require.NoError(t, err)
	require.NoError(t, w.Wait(context.Background(), pos))
	require.NoError(t, w.Close())

	read := func(db *storage.DB) []storage.Sample {
		return st.Read(t, db, "default", math.MinInt64, all, st.Eq("__name__", "old"))[`{__name__="old", job="node"}`]
	}
	bitsOf := func(ss []storage.Sample) []string {
		var out []string
		for _, s := range ss {
			out = append(out, fmt.Sprintf("%d:%x", s.T, math.Float64bits(s.V)))
		}
		return out
	}
	db = st.OpenDir(t, dir, nil)
	require.Equal(t, bitsOf(want), bitsOf(read(db)))
	// New records go to a new segment; the old one stays until sealed.
	for i := range 5 {
		s := storage.Sample{T: int64(46000 + i*15000), V: float64(10 + i)}
		want = append(want, s)
		st.Write(t, db, "default", storage.SeriesSamples{Labels: lset, Samples: []storage.Sample{s}})
	}
	require.NoError(t, storage.Crash(db))
	db = st.OpenDir(t, dir, nil)
	require.Equal(t, bitsOf(want), bitsOf(read(db)))
}

// A log written before 2026-12 (zstd records of block entries without the
// bitmap of repeated values) replays, and new records (S2, with the
// bitmap) follow it in a new segment; a crash then replays both.
func TestZstdBlockWALReplays(t *testing.T) {
	dir := t.TempDir()
	db := st.OpenDir(t, dir, &storage.Options{Shards: 1})
	require.NoError(t, db.Close())

	lset := labels.FromStrings("__name__", "z", "job", "node")
	var want []storage.Sample
	for i := range 12 {
		v := float64(100 + i/3) // repeats, as a bitmap would mark them
		if i == 7 {
			v = math.Float64frombits(0x7ff0000000000002) // stale
		}
		want = append(want, storage.Sample{T: int64(1000 + i*15000), V: v})
	}
	w, err := wal.Open(filepath.Join(dir, "shard-000", "wal"), nil)
	require.NoError(t, err)
	require.NoError(t, w.Replay(func([]byte) error { return nil }))
	var pos wal.Pos
	for _, rec := range storage.ZstdBlockRecords(1, "default", 7, lset, want) {
		require.Equal(t, byte(0x80), rec[0], "a zstd record")
		pos, err = w.Append(rec)
		require.NoError(t, err)
	}
	require.NoError(t, w.Wait(context.Background(), pos))
	require.NoError(t, w.Close())

	bitsOf := func(ss []storage.Sample) []string {
		var out []string
		for _, s := range ss {
			out = append(out, fmt.Sprintf("%d:%x", s.T, math.Float64bits(s.V)))
		}
		return out
	}
	read := func(db *storage.DB) []storage.Sample {
		return st.Read(t, db, "default", math.MinInt64, all, st.Eq("__name__", "z"))[`{__name__="z", job="node"}`]
	}
	db = st.OpenDir(t, dir, nil)
	require.Equal(t, bitsOf(want), bitsOf(read(db)))
	for i := range 5 {
		s := storage.Sample{T: int64(181000 + i*15000), V: 103}
		want = append(want, s)
		st.Write(t, db, "default", storage.SeriesSamples{Labels: lset, Samples: []storage.Sample{s}})
	}
	require.NoError(t, storage.Crash(db))
	db = st.OpenDir(t, dir, nil)
	require.Equal(t, bitsOf(want), bitsOf(read(db)))
	require.NoError(t, db.Close())
}

// Samples are predicted from the previous one in their segment only: with
// small segments rotating every few writes, heads sealed and segments
// truncated as they go, and writes failing in between, a crash still
// replays every sample exactly.
func TestWALPredictionAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	opts := &storage.Options{Shards: 1, WALSegmentSize: 2048, HeadChunkSamples: 16}
	db := st.OpenDir(t, dir, opts)
	ctx := context.Background()
	const nseries = 40
	want := map[string][]storage.Sample{}
	vals := make([]float64, nseries)
	for step := range 300 {
		var b storage.Batch
		for i := range nseries {
			lset := labels.FromStrings("__name__", "c", "i", fmt.Sprint(i))
			switch i % 4 {
			case 0:
				vals[i] += float64(step % 7)
			case 1:
				vals[i] = math.Round(vals[i]*100+float64(step*13%150)) / 100
			case 2:
				vals[i] = math.Sqrt(float64(step * i))
			}
			s := storage.Sample{T: int64(step)*15000 + int64(i), V: vals[i]}
			if step%50 == 49 && i%5 == 0 {
				s.V = math.Float64frombits(0x7ff0000000000002) // stale
			}
			b.Add(lset, s)
			want[lset.String()] = append(want[lset.String()], s)
		}
		require.NoError(t, db.Write(ctx, "default", &b))
		switch step % 60 {
		case 20:
			require.NoError(t, storage.Maintain(db))
		case 40:
			require.NoError(t, db.Flush()) // rotates, seals all, truncates
		}
	}
	require.NoError(t, storage.Crash(db))
	for range 2 {
		db = st.OpenDir(t, dir, opts)
		got := st.Read(t, db, "default", math.MinInt64, all, st.Eq("__name__", "c"))
		require.Len(t, got, nseries)
		for k, ss := range want {
			require.Len(t, got[k], len(ss), k)
			for j := range ss {
				require.Equal(t, ss[j].T, got[k][j].T, k)
				require.Equal(t, math.Float64bits(ss[j].V), math.Float64bits(got[k][j].V), "%s sample %d", k, j)
			}
		}
		require.NoError(t, storage.Crash(db))
	}
}
