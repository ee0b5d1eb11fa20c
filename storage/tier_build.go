package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Building the tiers. Each shard builds its own, a few days at a time,
// from the oldest day not yet built up to the last day that is sealed: a
// day is built once its block's last millisecond (the first of the next
// day) is older than MaxHeadAge, after which every sample of it has left
// memory. Progress is one key per tier (0x0D res -> last day built),
// committed with the day's last blocks; Pebble flushes memtables in
// order, so after a crash either both are on disk or the days are built
// again, and building a day again writes the same keys with the same
// values. A write that lands in a day already built (backfill, a delete)
// marks the day dirty (0x0E) in the same batch as its chunks; dirty days
// are built again, and until then queries compute that day's buckets from
// the raw samples.

// tierSpanDays is how many days one pass reads per series.
const tierSpanDays = 8

// tierGroup is how many series are built, and committed, under one hold
// of sealMu.
const tierGroup = 256

// tierState is a shard's progress in building its tiers.
type tierState struct {
	// buildMu serialises builds (the loop, BuildTiers).
	buildMu sync.Mutex
	// mark is the newest day any build has started to read: a seal or a
	// delete in a day at or before it marks the day dirty.
	mark atomic.Int32
	gen  atomic.Uint64 // generations of dirty marks

	mu struct {
		sync.Mutex
		built []int32          // per tier: every day up to it is built
		dirty map[int32]uint64 // days built whose raw data changed since
		// Per tier, the raw samples and the buckets of the days built
		// (a rebuild of a dirty day is not counted): how many samples a
		// bucket stands for, which tells a query whether the tier is
		// worth reading (TierInfo.SamplesPerBucket).
		samples, buckets []uint64
	}
}

// tierBuiltVersion is the version byte of the progress value: 2 for
// blocks of periods of blockDays days. A progress value of 4 bytes is
// version 1 (blocks of one day), which Open drops and builds again.
const tierBuiltVersion = 2

// tierBuiltValue is the value of a tier's progress key.
func tierBuiltValue(day int32, samples, buckets uint64) []byte {
	v := make([]byte, 5, 5+2*binary.MaxVarintLen64)
	putDay(v, day)
	v[4] = tierBuiltVersion
	v = binary.AppendUvarint(v, samples)
	return binary.AppendUvarint(v, buckets)
}

// builtDay returns the last day built of tier i.
func (t *tierState) builtDay(i int) int32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.built[i]
}

// loadTiers restores the tiers' progress, dirty days and the series'
// tier ranges.
func (s *shard) loadTiers() error {
	t := &s.tiers
	t.mu.built = make([]int32, len(s.opts.Tiers))
	t.mu.samples = make([]uint64, len(s.opts.Tiers))
	t.mu.buckets = make([]uint64, len(s.opts.Tiers))
	t.mu.dirty = map[int32]uint64{}
	for i := range t.mu.built {
		t.mu.built[i] = math.MinInt32
	}
	t.mark.Store(math.MinInt32)
	t.gen.Store(uint64(s.opts.Now().UnixNano()))
	oldFormat, err := s.tierBlocksWithoutProgress()
	if err != nil {
		return err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixTierRange}, UpperBound: []byte{prefixTierDirty + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		switch k[0] {
		case prefixTierRange:
			if len(k) != seriesKeyLen || len(v) != 8 {
				return fmt.Errorf("%w: tier range key %x", ErrCorrupt, k)
			}
			tid, ref := binary.BigEndian.Uint32(k[1:]), binary.BigEndian.Uint64(k[5:])
			if ti := s.tenantByID[tid]; ti != nil {
				if ms := ti.get(ref); ms != nil {
					ms.mu.tierMinDay, ms.mu.tierMaxDay = getDay(v), getDay(v[4:])
				}
			}
		case prefixTierBuilt:
			if len(k) != 5 || len(v) < 4 {
				return fmt.Errorf("%w: tier progress key %x", ErrCorrupt, k)
			}
			if len(v) == 4 {
				oldFormat = true
				continue
			}
			r := recReader{b: v[5:]}
			samples, buckets := r.uvarint(), r.uvarint()
			if v[4] != tierBuiltVersion || r.err != nil {
				return fmt.Errorf("%w: tier progress key %x: value %x", ErrCorrupt, k, v)
			}
			res := int64(binary.BigEndian.Uint32(k[1:])) * 1000
			if i := s.opts.tierIndex(time.Duration(res) * time.Millisecond); i >= 0 {
				t.mu.built[i] = getDay(v)
				t.mu.samples[i], t.mu.buckets[i] = samples, buckets
				t.mark.Store(max(t.mark.Load(), getDay(v)))
			}
		case prefixTierDirty:
			if len(k) != 5 || len(v) != 8 {
				return fmt.Errorf("%w: tier dirty key %x", ErrCorrupt, k)
			}
			t.mu.dirty[getDay(k[1:])] = binary.BigEndian.Uint64(v)
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if oldFormat {
		return s.dropTiersLocked()
	}
	return nil
}

// tierBlocksWithoutProgress reports whether tier blocks are on disk but no
// tier records progress in the current format: blocks of format 1 (one
// day each), or blocks of a first build cut short. Either way they are
// dropped and built again.
func (s *shard) tierBlocksWithoutProgress() (bool, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixTierBuilt}, UpperBound: []byte{prefixTierBuilt + 1}})
	if err != nil {
		return false, err
	}
	for valid := it.First(); valid; valid = it.Next() {
		if len(it.Value()) > 4 {
			return false, it.Close() // a current progress key: the blocks are current
		}
	}
	if err := it.Close(); err != nil {
		return false, err
	}
	if it, err = s.db.NewIter(allTierBlocks); err != nil {
		return false, err
	}
	found := it.First()
	return found, it.Close()
}

