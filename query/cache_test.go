package query

import (
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// cachedEngine is an engine over db and a result cache whose clock reads
// *now (7,200 s, for the test to move), closed with the test.
func cachedEngine(t *testing.T, db *storage.DB) (*Engine, *ResultCache, *time.Time) {
	now := time.UnixMilli(7200_000)
	rc, err := NewResultCache(64<<20, 5*time.Minute, func() time.Time { return now })
	require.NoError(t, err)
	t.Cleanup(rc.Close)
	return NewEngine(db, nil), rc, &now
}

func TestRangeCacheComputesOnlyTheTail(t *testing.T) {
	db := st.Open(t, nil)
	var b storage.Batch
	for i, inst := range []string{"a", "b"} {
		var smp []storage.Sample
		for ts := int64(0); ts <= 7200_000; ts += 15_000 {
			smp = append(smp, storage.Sample{T: ts, V: float64(ts/1000) * float64(i+1)})
		}
		b.Add(labels.FromStrings("__name__", "c_total", "i", inst), smp...)
	}
	require.NoError(t, db.Write(context.Background(), "default", &b))
	eng, rc, now := cachedEngine(t, db)
	ctx := context.Background()
	q := `sum by (i) (rate(c_total[5m]))`

	check := func(start, end int64) {
		t.Helper()
		got, err := NewCached(eng, rc).Range(ctx, "default", q, start, end, 60_000)
		require.NoError(t, err)
		want, err := eng.Range(ctx, "default", q, start, end, 60_000)
		require.NoError(t, err)
		require.Equal(t, want.Series, got.Series)
	}
	check(1800_000, 5400_000)
	rc.c.Wait()
	require.Zero(t, rc.Hits.Load())
	// The dashboard refreshes 5 minutes later: same window, moved.
	*now = now.Add(5 * time.Minute)
	check(2100_000, 5700_000)
	require.Equal(t, int64(1), rc.Hits.Load())
	require.Positive(t, rc.Steps.Load())

	// Queries that depend on their bounds or on the future are not cached.
	require.False(t, cacheable(`x @ end()`))
	require.False(t, cacheable(`x offset -5m`))
	require.False(t, cacheable(`range_max(x)`))
	// A smoothed selector reads past each step (issue 17); anchored does not.
	require.False(t, cacheable(`rate(x[5m] smoothed)`))
	require.False(t, cacheable(`x smoothed`))
	require.True(t, cacheable(`rate(x[5m] anchored)`))
	require.True(t, cacheable(q))
}

// Native histograms go through the cache with their points.
func TestRangeCacheHistograms(t *testing.T) {
	db := st.Open(t, nil)
	var b storage.Batch
	var hs []storage.HSample
	for ts := int64(0); ts <= 7200_000; ts += 15_000 {
		n := float64(ts / 1000)
		hs = append(hs, storage.HSample{T: ts, H: &histogram.FloatHistogram{Count: n, Sum: 2 * n,
			PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []float64{n}}})
	}
	b.AddHistograms(labels.FromStrings("__name__", "h", "i", "a"), hs...)
	b.Add(labels.FromStrings("__name__", "h", "i", "b"), storage.Sample{T: 0, V: 1})
	require.NoError(t, db.Write(context.Background(), "default", &b))
	eng, rc, now := cachedEngine(t, db)
	ctx := context.Background()
	q := `rate(h[5m])`
	check := func(start, end int64) {
		t.Helper()
		got, err := NewCached(eng, rc).Range(ctx, "default", q, start, end, 60_000)
		require.NoError(t, err)
		want, err := eng.Range(ctx, "default", q, start, end, 60_000)
		require.NoError(t, err)
		require.Equal(t, want.Series, got.Series)
		require.Len(t, got.Series, 1)
		require.Len(t, got.Series[0].Histograms, len(got.Series[0].Points))
		require.NotNil(t, got.Series[0].H(0))
	}
	check(1800_000, 5400_000)
	rc.c.Wait()
	*now = now.Add(5 * time.Minute)
	check(2100_000, 5700_000)
	require.Equal(t, int64(1), rc.Hits.Load())
}

// countingEvaluator counts the steps it was asked to compute.
type countingEvaluator struct {
	Evaluator
	steps int64
}

func (c *countingEvaluator) Range(ctx context.Context, tenant, q string, start, end, step int64) (*Result, error) {
	c.steps += (end-start)/step + 1
	return c.Evaluator.Range(ctx, tenant, q, start, end, step)
}

// Cached ranges survive a clean restart: saved at shutdown, loaded at
// start-up by the same build, they answer as before without being
// computed again — floats and histograms alike. Another build's file
// loads nothing, and a loaded file is gone (a crash later leaves none).
func TestRangeCacheSavedAndLoaded(t *testing.T) {
	db := st.Open(t, nil)
	var b storage.Batch
	var hs []storage.HSample
	for ts := int64(0); ts <= 7200_000; ts += 15_000 {
		n := float64(ts / 1000)
		b.Add(labels.FromStrings("__name__", "c_total", "i", "a"), storage.Sample{T: ts, V: n})
		hs = append(hs, storage.HSample{T: ts, H: &histogram.FloatHistogram{Count: n, Sum: 2 * n,
			PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []float64{n}}})
	}
	b.AddHistograms(labels.FromStrings("__name__", "h", "i", "a"), hs...)
	require.NoError(t, db.Write(context.Background(), "default", &b))
	eng := NewEngine(db, nil)
	now := time.UnixMilli(7200_000)
	clock := func() time.Time { return now }
	ctx := context.Background()
	qs := []string{`sum by (i) (rate(c_total[5m]))`, `rate(h[5m])`}
	const start, end, step = 1800_000, 5400_000, 60_000

	rc, err := NewResultCache(64<<20, 5*time.Minute, clock)
	require.NoError(t, err)
	want := map[string]*Result{}
	for _, q := range qs {
		r, err := NewCached(eng, rc).Range(ctx, "default", q, start, end, step)
		require.NoError(t, err)
		want[q] = r
	}
	path := filepath.Join(t.TempDir(), "query-cache.gob")
	n, err := rc.SaveFile(path, "build-1")
	require.NoError(t, err)
	require.Equal(t, len(qs), n)
	rc.Close()

	load := func(stamp string) (*ResultCache, int) {
		t.Helper()
		rc, err := NewResultCache(64<<20, 5*time.Minute, clock)
		require.NoError(t, err)
		t.Cleanup(rc.Close)
		n, err := rc.LoadFile(path, stamp)
		require.NoError(t, err)
		return rc, n
	}
	other, n := load("build-2")
	require.Zero(t, n, "another build's results")
	_, err = os.Stat(path)
	require.ErrorIs(t, err, fs.ErrNotExist, "the file is consumed")
	_, err = other.SaveFile(path, "build-1") // empty: nothing was loaded
	require.NoError(t, err)
	_, n = load("build-1")
	require.Zero(t, n)

	n, err = rc.SaveFile(path, "build-1") // a closed cache holds nothing
	require.NoError(t, err)
	require.Zero(t, n)
	rc2, err := NewResultCache(64<<20, 5*time.Minute, clock)
	require.NoError(t, err)
	defer rc2.Close()
	for _, q := range qs {
		_, err := NewCached(eng, rc2).Range(ctx, "default", q, start, end, step)
		require.NoError(t, err)
	}
	_, err = rc2.SaveFile(path, "build-1")
	require.NoError(t, err)
	restarted, n := load("build-1")
	require.Equal(t, len(qs), n)
	ce := &countingEvaluator{Evaluator: eng}
	for _, q := range qs {
		got, err := NewCached(ce, restarted).Range(ctx, "default", q, start, end, step)
		require.NoError(t, err)
		require.Equal(t, want[q].Series, got.Series, q)
	}
	require.Zero(t, ce.steps, "computed again after the restart")
}

// The keys a cache remembers for Save are pruned of evicted ones when
// they pass maxKeys, and with more live entries than that the next pass
// waits until they double instead of scanning at every set.
// TestCacheableVerdictsRemembered holds the remembered verdicts to
// cacheable's, asked again and by many goroutines, and their number to
// maxVerdicts.
func TestCacheableVerdictsRemembered(t *testing.T) {
	rc, err := NewResultCache(1<<20, 5*time.Minute, nil)
	require.NoError(t, err)
	defer rc.Close()
	qs := []string{`x @ end()`, `x offset -5m`, `range_max(x)`, `rate(x[5m] smoothed)`, `rate(x[5m] anchored)`,
		`sum by (i) (rate(c_total[5m]))`, `time() - x`, `x{`, `step()`}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 3 {
				for _, q := range qs {
					require.Equal(t, cacheable(q), rc.cacheable(q), q)
				}
			}
		})
	}
	wg.Wait()
	for i := range maxVerdicts + 10 {
		require.True(t, rc.cacheable("x"+strconv.Itoa(i)))
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	require.Len(t, rc.verdicts, maxVerdicts)
}

