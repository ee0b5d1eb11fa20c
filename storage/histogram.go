package storage

import (
	"fmt"
	"math"
	"slices"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage/chunkenc"
	"github.com/emsdb/tsdb/storage/internal/invariants"
)

// histLane holds the native histogram samples of a series beside its
// floats: a series gets one on its first histogram (or at start-up when
// Pebble holds histogram chunks of it), so float-only series pay one nil
// pointer. It is guarded by the series' mu.
//
// Samples live in the buffer (sorted, unique timestamps, in-order and
// out-of-order alike, a rewrite of a timestamp replacing the sample),
// then in frozen chunks (former buffers, encoded) until the sealer writes
// them to Pebble under prefix 0x09. The most recent write wins: buffer >
// frozen (newest first) > Pebble.
type histLane struct {
	buf    []HSample // sorted by T, unique T; the histograms are the lane's
	seg    int       // WAL segment of the oldest sample in buf
	since  int64     // wall clock (ms) when buf became non-empty
	frozen []*frozenHist
	// diskMaxT bounds the sealed histogram timestamps (math.MinInt64:
	// none on disk).
	diskMaxT int64
	// lastT and last are the newest in-order histogram, which the counter
	// reset hint of the next one is computed against; last is nil when
	// unknown (start-up) or a float sample came after it.
	lastT int64
	last  *histogram.FloatHistogram
}

// frozenHist is an immutable former buffer, encoded as a histogram chunk.
type frozenHist struct {
	chunk []byte
	n     int
	minT  int64
	maxT  int64
	seg   int
}

func newHistLane() *histLane {
	return &histLane{diskMaxT: math.MinInt64, lastT: math.MinInt64}
}

