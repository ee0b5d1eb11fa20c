package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/emsdb/tsdb/storage/chunkenc"
	"github.com/emsdb/tsdb/storage/internal/invariants"
	"github.com/emsdb/tsdb/storage/wal"
)

// maxDiskChunkSamples caps the samples of one sealed chunk; merging
// out-of-order data into a chunk may grow it up to this size before it is
// split.
const maxDiskChunkSamples = 2048

// sealLoop writes frozen chunks to Pebble as they are queued.
func (s *shard) sealLoop() {
	defer s.wg.Done()
	for {
		select {
		case ms := <-s.sealCh:
			list := []*memSeries{ms}
		drain:
			for len(list) < 512 {
				select {
				case ms := <-s.sealCh:
					list = append(list, ms)
				default:
					break drain
				}
			}
			// Sealing fills Pebble's memtables, which cannot be flushed
			// while the disk takes no writes: wait, rather than grow them
			// until Pebble stalls. The log keeps the samples meanwhile.
			if s.h.waitWritable(s.quit) != nil {
				return
			}
			if err := s.seal(list); err != nil {
				s.log.Error("seal chunks", "err", err)
			}
		case <-s.quit:
			return
		}
	}
}

// seal writes the frozen chunks of list to Pebble in one batch and then
// drops them from memory.
func (s *shard) seal(list []*memSeries) error {
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	pb := s.db.NewBatch()
	defer pb.Close()
	type done struct {
		ms       *memSeries
		n        int
		diskMaxT int64
		nh       int   // frozen histogram chunks sealed
		hMaxT    int64 // the lane's diskMaxT after them
	}
	dones := make([]done, 0, len(list))
	var ts []int64
	var vs []float64
	// NB: a series can be in list twice: maintain(true) seals a series
	// still waiting in sealCh and clears its queued flag, so a write may
	// queue it again. Sealing it twice would drop twice the frozen chunks
	// it sealed, and lose the ones frozen meanwhile.
	seen := make(map[*memSeries]struct{}, len(list))
	for _, ms := range list {
		if _, dup := seen[ms]; dup {
			continue
		}
		seen[ms] = struct{}{}
		ms.mu.Lock()
		fz := ms.frozenLocked()
		ms.mu.queued = false
		deleted := ms.mu.deleted
		diskMaxT := ms.mu.diskMaxT
		var fh []*frozenHist
		hMaxT := int64(math.MinInt64)
		if l := ms.mu.hist; l != nil {
			fh, hMaxT = l.frozen, l.diskMaxT
		}
		ms.mu.Unlock()
		if len(fz) == 0 && len(fh) == 0 {
			continue
		}
		d := done{ms: ms, n: len(fz), diskMaxT: diskMaxT, nh: len(fh), hMaxT: hMaxT}
		if !deleted && len(fh) > 0 {
			maxT, err := s.sealHistograms(pb, ms, fh, hMaxT)
			if err != nil {
				return fmt.Errorf("seal histograms of series %d: %w", ms.ref, err)
			}
			d.hMaxT = max(hMaxT, maxT)
		}
		if !deleted && len(fz) > 0 {
			var err error
			ts, vs, err = mergeFrozen(fz, ts[:0], vs[:0])
			if err != nil {
				return fmt.Errorf("merge frozen chunks of series %d: %w", ms.ref, err)
			}
			if len(ts) > 0 {
				if err := s.writeSamples(pb, ms, ts, vs, diskMaxT); err != nil {
					return fmt.Errorf("seal series %d: %w", ms.ref, err)
				}
				d.diskMaxT = max(diskMaxT, ts[len(ts)-1])
			}
		}
		dones = append(dones, d)
	}
	if !pb.Empty() {
		if err := pb.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("commit sealed chunks: %w", err)
		}
		s.chunkGen.Add(1) // before memory lets go of the chunks
	}
	var bug error
	for _, d := range dones {
		d.ms.mu.Lock()
		fz := d.ms.frozenLocked()
		if len(fz) < d.n {
			// Only seal (under sealMu) and deletes (ditto) take frozen
			// chunks away.
			bug = invariants.Failf("series %d has %d frozen chunks, %d were sealed", d.ms.ref, len(fz), d.n)
			d.ms.mu.Unlock()
			continue
		}
		var rest []*frozenChunk
		if len(fz) > d.n {
			rest = slices.Clone(fz[d.n:])
		}
		d.ms.setRareLocked(d.ms.oooLocked(), rest)
		d.ms.mu.diskMaxT = d.diskMaxT
		if l := d.ms.mu.hist; l != nil && d.nh > 0 {
			if len(l.frozen) < d.nh {
				bug = invariants.Failf("series %d has %d frozen histogram chunks, %d were sealed", d.ms.ref, len(l.frozen), d.nh)
			} else {
				l.frozen = slices.Clone(l.frozen[d.nh:])
				l.diskMaxT = d.hMaxT
			}
		}
		d.ms.mu.Unlock()
		s.stats.chunksSealed.Add(1)
	}
	return bug
}

