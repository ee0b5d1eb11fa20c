package storage

import (
	"github.com/prometheus/prometheus/model/histogram"
)

// histIter merges a series' floats and histograms by timestamp. Where
// both lanes hold a sample at one timestamp, the histogram wins: which of
// the two was written last is not known once they are sealed, and a
// deterministic rule keeps a query's answer the same before and after
// sealing (Prometheus itself refuses the second write).
type histIter struct {
	f       Iterator
	fok     bool
	ft      int64
	hs      []HSample // sorted, unique T, inside the querier's range
	hi      int
	started bool
	cur     int8 // 0 none, 1 float, 2 histogram
}

var _ HistogramIterator = (*histIter)(nil)

func (it *histIter) advF() {
	if it.fok = it.f.Next(); it.fok {
		it.ft, _ = it.f.At()
	}
}

func (it *histIter) pick() bool {
	hok := it.hi < len(it.hs)
	switch {
	case hok && (!it.fok || it.hs[it.hi].T <= it.ft):
		it.cur = 2
	case it.fok:
		it.cur = 1
	default:
		it.cur = 0
		return false
	}
	return true
}

func (it *histIter) Next() bool {
	if !it.started {
		it.started = true
		it.advF()
		return it.pick()
	}
	switch it.cur {
	case 1:
		it.advF()
	case 2:
		if it.fok && it.ft == it.hs[it.hi].T {
			it.advF()
		}
		it.hi++
	default:
		return false
	}
	return it.pick()
}

func (it *histIter) SeekTo(t int64) bool {
	if it.started && it.cur == 0 {
		return false
	}
	if it.started {
		if ct, _ := it.At(); ct >= t {
			return true
		}
	}
	if !it.started || (it.fok && it.ft < t) {
		if it.fok = it.f.SeekTo(t); it.fok {
			it.ft, _ = it.f.At()
		}
	}
	it.started = true
	for it.hi < len(it.hs) && it.hs[it.hi].T < t {
		it.hi++
	}
	return it.pick()
}

func (it *histIter) At() (int64, float64) {
	switch it.cur {
	case 1:
		return it.f.At()
	case 2:
		return it.hs[it.hi].T, 0
	}
	return 0, 0
}

// AtHistogram implements HistogramIterator: a copy, the caller's.
func (it *histIter) AtHistogram() *histogram.FloatHistogram {
	if it.cur != 2 {
		return nil
	}
	return it.hs[it.hi].H.Copy()
}

func (it *histIter) Err() error { return it.f.Err() }

// histograms collects the histogram samples of a series in [mint, maxt]
// from a snapshot of its lane and from disk, the most recent write
// winning on equal timestamps.
func (sh *shard) histograms(ms *memSeries, hs *histSnapshot, mint, maxt int64, minDay, maxDay int32) ([]HSample, error) {
	srcs := [][]HSample{hs.buf}
	for i := len(hs.frozen) - 1; i >= 0; i-- {
		f := hs.frozen[i]
		if f.n == 0 {
			continue
		}
		dec, err := decodeHistChunk(f.chunk)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, clampHSamples(dec, mint, maxt))
	}
	if hs.diskMaxT >= mint && minDay <= maxDay {
		disk, err := sh.diskHistograms(ms, mint, maxt, minDay, maxDay)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, disk)
	}
	return mergeHSamples(srcs), nil
}

func clampHSamples(hs []HSample, mint, maxt int64) []HSample {
	lo := 0
	for lo < len(hs) && hs[lo].T < mint {
		lo++
	}
	hi := len(hs)
	for hi > lo && hs[hi-1].T > maxt {
		hi--
	}
	return hs[lo:hi]
}
