package chunkenc

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

var special = []float64{
	1, math.Float64frombits(0x7ff0000000000002), math.NaN(), math.Inf(1), math.Inf(-1),
	math.Copysign(0, -1), 5e-324, math.MaxFloat64, 0.1 + 0.2, -3, 1 << 60,
}

func roundTrip(t testing.TB, ts []int64, vs []float64) {
	t.Helper()
	enc := EncodeDense(nil, ts, vs)
	gts, gvs, err := DecodeDense(enc, nil, nil)
	require.NoError(t, err)
	require.Equal(t, ts, gts)
	for i := range vs {
		require.Equal(t, math.Float64bits(vs[i]), math.Float64bits(gvs[i]), "dense value %d", i)
	}
	checkWindows(t, enc, ts, vs)
	c := NewXORChunk()
	for i := range ts {
		c.Append(ts[i], vs[i])
	}
	b, n := c.Snapshot(nil)
	it := NewXORIterator(b, n)
	for i := range ts {
		require.True(t, it.Next())
		gt, gv := it.At()
		require.Equal(t, ts[i], gt)
		require.Equal(t, math.Float64bits(vs[i]), math.Float64bits(gv), "xor value %d", i)
	}
	require.False(t, it.Next())
	require.NoError(t, it.Err())
}

