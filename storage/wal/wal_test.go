package wal

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage/internal/durable"
)

func open(t testing.TB, dir string, o *Options) (*WAL, []string) {
	t.Helper()
	w, err := Open(dir, o)
	require.NoError(t, err)
	var got []string
	require.NoError(t, w.Replay(func(rec []byte) error { got = append(got, string(rec)); return nil }))
	return w, got
}

func appendWait(t testing.TB, w *WAL, rec string) {
	t.Helper()
	pos, err := w.Append([]byte(rec))
	require.NoError(t, err)
	require.NoError(t, w.Wait(context.Background(), pos))
}

func TestRoundTripAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	w, got := open(t, dir, &Options{SegmentSize: 64})
	require.Empty(t, got)
	var want []string
	for i := range 50 {
		want = append(want, fmt.Sprintf("record-%03d", i))
		appendWait(t, w, want[i])
	}
	require.Greater(t, w.Segment(), 5, "small segments rotate")
	require.NoError(t, w.Close())
	w, got = open(t, dir, nil)
	require.Equal(t, want, got)
	appendWait(t, w, "after")
	require.NoError(t, w.Close())
	_, got = open(t, dir, nil)
	require.Equal(t, append(want, "after"), got)
}

// A crash leaves a torn last record: replay keeps the intact prefix at
// every cut point, and appends after it replay too.
func TestTornTail(t *testing.T) {
	src := t.TempDir()
	w, _ := open(t, src, nil)
	for _, r := range []string{"one", "two", "three"} {
		appendWait(t, w, r)
	}
	seg := w.Segment()
	require.NoError(t, w.Close())
	full, err := os.ReadFile(filepath.Join(src, fmt.Sprintf("%08d", seg)))
	require.NoError(t, err)
	full = bytes.TrimRight(full, "\x00") // the zero-filled room after the records
	lastStart := len(full) - headerLen - len("three")
	for cut := lastStart; cut < len(full); cut++ {
		for _, tail := range [][]byte{nil, make([]byte, 16), []byte("garbage!")} {
			dir := t.TempDir()
			data := append(append([]byte(nil), full[:cut]...), tail...)
			require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%08d", seg)), data, 0o644))
			w, got := open(t, dir, nil)
			require.Equal(t, []string{"one", "two"}, got, "cut %d tail %q", cut, tail)
			appendWait(t, w, "four")
			require.NoError(t, w.Close())
			_, got = open(t, dir, nil)
			require.Equal(t, []string{"one", "two", "four"}, got)
		}
	}
}

// Segments are zero-filled ahead of their records: a round's fsync
// extends the file only every preallocStep bytes, and every segment's
// zero-filled tail, the older ones' too, ends its records quietly.
func TestZeroFilledAhead(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, &Options{SegmentSize: 3 * preallocStep})
	rec := string(bytes.Repeat([]byte("r"), 1000))
	sizes := map[int64]bool{}
	var want []string
	for i := range 2000 { // 2 MB: several segments
		want = append(want, fmt.Sprintf("%04d%s", i, rec))
		appendWait(t, w, want[i])
		fi, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%08d", w.Segment())))
		require.NoError(t, err)
		sizes[fi.Size()] = true
	}
	require.Greater(t, w.Segment(), 2)
	require.Less(t, len(sizes), 2000/100, "the file grows once every %d bytes, not with every record", preallocStep)
	require.NoError(t, w.Close())
	names, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n.Name()))
		require.NoError(t, err)
		require.Equal(t, byte(0), b[len(b)-1], "segment %s ends in zeros", n.Name())
	}
	w, got := open(t, dir, nil)
	require.Equal(t, want, got)
	require.NoError(t, w.Close())
}

