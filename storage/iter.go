package storage

import (
	"sync"

	"github.com/emsdb/tsdb/storage/chunkenc"
)

// sampleIter iterates a sorted []Sample.
type sampleIter struct {
	s []Sample
	i int
}

func newSampleIter(s []Sample) *sampleIter { return &sampleIter{s: s, i: -1} }

func (it *sampleIter) Next() bool {
	if it.i < len(it.s) {
		it.i++
	}
	return it.i < len(it.s)
}

func (it *sampleIter) SeekTo(t int64) bool {
	if it.i < 0 {
		it.i = 0
	}
	for it.i < len(it.s) && it.s[it.i].T < t {
		it.i++
	}
	return it.i < len(it.s)
}

func (it *sampleIter) At() (int64, float64) { return it.s[it.i].T, it.s[it.i].V }
func (it *sampleIter) Err() error           { return nil }

// sliceIter iterates parallel timestamp and value slices.
type sliceIter struct {
	ts []int64
	vs []float64
	i  int
}

func newSliceIter(ts []int64, vs []float64) *sliceIter { return &sliceIter{ts: ts, vs: vs, i: -1} }

func (it *sliceIter) Next() bool {
	if it.i < len(it.ts) {
		it.i++
	}
	return it.i < len(it.ts)
}

func (it *sliceIter) SeekTo(t int64) bool {
	if it.i < 0 {
		it.i = 0
	}
	for it.i < len(it.ts) && it.ts[it.i] < t {
		it.i++
	}
	return it.i < len(it.ts)
}

func (it *sliceIter) At() (int64, float64) { return it.ts[it.i], it.vs[it.i] }
func (it *sliceIter) Err() error           { return nil }

// mergeIter merges sorted iterators into one sorted stream with one sample
// per timestamp. On equal timestamps the iterator listed first wins: callers
// list sources from the most recent write to the oldest.
type mergeIter struct {
	its     []chunkenc.Iterator
	ok      []bool
	ts      []int64 // current timestamp of each ok iterator
	started bool
	t       int64
	v       float64
	err     error
}

func newMergeIter(its []chunkenc.Iterator) *mergeIter {
	return &mergeIter{its: its, ok: make([]bool, len(its)), ts: make([]int64, len(its))}
}

func (m *mergeIter) load(i int, ok bool) {
	m.ok[i] = ok
	if ok {
		m.ts[i], _ = m.its[i].At()
	} else if err := m.its[i].Err(); err != nil && m.err == nil {
		m.err = err
	}
}

// pick makes the smallest current timestamp the merged position.
func (m *mergeIter) pick() bool {
	best := -1
	for i, ok := range m.ok {
		if ok && (best < 0 || m.ts[i] < m.ts[best]) {
			best = i
		}
	}
	if best < 0 || m.err != nil {
		return false
	}
	m.t, m.v = m.its[best].At()
	return true
}

func (m *mergeIter) Next() bool {
	if m.err != nil {
		return false
	}
	if !m.started {
		m.started = true
		for i, it := range m.its {
			m.load(i, it.Next())
		}
		return m.pick()
	}
	for i, it := range m.its {
		if m.ok[i] && m.ts[i] == m.t {
			m.load(i, it.Next())
		}
	}
	return m.pick()
}

func (m *mergeIter) SeekTo(t int64) bool {
	if m.err != nil {
		return false
	}
	if m.started && m.t >= t {
		return m.pick()
	}
	for i, it := range m.its {
		if !m.started || (m.ok[i] && m.ts[i] < t) {
			m.load(i, it.SeekTo(t))
		}
	}
	m.started = true
	return m.pick()
}

func (m *mergeIter) At() (int64, float64) { return m.t, m.v }
func (m *mergeIter) Err() error           { return m.err }

// chunkListIter iterates sealed chunks that do not overlap, in time order,
// decoding each only when reached, and of each only the samples in
// [mint, maxt], into buffers reused from chunk to chunk.
type chunkListIter struct {
	key        []byte // diskChunks' seek key, reused
	chunks     [][]byte
	maxTs      []int64
	mint, maxt int64
	i          int
	opened     bool // ts and vs hold chunk i's window
	ts         []int64
	vs         []float64
	j          int // the current sample in ts and vs
	bufs       *windowBufs
	err        error
}

// windowBufs are a chunkListIter's decode buffers, back in the pool once
// it is exhausted: a query reads thousands of series one after another.
type windowBufs struct {
	ts []int64
	vs []float64
}

var windowBufPool = sync.Pool{New: func() any { return &windowBufs{} }}

// openFirst decodes the window of the first chunk, b, whose bytes are
// not kept (chunks[0] is nil).
func (it *chunkListIter) openFirst(b []byte) error {
	it.bufs = windowBufPool.Get().(*windowBufs)
	var err error
	it.ts, it.vs, err = chunkenc.DecodeDenseWindow(b, it.mint, it.maxt, it.bufs.ts, it.bufs.vs)
	if err != nil {
		return err
	}
	it.i, it.opened, it.j = 0, true, -1
	return nil
}