// checkWindows checks that DecodeDenseWindow gives exactly the samples
// of [mint, maxt] for windows bounded at, just before and just after the
// first, a middle and the last timestamp (none of them overflowing).
func checkWindows(t testing.TB, enc []byte, ts []int64, vs []float64) {
	t.Helper()
	var bounds []int64
	for _, i := range []int{0, len(ts) / 2, len(ts) - 1} {
		for _, d := range []int64{-1, 0, 1} {
			if b := ts[i] + d; (d < 0) == (b < ts[i]) {
				bounds = append(bounds, b)
			}
		}
	}
	bounds = append(bounds, math.MinInt64, math.MaxInt64)
	for _, mint := range bounds {
		for _, maxt := range bounds {
			var wts []int64
			var wvs []uint64
			for i, x := range ts {
				if x >= mint && x <= maxt {
					wts, wvs = append(wts, x), append(wvs, math.Float64bits(vs[i]))
				}
			}
			gts, gvs, err := DecodeDenseWindow(enc, mint, maxt, []int64{7}, []float64{7})
			require.NoError(t, err)
			require.Equal(t, append([]int64{7}, wts...), gts, "window [%d, %d]", mint, maxt)
			gbits := make([]uint64, 0, len(gvs))
			for _, v := range gvs[1:] {
				gbits = append(gbits, math.Float64bits(v))
			}
			require.Equal(t, len(wvs), len(gbits), "window [%d, %d]", mint, maxt)
			if len(wvs) > 0 {
				require.Equal(t, wvs, gbits, "window [%d, %d]", mint, maxt)
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	roundTrip(t, []int64{0}, []float64{1})
	roundTrip(t, []int64{-86400000, 0, 1}, []float64{1, 2, 3})
	ts := make([]int64, len(special))
	for i := range ts {
		ts[i] = int64(i)*15000 + int64(i%3)
	}
	roundTrip(t, ts, special)
	counter := make([]float64, 240)
	ts = make([]int64, 240)
	for i := range counter {
		ts[i] = 1_700_000_000_000 + int64(i)*15000
		counter[i] = float64(i * 1234)
	}
	roundTrip(t, ts, counter)
	// Every delta-of-delta bucket and its edges, and the whole int64 range;
	// the first delta is wide enough that the timestamps keep increasing,
	// as both codecs require (the invariants build checks it).
	ts = []int64{math.MinInt64 + 1, -1 << 62, 0, 1 << 21}
	for _, dod := range []int64{0, 1, -1, 8191, -8192, 8192, -8193, 65535, -65536, 65536,
		524287, -524288, 524288, -524289, 1 << 40, -(1 << 39)} {
		n := len(ts)
		ts = append(ts, ts[n-1]+(ts[n-1]-ts[n-2])+dod)
	}
	ts = append(ts, math.MaxInt64)
	vs := make([]float64, len(ts))
	for i := range vs {
		vs[i] = special[i%len(special)]
	}
	roundTrip(t, ts, vs)
}

func TestXORChunkIsSmallForRegularData(t *testing.T) {
	c := NewXORChunk()
	for i := range 240 {
		c.Append(1_700_000_000_000+int64(i)*15000, 42)
	}
	// 1 bit of timestamp and 1 of value per sample, plus the first two.
	require.Less(t, c.Size(), 90)
}

func TestSeekAndSnapshotIndependence(t *testing.T) {
	c := NewXORChunk()
	for i := range 10 {
		c.Append(int64(i)*10, float64(i))
	}
	b, n := c.Snapshot(nil)
	c.Append(1000, 99)
	it := NewXORIterator(b, n)
	require.True(t, it.SeekTo(35))
	got, _ := it.At()
	require.Equal(t, int64(40), got)
	require.True(t, it.SeekTo(0), "never moves backwards")
	got, _ = it.At()
	require.Equal(t, int64(40), got)
	cnt := 1
	for it.Next() {
		cnt++
	}
	require.Equal(t, 6, cnt, "the snapshot does not see the later append")
}

func TestDecodeRejectsGarbage(t *testing.T) {
	good := EncodeDense(nil, []int64{1, 2, 3}, []float64{1.5, 2, 3})
	for _, b := range [][]byte{nil, {1}, {2, 0, 1, 0, 0}, good[:len(good)-1], append(good, 0), {1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}} {
		_, _, err := DecodeDense(b, nil, nil)
		require.ErrorIs(t, err, ErrCorrupt, "%x", b)
	}
}

func FuzzDenseRoundTrip(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Fuzz(func(t *testing.T, b []byte) {
		var ts []int64
		var vs []float64
		last := int64(-1 << 40)
		for len(b) >= 12 {
			last += 1 + int64(binary.LittleEndian.Uint32(b))
			ts = append(ts, last)
			vs = append(vs, math.Float64frombits(binary.LittleEndian.Uint64(b[4:])))
			b = b[12:]
		}
		if len(ts) > 0 {
			roundTrip(t, ts, vs)
		}
	})
}

func FuzzDenseDecode(f *testing.F) {
	f.Add(EncodeDense(nil, []int64{1, 2}, []float64{1, 2.5}))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = DecodeDense(b, nil, nil)
		it := NewDenseIterator(b)
		for it.Next() {
		}
	})
}

func FuzzXORIterator(f *testing.F) {
	f.Add([]byte{0, 2, 1, 4}, 3)
	rng := rand.New(rand.NewPCG(7, 7))
	for kind := range 5 {
		b, n := xorEncode(xorSeries(rng, 100, kind))
		f.Add(b, n)
	}
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		// Next and AppendRange's fast loop read the same samples and
		// stop at the same error.
		it := NewXORIterator(b, n)
		var ts []int64
		var vs []uint64
		for it.Next() {
			t, v := it.At()
			ts, vs = append(ts, t), append(vs, math.Float64bits(v))
		}
		gts, gvs, err := NewXORIterator(b, n).(RangeAppender).AppendRange(math.MinInt64, math.MaxInt64, nil, nil)
		require.Equal(t, fmt.Sprint(it.Err()), fmt.Sprint(err))
		require.Equal(t, ts, gts)
		require.Len(t, gvs, len(vs))
		for i, v := range gvs {
			require.Equal(t, vs[i], math.Float64bits(v), "sample %d", i)
		}
	})
}

