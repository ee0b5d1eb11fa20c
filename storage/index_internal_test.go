package storage

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestIndexHashCollisions puts three label sets under one hash (as a
// 64-bit collision would) and checks that each is found, and stays found
// as the others are removed in every order.
func TestIndexHashCollisions(t *testing.T) {
	const h = 42
	lsets := []labels.Labels{
		labels.FromStrings("__name__", "a"),
		labels.FromStrings("__name__", "b"),
		labels.FromStrings("__name__", "c"),
	}
	for _, order := range [][]int{{0, 1, 2}, {1, 0, 2}, {2, 1, 0}, {1, 2, 0}} {
		ti := newTenantIndex(1, "t", nil)
		series := make([]*memSeries, len(lsets))
		for i, ls := range lsets {
			series[i] = newMemSeries(uint64(i+1), 1, ls)
			ti.add(h, series[i])
		}
		other := newMemSeries(9, 1, labels.FromStrings("__name__", "d"))
		ti.add(7, other)
		left := map[int]bool{0: true, 1: true, 2: true}
		for _, i := range order {
			for j := range lsets {
				if left[j] {
					require.Same(t, series[j], ti.lookup(h, lsets[j]), "order %v, %d", order, j)
					require.True(t, ti.hashed(h, series[j]))
				} else {
					require.Nil(t, ti.lookup(h, lsets[j]), "order %v, %d removed", order, j)
					require.False(t, ti.hashed(h, series[j]))
				}
			}
			ti.remove(func(*memSeries) uint64 { return h }, []*memSeries{series[i]})
			delete(left, i)
		}
		require.Empty(t, ti.byHash[h])
		require.Empty(t, ti.collide)
		require.Same(t, other, ti.lookup(7, other.lset))
		require.Nil(t, ti.lookup(h, other.lset), "another hash's series is not found under h")
	}
}

// TestPrefixRegexMatchesScan adds and removes series at random (values
// removed and added again, merges at every size) and checks that regex
// matchers with a literal prefix, answered from the ordered values,
// select exactly the values a scan of the postings selects.
func TestPrefixRegexMatchesScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ti := newTenantIndex(1, "t", nil)
	live := map[uint64]*memSeries{}
	ref := uint64(0)
	regexes := []string{"1.*", "12.*", "123.*3", "0.*", "99.*|98.*", "5", "7.+", "(?i)a.*", "ab.*", "1234567.*"}
	check := func() {
		t.Helper()
		for _, re := range regexes {
			m := labels.MustNewMatcher(labels.MatchRegexp, "id", re)
			var want []string
			for v := range ti.postings["id"] {
				if m.Matches(v) {
					want = append(want, v)
				}
			}
			slices.Sort(want)
			got := ti.matchingValues(m, nil, 0)
			slices.Sort(got)
			require.Equal(t, len(want), len(got), "%s after %d series", re, ref)
			if len(want) > 0 {
				require.Equal(t, want, got, "%s after %d series", re, ref)
			}
		}
	}
	for round := range 60 {
		for range r.IntN(3000) {
			ref++
			v := strconv.Itoa(r.IntN(1 << uint(4+round%16)))
			if r.IntN(10) == 0 {
				v = "ab" + v
			}
			s := newMemSeries(ref, 1, labels.FromStrings("__name__", "m", "id", v, "n", strconv.Itoa(int(ref))))
			ti.add(ref, s)
			live[ref] = s
		}
		check()
		var gone []*memSeries
		for k, s := range live {
			if r.IntN(3) == 0 {
				gone = append(gone, s)
				delete(live, k)
			}
		}
		ti.remove(func(s *memSeries) uint64 { return s.ref }, gone)
		check()
		if round%7 == 0 {
			ti.settle()
			check()
		}
	}
	ov := ti.ordered["id"]
	require.True(t, slices.IsSorted(ov.sorted))
	require.Len(t, ti.ordered, 3, "one per label name")

	// A value removed from the sorted ones and added again before they
	// are merged is in both, and answered once.
	ti = newTenantIndex(1, "t", nil)
	add := func(ref uint64, id string) *memSeries {
		s := newMemSeries(ref, 1, labels.FromStrings("__name__", "m", "id", id))
		ti.add(ref, s)
		return s
	}
	var s1005 *memSeries
	for i := range 2000 {
		if s := add(uint64(i+1), strconv.Itoa(1000+i)); i == 5 {
			s1005 = s
		}
	}
	ti.remove(func(s *memSeries) uint64 { return s.ref }, []*memSeries{s1005})
	ref = 3000
	check()
	add(5000, "1005")
	require.Equal(t, 1, ti.ordered["id"].stale)
	require.Contains(t, ti.ordered["id"].fresh, "1005")
	check()
}

