package storage

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage/chunkenc"
	"github.com/emsdb/tsdb/storage/internal/invariants"
)

type querier struct {
	// NB: first, not last: a zero-size last field is padded.
	cc invariants.CloseChecker // empty without the invariants tag

	db         *DB
	tenant     string
	mint, maxt int64

	// reqMint is mint as asked, before the raw retention cutoff (tiers
	// keep data longer).
	reqMint int64

	// Pebble iterators over the chunks, one per shard, reused by the
	// series of this querier instead of one per series (opening and
	// closing one costs about as much as reading a series' chunk);
	// titers likewise over the tiers' blocks.
	mu     sync.Mutex
	iters  map[*shard]*chunkReader
	titers map[*shard]*chunkReader
}

// chunkReader is a Pebble iterator over every chunk of a shard, opened
// when the shard's chunkGen was gen.
type chunkReader struct {
	it  *pebble.Iterator
	gen uint64
	// key and sc are scratch memory of the tier reader; key, ts and vs
	// of lastSealed.
	key []byte
	sc  tierScratch
	ts  []int64
	vs  []float64
}

var allChunks = &pebble.IterOptions{LowerBound: []byte{prefixChunk}, UpperBound: []byte{prefixChunk + 1}}

// reader lends the shard's chunk iterator, opening a new one if there is
// none idle or the one there predates a change of chunks on disk. It must
// be called after the series' memory was read (see shard.iterator), and
// given back with put.
func (q *querier) reader(sh *shard) (*chunkReader, error) {
	return q.readerOf(sh, &q.iters, allChunks)
}

// readerOf is reader over the iterators of pool, with bounds opts.
func (q *querier) readerOf(sh *shard, pool *map[*shard]*chunkReader, opts *pebble.IterOptions) (*chunkReader, error) {
	gen := sh.chunkGen.Load()
	q.mu.Lock()
	r := (*pool)[sh]
	delete(*pool, sh)
	q.mu.Unlock()
	if r != nil && r.gen == gen {
		return r, nil
	}
	if r != nil {
		_ = r.it.Close()
	}
	it, err := sh.db.NewIter(opts)
	if err != nil {
		return nil, err
	}
	return &chunkReader{it: it, gen: gen}, nil
}

// done gives r back for the next series, or closes it after an error.
func (q *querier) done(sh *shard, r *chunkReader) {
	if r.it.Error() == nil {
		q.put(sh, r)
	} else {
		_ = r.it.Close()
	}
}

// put gives a reader back for the next series (or closes it if another
// is there already, or the querier is closed).
func (q *querier) put(sh *shard, r *chunkReader) { q.putTo(sh, &q.iters, r) }

func (q *querier) putTo(sh *shard, pool *map[*shard]*chunkReader, r *chunkReader) {
	q.mu.Lock()
	if *pool != nil && (*pool)[sh] == nil {
		(*pool)[sh] = r
		r = nil
	}
	q.mu.Unlock()
	if r != nil {
		_ = r.it.Close()
	}
}

var _ Querier = (*querier)(nil)

// Querier returns a Querier over [mint, maxt] for tenant.
func (db *DB) Querier(ctx context.Context, tenant string, mint, maxt int64) (Querier, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	reqMint := mint
	if cutoff := db.rawCutoff(tenant); mint < cutoff {
		mint = cutoff
	}
	q := &querier{db: db, tenant: tenant, mint: mint, maxt: maxt, reqMint: reqMint,
		iters: map[*shard]*chunkReader{}, titers: map[*shard]*chunkReader{}}
	db.queriers.Open(q)
	return q, nil
}

func (q *querier) Close() error {
	q.cc.Close()
	q.db.queriers.Close(q)
	q.mu.Lock()
	iters, titers := q.iters, q.titers
	q.iters, q.titers = nil, nil
	q.mu.Unlock()
	for _, r := range iters {
		_ = r.it.Close()
	}
	for _, r := range titers {
		_ = r.it.Close()
	}
	return nil
}

