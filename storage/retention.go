package storage

import (
	"context"
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

func (db *DB) retentionCutoff() int64 { return retentionCutoff(&db.opts) }

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

// applyRetention drops every day that ended before the retention cutoff
// and forgets series left without samples.
func (db *DB) applyRetention(ctx context.Context) error {
	cutoff := db.retentionCutoff()
	if cutoff == math.MinInt64 {
		return nil
	}
	var errs []error
	defer db.keys.sweep()
	for _, sh := range db.shards {
		if err := sh.dropBefore(ctx, dayOf(cutoff)); err != nil {
			errs = append(errs, fmt.Errorf("shard %d: %w", sh.id, err))
		}
	}
	return errors.Join(errs...)
}

// dropBefore deletes all chunks and series-day keys of days before
// firstKept, then series with no samples left.
func (s *shard) dropBefore(ctx context.Context, firstKept int32) error {
	if err := s.h.err(); err != nil {
		return err // the next run drops what this one would have
	}
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	lo := []byte{prefixChunk}
	hi := chunkDayPrefix(firstKept)
	pb := s.db.NewBatch()
	defer pb.Close()
	_ = pb.DeleteRange(lo, hi, nil)
	_ = pb.DeleteRange([]byte{prefixSeriesDay}, seriesDayPrefix(firstKept), nil)
	_ = pb.DeleteRange([]byte{prefixHistChunk}, histDayPrefix(firstKept), nil)

	cutoff := dayStart(firstKept)
	var gone []*memSeries
	// Writers look series up under appendMu: holding it, no writer can
	// append to a series we are about to forget.
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	for _, ms := range s.allSeries() {
		if ms.minT.Load() < cutoff {
			ms.minT.Store(min(cutoff, ms.maxT.Load()))
		}
		ms.mu.Lock()
		if ms.mu.minDay < firstKept {
			ms.mu.minDay = firstKept
		}
		empty := ms.mu.maxDay < firstKept && !ms.hasUnsealedLocked()
		if empty {
			ms.mu.deleted = true
			ms.gone.Store(true)
		}
		ms.mu.Unlock()
		if empty {
			gone = append(gone, ms)
			_ = pb.Delete(seriesKey(ms.tenant, ms.ref), nil)
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
		s.log.Info("retention removed series", "series", len(gone), "before_day", firstKept)
	}
	// Range deletions reclaim space once compacted; do it now for the
	// dropped span, which is cheap because whole files go.
	if err := s.db.Compact(ctx, lo, hi, false); err != nil {
		return fmt.Errorf("compact dropped days: %w", err)
	}
	if err := s.db.Compact(ctx, []byte{prefixHistChunk}, histDayPrefix(firstKept), false); err != nil {
		return fmt.Errorf("compact dropped days of histograms: %w", err)
	}
	return nil
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
