package storage

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestKeyCacheGetMany checks the batched lookup against what the cache
// holds: keys in the current and the previous generation, unknown keys, a
// key whose second hash does not match, a deleted series, and repeats in
// one batch; and that a key found moves to the current generation, as get
// moves it.
func TestKeyCacheGetMany(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// Two generations of 4 keys a stripe: 600 keys leave some in prev and
	// drop some whole.
	c := newKeyCache(8 * keyStripes)
	var ids []keyID
	for i := range 600 {
		id := c.id("t", fmt.Appendf(nil, "key-%d", i))
		ms := newMemSeries(uint64(i), 1, labels.FromStrings("i", fmt.Sprint(i)))
		if i%50 == 0 {
			ms.state.setGone(true)
		}
		c.put(id, keyEntry{ms: ms})
		ids = append(ids, id)
	}
	var batch []keyID
	for range 3000 {
		id := ids[rng.IntN(len(ids))]
		switch rng.IntN(10) {
		case 0:
			id = c.id("t", fmt.Appendf(nil, "unknown-%d", rng.Int()))
		case 1:
			id[1]++ // same slot, other key
		}
		batch = append(batch, id)
	}
	var l keyLookup
	for round := range 3 {
		// What the cache holds before the lookups: getMany finds exactly
		// those (promotions come after all the lookups).
		want := make([]keyEntry, len(batch))
		wantOK := make([]bool, len(batch))
		wasPrev := make([]bool, len(batch))
		for i, id := range batch {
			st := &c.stripes[id[0]%keyStripes]
			e, ok := st.cur.get(id[0])
			if !ok && st.prev != nil {
				e, ok = st.prev.get(id[0])
				wasPrev[i] = ok
			}
			if ok && e.check == id[1] && !e.ms.state.gone() {
				want[i], wantOK[i] = e, true
			} else {
				wasPrev[i] = false
			}
		}
		c.getMany(batch, &l)
		hits := 0
		for i := range batch {
			if l.hit[i] != wantOK[i] || l.ents[i] != want[i] {
				t.Fatalf("round %d, key %d: getMany = %v %v, want %v %v", round, i, l.ents[i], l.hit[i], want[i], wantOK[i])
			}
			if l.hit[i] {
				hits++
				if k := slices.Index(ids, batch[i]); uint64(k) != l.ents[i].ms.ref {
					t.Fatalf("round %d, key %d: entry of series %d names series %d", round, i, k, l.ents[i].ms.ref)
				}
			}
		}
		if hits == 0 || hits == len(batch) {
			t.Fatalf("round %d: %d hits of %d: the batch should mix hits and misses", round, hits, len(batch))
		}
		// The last key found in the previous generation is promoted last:
		// it is in the current one afterwards.
		for i := len(batch) - 1; i >= 0; i-- {
			if wasPrev[i] {
				if !c.stripes[batch[i][0]%keyStripes].cur.has(batch[i][0]) {
					t.Fatalf("round %d: key %d found in the previous generation was not moved to the current one", round, i)
				}
				break
			}
		}
	}
	if n := c.len(); n == 0 || n >= 600 {
		t.Fatalf("cache holds %d keys: the test should have rotated generations", n)
	}
}

// id is the id of key in tenant, as DB.Write works it out.
func (c *keyCache) id(tenant string, key []byte) keyID {
	return c.idIn(c.tenantHash(tenant), key)
}
