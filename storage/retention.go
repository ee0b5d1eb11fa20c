package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Retention is measured from the wall clock, as in VictoriaMetrics: data
// older than now-Retention is invisible to queries at once, samples older
// than that are dropped (and counted) on write, and whole days that ended
// before it are deleted from disk by one range deletion per shard. So
// backfill is accepted exactly as far back as retention reaches; without
// retention everything is kept, including samples from 1970.

func retentionCutoff(o *Options) int64 {
	if o.Retention <= 0 {
		return math.MinInt64
	}
	return o.Now().Add(-o.Retention).UnixMilli()
}

// rawCutoff is the oldest timestamp of tenant's raw samples kept.
func (db *DB) rawCutoff(tenant string) int64 {
	return cutoffOf(&db.opts, db.opts.rawRetention(tenant))
}

// rawCutoffOf is the oldest timestamp of raw samples kept for the tenant
// of id.
func (s *shard) rawCutoffOf(tenant uint32) int64 {
	if s.opts.TenantRetention == nil {
		return retentionCutoff(s.opts)
	}
	s.idxMu.RLock()
	ti := s.tenantByID[tenant]
	s.idxMu.RUnlock()
	if ti == nil {
		return retentionCutoff(s.opts)
	}
	return cutoffOf(s.opts, s.opts.rawRetention(ti.name))
}

func (db *DB) retentionLoop() {
	defer db.wg.Done()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	// A compaction may wait for a full disk: Close must not wait for it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-db.quit; cancel() }()
	for {
		select {
		case <-t.C:
			if err := db.applyRetention(ctx); err != nil && !errors.Is(err, ErrNotWritable) && ctx.Err() == nil {
				db.opts.Logger.Error("apply retention", "err", err)
			}
		case <-db.quit:
			return
		}
	}
}

