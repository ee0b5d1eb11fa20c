package wal_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	st "github.com/emsdb/tsdb/storage/storagetest"
	"github.com/emsdb/tsdb/storage/wal"
)

// A full disk fails the round being written and the log refuses appends,
// without retrying on its own; Retry finishes the round in place once
// there is space, so the log reads back whole, in order, with nothing torn
// between good records, even after a power cut.
func TestRetryAfterDiskFull(t *testing.T) {
	mem := vfs.NewCrashableMem()
	fs := st.NewFullFS(mem)
	// Small segments: the failed round spans a rotation.
	opts := &wal.Options{FS: fs, SegmentSize: 64}
	w, err := wal.Open("/wal", opts)
	require.NoError(t, err)
	require.NoError(t, w.Replay(func([]byte) error { return nil }))
	ctx := context.Background()
	var want []string
	appendWait := func(rec string) error {
		pos, err := w.Append([]byte(rec))
		if err != nil {
			return err
		}
		return w.Wait(ctx, pos)
	}
	for i := range 5 {
		rec := fmt.Sprintf("acknowledged-%02d", i)
		require.NoError(t, appendWait(rec))
		want = append(want, rec)
	}

	fs.SetFree(10) // room for part of the next record only
	var pos []wal.Pos
	for i := range 4 { // usually one round, across a rotation
		p, err := w.Append(fmt.Appendf(nil, "unacknowledged-%02d", i))
		if err != nil {
			// NB: the writer may have tried the round before this append
			// (it does under -race): then the log has failed and refuses.
			require.ErrorIs(t, err, syscall.ENOSPC, "refused only once the round failed")
			break
		}
		pos = append(pos, p)
		want = append(want, fmt.Sprintf("unacknowledged-%02d", i))
	}
	require.NotEmpty(t, pos)
	err = w.Wait(ctx, pos[len(pos)-1])
	require.ErrorIs(t, err, wal.ErrFailed)
	require.ErrorIs(t, err, syscall.ENOSPC)
	_, err = w.Append([]byte("refused"))
	require.ErrorIs(t, err, syscall.ENOSPC, "appends are refused while the log has failed")
	require.ErrorIs(t, w.Err(), syscall.ENOSPC)
	require.Equal(t, int64(1), fs.Refused(), "one attempt, no retry loop")

	require.ErrorIs(t, w.Retry(), syscall.ENOSPC, "still full")
	require.Equal(t, int64(2), fs.Refused(), "each Retry is one attempt")

	fs.SetFree(-1)
	require.NoError(t, w.Retry())
	require.NoError(t, w.Err())
	require.NoError(t, w.Wait(ctx, pos[len(pos)-1]), "the failed round is durable now")
	require.NoError(t, appendWait("after"))
	want = append(want, "after")

	// What an fsync made durable survives a power cut, and replays in
	// order with no torn record in between.
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	require.NoError(t, w.Close())
	for name, fs := range map[string]vfs.FS{"closed": mem, "crashed": crashed} {
		r, err := wal.Open("/wal", &wal.Options{FS: fs, SegmentSize: 64})
		require.NoError(t, err, name)
		var got []string
		require.NoError(t, r.Replay(func(rec []byte) error { got = append(got, string(rec)); return nil }), name)
		require.Equal(t, want, got, name)
		require.NoError(t, r.Close())
	}
}

// Close on a full disk makes one last attempt and reports the failure
// instead of hanging.
func TestCloseWhileDiskFull(t *testing.T) {
	fs := st.NewFullFS(vfs.NewMem())
	w, err := wal.Open("/wal", &wal.Options{FS: fs})
	require.NoError(t, err)
	require.NoError(t, w.Replay(func([]byte) error { return nil }))
	fs.SetFree(0)
	pos, err := w.Append([]byte("x"))
	require.NoError(t, err)
	require.ErrorIs(t, w.Wait(context.Background(), pos), syscall.ENOSPC)
	require.ErrorIs(t, w.Close(), syscall.ENOSPC)
	require.Equal(t, int64(2), fs.Refused(), "the failed round and one last try at Close")
}
