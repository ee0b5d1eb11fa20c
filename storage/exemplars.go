package storage

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/prometheus/model/labels"
)

// prefixExemplar holds the exemplar rings in shard 0, one key per slot:
// 0x08 uvarint(len(tenant)) tenant slot(u32) -> seq(u64) series-labels
// exemplar-labels t v (see appendExemplarValue). A slot is overwritten
// when the ring comes round to it, so the keys never outnumber the limit.
const prefixExemplar byte = 0x08

// maxExemplarLabelRunes is OpenMetrics' bound on the runes of an
// exemplar's label names and values together (Prometheus enforces it).
const maxExemplarLabelRunes = 128

// SeriesExemplars is the exemplars of one series, oldest first.
type SeriesExemplars struct {
	Labels    labels.Labels
	Exemplars []Exemplar
}

// exemplarStore keeps, per tenant, the newest exemplars in a ring of a
// fixed number of slots shared by all its series, as Prometheus'
// CircularExemplarStorage does: each series links its exemplars through
// the ring, oldest to newest, and a new exemplar takes the slot of the
// oldest one of the tenant. Every stored exemplar is also written to its
// slot's key in Pebble, so a restart finds the ring as it was.
type exemplarStore struct {
	db    *pebble.DB
	limit int // slots per tenant; 0: exemplars are not kept
	mu    struct {
		sync.Mutex
		tenants map[string]*exemplarRing
	}
	outOfOrder atomic.Int64 // older than the newest of their series
	invalid    atomic.Int64 // labels too long or not UTF-8, time out of range
}

type exemplarRing struct {
	entries []exemplarEntry // grows up to the limit
	next    int             // slot the next exemplar takes
	seq     uint64          // number of the next exemplar, ever growing
	index   map[string]*exemplarSeries
}

type exemplarEntry struct {
	e    Exemplar
	seq  uint64
	next int // slot of the series' next newer exemplar, or -1
	s    *exemplarSeries
	// deleted marks an exemplar removed by a deletion: readers skip it,
	// its key is gone from Pebble, and the ring reuses its slot in turn.
	deleted bool
}

type exemplarSeries struct {
	key            string // appendLabels of lset
	lset           labels.Labels
	oldest, newest int // slots
}

func newExemplarStore(db *pebble.DB, limit int) *exemplarStore {
	s := &exemplarStore{db: db, limit: limit}
	s.mu.tenants = map[string]*exemplarRing{}
	return s
}

func exemplarKey(dst []byte, tenant string, slot int) []byte {
	dst = append(dst, prefixExemplar)
	dst = binary.AppendUvarint(dst, uint64(len(tenant)))
	dst = append(dst, tenant...)
	return binary.BigEndian.AppendUint32(dst, uint32(slot))
}

func exemplarTenantPrefix(tenant string) []byte {
	k := exemplarKey(nil, tenant, 0)
	return k[:len(k)-4]
}

// appendExemplarValue encodes seq(u64) uvarint(len) series-labels
// uvarint(len) exemplar-labels varint(t) v(u64 bits).
func appendExemplarValue(dst []byte, seq uint64, seriesKey string, e Exemplar) []byte {
	dst = binary.BigEndian.AppendUint64(dst, seq)
	dst = appendString(dst, seriesKey)
	enc := appendLabels(nil, e.Labels)
	dst = binary.AppendUvarint(dst, uint64(len(enc)))
	dst = append(dst, enc...)
	dst = binary.AppendVarint(dst, e.T)
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(e.V))
}

type storedExemplar struct {
	slot      int
	seq       uint64
	seriesKey string
	e         Exemplar
}

