package storage_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

var usageDay = time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)

// usageOf sums tenant's counters by name over every day.
func usageOf(t testing.TB, db *storage.DB, tenant string) map[string]uint64 {
	t.Helper()
	rows, err := db.Usage(time.Unix(0, 0), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), tenant)
	require.NoError(t, err)
	out := map[string]uint64{}
	for _, r := range rows {
		require.Equal(t, tenant, r.Tenant)
		out[r.Name] += r.Value
	}
	return out
}

func TestUsageCountsWritesByProtocolAndDay(t *testing.T) {
	dir := t.TempDir()
	now := usageDay
	opts := &storage.Options{Shards: 3, Now: func() time.Time { return now }}
	db := st.OpenDir(t, dir, opts)
	ctx := context.Background()
	rw := storage.WithIngestProtocol(ctx, "remote_write")
	var b storage.Batch
	for i := range 10 {
		b.Add(labels.FromStrings("__name__", "m", "i", fmt.Sprint(i)), storage.Sample{T: 1000, V: 1}, storage.Sample{T: 2000, V: 2})
	}
	b.AddHistograms(labels.FromStrings("__name__", "h"), storage.HSample{T: 1000, H: &histogram.FloatHistogram{Count: 1, Sum: 1}})
	require.NoError(t, db.Write(rw, "a", &b))
	st.Write(t, db, "a", st.Series(labels.FromStrings("__name__", "x"), 1000, 1)) // untagged
	require.NoError(t, db.Write(storage.WithIngestProtocol(ctx, "influx"), "b", &storage.Batch{Series: []storage.SeriesSamples{
		st.Series(labels.FromStrings("__name__", "y"), 1000, 1, 2000, 2, 3000, 3)}}))
	// A batch refused whole counts nothing.
	bad := storage.Batch{Series: []storage.SeriesSamples{st.Series(labels.FromStrings("__name__", "z", "", "x"), 1000, 1)}}
	require.Error(t, db.Write(rw, "a", &bad))

	now = usageDay.Add(24 * time.Hour) // the next day
	st.Write(t, db, "b", st.Series(labels.FromStrings("__name__", "y"), 4000, 4))
	require.NoError(t, db.RecordUsage(ctx, "a", now, []storage.UsageDelta{
		{Name: "queries", Kind: storage.UsageSum, Value: 3}, {Name: "active_series", Kind: storage.UsageMax, Value: 11}}))
	require.NoError(t, db.RecordUsage(ctx, "a", now, []storage.UsageDelta{
		{Name: "queries", Kind: storage.UsageSum, Value: 2}, {Name: "active_series", Kind: storage.UsageMax, Value: 7}}))
	require.Error(t, db.RecordUsage(ctx, "a", now, []storage.UsageDelta{{Name: "", Value: 1}}))

	check := func(db *storage.DB) {
		t.Helper()
		all, err := db.Usage(usageDay, usageDay.Add(24*time.Hour), "")
		require.NoError(t, err)
		var rows []storage.UsageRow
		for _, r := range all {
			if r.Tenant != "c" { // written after the first check
				rows = append(rows, r)
			}
		}
		d0, d1 := usageDay.Truncate(24*time.Hour), usageDay.Truncate(24*time.Hour).Add(24*time.Hour)
		require.Equal(t, []storage.UsageRow{
			{Day: d0, Tenant: "a", Name: "samples_ingested.other", Value: 1},
			{Day: d0, Tenant: "a", Name: "samples_ingested.remote_write", Value: 21},
			{Day: d0, Tenant: "b", Name: "samples_ingested.influx", Value: 3},
			{Day: d1, Tenant: "a", Name: "active_series", Kind: storage.UsageMax, Value: 11},
			{Day: d1, Tenant: "a", Name: "queries", Value: 5},
			{Day: d1, Tenant: "b", Name: "samples_ingested.other", Value: 1},
		}, rows)
		rows, err = db.Usage(usageDay.Add(24*time.Hour), usageDay.Add(48*time.Hour), "b")
		require.NoError(t, err)
		require.Equal(t, []storage.UsageRow{{Day: d1, Tenant: "b", Name: "samples_ingested.other", Value: 1}}, rows)
	}
	check(db)
	// Closed cleanly (the log is truncated) and reopened.
	require.NoError(t, db.Close())
	db = st.OpenDir(t, dir, opts)
	check(db)
	// Crashed (the log is replayed): nothing counts twice.
	st.Write(t, db, "c", st.Series(labels.FromStrings("__name__", "y"), 1000, 1))
	require.NoError(t, storage.Crash(db))
	for range 2 {
		db = st.OpenDir(t, dir, opts)
		check(db)
		require.Equal(t, map[string]uint64{"samples_ingested.other": 1}, usageOf(t, db, "c"))
		require.NoError(t, storage.Crash(db))
	}
}

// A snapshot carries the counters, and opening it does not count its copy
// of the log again.
func TestUsageSurvivesSnapshot(t *testing.T) {
	dir := t.TempDir()
	db := st.OpenDir(t, filepath.Join(dir, "data"), nil)
	ctx := storage.WithIngestProtocol(context.Background(), "jsonl")
	for i := range 5 {
		require.NoError(t, db.Write(ctx, "a", &storage.Batch{Series: []storage.SeriesSamples{
			st.Series(labels.FromStrings("__name__", "m", "i", fmt.Sprint(i)), 1000, 1)}}))
	}
	require.NoError(t, db.RecordUsage(ctx, "a", time.Now(), []storage.UsageDelta{{Name: "queries", Value: 4}}))
	snap := filepath.Join(dir, "snap")
	require.NoError(t, db.Snapshot(snap))
	want := map[string]uint64{"samples_ingested.jsonl": 5, "queries": 4}
	require.Equal(t, want, usageOf(t, db, "a"))
	restored := st.OpenDir(t, snap, nil)
	require.Equal(t, want, usageOf(t, restored, "a"))
}

