package storage

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
)

// newZstdEncoder and zstdRecord write the zstd records of logs written
// before 2026-12 (0x80), which replay still reads.
func newZstdEncoder() *zstd.Encoder {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithZeroFrames(true))
	if err != nil {
		panic(err)
	}
	return enc
}

func zstdRecord(enc *zstd.Encoder, dst, rec []byte) []byte {
	dst = append(dst[:0], recordZstd)
	dst = binary.AppendUvarint(dst, uint64(len(rec)))
	return enc.EncodeAll(rec, dst)
}

// appendBlockEntry07 writes the block entries of logs written before
// 2026-12 (0x07: no bitmap, a value like its base is valSame), which
// replay still reads.
func appendBlockEntry07(dst []byte, ss []blockSeries, gen uint64) []byte {
	dst = append(dst, entryBlock)
	dst = binary.AppendUvarint(dst, uint64(len(ss)))
	prev := uint64(0)
	for _, s := range ss {
		dst = binary.AppendVarint(dst, int64(s.ref-prev))
		prev = s.ref
	}
	var tbase int64
	for _, s := range ss {
		if len(s.samples) > 0 {
			tbase = s.samples[0].T
			break
		}
	}
	var ts, vs []byte
	for _, s := range ss {
		p := s.pred
		predicted := p.gen == gen
		flag := uint64(0)
		if predicted {
			flag = 1
		} else {
			*p = walPred{gen: gen, t: tbase}
		}
		dst = binary.AppendUvarint(dst, uint64(len(s.samples))<<1|flag)
		for i, smp := range s.samples {
			ts = binary.AppendVarint(ts, smp.T-(p.t+p.dt))
			vs = appendValue(vs, p, smp.V)
			if i == 0 && !predicted {
				p.dt = 0
			} else {
				p.dt = smp.T - p.t
			}
			p.t, p.v = smp.T, smp.V
		}
	}
	dst = binary.AppendVarint(dst, tbase)
	dst = binary.AppendUvarint(dst, uint64(len(ts)))
	dst = append(dst, ts...)
	return append(dst, vs...)
}

// codecValues are the values a series takes in the codec tests: every
// value mode, and values that must survive bit for bit.
func codecValue(rng *rand.Rand, prev float64) float64 {
	switch rng.IntN(12) {
	case 0:
		return prev
	case 1:
		return prev + float64(rng.IntN(2000)) // counter
	case 2:
		return math.Round(prev*100+float64(rng.IntN(1500))) / 100 // centiseconds
	case 3:
		return float64(4096 * rng.IntN(1<<30))
	case 4:
		return rng.Float64() * 1e6 // full precision
	case 5:
		return math.Float64frombits(0x7ff0000000000002) // stale marker
	case 6:
		return math.NaN()
	case 7:
		return math.Copysign(0, -1)
	case 8:
		return math.Inf(rng.IntN(2)*2 - 1)
	case 9:
		return float64(rng.Int64()) // beyond 2^53
	case 10:
		return -float64(rng.IntN(1e6)) / 1000
	default:
		return math.Float64frombits(rng.Uint64())
	}
}

