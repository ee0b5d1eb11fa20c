package storage

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"

	"github.com/emsdb/tsdb/storage/wal"
)

// Usage counters are billing-grade figures per tenant and UTC day: the
// samples each write stored (counted by storage itself, by ingest
// protocol) and whatever callers record with RecordUsage (queries, rule
// evaluations, active series…).
//
// A change to a counter travels in the same WAL record as the samples it
// counts (or in a record of its own for RecordUsage), and is applied to
// the counter in Pebble in the same batch that moves the shard's usage
// mark to that record's position. Replay applies only the records after
// the mark. So a counter changes exactly once per record in the log: an
// acknowledged write is counted, once, across crashes, restarts and
// snapshots; a write the log never took is not.
//
// Keys (in every shard; tenant ids are the shard's own):
//
//	0x0A 0x00                              -> uvarint(segment) uvarint(offset): the usage mark
//	0x0A 0x01 day(u32) tenant(u32) name    -> u8(kind) u64(value)

// prefixUsage holds the usage counters and the mark (see above).
const prefixUsage byte = 0x0A

const (
	usageMark    byte = 0x00
	usageCounter byte = 0x01
)

// UsageKind says how changes to a usage counter combine.
type UsageKind uint8

const (
	// UsageSum counters add up: samples ingested, queries run.
	UsageSum UsageKind = 0
	// UsageMax counters keep the day's largest value: active series,
	// bytes stored.
	UsageMax UsageKind = 1
)

// UsageDelta is one change to a usage counter: Value is added to a
// UsageSum counter, or raises a UsageMax counter to it.
type UsageDelta struct {
	Name  string
	Kind  UsageKind
	Value uint64
}

// UsageRow is one usage counter of one tenant on one day.
type UsageRow struct {
	Day    time.Time // midnight UTC
	Tenant string
	Name   string
	Kind   UsageKind
	Value  uint64
}

// UsageSamplesIngested is the counter storage keeps itself: the samples
// and native histogram samples each Write stored, as "samples_ingested."
// followed by the protocol the write was tagged with (WithIngestProtocol;
// "other" when it was not), on the UTC day the write was logged. Samples
// dropped as older than retention do not count.
const UsageSamplesIngested = "samples_ingested"

type ingestProtocolKey struct{}

// WithIngestProtocol tags the Writes made with ctx with the ingest
// protocol their samples came by, for the samples_ingested usage counter.
func WithIngestProtocol(ctx context.Context, protocol string) context.Context {
	return context.WithValue(ctx, ingestProtocolKey{}, protocol)
}

// IngestProtocolOf returns the protocol ctx was tagged with, or "".
func IngestProtocolOf(ctx context.Context) string {
	p, _ := ctx.Value(ingestProtocolKey{}).(string)
	return p
}

// shardUsage is a shard's view of its usage counters; guarded by the
// shard's appendMu.
type shardUsage struct {
	// vals caches the values of counters changed lately (Pebble has them
	// all); it is emptied when it grows past maxUsageCache.
	vals map[usageKey]usageVal
	// names caches "samples_ingested.<protocol>" per protocol.
	names map[string]string
	// mark is the position of the last record whose usage is applied.
	mark wal.Pos
	// unsaved are counters whose last batch failed to commit: the next
	// batch sets them again.
	unsaved map[usageKey]bool
}

const maxUsageCache = 1 << 14

type usageKey struct {
	day    int32
	tenant uint32
	name   string
}

type usageVal struct {
	kind UsageKind
	v    uint64
}

func usageMarkKey() []byte { return []byte{prefixUsage, usageMark} }

func usageCounterPrefix(day int32) []byte {
	k := make([]byte, 6, 32)
	k[0], k[1] = prefixUsage, usageCounter
	putDay(k[2:], day)
	return k
}

func (k usageKey) bytes() []byte {
	b := usageCounterPrefix(k.day)
	b = binary.BigEndian.AppendUint32(b, k.tenant)
	return append(b, k.name...)
}

func (u usageVal) bytes() []byte {
	var b [9]byte
	b[0] = byte(u.kind)
	binary.BigEndian.PutUint64(b[1:], u.v)
	return b[:]
}

func decodeUsageVal(b []byte) (usageVal, error) {
	if len(b) != 9 {
		return usageVal{}, fmt.Errorf("%w: usage value %x", ErrCorrupt, b)
	}
	return usageVal{kind: UsageKind(b[0]), v: binary.BigEndian.Uint64(b[1:])}, nil
}

func encodePos(p wal.Pos) []byte {
	b := binary.AppendUvarint(nil, uint64(p.Segment))
	return binary.AppendUvarint(b, uint64(p.Offset))
}