// mergeFrozen flattens frozen chunks into sorted unique samples, the most
// recent write winning on equal timestamps.
func mergeFrozen(fz []*frozenChunk, ts []int64, vs []float64) ([]int64, []float64, error) {
	if len(fz) == 1 && len(fz[0].ooo) == 0 && fz[0].n > 0 {
		// The common case, one chunk written in order: nothing to merge
		// (the merge keeps a lone iterator's samples as they are).
		it := chunkenc.NewXORIterator(fz[0].xor, fz[0].n).(chunkenc.RangeAppender)
		return it.AppendRange(math.MinInt64, math.MaxInt64, ts, vs)
	}
	its := make([]chunkenc.Iterator, 0, 2*len(fz))
	for i := len(fz) - 1; i >= 0; i-- {
		if len(fz[i].ooo) > 0 {
			its = append(its, newSampleIter(fz[i].ooo))
		}
		if fz[i].n > 0 {
			its = append(its, chunkenc.NewXORIterator(fz[i].xor, fz[i].n))
		}
	}
	it := newMergeIter(its)
	for it.Next() {
		t, v := it.At()
		ts = append(ts, t)
		vs = append(vs, v)
	}
	return ts, vs, it.Err()
}

// writeSamples stores sorted unique samples of ms into pb, merging them
// with any chunks already on disk that overlap them (new samples win);
// sealMu held.
func (s *shard) writeSamples(pb *pebble.Batch, ms *memSeries, ts []int64, vs []float64, diskMaxT int64) error {
	cutoff := s.rawCutoffOf(ms.tenant)
	var key []byte
	for i := 0; i < len(ts); {
		day := dayOf(ts[i])
		j := i + 1
		for j < len(ts) && dayOf(ts[j]) == day {
			j++
		}
		dts, dvs := ts[i:j], vs[i:j]
		i = j
		if dayEnd(day) < cutoff {
			continue // already past retention
		}
		if dts[0] <= diskMaxT {
			var err error
			dts, dvs, err = s.mergeWithDisk(pb, day, ms, dts, dvs)
			if err != nil {
				return err
			}
		}
		for len(dts) > 0 {
			n := min(len(dts), maxDiskChunkSamples)
			if rest := len(dts) - n; rest > 0 && rest < maxDiskChunkSamples/4 {
				n = len(dts) / 2 // avoid a tiny tail chunk
			}
			s.sealBuf = chunkenc.EncodeDense(s.sealBuf[:0], dts[:n], dvs[:n])
			enc := s.sealBuf // NB: pb.Set copies it
			if invariants.Enabled {
				checkRoundTrip(enc, dts[:n], dvs[:n])
			}
			key = chunkKey(key[:0], day, ms.tenant, ms.ref, dts[n-1])
			if err := pb.Set(key, enc, nil); err != nil {
				return err
			}
			s.stats.bytesSealed.Add(int64(len(enc)))
			s.stats.samplesSealed.Add(int64(n))
			s.markDirty(pb, dts[0], dts[n-1])
			dts, dvs = dts[n:], dvs[n:]
		}
	}
	return nil
}

