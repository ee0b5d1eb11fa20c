package chunkenc

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// encodeDenseAll is EncodeDense as it was until 2026-12: it wrote every
// form and kept the shortest. EncodeDense must give the same bytes.
func encodeDenseAll(dst []byte, ts []int64, vs []float64) []byte {
	modeAt := len(dst) + 1
	dst = append(dst, denseVersion, modeXOR)
	dst = binary.AppendUvarint(dst, uint64(len(ts)))
	dst = binary.AppendVarint(dst, ts[0])
	dst = binary.AppendVarint(dst, ts[len(ts)-1])
	var prevD int64
	for i := 1; i < len(ts); i++ {
		d := ts[i] - ts[i-1]
		if i == 1 {
			dst = binary.AppendVarint(dst, d)
		} else {
			dst = binary.AppendVarint(dst, d-prevD)
		}
		prevD = d
	}
	xor := appendXORValues(nil, vs)
	k, exc, ok := chooseScale(vs, nil)
	if !ok {
		return append(dst, xor...)
	}
	best, mode := xor, byte(modeXOR)
	ints := make([]int64, len(vs))
	e := 0
	for i, v := range vs {
		if e < len(exc) && exc[e] == i {
			e++
			if i > 0 {
				ints[i] = ints[i-1]
			}
			continue
		}
		ints[i] = int64(math.Round(v * pow10[k]))
	}
	for _, dod := range []bool{false, true} {
		m := byte(modeInt)
		var b []byte
		if k > 0 {
			m = modeDecimal
			b = append(b, byte(k))
		}
		if len(exc) > 0 {
			m |= flagExc
			b = binary.AppendUvarint(b, uint64(len(exc)))
			prev := -1
			for _, i := range exc {
				b = binary.AppendUvarint(b, uint64(i-prev))
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(vs[i]))
				prev = i
			}
		}
		if dod {
			m |= flagDoD
		}
		b = appendIntValues(b, ints, dod)
		if len(b) < len(best) {
			best, mode = b, m
		}
	}
	dst[modeAt] = mode
	return append(dst, best...)
}

// TestEncodeDenseSizesFirst: sizing the forms before writing one gives
// the bytes that writing them all did, for every kind of series.
func TestEncodeDenseSizesFirst(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 6))
	for c := range 3000 {
		n := 1 + rng.IntN(300)
		ts := make([]int64, n)
		vs := make([]float64, n)
		t0 := rng.Int64N(1<<45) - 1<<44
		step := int64(1 + rng.IntN(60000))
		v := float64(rng.IntN(1 << 20))
		kind := rng.IntN(8)
		for i := range n {
			ts[i] = t0 + int64(i)*step
			if rng.IntN(5) == 0 {
				ts[i] += int64(rng.IntN(int(step))) / 2 // jitter
			}
			switch kind {
			case 0: // constant
			case 1: // counter
				v += float64(rng.IntN(2000))
			case 2: // centiseconds
				v = math.Round(v*100+float64(rng.IntN(1500))) / 100
			case 3: // noisy
				v = rng.NormFloat64() * 1e3
			case 4: // steady rate: delta-of-deltas
				v += 1000
			case 5: // integers with exceptions
				v = float64(rng.IntN(100))
				if rng.IntN(30) == 0 {
					v = math.NaN()
				}
			case 6: // huge and tiny
				v = float64(rng.Int64()) * math.Pow(10, float64(rng.IntN(40)-20))
			case 7: // stale markers, negative zero, infinities
				v = []float64{math.Float64frombits(0x7ff0000000000002), math.Copysign(0, -1), math.Inf(1), 1.5}[rng.IntN(4)]
			}
			vs[i] = v
		}
		for i := 1; i < n; i++ { // strictly increasing
			if ts[i] <= ts[i-1] {
				ts[i] = ts[i-1] + 1
			}
		}
		prefix := []byte{0xaa, 0xbb}[:rng.IntN(3)]
		want := encodeDenseAll(append([]byte(nil), prefix...), ts, vs)
		got := EncodeDense(append([]byte(nil), prefix...), ts, vs)
		require.Equal(t, want, got, "case %d (kind %d, %d samples)", c, kind, n)
	}
}

func TestVarintLens(t *testing.T) {
	for _, x := range []int64{0, 1, -1, 63, -64, 64, -65, 8191, 8192, math.MaxInt64, math.MinInt64, 1 << 40, -(1 << 40)} {
		require.Equal(t, len(binary.AppendVarint(nil, x)), varintLen(x), "%d", x)
		require.Equal(t, len(binary.AppendUvarint(nil, uint64(x))), uvarintLen(uint64(x)), "%d", x)
	}
}
