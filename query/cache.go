package query

import (
	"cmp"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/dgraph-io/ristretto/v2"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// ResultCache keeps range-query results so that a dashboard refresh, whose
// window moved forward by a few steps, computes only the new tail. Points
// newer than now minus Offset are never cached: samples may still arrive
// for them.
type ResultCache struct {
	c      *ristretto.Cache[string, *cachedRange]
	offset int64
	now    func() time.Time
	// Hits counts range queries that reused cached steps; Steps the steps
	// they did not have to compute.
	Hits, Steps atomic.Int64

	// keys are the keys set, some evicted since: what Save looks up (the
	// cache itself cannot list its entries).
	mu      sync.Mutex
	keys    map[string]struct{}
	pruneAt int // len(keys) at which the evicted ones are forgotten
	// verdicts remembers which queries may be cached (cacheable), so that
	// a dashboard's refresh does not parse its queries once more to know.
	verdicts map[string]bool
}

// maxVerdicts is how many queries' cacheable verdicts a ResultCache
// remembers.
const maxVerdicts = 1024

// maxKeys is how many keys ResultCache remembers before it forgets those
// evicted since.
const maxKeys = 1 << 16

type cachedRange struct {
	start, end int64 // aligned to step; points cover [start, end]
	series     []Series
	tier       string // Result.Tier of the points
}

// NewResultCache returns a cache of at most maxBytes; offset is how far
// behind now a point must be to be cached (VictoriaMetrics uses 5m).
func NewResultCache(maxBytes int64, offset time.Duration, now func() time.Time) (*ResultCache, error) {
	c, err := ristretto.NewCache(&ristretto.Config[string, *cachedRange]{
		NumCounters: max(1000, maxBytes/1000),
		MaxCost:     maxBytes,
		BufferItems: 64,
	})
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &ResultCache{c: c, offset: offset.Milliseconds(), now: now, keys: map[string]struct{}{}, pruneAt: maxKeys, verdicts: map[string]bool{}}, nil
}

// Reset forgets everything, after data changed in the past (deletes).
func (rc *ResultCache) Reset() {
	rc.c.Clear()
	rc.mu.Lock()
	clear(rc.keys)
	rc.pruneAt = maxKeys
	rc.mu.Unlock()
}

// cacheable is cacheable(q), remembered.
func (rc *ResultCache) cacheable(q string) bool {
	rc.mu.Lock()
	v, ok := rc.verdicts[q]
	rc.mu.Unlock()
	if ok {
		return v
	}
	v = cacheable(q)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.verdicts) >= maxVerdicts {
		for k := range rc.verdicts { // any one: a map's order is random
			delete(rc.verdicts, k)
			break
		}
	}
	rc.verdicts[q] = v
	return v
}

// set caches r under key.
func (rc *ResultCache) set(key string, r *cachedRange) {
	cost := int64(64)
	for _, s := range r.series {
		cost += int64(len(s.Points))*16 + int64(len(s.Metric.String()))
		for _, h := range s.Histograms {
			cost += histogramBytes(h)
		}
	}
	rc.c.Set(key, r, cost)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.keys[key] = struct{}{}
	if len(rc.keys) > rc.pruneAt {
		for k := range rc.keys {
			// (the key just set may not be in the cache yet: its set
			// is buffered)
			if _, ok := rc.c.Get(k); !ok && k != key {
				delete(rc.keys, k)
			}
		}
		// NB: with more live entries than maxKeys, the next pass waits
		// until their number doubles rather than coming at every set.
		rc.pruneAt = max(maxKeys, 2*len(rc.keys))
	}
}

// savedCache is a ResultCache on disk: its entries, with the stamp of the
// build that computed them.
type savedCache struct {
	Stamp  string
	Ranges []savedRange
}

type savedRange struct {
	Key        string
	Start, End int64
	Tier       string
	Series     []savedSeries
}

type savedSeries struct {
	Metric []labels.Label
	Points []Point
	// Hists are the histograms by point (gob has no nil elements):
	// none for a series of floats only.
	Hists []savedHist
}

type savedHist struct {
	Set bool
	H   histogram.FloatHistogram
}

// Save writes the cached ranges to w, stamped: Load takes them back only
// under the same stamp (the same build), since a result is only as right
// as the engine that computed it.
func (rc *ResultCache) Save(w io.Writer, stamp string) (int, error) {
	rc.c.Wait()
	rc.mu.Lock()
	keys := make([]string, 0, len(rc.keys))
	for k := range rc.keys {
		keys = append(keys, k)
	}
	rc.mu.Unlock()
	slices.Sort(keys)
	sc := savedCache{Stamp: stamp}
	for _, k := range keys {
		r, ok := rc.c.Get(k)
		if !ok {
			continue
		}
		sr := savedRange{Key: k, Start: r.start, End: r.end, Tier: r.tier}
		for _, s := range r.series {
			ss := savedSeries{Points: s.Points}
			s.Metric.Range(func(l labels.Label) { ss.Metric = append(ss.Metric, l) })
			for _, h := range s.Histograms {
				var sh savedHist
				if h != nil {
					sh = savedHist{Set: true, H: *h}
				}
				ss.Hists = append(ss.Hists, sh)
			}
			sr.Series = append(sr.Series, ss)
		}
		sc.Ranges = append(sc.Ranges, sr)
	}
	return len(sc.Ranges), gob.NewEncoder(w).Encode(&sc)
}

