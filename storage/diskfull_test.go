package storage_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// logLines counts the log records at Warn and above, and keeps their
// messages.
type logLines struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logLines) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelWarn }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logLines) WithGroup(string) slog.Handler      { return l }

func (l *logLines) since(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.msgs[n:]...)
}

func (l *logLines) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.msgs)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A full disk: writes are refused at once with the reason, nothing retries
// in a hot loop (Pebble's flush, which retries at once by itself, waits),
// one line is logged, and once space is freed the DB takes writes again by
// itself, without a restart, having lost nothing it acknowledged.
func TestDiskFullBacksOffAndRecovers(t *testing.T) {
	fs := st.NewFullFS(vfs.NewMem())
	logs := &logLines{}
	db := st.OpenDir(t, "/data", &storage.Options{FS: fs, HeadChunkSamples: 4,
		WriteRetryMax: 200 * time.Millisecond, Logger: slog.New(logs)})
	ctx := context.Background()
	acked := map[string][]storage.Sample{}
	ts := int64(0)
	write := func(i int) error {
		ts += 1000
		lset := ls("__name__", "m", "s", fmt.Sprint(i%20))
		smp := storage.Sample{T: ts, V: float64(ts)}
		err := db.Write(ctx, "default", &storage.Batch{Series: []storage.SeriesSamples{{Labels: lset, Samples: []storage.Sample{smp}}}})
		if err == nil {
			acked[lset.String()] = append(acked[lset.String()], smp)
		}
		return err
	}
	for i := range 200 {
		require.NoError(t, write(i))
	}
	require.NoError(t, db.Writable())
	require.True(t, db.Stats().Writable)

	fs.SetFree(0)
	nlogs := logs.count()
	// Pebble's flush fails first (Pebble retries it at once, for ever),
	// then the log.
	flushed := make(chan error, 1)
	go func() { flushed <- db.Flush() }()
	select {
	case err := <-flushed:
		require.ErrorIs(t, err, storage.ErrNotWritable, "Flush gives up instead of waiting for the disk")
	case <-time.After(10 * time.Second):
		t.Fatal("Flush hangs on a full disk")
	}
	var nw *storage.NotWritableError
	require.ErrorAs(t, db.Writable(), &nw)
	require.ErrorContains(t, nw.Cause, ".sst", "Pebble's flush found the disk full")
	err := write(0)
	require.ErrorIs(t, err, storage.ErrNotWritable)
	require.ErrorIs(t, err, syscall.ENOSPC)
	err = db.Writable()
	require.ErrorIs(t, err, storage.ErrNotWritable)
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.EqualError(t, err, "storage: no space left on device: free space in /data")
	require.False(t, db.Stats().Writable)

	// A second of a client retrying every 10ms: no disk write attempt but
	// the probes (every 200ms at most here), no log line.
	refused, lines, cpu, start := fs.Refused(), logs.count(), cpuTime(), time.Now()
	for time.Since(start) < time.Second {
		require.ErrorIs(t, write(1), storage.ErrNotWritable)
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	attempts := fs.Refused() - refused
	t.Logf("full disk for %v: %d refused disk writes, %d log lines, %.0f%% CPU",
		elapsed.Round(time.Millisecond), attempts, logs.count()-lines, 100*float64(cpuTime()-cpu)/float64(elapsed))
	require.LessOrEqual(t, attempts, int64(12), "disk writes tried while full: a retry loop that does not back off")
	require.Empty(t, logs.since(lines), "nothing logged while the disk stays full")
	require.Len(t, logs.since(nlogs), 1, "one line when the disk filled: %q", logs.since(nlogs))

	fs.SetFree(-1)
	freed := time.Now()
	require.Eventually(t, func() bool { return db.Writable() == nil }, 10*time.Second, 5*time.Millisecond,
		"writable again once space is freed, without a restart")
	t.Logf("writable again %v after space was freed", time.Since(freed).Round(time.Millisecond))
	require.True(t, db.Stats().Writable)
	for i := range 100 {
		require.NoError(t, write(i))
	}
	require.NoError(t, db.Flush(), "Pebble flushes again")
	require.Len(t, logs.since(nlogs), 1, "recovery is logged at info")

	check := func(db *storage.DB) {
		got := st.Read(t, db, "default", math.MinInt64, math.MaxInt64, st.Eq("__name__", "m"))
		for s, want := range acked {
			have := map[int64]float64{}
			for _, smp := range got[s] {
				have[smp.T] = smp.V
			}
			for _, smp := range want {
				v, ok := have[smp.T]
				require.True(t, ok, "%s: acknowledged sample at %d lost", s, smp.T)
				require.Equal(t, smp.V, v)
			}
		}
	}
	check(db)
	require.NoError(t, storage.Crash(db))
	check(st.OpenDir(t, "/data", &storage.Options{FS: fs}))
}

// Starting on a full disk fails with the reason, never a panic, however
// little space is left: Open finds it before Pebble, and a fatal error
// Pebble reports while opening (a MANIFEST it cannot write) becomes the
// error too. Once space is freed, the same data opens.
func TestOpenOnFullDisk(t *testing.T) {
	mem := vfs.NewCrashableMem()
	db, err := storage.Open("/data", &storage.Options{FS: mem, Shards: 2, HeadChunkSamples: 4})
	require.NoError(t, err)
	for i := range 100 {
		st.Write(t, db, "default", st.Series(ls("__name__", "m", "i", fmt.Sprint(i%7)), float64(i)*1000, float64(i)))
	}
	require.NoError(t, storage.Crash(db)) // a log to replay, unflushed Pebble state

	const probe = 1 << 20 // what Open writes to check the disk
	for _, free := range []int64{0, 1000, probe, probe + 100, probe + 1000, probe + 4000, probe + 16000, probe + 64000, probe + 256000} {
		for _, fresh := range []bool{true, false} {
			t.Run(fmt.Sprintf("free=%d/fresh=%v", free, fresh), func(t *testing.T) {
				fs := st.NewFullFS(mem.CrashClone(vfs.CrashCloneCfg{}))
				dir := "/data"
				if fresh {
					dir = "/new"
				}
				fs.SetFree(free)
				db, err := storage.Open(dir, &storage.Options{FS: fs, Shards: 2})
				if err != nil {
					require.ErrorIs(t, err, storage.ErrNotWritable)
					require.ErrorIs(t, err, syscall.ENOSPC)
					require.ErrorContains(t, err, "storage: no space left on device: free space in "+dir)
					return
				}
				_ = db.Close()
			})
		}
	}
	// Freed: the data opens whole.
	fs := st.NewFullFS(mem.CrashClone(vfs.CrashCloneCfg{}))
	fs.SetFree(0)
	_, err = storage.Open("/data", &storage.Options{FS: fs, Shards: 2})
	require.ErrorContains(t, err, "no space left on device: free space in /data")
	fs.SetFree(-1)
	db = st.OpenDir(t, "/data", &storage.Options{FS: fs})
	require.Len(t, st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "m")), 7)
}

