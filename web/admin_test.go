package web

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/query"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// TestSnapshotList: GET /api/v1/admin/tsdb/snapshots lists the snapshots
// left on the server (a backup killed before deleting its own), with
// their age and size, so they can be found and deleted.
func TestSnapshotList(t *testing.T) {
	dir := t.TempDir()
	db := st.OpenDir(t, filepath.Join(dir, "data"), nil)
	st.Write(t, db, "default", st.Series(labels.FromStrings("__name__", "x"), 1000, 1))
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	a := New(Deps{Reader: db, Engine: query.NewEngine(db, nil), Admin: db,
		SnapshotDir: filepath.Join(dir, "data", "snapshots"), Now: func() time.Time { return now }})
	list := func() []Snapshot {
		t.Helper()
		code, body := do(a, "GET", "/api/v1/admin/tsdb/snapshots", "", "")
		require.Equal(t, 200, code, body)
		var env struct{ Data []Snapshot }
		require.NoError(t, json.Unmarshal([]byte(body), &env), body)
		return env.Data
	}
	require.Empty(t, list())

	code, body := do(a, "POST", "/api/v1/admin/tsdb/snapshot", "", "")
	require.Equal(t, 200, code, body)
	var made struct{ Data struct{ Name string } }
	require.NoError(t, json.Unmarshal([]byte(body), &made))
	require.Regexp(t, `^20250301T120000Z-[0-9a-f]{16}$`, made.Data.Name)

	got := list()
	require.Len(t, got, 1)
	require.Equal(t, made.Data.Name, got[0].Name)
	require.Positive(t, got[0].Size)
	require.WithinDuration(t, time.Now(), got[0].Created, time.Minute)

	code, body = do(a, "DELETE", "/api/v1/admin/tsdb/snapshots/"+made.Data.Name, "", "")
	require.Equal(t, 204, code, body)
	require.Empty(t, list())

	off := New(Deps{Reader: db, Engine: query.NewEngine(db, nil)})
	code, _ = do(off, "GET", "/api/v1/admin/tsdb/snapshots", "", "")
	require.Equal(t, 503, code, "the admin API is off")
}
