package storage

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/common/model"
)

// StoredBytes estimates the bytes each tenant's data takes on disk,
// compressed, by tier: "raw" for its sealed chunks (floats and native
// histograms) and each downsampling tier by its resolution ("5m", "1h")
// for its buckets. Pebble answers from its table indexes at block
// granularity (32 KiB) without reading data. Samples still in memory and
// in the WAL, and Pebble's memtables, are not counted. It costs one
// estimate per shard, kind of data, day and tenant.
func (db *DB) StoredBytes() (map[string]map[string]int64, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	out := map[string]map[string]int64{}
	for _, sh := range db.shards {
		if err := sh.storedBytes(out); err != nil {
			return nil, fmt.Errorf("estimate stored bytes of shard %d: %w", sh.id, err)
		}
	}
	return out, nil
}

// TierName is how usage and answers name a tier of resolution res.
func TierName(res time.Duration) string { return model.Duration(res).String() }

func (s *shard) storedBytes(out map[string]map[string]int64) error {
	ids := map[uint32]string{}
	s.idxMu.RLock()
	for id, ti := range s.tenantByID {
		ids[id] = ti.name
	}
	s.idxMu.RUnlock()
	add := func(tenant, tier string, n uint64) {
		if out[tenant] == nil {
			out[tenant] = map[string]int64{}
		}
		out[tenant][tier] += int64(n)
	}
	// each estimates, for every day of one kind of key (its prefix, the
	// day after it) and tenant, the key range prefix|day|tenant.
	each := func(prefix []byte, tier string) error {
		first, last, ok, err := s.dayRange(prefix)
		if err != nil || !ok {
			return err
		}
		n := len(prefix)
		lo, hi := make([]byte, n+8), make([]byte, n+8)
		copy(lo, prefix)
		copy(hi, prefix)
		for day := first; day <= last; day++ {
			putDay(lo[n:], day)
			putDay(hi[n:], day)
			for id, name := range ids {
				binary.BigEndian.PutUint32(lo[n+4:], id)
				binary.BigEndian.PutUint32(hi[n+4:], id+1)
				b, err := s.db.EstimateDiskUsage(lo, hi)
				if err != nil {
					return err
				}
				add(name, tier, b)
			}
			if day == last { // NB: last may be MaxInt32
				break
			}
		}
		return nil
	}
	for _, prefix := range []byte{prefixChunk, prefixHistChunk} {
		if err := each([]byte{prefix}, "raw"); err != nil {
			return err
		}
	}
	for _, t := range s.opts.Tiers {
		p := []byte{prefixTier, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(p[1:], uint32(t.Resolution/time.Second))
		if err := each(p, TierName(t.Resolution)); err != nil {
			return err
		}
	}
	return nil
}

// dayRange returns the first and last day that hold keys of prefix (the
// day follows it).
func (s *shard) dayRange(prefix []byte) (first, last int32, ok bool, err error) {
	hi := append([]byte(nil), prefix...)
	for i := len(hi) - 1; i >= 0; i-- { // the next prefix
		if hi[i]++; hi[i] != 0 {
			break
		}
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: hi})
	if err != nil {
		return 0, 0, false, err
	}
	defer it.Close()
	n := len(prefix)
	if !it.First() {
		return 0, 0, false, it.Error()
	}
	if len(it.Key()) < n+4 {
		return 0, 0, false, fmt.Errorf("%w: key %x", ErrCorrupt, it.Key())
	}
	first = getDay(it.Key()[n:])
	if !it.Last() || len(it.Key()) < n+4 {
		return 0, 0, false, it.Error()
	}
	return first, getDay(it.Key()[n:]), true, it.Error()
}
