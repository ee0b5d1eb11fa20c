package web

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestAppendTimeAndValueMatchStrconv checks the integer fast paths of the
// JSON formatting against the formatting Prometheus uses (strconv's
// shortest 'f'), at edges and over random times and values.
func TestAppendTimeAndValueMatchStrconv(t *testing.T) {
	times := []int64{0, 1, -1, 999, -999, 1000, -1000, 1001, 1010, 1100, 1500, -1500, -500, 1796457476100,
		1796457476123, -1796457476120, 999_999_999_999_999, -999_999_999_999_999, 1_000_000_000_000_000,
		-1_000_000_000_000_000, 1_234_567_890_123_456, math.MaxInt64, math.MinInt64 + 1}
	rng := rand.New(rand.NewPCG(3, 5))
	for range 200000 {
		times = append(times, rng.Int64N(2_000_000_000_000_000)-1_000_000_000_000_000, rng.Int64N(4_000_000_000_000)-2_000_000_000_000)
	}
	for _, tt := range times {
		want := strconv.AppendFloat(nil, float64(tt)/1000, 'f', -1, 64)
		if got := appendTime(nil, tt); string(got) != string(want) {
			t.Fatalf("time %d: %s, want %s", tt, got, want)
		}
	}
	values := []float64{0, math.Copysign(0, -1), 1, -1, 1 << 53, -(1 << 53), 1<<53 - 1, 1 << 60, 0.5, -0.5, 1e21, 1e20,
		123456789, 1e-7, math.MaxFloat64, math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1)}
	for range 200000 {
		values = append(values, math.Round(rng.NormFloat64()*1e12), rng.NormFloat64()*1e6, float64(rng.Int64()))
	}
	for _, v := range values {
		var want []byte
		switch {
		case math.IsNaN(v):
			want = []byte(`"NaN"`)
		case math.IsInf(v, 1):
			want = []byte(`"+Inf"`)
		case math.IsInf(v, -1):
			want = []byte(`"-Inf"`)
		default:
			format := byte('f')
			if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
				format = 'e'
			}
			want = append(strconv.AppendFloat([]byte{'"'}, v, format, -1, 64), '"')
		}
		if got := appendValue(nil, v); string(got) != string(want) {
			t.Fatalf("value %v: %s, want %s", v, got, want)
		}
	}
}