func TestDenseExceptionsAndDeltaOfDelta(t *testing.T) {
	ts := make([]int64, 240)
	counter := make([]float64, 240)
	steady := make([]float64, 240)
	for i := range ts {
		ts[i] = 1_700_000_000_000 + int64(i)*15000
		counter[i] = math.Round(float64(i)*37+float64(i*i%7)) / 100
		steady[i] = 1e9 + float64(i)*15.5
	}
	// A counter that went stale and came back, with a NaN: decimal mode
	// with exceptions, not XOR for the whole chunk.
	counter[100] = math.Float64frombits(0x7ff0000000000002)
	counter[0] = math.NaN()
	roundTrip(t, ts, counter)
	b := EncodeDense(nil, ts, counter)
	require.Equal(t, byte(modeDecimal|flagExc), b[1]&^flagDoD)
	require.Less(t, len(b), 600) // 240 bytes of timestamps, ~1 per value
	require.Greater(t, len(appendXORValues(nil, counter)), 1000)

	roundTrip(t, ts, steady)
	b = EncodeDense(nil, ts, steady)
	require.Equal(t, byte(modeDecimal|flagDoD), b[1], "a steady rate is cheapest as delta-of-delta")
	require.Less(t, len(b), 2*240+30) // a zero byte per timestamp and per value

	// Too many exceptions: XOR.
	noisy := slices.Clone(counter)
	for i := range 20 {
		noisy[i*7] = math.Inf(1)
	}
	roundTrip(t, ts, noisy)
	require.Equal(t, byte(modeXOR), EncodeDense(nil, ts, noisy)[1])
}

func TestDenseRejectsBadModes(t *testing.T) {
	b := EncodeDense(nil, []int64{1, 2}, []float64{1, 2})
	for _, m := range []byte{3, 4, 8, 16, 0x80, modeXOR | flagDoD} {
		bad := slices.Clone(b)
		bad[1] = m
		_, _, err := DecodeDense(bad, nil, nil)
		require.ErrorIs(t, err, ErrCorrupt, "mode %#x", m)
	}
}

// SnapshotSince starts near mint and yields exactly the samples at or
// after it, for every mint, as a full decode does: samples 15 s apart
// (every mark kept), and samples that pass the 24.8 days a mark's 32-bit
// offsets hold, from the start or from the 100th sample on (the marks
// that do not fit are left out).
func TestXORSnapshotSince(t *testing.T) {
	const month = 30 * 24 * 3600 * 1000
	for _, shape := range []struct {
		name  string
		step  func(i int) int64
		marks int
	}{
		{"regular", func(i int) int64 { return int64(15000 + (i%7)*13 - 40) }, 4},
		{"a month apart", func(int) int64 { return month }, 0},
		{"a month apart from the 100th", func(i int) int64 {
			if i >= 100 {
				return month + int64(i)
			}
			return 15000
		}, 1},
	} {
		t.Run(shape.name, func(t *testing.T) { checkSnapshotSince(t, shape.step, shape.marks) })
	}
}

