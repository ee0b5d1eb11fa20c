package storage_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// Raw samples go after their retention; the tiers keep the days, each for
// its own retention, and the series stays while any tier holds it; one
// tenant may keep less, or more.
func TestRetentionByTierAndTenant(t *testing.T) {
	now := tierDay0.Add(6*24*time.Hour + 12*time.Hour)
	clock := func() time.Time { return now }
	opts := &storage.Options{
		Now:       clock,
		Retention: 3 * 24 * time.Hour,
		Tiers:     []storage.Tier{{Resolution: 5 * time.Minute, Retention: 5 * 24 * time.Hour}, {Resolution: time.Hour}},
		TenantRetention: func(tenant string) storage.RetentionPolicy {
			if tenant == "brief" {
				return storage.RetentionPolicy{Raw: 2 * 24 * time.Hour, Tiers: map[time.Duration]time.Duration{time.Hour: 4 * 24 * time.Hour}}
			}
			return storage.RetentionPolicy{}
		},
	}
	dir := t.TempDir()
	db := st.OpenDir(t, dir, opts)
	data := tierData(5, 6, 6) // days 0 to 6
	ctx := context.Background()
	for _, tenant := range []string{"default", "brief"} {
		var ws storage.WriteStats
		var b storage.Batch
		b.Series = data
		require.NoError(t, db.Write(storage.WithWriteStats(ctx, &ws), tenant, &b))
		require.Positive(t, ws.DroppedOld, "samples older than the raw retention are dropped and counted")
	}
	require.Positive(t, db.Stats().SamplesDropped)
	// Days 3 to 5 are built from raw samples.
	require.NoError(t, db.Flush())
	require.NoError(t, db.BuildTiers(ctx))
	want := map[string]map[time.Duration]map[string][]storage.Bucket{}
	for _, tenant := range []string{"default", "brief"} {
		want[tenant] = map[time.Duration]map[string][]storage.Bucket{}
		for _, tr := range opts.Tiers {
			want[tenant][tr.Resolution] = readBuckets(t, db, tenant, tr.Resolution, math.MinInt64, math.MaxInt64, anySeries)
		}
	}
	require.NoError(t, db.Close())

	// Three days later (day 9, 12:00).
	now = now.Add(3 * 24 * time.Hour)
	db = st.OpenDir(t, dir, opts)
	day := func(d int) int64 { return tierDay0.UnixMilli() + int64(d)*dayMs }
	// Queries see what each retention keeps to the millisecond; the days
	// before are dropped whole.
	for _, c := range []struct {
		tenant             string
		fiveFrom, hourFrom int64
	}{
		{"default", day(4) + dayMs/2, math.MinInt64},  // 5m: 5 days; 1h: forever
		{"brief", day(4) + dayMs/2, day(5) + dayMs/2}, // 1h: 4 days
	} {
		raw := st.Read(t, db, c.tenant, math.MinInt64, math.MaxInt64, anySeries)
		require.Empty(t, raw, "%s: the raw samples were all older than the raw retention", c.tenant)
		require.NotEmpty(t, filterBuckets(want[c.tenant][time.Hour], c.hourFrom))
		got := readBuckets(t, db, c.tenant, 5*time.Minute, math.MinInt64, math.MaxInt64, anySeries)
		requireBucketsEqual(t, filterBuckets(want[c.tenant][5*time.Minute], c.fiveFrom), got, c.tenant+" 5m")
		got = readBuckets(t, db, c.tenant, time.Hour, math.MinInt64, math.MaxInt64, anySeries)
		requireBucketsEqual(t, filterBuckets(want[c.tenant][time.Hour], c.hourFrom), got, c.tenant+" 1h")
	}
	require.Equal(t, 2*len(data), db.Stats().Series, "series with buckets left stay")

	// Once no tier holds them, the brief tenant's series go.
	now = now.Add(30 * 24 * time.Hour)
	require.NoError(t, db.Close())
	db = st.OpenDir(t, dir, opts)
	require.Equal(t, len(data), db.Stats().Series)
}

