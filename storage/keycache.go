package storage

import (
	"hash/maphash"
	"sync"
)

// keyCache maps a writer's own encoding of a label set (SeriesSamples.Key,
// scoped by tenant) to the series it named, so that the write path can skip
// decoding, validating, hashing and looking up labels it has seen before.
// Keys are identified by 128 bits of seeded hash; a collision would need
// about 2^64 distinct keys. The cache lives in memory only and is rebuilt
// from the traffic after a restart.
type keyCache struct {
	seed1, seed2 maphash.Seed
	stripes      [64]keyStripe
}

type keyStripe struct {
	mu sync.RWMutex
	m  map[uint64]keyEntry // by keyID[0]
}

type keyID [2]uint64

type keyEntry struct {
	check uint64 // keyID[1]
	ms    *memSeries
	hash  uint64 // seriesHash of the series: picks its shard
}

func newKeyCache() *keyCache {
	c := &keyCache{seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed()}
	for i := range c.stripes {
		c.stripes[i].m = map[uint64]keyEntry{}
	}
	return c
}

func (c *keyCache) id(tenant string, key []byte) keyID {
	var h maphash.Hash
	h.SetSeed(c.seed1)
	_, _ = h.WriteString(tenant)
	_ = h.WriteByte(0xff)
	_, _ = h.Write(key)
	a := h.Sum64()
	h.SetSeed(c.seed2)
	_, _ = h.WriteString(tenant)
	_ = h.WriteByte(0xff)
	_, _ = h.Write(key)
	return keyID{a, h.Sum64()}
}

// get returns the live series the key named.
func (c *keyCache) get(id keyID) (keyEntry, bool) {
	st := &c.stripes[id[0]%uint64(len(c.stripes))]
	st.mu.RLock()
	e, ok := st.m[id[0]]
	st.mu.RUnlock()
	if !ok || e.check != id[1] || e.ms.gone.Load() {
		return keyEntry{}, false
	}
	return e, true
}

func (c *keyCache) put(id keyID, e keyEntry) {
	st := &c.stripes[id[0]%uint64(len(c.stripes))]
	e.check = id[1]
	st.mu.Lock()
	st.m[id[0]] = e
	st.mu.Unlock()
}

// sweep forgets keys of deleted series.
func (c *keyCache) sweep() {
	for i := range c.stripes {
		st := &c.stripes[i]
		st.mu.Lock()
		for id, e := range st.m {
			if e.ms.gone.Load() {
				delete(st.m, id)
			}
		}
		st.mu.Unlock()
	}
}
