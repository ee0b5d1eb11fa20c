package storage

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage/chunkenc"
	"github.com/emsdb/tsdb/storage/internal/invariants"
)

// memSeries is one series in memory: its identity and its unsealed samples.
//
// Samples live in three places until the sealer writes them to Pebble:
// the head chunk (in-order appends), the out-of-order buffer (samples at or
// before the head's last timestamp, including rewrites of a timestamp), and
// frozen chunks (former head and out-of-order buffers queued for sealing).
// When one timestamp appears in several places, the most recent write wins:
// out-of-order buffer > head chunk > frozen (newest first) > Pebble.
type memSeries struct {
	ref    uint64
	lset   labels.Labels
	tenant uint32
	// state says whether the series is gone (set under the shard's
	// appendMu when it is deleted) and the number of the shard that holds
	// it (set when it is added to the index, before anyone else sees it):
	// where a write the key cache resolved goes.
	state seriesState

	// minT and maxT bound the series' samples (exact for samples written
	// since start-up, widened to whole days for older ones). Select reads
	// them without locking.
	minT, maxT atomic.Int64
	// walPred is the series' last sample in the WAL segment being written,
	// from which the next is predicted (walcodec.go); guarded by the
	// shard's appendMu.
	walPred walPred

	// NB: every series in memory has these fields, so they are ordered
	// to leave no padding: 240 bytes, a size class of the allocator
	// (TestMemSeriesSize; issue 18: a million series' memory).
	// NB: what every write reads (ref, gone, minT and maxT, walPred,
	// the lock, hist, the days and head) comes first, in as few cache
	// lines as the fields allow: a write of 2,000 series waits on memory
	// for each line it touches.
	mu struct {
		sync.Mutex
		// hist holds the native histogram samples; nil for a series
		// that never had one.
		hist   *histLane
		minDay int32 // days recorded as series-day keys
		maxDay int32 // (maxDay < minDay: none)
		// head holds the in-order samples not frozen yet (empty when
		// none); in the series itself, not behind a pointer, so that a
		// write touches one object less.
		head      chunkenc.XORChunk
		headSeg   int32 // WAL segment of the oldest sample in head or ooo
		queued    bool  // in the sealer's queue
		deleted   bool
		headSince int64 // wall clock (ms) when head became non-empty
		// rare holds the out-of-order samples and the frozen chunks,
		// which a series has only now and then: nil when it has neither
		// (48 bytes less in every series; rareLocked and setRareLocked).
		rare     *seriesRare
		diskMaxT int64 // upper bound of sealed timestamps
		// tierMinDay and tierMaxDay bound the days of the series' tier
		// blocks (tierMaxDay < tierMinDay: none); retention may have
		// dropped the oldest since.
		tierMinDay, tierMaxDay int32
	}
}

// seriesState is a series' gone flag (bit 0) and its shard's number
// (bits 16 to 31), in the four bytes the flag took alone: a field of its
// own would have grown every series by eight.
type seriesState struct{ v atomic.Uint32 }

func (st *seriesState) gone() bool { return st.v.Load()&1 != 0 }

func (st *seriesState) setGone(gone bool) {
	if gone {
		st.v.Or(1)
	} else {
		st.v.And(^uint32(1))
	}
}

func (st *seriesState) shard() int { return int(st.v.Load() >> 16) }

// setShard records the series' shard; before the series is published.
func (st *seriesState) setShard(n uint16) {
	st.v.Store(st.v.Load()&0xffff | uint32(n)<<16)
}

// seriesRare is what a series holds in memory besides its head chunk
// until the sealer writes it out.
type seriesRare struct {
	ooo    []Sample       // sorted by T, unique T
	frozen []*frozenChunk // oldest first
}

// oooLocked is the series' out-of-order buffer (nil: none).
func (s *memSeries) oooLocked() []Sample {
	if r := s.mu.rare; r != nil {
		return r.ooo
	}
	return nil
}

// frozenLocked is the series' frozen chunks, oldest first (nil: none).
func (s *memSeries) frozenLocked() []*frozenChunk {
	if r := s.mu.rare; r != nil {
		return r.frozen
	}
	return nil
}

// setRareLocked sets the out-of-order buffer and the frozen chunks,
// letting go of their holder when both are empty.
func (s *memSeries) setRareLocked(ooo []Sample, frozen []*frozenChunk) {
	if len(ooo) == 0 && len(frozen) == 0 {
		s.mu.rare = nil
		return
	}
	if s.mu.rare == nil {
		s.mu.rare = &seriesRare{}
	}
	s.mu.rare.ooo, s.mu.rare.frozen = ooo, frozen
}