func decodeExemplarValue(v []byte, sb *labels.ScratchBuilder) (storedExemplar, error) {
	var x storedExemplar
	if len(v) < 8 {
		return x, fmt.Errorf("%w: exemplar value of %d bytes", ErrCorrupt, len(v))
	}
	x.seq = binary.BigEndian.Uint64(v)
	seriesKey, v, err := readString(v[8:])
	if err != nil {
		return x, err
	}
	x.seriesKey = seriesKey
	enc, v, err := readString(v)
	if err != nil {
		return x, err
	}
	if x.e.Labels, err = decodeLabels([]byte(enc), sb); err != nil {
		return x, err
	}
	t, n := binary.Varint(v)
	if n <= 0 || len(v)-n != 8 {
		return x, fmt.Errorf("%w: exemplar value", ErrCorrupt)
	}
	x.e.T = t
	x.e.V = math.Float64frombits(binary.BigEndian.Uint64(v[n:]))
	return x, nil
}

// load rebuilds the rings from Pebble. A ring stored with the same limit
// is restored slot for slot; otherwise (the limit changed) its newest
// exemplars are laid out again and rewritten.
func (s *exemplarStore) load() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixExemplar}, UpperBound: []byte{prefixExemplar + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	sb := labels.NewScratchBuilder(8)
	byTenant := map[string][]storedExemplar{}
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()[1:]
		tenant, rest, err := readString(k)
		if err != nil || len(rest) != 4 {
			return fmt.Errorf("%w: exemplar key %q", ErrCorrupt, it.Key())
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		x, err := decodeExemplarValue(v, &sb)
		if err != nil {
			return fmt.Errorf("exemplar of tenant %q: %w", tenant, err)
		}
		x.slot = int(binary.BigEndian.Uint32(rest))
		byTenant[tenant] = append(byTenant[tenant], x)
	}
	if err := it.Error(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for tenant, xs := range byTenant {
		if err := s.restoreLocked(tenant, xs); err != nil {
			return fmt.Errorf("exemplars of tenant %q: %w", tenant, err)
		}
	}
	return nil
}

// restoreLocked rebuilds one tenant's ring from its stored slots (sorted
// by slot, as Pebble yields them).
func (s *exemplarStore) restoreLocked(tenant string, xs []storedExemplar) error {
	inPlace := len(xs) <= s.limit
	for i := range xs {
		if xs[i].slot != i {
			inPlace = false
		}
	}
	slices.SortFunc(xs, func(a, b storedExemplar) int { return cmp.Compare(a.seq, b.seq) })
	if !inPlace {
		// Lay the newest out again from slot 0 and rewrite them.
		if len(xs) > s.limit {
			xs = xs[len(xs)-s.limit:]
		}
		b := s.db.NewBatch()
		defer b.Close()
		p := exemplarTenantPrefix(tenant)
		if err := b.DeleteRange(p, prefixEnd(p), nil); err != nil {
			return err
		}
		var key, val []byte
		for i := range xs {
			xs[i].slot = i
			key = exemplarKey(key[:0], tenant, i)
			val = appendExemplarValue(val[:0], xs[i].seq, xs[i].seriesKey, xs[i].e)
			if err := b.Set(key, val, nil); err != nil {
				return err
			}
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return err
		}
	}
	if len(xs) == 0 || s.limit == 0 {
		return nil
	}
	r := s.ringLocked(tenant)
	r.entries = make([]exemplarEntry, len(xs))
	sb := labels.NewScratchBuilder(16)
	for _, x := range xs {
		ser := r.index[x.seriesKey]
		if ser == nil {
			lset, err := decodeLabels([]byte(x.seriesKey), &sb)
			if err != nil {
				return err
			}
			ser = &exemplarSeries{key: x.seriesKey, lset: lset, oldest: x.slot, newest: x.slot}
			r.index[x.seriesKey] = ser
		} else {
			r.entries[ser.newest].next = x.slot
			ser.newest = x.slot
		}
		r.entries[x.slot] = exemplarEntry{e: x.e, seq: x.seq, next: -1, s: ser}
	}
	last := xs[len(xs)-1]
	r.seq = last.seq + 1
	r.next = (last.slot + 1) % s.limit
	return nil
}

func (s *exemplarStore) ringLocked(tenant string) *exemplarRing {
	r := s.mu.tenants[tenant]
	if r == nil {
		r = &exemplarRing{index: map[string]*exemplarSeries{}}
		s.mu.tenants[tenant] = r
	}
	return r
}

// validExemplar reports whether e may be stored at all.
func validExemplar(e *Exemplar) bool {
	if e.T < minStorableT || e.T > maxStorableT {
		return false
	}
	runes, ok := 0, true
	e.Labels.Range(func(l labels.Label) {
		runes += utf8.RuneCountInString(l.Name) + utf8.RuneCountInString(l.Value)
		if l.Name == "" || !utf8.ValidString(l.Name) || !utf8.ValidString(l.Value) {
			ok = false
		}
	})
	return ok && runes <= maxExemplarLabelRunes
}

// exemplarOrder orders the exemplars of one series as Prometheus does:
// by time, then value, then labels; two exemplars at one time are then
// both kept (the buckets of a native histogram carry several).
func exemplarOrder(a, b Exemplar) int {
	if c := cmp.Compare(a.T, b.T); c != 0 {
		return c
	}
	if c := cmp.Compare(a.V, b.V); c != 0 {
		return c
	}
	return labels.Compare(a.Labels, b.Labels)
}

func sameExemplar(a, b Exemplar) bool {
	return a.T == b.T && math.Float64bits(a.V) == math.Float64bits(b.V) && labels.Equal(a.Labels, b.Labels)
}

// add stores the exemplars of series lset (labels as stored, without
// empty values) and returns how many it accepted: stored or the same as
// the newest one of the series (which Prometheus counts as written too).
// Invalid exemplars and those older than the newest of their series are
// dropped and counted. With a limit of 0 every valid exemplar counts as
// accepted and none is kept, as in Prometheus with exemplars disabled.
func (s *exemplarStore) add(b *pebble.Batch, tenant string, lset labels.Labels, es []Exemplar, key, val []byte) (accepted int, _ []byte, _ []byte, _ error) {
	if !slices.IsSortedFunc(es, exemplarOrder) {
		es = slices.Clone(es)
		slices.SortFunc(es, exemplarOrder)
	}
	var seriesKey string
	var r *exemplarRing
	if s.limit > 0 {
		seriesKey = string(appendLabels(nil, lset))
		r = s.ringLocked(tenant)
	}
	for i := range es {
		e := es[i]
		e.Labels = e.Labels.WithoutEmpty()
		if !validExemplar(&e) {
			s.invalid.Add(1)
			continue
		}
		if r == nil {
			accepted++
			continue
		}
		ser := r.index[seriesKey]
		if ser != nil {
			newest := r.entries[ser.newest].e
			if sameExemplar(e, newest) && !r.entries[ser.newest].deleted {
				accepted++
				continue
			}
			if exemplarOrder(e, newest) < 0 {
				s.outOfOrder.Add(1)
				continue
			}
		}
		slot := r.next
		if slot == len(r.entries) {
			r.entries = append(r.entries, exemplarEntry{})
		} else if old := r.entries[slot].s; old != nil {
			// Evict the tenant's oldest exemplar, the oldest of its series.
			old.oldest = r.entries[slot].next
			if old.oldest < 0 {
				delete(r.index, old.key)
				if old == ser {
					ser = nil
				}
			}
		}
		if ser == nil {
			ser = &exemplarSeries{key: seriesKey, lset: lset, oldest: slot}
			r.index[seriesKey] = ser
		} else {
			r.entries[ser.newest].next = slot
		}
		ser.newest = slot
		r.entries[slot] = exemplarEntry{e: e, seq: r.seq, next: -1, s: ser}
		key = exemplarKey(key[:0], tenant, slot)
		val = appendExemplarValue(val[:0], r.seq, seriesKey, e)
		if err := b.Set(key, val, nil); err != nil {
			return accepted, key, val, err
		}
		r.seq++
		r.next = (slot + 1) % s.limit
		accepted++
	}
	return accepted, key, val, nil
}

// write stores the exemplars of every series of b, whose labels Write has
// validated, and returns how many it accepted.
func (s *exemplarStore) write(tenant string, b *Batch) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pb := s.db.NewBatch()
	defer pb.Close()
	var key, val []byte
	total := 0
	for i := range b.Series {
		es := b.Series[i].Exemplars
		if len(es) == 0 {
			continue
		}
		lset, err := b.LabelsOf(i)
		if err != nil {
			return total, fmt.Errorf("series %d: %w", i, err)
		}
		n := 0
		n, key, val, err = s.add(pb, tenant, lset.WithoutEmpty(), es, key, val)
		total += n
		if err != nil {
			return total, err
		}
	}
	if pb.Empty() {
		return total, nil
	}
	// NB: committed under the lock, so that Pebble sees the writes to one
	// slot in the ring's order. Pebble runs without a log of its own: the
	// exemplars reach the disk with its next flush (sealing, or Close).
	if err := pb.Commit(pebble.NoSync); err != nil {
		return total, fmt.Errorf("store exemplars: %w", err)
	}
	return total, nil
}

