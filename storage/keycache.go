package storage

import (
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

// keyCache maps a writer's own encoding of a label set (SeriesSamples.Key,
// scoped by tenant) to the series it named, so that the write path can skip
// decoding, validating, hashing and looking up labels it has seen before.
// Keys are identified by 128 bits of seeded hash; a collision would need
// about 2^64 distinct keys. The cache lives in memory only and is rebuilt
// from the traffic after a restart.
//
// The cache is bounded (Options.KeyCacheEntries): a sender can make up any
// number of encodings of one series (label order, unknown fields), and
// every one would otherwise stay forever (#23: 6 M encodings of one series
// held 318 MB). Each stripe keeps two generations, as VictoriaMetrics'
// workingsetcache does: new keys go into the current one; when it is full
// it becomes the previous one and the one before is dropped whole. A key
// found in the previous generation moves to the current one, so keys in
// use survive and a flood of one-off keys evicts only other one-off keys
// and keys not used for a generation. A key evicted costs one decode and
// lookup on its next use, nothing more.
type keyCache struct {
	seed1, seed2 maphash.Seed
	// genMax is the most keys a stripe keeps in one generation, unless
	// the live series need more (live).
	genMax int
	// live is the number of series the DB holds (set by it): a
	// generation holds at least a stripe's share of them with some room
	// (a quarter more, and four standard deviations),
	// so that a key in steady use is found even at a million series. A
	// flood of one-off encodings of the same series does not move it.
	live    atomic.Int64
	stripes [keyStripes]keyStripe
}

const keyStripes = 64

type keyStripe struct {
	mu   sync.RWMutex
	cur  *keyTable // by keyID[0]
	prev *keyTable // nil: none
}

type keyID [2]uint64

// keyEntry is what a key names: its series, whose shard the series
// knows (memSeries.state). 24 bytes a slot in keyTable, where the series'
// hash, kept to pick the shard, made 32 (issue 18: a million keys).
type keyEntry struct {
	check uint64 // keyID[1]
	ms    *memSeries
}

// newKeyCache returns a cache of at most about maxEntries keys (two
// generations of maxEntries/2 over all stripes).
func newKeyCache(maxEntries int) *keyCache {
	c := &keyCache{seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed()}
	c.genMax = max(1, maxEntries/(2*keyStripes))
	for i := range c.stripes {
		c.stripes[i].cur = newKeyTable(0)
	}
	return c
}

// tenantHash is the part of a key's id its tenant gives, the same for
// every key of a write.
func (c *keyCache) tenantHash(tenant string) keyID {
	return keyID{maphash.String(c.seed1, tenant), maphash.String(c.seed2, tenant)}
}

// idIn is the id of key in the tenant whose tenantHash is th.
func (c *keyCache) idIn(th keyID, key []byte) keyID {
	// NB: one call of maphash.Bytes per seed (a maphash.Hash copies its
	// input through a buffer: twice the time), the tenant's hash XORed
	// in: equal ids for keys of two tenants need h(k1)^h(k2) = t1^t2
	// under both seeds, as unlikely as any other collision.
	return keyID{maphash.Bytes(c.seed1, key) ^ th[0], maphash.Bytes(c.seed2, key) ^ th[1]}
}

// maxPooledLookup is the most series of a write whose scratch is kept for
// the next: a rare huge import should not pin its slices.
const maxPooledLookup = 1 << 14

// keyLookup is the scratch of getMany (and of DB.Write: perShard), reused
// through a pool.
type keyLookup struct {
	perShard [][]writeItem
	ids      []keyID
	ents     []keyEntry
	hit      []bool
	order    []int32
	// extras are the writeItems' itemExtras, in pages that stay where
	// they are as more are taken (items point into them); n are in use.
	extras [][]itemExtra
	n      int
}

// extraPage is how many itemExtras a page of keyLookup.extras holds.
const extraPage = 256

// extra takes a zeroed itemExtra for an item of the write.
func (l *keyLookup) extra() *itemExtra {
	if l.n == len(l.extras)*extraPage {
		l.extras = append(l.extras, make([]itemExtra, extraPage))
	}
	x := &l.extras[l.n/extraPage][l.n%extraPage]
	l.n++
	return x
}

// clearExtras zeroes the itemExtras in use: they hold the caller's labels
// and histograms.
func (l *keyLookup) clearExtras() {
	for p := 0; p*extraPage < l.n; p++ {
		clear(l.extras[p][:min(extraPage, l.n-p*extraPage)])
	}
	l.n = 0
}

// getMany looks up every id at once: ents[i] is the live series ids[i]
// named and hit[i] whether there is one; a key found in the previous
// generation moves to the current one, so keys in use survive. The ids are taken stripe by stripe, each under one read
// lock, so that the lookups of a request run back to back: a lookup of a
// key not in the CPU's caches waits on memory, and only lookups not
// separated by a lock's atomic instruction overlap those waits.
func (c *keyCache) getMany(ids []keyID, l *keyLookup) {
	n := len(ids)
	l.ents = slices.Grow(l.ents[:0], n)[:n]
	l.hit = slices.Grow(l.hit[:0], n)[:n]
	l.order = slices.Grow(l.order[:0], n)[:n]
	var start [keyStripes + 1]int32
	for _, id := range ids {
		start[id[0]%keyStripes+1]++
	}
	for i := 1; i <= keyStripes; i++ {
		start[i] += start[i-1]
	}
	next := start
	for i, id := range ids {
		s := id[0] % keyStripes
		l.order[next[s]] = int32(i)
		next[s]++
	}
	var promote []int32
	for s := range keyStripes {
		idx := l.order[start[s]:start[s+1]]
		if len(idx) == 0 {
			continue
		}
		st := &c.stripes[s]
		st.mu.RLock()
		for _, i := range idx {
			e, ok := st.cur.get(ids[i][0])
			if !ok && st.prev != nil {
				if e, ok = st.prev.get(ids[i][0]); ok {
					promote = append(promote, i)
				}
			}
			l.ents[i], l.hit[i] = e, ok
		}
		st.mu.RUnlock()
	}
	for i := range ids {
		if l.hit[i] && (l.ents[i].check != ids[i][1] || l.ents[i].ms.state.gone()) {
			l.ents[i], l.hit[i] = keyEntry{}, false
		}
	}
	for _, i := range promote { // in use: keep it past the next rotation
		if !l.hit[i] {
			continue
		}
		st := &c.stripes[ids[i][0]%keyStripes]
		st.mu.Lock()
		if st.prev != nil {
			st.prev.delete(ids[i][0])
		}
		st.putLocked(ids[i][0], l.ents[i], c.generation())
		st.mu.Unlock()
	}
}

func (c *keyCache) put(id keyID, e keyEntry) {
	st := &c.stripes[id[0]%keyStripes]
	e.check = id[1]
	st.mu.Lock()
	st.putLocked(id[0], e, c.generation())
	st.mu.Unlock()
}

// generation is the most keys a stripe keeps in one generation now.
func (c *keyCache) generation() int {
	// NB: stripes get unequal shares (binomially): four standard
	// deviations of slack cover the largest while shares are small
	// (3,000 series: 47 on average, about 65 at most).
	share := float64(c.live.Load()) / keyStripes
	return max(c.genMax, int(share*5/4+4*math.Sqrt(share))+1)
}

func (st *keyStripe) putLocked(k uint64, e keyEntry, genMax int) {
	if st.cur.len() >= genMax && !st.cur.has(k) {
		st.prev, st.cur = st.cur, newKeyTable(genMax)
	}
	st.cur.put(k, e)
}

// len returns the number of keys held.
func (c *keyCache) len() int {
	n := 0
	for i := range c.stripes {
		st := &c.stripes[i]
		st.mu.RLock()
		n += st.cur.len()
		if st.prev != nil {
			n += st.prev.len()
		}
		st.mu.RUnlock()
	}
	return n
}

// sweep forgets keys of deleted series.
func (c *keyCache) sweep() {
	for i := range c.stripes {
		st := &c.stripes[i]
		st.mu.Lock()
		gone := func(e keyEntry) bool { return e.ms.state.gone() }
		st.cur.deleteIf(gone)
		if st.prev != nil {
			st.prev.deleteIf(gone)
		}
		st.mu.Unlock()
	}
}