// Load adds the ranges Save wrote under stamp; under another stamp it
// adds none.
func (rc *ResultCache) Load(r io.Reader, stamp string) (int, error) {
	var sc savedCache
	if err := gob.NewDecoder(r).Decode(&sc); err != nil {
		return 0, fmt.Errorf("decode saved query results: %w", err)
	}
	if sc.Stamp != stamp {
		return 0, nil
	}
	for _, sr := range sc.Ranges {
		cr := &cachedRange{start: sr.Start, end: sr.End, tier: sr.Tier}
		for _, s := range sr.Series {
			x := Series{Metric: labels.New(s.Metric...), Points: s.Points}
			if len(s.Hists) > 0 {
				x.Histograms = make([]*histogram.FloatHistogram, len(s.Hists))
				for i := range s.Hists {
					if s.Hists[i].Set {
						x.Histograms[i] = &s.Hists[i].H
					}
				}
			}
			cr.series = append(cr.series, x)
		}
		rc.set(sr.Key, cr)
	}
	rc.c.Wait()
	return len(sc.Ranges), nil
}

// SaveFile is Save to path (written aside and renamed into place).
func (rc *ResultCache) SaveFile(path, stamp string) (int, error) {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return 0, err
	}
	n, err := rc.Save(f, stamp)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(path+".tmp", path)
	}
	if err != nil {
		os.Remove(path + ".tmp")
		return 0, err
	}
	return n, nil
}

// LoadFile is Load from path, which it then removes: the results are
// saved again at the next clean shutdown, and a crash leaves none that
// could be stale. A missing file loads nothing.
func (rc *ResultCache) LoadFile(path, stamp string) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := rc.Load(f, stamp)
	f.Close()
	if rerr := os.Remove(path); err == nil && rerr != nil {
		err = rerr
	}
	return n, err
}

// Close releases the cache.
func (rc *ResultCache) Close() { rc.c.Close() }

// cacheable reports whether q's value at a time depends only on data up
// to that time and not on the query's bounds.
func cacheable(q string) bool {
	e, err := Parse(q)
	if err != nil {
		return false
	}
	ok := true
	walk(e, func(x metricsql.Expr) {
		switch x := x.(type) {
		case *metricsql.FuncExpr:
			switch x.Name {
			case "start", "end", "step", "range", "now", "limit_offset", "union",
				"range_first", "range_last", "range_min", "range_max", "range_avg",
				"range_sum", "range_median", "range_quantile":
				ok = false
			}
		case *metricsql.MetricExpr:
			if rangeModOf(x) == modSmoothed {
				ok = false // interpolates towards the next sample: reads the future
			}
		case *metricsql.RollupExpr:
			if x.Offset != nil && strings.HasPrefix(string(x.Offset.AppendString(nil)), "-") {
				ok = false // reads the future
			}
			if x.At != nil {
				ok = false
			}
		}
	})
	return ok && !strings.Contains(q, "range(") && !strings.Contains(q, "step(")
}

// Cached is an Evaluator whose range queries go through a ResultCache:
// the steps already cached for the same query and step are reused.
// Instant queries pass through.
type Cached struct {
	Evaluator
	rc *ResultCache
}

// NewCached wraps e with rc; a nil rc caches nothing.
func NewCached(e Evaluator, rc *ResultCache) *Cached { return &Cached{Evaluator: e, rc: rc} }

// Uncached is the wrapped Evaluator, for requests that bypass the cache.
func (c *Cached) Uncached() Evaluator { return c.Evaluator }

// Range evaluates q over [start, end], reusing cached steps.
func (c *Cached) Range(ctx context.Context, tenant, q string, start, end, step int64) (*Result, error) {
	e, rc := c.Evaluator, c.rc
	if rc == nil || step <= 0 || start%step != 0 || !rc.cacheable(q) {
		return e.Range(ctx, tenant, q, start, end, step)
	}
	key := tenant + "\x00" + strconv.FormatInt(step, 10) + "\x00" + q
	from := start
	var cached *cachedRange
	if c, ok := rc.c.Get(key); ok && c.start <= start && c.end >= start {
		cached = c
		from = c.end + step
		rc.Hits.Add(1)
		rc.Steps.Add((min(c.end, end)-start)/step + 1)
	}
	var res *Result
	if from <= end {
		r, err := e.Range(ctx, tenant, q, from, end, step)
		if err != nil {
			return nil, err
		}
		res = r
	} else {
		res = &Result{Type: ValueMatrix}
	}
	if cached != nil {
		res.Series = mergeRanges(cached.series, res.Series, start, end)
		res.Tier = mergeTierNames(cached.tier, res.Tier)
	}
	// Cache what is old enough to be final.
	limit := rc.now().UnixMilli() - rc.offset
	limit -= ((limit % step) + step) % step
	if keepEnd := min(end, limit); limit >= start && (cached == nil || cached.end < keepEnd) {
		// (A refresh within the same step finds all it would keep
		// already cached: nothing to copy.)
		var keep []Series
		for _, s := range res.Series {
			i, _ := slices.BinarySearchFunc(s.Points, keepEnd+1, func(p Point, t int64) int { return int(p.T - t) })
			if i > 0 {
				k := Series{Metric: s.Metric, Points: slices.Clone(s.Points[:i])}
				if s.Histograms != nil {
					k.Histograms = slices.Clone(s.Histograms[:i])
				}
				keep = append(keep, k)
			}
		}
		rc.set(key, &cachedRange{start: start, end: keepEnd, series: keep, tier: res.Tier})
	}
	return res, nil
}