// frozenChunk is an immutable former head: it is read by queries and the
// sealer without copying.
type frozenChunk struct {
	xor []byte // XOR chunk bytes (may be empty)
	n   int    // samples in xor
	ooo []Sample
	seg int // oldest WAL segment its samples came from
}

func newMemSeries(ref uint64, tenant uint32, lset labels.Labels) *memSeries {
	s := &memSeries{ref: ref, tenant: tenant, lset: lset}
	s.minT.Store(math.MaxInt64)
	s.maxT.Store(math.MinInt64)
	s.mu.diskMaxT = math.MinInt64
	s.mu.minDay, s.mu.maxDay = math.MaxInt32, math.MinInt32
	s.mu.tierMinDay, s.mu.tierMaxDay = math.MaxInt32, math.MinInt32
	return s
}

// appendResult tells the caller what an append needs beyond memory.
type appendResult struct {
	seal   bool  // the series has frozen chunks to queue for sealing
	newDay bool  // a series-day key must be written for day
	day    int32 // the sample's day
}

// appendLocked adds one sample. seg is the WAL segment holding it, now the
// wall clock in ms, and maxHead the head chunk capacity.
func (s *memSeries) appendLocked(t int64, v float64, seg int, now int64, maxHead, maxOOO int) appendResult {
	var res appendResult
	if l := s.mu.hist; l != nil && t > l.lastT {
		l.last = nil // the next histogram follows a float
	}
	h := &s.mu.head
	switch {
	case h.NumSamples() == 0:
		h.Append(t, v)
		s.mu.headSeg, s.mu.headSince = int32(seg), now
	case t > h.MaxTime():
		if h.NumSamples() >= maxHead || dayOf(t) != dayOf(h.MinTime()) {
			s.freezeLocked()
			res.seal = true
			s.mu.headSeg, s.mu.headSince = int32(seg), now
		}
		h.Append(t, v)
	default:
		s.insertOOOLocked(t, v)
		if len(s.oooLocked()) >= maxOOO {
			s.freezeLocked()
			res.seal = true
		}
	}
	if t < s.minT.Load() {
		s.minT.Store(t)
	}
	if t > s.maxT.Load() {
		s.maxT.Store(t)
	}
	res.day = dayOf(t)
	if res.day < s.mu.minDay || res.day > s.mu.maxDay || t < h.MaxTime() {
		// Out-of-order samples may land in a gap between recorded days;
		// rewriting an existing series-day key is harmless.
		res.newDay = true
		s.mu.minDay = min(s.mu.minDay, res.day)
		s.mu.maxDay = max(s.mu.maxDay, res.day)
	}
	return res
}

func (s *memSeries) insertOOOLocked(t int64, v float64) {
	ooo := s.oooLocked()
	i, found := slices.BinarySearchFunc(ooo, t, func(a Sample, t int64) int {
		switch {
		case a.T < t:
			return -1
		case a.T > t:
			return 1
		}
		return 0
	})
	if found {
		ooo[i].V = v
		return
	}
	ooo = slices.Insert(ooo, i, Sample{T: t, V: v})
	s.setRareLocked(ooo, s.frozenLocked())
	if invariants.Enabled && ((i > 0 && ooo[i-1].T >= t) || (i+1 < len(ooo) && ooo[i+1].T <= t)) {
		_ = invariants.Failf("series %d: out-of-order buffer unsorted around %d", s.ref, t)
	}
}

// freezeLocked moves the head chunk and the out-of-order buffer into a
// frozen chunk. The caller queues the series for sealing.
func (s *memSeries) freezeLocked() {
	h := &s.mu.head
	ooo := s.oooLocked()
	if h.NumSamples() == 0 && len(ooo) == 0 {
		return
	}
	fc := &frozenChunk{ooo: ooo, seg: int(s.mu.headSeg)}
	if h.NumSamples() > 0 {
		fc.xor, fc.n = h.Snapshot(nil)
		h.Reset()
	}
	s.setRareLocked(nil, append(s.frozenLocked(), fc))
}

// hasUnsealedLocked reports whether any sample is still only in memory.
func (s *memSeries) hasUnsealedLocked() bool {
	return s.mu.head.NumSamples() > 0 || s.mu.rare != nil || s.mu.hist.unsealed()
}

// oldestSegLocked returns the oldest WAL segment holding unsealed samples
// of the series, or math.MaxInt when there are none.
func (s *memSeries) oldestSegLocked() int {
	seg := math.MaxInt
	if s.mu.head.NumSamples() > 0 || len(s.oooLocked()) > 0 {
		seg = int(s.mu.headSeg)
	}
	for _, fc := range s.frozenLocked() {
		seg = min(seg, fc.seg)
	}
	return min(seg, s.mu.hist.oldestSeg())
}