// dropTiersLocked deletes every tier block, tier range and tier progress
// of the shard, and forgets them in memory, so that the tiers are built
// again from the raw samples (which raw retention keeps until a tier has
// built them). It is how Open handles blocks of format 1: NB buckets of
// days whose raw samples are gone are lost. It runs at Open, before any
// other use of the shard.
func (s *shard) dropTiersLocked() error {
	s.log.Warn("tier blocks of an older format: dropping every tier, to build again from the raw samples (days whose raw samples are gone are lost)")
	pb := s.db.NewBatch()
	defer pb.Close()
	_ = pb.DeleteRange([]byte{prefixTier}, []byte{prefixTierDirty + 1}, nil)
	if err := pb.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("drop tiers of format 1: %w", err)
	}
	// Pebble keeps no log: flush, so that the format-1 blocks do not come
	// back after a crash with no progress to say they are old.
	if err := s.flushPebble(); err != nil {
		return fmt.Errorf("drop tiers of format 1: %w", err)
	}
	t := &s.tiers
	for i := range t.mu.built {
		t.mu.built[i], t.mu.samples[i], t.mu.buckets[i] = math.MinInt32, 0, 0
	}
	clear(t.mu.dirty)
	t.mark.Store(math.MinInt32)
	for _, ms := range s.allSeries() {
		ms.mu.Lock()
		ms.mu.tierMinDay, ms.mu.tierMaxDay = math.MaxInt32, math.MinInt32
		ms.mu.Unlock()
	}
	return nil
}

// markDirty records in pb that raw samples in [mint, maxt] changed, for the days whose blocks are built or being built.
// The caller holds sealMu and commits pb.
func (s *shard) markDirty(pb *pebble.Batch, mint, maxt int64) {
	if len(s.opts.Tiers) == 0 {
		return
	}
	mark := s.tiers.mark.Load()
	first, last := tierDayOf(mint), tierDayOf(maxt)
	if first > mark {
		return
	}
	last = min(last, mark)
	gen := s.tiers.gen.Add(1)
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], gen)
	s.tiers.mu.Lock()
	defer s.tiers.mu.Unlock()
	for d := first; d <= last && d >= first; d++ {
		_ = pb.Set(tierDirtyKey(d), v[:], nil)
		s.tiers.mu.dirty[d] = gen
	}
}

// markWritten marks dirty in memory the built days samples land in, so
// that queries compute those days from the raw samples until they are
// built again (the seal of the samples marks them on disk).
func (s *shard) markWritten(samples []Sample) {
	if len(s.opts.Tiers) == 0 || len(samples) == 0 {
		return
	}
	lo, hi := samples[0].T, samples[0].T
	for _, smp := range samples[1:] {
		lo, hi = min(lo, smp.T), max(hi, smp.T)
	}
	mark := s.tiers.mark.Load()
	first, last := tierDayOf(lo), min(tierDayOf(hi), mark)
	if first > mark {
		return
	}
	gen := s.tiers.gen.Add(1)
	s.tiers.mu.Lock()
	defer s.tiers.mu.Unlock()
	for d := first; d <= last && d >= first; d++ {
		s.tiers.mu.dirty[d] = gen
	}
}

