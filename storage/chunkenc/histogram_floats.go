package chunkenc

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/prometheus/prometheus/model/histogram"
)

// Float counts (version 2). Each count slot (the zero count, each bucket
// by absolute index, the total count) carries its previous value, its
// last non-zero change and an XOR window from sample to sample, as the
// integer path carries a bucketState:
//
//	'0'    the value is the slot's previous one (a bucket no observation fell in)
//	'10'   gamma of zigzag(bits(v) - bits(prediction)): v is within a few
//	       ulps of the prediction
//	'110'  x = bits(v) XOR bits(prediction) within the slot's window: its
//	       64-lead-trail bits
//	'111'  a new window: 6 bits lead, 6 bits significant (64 as 0), x's bits
//
// A bucket's prediction is its previous value plus its last non-zero
// change: a counter that grows by a steady step (a count scaled by a
// unit, a rate) is then off by a rounding error, a few low bits. The
// total count's is the zero count plus the buckets, summed in order: it
// differs from the count by rounding, or by the NaN observations.
//
// Only additions and subtractions make a prediction: Go may fuse a
// multiply-add into one rounding on some platforms, which would make the
// encoder's and the decoder's predictions differ.

// floatSlot is what one float count carries from a sample to the next.
type floatSlot struct {
	prev        float64
	delta       float64 // the last finite non-zero change
	lead, trail uint8   // the XOR window; lead 0xff: none yet
}

func newFloatSlot(prev float64) floatSlot { return floatSlot{prev: prev, lead: 0xff} }

func (s *floatSlot) predict() float64 { return s.prev + s.delta }

func (s *floatSlot) update(v float64) {
	if d := v - s.prev; d != 0 && !math.IsInf(d, 0) && !math.IsNaN(d) {
		s.delta = d
	}
	s.prev = v
}

// floatStates is the state of every count slot of the previous sample's
// layout.
type floatStates struct {
	count, zero floatSlot
	pos, neg    []floatSlot
	spare       []floatSlot
}

// reset starts the slots of layout cur afresh: no windows, no changes,
// previous values those of prev (at prevIdx) when it is comparable, else 0.
func (st *floatStates) reset(prev *histogram.FloatHistogram, prevIdx, cur *bucketIndexes) {
	st.count, st.zero = newFloatSlot(0), newFloatSlot(0)
	var ppos, pneg []float64
	if prev != nil {
		st.count, st.zero = newFloatSlot(prev.Count), newFloatSlot(prev.ZeroCount)
		ppos, pneg = prev.PositiveBuckets, prev.NegativeBuckets
	}
	st.pos = resetSlots(st.pos[:0], cur.pos, prevIdx.pos, ppos)
	st.neg = resetSlots(st.neg[:0], cur.neg, prevIdx.neg, pneg)
}

func resetSlots(dst []floatSlot, curIdx, prevIdx []int32, prev []float64) []floatSlot {
	p := prevAt{idx: prevIdx, vals: prev}
	for _, ix := range curIdx {
		dst = append(dst, newFloatSlot(p.at(ix)))
	}
	return dst
}

// remap carries the slots over to a new layout; a new bucket starts
// from 0.
func (st *floatStates) remap(prev, cur *bucketIndexes) {
	st.spare = remapStates(st.spare, st.pos, prev.pos, cur.pos, newFloatSlot(0))
	st.pos, st.spare = st.spare, st.pos
	st.spare = remapStates(st.spare, st.neg, prev.neg, cur.neg, newFloatSlot(0))
	st.neg, st.spare = st.spare, st.neg
}

// writeFloatCounts writes h's counts in version 2.
func writeFloatCounts(w *bitWriter, st *floatStates, h *histogram.FloatHistogram) {
	writeFloatSlot(w, &st.zero, h.ZeroCount, st.zero.predict())
	for j, v := range h.PositiveBuckets {
		s := &st.pos[j]
		writeFloatSlot(w, s, v, s.predict())
	}
	for j, v := range h.NegativeBuckets {
		s := &st.neg[j]
		writeFloatSlot(w, s, v, s.predict())
	}
	writeFloatSlot(w, &st.count, h.Count, bucketTotal(h))
}

// bucketTotal is the zero count plus every bucket, in order.
func bucketTotal(h *histogram.FloatHistogram) float64 {
	t := h.ZeroCount
	for _, v := range h.PositiveBuckets {
		t += v
	}
	for _, v := range h.NegativeBuckets {
		t += v
	}
	return t
}