// match returns the series of every shard matching ms with samples in
// [mint, maxt], sorted by labels.
// match returns the series matching ms with samples in [mint, maxt],
// sorted by labels.
//
// A selector's series, sorted, are cached (DB.matches) until a series of
// the tenant is added or removed in any shard, as VictoriaMetrics caches
// the series of its tag filters: a dashboard asks for the same selectors
// again and again, and sorting a few thousand label sets was a fifth of
// an instant query's time (issue 18). Only the time filter runs on a hit.
func (q *querier) match(ctx context.Context, mint, maxt int64, ms []*labels.Matcher) ([]seriesAt, error) {
	var gensBuf [8]uint64
	gens := gensBuf[:0]
	for _, sh := range q.db.shards {
		sh.idxMu.RLock()
		gen := uint64(0)
		if ti := sh.tenants[q.tenant]; ti != nil {
			gen = ti.seriesGen + 1 // 0: no tenant
		}
		sh.idxMu.RUnlock()
		gens = append(gens, gen)
	}
	key := matchKey(q.tenant, ms)
	if c, ok := q.db.matches.Get(key); ok && slices.Equal(c.gens, gens) {
		return appendInRange(make([]seriesAt, 0, len(c.list)), c.list, mint, maxt), nil
	}
	var all []seriesAt
	inRange := 0
	for i, sh := range q.db.shards {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sh.idxMu.RLock()
		ti := sh.tenants[q.tenant]
		if ti == nil {
			sh.idxMu.RUnlock()
			gens[i] = 0
			continue
		}
		// The list matches the generation read with it.
		gens[i] = ti.seriesGen + 1
		refs := ti.postingsFor(ms, sh.cache, sh.id)
		for _, ref := range refs {
			if s := ti.get(ref); s != nil {
				all = append(all, seriesAt{sh: sh, s: s})
				if s.overlaps(mint, maxt) {
					inRange++
				}
			}
		}
		sh.idxMu.RUnlock()
	}
	byLabels := func(a, b seriesAt) int { return labels.Compare(a.s.lset, b.s.lset) }
	out := make([]seriesAt, 0, inRange)
	if len(all) > 2*inRange+64 {
		// Mostly series outside the range (churn): sort only the rest,
		// and keep no list dominated by them.
		out = appendInRange(out, all, mint, maxt)
		slices.SortFunc(out, byLabels)
		return out, nil
	}
	slices.SortFunc(all, byLabels)
	q.db.matches.Set(key, cachedMatch{gens: slices.Clone(gens), list: all}, int64(len(key)+16*len(all)+8*len(gens)+64))
	return appendInRange(out, all, mint, maxt), nil
}

// appendInRange appends the series of list with samples in [mint, maxt].
func appendInRange(out, list []seriesAt, mint, maxt int64) []seriesAt {
	for _, sa := range list {
		if sa.s.overlaps(mint, maxt) {
			out = append(out, sa)
		}
	}
	return out
}

// cachedMatch is a selector's series in every shard, sorted by labels, at
// the tenant's series generations (per shard; 0 when it had none there).
type cachedMatch struct {
	gens []uint64
	list []seriesAt
}

// matchKey identifies a tenant's selector.
func matchKey(tenant string, ms []*labels.Matcher) string {
	var b strings.Builder
	b.WriteString(tenant)
	for _, m := range ms {
		b.WriteByte(0xff)
		b.WriteString(m.String())
	}
	return b.String()
}

type seriesAt struct {
	sh *shard
	s  *memSeries
}

func (q *querier) Select(ctx context.Context, hints *SelectHints, ms ...*labels.Matcher) SeriesSet {
	mint, maxt := q.mint, q.maxt
	limit, newest := 0, false
	if hints != nil {
		mint, maxt = max(mint, hints.Start), min(maxt, hints.End)
		limit, newest = hints.Limit, hints.Newest
	}
	q.cc.AssertOpen("storage: querier")
	if len(ms) == 0 {
		return &seriesSet{err: fmt.Errorf("%w: select needs at least one matcher", ErrInvalidSeries)}
	}
	found, err := q.match(ctx, mint, maxt, ms)
	if err != nil {
		return &seriesSet{err: err}
	}
	truncated := false
	if limit > 0 && len(found) > limit {
		found, truncated = found[:limit], true
	}
	return &seriesSet{q: q, list: found, i: -1, mint: mint, maxt: maxt, truncated: truncated, newest: newest}
}

func (q *querier) LabelNames(ctx context.Context, ms ...*labels.Matcher) ([]string, error) {
	q.cc.AssertOpen("storage: querier")
	set := map[string]struct{}{}
	if len(ms) == 0 {
		for _, sh := range q.db.shards {
			sh.idxMu.RLock()
			if ti := sh.tenants[q.tenant]; ti != nil {
				for name, vals := range ti.postings {
					if _, ok := set[name]; !ok && anyInRange(ti, vals, q.mint, q.maxt) {
						set[name] = struct{}{}
					}
				}
			}
			sh.idxMu.RUnlock()
		}
	} else {
		found, err := q.match(ctx, q.mint, q.maxt, ms)
		if err != nil {
			return nil, err
		}
		for _, f := range found {
			f.s.lset.Range(func(l labels.Label) { set[l.Name] = struct{}{} })
		}
	}
	return sortedKeys(set), nil
}