// checkRoundTrip fails unless enc decodes to exactly ts and vs, bit for
// bit: a chunk is written once and read for as long as it is kept.
func checkRoundTrip(enc []byte, ts []int64, vs []float64) {
	gts, gvs, err := chunkenc.DecodeDense(enc, nil, nil)
	if err != nil || len(gts) != len(ts) {
		_ = invariants.Failf("sealed chunk of %d samples decodes to %d: %v", len(ts), len(gts), err)
		return
	}
	for i := range ts {
		if gts[i] != ts[i] || math.Float64bits(gvs[i]) != math.Float64bits(vs[i]) {
			_ = invariants.Failf("sealed chunk sample %d: (%d, %x) decodes as (%d, %x)",
				i, ts[i], math.Float64bits(vs[i]), gts[i], math.Float64bits(gvs[i]))
			return
		}
	}
}

// mergeWithDisk reads the chunks of ms in day that overlap [ts[0],
// ts[last]], deletes them in pb and returns the union, ts/vs winning.
func (s *shard) mergeWithDisk(pb *pebble.Batch, day int32, ms *memSeries, ts []int64, vs []float64) ([]int64, []float64, error) {
	old, keys, err := s.readChunks(day, ms, ts[0], ts[len(ts)-1])
	if err != nil || len(old) == 0 {
		return ts, vs, err
	}
	its := []chunkenc.Iterator{newSliceIter(ts, vs)}
	for _, c := range old {
		its = append(its, chunkenc.NewDenseIterator(c))
	}
	for _, k := range keys {
		if err := pb.Delete(k, nil); err != nil {
			return nil, nil, err
		}
	}
	var mts []int64
	var mvs []float64
	it := newMergeIter(its)
	for it.Next() {
		t, v := it.At()
		mts = append(mts, t)
		mvs = append(mvs, v)
	}
	return mts, mvs, it.Err()
}

// readChunks returns the sealed chunks (and their keys) of ms in day that
// overlap [mint, maxt], in time order.
func (s *shard) readChunks(day int32, ms *memSeries, mint, maxt int64) (chunks, keys [][]byte, err error) {
	prefix := chunkSeriesPrefix(day, ms.tenant, ms.ref)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, nil, err
	}
	defer it.Close()
	for valid := it.SeekGE(chunkKey(nil, day, ms.tenant, ms.ref, mint)); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, nil, err
		}
		_, cmin, _, err := chunkenc.DenseBounds(v)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: chunk %x: %v", ErrCorrupt, it.Key(), err)
		}
		if cmin > maxt {
			break
		}
		chunks = append(chunks, slices.Clone(v))
		keys = append(keys, slices.Clone(it.Key()))
	}
	return chunks, keys, it.Error()
}

// maintainLoop seals heads that have been in memory too long and truncates
// the WAL behind the oldest unsealed sample.
func (s *shard) maintainLoop() {
	defer s.wg.Done()
	t := time.NewTicker(maintainInterval(s.opts))
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.maintainKick:
		case <-s.quit:
			return
		}
		// The DB logs once that the disk takes no writes: not here
		// every tick.
		if err := s.maintain(false); err != nil && !errors.Is(err, ErrNotWritable) {
			s.log.Error("maintain shard", "err", err)
		}
	}
}

func maintainInterval(o *Options) time.Duration {
	return min(time.Minute, max(o.MaxHeadAge/4, time.Second))
}

// sealNow seals frozen series synchronously, 512 to a batch.
func (s *shard) sealNow(series []*memSeries) error {
	for i := 0; i < len(series); i += 512 {
		if err := s.seal(series[i:min(i+512, len(series))]); err != nil {
			return err
		}
	}
	return nil
}