// filterBuckets keeps the buckets that end at or after from.
func filterBuckets(in map[string][]storage.Bucket, from int64) map[string][]storage.Bucket {
	out := map[string][]storage.Bucket{}
	for k, bs := range in {
		var kept []storage.Bucket
		for _, b := range bs {
			if b.End >= from {
				kept = append(kept, b)
			}
		}
		if len(kept) > 0 {
			out[k] = kept
		}
	}
	return out
}

// Over the size bound, the oldest whole days go first until the DB fits.
func TestRetentionBySize(t *testing.T) {
	now := tierDay0.Add(20 * 24 * time.Hour)
	clock := func() time.Time { return now }
	dir := t.TempDir()
	db := st.OpenDir(t, dir, &storage.Options{Now: clock, Shards: 1})
	var b storage.Batch
	for s := range 20 {
		var smp []storage.Sample
		for ts := tierDay0.UnixMilli(); ts < now.UnixMilli(); ts += 60_000 {
			smp = append(smp, storage.Sample{T: ts, V: float64(ts%7919) * float64(s+1) / 3})
		}
		b.Add(labels.FromStrings("__name__", "m", "s", string(rune('a'+s%26))+string(rune('a'+s/26))), smp...)
	}
	require.NoError(t, db.Write(context.Background(), "default", &b))
	require.NoError(t, db.Close())
	db = st.OpenDir(t, dir, &storage.Options{Now: clock, Shards: 1})
	full := db.Stats().DiskBytes
	require.NoError(t, db.Close())

	bound := full / 2
	db = st.OpenDir(t, dir, &storage.Options{Now: clock, Shards: 1, MaxBytes: bound})
	stats := db.Stats()
	require.LessOrEqual(t, stats.DiskBytes, bound)
	require.Positive(t, stats.DaysDroppedBySize)
	require.Less(t, stats.DaysDroppedBySize, int64(20), "only as many days as needed")
	got := st.Read(t, db, "default", math.MinInt64, math.MaxInt64, st.Eq("__name__", "m"))
	require.Len(t, got, 20)
	for _, smp := range got {
		first := smp[0].T
		require.Zero(t, (first-tierDay0.UnixMilli())%dayMs, "whole days are dropped")
		require.Equal(t, tierDay0.UnixMilli()+stats.DaysDroppedBySize*dayMs, first, "the oldest first")
		require.Equal(t, now.UnixMilli()-60_000, smp[len(smp)-1].T)
	}
}

// Raw days a tier keeps but has not built yet stay past the raw
// retention, so a tier whose building lags loses nothing; once built,
// they go.
func TestRawRetentionWaitsForTiers(t *testing.T) {
	now := tierDay0.Add(2*24*time.Hour + 12*time.Hour)
	opts := &storage.Options{Now: func() time.Time { return now }, Retention: 24 * time.Hour,
		Tiers: []storage.Tier{{Resolution: time.Hour}}}
	dir := t.TempDir()
	db := st.OpenDir(t, dir, opts)
	var b storage.Batch
	b.Series = tierData(3, 4, 2) // four series, days 0 and 1
	ctx := context.Background()
	now = tierDay0.Add(time.Hour) // written while fresh
	require.NoError(t, db.Write(ctx, "default", &b))
	require.NoError(t, db.Close())

	// Ten days later, nothing built yet: raw retention would drop every
	// day, but the hour tier has not got them.
	now = tierDay0.Add(10 * 24 * time.Hour)
	db = st.OpenDir(t, dir, opts)
	require.NoError(t, db.BuildTiers(ctx))
	require.NoError(t, db.Close())
	db = st.OpenDir(t, dir, opts)
	got := readBuckets(t, db, "default", time.Hour, math.MinInt64, math.MaxInt64, anySeries)
	require.Len(t, got, 4, "every series' buckets were built from raw days kept for them")
	n := 0
	for _, bs := range got {
		n += len(bs)
	}
	require.GreaterOrEqual(t, n, 4*36, "a day and a half and more of hourly buckets per series")
	by, err := db.StoredBytes()
	require.NoError(t, err)
	require.Zero(t, by["default"]["raw"], "built, the raw days went")
	require.Positive(t, by["default"]["1h"])
}