// nearLimit bounds zigzag(bits(v) - bits(prediction)) for the near
// code '10': up to 13 bits of gamma, never longer than a new window.
const nearLimit = 64

func writeFloatSlot(w *bitWriter, s *floatSlot, v, pred float64) {
	vb := math.Float64bits(v)
	if vb == math.Float64bits(s.prev) {
		w.writeBits(0, 1)
		return
	}
	s.update(v)
	pb := math.Float64bits(pred)
	x := vb ^ pb
	window := -1 // the bits '110' takes, -1: x does not fit the window
	if s.lead != 0xff && bits.LeadingZeros64(x) >= int(s.lead) && bits.TrailingZeros64(x) >= int(s.trail) {
		window = int(64 - s.lead - s.trail)
	}
	// NB: x == 0 (v is the prediction) always takes this branch.
	if u := zigzag(int64(vb - pb)); u < nearLimit && (window < 0 || 2*bits.Len64(u+1)-1 <= window+1) {
		w.writeBits(0b10, 2)
		writeGamma(w, u)
		return
	}
	if window >= 0 {
		w.writeBits(0b110, 3)
		w.writeBits(x>>s.trail, window)
		return
	}
	lead, trail := uint8(bits.LeadingZeros64(x)), uint8(bits.TrailingZeros64(x))
	sig := 64 - lead - trail
	s.lead, s.trail = lead, trail
	w.writeBits(0b111, 3)
	w.writeBits(uint64(lead), 6)
	w.writeBits(uint64(sig&63), 6)
	w.writeBits(x>>trail, int(sig))
}

// readFloatCounts reads what writeFloatCounts wrote into h, whose bucket
// slices are sized.
func (r *bitReader) readFloatCounts(st *floatStates, h *histogram.FloatHistogram) error {
	var err error
	if h.ZeroCount, err = r.readFloatSlot(&st.zero, st.zero.predict()); err != nil {
		return fmt.Errorf("zero count: %w", err)
	}
	for j := range h.PositiveBuckets {
		s := &st.pos[j]
		if h.PositiveBuckets[j], err = r.readFloatSlot(s, s.predict()); err != nil {
			return fmt.Errorf("positive bucket %d: %w", j, err)
		}
	}
	for j := range h.NegativeBuckets {
		s := &st.neg[j]
		if h.NegativeBuckets[j], err = r.readFloatSlot(s, s.predict()); err != nil {
			return fmt.Errorf("negative bucket %d: %w", j, err)
		}
	}
	if h.Count, err = r.readFloatSlot(&st.count, bucketTotal(h)); err != nil {
		return fmt.Errorf("count: %w", err)
	}
	return nil
}

func (r *bitReader) readFloatSlot(s *floatSlot, pred float64) (float64, error) {
	// The prefix: '0', '10', '110' or '111'.
	n := 0
	for n < 3 {
		b, ok := r.readBit()
		if !ok {
			return 0, errTruncated
		}
		if !b {
			break
		}
		n++
	}
	pb := math.Float64bits(pred)
	var vb uint64
	switch n {
	case 0:
		return s.prev, nil
	case 1:
		u, ok := r.readGamma()
		if !ok {
			return 0, errTruncated
		}
		vb = pb + uint64(unzigzag(u))
	case 2:
		if s.lead == 0xff {
			return 0, fmt.Errorf("window reused before one was set")
		}
		x, ok := r.readBits(int(64 - s.lead - s.trail))
		if !ok {
			return 0, errTruncated
		}
		vb = pb ^ x<<s.trail
	default:
		lead, ok1 := r.readBits(6)
		sig, ok2 := r.readBits(6)
		if !ok1 || !ok2 {
			return 0, errTruncated
		}
		if sig == 0 {
			sig = 64
		}
		if lead+sig > 64 {
			return 0, fmt.Errorf("window of %d+%d bits", lead, sig)
		}
		x, ok := r.readBits(int(sig))
		if !ok {
			return 0, errTruncated
		}
		s.lead, s.trail = uint8(lead), uint8(64-lead-sig)
		vb = pb ^ x<<s.trail
	}
	v := math.Float64frombits(vb)
	s.update(v)
	return v, nil
}
