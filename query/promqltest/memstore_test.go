package promqltest

import (
	"context"
	"slices"
	"sort"
	"sync"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage"
)

// memStore is a tiny in-memory Store holding floats and native
// histograms, for developing the runner before storage.DB keeps
// histograms.
type memStore struct {
	mu     sync.Mutex
	series map[string]*memSeries
}

type memSeries struct {
	ls  labels.Labels
	pts map[int64]memPoint
}

type memPoint struct {
	v float64
	h *histogram.FloatHistogram
}

func newMemStore() *memStore { return &memStore{series: map[string]*memSeries{}} }

func (m *memStore) Write(_ context.Context, _ string, b *storage.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range b.Series {
		k := s.Labels.String()
		ms := m.series[k]
		if ms == nil {
			ms = &memSeries{ls: s.Labels, pts: map[int64]memPoint{}}
			m.series[k] = ms
		}
		for _, x := range s.Samples {
			ms.pts[x.T] = memPoint{v: x.V}
		}
		for _, x := range s.Histograms {
			ms.pts[x.T] = memPoint{h: x.H.Copy()}
		}
	}
	return nil
}

func (m *memStore) Querier(context.Context, string, int64, int64) (storage.Querier, error) {
	return m, nil
}

func (m *memStore) Select(_ context.Context, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []storage.Series
	for _, s := range m.series {
		if !matchesAll(ms, s.ls) {
			continue
		}
		var ts []int64
		for t := range s.pts {
			if hints == nil || (t >= hints.Start && t <= hints.End) {
				ts = append(ts, t)
			}
		}
		if len(ts) == 0 {
			continue
		}
		slices.Sort(ts)
		it := &memIter{i: -1}
		for _, t := range ts {
			it.ts = append(it.ts, t)
			it.pts = append(it.pts, s.pts[t])
		}
		out = append(out, &memSet{ls: s.ls, it: it})
	}
	sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].Labels(), out[j].Labels()) < 0 })
	return &memSeriesSet{s: out, i: -1}
}

func (m *memStore) LabelNames(context.Context, ...*labels.Matcher) ([]string, error) { return nil, nil }
func (m *memStore) LabelValues(context.Context, string, ...*labels.Matcher) ([]string, error) {
	return nil, nil
}
func (m *memStore) Close() error { return nil }

type memSeriesSet struct {
	s []storage.Series
	i int
}

func (s *memSeriesSet) Next() bool         { s.i++; return s.i < len(s.s) }
func (s *memSeriesSet) At() storage.Series { return s.s[s.i] }
func (s *memSeriesSet) Err() error         { return nil }

type memSet struct {
	ls labels.Labels
	it *memIter
}

func (s *memSet) Labels() labels.Labels { return s.ls }
func (s *memSet) Iterator(storage.Iterator) storage.Iterator {
	return &memIter{ts: s.it.ts, pts: s.it.pts, i: -1}
}

type memIter struct {
	ts  []int64
	pts []memPoint
	i   int
}

func (it *memIter) Next() bool { it.i++; return it.i < len(it.ts) }
func (it *memIter) SeekTo(t int64) bool {
	if it.i < 0 {
		it.i = 0
	}
	for it.i < len(it.ts) && it.ts[it.i] < t {
		it.i++
	}
	return it.i < len(it.ts)
}
func (it *memIter) At() (int64, float64) { return it.ts[it.i], it.pts[it.i].v }
func (it *memIter) Err() error           { return nil }
func (it *memIter) AtHistogram() *histogram.FloatHistogram {
	if h := it.pts[it.i].h; h != nil {
		return h.Copy()
	}
	return nil
}
