package storage

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/prometheus/model/labels"
)

// TierQuerier is implemented by Queriers that can read downsampled tiers
// (the DB's do when Options.Tiers is set). The query engine finds it by
// type assertion. It is safe for concurrent use, as Querier is.
type TierQuerier interface {
	// Tiers returns the tiers the querier reads, finest first.
	Tiers() []TierInfo
	// RawMinTime is the oldest timestamp whose raw samples the querier
	// still reads (its tenant's raw retention); MinInt64 when all are
	// kept.
	RawMinTime() int64
	// SelectTier is Select over the buckets of the tier of resolution res:
	// each series of the set is a TierSeries whose buckets end in
	// [hints.Start, hints.End] (the querier's range without a hint). Its
	// buckets are the tier's where the tier is built, and computed from the
	// raw samples where it is not yet, so they answer the same whatever
	// the background work has done. An unknown res yields an error.
	SelectTier(ctx context.Context, res time.Duration, hints *SelectHints, ms ...*labels.Matcher) SeriesSet
}

// TierInfo describes a tier a TierQuerier reads.
type TierInfo struct {
	Resolution time.Duration
	// MinTime is the end of the oldest bucket kept for the querier's
	// tenant (its retention in this tier); MinInt64 when all are kept.
	MinTime int64
	// SamplesPerBucket is how many raw samples a bucket of the tier
	// stands for, on average over the days built (0: none built yet). A
	// tier near 1 reads as many points as the raw samples, and more
	// slowly.
	SamplesPerBucket float64
}

// TierSeries is a series of a SeriesSet returned by SelectTier.
type TierSeries interface {
	Series
	// Buckets appends the series' buckets, ascending by End, to dst. Its
	// Iterator yields the buckets' last samples (and a stale marker at
	// the end of a bucket that ends with one): an approximation of the
	// raw series for functions the buckets cannot answer.
	Buckets(dst []Bucket) ([]Bucket, error)
	// HasHistograms reports whether the series holds native histograms,
	// which tiers do not keep: read those series raw.
	HasHistograms() bool
}

var _ TierQuerier = (*querier)(nil)

var allTierBlocks = &pebble.IterOptions{LowerBound: []byte{prefixTier}, UpperBound: []byte{prefixTier + 1}}

func (q *querier) Tiers() []TierInfo {
	o := &q.db.opts
	out := make([]TierInfo, len(o.Tiers))
	for i, t := range o.Tiers {
		var samples, buckets uint64
		for _, sh := range q.db.shards {
			sh.tiers.mu.Lock()
			samples, buckets = samples+sh.tiers.mu.samples[i], buckets+sh.tiers.mu.buckets[i]
			sh.tiers.mu.Unlock()
		}
		out[i] = TierInfo{Resolution: t.Resolution, MinTime: cutoffOf(o, o.tierRetention(q.tenant, i))}
		if buckets > 0 {
			out[i].SamplesPerBucket = float64(samples) / float64(buckets)
		}
	}
	return out
}

func (q *querier) RawMinTime() int64 { return q.mint }

func (q *querier) SelectTier(ctx context.Context, res time.Duration, hints *SelectHints, ms ...*labels.Matcher) SeriesSet {
	q.cc.AssertOpen("storage: querier")
	o := &q.db.opts
	i := o.tierIndex(res)
	if i < 0 {
		return &seriesSet{err: fmt.Errorf("storage: no tier of resolution %s", res)}
	}
	if len(ms) == 0 {
		return &seriesSet{err: fmt.Errorf("%w: select needs at least one matcher", ErrInvalidSeries)}
	}
	mint, maxt := max(q.reqMint, cutoffOf(o, o.tierRetention(q.tenant, i))), q.maxt
	limit, fields := 0, AllFields
	if hints != nil {
		mint, maxt = max(mint, hints.Start), min(maxt, hints.End)
		limit = hints.Limit
		if hints.Fields != 0 {
			fields = hints.Fields
		}
	}
	mint, maxt = max(mint, minStorableT), min(maxt, maxStorableT)
	found, err := q.matchTier(ctx, mint, maxt, res.Milliseconds(), ms)
	if err != nil {
		return &seriesSet{err: err}
	}
	truncated := false
	if limit > 0 && len(found) > limit {
		found, truncated = found[:limit], true
	}
	return &tierSeriesSet{seriesSet: seriesSet{q: q, list: found, i: -1, mint: mint, maxt: maxt, truncated: truncated}, tier: i, fields: fields}
}