// TestBlockRoundTrip writes records of block entries the way shard.write
// does (series repeated in a block, generations changing as segments and
// failed appends do) and decodes them, compressed (S2, or zstd as before
// 2026-12) or not, bit for bit; a segment written before 2026-12 (0x07
// blocks) now and then.
func TestBlockRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	enc := newZstdEncoder()
	defer enc.Close()
	const nseries = 50
	preds := make([]walPred, nseries)
	last := make([]float64, nseries)
	tnow := make([]int64, nseries)
	gen := uint64(1)
	dec := newRecDecoder()
	var ts, vs, zbuf []byte
	old := false
	for rec := range 300 {
		if rng.IntN(40) == 0 { // a new segment
			gen++
			dec.reset()
			old = rng.IntN(3) == 0
		}
		var blk []blockSeries
		var want []blockSeries
		for range 1 + rng.IntN(30) {
			i := rng.IntN(nseries)
			n := 1 + rng.IntN(3)
			var smp []Sample
			for range n {
				tnow[i] += int64(rng.IntN(3)) * 15000 // steady, repeated or out of order
				if rng.IntN(10) == 0 {
					tnow[i] -= int64(rng.IntN(1e6))
				}
				last[i] = codecValue(rng, last[i])
				smp = append(smp, Sample{T: tnow[i], V: last[i]})
			}
			blk = append(blk, blockSeries{ref: uint64(i) * 977, samples: smp, pred: &preds[i]})
			want = append(want, blockSeries{ref: uint64(i) * 977, samples: smp})
		}
		var r []byte
		if old {
			r = appendBlockEntry07(nil, blk, gen)
		} else {
			r, ts, vs = appendBlockEntry(nil, blk, gen, ts, vs)
		}
		r = appendUsageEntry(r, 1, 2, []UsageDelta{{Name: "x", Value: 3}})
		var compressed bool
		if rng.IntN(4) == 0 {
			zbuf, compressed = zstdRecord(enc, zbuf, r), true
		} else {
			zbuf, compressed = compressRecord(zbuf, r)
		}
		if compressed {
			r = zbuf
		}
		if rng.IntN(50) == 0 { // an append that failed: nothing logged
			gen++
			continue
		}
		var got []blockSeries
		err := decodeRecord(r, &recordVisitor{samples: func(ref uint64, s []Sample) error {
			got = append(got, blockSeries{ref: ref, samples: append([]Sample(nil), s...)})
			return nil
		}}, dec)
		require.NoError(t, err, "record %d", rec)
		require.Len(t, got, len(want))
		for k := range want {
			require.Equal(t, want[k].ref, got[k].ref)
			require.Len(t, got[k].samples, len(want[k].samples))
			for j, s := range want[k].samples {
				g := got[k].samples[j]
				require.Equal(t, s.T, g.T, "record %d series %d sample %d", rec, k, j)
				require.Equal(t, math.Float64bits(s.V), math.Float64bits(g.V), "record %d series %d sample %d: %v != %v", rec, k, j, s.V, g.V)
			}
		}
	}
}

func TestValueEncoding(t *testing.T) {
	f := func(prev, v float64, size int) {
		t.Helper()
		b := appendValue(nil, &walPred{v: prev}, v)
		require.Len(t, b, size, "%v after %v", v, prev)
		r := recReader{b: b}
		got := r.value(prev)
		require.NoError(t, r.err)
		require.Empty(t, r.b)
		require.Equal(t, math.Float64bits(v), math.Float64bits(got), "%v after %v", v, prev)
	}
	f(42, 42, 1)
	f(1e9, 1e9+1000, 2)       // counter
	f(123.45, 123.6, 2)       // centiseconds
	f(0, 0.1, 1)              // decimal from 0
	f(0, 8192, 3)             // 4 KiB pages
	f(0, math.Pi, 9)          // 16 digits: 10^15, 9 bytes
	f(math.Pi, math.NaN(), 9) // XOR
	f(0, math.Copysign(0, -1), 2)
	f(1, math.Inf(1), 2)
	f(0, 1<<60, 3)                                                    // XOR: beyond 2^53
	f(0.000175341, 0.000175342, 2)                                    // nanoseconds as seconds: 10^9
	f(0.000175341, 0.000175341+1e-15, 2)                              // 10^15
	f(1.5e-9, 2.5e-9, 2)                                              // 10^10
	f(-0.000175341, 0.000175341, 4)                                   // across zero
	f(0.20700000000000002, math.Nextafter(0.20700000000000002, 1), 3) // XOR: 17 digits
}

func TestValueEncodingCorrupt(t *testing.T) {
	for _, h := range []uint64{11<<3 | valDecExt, 15<<3 | valDecExt, 1<<7 | 15<<3 | valDecExt} {
		r := recReader{b: binary.AppendUvarint(nil, h)}
		r.value(1)
		require.ErrorIs(t, r.err, ErrCorrupt, "header %#x", h)
	}
}

