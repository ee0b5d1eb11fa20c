package web

import (
	"github.com/emsdb/tsdb/query"

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
	// Decimals of up to eight fractional digits at every magnitude around
	// the short-decimal path's bound (2^30), and their float neighbours.
	for _, k := range []float64{1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8} {
		for range 40000 {
			mag := math.Pow(2, float64(rng.IntN(34)))
			v := math.Round(rng.Float64()*mag*k) / k
			if rng.IntN(2) == 0 {
				v = -v
			}
			values = append(values, v, math.Nextafter(v, math.Inf(1)), math.Nextafter(v, math.Inf(-1)))
		}
	}
	values = append(values, 1<<30-0.5, 1<<30+0.5, 1<<30-1e-6, 1<<30-2e-6, 0.000001, 0.0000015, 1e-6+1e-7, 0.1, 0.2, 0.3,
		2.47, 36.6, 99.999999, 0.999999, 1.000001, -0.000001, 1073741823.999999)
	for _, v := range values {
		if got, want := appendValue(nil, v), prometheusValue(v); string(got) != string(want) {
			t.Fatalf("value %v: %s, want %s", v, got, want)
		}
	}
}

// prometheusValue is a value as Prometheus's jsonutil.MarshalFloat
// writes it.
func prometheusValue(v float64) []byte {
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`)
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`)
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`)
	}
	format := byte('f')
	if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	return append(strconv.AppendFloat([]byte{'"'}, v, format, -1, 64), '"')
}

// FuzzAppendValue holds the fast paths to strconv's shortest decimal for
// any float64 bits.
func FuzzAppendValue(f *testing.F) {
	for _, v := range []float64{0, math.Copysign(0, -1), 2.47, -36.6, 1 << 30, 1<<30 - 0.5, 0.000001, 1e-7, 123456.789012, 1e21, math.NaN()} {
		f.Add(math.Float64bits(v), int64(247), uint8(2))
	}
	f.Fuzz(func(t *testing.T, bits uint64, n int64, k uint8) {
		// The bits as they come, and a decimal n/10^k (k up to 9, n
		// under 2^45) such as exporters write.
		for _, v := range []float64{math.Float64frombits(bits), float64(n%(1<<45)) / math.Pow10(int(k%10))} {
			if got, want := appendValue(nil, v), prometheusValue(v); string(got) != string(want) {
				t.Fatalf("value %v (%#x): %s, want %s", v, math.Float64bits(v), got, want)
			}
		}
	})
}

// TestStepTimesMatchPlainTimes holds a range answer's times, formatted
// once per step for all series, to the times formatted one by one: series
// on the steps, with gaps, beginning late, off the steps, before the first
// step, far out, and a first series that sets odd steps.
func TestStepTimesMatchPlainTimes(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 2000 {
		start := rng.Int64N(4_000_000_000_000) - 2_000_000_000_000
		step := 1 + rng.Int64N(120_000)
		if round%10 == 0 {
			step = 1 + rng.Int64N(3) // steps of a millisecond or so: many share digits
		}
		var series []query.Series
		for range 1 + rng.IntN(6) {
			var s query.Series
			tt := start + (rng.Int64N(20)-2)*step
			for range rng.IntN(40) {
				switch rng.IntN(12) {
				case 0:
					tt += rng.Int64N(step) + 1 // off the steps
				case 1:
					tt += rng.Int64N(30) * step // a gap
				case 2:
					tt += int64(maxCachedSteps) * step // past what is cached
				default:
					tt += step
				}
				s.Points = append(s.Points, query.Point{T: tt, F: float64(tt)})
			}
			series = append(series, s)
		}
		if round%7 == 0 {
			series = append(series, query.Series{Points: []query.Point{{T: math.MaxInt64 - 5}, {T: math.MaxInt64}}})
		}
		times := newStepTimes(series)
		for i := range series {
			got := appendSeriesPoints(nil, &series[i], times)
			want := appendSeriesPoints(nil, &series[i], nil)
			if string(got) != string(want) {
				t.Fatalf("round %d series %d (start %d step %d):\n got %s\nwant %s", round, i, start, step, got, want)
			}
		}
	}
}