func decodePos(b []byte) (wal.Pos, error) {
	seg, n := binary.Uvarint(b)
	if n <= 0 {
		return wal.Pos{}, fmt.Errorf("%w: usage mark %x", ErrCorrupt, b)
	}
	off, m := binary.Uvarint(b[n:])
	if m <= 0 || n+m != len(b) {
		return wal.Pos{}, fmt.Errorf("%w: usage mark %x", ErrCorrupt, b)
	}
	return wal.Pos{Segment: int(seg), Offset: int64(off)}, nil
}

// posAfter reports whether a comes after b in the log.
func posAfter(a, b wal.Pos) bool {
	return a.Segment > b.Segment || (a.Segment == b.Segment && a.Offset > b.Offset)
}

// loadUsageMark reads the usage mark from Pebble; appendMu need not be
// held (the shard is opening).
func (s *shard) loadUsageMark() error {
	s.usage.vals = map[usageKey]usageVal{}
	s.usage.names = map[string]string{}
	v, closer, err := s.db.Get(usageMarkKey())
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read usage mark: %w", err)
	}
	defer closer.Close()
	s.usage.mark, err = decodePos(v)
	return err
}

// ingestUsageName is the samples_ingested counter of ctx's protocol;
// appendMu held.
func (s *shard) ingestUsageNameLocked(ctx context.Context) string {
	p := IngestProtocolOf(ctx)
	if p == "" {
		p = "other"
	}
	n, ok := s.usage.names[p]
	if !ok {
		n = UsageSamplesIngested + "." + p
		if len(s.usage.names) < 64 {
			s.usage.names[p] = n
		}
	}
	return n
}

// applyUsageLocked applies the usage changes of the record ending at end
// to the counters and sets them, with the mark, in pb; appendMu held.
func (s *shard) applyUsageLocked(pb *pebble.Batch, tenant uint32, day int32, ds []UsageDelta, end wal.Pos) {
	if len(s.usage.vals) > maxUsageCache && len(s.usage.unsaved) == 0 {
		clear(s.usage.vals) // Pebble has them all: every batch so far is committed
	}
	for k := range s.usage.unsaved {
		_ = pb.Set(k.bytes(), s.usage.vals[k].bytes(), nil)
	}
	for _, d := range ds {
		k := usageKey{day: day, tenant: tenant, name: d.Name}
		cur, ok := s.usage.vals[k]
		if !ok {
			cur = s.readUsage(k)
		}
		cur.kind = d.Kind
		if d.Kind == UsageMax {
			cur.v = max(cur.v, d.Value)
		} else {
			cur.v += d.Value
		}
		s.usage.vals[k] = cur
		_ = pb.Set(k.bytes(), cur.bytes(), nil)
	}
	s.usage.mark = end
	_ = pb.Set(usageMarkKey(), encodePos(end), nil)
}

// usageCommitted tells the usage state whether the batch of its last
// applyUsageLocked committed; appendMu held.
func (s *shard) usageCommittedLocked(tenant uint32, day int32, ds []UsageDelta, ok bool) {
	if ok {
		clear(s.usage.unsaved)
		return
	}
	if s.usage.unsaved == nil {
		s.usage.unsaved = map[usageKey]bool{}
	}
	for _, d := range ds {
		s.usage.unsaved[usageKey{day: day, tenant: tenant, name: d.Name}] = true
	}
}

// readUsage reads a counter from Pebble (zero when absent).
func (s *shard) readUsage(k usageKey) usageVal {
	v, closer, err := s.db.Get(k.bytes())
	if errors.Is(err, pebble.ErrNotFound) {
		return usageVal{}
	}
	if err != nil {
		s.log.Error("read usage counter; it restarts from zero", "tenant", k.tenant, "name", k.name, "err", err)
		return usageVal{}
	}
	defer closer.Close()
	u, err := decodeUsageVal(v)
	if err != nil {
		s.log.Error("read usage counter; it restarts from zero", "tenant", k.tenant, "name", k.name, "err", err)
	}
	return u
}