// BuildTiers builds every tier of every shard up to the last sealed day,
// and again every dirty day, and returns when done or when ctx is. The DB
// does this in the background every few minutes; tests and benchmarks
// call it to have it done now.
func (db *DB) BuildTiers(ctx context.Context) error {
	if db.closed.Load() {
		return ErrClosed
	}
	var errs []error
	for _, sh := range db.shards {
		if err := sh.buildTiers(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shard %d: %w", sh.id, err))
		}
	}
	return errors.Join(errs...)
}

// tierLoop builds the tiers every few minutes.
func (db *DB) tierLoop() {
	defer db.wg.Done()
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-db.quit; cancel() }()
	for {
		select {
		case <-t.C:
			if err := db.BuildTiers(ctx); err != nil && !errors.Is(err, ErrNotWritable) && ctx.Err() == nil {
				db.opts.Logger.Error("build tiers", "err", err)
			}
		case <-db.quit:
			return
		}
	}
}

// lastSealedDay is the newest day whose block can be built.
func (s *shard) lastSealedDay() int32 {
	return dayOf(s.opts.Now().Add(-s.opts.MaxHeadAge).UnixMilli()) - 1
}

func (s *shard) buildTiers(ctx context.Context) error {
	if len(s.opts.Tiers) == 0 {
		return nil
	}
	if err := s.h.err(); err != nil {
		return err
	}
	t := &s.tiers
	t.buildMu.Lock()
	defer t.buildMu.Unlock()
	last := s.lastSealedDay()
	// The first block any series needs: the day before its first raw day
	// (whose first millisecond ends that day's last bucket).
	first := int32(math.MaxInt32)
	for _, ms := range s.allSeries() {
		ms.mu.Lock()
		if ms.mu.minDay <= ms.mu.maxDay {
			first = min(first, ms.mu.minDay-1)
		}
		ms.mu.Unlock()
	}
	if first == math.MaxInt32 {
		return nil
	}
	t.mu.Lock()
	built := slices.Clone(t.mu.built)
	t.mu.Unlock()
	from := int32(math.MaxInt32)
	for _, b := range built {
		if b == math.MinInt32 {
			from = min(from, first)
		} else {
			from = min(from, max(b+1, first))
		}
	}
	// Spans end at multiples of tierSpanDays, so that a block of up to
	// tierSpanDays days is most often written whole, without reading it.
	for d := from; d <= last && d >= from; {
		to := min(last, periodOf(d, tierSpanDays)+tierSpanDays-1)
		if err := s.buildSpan(ctx, d, to, false); err != nil {
			return err
		}
		if to == math.MaxInt32 {
			break
		}
		d = to + 1
	}
	return s.rebuildDirty(ctx)
}

// rebuildDirty builds again the dirty days, and clears each one's mark
// if no new write marked it meanwhile.
func (s *shard) rebuildDirty(ctx context.Context) error {
	t := &s.tiers
	t.mu.Lock()
	dirty := make(map[int32]uint64, len(t.mu.dirty))
	for d, g := range t.mu.dirty {
		dirty[d] = g
	}
	t.mu.Unlock()
	days := make([]int32, 0, len(dirty))
	for d := range dirty {
		days = append(days, d)
	}
	slices.Sort(days)
	for _, d := range days {
		if err := s.buildSpan(ctx, d, d, true); err != nil {
			return err
		}
		s.sealMu.Lock()
		t.mu.Lock()
		var err error
		if g, ok := t.mu.dirty[d]; ok && g == dirty[d] {
			delete(t.mu.dirty, d)
			err = s.db.Delete(tierDirtyKey(d), pebble.NoSync)
		}
		t.mu.Unlock()
		s.sealMu.Unlock()
		if err != nil {
			return fmt.Errorf("clear dirty day %d: %w", d, err)
		}
	}
	return nil
}

