package storage

import (
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestKeyTableMatchesMap runs random puts, deletes and sweeps against a
// Go map. Keys share their top bits in small groups, so runs of occupied
// slots are long, cross the end of the slice and are cut by deletes in
// their middle, which is where backward-shift deletion goes wrong.
func TestKeyTableMatchesMap(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		rng := rand.New(rand.NewPCG(seed, 7))
		tab := newKeyTable(0)
		ref := map[uint64]keyEntry{}
		series := make([]*memSeries, 64)
		for i := range series {
			series[i] = newMemSeries(uint64(i), 1, labels.EmptyLabels())
		}
		key := func() uint64 {
			// 40 groups of top bits (the last ones at the very top: a
			// run starting there wraps), 6 keys each.
			g := uint64(rng.IntN(40))
			if g >= 36 {
				g = 1<<20 - 1 - (g - 36)
			}
			return g<<44 | uint64(rng.IntN(6))
		}
		for op := range 20000 {
			k := key()
			switch r := rng.IntN(10); {
			case r < 5:
				e := keyEntry{check: rng.Uint64(), ms: series[rng.IntN(len(series))]}
				tab.put(k, e)
				ref[k] = e
			case r < 9:
				tab.delete(k)
				delete(ref, k)
			default:
				for _, ms := range series {
					ms.state.setGone(rng.IntN(8) == 0)
				}
				tab.deleteIf(func(e keyEntry) bool { return e.ms.state.gone() })
				for k, e := range ref {
					if e.ms.state.gone() {
						delete(ref, k)
					}
				}
				for _, ms := range series {
					ms.state.setGone(false)
				}
			}
			if tab.len() != len(ref) {
				t.Fatalf("seed %d, op %d: %d entries, want %d", seed, op, tab.len(), len(ref))
			}
			for g := range 40 {
				for i := range 6 {
					k := uint64(g)<<44 | uint64(i)
					if g >= 36 {
						k = uint64(1<<20-1-(g-36))<<44 | uint64(i)
					}
					got, ok := tab.get(k)
					want, wantOK := ref[k]
					if ok != wantOK || got != want {
						t.Fatalf("seed %d, op %d: get(%#x) = %v %v, want %v %v", seed, op, k, got, ok, want, wantOK)
					}
				}
			}
		}
		if len(tab.slots) > 512 {
			t.Errorf("seed %d: %d slots for at most 240 keys", seed, len(tab.slots))
		}
	}
}