// appendHistLocked adds one histogram sample; h becomes the series'. See
// appendLocked for the arguments.
func (s *memSeries) appendHistLocked(t int64, h *histogram.FloatHistogram, seg int, now int64, maxHead, maxOOO int) appendResult {
	var res appendResult
	l := s.mu.hist
	if l == nil {
		l = newHistLane()
		s.mu.hist = l
	}
	l.refineHint(t, h)
	n := len(l.buf)
	switch {
	case n == 0:
		l.buf = append(l.buf, HSample{T: t, H: h})
		l.seg, l.since = seg, now
	case t > l.buf[n-1].T:
		if n >= maxHead || dayOf(t) != dayOf(l.buf[0].T) {
			s.freezeHistLocked()
			res.seal = true
			l.seg, l.since = seg, now
		}
		l.buf = append(l.buf, HSample{T: t, H: h})
	default:
		l.insert(t, h)
		if len(l.buf) >= maxOOO {
			s.freezeHistLocked()
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
	if res.day < s.mu.minDay || res.day > s.mu.maxDay || t < l.lastT {
		res.newDay = true
		s.mu.minDay = min(s.mu.minDay, res.day)
		s.mu.maxDay = max(s.mu.maxDay, res.day)
	}
	return res
}

// refineHint sets the counter reset hint of a counter histogram as
// Prometheus' head yields it on read: the first histogram of a series (or
// the first after a float or a stale marker) UnknownCounterReset, a later
// in-order one CounterReset when it resets against the previous, else
// NotCounterReset; an out-of-order one UnknownCounterReset. An explicit
// CounterReset from the sender and gauge histograms keep their hint.
func (l *histLane) refineHint(t int64, h *histogram.FloatHistogram) {
	inOrder := t > l.lastT
	prev := l.last
	if inOrder {
		l.lastT, l.last = t, h
	}
	switch {
	case h.CounterResetHint == histogram.GaugeType || h.CounterResetHint == histogram.CounterReset:
	case IsStaleHistogram(h):
		h.CounterResetHint = histogram.UnknownCounterReset
	case !inOrder || prev == nil || IsStaleHistogram(prev) || prev.CounterResetHint == histogram.GaugeType:
		h.CounterResetHint = histogram.UnknownCounterReset
	case h.DetectReset(prev):
		h.CounterResetHint = histogram.CounterReset
	default:
		h.CounterResetHint = histogram.NotCounterReset
	}
}

func (l *histLane) insert(t int64, h *histogram.FloatHistogram) {
	i, found := slices.BinarySearchFunc(l.buf, t, cmpHSampleT)
	if found {
		l.buf[i].H = h
		return
	}
	l.buf = slices.Insert(l.buf, i, HSample{T: t, H: h})
	if invariants.Enabled && ((i > 0 && l.buf[i-1].T >= t) || (i+1 < len(l.buf) && l.buf[i+1].T <= t)) {
		_ = invariants.Failf("histogram buffer unsorted around %d", t)
	}
}

func cmpHSampleT(a HSample, t int64) int {
	switch {
	case a.T < t:
		return -1
	case a.T > t:
		return 1
	}
	return 0
}

// freezeHistLocked encodes the histogram buffer into a frozen chunk. The
// caller queues the series for sealing.
func (s *memSeries) freezeHistLocked() {
	l := s.mu.hist
	if l == nil || len(l.buf) == 0 {
		return
	}
	ts := make([]int64, len(l.buf))
	hs := make([]*histogram.FloatHistogram, len(l.buf))
	for i, smp := range l.buf {
		ts[i], hs[i] = smp.T, smp.H
	}
	l.frozen = append(l.frozen, &frozenHist{
		chunk: chunkenc.EncodeHistograms(nil, ts, hs),
		n:     len(ts), minT: ts[0], maxT: ts[len(ts)-1], seg: l.seg,
	})
	// NB: last may point into the buffer: it stays valid, as the
	// histograms are never changed once appended.
	l.buf = nil
}

// hasHeadLocked reports whether the series has samples in a head (float
// head, out-of-order buffer or histogram buffer), and since when.
func (s *memSeries) hasHeadLocked() (bool, int64) {
	has, since := false, int64(math.MaxInt64)
	if s.mu.head.NumSamples() > 0 || len(s.oooLocked()) > 0 {
		has, since = true, s.mu.headSince
	}
	if l := s.mu.hist; l != nil && len(l.buf) > 0 {
		has, since = true, min(since, l.since)
	}
	return has, since
}

// histUnsealedLocked reports whether histogram samples are only in memory.
func (l *histLane) unsealed() bool {
	return l != nil && (len(l.buf) > 0 || len(l.frozen) > 0)
}

// oldestSeg returns the oldest WAL segment the lane's unsealed samples
// came from, or math.MaxInt.
func (l *histLane) oldestSeg() int {
	seg := math.MaxInt
	if l == nil {
		return seg
	}
	if len(l.buf) > 0 {
		seg = l.seg
	}
	for _, f := range l.frozen {
		seg = min(seg, f.seg)
	}
	return seg
}

// histSnapshot is what a reader copies out of a lane under the series lock.
type histSnapshot struct {
	buf      []HSample // copies, in [mint, maxt]
	frozen   []*frozenHist
	diskMaxT int64
}

func (l *histLane) snapshot(mint, maxt int64) *histSnapshot {
	hs := &histSnapshot{diskMaxT: l.diskMaxT}
	lo, _ := slices.BinarySearchFunc(l.buf, mint, cmpHSampleT)
	hi, found := slices.BinarySearchFunc(l.buf, maxt, cmpHSampleT)
	if found {
		hi++
	}
	if lo < hi {
		// The histograms are never changed once appended: sharing them
		// is safe; the iterator hands out copies.
		hs.buf = slices.Clone(l.buf[lo:hi])
	}
	for _, f := range l.frozen {
		if f.maxT >= mint && f.minT <= maxt {
			hs.frozen = append(hs.frozen, f)
		}
	}
	return hs
}

// filter drops the lane's samples in [mint, maxt] from memory.
func (l *histLane) filter(mint, maxt int64) error {
	keep := func(t int64) bool { return t < mint || t > maxt }
	l.buf = slices.DeleteFunc(l.buf, func(s HSample) bool { return !keep(s.T) })
	for i, f := range l.frozen {
		if f.maxT < mint || f.minT > maxt {
			continue
		}
		ts, hs, err := chunkenc.DecodeHistograms(f.chunk, nil, nil)
		if err != nil {
			return err
		}
		var kts []int64
		var khs []*histogram.FloatHistogram
		for j, t := range ts {
			if keep(t) {
				kts, khs = append(kts, t), append(khs, hs[j])
			}
		}
		nf := &frozenHist{seg: f.seg}
		if len(kts) > 0 {
			nf.chunk = chunkenc.EncodeHistograms(nil, kts, khs)
			nf.n, nf.minT, nf.maxT = len(kts), kts[0], kts[len(kts)-1]
		} else {
			nf.minT, nf.maxT = math.MaxInt64, math.MinInt64
		}
		l.frozen[i] = nf
	}
	return nil
}

// outside reports whether a histogram in memory lies outside [mint, maxt].
func (l *histLane) outside(mint, maxt int64) bool {
	if l == nil {
		return false
	}
	out := func(t int64) bool { return t < mint || t > maxt }
	if n := len(l.buf); n > 0 && (out(l.buf[0].T) || out(l.buf[n-1].T)) {
		return true
	}
	for _, f := range l.frozen {
		if f.n > 0 && (out(f.minT) || out(f.maxT)) {
			return true
		}
	}
	return false
}

// validateHistograms checks the histogram samples of a series of a batch.
func validateHistograms(lset labels.Labels, hs []HSample) error {
	for _, h := range hs {
		if h.T < minStorableT || h.T > maxStorableT {
			return fmt.Errorf("%w: timestamp %d of histogram of series %s is out of the storable range", ErrInvalidSample, h.T, lset)
		}
		if h.H == nil {
			return fmt.Errorf("%w: histogram sample at %d of series %s has no histogram", ErrInvalidSample, h.T, lset)
		}
		if err := h.H.Validate(); err != nil {
			return fmt.Errorf("%w: histogram at %d of series %s: %v", ErrInvalidSample, h.T, lset, err)
		}
	}
	return nil
}