// matchTier is match for buckets ending in [mint, maxt]: a series
// qualifies by its raw samples or by its tier blocks.
func (q *querier) matchTier(ctx context.Context, mint, maxt, res int64, ms []*labels.Matcher) ([]seriesAt, error) {
	var out []seriesAt
	rawLo := max(mint-res+1, q.mint)
	dlo, dhi := tierDayOf(mint), tierDayOf(maxt)
	for _, sh := range q.db.shards {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sh.idxMu.RLock()
		ti := sh.tenants[q.tenant]
		if ti == nil {
			sh.idxMu.RUnlock()
			continue
		}
		for _, ref := range ti.postingsFor(ms, sh.cache, sh.id) {
			s := ti.get(ref)
			if s == nil {
				continue
			}
			ok := s.maxT.Load() >= rawLo && s.minT.Load() <= maxt
			if !ok {
				s.mu.Lock()
				ok = s.mu.tierMaxDay >= dlo && s.mu.tierMinDay <= dhi
				s.mu.Unlock()
			}
			if ok {
				out = append(out, seriesAt{sh: sh, s: s})
			}
		}
		sh.idxMu.RUnlock()
	}
	sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].s.lset, out[j].s.lset) < 0 })
	return out, nil
}

type tierSeriesSet struct {
	seriesSet
	tier   int
	fields BucketFields
}

func (ss *tierSeriesSet) At() Series {
	at := ss.list[ss.i]
	return &tierSeries{series: series{q: ss.q, sh: at.sh, s: at.s, mint: ss.mint, maxt: ss.maxt}, tier: ss.tier, fields: ss.fields}
}

type tierSeries struct {
	series
	tier   int
	fields BucketFields
}

func (s *tierSeries) HasHistograms() bool {
	s.s.mu.Lock()
	defer s.s.mu.Unlock()
	return s.s.mu.hist != nil
}

func (s *tierSeries) Iterator(Iterator) Iterator {
	s.fields |= FieldCount | FieldLast | FieldLastT
	bs, err := s.Buckets(nil)
	if err != nil {
		return errIter{err}
	}
	out := make([]Sample, 0, len(bs))
	for _, b := range bs {
		if b.Count > 0 {
			out = append(out, Sample{T: b.LastT, V: b.Last})
		}
		if b.Stale && (b.Count == 0 || b.LastT < b.End) {
			out = append(out, Sample{T: b.End, V: math.Float64frombits(StaleNaN)})
		}
	}
	return newSampleIter(out)
}

func (s *tierSeries) Buckets(dst []Bucket) ([]Bucket, error) {
	s.q.cc.AssertOpen("storage: series of a closed querier")
	return s.sh.buckets(s.q, s.s, s.tier, s.mint, s.maxt, s.fields, dst)
}