func TestResultCacheKeysPruned(t *testing.T) {
	rc, err := NewResultCache(1<<30, 5*time.Minute, nil)
	require.NoError(t, err)
	defer rc.Close()
	for i := range maxKeys + 10 {
		rc.set(strconv.Itoa(i), &cachedRange{})
		rc.c.Wait()
	}
	rc.mu.Lock()
	n, at := len(rc.keys), rc.pruneAt
	rc.mu.Unlock()
	live := 0
	for i := range maxKeys + 10 {
		if _, ok := rc.c.Get(strconv.Itoa(i)); ok {
			live++
		}
	}
	require.Greater(t, live, maxKeys, "the cache holds more than maxKeys")
	require.Equal(t, live, n, "the keys remembered are the live ones")
	require.GreaterOrEqual(t, at, 2*(maxKeys+1), "the next pass waits")
	rc.Reset()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	require.Zero(t, len(rc.keys))
	require.Equal(t, maxKeys, rc.pruneAt)
}

// TestMergeRangesMatchesPointByPoint holds the merge of cached and fresh
// steps, which copies each series once, to the merge it replaced (points
// of the window added one at a time, old before fresh, series matched by
// their labels): series in both, in one only, with points outside the
// window, emptied by it, and with native histograms on either side.
func TestMergeRangesMatchesPointByPoint(t *testing.T) {
	reference := func(old, fresh []Series, start, end int64) []Series {
		byKey := map[string]int{}
		var out []Series
		for _, s := range append(slices.Clone(old), fresh...) {
			k := s.Metric.String()
			i, ok := byKey[k]
			if !ok {
				byKey[k] = len(out)
				out = append(out, Series{Metric: s.Metric})
				i = len(out) - 1
			}
			for j, p := range s.Points {
				if p.T >= start && p.T <= end {
					out[i].add(p, s.H(j))
				}
			}
		}
		out = slices.DeleteFunc(out, func(s Series) bool { return len(s.Points) == 0 })
		slices.SortFunc(out, func(a, b Series) int { return labels.Compare(a.Metric, b.Metric) })
		return out
	}
	rng := rand.New(rand.NewPCG(5, 8))
	h := &histogram.FloatHistogram{Count: 3, Sum: 4.5, ZeroCount: 1, PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []float64{2}}
	series := func(name string, from, to int64, hist bool) Series {
		s := Series{Metric: labels.FromStrings("__name__", "m", "i", name)}
		for ts := from; ts <= to; ts += 60_000 {
			if hist && rng.IntN(3) == 0 {
				s.add(Point{T: ts}, h)
			} else {
				s.add(Point{T: ts, F: rng.Float64()}, nil)
			}
		}
		return s
	}
	for round := range 500 {
		cachedEnd := int64(rng.IntN(60)) * 60_000
		var old, fresh []Series
		for i := range rng.IntN(12) {
			name := strconv.Itoa(i)
			if rng.IntN(5) > 0 {
				old = append(old, series(name, int64(rng.IntN(10))*60_000, cachedEnd-int64(rng.IntN(3))*60_000, rng.IntN(4) == 0))
			}
			if rng.IntN(5) > 0 {
				fresh = append(fresh, series(name, cachedEnd+60_000, cachedEnd+int64(rng.IntN(8))*60_000, rng.IntN(4) == 0))
			}
		}
		rng.Shuffle(len(fresh), func(i, j int) { fresh[i], fresh[j] = fresh[j], fresh[i] })
		start := int64(rng.IntN(30)) * 60_000
		end := start + int64(rng.IntN(70))*60_000
		got := mergeRanges(old, fresh, start, end)
		want := reference(old, fresh, start, end)
		if len(got) == 0 && len(want) == 0 {
			continue
		}
		require.Equal(t, want, got, "round %d", round)
	}
}