func TestCorruptOlderSegment(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, &Options{SegmentSize: 32})
	for i := range 10 {
		appendWait(t, w, fmt.Sprintf("record-%d", i))
	}
	require.NoError(t, w.Close())
	p := filepath.Join(dir, "00000002")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	b[len(bytes.TrimRight(b, "\x00"))-1] ^= 0xff // the last record's last byte
	require.NoError(t, os.WriteFile(p, b, 0o644))
	w, err = Open(dir, nil)
	require.NoError(t, err)
	require.ErrorIs(t, w.Replay(func([]byte) error { return nil }), ErrCorrupt)
}

// Concurrent writers: every acknowledged record is replayed once, and
// fsyncs are shared (group commit).
func TestConcurrentGroupCommit(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, &Options{SegmentSize: 4096})
	const writers, each = 16, 50
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				appendWait(t, w, fmt.Sprintf("%d-%d", g, i))
			}
		}()
	}
	wg.Wait()
	fsyncs := w.fsyncs
	require.NoError(t, w.Close())
	require.Less(t, fsyncs, int64(writers*each), "one fsync serves several writers")
	_, got := open(t, dir, nil)
	require.Len(t, got, writers*each)
	seen := map[string]bool{}
	for _, r := range got {
		require.False(t, seen[r], "duplicate %s", r)
		seen[r] = true
	}
	t.Logf("%d records, %d fsyncs", writers*each, fsyncs)
}

func TestTruncateCopyCloseCancel(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, nil)
	appendWait(t, w, "a")
	seg, err := w.Rotate()
	require.NoError(t, err)
	appendWait(t, w, "b")
	snap := filepath.Join(t.TempDir(), "copy")
	require.NoError(t, w.CopyTo(snap))
	to, err := w.Truncate(seg)
	require.NoError(t, err)
	require.Equal(t, seg, to)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = w.Wait(ctx, Pos{Segment: 1 << 30}) // never reached: must return, not hang
	require.NoError(t, w.Close())
	_, err = w.Append([]byte("x"))
	require.ErrorIs(t, err, ErrClosed)
	_, got := open(t, dir, nil)
	require.Equal(t, []string{"b"}, got)
	_, got = open(t, snap, nil)
	require.Equal(t, []string{"a", "b"}, got)
}

func FuzzReplay(f *testing.F) {
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c'})
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "00000001"), b, 0o644))
		w, err := Open(dir, &Options{NoSync: true})
		require.NoError(t, err)
		require.NoError(t, w.Replay(func([]byte) error { return nil }))
		require.NoError(t, w.Close())
	})
}

// A power cut keeps only what was fsynced. Writers append concurrently
// while crash clones of a crashable in-memory filesystem are taken: the
// log replayed from each clone holds every record acknowledged before the
// clone, each writer's records in order, nothing twice and nothing
// invented; and replaying leaves the clone in a state that a second crash
// replays the same way (the torn tail is cut off durably).
func TestCrashCloneKeepsAcknowledgedRecords(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			fs := vfs.NewCrashableMem()
			o := &Options{FS: fs, SegmentSize: 256 + rng.Int64N(2048)}
			if seed%2 == 1 { // segments zero-filled ahead, a few records at a time
				o.FS, o.zeroAhead = roomyFS{fs}, 40+rng.Int64N(100)
			}
			w, _ := open(t, "/wal", o)
			const writers, each = 4, 60
			type crash struct {
				fs    *vfs.MemFS
				acked map[string]bool
			}
			var (
				mu      sync.Mutex
				acked   = map[string]bool{}
				crashes []crash
				wg      sync.WaitGroup
			)
			for g := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						rec := fmt.Sprintf("%d-%03d", g, i)
						appendWait(t, w, rec)
						mu.Lock()
						acked[rec] = true
						if rng.IntN(20) == 0 { // mid-way through the others' appends
							crashes = append(crashes, crash{
								acked: maps.Clone(acked),
								fs:    fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(3) * 50, RNG: rng}),
							})
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			require.NoError(t, w.Close())
			require.NotEmpty(t, crashes)
			if o.zeroAhead > 0 {
				b, err := durable.ReadFile(fs, fs.PathJoin("/wal", "00000001"))
				require.NoError(t, err)
				require.Equal(t, byte(0), b[len(b)-1], "zero-filled")
			}
			for _, c := range crashes {
				w, got := open(t, "/wal", &Options{FS: c.fs})
				seen := map[string]bool{}
				last := map[byte]string{}
				for _, r := range got {
					require.Regexp(t, `^\d-\d{3}$`, r)
					require.False(t, seen[r], "%s twice", r)
					require.Less(t, last[r[0]], r, "one writer's records in order")
					seen[r], last[r[0]] = true, r
				}
				for r := range c.acked {
					require.True(t, seen[r], "acknowledged %s lost", r)
				}
				again := c.fs.CrashClone(vfs.CrashCloneCfg{})
				require.NoError(t, w.Close())
				_, got2 := open(t, "/wal", &Options{FS: again})
				require.Equal(t, got, got2)
			}
		})
	}
}