// query returns the exemplars in [mint, maxt] of the tenant's series that
// match any of matcherSets, sorted by series labels.
func (s *exemplarStore) query(tenant string, mint, maxt int64, matcherSets [][]*labels.Matcher) []SeriesExemplars {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mu.tenants[tenant]
	if r == nil {
		return nil
	}
	var out []SeriesExemplars
	for _, ser := range r.index {
		if !matchesAny(ser.lset, matcherSets) {
			continue
		}
		var es []Exemplar
		for i := ser.oldest; i >= 0; i = r.entries[i].next {
			if e := r.entries[i].e; e.T >= mint && e.T <= maxt && !r.entries[i].deleted {
				es = append(es, e)
			}
		}
		if len(es) > 0 {
			out = append(out, SeriesExemplars{Labels: ser.lset, Exemplars: es})
		}
	}
	slices.SortFunc(out, func(a, b SeriesExemplars) int { return labels.Compare(a.Labels, b.Labels) })
	return out
}

// delete removes the tenant's exemplars in [mint, maxt] of the series
// matching every matcher of ms, as DeleteSeries removes their samples.
func (s *exemplarStore) delete(tenant string, mint, maxt int64, ms []*labels.Matcher) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mu.tenants[tenant]
	if r == nil {
		return nil
	}
	pb := s.db.NewBatch()
	defer pb.Close()
	var key []byte
	for _, ser := range r.index {
		if !matchesAny(ser.lset, [][]*labels.Matcher{ms}) {
			continue
		}
		for i := ser.oldest; i >= 0; i = r.entries[i].next {
			en := &r.entries[i]
			if en.deleted || en.e.T < mint || en.e.T > maxt {
				continue
			}
			en.deleted = true
			key = exemplarKey(key[:0], tenant, i)
			if err := pb.Delete(key, nil); err != nil {
				return err
			}
		}
	}
	if pb.Empty() {
		return nil
	}
	return pb.Commit(pebble.NoSync)
}

func matchesAny(lset labels.Labels, sets [][]*labels.Matcher) bool {
	for _, ms := range sets {
		ok := true
		for _, m := range ms {
			if !m.Matches(lset.Get(m.Name)) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// Exemplars returns the tenant's exemplars with timestamps in [mint, maxt]
// (inclusive, milliseconds) of the series matching any of matcherSets
// (all matchers of one set), sorted by series labels, each series' oldest
// first. The slices are the caller's.
func (db *DB) Exemplars(ctx context.Context, tenant string, mint, maxt int64, matcherSets [][]*labels.Matcher) ([]SeriesExemplars, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Exemplars older than the retention go with the samples they came
	// with; the ring reuses their slots in turn.
	mint = max(mint, db.rawCutoff(tenant))
	return db.exemplars.query(tenant, mint, maxt, matcherSets), nil
}