// buildSpan builds the blocks of days [from, to] of every tier that has
// not built them yet (every tier that has, when again), then records the
// progress.
func (s *shard) buildSpan(ctx context.Context, from, to int32, again bool) error {
	t := &s.tiers
	t.mu.Lock()
	built := slices.Clone(t.mu.built)
	t.mu.Unlock()
	var todo []int // tiers to build
	for i, b := range built {
		if (again && b >= from) || (!again && b < to) {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	if to > t.mark.Load() {
		t.mark.Store(to) // before reading: later seals mark the days dirty
	}
	lo, hi := dayStart(from)+1, dayStart(to)+dayMillis
	var list []*memSeries
	for _, ms := range s.allSeries() {
		if ms.maxT.Load() >= lo && ms.minT.Load() <= hi {
			list = append(list, ms)
		}
	}
	q := &querier{iters: map[*shard]*chunkReader{}}
	defer func() {
		for _, r := range q.iters {
			_ = r.it.Close()
		}
	}()
	b := &spanBuilder{s: s, q: q, from: from, to: to, again: again, built: built, todo: todo,
		samples: make([]uint64, len(todo)), buckets: make([]uint64, len(todo))}
	for i := 0; i < len(list); i += tierGroup {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := b.group(list[i:min(i+tierGroup, len(list))]); err != nil {
			return err
		}
	}
	if again {
		return nil
	}
	// The progress, in a batch of its own after the blocks.
	pb := s.db.NewBatch()
	defer pb.Close()
	t.mu.Lock()
	samples, buckets := slices.Clone(t.mu.samples), slices.Clone(t.mu.buckets)
	t.mu.Unlock()
	for j, i := range todo {
		samples[i] += b.samples[j]
		buckets[i] += b.buckets[j]
		_ = pb.Set(tierBuiltKey(s.opts.Tiers[i].Resolution.Milliseconds()), tierBuiltValue(to, samples[i], buckets[i]), nil)
	}
	if err := pb.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("commit tier progress: %w", err)
	}
	t.mu.Lock()
	for _, i := range todo {
		t.mu.built[i] = max(t.mu.built[i], to)
		t.mu.samples[i], t.mu.buckets[i] = samples[i], buckets[i]
	}
	t.mu.Unlock()
	return nil
}

// spanBuilder builds the blocks of a span of days, a group of series at a
// time.
type spanBuilder struct {
	s        *shard
	q        *querier
	from, to int32
	again    bool
	built    []int32
	todo     []int
	aggs     []bucketAgg
	key, val []byte
	// samples and buckets count, per tier of todo, the raw samples
	// aggregated and the buckets written.
	samples, buckets []uint64
}

// group builds the blocks of list and commits them, under sealMu so that
// no delete or seal of these series interleaves.
func (b *spanBuilder) group(list []*memSeries) error {
	s := b.s
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	pb := s.db.NewBatch()
	defer pb.Close()
	if b.aggs == nil {
		b.aggs = make([]bucketAgg, len(b.todo))
		for j, i := range b.todo {
			b.aggs[j].res = s.opts.Tiers[i].Resolution.Milliseconds()
		}
	}
	lo, hi := dayStart(b.from)+1, dayStart(b.to)+dayMillis
	for _, ms := range list {
		ms.mu.Lock()
		deleted, rawMin := ms.mu.deleted, ms.mu.minDay
		tmin, tmax := ms.mu.tierMinDay, ms.mu.tierMaxDay
		ms.mu.Unlock()
		if deleted {
			continue
		}
		it, err := s.iterator(b.q, ms, lo, hi, nil)
		if err != nil {
			return fmt.Errorf("read series %d: %w", ms.ref, err)
		}
		hit, _ := it.(HistogramIterator)
		for it.Next() {
			if hit != nil && hit.AtHistogram() != nil {
				continue // native histograms stay raw-only
			}
			t, v := it.At()
			for j := range b.aggs {
				b.aggs[j].add(t, v)
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("read series %d: %w", ms.ref, err)
		}
		nmin, nmax := tmin, tmax
		for j, i := range b.todo {
			res := b.aggs[j].res
			bs := b.aggs[j].buckets()
			// The days of tier i this span builds.
			lo, hi := b.from, b.to
			if !b.again {
				lo = max(lo, b.built[i]+1)
			}
			n := blockDays(res)
			for len(bs) > 0 {
				p := periodOf(tierDayOf(bs[0].End), n)
				k := 1
				for k < len(bs) && periodOf(tierDayOf(bs[k].End), n) == p {
					k++
				}
				pbs := bs[:k]
				bs = bs[k:]
				// Only the buckets of the days built.
				pbs = slices.DeleteFunc(pbs, func(bk Bucket) bool { d := tierDayOf(bk.End); return d < lo || d > hi })
				if len(pbs) == 0 {
					continue
				}
				if !b.again {
					b.buckets[j] += uint64(len(pbs))
					for _, bk := range pbs {
						b.samples[j] += uint64(bk.Count)
					}
				}
				b.key = tierKey(b.key[:0], res, p, ms.tenant, ms.ref)
				// The block's other days, and the days whose raw samples
				// are gone (or never were: their buckets come from the
				// first millisecond of the next day only, so the block
				// built when it was whole is kept), come from the block
				// stored.
				if p < lo || p+n-1 > hi || p < rawMin {
					var err error
					if pbs, err = s.mergeExistingBlock(b.key, p, pbs, lo, hi, rawMin); err != nil {
						return err
					}
				}
				b.val = encodeTierBlock(b.val[:0], p, res, pbs)
				if err := pb.Set(b.key, b.val, nil); err != nil {
					return err
				}
				nmin, nmax = min(nmin, tierDayOf(pbs[0].End)), max(nmax, tierDayOf(pbs[len(pbs)-1].End))
			}
		}
		if nmin != tmin || nmax != tmax {
			_ = pb.Set(tierRangeKey(ms.tenant, ms.ref), appendDays(nil, nmin, nmax), nil)
			ms.mu.Lock()
			ms.mu.tierMinDay, ms.mu.tierMaxDay = min(ms.mu.tierMinDay, nmin), max(ms.mu.tierMaxDay, nmax)
			ms.mu.Unlock()
		}
	}
	if pb.Empty() {
		return nil
	}
	if err := pb.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("commit tier blocks: %w", err)
	}
	return nil
}

// mergeExistingBlock returns the buckets of bs (new buckets of days in
// [lo, hi] of the period starting at day p) merged with the block stored
// at key: the stored buckets of days outside [lo, hi] are kept, and so
// are those of days before rawMin (whose raw samples are gone), which
// win over new buckets of the same end; the others are replaced.
func (s *shard) mergeExistingBlock(key []byte, p int32, bs []Bucket, lo, hi, rawMin int32) ([]Bucket, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return bs, nil
	}
	if err != nil {
		return nil, err
	}
	old, err := decodeTierBlock(nil, p, v)
	closer.Close()
	if err != nil {
		return nil, err
	}
	old = slices.DeleteFunc(old, func(b Bucket) bool {
		d := tierDayOf(b.End)
		return d >= lo && d <= hi && d >= rawMin
	})
	out := make([]Bucket, 0, len(old)+len(bs))
	i, j := 0, 0
	for i < len(old) || j < len(bs) {
		switch {
		case j == len(bs) || (i < len(old) && old[i].End < bs[j].End):
			out = append(out, old[i])
			i++
		case i == len(old) || bs[j].End < old[i].End:
			out = append(out, bs[j])
			j++
		default:
			out = append(out, old[i])
			i, j = i+1, j+1
		}
	}
	return out, nil
}