// A disk that takes the probe but fails again right after (Pebble's next
// table does not fit) does not make the DB flap at the first probe's
// pace: the waits keep growing across the relapses, and so do the log
// lines' intervals.
func TestDiskFullRelapseBacksOff(t *testing.T) {
	fs := st.NewFullFS(vfs.NewMem())
	logs := &logLines{}
	db := st.OpenDir(t, "/data", &storage.Options{FS: fs, WriteRetryMax: 400 * time.Millisecond, Logger: slog.New(logs)})
	ctx := context.Background()
	var ts int64
	episodes := 0
	for start := time.Now(); time.Since(start) < 2*time.Second; time.Sleep(2 * time.Millisecond) {
		if db.Writable() != nil {
			continue
		}
		fs.SetFree(0)
		ts += 1000
		err := db.Write(ctx, "default", &storage.Batch{Series: []storage.SeriesSamples{st.Series(ls("__name__", "m"), float64(ts), 1)}})
		require.ErrorIs(t, err, storage.ErrNotWritable)
		episodes++
		fs.SetFree(1<<20 + 64<<10) // the probe and the log's retry fit, little else
	}
	t.Logf("%d episodes in 2s", episodes)
	require.GreaterOrEqual(t, episodes, 3, "it recovers each time")
	require.LessOrEqual(t, episodes, 8, "waits of 100ms, 200ms, then 400ms: not 20 episodes of 100ms")
	require.Len(t, logs.since(0), episodes, "one line per episode: %q", logs.since(0))
}