// RecordUsage applies ds to tenant's usage counters of the UTC day of t.
// It returns once the change is durable; it is then applied exactly once,
// across crashes and restarts. Safe for concurrent use.
func (db *DB) RecordUsage(ctx context.Context, tenant string, t time.Time, ds []UsageDelta) error {
	if db.closed.Load() {
		return ErrClosed
	}
	if err := db.health.err(); err != nil {
		return err
	}
	if tenant == "" || len(tenant) > 256 || !utf8.ValidString(tenant) {
		return fmt.Errorf("%w: tenant %q must be 1 to 256 bytes of UTF-8", ErrInvalidSeries, tenant)
	}
	for _, d := range ds {
		if d.Name == "" || len(d.Name) > 256 || !utf8.ValidString(d.Name) || d.Kind > UsageMax {
			return fmt.Errorf("storage: usage counter %q of kind %d: want a name of 1 to 256 bytes of UTF-8 and a known kind", d.Name, d.Kind)
		}
	}
	if len(ds) == 0 {
		return nil
	}
	// One shard per tenant keeps its recorded counters together.
	sh := db.shards[xxhash.Sum64String(tenant)%uint64(len(db.shards))]
	return sh.recordUsage(ctx, tenant, dayOf(t.UnixMilli()), ds)
}

func (s *shard) recordUsage(ctx context.Context, tenant string, day int32, ds []UsageDelta) error {
	pb := s.db.NewBatch()
	defer pb.Close()
	s.appendMu.Lock()
	rec := s.rec[:0]
	ti := s.tenant(tenant)
	if ti == nil {
		ti = s.addTenantLocked(pb, s.nextTenant, tenant)
		rec = appendTenantEntry(rec, ti.id, tenant)
	}
	rec = appendUsageEntry(rec, ti.id, day, ds)
	s.rec = rec
	pos, err := s.wal.Append(rec)
	if err != nil {
		s.appendMu.Unlock()
		err = fmt.Errorf("append usage to wal of shard %d: %w", s.id, err)
		s.walFailed(err)
		return err
	}
	s.applyUsageLocked(pb, ti.id, day, ds, pos)
	perr := pb.Commit(pebble.NoSync)
	s.usageCommittedLocked(ti.id, day, ds, perr == nil)
	s.appendMu.Unlock()
	if perr != nil {
		s.log.Error("write usage counters", "err", perr) // the WAL holds them; replay redoes them
	}
	if err := s.wal.Wait(ctx, pos); err != nil {
		err = fmt.Errorf("sync wal of shard %d: %w", s.id, err)
		s.walFailed(err)
		return err
	}
	return nil
}

// Usage returns the usage counters of the UTC days from through to
// (inclusive) of tenant, or of every tenant when tenant is "", sorted by
// day, tenant and name. It reflects every write and RecordUsage that
// returned before it was called.
func (db *DB) Usage(from, to time.Time, tenant string) ([]UsageRow, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	fromDay, toDay := dayOf(from.UnixMilli()), dayOf(to.UnixMilli())
	if fromDay > toDay {
		return []UsageRow{}, nil
	}
	type rowKey struct {
		day          int32
		tenant, name string
	}
	merged := map[rowKey]*UsageRow{}
	for _, sh := range db.shards {
		if err := sh.usageRows(fromDay, toDay, tenant, func(day int32, tenant, name string, u usageVal) {
			k := rowKey{day, tenant, name}
			r := merged[k]
			if r == nil {
				r = &UsageRow{Day: time.UnixMilli(dayStart(day)).UTC(), Tenant: tenant, Name: name, Kind: u.kind}
				merged[k] = r
			}
			if u.kind == UsageMax {
				r.Value = max(r.Value, u.v)
			} else {
				r.Value += u.v
			}
		}); err != nil {
			return nil, fmt.Errorf("read usage of shard %d: %w", sh.id, err)
		}
	}
	out := make([]UsageRow, 0, len(merged))
	for _, r := range merged {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b UsageRow) int {
		return cmp.Or(a.Day.Compare(b.Day), cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}

// usageRows calls f for each counter of the shard in the days given, of
// tenant ("" for all).
func (s *shard) usageRows(fromDay, toDay int32, tenant string, f func(day int32, tenant, name string, u usageVal)) error {
	names := map[uint32]string{}
	s.idxMu.RLock()
	for id, ti := range s.tenantByID {
		if tenant == "" || ti.name == tenant {
			names[id] = ti.name
		}
	}
	s.idxMu.RUnlock()
	if len(names) == 0 {
		return nil
	}
	hi := usageCounterPrefix(toDay)
	hi = prefixEnd(hi)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: usageCounterPrefix(fromDay), UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		if len(k) <= 10 || !bytes.HasPrefix(k, []byte{prefixUsage, usageCounter}) {
			return fmt.Errorf("%w: usage key %x", ErrCorrupt, k)
		}
		name, ok := names[binary.BigEndian.Uint32(k[6:])]
		if !ok {
			continue
		}
		u, err := decodeUsageVal(it.Value())
		if err != nil {
			return err
		}
		f(getDay(k[2:]), name, string(k[10:]), u)
	}
	return it.Error()
}
