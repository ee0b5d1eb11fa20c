package storage

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage/chunkenc"
)

// DeleteSeries deletes the samples in [mint, maxt] of the tenant's series
// matching ms, and the series themselves when no samples remain. It
// returns the number of series touched. The deletion is logged, so it
// survives a crash the moment DeleteSeries returns.
func (db *DB) DeleteSeries(ctx context.Context, tenant string, mint, maxt int64, ms ...*labels.Matcher) (int, error) {
	if len(ms) == 0 {
		return 0, fmt.Errorf("%w: delete needs at least one matcher", ErrInvalidSeries)
	}
	if mint > maxt {
		return 0, fmt.Errorf("%w: delete range start %d is after end %d", ErrInvalidSample, mint, maxt)
	}
	db.adminMu.Lock()
	defer db.adminMu.Unlock()
	if db.closed.Load() {
		return 0, ErrClosed
	}
	total := 0
	defer db.keys.sweep()
	for _, sh := range db.shards {
		n, err := sh.deleteSeries(ctx, tenant, mint, maxt, ms)
		total += n
		if err != nil {
			return total, fmt.Errorf("delete in shard %d: %w", sh.id, err)
		}
	}
	return total, nil
}

func (s *shard) deleteSeries(ctx context.Context, tenant string, mint, maxt int64, matchers []*labels.Matcher) (int, error) {
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	s.appendMu.Lock()
	s.idxMu.RLock()
	ti := s.tenants[tenant]
	var found []*memSeries
	if ti != nil {
		for _, ref := range ti.postingsFor(matchers, s.cache, s.id) {
			if ms := ti.series[ref]; ms != nil && ms.maxT.Load() >= mint && ms.minT.Load() <= maxt {
				found = append(found, ms)
			}
		}
	}
	s.idxMu.RUnlock()
	if len(found) == 0 {
		s.appendMu.Unlock()
		return 0, nil
	}
	whole := func(ms *memSeries) bool { return mint <= ms.minT.Load() && maxt >= ms.maxT.Load() }
	var rec []byte
	for _, ms := range found {
		if whole(ms) {
			rec = appendDeleteEntry(rec, ms.ref, math.MinInt64, math.MaxInt64)
		} else {
			rec = appendDeleteEntry(rec, ms.ref, mint, maxt)
		}
	}
	pos, err := s.wal.Append(rec)
	if err != nil {
		s.appendMu.Unlock()
		return 0, fmt.Errorf("log deletion: %w", err)
	}
	var gone []*memSeries
	for _, ms := range found {
		if whole(ms) {
			if err := s.deleteSamples(ms, math.MinInt64, math.MaxInt64); err != nil {
				s.appendMu.Unlock()
				return 0, err
			}
			gone = append(gone, ms)
		} else if err := s.deleteSamples(ms, mint, maxt); err != nil {
			s.appendMu.Unlock()
			return 0, err
		}
	}
	s.unpublish(gone)
	s.appendMu.Unlock()
	if err := s.wal.Wait(ctx, pos); err != nil {
		return 0, fmt.Errorf("sync deletion: %w", err)
	}
	return len(found), nil
}

// deleteSamples removes the samples of ms in [mint, maxt] from memory and
// disk; the whole range deletes the series. The caller holds sealMu (or is
// replaying) so no seal runs concurrently.
func (s *shard) deleteSamples(ms *memSeries, mint, maxt int64) error {
	whole := mint == math.MinInt64 && maxt == math.MaxInt64
	ms.mu.Lock()
	minDay, maxDay := ms.mu.minDay, ms.mu.maxDay
	if whole {
		ms.mu.deleted = true
		ms.gone.Store(true)
		ms.mu.head, ms.mu.ooo, ms.mu.frozen = nil, nil, nil
	} else if err := ms.filterMemLocked(mint, maxt); err != nil {
		ms.mu.Unlock()
		return err
	}
	ms.mu.Unlock()

	pb := s.db.NewBatch()
	defer pb.Close()
	if whole {
		_ = pb.Delete(seriesKey(ms.tenant, ms.ref), nil)
	}
	if minDay <= maxDay {
		first, last := max(minDay, dayOf(mint)), min(maxDay, dayOf(maxt))
		for day := first; day <= last && day >= first; day++ {
			prefix := chunkSeriesPrefix(day, ms.tenant, ms.ref)
			if whole || (mint <= dayStart(day) && maxt >= dayEnd(day)) {
				_ = pb.DeleteRange(prefix, prefixEnd(prefix), nil)
				if whole {
					_ = pb.Delete(seriesDayKey(nil, day, ms.tenant, ms.ref), nil)
				}
			} else if err := s.rewriteWithout(pb, day, ms, mint, maxt); err != nil {
				return err
			}
			if day == math.MaxInt32 {
				break
			}
		}
	}
	if err := pb.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("commit deletion of series %d: %w", ms.ref, err)
	}
	s.chunkGen.Add(1)
	return nil
}

// rewriteWithout rewrites the chunks of ms in day without [mint, maxt].
func (s *shard) rewriteWithout(pb *pebble.Batch, day int32, ms *memSeries, mint, maxt int64) error {
	chunks, keys, err := s.readChunks(day, ms, mint, maxt)
	if err != nil {
		return err
	}
	for i, c := range chunks {
		if err := pb.Delete(keys[i], nil); err != nil {
			return err
		}
		ts, vs, err := chunkenc.DecodeDense(c, nil, nil)
		if err != nil {
			return fmt.Errorf("%w: chunk %x: %v", ErrCorrupt, keys[i], err)
		}
		var kts []int64
		var kvs []float64
		for j, t := range ts {
			if t < mint || t > maxt {
				kts, kvs = append(kts, t), append(kvs, vs[j])
			}
		}
		if len(kts) > 0 {
			_ = pb.Set(chunkKey(nil, day, ms.tenant, ms.ref, kts[len(kts)-1]), chunkenc.EncodeDense(nil, kts, kvs), nil)
		}
	}
	return nil
}

// filterMemLocked drops in-memory samples in [mint, maxt].
func (ms *memSeries) filterMemLocked(mint, maxt int64) error {
	keep := func(t int64) bool { return t < mint || t > maxt }
	ms.mu.ooo = slices.DeleteFunc(ms.mu.ooo, func(s Sample) bool { return !keep(s.T) })
	if h := ms.mu.head; h != nil && h.NumSamples() > 0 && h.MaxTime() >= mint && h.MinTime() <= maxt {
		b, n := h.Snapshot(nil)
		it := chunkenc.NewXORIterator(b, n)
		h.Reset()
		for it.Next() {
			if t, v := it.At(); keep(t) {
				h.Append(t, v)
			}
		}
		if err := it.Err(); err != nil {
			return err
		}
	}
	for i, fc := range ms.mu.frozen {
		nf := &frozenChunk{seg: fc.seg}
		for _, smp := range fc.ooo {
			if keep(smp.T) {
				nf.ooo = append(nf.ooo, smp)
			}
		}
		if fc.n > 0 {
			c := chunkenc.NewXORChunk()
			it := chunkenc.NewXORIterator(fc.xor, fc.n)
			for it.Next() {
				if t, v := it.At(); keep(t) {
					c.Append(t, v)
				}
			}
			if err := it.Err(); err != nil {
				return err
			}
			nf.xor, nf.n = c.Snapshot(nil)
		}
		ms.mu.frozen[i] = nf
	}
	return nil
}