func checkSnapshotSince(t *testing.T, step func(int) int64, marks int) {
	c := NewXORChunk()
	var ts []int64
	var vs []float64
	tt := int64(1000)
	for i := range 300 {
		tt += step(i)
		v := float64(i%11)*1.5 + float64(i)/3
		c.Append(tt, v)
		ts, vs = append(ts, tt), append(vs, v)
	}
	kept := 0
	if c.marks != nil {
		kept = len(*c.marks)
	}
	if kept != marks {
		t.Fatalf("%d marks kept, want %d", kept, marks)
	}
	for _, mint := range []int64{0, ts[0], ts[63], ts[64], ts[65], ts[130] + 1, ts[299], ts[299] + 1} {
		b, n, r := c.SnapshotSince(mint, nil)
		if marks == 4 && mint > ts[70] && len(b)-fastMargin >= c.Size() {
			t.Fatalf("mint %d: copied the whole chunk", mint)
		}
		// Since is what the snapshot copies (the chunk's whole words; the
		// snapshot adds the bits not in a word yet and the padding).
		if since := c.Since(mint); !bytes.HasPrefix(b, since) || len(b)-fastMargin-len(since) > 8 {
			t.Fatalf("mint %d: Since is %d bytes, the snapshot %d", mint, len(since), len(b)-fastMargin)
		}
		// AppendRange decodes the padded copy in its fast loop to the
		// end, never calling Next.
		fr := NewXORIteratorFrom(b, n, r).(*xorIter)
		for fr.i < n-1 && fr.Next() {
		}
		if !fr.fast() {
			t.Fatalf("mint %d: the last sample is past the fast loop's reach", mint)
		}
		it := NewXORIteratorFrom(b, n, r)
		var got []int64
		if it.SeekTo(mint) {
			for {
				at, v := it.At()
				got = append(got, at)
				idx := indexOf(ts, at)
				if idx < 0 || vs[idx] != v {
					t.Fatalf("mint %d: sample %d=%v not in the chunk", mint, at, v)
				}
				if !it.Next() {
					break
				}
			}
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
		var want []int64
		for _, x := range ts {
			if x >= mint {
				want = append(want, x)
			}
		}
		if len(got) != len(want) || (len(got) > 0 && got[0] != want[0]) {
			t.Fatalf("mint %d: got %d samples from %v, want %d", mint, len(got), got, len(want))
		}
	}
}

func indexOf(ts []int64, t int64) int {
	for i, x := range ts {
		if x == t {
			return i
		}
	}
	return -1
}

// TestWordWriterMatchesBitWriter writes random bit fields through both
// writers: the bytes, from every offset, and the bit counts must agree.
func TestWordWriterMatchesBitWriter(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 18))
	for round := range 200 {
		var bw bitWriter
		var ww wordWriter
		for f := range rng.IntN(300) {
			n := 1 + rng.IntN(64)
			v := rng.Uint64() // high bits beyond n must be ignored
			if f%7 == 0 {
				v = 0
			}
			bw.writeBits(v, n)
			ww.writeBits(v, n)
			if got, want := ww.bitLen(), 8*len(bw.b)-int(bw.free); got != want {
				t.Fatalf("round %d field %d: %d bits, want %d", round, f, got, want)
			}
		}
		for from := 0; from <= len(bw.b); from++ {
			if got := ww.appendFrom([]byte{0xaa}, from); !bytes.Equal(got[1:], bw.b[from:]) || got[0] != 0xaa {
				t.Fatalf("round %d from %d: % x, want % x", round, from, got[1:], bw.b[from:])
			}
		}
	}
}

// xorSeries makes n samples of a kind: regular scrapes with jitter, gaps
// that need each delta-of-delta width (64 bits included), constants,
// counters, full-precision floats, NaN, ±Inf and sign changes.
func xorSeries(rng *rand.Rand, n, kind int) ([]int64, []float64) {
	ts, vs := make([]int64, n), make([]float64, n)
	t, v := int64(rng.IntN(1<<40))-1<<39, rng.Float64()*1000
	for i := range n {
		switch rng.IntN(20) {
		case 0:
			t += 1 + int64(rng.IntN(1<<20)) // wider delta-of-deltas
		case 1:
			t += 1 + int64(rng.Uint64()>>(20+rng.IntN(20))) // 64-bit ones
		default:
			t += 15000 + int64(rng.IntN(11)-5)
		}
		switch kind {
		case 0: // constant
		case 1:
			v += float64(rng.IntN(5000))
		case 2:
			v = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(30)-15))
		case 3:
			switch rng.IntN(8) {
			case 0:
				v = math.NaN()
			case 1:
				v = math.Inf(1 - 2*rng.IntN(2))
			case 2:
				v = math.Float64frombits(rng.Uint64())
			default:
				v = math.Round(rng.Float64()*1e4) / 100
			}
		default:
			if rng.IntN(3) == 0 {
				v = -v + float64(rng.IntN(3))
			}
		}
		ts[i], vs[i] = t, v
	}
	return ts, vs
}