// applyRetention drops, per tenant, the raw days and the tier days that
// ended before their retention's cutoff, then the oldest days while the
// DB is larger than Options.MaxBytes, and forgets series left without
// samples or buckets.
func (db *DB) applyRetention(ctx context.Context) error {
	var errs []error
	defer db.sweepKeys()
	for _, sh := range db.shards {
		if err := sh.dropDays(ctx, sh.retentionKept()); err != nil {
			errs = append(errs, fmt.Errorf("shard %d: %w", sh.id, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return db.applySizeRetention(ctx)
}

// hasRetention reports whether anything is ever dropped.
func (o *Options) hasRetention() bool {
	if o.Retention > 0 || o.TenantRetention != nil || o.MaxBytes > 0 {
		return true
	}
	for _, t := range o.Tiers {
		if t.Retention > 0 {
			return true
		}
	}
	return false
}

// keptDays is, per tenant id, the first day kept of raw samples and of
// each tier (math.MinInt32: all).
type keptDays map[uint32]*tenantKept

type tenantKept struct {
	raw   int32
	tiers []int32
}

func firstKept(o *Options, keep time.Duration) int32 {
	c := cutoffOf(o, keep)
	if c == math.MinInt64 {
		return math.MinInt32
	}
	return dayOf(c)
}

// retentionKept is what the retention periods keep of each tenant.
func (s *shard) retentionKept() keptDays {
	s.idxMu.RLock()
	defer s.idxMu.RUnlock()
	out := keptDays{}
	for id, ti := range s.tenantByID {
		k := &tenantKept{raw: firstKept(s.opts, s.opts.rawRetention(ti.name)), tiers: make([]int32, len(s.opts.Tiers))}
		for i := range s.opts.Tiers {
			k.tiers[i] = firstKept(s.opts, s.opts.tierRetention(ti.name, i))
		}
		k.raw = s.rawNeeded(k)
		out[id] = k
	}
	return out
}

// rawNeeded is the first raw day k may drop up to: a raw day that a
// tier still keeps but has not built yet stays, so that a tier whose
// building lags (a crash loop, a full disk) loses nothing when raw
// retention passes.
func (s *shard) rawNeeded(k *tenantKept) int32 {
	raw := k.raw
	for i, keep := range k.tiers {
		if keep < raw {
			raw = min(raw, max(s.tiers.builtDay(i)+1, keep))
		}
	}
	return raw
}

// dropDays deletes, for each tenant of kept, the raw chunks and
// series-day keys of days before its raw day and the blocks of days
// before its tier days, then the series left with nothing. Days dropped
// for every tenant go with one range deletion each.
func (s *shard) dropDays(ctx context.Context, kept keptDays) error {
	if len(kept) == 0 {
		return nil
	}
	if err := s.h.err(); err != nil {
		return err // the next run drops what this one would have
	}
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	// The day before which every tenant is dropped, per kind.
	allRaw := int32(math.MaxInt32)
	allTier := make([]int32, len(s.opts.Tiers))
	for i := range allTier {
		allTier[i] = math.MaxInt32
	}
	for _, k := range kept {
		allRaw = min(allRaw, k.raw)
		for i, d := range k.tiers {
			allTier[i] = min(allTier[i], d)
		}
	}
	pb := s.db.NewBatch()
	defer pb.Close()
	var compact [][2][]byte
	dropRange := func(lo, hi []byte) {
		_ = pb.DeleteRange(lo, hi, nil)
		compact = append(compact, [2][]byte{lo, hi})
	}
	if allRaw > math.MinInt32 {
		dropRange([]byte{prefixChunk}, chunkDayPrefix(allRaw))
		_ = pb.DeleteRange([]byte{prefixSeriesDay}, seriesDayPrefix(allRaw), nil)
		dropRange([]byte{prefixHistChunk}, histDayPrefix(allRaw))
	}
	for i, t := range s.opts.Tiers {
		if allTier[i] > math.MinInt32 {
			// Blocks go whole: those whose every day is before the
			// tier's kept day (queries skip the buckets of the others
			// that retention has passed).
			res := t.Resolution.Milliseconds()
			dropRange(tierResPrefix(res), tierDayPrefix(res, periodOf(allTier[i], blockDays(res))))
		}
	}

	// Tenants that keep less than the others: their own days, from the
	// oldest they hold.
	type span struct{ rawFrom, tierFrom int32 }
	from := map[uint32]*span{}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	all := s.allSeries()
	for _, ms := range all {
		sp := from[ms.tenant]
		if sp == nil {
			sp = &span{rawFrom: math.MaxInt32, tierFrom: math.MaxInt32}
			from[ms.tenant] = sp
		}
		ms.mu.Lock()
		if ms.mu.minDay <= ms.mu.maxDay {
			sp.rawFrom = min(sp.rawFrom, ms.mu.minDay)
		}
		if ms.mu.tierMinDay <= ms.mu.tierMaxDay {
			sp.tierFrom = min(sp.tierFrom, ms.mu.tierMinDay)
		}
		ms.mu.Unlock()
	}
	for tid, k := range kept {
		sp := from[tid]
		if sp == nil {
			continue
		}
		for d := max(sp.rawFrom, allRaw); d < k.raw; d++ {
			tenantDay := func(p []byte) []byte {
				return binary.BigEndian.AppendUint32(p, tid)
			}
			lo := tenantDay(chunkDayPrefix(d))
			dropRange(lo, prefixEnd(lo))
			lo = tenantDay(seriesDayPrefix(d))
			_ = pb.DeleteRange(lo, prefixEnd(lo), nil)
			lo = tenantDay(histDayPrefix(d))
			dropRange(lo, prefixEnd(lo))
		}
		for i, t := range s.opts.Tiers {
			res := t.Resolution.Milliseconds()
			n := blockDays(res)
			for p := periodOf(max(sp.tierFrom, allTier[i]), n); int64(p)+int64(n) <= int64(k.tiers[i]); p += n {
				lo := tierTenantDayPrefix(res, p, tid)
				dropRange(lo, prefixEnd(lo))
			}
		}
	}

	var gone []*memSeries
	// Writers look series up under appendMu: holding it, no writer can
	// append to a series we are about to forget.
	for _, ms := range all {
		k := kept[ms.tenant]
		if k == nil {
			continue
		}
		cutoff := dayStart(k.raw)
		if k.raw == math.MinInt32 {
			cutoff = math.MinInt64
		}
		if ms.minT.Load() < cutoff {
			ms.minT.Store(min(cutoff, ms.maxT.Load()))
		}
		tierKept := int32(math.MaxInt32) // the oldest day any tier keeps
		for _, d := range k.tiers {
			tierKept = min(tierKept, d)
		}
		ms.mu.Lock()
		if ms.mu.minDay < k.raw {
			ms.mu.minDay = k.raw
		}
		tmin, tmax := ms.mu.tierMinDay, ms.mu.tierMaxDay
		if ms.mu.tierMinDay < tierKept {
			ms.mu.tierMinDay = tierKept
		}
		empty := ms.mu.maxDay < k.raw && !ms.hasUnsealedLocked() && ms.mu.tierMaxDay < ms.mu.tierMinDay
		if empty {
			ms.mu.deleted = true
			ms.state.setGone(true)
		}
		ms.mu.Unlock()
		if empty {
			gone = append(gone, ms)
			_ = pb.Delete(seriesKey(ms.tenant, ms.ref), nil)
			_ = pb.Delete(tierRangeKey(ms.tenant, ms.ref), nil)
			// A block partly past retention outlives the days dropped:
			// the series' go with it.
			for _, t := range s.opts.Tiers {
				res := t.Resolution.Milliseconds()
				n := blockDays(res)
				for p := periodOf(tmin, n); tmin <= tmax && p <= tmax && p >= periodOf(tmin, n); p += n {
					_ = pb.Delete(tierKey(nil, res, p, ms.tenant, ms.ref), nil)
				}
			}
		}
	}
	if err := pb.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("commit retention deletes: %w", err)
	}
	s.chunkGen.Add(1)
	// Without a Pebble WAL a crash could forget the deletes; retention
	// would redo them, but the series deletes must not resurrect.
	if err := s.flushPebble(); err != nil {
		return fmt.Errorf("flush retention deletes: %w", err)
	}
	s.unpublish(gone)
	if len(gone) > 0 {
		s.log.Info("retention removed series", "series", len(gone))
	}
	// Range deletions reclaim space once compacted; do it now for the
	// dropped spans, which is cheap because whole files go.
	for _, c := range compact {
		if err := s.db.Compact(ctx, c[0], c[1], false); err != nil {
			return fmt.Errorf("compact dropped days: %w", err)
		}
	}
	return nil
}

// applySizeRetention drops the oldest day of every shard, raw samples
// and tier buckets alike, while the DB is larger than Options.MaxBytes.
func (db *DB) applySizeRetention(ctx context.Context) error {
	if db.opts.MaxBytes <= 0 {
		return nil
	}
	today := dayOf(db.opts.Now().UnixMilli())
	for range 1000 {
		size := db.diskBytes()
		if size <= db.opts.MaxBytes {
			return nil
		}
		oldest := int32(math.MaxInt32)
		for _, sh := range db.shards {
			d, err := sh.oldestDay()
			if err != nil {
				return err
			}
			oldest = min(oldest, d)
		}
		if oldest >= today {
			db.opts.Logger.Warn("over the size bound with nothing older than today to drop", "bytes", size, "max_bytes", db.opts.MaxBytes)
			return nil
		}
		db.opts.Logger.Info("size bound: dropping the oldest day", "day", time.UnixMilli(dayStart(oldest)).UTC().Format(time.DateOnly), "bytes", size, "max_bytes", db.opts.MaxBytes)
		db.stats.daysDroppedBySize.Add(1)
		for _, sh := range db.shards {
			kept := keptDays{}
			sh.idxMu.RLock()
			for id := range sh.tenantByID {
				k := &tenantKept{raw: oldest + 1, tiers: make([]int32, len(db.opts.Tiers))}
				for i := range k.tiers {
					k.tiers[i] = oldest + 1
				}
				kept[id] = k
			}
			sh.idxMu.RUnlock()
			if err := sh.dropDays(ctx, kept); err != nil {
				return fmt.Errorf("shard %d: %w", sh.id, err)
			}
		}
	}
	return nil
}

// diskBytes is the disk the DB takes now.
func (db *DB) diskBytes() int64 {
	var n int64
	for _, sh := range db.shards {
		n += int64(sh.db.Metrics().DiskSpaceUsage()) + sh.wal.Size()
	}
	return n
}

// oldestDay is the oldest day the shard holds raw samples or tier
// buckets of (math.MaxInt32: none).
func (s *shard) oldestDay() (int32, error) {
	oldest := int32(math.MaxInt32)
	// days is how many days a key's day stands for: a tier block of n
	// days can only be dropped whole, after its last day.
	first := func(lo []byte, dayAt int, days int32) error {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
		if err != nil {
			return err
		}
		defer it.Close()
		if it.First() && len(it.Key()) >= dayAt+4 {
			oldest = min(oldest, getDay(it.Key()[dayAt:])+days-1)
		}
		return it.Error()
	}
	if err := first([]byte{prefixChunk}, 1, 1); err != nil {
		return 0, err
	}
	if err := first([]byte{prefixHistChunk}, 1, 1); err != nil {
		return 0, err
	}
	for _, t := range s.opts.Tiers {
		res := t.Resolution.Milliseconds()
		if err := first(tierResPrefix(res), 5, blockDays(res)); err != nil {
			return 0, err
		}
	}
	return oldest, nil
}

// unpublish removes series from the index.
func (s *shard) unpublish(gone []*memSeries) {
	if len(gone) == 0 {
		return
	}
	byTenant := map[uint32][]*memSeries{}
	for _, ms := range gone {
		byTenant[ms.tenant] = append(byTenant[ms.tenant], ms)
	}
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	for tid, list := range byTenant {
		ti := s.tenantByID[tid]
		if ti == nil {
			continue
		}
		var buf []byte
		ti.remove(func(ms *memSeries) uint64 {
			var h uint64
			h, buf = seriesHash(ti.name, ms.lset, buf)
			return h
		}, list)
	}
}
