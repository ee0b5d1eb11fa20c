package storage

import "math/bits"

// keyTable maps the first half of a keyID to its entry: open addressing
// with linear probing over one slice of slots, indexed by the id's top
// bits (the stripe is picked by its low ones). A lookup is a few loads
// from consecutive slots, with no call and no second hash: a request's
// lookups run back to back and the CPU overlaps their waits on memory,
// which Go's map, with its longer path per lookup, allows less of (issue
// 18: the key cache's lookups were 14 % of the ingest CPU at 100k series).
type keyTable struct {
	slots []keySlot // a power of two long, or nil; ms == nil: free
	n     int
	shift uint8 // 64 - log2(len(slots))
}

type keySlot struct {
	k uint64
	keyEntry
}

// keyTableLoad is the most slots in use, in eighths: beyond it a table
// doubles.
const keyTableLoad = 7

// newKeyTable returns a table with room for n entries before it grows.
func newKeyTable(n int) *keyTable {
	t := &keyTable{}
	t.resize(n)
	return t
}

func (t *keyTable) resize(n int) {
	size := 8
	for size*keyTableLoad/8 < n {
		size *= 2
	}
	old := t.slots
	t.slots = make([]keySlot, size)
	t.shift = uint8(64 - bits.TrailingZeros(uint(size)))
	t.n = 0
	for i := range old {
		if old[i].ms != nil {
			t.put(old[i].k, old[i].keyEntry)
		}
	}
}

func (t *keyTable) len() int { return t.n }

func (t *keyTable) get(k uint64) (keyEntry, bool) {
	if t.slots == nil {
		return keyEntry{}, false
	}
	mask := uint64(len(t.slots) - 1)
	for i := k >> t.shift; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.ms == nil {
			return keyEntry{}, false
		}
		if s.k == k {
			return s.keyEntry, true
		}
	}
}

// put sets k's entry; e.ms must not be nil.
func (t *keyTable) put(k uint64, e keyEntry) {
	if (t.n+1)*8 > len(t.slots)*keyTableLoad {
		t.resize(t.n + 1)
	}
	mask := uint64(len(t.slots) - 1)
	for i := k >> t.shift; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.ms == nil {
			*s = keySlot{k: k, keyEntry: e}
			t.n++
			return
		}
		if s.k == k {
			s.keyEntry = e
			return
		}
	}
}

// has reports whether k has an entry.
func (t *keyTable) has(k uint64) bool {
	_, ok := t.get(k)
	return ok
}

// delete removes k's entry, if any, moving later slots of its run back so
// that every lookup still finds its entry before a free slot.
func (t *keyTable) delete(k uint64) {
	if t.slots == nil {
		return
	}
	mask := uint64(len(t.slots) - 1)
	i := k >> t.shift
	for ; t.slots[i].k != k || t.slots[i].ms == nil; i = (i + 1) & mask {
		if t.slots[i].ms == nil {
			return
		}
	}
	for j := (i + 1) & mask; t.slots[j].ms != nil; j = (j + 1) & mask {
		// The entry at j may move to i unless its home lies cyclically
		// in (i, j].
		home := t.slots[j].k >> t.shift
		if (j-home)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = keySlot{}
	t.n--
}

// deleteIf removes the entries for which drop is true.
func (t *keyTable) deleteIf(drop func(keyEntry) bool) {
	var ks []uint64
	for i := range t.slots {
		if s := &t.slots[i]; s.ms != nil && drop(s.keyEntry) {
			ks = append(ks, s.k)
		}
	}
	for _, k := range ks {
		t.delete(k)
	}
}