// overlaps reports whether the series' time range meets [mint, maxt].
func (s *memSeries) overlaps(mint, maxt int64) bool {
	return s.maxT.Load() >= mint && s.minT.Load() <= maxt
}

// lastFloat is LastSampler.LastFloat: it knows the answer when the head
// chunk holds the newest sample of the series (maxT, exact for samples
// written since start-up) and that sample is at or before maxt. Nothing
// else can hold a sample at or after it that would win: an out-of-order
// sample at the head's last timestamp goes to ooo (then it is not known
// here), and frozen and sealed chunks lose to the head on equal
// timestamps (see shard.iterator).
func (s *memSeries) lastFloat(mint, maxt int64) (t int64, v float64, found, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := &s.mu.head
	if h.NumSamples() == 0 || len(s.oooLocked()) > 0 || s.mu.hist != nil || s.mu.deleted {
		return 0, 0, false, false
	}
	t, v = h.Last()
	if t != s.maxT.Load() || t > maxt {
		return 0, 0, false, false
	}
	return t, v, t >= mint, true
}

// sealedOnly reports whether every sample of s in [mint, maxt] is sealed
// (none of the window in memory, no histograms, not being deleted), with
// whether Pebble may hold any and the days it may hold them in.
func (s *memSeries) sealedOnly(mint, maxt int64) (onDisk bool, minDay, maxDay int32, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := &s.mu.head; h.NumSamples() > 0 && h.MinTime() <= maxt {
		return false, 0, 0, false
	}
	if ooo := s.oooLocked(); len(ooo) > 0 && ooo[0].T <= maxt {
		return false, 0, 0, false
	}
	if len(s.frozenLocked()) > 0 || s.mu.hist != nil || s.mu.deleted {
		return false, 0, 0, false
	}
	return s.mu.diskMaxT >= mint, s.mu.minDay, s.mu.maxDay, true
}

// sealedUpTo learns that the series' newest sealed sample is at t (its last
// chunk of its last day ends there, as read by an iterator current while
// current() holds): with nothing in memory, its time range and diskMaxT,
// widened to whole days at start-up, end at t from now on, so that
// selectors over later windows pass it by.
func (s *memSeries) sealedUpTo(t int64, current func() bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.head.NumSamples() > 0 || s.mu.rare != nil || s.mu.hist != nil || s.mu.deleted {
		return
	}
	// NB: under the series' lock: the sealer moves the shard's chunk
	// generation on before it drops a series' sealed chunks from memory,
	// so a seal the iterator missed is seen here, one way or the other.
	if !current() {
		return
	}
	if t >= s.minT.Load() {
		s.mu.diskMaxT = min(s.mu.diskMaxT, t)
		s.maxT.Store(min(s.maxT.Load(), t))
	}
}

// memSnapshot is what a reader copies out of a series under its lock.
type memSnapshot struct {
	ooo    []Sample
	head   []byte
	headN  int
	headAt chunkenc.Resume // where decoding head starts
	frozen []*frozenChunk
	onDisk bool // Pebble may hold samples of the series
	minDay int32
	maxDay int32
	hist   *histSnapshot // nil for a series without histograms
}

// snapshot copies the unsealed samples overlapping [mint, maxt].
func (s *memSeries) snapshot(mint, maxt int64, buf []byte) memSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ms memSnapshot
	if h := &s.mu.head; h.NumSamples() > 0 && h.MaxTime() >= mint && h.MinTime() <= maxt {
		ms.head, ms.headN, ms.headAt = h.SnapshotSince(mint, buf[:0])
	}
	if ooo := s.oooLocked(); len(ooo) > 0 {
		lo, _ := slices.BinarySearchFunc(ooo, mint, cmpSampleT)
		hi, found := slices.BinarySearchFunc(ooo, maxt, cmpSampleT)
		if found {
			hi++
		}
		if lo < hi {
			ms.ooo = slices.Clone(ooo[lo:hi])
		}
	}
	if fz := s.frozenLocked(); len(fz) > 0 {
		ms.frozen = slices.Clone(fz)
	}
	ms.onDisk = s.mu.diskMaxT >= mint
	if l := s.mu.hist; l != nil {
		ms.hist = l.snapshot(mint, maxt)
	}
	ms.minDay, ms.maxDay = s.mu.minDay, s.mu.maxDay
	return ms
}

func cmpSampleT(a Sample, t int64) int {
	switch {
	case a.T < t:
		return -1
	case a.T > t:
		return 1
	}
	return 0
}