// TestXORAppendRangeMatchesNext reads chunks of every kind through
// AppendRange (its fast loop) and through Next, in random windows and in
// chained calls after seeks: the samples, the bits of the values and where
// the iterator is left must agree; so must damaged chunks, error for
// error.
func TestXORAppendRangeMatchesNext(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 5))
	read := func(b []byte, n int, windows [][2]int64, seek int64, fast bool) (ts []int64, vs []uint64, errs []string, at []int64) {
		it := NewXORIterator(b, n)
		if seek != math.MinInt64 {
			it.SeekTo(seek)
		}
		for _, w := range windows {
			var gts []int64
			var gvs []float64
			var err error
			if fast {
				gts, gvs, err = it.(RangeAppender).AppendRange(w[0], w[1], nil, nil)
			} else {
				x := it.(*xorIter)
				if x.primed && x.t >= w[0] && x.t <= w[1] {
					gts, gvs = append(gts, x.t), append(gvs, math.Float64frombits(x.bits))
				}
				if !x.primed || x.t <= w[1] {
					for x.Next() {
						if x.t < w[0] {
							continue
						}
						if x.t > w[1] {
							break
						}
						gts, gvs = append(gts, x.t), append(gvs, math.Float64frombits(x.bits))
					}
				}
				err = x.err
			}
			ts = append(ts, gts...)
			for _, v := range gvs {
				vs = append(vs, math.Float64bits(v))
			}
			errs = append(errs, fmt.Sprint(err))
			x := it.(*xorIter)
			at = append(at, int64(x.i), x.t, int64(x.r.pos))
		}
		return ts, vs, errs, at
	}
	for round := range 3000 {
		n := 1 + rng.IntN(600)
		cts, cvs := xorSeries(rng, n, round%5)
		b, got := xorEncode(cts, cvs)
		require.Equal(t, n, got)
		if round%4 == 3 { // damage
			b = slices.Clone(b)
			for range 1 + rng.IntN(3) {
				b[rng.IntN(len(b))] ^= byte(1 << rng.IntN(8))
			}
		}
		pick := func() int64 { return cts[rng.IntN(n)] + int64(rng.IntN(3)-1) }
		var windows [][2]int64
		for range 1 + rng.IntN(3) {
			lo := pick()
			windows = append(windows, [2]int64{lo, lo + int64(rng.IntN(1<<22))})
		}
		slices.SortFunc(windows, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
		if rng.IntN(4) == 0 {
			windows = [][2]int64{{math.MinInt64, math.MaxInt64}}
		}
		seek := int64(math.MinInt64)
		if rng.IntN(3) == 0 {
			seek = pick()
		}
		wts, wvs, werrs, wat := read(b, n, windows, seek, false)
		gts, gvs, gerrs, gat := read(b, n, windows, seek, true)
		require.Equal(t, wts, gts, "round %d: timestamps", round)
		require.Equal(t, wvs, gvs, "round %d: values", round)
		require.Equal(t, werrs, gerrs, "round %d: errors", round)
		require.Equal(t, wat, gat, "round %d: where the iterator stops", round)
	}
}

// Since is the start of what SnapshotSince copies at every length of a
// head, a resume mark just made (its bits not in a word yet) included.
func TestXORSinceEveryLength(t *testing.T) {
	c := NewXORChunk()
	var ts []int64
	for i := range 200 {
		at := int64(1000 + 15000*i)
		c.Append(at, float64(i%7)*0.25+float64(i))
		ts = append(ts, at)
		for _, mint := range []int64{0, ts[0], ts[i], ts[i] + 1, ts[i/2], ts[max(i-1, 0)] + 1} {
			b, _, _ := c.SnapshotSince(mint, nil)
			if since := c.Since(mint); !bytes.HasPrefix(b, since) || len(b)-fastMargin-len(since) > 8 {
				t.Fatalf("%d samples, mint %d: Since is %d bytes, the snapshot %d", i+1, mint, len(since), len(b)-fastMargin)
			}
		}
	}
}
