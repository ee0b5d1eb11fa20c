package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// mountTmpfs mounts a tmpfs of size bytes on a new folder and unmounts it
// when the test ends. It needs root (CI runs as root); without it the test
// fails and says so.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	require.NoError(t, os.Mkdir(dir, 0o755))
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("this test fills a small tmpfs and needs root to mount one (mount -t tmpfs -o size=%d tmpfs %s): %v: %s", size, dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes path until the filesystem holding it is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	for _, chunk := range []int{1 << 20, 4 << 10, 1} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				require.ErrorIs(t, err, syscall.ENOSPC)
				break
			}
		}
	}
}

// cpuTicks is the CPU time pid has used, in clock ticks (1/100 s).
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64) // fields 14 and 15 of stat(5)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime
}

// TestDiskFullEndToEnd fills the real disk under a running tsdb: writes
// get 503, /-/ready says why, the metric drops to 0, the process idles
// and logs once; after space is freed it takes writes again by itself,
// and every acknowledged sample is there, also after a restart. Started
// on the full disk, tsdb exits with the reason instead of a panic.
func TestDiskFullEndToEnd(t *testing.T) {
	bin := apptest.Build(t)
	disk := mountTmpfs(t, 24<<20)
	data := filepath.Join(disk, "data")
	db := apptest.StartTSDB(t, bin, data, "--web.enable-admin-api")
	c := &http.Client{Timeout: 10 * time.Second}
	acked := map[int64]bool{}
	var i int64
	base := time.Now().Add(-time.Hour).UnixMilli()
	write := func() int {
		i++
		var wr prompb.WriteRequest
		for s := range 20 {
			wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
				Labels:  []prompb.Label{{Name: "__name__", Value: "df"}, {Name: "s", Value: fmt.Sprint(s)}},
				Samples: []prompb.Sample{{Timestamp: base + i*1000, Value: float64(i)}},
			})
		}
		code, body, err := apptest.RemoteWrite(context.Background(), c, db.URL()+"/api/v1/write", &wr)
		require.NoError(t, err)
		switch code {
		case 204:
			acked[base+i*1000] = true
		case 503:
		default:
			t.Fatalf("write: %d %s", code, body)
		}
		return code
	}
	for range 50 {
		require.Equal(t, 204, write())
	}

	filler := filepath.Join(disk, "filler")
	fill(t, filler)
	// A snapshot flushes Pebble first: its flush fails, and Pebble
	// retried it at once, for ever (138% CPU, ~800 log lines a second),
	// while the snapshot held every write.
	resp, err := c.Post(db.URL()+"/api/v1/admin/tsdb/snapshot", "", nil)
	require.NoError(t, err, "the snapshot hangs on a full disk")
	resp.Body.Close()
	require.Equal(t, 503, resp.StatusCode)
	full := false
	for range 200 { // the last page of a log segment may still take a few records
		if write() == 503 {
			full = true
			break
		}
	}
	require.True(t, full, "writes fail once the disk is full")
	code, body := db.Get(t, "/-/ready")
	require.Equal(t, 503, code)
	require.Equal(t, "Not ready: storage: no space left on device: free space in "+data+"\n", body)
	_, metrics := db.Get(t, "/metrics")
	require.Contains(t, metrics, "\ntsdb_storage_writable 0\n")

	// Two seconds of a sender retrying ten times a second.
	lines, cpu, start := strings.Count(db.Log(), "\n"), cpuTicks(t, db.PID()), time.Now()
	for time.Since(start) < 2*time.Second {
		require.Equal(t, 503, write())
		time.Sleep(100 * time.Millisecond)
	}
	elapsed := time.Since(start)
	used := float64(cpuTicks(t, db.PID())-cpu) / 100 / elapsed.Seconds()
	newLines := strings.Count(db.Log(), "\n") - lines
	t.Logf("full disk for %v: %.0f%% CPU, %d log lines", elapsed.Round(time.Millisecond), 100*used, newLines)
	require.Less(t, used, 0.3, "tsdb spins while the disk is full")
	require.LessOrEqual(t, newLines, 1, "log lines while the disk stays full:\n%s", db.Log())
	require.Equal(t, 1, strings.Count(db.Log(), "storage stopped taking writes"), db.Log())

	require.NoError(t, os.Remove(filler))
	freed := time.Now()
	for {
		if code, _ := db.Get(t, "/-/ready"); code == 200 {
			break
		}
		require.Less(t, time.Since(freed), 30*time.Second, "not ready 30s after space was freed:\n%s", db.Log())
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("ready again %v after space was freed", time.Since(freed).Round(time.Millisecond))
	for range 20 {
		require.Equal(t, 204, write())
	}
	_, metrics = db.Get(t, "/metrics")
	require.Contains(t, metrics, "\ntsdb_storage_writable 1\n")

	check := func(p *apptest.Proc) {
		t.Helper()
		exp, err := apptest.Export(c, p.URL(), "df")
		require.NoError(t, err)
		require.Len(t, exp, 20)
		for _, s := range exp {
			have := map[int64]bool{}
			for _, ts := range s.Timestamps {
				have[ts] = true
			}
			for ts := range acked {
				require.True(t, have[ts], "series %s: acknowledged sample at %d lost", s.Metric["s"], ts)
			}
		}
	}
	check(db)
	db.Stop(t)
	db = apptest.StartTSDB(t, bin, data)
	check(db)

	// Started on a full disk: a clear error, not a panic.
	db.Stop(t)
	fill(t, filler)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "serve", "--listen", "127.0.0.1:0", "--data", data).CombinedOutput()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "tsdb serve on a full disk: %v\n%s", err, out)
	require.Contains(t, string(out), "no space left on device: free space in "+data)
	require.NotContains(t, string(out), "panic")
	require.NoError(t, os.Remove(filler))
	check(apptest.StartTSDB(t, bin, data))
}