// buckets appends the buckets of ms in tier i ending in [mint, maxt],
// with the fields of want: stored blocks for the days built and clean,
// computed from raw samples for the others.
func (sh *shard) buckets(q *querier, ms *memSeries, i int, mint, maxt int64, want BucketFields, dst []Bucket) ([]Bucket, error) {
	if mint > maxt {
		return dst, nil
	}
	res := sh.opts.Tiers[i].Resolution.Milliseconds()
	ms.mu.Lock()
	tmin, tmax := ms.mu.tierMinDay, ms.mu.tierMaxDay
	ms.mu.Unlock()
	// Only the days the series may have data in.
	lo, hi := ms.minT.Load(), ms.maxT.Load()
	if tmin <= tmax {
		lo, hi = min(lo, dayStart(tmin)+1), max(hi, dayStart(tmin)+dayMillis*int64(tmax-tmin+1))
	}
	if lo > hi {
		return dst, nil
	}
	mint, maxt = max(mint, lo), min(maxt, hi+res)
	if mint > maxt {
		return dst, nil
	}
	first, last := tierDayOf(mint), tierDayOf(maxt)
	rawDay := dayOf(q.mint) // raw days before it are gone: the blocks are all there is
	// The state of the tier, once (not a lock per day).
	sh.tiers.mu.Lock()
	built := sh.tiers.mu.built[i]
	var dirty []int32
	for d := range sh.tiers.mu.dirty {
		if d >= first && d <= last && d >= rawDay {
			dirty = append(dirty, d)
		}
	}
	sh.tiers.mu.Unlock()
	stored := func(d int32) bool { return d <= built && (len(dirty) == 0 || !slices.Contains(dirty, d)) }
	n := blockDays(res)
	for d := first; d <= last && d >= first; {
		if stored(d) {
			// The run of stored days in d's block.
			e := d
			for end := min(last, periodOf(d, n)+n-1); e < end && stored(e+1); {
				e++
			}
			if e >= tmin && d <= tmax {
				var err error
				lo, hi := max(mint, dayStart(d)+1), min(maxt, dayStart(e)+dayMillis)
				if dst, err = sh.readBlock(q, ms, res, periodOf(d, n), lo, hi, want, dst); err != nil {
					return dst, err
				}
			}
			if e == math.MaxInt32 {
				break
			}
			d = e + 1
			continue
		}
		e := d
		for e < last && !stored(e+1) {
			e++
		}
		lo, hi := max(dayStart(d)+1, mint-res+1, q.mint), min(dayStart(e)+dayMillis, maxt)
		if lo <= hi {
			var err error
			if dst, err = sh.rawBuckets(q, ms, res, lo, hi, mint, dst); err != nil {
				return dst, err
			}
		}
		if e == math.MaxInt32 {
			break
		}
		d = e + 1
	}
	return dst, nil
}

// readBlock appends the buckets of the stored block of ms for the
// period starting at day p that end in [mint, maxt].
func (sh *shard) readBlock(q *querier, ms *memSeries, res int64, p int32, mint, maxt int64, want BucketFields, dst []Bucket) ([]Bucket, error) {
	r, err := q.readerOf(sh, &q.titers, allTierBlocks)
	if err != nil {
		return dst, err
	}
	it := r.it
	r.key = tierKey(r.key[:0], res, p, ms.tenant, ms.ref)
	if it.SeekGE(r.key) && string(it.Key()) == string(r.key) {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return dst, err
		}
		n := len(dst)
		if dst, err = decodeTierBlockFields(dst, p, v, want, mint, maxt, &r.sc); err != nil {
			_ = it.Close()
			return dst[:n], err
		}
	}
	if err := it.Error(); err != nil {
		_ = it.Close()
		return dst, err
	}
	q.putTo(sh, &q.titers, r)
	return dst, nil
}

// rawBuckets appends the buckets computed from the raw samples of ms in
// [lo, hi] that end in [mint, hi].
func (sh *shard) rawBuckets(q *querier, ms *memSeries, res, lo, hi, mint int64, dst []Bucket) ([]Bucket, error) {
	it, err := sh.iterator(q, ms, lo, hi, nil)
	if err != nil {
		return dst, err
	}
	agg := bucketAgg{res: res}
	hit, _ := it.(HistogramIterator)
	for it.Next() {
		if hit != nil && hit.AtHistogram() != nil {
			continue
		}
		t, v := it.At()
		agg.add(t, v)
	}
	if err := it.Err(); err != nil {
		return dst, err
	}
	for _, b := range agg.buckets() {
		if b.End >= mint && b.End <= hi {
			dst = append(dst, b)
		}
	}
	return dst, nil
}
