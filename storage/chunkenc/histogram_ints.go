package chunkenc

import "math/bits"

// Integral bucket counts are coded per bucket (by absolute index) against
// a prediction: the bucket's previous count plus a running average of its
// increments (1/16 units, each new increment weighing 1/4), so that a
// counter growing at a steady noisy rate leaves residuals of the size of
// its noise. The residual's zigzag is Rice-coded with a parameter fitted
// to the bucket's recent residuals (LOCO-I style: the smallest k with
// n<<k >= a), which both sides derive, so nothing but the residual is
// written. A bucket without history (n == 0) uses Elias-gamma instead.

// bucketState is what one bucket carries from a sample to the next.
type bucketState struct {
	count int64  // previous absolute count
	avg   int64  // running average increment, in 1/16
	lvl   int64  // running average count, in 1/16 (gauges)
	a     uint64 // sum of recent residuals (capped each)
	n     uint32 // residuals in a
}

const (
	stateHalveAt = 16
	residualCap  = 1 << 40
)

// predict is the expected count: for a counter the previous count plus
// the average increment, for a gauge (whose counts come and go) the
// average count.
func (s *bucketState) predict(gauge bool) int64 {
	if gauge && s.n > 1 {
		return (s.lvl + 8) >> 4
	}
	return s.count + (s.avg+8)>>4
}

func (s *bucketState) k() uint {
	k := uint(0)
	for k < 60 && uint64(s.n)<<k < s.a {
		k++
	}
	return k
}

func (s *bucketState) update(cur int64, r uint64) {
	if s.n == 0 {
		// The first value is a whole count, not an increment: it says
		// nothing of the increments to come.
		*s = bucketState{count: cur, lvl: cur << 4, n: 1}
		return
	}
	inc := cur - s.count
	s.avg += (inc*16 - s.avg) >> 2
	s.lvl += (cur*16 - s.lvl) >> 2
	s.count = cur
	s.a += min(r, residualCap)
	if s.n++; s.n >= stateHalveAt {
		s.a >>= 1
		s.n >>= 1
	}
}

// remapStates returns the states of the buckets at curIdx, carried over
// from the buckets at prevIdx (a new bucket starts as fresh).
func remapStates[S any](dst, prev []S, prevIdx, curIdx []int32, fresh S) []S {
	dst = dst[:0]
	j := 0
	for _, ix := range curIdx {
		for j < len(prevIdx) && prevIdx[j] < ix {
			j++
		}
		if j < len(prevIdx) && prevIdx[j] == ix && j < len(prev) {
			dst = append(dst, prev[j])
		} else {
			dst = append(dst, fresh)
		}
	}
	return dst
}

// intStates is the state of every bucket of the previous sample's layout.
type intStates struct {
	zero     bucketState
	pos, neg []bucketState
	spare    []bucketState
}

// reset forgets every bucket's history, for n positive and m negative
// buckets.
func (st *intStates) reset(n, m int) {
	st.zero = bucketState{}
	st.pos = append(st.pos[:0], make([]bucketState, n)...)
	st.neg = append(st.neg[:0], make([]bucketState, m)...)
}

// remap carries the states over to a new layout.
func (st *intStates) remap(prev, cur *bucketIndexes) {
	st.spare = remapStates(st.spare, st.pos, prev.pos, cur.pos, bucketState{})
	st.pos, st.spare = st.spare, st.pos
	st.spare = remapStates(st.spare, st.neg, prev.neg, cur.neg, bucketState{})
	st.neg, st.spare = st.spare, st.neg
}

func writeCount(w *bitWriter, s *bucketState, cur int64, gauge bool) {
	r := zigzag(cur - s.predict(gauge))
	if s.n == 0 {
		writeGamma(w, r)
	} else {
		writeRiceK(w, r, s.k())
	}
	s.update(cur, r)
}

func (r *bitReader) readCount(s *bucketState, gauge bool) (int64, bool) {
	var u uint64
	var ok bool
	if s.n == 0 {
		u, ok = r.readGamma()
	} else {
		u, ok = r.readRiceK(s.k())
	}
	if !ok {
		return 0, false
	}
	cur := s.predict(gauge) + unzigzag(u)
	s.update(cur, u)
	return cur, true
}

func writeRiceK(w *bitWriter, v uint64, k uint) {
	q := v >> k
	if q >= riceEscape {
		w.writeBits(1<<riceEscape-1, riceEscape)
		w.writeBits(v, 64)
		return
	}
	w.writeBits((1<<(q+1)-1)&^1, int(q)+1) // q ones and a zero
	if k > 0 {
		w.writeBits(v&(1<<k-1), int(k))
	}
}

func (r *bitReader) readRiceK(k uint) (uint64, bool) {
	q := uint64(0)
	for q < riceEscape {
		b, ok := r.readBit()
		if !ok {
			return 0, false
		}
		if !b {
			break
		}
		q++
	}
	if q == riceEscape {
		return r.readBits(64)
	}
	if k == 0 {
		return q, true
	}
	low, ok := r.readBits(int(k))
	return q<<k | low, ok
}

// writeGamma writes u+1 in Elias-gamma: bits.Len-1 zeros, then its bits.
func writeGamma(w *bitWriter, u uint64) {
	if u == 1<<64-1 {
		w.writeBits(0, 64) // 64 zeros: the escape, then the 64 bits
		w.writeBits(u, 64)
		return
	}
	v := u + 1
	n := bits.Len64(v)
	w.writeBits(0, n-1)
	w.writeBits(v, n)
}

func (r *bitReader) readGamma() (uint64, bool) {
	zeros := 0
	for {
		b, ok := r.readBit()
		if !ok {
			return 0, false
		}
		if b {
			break
		}
		if zeros++; zeros == 64 {
			return r.readBits(64)
		}
	}
	if zeros == 0 {
		return 0, true
	}
	rest, ok := r.readBits(zeros)
	return (1<<zeros | rest) - 1, ok
}
