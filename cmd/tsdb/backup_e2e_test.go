package main

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestBackupWhileIngestingAndRestore: a backup taken from a running server
// while writers keep writing holds every sample acknowledged before it
// began; a second backup into the same folder copies only what changed;
// the restored folder serves exactly the series and samples the original
// had at the snapshot.
func TestBackupWhileIngestingAndRestore(t *testing.T) {
	bin := apptest.Build(t)
	db := apptest.StartTSDB(t, bin, t.TempDir(), "--web.enable-admin-api")
	c := &http.Client{Timeout: 10 * time.Second}
	base := time.Now().Add(-time.Hour).UnixMilli()
	var step atomic.Int64 // samples acknowledged per series
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := int64(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var wr prompb.WriteRequest
			for s := range 50 {
				wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
					Labels:  []prompb.Label{{Name: "__name__", Value: "bk"}, {Name: "s", Value: fmt.Sprint(s)}},
					Samples: []prompb.Sample{{Timestamp: base + i*1000, Value: float64(i*100 + int64(s))}},
				})
			}
			code, body, err := apptest.RemoteWrite(context.Background(), c, db.URL()+"/api/v1/write", &wr)
			if err != nil || code != 204 {
				t.Errorf("write %d: %d %s %v", i, code, body, err)
				return
			}
			step.Store(i + 1)
		}
	})
	time.Sleep(time.Second)
	ackedBefore := step.Load()
	dir := filepath.Join(t.TempDir(), "backup")
	out, err := exec.Command(bin, "backup", "--url", db.URL(), "--to", dir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "backup [")
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	require.Greater(t, step.Load(), ackedBefore, "writes went on during the backup")

	// A later backup into another folder, then into it again: the second
	// run keeps the table files it already has.
	dir2 := filepath.Join(t.TempDir(), "backup2")
	for range 2 {
		out2, err := exec.Command(bin, "backup", "--url", db.URL(), "--to", dir2).CombinedOutput()
		require.NoError(t, err, "%s", out2)
	}

	data := filepath.Join(t.TempDir(), "restored")
	out3, err := exec.Command(bin, "restore", "--from", dir, "--data", data).CombinedOutput()
	require.NoError(t, err, "%s", out3)
	out4, err := exec.Command(bin, "restore", "--from", dir, "--data", data).CombinedOutput()
	require.Error(t, err, "restore refuses a non-empty folder: %s", out4)

	restored := apptest.StartTSDB(t, bin, data)
	orig, err := apptest.Export(c, db.URL(), "bk")
	require.NoError(t, err)
	got, err := apptest.Export(c, restored.URL(), "bk")
	require.NoError(t, err)
	require.Len(t, got, 50, "every series")
	want := map[string]apptest.ExportedSeries{}
	for _, s := range orig {
		want[s.Metric["s"]] = s
	}
	for _, s := range got {
		o := want[s.Metric["s"]]
		// Taken while writing: every sample acknowledged before the backup
		// began, and then exactly the original's first samples.
		n := len(s.Timestamps)
		require.GreaterOrEqual(t, int64(n), ackedBefore, "series %s", s.Metric["s"])
		require.Equal(t, o.Timestamps[:n], s.Timestamps, "series %s", s.Metric["s"])
		require.Equal(t, o.Values[:n], s.Values, "series %s", s.Metric["s"])
	}

	// The later backup, taken after the writers stopped, holds everything.
	data2 := filepath.Join(t.TempDir(), "restored2")
	out5, err := exec.Command(bin, "restore", "--from", dir2, "--data", data2).CombinedOutput()
	require.NoError(t, err, "%s", out5)
	restored2 := apptest.StartTSDB(t, bin, data2)
	got2, err := apptest.Export(c, restored2.URL(), "bk")
	require.NoError(t, err)
	require.Equal(t, orig, got2)
}