// deleteTierData deletes in pb the buckets of ms that hold samples in
// [mint, maxt], of every tier (all of them and the series' tier range
// when whole), and marks the days dirty so that what raw samples remain
// are built again. The caller holds sealMu (or is replaying).
func (s *shard) deleteTierData(pb *pebble.Batch, ms *memSeries, mint, maxt int64, whole bool) error {
	if len(s.opts.Tiers) == 0 {
		return nil
	}
	ms.mu.Lock()
	tmin, tmax := ms.mu.tierMinDay, ms.mu.tierMaxDay
	ms.mu.Unlock()
	if !whole {
		s.markDirty(pb, mint, maxt)
	}
	if tmin > tmax {
		return nil
	}
	if whole {
		_ = pb.Delete(tierRangeKey(ms.tenant, ms.ref), nil)
	}
	first, last := max(tmin, tierDayOf(mint)), min(tmax, tierDayOf(maxt))
	if whole {
		first, last = tmin, tmax
	}
	var key, val []byte
	for _, t := range s.opts.Tiers {
		res := t.Resolution.Milliseconds()
		n := blockDays(res)
		for p := periodOf(first, n); p <= last && p >= periodOf(first, n); p += n {
			key = tierKey(key[:0], res, p, ms.tenant, ms.ref)
			if whole || (mint <= dayStart(p)+1 && maxt >= dayStart(p+n-1)+dayMillis) {
				_ = pb.Delete(key, nil)
				continue
			}
			v, closer, err := s.db.Get(key)
			if errors.Is(err, pebble.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			bs, err := decodeTierBlock(nil, p, v)
			closer.Close()
			if err != nil {
				return err
			}
			kept := slices.DeleteFunc(bs, func(b Bucket) bool { return b.End >= mint && b.End-res < maxt })
			if len(kept) == 0 {
				_ = pb.Delete(key, nil)
				continue
			}
			val = encodeTierBlock(val[:0], p, res, kept)
			_ = pb.Set(key, val, nil)
		}
	}
	return nil
}