// mergeRanges joins the cached points (from start on) with the new ones,
// which come after them. Each series' points are copied once into a slice
// of its final length: a dashboard's refresh merges a few hundred series
// of a few hundred points, and growing them a point at a time allocated
// several times the answer.
func mergeRanges(old, fresh []Series, start, end int64) []Series {
	// The fresh series by their labels' hash; next chains those of one
	// hash (told apart by their labels).
	first := make(map[uint64]int, len(fresh))
	next := make([]int, len(fresh))
	for i := range fresh {
		h := fresh[i].Metric.Hash()
		if j, ok := first[h]; ok {
			next[i] = j
		} else {
			next[i] = -1
		}
		first[h] = i
	}
	taken := make([]bool, len(fresh))
	find := func(s *Series) *Series {
		j, ok := first[s.Metric.Hash()]
		for ok && j >= 0 {
			if !taken[j] && labels.Equal(fresh[j].Metric, s.Metric) {
				taken[j] = true
				return &fresh[j]
			}
			j = next[j]
		}
		return nil
	}
	out := make([]Series, 0, max(len(old), len(fresh)))
	for i := range old {
		if s := joinPoints(&old[i], find(&old[i]), start, end); len(s.Points) > 0 {
			out = append(out, s)
		}
	}
	for i := range fresh {
		if !taken[i] {
			if s := joinPoints(&fresh[i], nil, start, end); len(s.Points) > 0 {
				out = append(out, s)
			}
		}
	}
	slices.SortFunc(out, func(a, b Series) int { return labels.Compare(a.Metric, b.Metric) })
	return out
}

// joinPoints is a's points in [start, end] followed by b's (b may be
// nil), in one new slice.
func joinPoints(a, b *Series, start, end int64) Series {
	ai, aj := pointsWithin(a, start, end)
	var bi, bj int
	if b != nil {
		bi, bj = pointsWithin(b, start, end)
	}
	out := Series{Metric: a.Metric, Points: make([]Point, 0, aj-ai+bj-bi)}
	out.Points = append(out.Points, a.Points[ai:aj]...)
	if b != nil {
		out.Points = append(out.Points, b.Points[bi:bj]...)
	}
	if hasHistogram(a, ai, aj) || (b != nil && hasHistogram(b, bi, bj)) {
		out.Histograms = make([]*histogram.FloatHistogram, 0, len(out.Points))
		out.Histograms = appendHistograms(out.Histograms, a, ai, aj)
		if b != nil {
			out.Histograms = appendHistograms(out.Histograms, b, bi, bj)
		}
	}
	return out
}

// pointsWithin is the span of s's points (ordered by time) in [start, end].
func pointsWithin(s *Series, start, end int64) (int, int) {
	byT := func(p Point, t int64) int { return cmp.Compare(p.T, t) }
	i, _ := slices.BinarySearchFunc(s.Points, start, byT)
	j, _ := slices.BinarySearchFunc(s.Points, end+1, byT)
	return i, max(i, j)
}

// hasHistogram reports whether any of s's points i..j is a histogram.
func hasHistogram(s *Series, i, j int) bool {
	return s.Histograms != nil && slices.ContainsFunc(s.Histograms[i:j], func(h *histogram.FloatHistogram) bool { return h != nil })
}

// appendHistograms appends s's histograms of points i..j (nil for floats).
func appendHistograms(dst []*histogram.FloatHistogram, s *Series, i, j int) []*histogram.FloatHistogram {
	if s.Histograms == nil {
		return append(dst, make([]*histogram.FloatHistogram, j-i)...)
	}
	return append(dst, s.Histograms[i:j]...)
}

// histogramBytes is about the memory a cached histogram holds (its
// struct, spans and buckets); 0 for none.
func histogramBytes(h *histogram.FloatHistogram) int64 {
	if h == nil {
		return 0
	}
	return 8 + 112 + 8*int64(len(h.PositiveSpans)+len(h.NegativeSpans)+
		len(h.PositiveBuckets)+len(h.NegativeBuckets)+len(h.CustomValues))
}