// maintain freezes old heads (all heads when flushAll) and truncates the
// WAL segments no unsealed sample needs any more. It does nothing while
// the disk takes no writes, and returns why.
func (s *shard) maintain(flushAll bool) error {
	s.maintainMu.Lock()
	defer s.maintainMu.Unlock()
	if err := s.h.err(); err != nil {
		return err
	}
	now := s.opts.Now().UnixMilli()
	maxAge := s.opts.MaxHeadAge.Milliseconds()
	// Every append that got a position in a segment before barrier has
	// also been applied to memory by the time we hold appendMu.
	s.appendMu.Lock()
	barrier, size := s.wal.Current()
	if barrier != s.segSeen {
		s.segSeen, s.segSince = barrier, now
	}
	// NB: a segment is also closed once it is half a MaxHeadAge old, so
	// that the log of a shard that takes few samples (a segment of 64 MiB
	// held weeks of them) keeps about the last MaxHeadAge and a half:
	// its heads are sealed by MaxHeadAge at the latest.
	if flushAll || (size > 0 && now-s.segSince >= maxAge/2) {
		var err error
		if barrier, err = s.wal.Rotate(); err != nil {
			s.appendMu.Unlock()
			return fmt.Errorf("rotate wal: %w", err)
		}
		s.segSeen, s.segSince = barrier, now
	}
	stale := 0
	if !flushAll {
		stale = s.leftBehindLocked()
	}
	s.appendMu.Unlock()
	if flushAll {
		// The log truncates only below the segment its flusher has
		// reached: wait for it to start barrier, or the segments before
		// would stay until the next flush, and a start after Close
		// would replay samples already sealed.
		if err := s.wal.Wait(context.Background(), wal.Pos{Segment: barrier}); err != nil {
			return fmt.Errorf("rotate wal: %w", err)
		}
	}

	minSeg := barrier
	var toSeal, behind []*memSeries
	for _, ms := range s.allSeries() {
		ms.mu.Lock()
		if ms.oldestSegLocked() < stale {
			// Sealed here and now, so that this pass can truncate.
			ms.freezeLocked()
			ms.freezeHistLocked()
			behind = append(behind, ms)
			ms.mu.Unlock()
			continue
		}
		if has, since := ms.hasHeadLocked(); has {
			if flushAll || now-since >= maxAge {
				ms.freezeLocked()
				ms.freezeHistLocked()
				if !ms.mu.queued && !flushAll {
					ms.mu.queued = true
					toSeal = append(toSeal, ms)
				}
			}
		}
		if flushAll && (len(ms.frozenLocked()) > 0 || (ms.mu.hist != nil && len(ms.mu.hist.frozen) > 0)) {
			toSeal = append(toSeal, ms)
		}
		minSeg = min(minSeg, ms.oldestSegLocked())
		ms.mu.Unlock()
	}
	if err := s.sealNow(behind); err != nil {
		return err
	}
	if flushAll {
		// Seal synchronously so that everything below barrier is on disk.
		if err := s.sealNow(toSeal); err != nil {
			return err
		}
		minSeg = barrier
	} else {
		for _, ms := range toSeal {
			s.queueSeal(ms)
		}
	}
	if minSeg <= s.truncatedTo {
		return nil
	}
	// Pebble has no log of its own: flush its memtables to tables before
	// dropping the segments that also hold what they contain.
	if err := s.flushPebble(); err != nil {
		return fmt.Errorf("flush pebble: %w", err)
	}
	to, err := s.wal.Truncate(minSeg)
	if err != nil {
		return fmt.Errorf("truncate wal: %w", err)
	}
	s.truncatedTo = to
	s.appendMu.Lock()
	s.segStarts = slices.DeleteFunc(s.segStarts, func(st segStart) bool { return st.seg < to })
	s.appendMu.Unlock()
	return nil
}
