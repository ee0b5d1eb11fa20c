package storage

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/prometheus/model/labels"
	"golang.org/x/sync/errgroup"

	"github.com/emsdb/tsdb/storage/chunkenc"
)

// DeleteSeries deletes the samples in [mint, maxt] of the tenant's series
// matching ms, and the series themselves when no samples remain: those
// leave Select, LabelNames, LabelValues and the series counts. It returns
// the number of series touched.
//
// A delete is durable and whole. It is first recorded in a synced intent
// file (docs/format.md); then every shard logs its part to its WAL and
// syncs it; then the intent is removed. After a crash at any point the
// delete is either not begun or, when the intent was recorded, completed
// by Open before it returns: never applied to some shards and not others.
// Once recorded it runs to its end even if ctx is done. If a shard fails
// (an I/O error), the error is returned and the delete is completed when
// the DB is next opened. Writes racing with a delete that is resumed after
// a crash may be deleted too.
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
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	in := &deleteIntent{tenant: tenant, mint: mint, maxt: maxt, matchers: ms}
	if err := db.writeIntent(in); err != nil {
		return 0, fmt.Errorf("record delete intent: %w", err)
	}
	n, err := db.applyDelete(context.WithoutCancel(ctx), in)
	if err != nil {
		return n, err
	}
	if err := db.clearIntent(); err != nil {
		return n, fmt.Errorf("clear delete intent: %w", err)
	}
	return n, nil
}

// resumeDelete completes the delete a crash interrupted, if any.
func (db *DB) resumeDelete() error {
	in, err := db.readIntent()
	if err != nil || in == nil {
		return err
	}
	n, err := db.applyDelete(context.Background(), in)
	if err != nil {
		return err
	}
	db.opts.Logger.Info("completed a delete interrupted by a crash", "tenant", in.tenant, "series", n, "start", in.mint, "end", in.maxt)
	return db.clearIntent()
}

