package metering

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage"
)

// Tag returns a Writer that tags the writes it passes to w with the
// ingest protocol, so that storage counts their samples under it
// (samples_ingested.<protocol>).
func Tag(protocol string, w storage.Writer) storage.Writer {
	return &tagged{protocol: protocol, w: w}
}

type tagged struct {
	protocol string
	w        storage.Writer
}

func (t *tagged) Write(ctx context.Context, tenant string, b *storage.Batch) error {
	return t.w.Write(storage.WithIngestProtocol(ctx, t.protocol), tenant, b)
}

// Reader returns a Reader over r that counts, per tenant, the samples
// read through it (samples_scanned): each sample an iterator stops at,
// added to the Meter when the querier closes.
func (m *Meter) Reader(r storage.Reader) storage.Reader {
	return &meteredReader{r: r, m: m}
}

type meteredReader struct {
	r storage.Reader
	m *Meter
}

func (mr *meteredReader) Querier(ctx context.Context, tenant string, mint, maxt int64) (storage.Querier, error) {
	q, err := mr.r.Querier(ctx, tenant, mint, maxt)
	if err != nil {
		return nil, err
	}
	return &meteredQuerier{Querier: q, tenant: tenant, m: mr.m}, nil
}

// meteredQuerier counts the samples of the iterators it handed out when
// it closes.
type meteredQuerier struct {
	storage.Querier
	tenant string
	m      *Meter

	mu    sync.Mutex
	iters []*countingIter
	last  atomic.Uint64 // samples found by LastFloat
}

func (q *meteredQuerier) Select(ctx context.Context, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	return &meteredSet{SeriesSet: q.Querier.Select(ctx, hints, ms...), q: q}
}

func (q *meteredQuerier) Close() error {
	q.mu.Lock()
	n := uint64(0)
	for _, it := range q.iters {
		n += it.n
	}
	q.iters = nil
	q.mu.Unlock()
	n += q.last.Swap(0)
	q.m.Add(q.tenant, SamplesScanned, n)
	return q.Querier.Close()
}

type meteredSet struct {
	storage.SeriesSet
	q    *meteredQuerier
	slab []meteredSeries // At's series come from here: one allocation for many
}

func (s *meteredSet) At() storage.Series {
	if len(s.slab) == 0 {
		s.slab = make([]meteredSeries, 64)
	}
	m := &s.slab[0]
	s.slab = s.slab[1:]
	*m = meteredSeries{Series: s.SeriesSet.At(), q: s.q}
	return m
}

// Len passes on the series count a set may know (the engine sizes its
// buffers by it); -1 when it does not.
func (s *meteredSet) Len() int {
	if l, ok := s.SeriesSet.(interface{ Len() int }); ok {
		return l.Len()
	}
	return -1
}

// Truncated passes on the optional storage.Truncater-style method.
func (s *meteredSet) Truncated() bool {
	t, ok := s.SeriesSet.(interface{ Truncated() bool })
	return ok && t.Truncated()
}

type meteredSeries struct {
	storage.Series
	q *meteredQuerier
}

func (s *meteredSeries) Iterator(reuse storage.Iterator) storage.Iterator {
	var inner storage.Iterator
	var ci *countingIter
	switch r := reuse.(type) {
	case *countingIter:
		ci, inner = r, r.it
	case *countingHistIter:
		ci, inner = r.countingIter, r.it
	}
	it := s.Series.Iterator(inner)
	if ci == nil {
		ci = &countingIter{}
		s.q.mu.Lock()
		s.q.iters = append(s.q.iters, ci)
		s.q.mu.Unlock()
	}
	ci.it = it
	if hit, ok := it.(storage.HistogramIterator); ok {
		return &countingHistIter{countingIter: ci, h: hit}
	}
	return ci
}

// LastFloat passes on storage.LastSampler, counting the sample it finds.
func (s *meteredSeries) LastFloat(mint, maxt int64) (int64, float64, bool, bool) {
	ls, ok := s.Series.(storage.LastSampler)
	if !ok {
		return 0, 0, false, false
	}
	t, v, found, known := ls.LastFloat(mint, maxt)
	if found && known {
		s.q.last.Add(1)
	}
	return t, v, found, known
}

// countingIter counts the samples it stops at. NB: n is read by Close,
// after the querier's users are done with its iterators.
type countingIter struct {
	it storage.Iterator
	n  uint64
}

func (c *countingIter) Next() bool {
	ok := c.it.Next()
	if ok {
		c.n++
	}
	return ok
}

func (c *countingIter) SeekTo(t int64) bool {
	ok := c.it.SeekTo(t)
	if ok {
		c.n++
	}
	return ok
}

// AppendFloats implements storage.FloatRangeIterator, counting what it
// appends.
func (c *countingIter) AppendFloats(mint, maxt int64, ts []int64, vs []float64) ([]int64, []float64, error) {
	n := len(ts)
	ts, vs, err := storage.AppendFloats(c.it, mint, maxt, ts, vs)
	c.n += uint64(len(ts) - n)
	return ts, vs, err
}

func (c *countingIter) At() (int64, float64) { return c.it.At() }
func (c *countingIter) Err() error           { return c.it.Err() }

type countingHistIter struct {
	*countingIter
	h storage.HistogramIterator
}

func (c *countingHistIter) AtHistogram() *histogram.FloatHistogram { return c.h.AtHistogram() }