func (q *querier) LabelValues(ctx context.Context, name string, ms ...*labels.Matcher) ([]string, error) {
	q.cc.AssertOpen("storage: querier")
	set := map[string]struct{}{}
	if len(ms) == 0 {
		for _, sh := range q.db.shards {
			sh.idxMu.RLock()
			if ti := sh.tenants[q.tenant]; ti != nil {
				var one [1]uint64
				for v, h := range ti.postings[name] {
					if _, ok := set[v]; !ok && refsInRange(ti, ti.refsOf(h, &one), q.mint, q.maxt) {
						set[v] = struct{}{}
					}
				}
			}
			sh.idxMu.RUnlock()
		}
	} else {
		found, err := q.match(ctx, q.mint, q.maxt, ms)
		if err != nil {
			return nil, err
		}
		for _, f := range found {
			if v := f.s.lset.Get(name); v != "" {
				set[v] = struct{}{}
			}
		}
	}
	return sortedKeys(set), nil
}

func anyInRange(ti *tenantIndex, vals map[string]valueRefs, mint, maxt int64) bool {
	var one [1]uint64
	for _, h := range vals {
		if refsInRange(ti, ti.refsOf(h, &one), mint, maxt) {
			return true
		}
	}
	return false
}

func refsInRange(ti *tenantIndex, refs []uint64, mint, maxt int64) bool {
	for _, r := range refs {
		if s := ti.get(r); s != nil && s.overlaps(mint, maxt) {
			return true
		}
	}
	return false
}

