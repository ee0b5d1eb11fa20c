package storage

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// StoredBytes estimates the bytes each tenant's sealed chunks (floats and
// native histograms) take on disk, compressed, from Pebble's tables: for
// every day and tenant it asks Pebble for the disk usage of the tenant's
// key range, which Pebble answers from its table indexes at block
// granularity (32 KiB) without reading data. Samples still in memory and
// in the WAL, and Pebble's memtables, are not counted. It costs one
// estimate per shard, kind of chunk, day and tenant.
func (db *DB) StoredBytes() (map[string]int64, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	out := map[string]int64{}
	for _, sh := range db.shards {
		if err := sh.storedBytes(out); err != nil {
			return nil, fmt.Errorf("estimate stored bytes of shard %d: %w", sh.id, err)
		}
	}
	return out, nil
}

func (s *shard) storedBytes(out map[string]int64) error {
	ids := map[uint32]string{}
	s.idxMu.RLock()
	for id, ti := range s.tenantByID {
		ids[id] = ti.name
	}
	s.idxMu.RUnlock()
	for _, prefix := range []byte{prefixChunk, prefixHistChunk} {
		first, last, ok, err := s.dayRange(prefix)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		lo := make([]byte, 9)
		hi := make([]byte, 9)
		for day := first; day <= last; day++ {
			lo[0], hi[0] = prefix, prefix
			putDay(lo[1:], day)
			putDay(hi[1:], day)
			for id, name := range ids {
				binary.BigEndian.PutUint32(lo[5:], id)
				binary.BigEndian.PutUint32(hi[5:], id+1)
				n, err := s.db.EstimateDiskUsage(lo, hi)
				if err != nil {
					return err
				}
				out[name] += int64(n)
			}
			if day == last { // NB: last may be MaxInt32
				break
			}
		}
	}
	return nil
}

// dayRange returns the first and last day that hold keys of prefix.
func (s *shard) dayRange(prefix byte) (first, last int32, ok bool, err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
	if err != nil {
		return 0, 0, false, err
	}
	defer it.Close()
	if !it.First() {
		return 0, 0, false, it.Error()
	}
	if len(it.Key()) < 5 {
		return 0, 0, false, fmt.Errorf("%w: chunk key %x", ErrCorrupt, it.Key())
	}
	first = getDay(it.Key()[1:])
	if !it.Last() || len(it.Key()) < 5 {
		return 0, 0, false, it.Error()
	}
	return first, getDay(it.Key()[1:]), true, it.Error()
}