func (it *chunkListIter) open(i int) bool {
	it.i, it.opened, it.j = i, false, -1
	if i >= len(it.chunks) {
		if it.bufs != nil {
			it.bufs.ts, it.bufs.vs = it.ts[:0], it.vs[:0]
			windowBufPool.Put(it.bufs)
			it.bufs, it.ts, it.vs = nil, nil, nil
		}
		return false
	}
	if it.bufs == nil {
		it.bufs = windowBufPool.Get().(*windowBufs)
		it.ts, it.vs = it.bufs.ts, it.bufs.vs
	}
	var err error
	it.ts, it.vs, err = chunkenc.DecodeDenseWindow(it.chunks[i], it.mint, it.maxt, it.ts[:0], it.vs[:0])
	if err != nil {
		it.err = err
		return false
	}
	it.opened = true
	return true
}

func (it *chunkListIter) Next() bool {
	if it.err != nil {
		return false
	}
	if !it.opened && !it.open(it.i) {
		return false
	}
	for it.j+1 >= len(it.ts) {
		if !it.open(it.i + 1) {
			return false
		}
	}
	it.j++
	return true
}

func (it *chunkListIter) SeekTo(t int64) bool {
	if it.err != nil {
		return false
	}
	i := it.i
	for i < len(it.chunks) && it.maxTs[i] < t {
		i++
	}
	if !it.opened || i != it.i {
		if !it.open(i) {
			return false
		}
	}
	for {
		j := max(it.j, 0)
		for j < len(it.ts) && it.ts[j] < t {
			j++
		}
		if j < len(it.ts) {
			it.j = j
			return true
		}
		if !it.open(it.i + 1) {
			return false
		}
	}
}

func (it *chunkListIter) At() (int64, float64) { return it.ts[it.j], it.vs[it.j] }

// appendFloats appends the samples in [mint, maxt] (within the list's
// own bounds) of a fresh list: the first chunk's window from its
// buffers, the others decoded straight into ts and vs.
func (it *chunkListIter) appendFloats(mint, maxt int64, ts []int64, vs []float64) ([]int64, []float64, error) {
	if it.err != nil {
		return ts, vs, it.err
	}
	defer it.open(len(it.chunks)) // exhausted: the buffers go back
	for i := range it.chunks {
		if it.maxTs[i] < mint {
			continue
		}
		if i == 0 && it.opened && it.i == 0 {
			for j, t := range it.ts {
				if t >= mint && t <= maxt {
					ts, vs = append(ts, t), append(vs, it.vs[j])
				}
			}
			continue
		}
		if it.chunks[i] == nil {
			continue // the first chunk, decoded by openFirst and gone
		}
		if _, cmin, _, err := chunkenc.DenseBounds(it.chunks[i]); err == nil && cmin > maxt {
			break
		}
		var err error
		n := len(ts)
		if ts, vs, err = chunkenc.DecodeDenseWindow(it.chunks[i], mint, maxt, ts, vs); err != nil {
			it.err = err
			return ts[:n], vs[:n], err
		}
	}
	return ts, vs, nil
}
func (it *chunkListIter) Err() error { return it.err }

// clampIter restricts an iterator to [mint, maxt].
type clampIter struct {
	it         chunkenc.Iterator
	mint, maxt int64
	started    bool
	done       bool
	// scratch the next series' iterator reuses (series.Iterator):
	// the head snapshot's bytes, the list of iterators, the head's.
	head []byte
	its  []chunkenc.Iterator
	xor  chunkenc.Iterator
	cl   *chunkListIter // the sealed chunks' list
}

func (c *clampIter) Next() bool {
	if c.done {
		return false
	}
	var ok bool
	if !c.started {
		c.started = true
		ok = c.it.SeekTo(c.mint)
	} else {
		ok = c.it.Next()
	}
	return c.check(ok)
}

func (c *clampIter) SeekTo(t int64) bool {
	if c.done {
		return false
	}
	c.started = true
	return c.check(c.it.SeekTo(max(t, c.mint)))
}

func (c *clampIter) check(ok bool) bool {
	if !ok {
		c.done = true
		return false
	}
	if t, _ := c.it.At(); t > c.maxt {
		c.done = true
		return false
	}
	return true
}

// AppendFloats implements FloatRangeIterator, within the clamp's bounds.
func (c *clampIter) AppendFloats(mint, maxt int64, ts []int64, vs []float64) ([]int64, []float64, error) {
	mint, maxt = max(mint, c.mint), min(maxt, c.maxt)
	c.started, c.done = true, true
	if mint > maxt {
		return ts, vs, nil
	}
	if cl, ok := c.it.(*chunkListIter); ok {
		return cl.appendFloats(mint, maxt, ts, vs)
	}
	if ra, ok := c.it.(chunkenc.RangeAppender); ok {
		return ra.AppendRange(mint, maxt, ts, vs)
	}
	for ok := c.it.SeekTo(mint); ok; ok = c.it.Next() {
		t, v := c.it.At()
		if t > maxt {
			break
		}
		ts, vs = append(ts, t), append(vs, v)
	}
	return ts, vs, c.it.Err()
}

func (c *clampIter) At() (int64, float64) { return c.it.At() }
func (c *clampIter) Err() error           { return c.it.Err() }
