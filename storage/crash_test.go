package storage_test

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// Crash tests run the DB on Pebble's crashable in-memory filesystem and
// reopen CrashClones of it: a clone keeps what was fsynced (and, when asked,
// a random part of what was not), so unlike a kill -9, whose page cache
// survives, it catches a missing fsync.

const crashDir = "/data"

// crashOpen opens a DB in crashDir of fs.
func crashOpen(t testing.TB, fs vfs.FS, o storage.Options) *storage.DB {
	t.Helper()
	o.FS = fs
	return st.OpenDir(t, crashDir, &o)
}

// crashValue is the one value ever written for series s at t, so that a
// sample read back after a crash can be checked on its own.
func crashValue(s int, t int64) float64 { return float64(s)*1e9 + float64(t/1000) }

func crashLabels(s int) labels.Labels {
	return labels.FromStrings("__name__", "m", "s", fmt.Sprintf("%03d", s), "odd", fmt.Sprint(s%2 == 1))
}

// ackLog records samples by series: attempted before Write is called,
// acknowledged after it returns nil.
type ackLog struct {
	mu        sync.Mutex
	attempted map[int]map[int64]bool
	acked     map[int]map[int64]bool
}

func newAckLog() *ackLog {
	return &ackLog{attempted: map[int]map[int64]bool{}, acked: map[int]map[int64]bool{}}
}

func (l *ackLog) add(m map[int]map[int64]bool, s int, ts []int64) {
	if m[s] == nil {
		m[s] = map[int64]bool{}
	}
	for _, t := range ts {
		m[s][t] = true
	}
}

// snapshot copies the acknowledged samples; the caller holds mu.
func (l *ackLog) snapshotLocked() map[int]map[int64]bool {
	out := make(map[int]map[int64]bool, len(l.acked))
	for s, ts := range l.acked {
		out[s] = maps.Clone(ts)
	}
	return out
}

// checkCrashed checks a DB reopened after a crash: every acknowledged sample
// is there, and every sample there was written, with its value.
func checkCrashed(t testing.TB, db *storage.DB, attempted, acked map[int]map[int64]bool) map[string][]storage.Sample {
	t.Helper()
	got := st.Read(t, db, "default", math.MinInt64, math.MaxInt64, st.Eq("__name__", "m"))
	have := map[int]map[int64]bool{}
	for s := range attempted {
		have[s] = map[int64]bool{}
		for _, smp := range got[crashLabels(s).String()] {
			require.True(t, attempted[s][smp.T], "series %d: sample at %d was never written", s, smp.T)
			require.Equal(t, crashValue(s, smp.T), smp.V, "series %d at %d", s, smp.T)
			have[s][smp.T] = true
		}
	}
	require.Len(t, got, len(have)-countEmpty(have), "no series that was never written")
	for s, ts := range acked {
		for ts := range ts {
			require.True(t, have[s][ts], "series %d: acknowledged sample at %d lost", s, ts)
		}
	}
	return got
}

func countEmpty(m map[int]map[int64]bool) int {
	n := 0
	for _, v := range m {
		if len(v) == 0 {
			n++
		}
	}
	return n
}

// TestCrashCloneKeepsAcknowledgedWrites writes from concurrent writers
// (in order, out of order, across shards, with seals, flushes and log
// truncation going on) and takes crash clones mid-way. Each clone must
// reopen with every write acknowledged before it, nothing invented or
// garbled, and recover the same way after a second crash right after
// recovery.
func TestCrashCloneKeepsAcknowledgedWrites(t *testing.T) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { crashWhileWriting(t, seed) })
	}
}

func crashWhileWriting(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 42))
	var rngMu sync.Mutex
	intN := func(n int) int { rngMu.Lock(); defer rngMu.Unlock(); return rng.IntN(n) }
	fs := vfs.NewCrashableMem()
	// The clock moves 10 s a batch: heads age out (MaxHeadAge) and the
	// log's segments close by age (half of it) as well as by size, and
	// heads left behind by the other series are sealed early.
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC).UnixMilli())
	opts := storage.Options{
		Shards:           1 + intN(3),
		HeadChunkSamples: 3 + intN(8),
		WALSegmentSize:   int64(1024 + intN(8192)),
		MaxHeadAge:       time.Duration(1+intN(5)) * time.Minute,
		Now:              func() time.Time { return time.UnixMilli(now.Load()) },
	}
	db := crashOpen(t, fs, opts)
	writers := 1 + intN(3)
	const seriesPerWriter, batches = 12, 40
	log := newAckLog()
	type crash struct {
		fs    *vfs.MemFS
		acked map[int]map[int64]bool
	}
	var (
		crashes []crash
		wg      sync.WaitGroup
	)
	takeCrash := func() {
		log.mu.Lock()
		acked := log.snapshotLocked()
		log.mu.Unlock()
		rngMu.Lock()
		cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: []int{0, 0, 30, 100}[rng.IntN(4)], RNG: rand.New(rand.NewPCG(rng.Uint64(), 0))}
		rngMu.Unlock()
		c := crash{fs: fs.CrashClone(cfg), acked: acked}
		log.mu.Lock()
		crashes = append(crashes, c)
		log.mu.Unlock()
	}
	ctx := context.Background()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := map[int]int64{}     // next in-order timestamp per series
			backfill := map[int]int64{} // next out-of-order one, going back
			for range batches {
				var b storage.Batch
				written := map[int][]int64{}
				for range 1 + intN(6) {
					s := w*seriesPerWriter + intN(seriesPerWriter)
					if len(written[s]) > 0 {
						continue
					}
					var ts []int64
					for range 1 + intN(5) {
						if intN(5) == 0 {
							backfill[s] -= 1000
							ts = append(ts, backfill[s])
						} else {
							next[s] += 1000 * int64(1+intN(20))
							ts = append(ts, next[s])
						}
					}
					slices.Sort(ts)
					smp := make([]storage.Sample, len(ts))
					for i, t := range ts {
						smp[i] = storage.Sample{T: t, V: crashValue(s, t)}
					}
					b.Add(crashLabels(s), smp...)
					written[s] = ts
				}
				log.mu.Lock()
				for s, ts := range written {
					log.add(log.attempted, s, ts)
				}
				log.mu.Unlock()
				if err := db.Write(ctx, "default", &b); err != nil {
					t.Error(err)
					return
				}
				log.mu.Lock()
				for s, ts := range written {
					log.add(log.acked, s, ts)
				}
				log.mu.Unlock()
				now.Add(10_000)
				var err error
				switch intN(16) {
				case 0:
					err = db.Flush() // seal all, flush Pebble, truncate the log
				case 1:
					err = storage.Maintain(db)
				case 2, 3:
					takeCrash() // while the other writers write
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	takeCrash()
	require.NoError(t, db.Close())
	require.NotEmpty(t, crashes)
	for i, c := range crashes {
		db := crashOpen(t, c.fs, opts)
		got := checkCrashed(t, db, log.attempted, c.acked)
		// Recovery itself is durable: crash again at once.
		again := c.fs.CrashClone(vfs.CrashCloneCfg{})
		require.NoError(t, db.Close())
		db = crashOpen(t, again, opts)
		require.Equal(t, got, st.Read(t, db, "default", math.MinInt64, math.MaxInt64, st.Eq("__name__", "m")), "crash %d, twice", i)
		require.NoError(t, db.Close())
	}
	t.Logf("%d shards, %d writers, %d crash clones", opts.Shards, writers, len(crashes))
}