// applyDelete applies in to every shard and returns once each shard's part
// is durable. Applying it again changes nothing more.
func (db *DB) applyDelete(ctx context.Context, in *deleteIntent) (int, error) {
	defer db.sweepKeys()
	var total atomic.Int64
	var g errgroup.Group // not WithContext: one shard failing must not stop the others
	for _, sh := range db.shards {
		g.Go(func() error {
			n, err := sh.deleteSeries(ctx, in.tenant, in.mint, in.maxt, in.matchers)
			total.Add(int64(n))
			if err != nil {
				return fmt.Errorf("delete in shard %d: %w", sh.id, err)
			}
			return nil
		})
	}
	err := g.Wait()
	if xerr := db.exemplars.delete(in.tenant, in.mint, in.maxt, in.matchers); xerr != nil && err == nil {
		err = fmt.Errorf("delete exemplars: %w", xerr)
	}
	return int(total.Load()), err
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
			if ms := ti.get(ref); ms != nil && ms.maxT.Load() >= mint && ms.minT.Load() <= maxt {
				found = append(found, ms)
			}
		}
	}
	s.idxMu.RUnlock()
	if len(found) == 0 {
		s.appendMu.Unlock()
		return 0, nil
	}
	whole := make([]bool, len(found))
	var rec []byte
	for i, ms := range found {
		var err error
		if whole[i], err = s.coversAll(ms, mint, maxt); err != nil {
			s.appendMu.Unlock()
			return 0, err
		}
		if whole[i] {
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
	for i, ms := range found {
		if whole[i] {
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

// coversAll reports whether deleting [mint, maxt] leaves ms without a
// sample, so that the series itself goes. minT and maxT are exact only for
// samples written since start-up (older ones are widened to whole days):
// when they do not settle it, the samples in memory and the chunks on disk
// are looked at, and a recorded day outside the range is taken to hold
// samples. The caller holds sealMu and appendMu, so nothing moves meanwhile.
func (s *shard) coversAll(ms *memSeries, mint, maxt int64) (bool, error) {
	if mint <= ms.minT.Load() && maxt >= ms.maxT.Load() {
		return true, nil
	}
	ms.mu.Lock()
	outside := ms.memOutsideLocked(mint, maxt) || ms.mu.hist.outside(mint, maxt)
	minDay, maxDay := ms.mu.minDay, ms.mu.maxDay
	hasHist := ms.mu.hist != nil
	ms.mu.Unlock()
	switch {
	case outside:
		return false, nil
	case minDay > maxDay:
		return true, nil // no day recorded: nothing on disk
	case minDay < dayOf(mint) || maxDay > dayOf(maxt):
		return false, nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: chunkDayPrefix(minDay), UpperBound: prefixEnd(chunkDayPrefix(maxDay))})
	if err != nil {
		return false, err
	}
	defer it.Close()
	for day := minDay; ; day++ {
		prefix := chunkSeriesPrefix(day, ms.tenant, ms.ref)
		for valid := it.SeekGE(prefix); valid && bytes.HasPrefix(it.Key(), prefix); valid = it.Next() {
			v, err := it.ValueAndErr()
			if err != nil {
				return false, err
			}
			_, cmin, cmax, err := chunkenc.DenseBounds(v)
			if err != nil {
				return false, fmt.Errorf("%w: chunk %x: %v", ErrCorrupt, it.Key(), err)
			}
			if cmin < mint || cmax > maxt {
				return false, nil
			}
		}
		if day >= maxDay {
			break
		}
	}
	if err := it.Error(); err != nil {
		return false, err
	}
	if hasHist {
		out, err := s.histOutsideOnDisk(ms, mint, maxt, minDay, maxDay)
		return !out, err
	}
	return true, nil
}

// memOutsideLocked reports whether a sample in memory lies outside
// [mint, maxt].
func (ms *memSeries) memOutsideLocked(mint, maxt int64) bool {
	out := func(t int64) bool { return t < mint || t > maxt }
	if h := &ms.mu.head; h.NumSamples() > 0 && (out(h.MinTime()) || out(h.MaxTime())) {
		return true
	}
	if ooo := ms.oooLocked(); len(ooo) > 0 && (out(ooo[0].T) || out(ooo[len(ooo)-1].T)) {
		return true
	}
	for _, fc := range ms.frozenLocked() {
		if n := len(fc.ooo); n > 0 && (out(fc.ooo[0].T) || out(fc.ooo[n-1].T)) {
			return true
		}
		it := chunkenc.NewXORIterator(fc.xor, fc.n)
		for it.Next() {
			if t, _ := it.At(); out(t) {
				return true
			}
		}
		if it.Err() != nil {
			return true // keep the series: deleting it is not undone
		}
	}
	return false
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
		ms.state.setGone(true)
		ms.mu.head, ms.mu.rare = chunkenc.XORChunk{}, nil
		ms.mu.hist = nil
	} else {
		err := ms.filterMemLocked(mint, maxt)
		if err == nil && ms.mu.hist != nil {
			err = ms.mu.hist.filter(mint, maxt)
		}
		if err != nil {
			ms.mu.Unlock()
			return err
		}
	}
	hasHist := ms.mu.hist != nil
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
			hprefix := histSeriesPrefix(day, ms.tenant, ms.ref)
			if whole || (mint <= dayStart(day) && maxt >= dayEnd(day)) {
				_ = pb.DeleteRange(prefix, prefixEnd(prefix), nil)
				_ = pb.DeleteRange(hprefix, prefixEnd(hprefix), nil)
				if whole {
					_ = pb.Delete(seriesDayKey(nil, day, ms.tenant, ms.ref), nil)
				}
			} else {
				if err := s.rewriteWithout(pb, day, ms, mint, maxt); err != nil {
					return err
				}
				if hasHist {
					if err := s.rewriteHistWithout(pb, day, ms, mint, maxt); err != nil {
						return err
					}
				}
			}
			if day == math.MaxInt32 {
				break
			}
		}
	}
	if err := s.deleteTierData(pb, ms, mint, maxt, whole); err != nil {
		return fmt.Errorf("delete tier buckets of series %d: %w", ms.ref, err)
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
	ms.setRareLocked(slices.DeleteFunc(ms.oooLocked(), func(s Sample) bool { return !keep(s.T) }), ms.frozenLocked())
	if h := &ms.mu.head; h.NumSamples() > 0 && h.MaxTime() >= mint && h.MinTime() <= maxt {
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
	for i, fc := range ms.frozenLocked() {
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
		ms.frozenLocked()[i] = nf
	}
	return nil
}