// TestValueScaleMemo checks the writer's memory of a series' scale: a
// series of values no scale fits tries them all once every xorRetry
// values, and takes a decimal again as soon as one fits.
func TestValueScaleMemo(t *testing.T) {
	p := &walPred{}
	var b []byte
	vals := []float64{0.30000000000000004, 1.0000000000000002, 0.20700000000000002, 1.5, 2.5, 0.000175341}
	for _, v := range vals {
		b = appendValue(b, p, v)
		p.v = v
	}
	// The first three have 17 digits: XOR; after them 1.5 is tried at the last scale
	// only (0: not exact), so it is XOR too, as is 2.5; the sixth value
	// fits no scale tried either. Then the retry finds 10^9.
	require.EqualValues(t, 6, p.xors)
	for i := 6; i < xorRetry; i++ {
		b = appendValue(b, p, float64(i)+0.5)
		p.v = float64(i) + 0.5
	}
	require.EqualValues(t, xorRetry, p.xors)
	b = appendValue(b, p, 17.25)
	require.EqualValues(t, 0, p.xors, "the retry takes 10^2")
	require.EqualValues(t, 2, p.scale)
	r := recReader{b: b}
	prev := 0.0
	for i := range xorRetry + 1 {
		want := 17.25
		switch {
		case i < len(vals):
			want = vals[i]
		case i < xorRetry:
			want = float64(i) + 0.5
		}
		got := r.value(prev)
		require.NoError(t, r.err)
		require.Equal(t, math.Float64bits(want), math.Float64bits(got), "value %d", i)
		prev = got
	}
	require.Empty(t, r.b)
}

// decodeErr decodes rec from a fresh decoder.
func decodeErr(rec []byte) error {
	return decodeRecord(rec, &recordVisitor{
		tenant:  func(uint32, string) error { return nil },
		series:  func(uint64, uint32, []byte) error { return nil },
		samples: func(uint64, []Sample) error { return nil },
		delete:  func(uint64, int64, int64) error { return nil },
		usage:   func(uint32, int32, []UsageDelta) error { return nil },
	}, newRecDecoder())
}