// roomyFS is a memory filesystem with a terabyte free, so that the log
// zero-fills its segments ahead (it does not when it cannot tell).
type roomyFS struct{ vfs.FS }

func (roomyFS) GetDiskUsage(string) (vfs.DiskUsage, error) {
	return vfs.DiskUsage{AvailBytes: 1 << 40, TotalBytes: 1 << 40}, nil
}

// ReplayAt tells each record's position as Append returned it, across
// segments, so a reader can tell which records it has applied before.
func TestReplayAtGivesAppendPositions(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, &Options{SegmentSize: 64})
	var want []Pos
	for i := range 20 {
		pos, err := w.Append(fmt.Appendf(nil, "record-%02d", i))
		require.NoError(t, err)
		require.NoError(t, w.Wait(context.Background(), pos))
		want = append(want, pos)
	}
	require.NoError(t, w.Close())
	w, err := Open(dir, nil)
	require.NoError(t, err)
	var got []Pos
	require.NoError(t, w.ReplayAt(func(_ []byte, end Pos) error { got = append(got, end); return nil }))
	require.Equal(t, want, got)
	pos, err := w.Append([]byte("after"))
	require.NoError(t, err)
	require.True(t, want[len(want)-1].less(pos), "positions keep growing after a restart")
	require.NoError(t, w.Close())
}

// Next tells where the next record lands before it is encoded: Append
// rotates only once a segment has reached the segment size, and Next
// does it first.
func TestNextIsWhereAppendWrites(t *testing.T) {
	w, _ := open(t, t.TempDir(), &Options{SegmentSize: 64})
	for i := range 40 {
		seg := w.Next()
		pos, err := w.Append([]byte(fmt.Sprintf("record-%02d-%s", i, make([]byte, i%7))))
		require.NoError(t, err)
		require.Equal(t, seg, pos.Segment, "record %d", i)
		require.NoError(t, w.Wait(context.Background(), pos))
	}
	require.Greater(t, w.Segment(), 5)
	require.NoError(t, w.Close())
}

// SetSegmentSize moves where later segments end, within
// Options.SegmentSize; Current says how far the current one is.
func TestSetSegmentSize(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, &Options{SegmentSize: 1 << 10})
	rec := string(make([]byte, 92)) // 100 bytes with the header
	appendWait(t, w, rec)
	seg, size := w.Current()
	require.Equal(t, 1, seg)
	require.Equal(t, int64(100), size)
	w.SetSegmentSize(200)
	for range 3 {
		appendWait(t, w, rec)
	}
	seg, size = w.Current()
	require.Equal(t, 2, seg, "a segment ends once it holds 200 bytes")
	require.Equal(t, int64(200), size)
	w.SetSegmentSize(1 << 20) // more than Options.SegmentSize: that
	for range 10 {
		appendWait(t, w, rec)
	}
	seg, _ = w.Current()
	require.Equal(t, 3, seg)
	require.NoError(t, w.Close())
	_, got := open(t, dir, nil)
	require.Len(t, got, 14)
}
