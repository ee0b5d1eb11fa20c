package storage

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"
)

// prefixMetadata holds metric metadata in shard 0:
// 0x07 uvarint(len(tenant)) tenant family -> type, unit, help (each a
// uvarint length and its bytes).
const prefixMetadata byte = 0x07

// Bounds of one metadata entry; longer ones are dropped and counted.
const (
	maxMetadataFamilyLen = 1024
	maxMetadataHelpLen   = 16 << 10
	maxMetadataUnitLen   = 256
)

// metricTypes are the types /api/v1/metadata may answer; any other is
// stored as "unknown".
var metricTypes = []string{"counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"}

// metadataStore keeps the latest metadata per tenant and family, in
// memory and in Pebble (shard 0). Writes go to Pebble only when an entry
// changes, so senders repeating the same metadata (remote write 2.0 does
// with every request) cost a map lookup.
type metadataStore struct {
	db    *pebble.DB
	limit int // families per tenant
	mu    struct {
		sync.RWMutex
		tenants map[string]map[string]metaValue
	}
	dropped atomic.Int64 // entries over the limit or invalid
}

type metaValue struct{ typ, unit, help string }

func newMetadataStore(db *pebble.DB, limit int) *metadataStore {
	s := &metadataStore{db: db, limit: limit}
	s.mu.tenants = map[string]map[string]metaValue{}
	return s
}

func metadataKey(dst []byte, tenant, family string) []byte {
	dst = append(dst, prefixMetadata)
	dst = binary.AppendUvarint(dst, uint64(len(tenant)))
	dst = append(dst, tenant...)
	return append(dst, family...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// load reads every stored entry. An entry that does not decode is
// corruption.
func (s *metadataStore) load() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixMetadata}, UpperBound: []byte{prefixMetadata + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()[1:]
		tenant, rest, err := readString(k)
		if err != nil {
			return fmt.Errorf("%w: metadata key %q", ErrCorrupt, it.Key())
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		var mv metaValue
		if mv.typ, v, err = readString(v); err == nil {
			if mv.unit, v, err = readString(v); err == nil {
				mv.help, _, err = readString(v)
			}
		}
		if err != nil {
			return fmt.Errorf("%w: metadata of %q", ErrCorrupt, rest)
		}
		s.tenantLocked(tenant)[string(rest)] = mv
	}
	return it.Error()
}

func (s *metadataStore) tenantLocked(tenant string) map[string]metaValue {
	m := s.mu.tenants[tenant]
	if m == nil {
		m = map[string]metaValue{}
		s.mu.tenants[tenant] = m
	}
	return m
}

// valid reports whether m may be stored, with its type normalised.
func validMetadata(m *Metadata) bool {
	if m.Family == "" || len(m.Family) > maxMetadataFamilyLen || len(m.Help) > maxMetadataHelpLen || len(m.Unit) > maxMetadataUnitLen {
		return false
	}
	if !utf8.ValidString(m.Family) || !utf8.ValidString(m.Help) || !utf8.ValidString(m.Unit) {
		return false
	}
	if !slices.Contains(metricTypes, m.Type) {
		m.Type = "unknown"
	}
	return true
}

// put stores the entries of ms that are new or changed. Invalid entries,
// and new families of a tenant at its limit, are dropped and counted.
func (s *metadataStore) put(tenant string, ms []Metadata) error {
	if len(ms) == 0 {
		return nil
	}
	// Most calls change nothing: find out under the read lock.
	s.mu.RLock()
	changed, invalid := false, 0
	cur := s.mu.tenants[tenant]
	for i := range ms {
		m := ms[i]
		if !validMetadata(&m) {
			invalid++
			continue
		}
		if v, ok := cur[m.Family]; !ok || v != (metaValue{m.Type, m.Unit, m.Help}) {
			changed = true
			break
		}
	}
	s.mu.RUnlock()
	if !changed {
		s.dropped.Add(int64(invalid))
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur = s.tenantLocked(tenant)
	b := s.db.NewBatch()
	defer b.Close()
	var key, val []byte
	dropped := 0
	for i := range ms {
		m := ms[i]
		if !validMetadata(&m) {
			dropped++
			continue
		}
		mv := metaValue{m.Type, m.Unit, m.Help}
		old, ok := cur[m.Family]
		if ok && old == mv {
			continue
		}
		if !ok && len(cur) >= s.limit {
			dropped++
			continue
		}
		cur[m.Family] = mv
		key = metadataKey(key[:0], tenant, m.Family)
		val = appendString(appendString(appendString(val[:0], mv.typ), mv.unit), mv.help)
		if err := b.Set(key, val, nil); err != nil {
			return fmt.Errorf("store metadata: %w", err)
		}
	}
	s.dropped.Add(int64(dropped))
	if b.Empty() {
		return nil
	}
	// NB: Pebble runs without a log of its own: the entries reach the disk
	// with the next flush (sealing, or Close). A crash may lose the latest
	// changes, which senders repeat.
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("store metadata: %w", err)
	}
	return nil
}

// get returns the tenant's metadata sorted by family: only family metric
// when it is not empty, at most limit families when limit >= 0.
func (s *metadataStore) get(tenant, metric string, limit int) []Metadata {
	s.mu.RLock()
	defer s.mu.RUnlock()
	cur := s.mu.tenants[tenant]
	if metric != "" {
		v, ok := cur[metric]
		if !ok || limit == 0 {
			return nil
		}
		return []Metadata{{Family: metric, Type: v.typ, Unit: v.unit, Help: v.help}}
	}
	out := make([]Metadata, 0, len(cur))
	for f, v := range cur {
		out = append(out, Metadata{Family: f, Type: v.typ, Unit: v.unit, Help: v.help})
	}
	slices.SortFunc(out, func(a, b Metadata) int { return strings.Compare(a.Family, b.Family) })
	if limit >= 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Metadata returns the metric metadata stored for tenant, sorted by
// family: that of metric alone when it is not empty, of at most limit
// families when limit >= 0 (negative: all). Storage keeps the latest
// metadata of each family, so limitPerMetric (at most that many entries
// per family when positive, as Prometheus' API has it) only matters at 0
// or below, which means no limit. The slice is the caller's.
func (db *DB) Metadata(tenant, metric string, limit, limitPerMetric int) ([]Metadata, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	_ = limitPerMetric // one entry per family: never over a positive limit
	return db.meta.get(tenant, metric, limit), nil
}