// A damaged record is ErrCorrupt (the WAL's checksum catches most damage
// first; this is what gets past it, or a bug), never a panic.
func TestBlockCorruptDetected(t *testing.T) {
	var preds [3]walPred
	blk := []blockSeries{
		{ref: 5, samples: []Sample{{T: 1000, V: 1}, {T: 2000, V: 2.5}}, pred: &preds[0]},
		{ref: 9, samples: []Sample{{T: 1500, V: math.Pi}}, pred: &preds[1]},
		{ref: 5, samples: []Sample{{T: 3000, V: 4}}, pred: &preds[0]},
	}
	rec, _, _ := appendBlockEntry(nil, blk, 1, nil, nil)
	require.NoError(t, decodeErr(rec))
	for cut := 1; cut < len(rec); cut++ {
		require.ErrorIs(t, decodeErr(rec[:cut]), ErrCorrupt, "cut at %d", cut)
	}
	var preds07 [3]walPred
	blk07 := slices.Clone(blk)
	blk07[0].pred, blk07[1].pred, blk07[2].pred = &preds07[0], &preds07[1], &preds07[0]
	rec07 := appendBlockEntry07(nil, blk07, 1)
	require.NoError(t, decodeErr(rec07))
	for cut := 1; cut < len(rec07); cut++ {
		require.ErrorIs(t, decodeErr(rec07[:cut]), ErrCorrupt, "0x07 cut at %d", cut)
	}
	// A bitmap bit past the block's samples: four samples, so the bitmap's
	// byte sits just before the values, which begin with 1.0's.
	bad := slices.Clone(rec)
	bm := len(bad) - len(appendValue(nil, &walPred{}, 1)) - len(appendValue(nil, &walPred{v: 1}, 2.5)) -
		len(appendValue(nil, &walPred{}, math.Pi)) - len(appendValue(nil, &walPred{v: 2.5}, 4)) - 1
	require.Zero(t, bad[bm], "no value of the four is its base's")
	bad[bm] = 0x10
	require.ErrorContains(t, decodeErr(bad), "bits past its 4 samples")
	// A block predicted from a sample the segment does not hold: its base
	// was in a truncated segment, or a skipped record.
	next, _, _ := appendBlockEntry(nil, blk[:1], 1, nil, nil)
	err := decodeErr(next)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, "not in the segment")

	// A compressed record whose length or frame is wrong.
	big := append([]byte(nil), rec...)
	for len(big) < 2*minCompress {
		big = append(big, rec...) // the same block again: predicted this time
	}
	z, ok := compressRecord(nil, big)
	require.True(t, ok)
	require.Equal(t, recordS2, z[0])
	zb := append([]byte(nil), z...)
	require.NoError(t, decodeRecord(zb, &recordVisitor{samples: func(uint64, []Sample) error { return nil }}, newRecDecoder()))
	require.ErrorIs(t, decodeErr(zb[:len(zb)-3]), ErrCorrupt)
	require.ErrorIs(t, decodeErr([]byte{recordS2, 0xff, 0xff, 0xff, 0xff, 0x7f}), ErrCorrupt)
	require.ErrorIs(t, decodeErr([]byte{recordS2}), ErrCorrupt)
	twice, _ := compressRecord(nil, append(zb, make([]byte, minCompress)...))
	require.ErrorContains(t, decodeErr(twice), "compressed twice")

	enc := newZstdEncoder()
	defer enc.Close()
	zs := zstdRecord(enc, nil, big)
	require.NoError(t, decodeRecord(zs, &recordVisitor{samples: func(uint64, []Sample) error { return nil }}, newRecDecoder()))
	wrongLen := append([]byte{recordZstd}, binary.AppendUvarint(nil, uint64(len(big)+1))...)
	wrongLen = append(wrongLen, zs[1+len(binary.AppendUvarint(nil, uint64(len(big)))):]...)
	require.ErrorIs(t, decodeErr(wrongLen), ErrCorrupt)
	require.ErrorIs(t, decodeErr(zs[:len(zs)-3]), ErrCorrupt)
	require.ErrorIs(t, decodeErr([]byte{recordZstd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}), ErrCorrupt)

	// Random damage: any error is ErrCorrupt, and nothing panics.
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		src := [][]byte{rec, rec07, zb, zs}[rng.IntN(4)]
		bad := append([]byte(nil), src...)
		for range 1 + rng.IntN(3) {
			bad[rng.IntN(len(bad))] = byte(rng.Uint32())
		}
		if err := decodeErr(bad); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%x: %v", bad, err)
		}
	}
}

// FuzzBlockDecode: no input panics the decoder or makes it allocate
// without bound.
func FuzzBlockDecode(f *testing.F) {
	var preds [2]walPred
	rec, _, _ := appendBlockEntry(nil, []blockSeries{
		{ref: 1, samples: []Sample{{T: 1, V: 1}, {T: 2, V: 0.5}}, pred: &preds[0]},
		{ref: 2, samples: []Sample{{T: 3, V: math.NaN()}}, pred: &preds[1]},
	}, 1, nil, nil)
	f.Add(rec)
	var preds07 [2]walPred
	f.Add(appendBlockEntry07(nil, []blockSeries{
		{ref: 1, samples: []Sample{{T: 1, V: 1}, {T: 2, V: 1}}, pred: &preds07[0]},
		{ref: 2, samples: []Sample{{T: 3, V: 0}}, pred: &preds07[1]},
	}, 1))
	if z, ok := compressRecord(nil, append(append(append([]byte(nil), rec...), rec...), make([]byte, minCompress)...)); ok {
		f.Add(z)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := decodeErr(b); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatal(err)
		}
	})
}
