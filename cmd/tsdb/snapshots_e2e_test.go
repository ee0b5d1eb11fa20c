package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/web"
)

// writeSome stores a few series so that snapshots have files.
func writeSome(t *testing.T, p *apptest.Proc) {
	t.Helper()
	var wr prompb.WriteRequest
	for s := range 20 {
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "snap"}, {Name: "s", Value: fmt.Sprint(s)}},
			Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: float64(s)}},
		})
	}
	code, body, err := apptest.RemoteWrite(context.Background(), &http.Client{Timeout: 10 * time.Second}, p.URL()+"/api/v1/write", &wr)
	require.NoError(t, err)
	require.Equal(t, 204, code, body)
}

// snapshotList reads GET /api/v1/admin/tsdb/snapshots.
func snapshotList(t *testing.T, p *apptest.Proc) []web.Snapshot {
	t.Helper()
	code, body := p.Get(t, "/api/v1/admin/tsdb/snapshots")
	require.Equal(t, 200, code, body)
	var env struct{ Data []web.Snapshot }
	require.NoError(t, json.Unmarshal([]byte(body), &env), body)
	return env.Data
}

func takeSnapshot(t *testing.T, p *apptest.Proc) string {
	t.Helper()
	resp, err := http.Post(p.URL()+"/api/v1/admin/tsdb/snapshot", "", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	var env struct{ Data struct{ Name string } }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	require.NotEmpty(t, env.Data.Name)
	return env.Data.Name
}

// TestBackupInterruptedDeletesItsSnapshot: tsdb backup stopped by a
// signal in the middle of copying deletes its snapshot on the server
// before it exits, instead of leaving it to pin disk space.
func TestBackupInterruptedDeletesItsSnapshot(t *testing.T) {
	bin := apptest.Build(t)
	db := apptest.StartTSDB(t, bin, t.TempDir(), "--web.enable-admin-api")
	writeSome(t, db)

	// The backup talks to tsdb through a proxy that holds the first file
	// download until the backup gives up on it.
	target, err := url.Parse(db.URL())
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	copying := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/admin/tsdb/snapshots/")
		if ok && r.Method == http.MethodGet && strings.Contains(rest, "/") {
			once.Do(func() { close(copying) })
			<-r.Context().Done()
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()

	var out bytes.Buffer
	cmd := exec.Command(bin, "backup", "--url", srv.URL, "--to", filepath.Join(t.TempDir(), "backup"))
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-copying:
	case err := <-done:
		t.Fatalf("backup ended before copying: %v\n%s", err, out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("backup did not start copying\n%s", out.String())
	}
	require.Len(t, snapshotList(t, db), 1, "the backup's snapshot, while it copies")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		require.Error(t, err, "an interrupted backup fails")
	case <-time.After(30 * time.Second):
		t.Fatalf("backup did not end after SIGTERM\n%s", out.String())
	}
	require.Contains(t, out.String(), "interrupted; snapshot ")
	require.Contains(t, out.String(), " deleted on the server")
	require.Empty(t, snapshotList(t, db), "the snapshot is gone")
}

// TestStaleSnapshotsRemovedAtStart: snapshots older than
// --snapshots.max-age (default 1h) are deleted when tsdb starts, newer
// ones kept; --snapshots.max-age=0 keeps them all.
func TestStaleSnapshotsRemovedAtStart(t *testing.T) {
	bin := apptest.Build(t)
	data := t.TempDir()
	db := apptest.StartTSDB(t, bin, data, "--web.enable-admin-api")
	writeSome(t, db)
	old, fresh := takeSnapshot(t, db), takeSnapshot(t, db)
	require.Len(t, snapshotList(t, db), 2)
	db.Stop(t)
	age := func(name string, d time.Duration) {
		t.Helper()
		then := time.Now().Add(-d)
		require.NoError(t, os.Chtimes(filepath.Join(data, "snapshots", name), then, then))
	}
	age(old, 2*time.Hour)
	age(fresh, 30*time.Minute)

	db = apptest.StartTSDB(t, bin, data, "--web.enable-admin-api")
	got := snapshotList(t, db)
	require.Len(t, got, 1)
	require.Equal(t, fresh, got[0].Name)
	require.Positive(t, got[0].Size)
	require.NoDirExists(t, filepath.Join(data, "snapshots", old))
	require.Contains(t, db.Log(), `msg="removed a stale snapshot" name=`+old)
	db.Stop(t)

	age(fresh, 48*time.Hour)
	db = apptest.StartTSDB(t, bin, data, "--web.enable-admin-api", "--snapshots.max-age=0")
	require.Len(t, snapshotList(t, db), 1, "0 keeps every snapshot")
}