// TestRangeCacheRefreshWithinAStep answers a refresh that comes before the
// next step is final from the cache as it is, without storing it again.
func TestRangeCacheRefreshWithinAStep(t *testing.T) {
	db := st.Open(t, nil)
	var b storage.Batch
	var smp []storage.Sample
	for ts := int64(0); ts <= 7200_000; ts += 15_000 {
		smp = append(smp, storage.Sample{T: ts, V: float64(ts / 1000)})
	}
	b.Add(labels.FromStrings("__name__", "c_total"), smp...)
	require.NoError(t, db.Write(context.Background(), "default", &b))
	eng, rc, now := cachedEngine(t, db)
	ctx := context.Background()
	q := `rate(c_total[5m])`
	want, err := eng.Range(ctx, "default", q, 1800_000, 7200_000, 60_000)
	require.NoError(t, err)
	got, err := NewCached(eng, rc).Range(ctx, "default", q, 1800_000, 7200_000, 60_000)
	require.NoError(t, err)
	require.Equal(t, want.Series, got.Series)
	rc.c.Wait()
	key := "default\x00" + "60000\x00" + q
	first, ok := rc.c.Get(key)
	require.True(t, ok)
	for range 3 {
		*now = now.Add(10 * time.Second) // the same step is the last final one
		got, err = NewCached(eng, rc).Range(ctx, "default", q, 1800_000, 7200_000, 60_000)
		require.NoError(t, err)
		require.Equal(t, want.Series, got.Series)
		rc.c.Wait()
		again, ok := rc.c.Get(key)
		require.True(t, ok)
		require.Same(t, first, again, "a refresh within the step stored its steps again")
	}
	require.Equal(t, int64(3), rc.Hits.Load())
	// A step later the newly final step is stored.
	*now = now.Add(time.Minute)
	_, err = NewCached(eng, rc).Range(ctx, "default", q, 1800_000, 7200_000, 60_000)
	require.NoError(t, err)
	rc.c.Wait()
	later, ok := rc.c.Get(key)
	require.True(t, ok)
	require.NotSame(t, first, later)
	require.Greater(t, later.end, first.end)
}