// BenchmarkPrefixRegex is a regex with a literal prefix over 200,000
// values of one label: from the ordered values, and by a scan of them all.
func BenchmarkPrefixRegex(b *testing.B) {
	ti := newTenantIndex(1, "t", nil)
	for i := range 200_000 {
		ti.add(uint64(i+1), newMemSeries(uint64(i+1), 1, labels.FromStrings("__name__", "m", "id", fmt.Sprintf("%06d", i*7919%1_000_000))))
	}
	ti.settle()
	m := labels.MustNewMatcher(labels.MatchRegexp, "id", "0012.*5")
	b.Run("ordered", func(b *testing.B) {
		for b.Loop() {
			ti.matchingValues(m, nil, 0)
		}
	})
	b.Run("scan", func(b *testing.B) {
		ov := ti.ordered["id"]
		delete(ti.ordered, "id")
		defer func() { ti.ordered["id"] = ov }()
		for b.Loop() {
			ti.matchingValues(m, nil, 0)
		}
	})
}

// BenchmarkIndexAddNewValues publishes series each with a new value of a
// high-cardinality label (the cost of series creation in the index).
func BenchmarkIndexAddNewValues(b *testing.B) {
	const n = 100_000
	series := make([]*memSeries, n)
	for i := range series {
		series[i] = newMemSeries(uint64(i+1), 1, labels.FromStrings("__name__", "m", "id", fmt.Sprintf("%06d", i*7919%1_000_000), "job", "j"))
	}
	for b.Loop() {
		ti := newTenantIndex(1, "t", nil)
		for _, s := range series {
			ti.add(s.ref, s)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/series")
}

// TestValueRefsMatchSeries adds and removes series at random, their
// values going from one series to many and back, and holds every
// value's refs, and the refs selectors find, to those a scan of the live
// series gives; the lists let go of are reused.
func TestValueRefsMatchSeries(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ti := newTenantIndex(1, "t", nil)
	live := map[uint64]*memSeries{}
	ref := uint64(0)
	scan := func(keep func(*memSeries) bool) []uint64 {
		var out []uint64
		for ref, s := range live {
			if keep(s) {
				out = append(out, ref)
			}
		}
		slices.Sort(out)
		return out
	}
	check := func() {
		t.Helper()
		byValue := map[string]map[string][]uint64{}
		for ref, s := range live {
			s.lset.Range(func(l labels.Label) {
				if byValue[l.Name] == nil {
					byValue[l.Name] = map[string][]uint64{}
				}
				byValue[l.Name][l.Value] = append(byValue[l.Name][l.Value], ref)
			})
		}
		require.Len(t, ti.postings, len(byValue))
		listed := 0
		for name, vals := range byValue {
			require.Len(t, ti.postings[name], len(vals), name)
			for v, want := range vals {
				slices.Sort(want)
				require.Equal(t, want, ti.refsFor(name, v), "%s=%q", name, v)
				_, isList := ti.postings[name][v].list()
				require.Equal(t, len(want) > 1, isList, "%s=%q: %d series", name, v, len(want))
				if isList {
					listed++
				}
			}
		}
		require.Equal(t, listed, len(ti.lists)-len(ti.free), "lists in use")
		for _, sel := range [][]*labels.Matcher{
			{labels.MustNewMatcher(labels.MatchEqual, "g", "3")},
			{labels.MustNewMatcher(labels.MatchRegexp, "g", "1|2|7")},
			{labels.MustNewMatcher(labels.MatchRegexp, "id", "1.*")},
			{labels.MustNewMatcher(labels.MatchNotEqual, "g", "2"), labels.MustNewMatcher(labels.MatchRegexp, "id", ".*5")},
			{labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"), labels.MustNewMatcher(labels.MatchNotRegexp, "id", "2.*|3")},
		} {
			want := scan(func(s *memSeries) bool {
				for _, m := range sel {
					if !m.Matches(s.lset.Get(m.Name)) {
						return false
					}
				}
				return true
			})
			got := ti.postingsFor(sel, nil, 0)
			require.Equal(t, len(want), len(got), "%v", sel)
			if len(want) > 0 {
				require.Equal(t, want, got, "%v", sel)
			}
		}
	}
	for round := range 40 {
		for range r.IntN(400) {
			ref++
			// ids mostly of one series, some of a few; groups of many
			id := strconv.Itoa(r.IntN(200 + 100*(round%5)))
			s := newMemSeries(ref, 1, labels.FromStrings("__name__", "m", "g", strconv.Itoa(r.IntN(10)), "id", id))
			ti.add(ref, s)
			live[ref] = s
		}
		check()
		var gone []*memSeries
		for k, s := range live {
			if r.IntN(2+round%3) == 0 {
				gone = append(gone, s)
				delete(live, k)
			}
		}
		ti.remove(func(s *memSeries) uint64 { return s.ref }, gone)
		check()
	}
	require.NotEmpty(t, ti.free, "some lists were let go of")
}
