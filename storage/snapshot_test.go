package storage_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	st "github.com/emsdb/tsdb/storage/storagetest"
)

// Snapshots are listed with their size and age, and the ones older than a
// cutoff (left by a backup that was killed) are removed, the others kept.
func TestSnapshotsListedAndStaleRemoved(t *testing.T) {
	dir := t.TempDir()
	db := st.OpenDir(t, filepath.Join(dir, "data"), nil)
	snaps := filepath.Join(dir, "data", "snapshots")
	got, err := db.Snapshots(snaps)
	require.NoError(t, err)
	require.Empty(t, got, "no folder, no snapshots")

	for i := range 10 {
		st.Write(t, db, "default", st.Series(ls("__name__", "s"), float64(i)*1000, float64(i)))
	}
	require.NoError(t, db.Snapshot(filepath.Join(snaps, "old")))
	require.NoError(t, db.Snapshot(filepath.Join(snaps, "new")))
	require.NoError(t, os.WriteFile(filepath.Join(snaps, "stray-file"), nil, 0o644))
	twoHoursAgo := time.Now().Add(-2 * time.Hour)
	require.NoError(t, os.Chtimes(filepath.Join(snaps, "old"), twoHoursAgo, twoHoursAgo))

	got, err = db.Snapshots(snaps)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, "old", got[0].Name, "oldest first")
	require.Equal(t, "new", got[1].Name)
	require.WithinDuration(t, twoHoursAgo, got[0].Created, time.Second)
	var want int64
	require.NoError(t, filepath.Walk(filepath.Join(snaps, "new"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			want += fi.Size()
		}
		return err
	}))
	require.Positive(t, want)
	require.Equal(t, want, got[1].Size)

	removed, err := db.RemoveSnapshots(snaps, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Len(t, removed, 1)
	require.Equal(t, "old", removed[0].Name)
	require.NoDirExists(t, filepath.Join(snaps, "old"))
	got, err = db.Snapshots(snaps)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "new", got[0].Name)

	sdb := st.OpenDir(t, filepath.Join(snaps, "new"), nil)
	require.Len(t, st.Read(t, sdb, "default", 0, all, st.Eq("__name__", "s"))[`{__name__="s"}`], 10, "the kept snapshot is whole")
}