func sortedKeys(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// seriesSet walks selected series.
type seriesSet struct {
	q          *querier
	list       []seriesAt
	i          int
	mint, maxt int64
	truncated  bool
	err        error
	slab       []series // At's series come from here: one allocation for many
	newest     bool     // SelectHints.Newest
	warmed     int      // list[:warmed] have been warmed (warm.go)
	sink       uintptr  // what warming read
}

func (ss *seriesSet) Next() bool {
	if ss.err != nil || ss.i+1 >= len(ss.list) {
		return false
	}
	ss.i++
	if ss.i == ss.warmed {
		end := min(ss.i+warmAhead, len(ss.list))
		ss.sink += warm(ss.list[ss.i:end], ss.mint, !ss.newest)
		ss.warmed = end
	}
	return true
}

// seriesSlab is how many series At allocates at a time (fewer when fewer
// are left): a selector of a rate over a dashboard reads thousands.
const seriesSlab = 256

func (ss *seriesSet) At() Series {
	if len(ss.slab) == 0 {
		ss.slab = make([]series, min(seriesSlab, max(1, len(ss.list)-ss.i)))
	}
	s := &ss.slab[0]
	ss.slab = ss.slab[1:]
	*s = series{q: ss.q, sh: ss.list[ss.i].sh, s: ss.list[ss.i].s, mint: ss.mint, maxt: ss.maxt}
	return s
}

func (ss *seriesSet) Err() error { return ss.err }

// Len is how many series the set holds: a hint to size what is read.
func (ss *seriesSet) Len() int { return len(ss.list) }

// Truncated reports whether SelectHints.Limit cut the result short.
func (ss *seriesSet) Truncated() bool { return ss.truncated }

type series struct {
	q          *querier
	sh         *shard
	s          *memSeries
	mint, maxt int64
}

func (s *series) Labels() labels.Labels { return s.s.lset }

func (s *series) Iterator(reuse Iterator) Iterator {
	s.q.cc.AssertOpen("storage: series of a closed querier")
	c, _ := reuse.(*clampIter)
	it, err := s.sh.iterator(s.q, s.s, s.mint, s.maxt, c)
	if err != nil {
		return errIter{err}
	}
	return it
}

// LastFloat implements LastSampler: from the head chunk when it holds the
// series' newest sample, else from the sealed chunk that holds the newest
// sample at or before maxt when nothing of the window is in memory (after
// a restart, or once a full head is sealed: issue 18's cold queries read
// and decoded every window whole).
func (s *series) LastFloat(mint, maxt int64) (int64, float64, bool, bool) {
	s.q.cc.AssertOpen("storage: series of a closed querier")
	mint, maxt = max(mint, s.mint), min(maxt, s.maxt)
	if t, v, found, known := s.s.lastFloat(mint, maxt); known {
		return t, v, found, known
	}
	return s.sh.lastSealed(s.q, s.s, mint, maxt)
}

// lastSealed is LastFloat from Pebble alone; known is false when part of
// the window is in memory, or on an error (the caller's read reports it).
// Sealed chunks of a series never overlap (the sealer merges them), so the
// newest sample at or before maxt is in the first chunk ending at or after
// maxt when that one starts at or before it, else it ends the chunk before.
func (sh *shard) lastSealed(q *querier, ms *memSeries, mint, maxt int64) (t int64, v float64, found, known bool) {
	onDisk, minDay, maxDay, ok := ms.sealedOnly(mint, maxt)
	if !ok {
		return 0, 0, false, false
	}
	first, last := max(dayOf(mint), minDay), min(dayOf(maxt), maxDay)
	if !onDisk || mint > maxt || first > last {
		return 0, 0, false, true
	}
	r, err := q.reader(sh)
	if err != nil {
		return 0, 0, false, false
	}
	it := r.it
	defer q.done(sh, r)
	// in returns the chunk under the iterator when it is one of ms in day,
	// with its first timestamp.
	in := func(valid bool, prefix []byte) (c []byte, cmin int64, err error) {
		if !valid {
			return nil, 0, it.Error()
		}
		k := it.Key()
		if len(k) != chunkKeyLen || string(k[:len(prefix)]) != string(prefix) {
			return nil, 0, nil
		}
		if c, err = it.ValueAndErr(); err != nil {
			return nil, 0, err
		}
		_, cmin, _, err = chunkenc.DenseBounds(c)
		return c, cmin, err
	}
	for day := last; day >= first && day <= last; day-- {
		prefix := chunkSeriesPrefix(day, ms.tenant, ms.ref)
		r.key = chunkKey(r.key[:0], day, ms.tenant, ms.ref, maxt)
		c, cmin, err := in(it.SeekGE(r.key), prefix)
		if err != nil {
			return 0, 0, false, false
		}
		if c == nil || cmin > maxt {
			// NB: with no chunk of the day at or after maxt, the one
			// before is the series' last of the day.
			lastOfDay := c == nil
			if c, _, err = in(it.Prev(), prefix); err != nil {
				return 0, 0, false, false
			}
			if c != nil && lastOfDay && day == maxDay {
				if _, _, cmax, err := chunkenc.DenseBounds(c); err == nil {
					ms.sealedUpTo(cmax, func() bool { return sh.chunkGen.Load() == r.gen })
				}
			}
		}
		if c == nil {
			continue // nothing of the series this day at or before maxt
		}
		ts, vs, err := chunkenc.DecodeDenseWindow(c, mint, maxt, r.ts[:0], r.vs[:0])
		r.ts, r.vs = ts, vs
		if err != nil {
			return 0, 0, false, false
		}
		if len(ts) == 0 {
			// The chunk's samples at or before maxt are older than mint,
			// and so is everything before it.
			return 0, 0, false, true
		}
		return ts[len(ts)-1], vs[len(vs)-1], true, true
	}
	return 0, 0, false, true
}

// iterator merges the series' samples from memory and disk in [mint, maxt].
// Memory is read first: a chunk the sealer writes after that is still in
// the copy, and one it wrote before is on disk. A float iterator of an
// earlier series, done with, lends it its buffers (reuse, may be nil): a
// query reads thousands of series, and these were most of the
// allocations of a rate over them (issue 18).
func (sh *shard) iterator(q *querier, ms *memSeries, mint, maxt int64, reuse *clampIter) (Iterator, error) {
	var (
		buf    []byte
		its    []chunkenc.Iterator
		prev   chunkenc.Iterator
		prevCL *chunkListIter
	)
	if reuse != nil {
		clear(reuse.its)
		buf, its, prev, prevCL = reuse.head, reuse.its[:0], reuse.xor, reuse.cl
	}
	snap := ms.snapshot(mint, maxt, buf)
	if len(snap.ooo) > 0 {
		its = append(its, newSampleIter(snap.ooo))
	}
	var head chunkenc.Iterator
	if snap.headN > 0 {
		head = chunkenc.ReuseXORIteratorFrom(prev, snap.head, snap.headN, snap.headAt)
		its = append(its, head)
	}
	for i := len(snap.frozen) - 1; i >= 0; i-- {
		fc := snap.frozen[i]
		if len(fc.ooo) > 0 {
			its = append(its, newSampleIter(fc.ooo))
		}
		if fc.n > 0 {
			its = append(its, chunkenc.NewXORIterator(fc.xor, fc.n))
		}
	}
	if snap.onDisk && snap.minDay <= snap.maxDay {
		cl, err := sh.diskChunks(q, ms, mint, maxt, snap.minDay, snap.maxDay, prevCL)
		if err != nil {
			return nil, err
		}
		prevCL = cl
		if len(cl.chunks) > 0 {
			its = append(its, cl)
		}
	}
	var it chunkenc.Iterator
	switch len(its) {
	case 0:
		it = emptyIter{}
	case 1:
		it = its[0]
	default:
		it = newMergeIter(its)
	}
	floats := reuse
	if floats == nil {
		floats = new(clampIter)
	}
	*floats = clampIter{it: it, mint: mint, maxt: maxt, head: snap.head, its: its, xor: head, cl: prevCL}
	if head == nil { // kept for a later series
		floats.head, floats.xor = buf, prev
	}
	if snap.hist == nil {
		return floats, nil
	}
	hs, err := sh.histograms(ms, snap.hist, mint, maxt, snap.minDay, snap.maxDay)
	if err != nil {
		return nil, err
	}
	return &histIter{f: floats, hs: hs}, nil
}

// diskChunks collects the sealed chunks of ms overlapping [mint, maxt],
// into reuse when it is not nil (the list of an earlier series, done
// with: one per series was half of a sealed rate query's allocations).
func (sh *shard) diskChunks(q *querier, ms *memSeries, mint, maxt int64, minDay, maxDay int32, reuse *chunkListIter) (*chunkListIter, error) {
	first, last := max(dayOf(mint), minDay), min(dayOf(maxt), maxDay)
	cl := reuse
	if cl == nil {
		cl = &chunkListIter{}
	}
	clear(cl.chunks)
	*cl = chunkListIter{chunks: cl.chunks[:0], maxTs: cl.maxTs[:0], key: cl.key, mint: mint, maxt: maxt}
	if first > last {
		return cl, nil
	}
	r, err := q.reader(sh)
	if err != nil {
		return nil, err
	}
	it := r.it
	defer q.done(sh, r)
	for day := first; day <= last && day >= first; day++ {
		cl.key = chunkKey(cl.key[:0], day, ms.tenant, ms.ref, mint)
		prefix := cl.key[:chunkKeyLen-8] // chunkSeriesPrefix, without an allocation
		for valid := it.SeekGE(cl.key); valid; valid = it.Next() {
			k := it.Key()
			if len(k) != chunkKeyLen || string(k[:len(prefix)]) != string(prefix) {
				break
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return nil, err
			}
			_, cmin, cmax, err := chunkenc.DenseBounds(v)
			if err != nil {
				return nil, fmt.Errorf("%w: chunk %x: %v", ErrCorrupt, k, err)
			}
			if cmin > maxt {
				break
			}
			if len(cl.chunks) == 0 {
				// The first chunk is decoded now, from Pebble's
				// buffer, rather than copied and decoded later: most
				// reads (an instant query's window, a dashboard's last
				// hour) need just one.
				if err := cl.openFirst(v); err != nil {
					return nil, fmt.Errorf("%w: chunk %x: %v", ErrCorrupt, k, err)
				}
				v = nil
			}
			cl.chunks = append(cl.chunks, slices.Clone(v))
			cl.maxTs = append(cl.maxTs, cmax)
			if cmax >= maxt {
				// Sealed chunks do not overlap: the next starts after
				// maxt. Not stepping to it also lets the next series'
				// seek start from here (Pebble's TrySeekUsingNext).
				return cl, it.Error()
			}
		}
		if day == math.MaxInt32 {
			break
		}
	}
	return cl, it.Error()
}

type emptyIter struct{}

func (emptyIter) Next() bool           { return false }
func (emptyIter) SeekTo(int64) bool    { return false }
func (emptyIter) At() (int64, float64) { return 0, 0 }
func (emptyIter) Err() error           { return nil }

type errIter struct{ err error }

func (errIter) Next() bool           { return false }
func (errIter) SeekTo(int64) bool    { return false }
func (errIter) At() (int64, float64) { return 0, 0 }
func (e errIter) Err() error         { return e.err }