// TestUsageCrashExact writes and records usage while flushing, truncating
// the log and taking crash clones (which keep what was fsynced and a
// random part of the rest). In every clone, reopened once and again after
// a second crash, the samples_ingested counter is exactly the number of
// samples there: a write the log kept counts once, one it lost not at all.
func TestUsageCrashExact(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			fs := vfs.NewCrashableMem()
			opts := storage.Options{Shards: 1 + rng.IntN(3), HeadChunkSamples: 4, WALSegmentSize: int64(512 + rng.IntN(4096))}
			db := crashOpen(t, fs, opts)
			ctx := storage.WithIngestProtocol(context.Background(), "remote_write")
			type clone struct {
				fs              *vfs.MemFS
				recordedAtLeast uint64
			}
			var clones []clone
			next := map[int]int64{}
			var recorded uint64
			for range 150 {
				var b storage.Batch
				for range 1 + rng.IntN(4) {
					s := rng.IntN(20)
					next[s] += 1000
					b.Add(crashLabels(s), storage.Sample{T: next[s], V: crashValue(s, next[s])})
				}
				require.NoError(t, db.Write(ctx, "default", &b))
				switch rng.IntN(12) {
				case 0:
					require.NoError(t, db.Flush())
				case 1:
					require.NoError(t, storage.Maintain(db))
				case 2, 3:
					require.NoError(t, db.RecordUsage(ctx, "default", time.Now(), []storage.UsageDelta{{Name: "queries", Value: 1}}))
					recorded++
				case 4, 5:
					cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: []int{0, 30, 100}[rng.IntN(3)], RNG: rand.New(rand.NewPCG(rng.Uint64(), 0))}
					clones = append(clones, clone{fs: fs.CrashClone(cfg), recordedAtLeast: recorded})
				}
			}
			require.NoError(t, db.Close())
			require.NotEmpty(t, clones)
			for i, c := range clones {
				fs := c.fs
				var first map[string]uint64
				for round := range 2 {
					db := crashOpen(t, fs, opts)
					n := 0
					for _, smp := range st.Read(t, db, "default", math.MinInt64, math.MaxInt64, st.Eq("__name__", "m")) {
						n += len(smp)
					}
					u := usageOf(t, db, "default")
					require.Equal(t, uint64(n), u["samples_ingested.remote_write"], "clone %d round %d: samples counted vs stored", i, round)
					require.GreaterOrEqual(t, u["queries"], c.recordedAtLeast, "clone %d: acknowledged usage kept", i)
					if round == 0 {
						first = u
					} else {
						require.Equal(t, first, u, "clone %d: a second crash changes nothing", i)
					}
					fs = fs.CrashClone(vfs.CrashCloneCfg{})
					require.NoError(t, storage.Crash(db))
				}
			}
		})
	}
}

// StoredBytes estimates each tenant's data on disk by tier: a tenant
// with ten times the samples takes more, one with none takes nothing,
// and once the hour tier is built it has bytes of its own, fewer than raw.
func TestStoredBytesPerTenant(t *testing.T) {
	now := time.UnixMilli(3 * 24 * 3600 * 1000) // two days after the samples
	opts := &storage.Options{Shards: 2, Tiers: []storage.Tier{{Resolution: time.Hour}}, Now: func() time.Time { return now }}
	db := st.Open(t, opts)
	rng := rand.New(rand.NewPCG(1, 2))
	write := func(tenant string, series int) {
		var b storage.Batch
		for s := range series {
			smp := make([]storage.Sample, 2000)
			for i := range smp {
				smp[i] = storage.Sample{T: int64(i) * 15000, V: rng.Float64()} // noise: does not compress
			}
			b.Add(labels.FromStrings("__name__", "m", "s", fmt.Sprint(s)), smp...)
		}
		require.NoError(t, db.Write(context.Background(), tenant, &b))
	}
	write("small", 5)
	write("big", 50)
	bytes, err := db.StoredBytes()
	require.NoError(t, err)
	require.Zero(t, bytes["big"]["raw"], "nothing sealed yet")
	require.NoError(t, db.Flush())
	bytes, err = db.StoredBytes()
	require.NoError(t, err)
	t.Logf("stored bytes: %v", bytes)
	// 8 bytes of noise per sample, at least, once compressed.
	require.Greater(t, bytes["big"]["raw"], int64(50*2000*6))
	require.Greater(t, bytes["small"]["raw"], int64(5*2000*6))
	require.Greater(t, bytes["big"]["raw"], 5*bytes["small"]["raw"])
	require.Zero(t, bytes["none"]["raw"])
	require.Zero(t, bytes["big"]["1h"], "the tier is not built yet")

	require.NoError(t, db.BuildTiers(context.Background()))
	// NB: closing writes Pebble's memtables, where the new buckets are,
	// into tables, which is all StoredBytes sees.
	dir := db.Dir()
	require.NoError(t, db.Close())
	db, err = storage.Open(dir, opts)
	require.NoError(t, err)
	defer db.Close()
	bytes, err = db.StoredBytes()
	require.NoError(t, err)
	t.Logf("stored bytes after the tier: %v", bytes)
	require.Greater(t, bytes["big"]["1h"], int64(0))
	require.Less(t, bytes["big"]["1h"], bytes["big"]["raw"])
}
