package storage

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/prometheus/model/histogram"

	"github.com/emsdb/tsdb/storage/chunkenc"
	"github.com/emsdb/tsdb/storage/internal/invariants"
)

// maxDiskHistSamples caps the samples of one sealed histogram chunk. A
// query decodes whole chunks; histograms are large, so chunks are smaller
// than float ones.
const maxDiskHistSamples = 1024

// sealHistograms writes the frozen histogram chunks fh of ms into pb,
// merged with the overlapping chunks on disk (newer samples win), and
// returns the last timestamp written.
func (s *shard) sealHistograms(pb *pebble.Batch, ms *memSeries, fh []*frozenHist, diskMaxT int64) (int64, error) {
	// Newest first: on equal timestamps the first source wins.
	srcs := make([][]HSample, 0, len(fh))
	for i := len(fh) - 1; i >= 0; i-- {
		if fh[i].n == 0 {
			continue
		}
		hs, err := decodeHistChunk(fh[i].chunk)
		if err != nil {
			return 0, err
		}
		srcs = append(srcs, hs)
	}
	all := mergeHSamples(srcs)
	if len(all) == 0 {
		return math.MinInt64, nil
	}
	cutoff := s.rawCutoffOf(ms.tenant)
	var key []byte
	for i := 0; i < len(all); {
		day := dayOf(all[i].T)
		j := i + 1
		for j < len(all) && dayOf(all[j].T) == day {
			j++
		}
		part := all[i:j]
		i = j
		if dayEnd(day) < cutoff {
			continue
		}
		if part[0].T <= diskMaxT {
			old, keys, err := s.readHistChunks(day, ms, part[0].T, part[len(part)-1].T)
			if err != nil {
				return 0, err
			}
			for _, k := range keys {
				if err := pb.Delete(k, nil); err != nil {
					return 0, err
				}
			}
			if len(old) > 0 {
				part = mergeHSamples(append([][]HSample{part}, old...))
			}
		}
		for len(part) > 0 {
			n := min(len(part), maxDiskHistSamples)
			if rest := len(part) - n; rest > 0 && rest < maxDiskHistSamples/4 {
				n = len(part) / 2
			}
			enc := encodeHSamples(part[:n])
			if invariants.Enabled {
				if got, err := decodeHistChunk(enc); err != nil || len(got) != n {
					_ = invariants.Failf("sealed histogram chunk of %d samples decodes to %d: %v", n, len(got), err)
				}
			}
			key = histChunkKey(key[:0], day, ms.tenant, ms.ref, part[n-1].T)
			if err := pb.Set(key, enc, nil); err != nil {
				return 0, err
			}
			s.stats.bytesSealed.Add(int64(len(enc)))
			s.stats.samplesSealed.Add(int64(n))
			part = part[n:]
		}
	}
	return all[len(all)-1].T, nil
}

func encodeHSamples(hs []HSample) []byte {
	ts := make([]int64, len(hs))
	fhs := make([]*histogram.FloatHistogram, len(hs))
	for i, h := range hs {
		ts[i], fhs[i] = h.T, h.H
	}
	return chunkenc.EncodeHistograms(nil, ts, fhs)
}

func decodeHistChunk(b []byte) ([]HSample, error) {
	ts, hs, err := chunkenc.DecodeHistograms(b, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	out := make([]HSample, len(ts))
	for i := range ts {
		out[i] = HSample{T: ts[i], H: hs[i]}
	}
	return out, nil
}

// mergeHSamples merges sorted unique sources into one; on equal
// timestamps the source listed first wins.
func mergeHSamples(srcs [][]HSample) []HSample {
	switch len(srcs) {
	case 0:
		return nil
	case 1:
		return srcs[0]
	}
	n := 0
	for _, s := range srcs {
		n += len(s)
	}
	out := make([]HSample, 0, n)
	pos := make([]int, len(srcs))
	for {
		best := -1
		for i, s := range srcs {
			if pos[i] < len(s) && (best < 0 || s[pos[i]].T < srcs[best][pos[best]].T) {
				best = i
			}
		}
		if best < 0 {
			return out
		}
		t := srcs[best][pos[best]].T
		out = append(out, srcs[best][pos[best]])
		for i, s := range srcs {
			if pos[i] < len(s) && s[pos[i]].T == t {
				pos[i]++
			}
		}
	}
}

// readHistChunks returns the decoded histogram chunks (and their keys) of
// ms in day that overlap [mint, maxt], in time order.
func (s *shard) readHistChunks(day int32, ms *memSeries, mint, maxt int64) (chunks [][]HSample, keys [][]byte, err error) {
	prefix := histSeriesPrefix(day, ms.tenant, ms.ref)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, nil, err
	}
	defer it.Close()
	for valid := it.SeekGE(histChunkKey(nil, day, ms.tenant, ms.ref, mint)); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, nil, err
		}
		_, cmin, _, err := chunkenc.HistogramBounds(v)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: histogram chunk %x: %v", ErrCorrupt, it.Key(), err)
		}
		if cmin > maxt {
			break
		}
		hs, err := decodeHistChunk(v)
		if err != nil {
			return nil, nil, fmt.Errorf("histogram chunk %x: %w", it.Key(), err)
		}
		chunks = append(chunks, hs)
		keys = append(keys, slices.Clone(it.Key()))
	}
	return chunks, keys, it.Error()
}

// diskHistograms returns the sealed histograms of ms in [mint, maxt],
// sorted, from the days [minDay, maxDay] it has data in.
func (s *shard) diskHistograms(ms *memSeries, mint, maxt int64, minDay, maxDay int32) ([]HSample, error) {
	first, last := max(dayOf(mint), minDay), min(dayOf(maxt), maxDay)
	var out []HSample
	for day := first; day <= last && day >= first; day++ {
		chunks, _, err := s.readHistChunks(day, ms, mint, maxt)
		if err != nil {
			return nil, err
		}
		for _, c := range chunks {
			for _, h := range c {
				if h.T >= mint && h.T <= maxt {
					out = append(out, h)
				}
			}
		}
		if day == math.MaxInt32 {
			break
		}
	}
	return out, nil
}

// rewriteHistWithout rewrites the histogram chunks of ms in day without
// [mint, maxt].
func (s *shard) rewriteHistWithout(pb *pebble.Batch, day int32, ms *memSeries, mint, maxt int64) error {
	chunks, keys, err := s.readHistChunks(day, ms, mint, maxt)
	if err != nil {
		return err
	}
	for i, c := range chunks {
		if err := pb.Delete(keys[i], nil); err != nil {
			return err
		}
		kept := slices.DeleteFunc(c, func(h HSample) bool { return h.T >= mint && h.T <= maxt })
		if len(kept) > 0 {
			_ = pb.Set(histChunkKey(nil, day, ms.tenant, ms.ref, kept[len(kept)-1].T), encodeHSamples(kept), nil)
		}
	}
	return nil
}

// histOutsideOnDisk reports whether a sealed histogram of ms in
// [minDay, maxDay] lies outside [mint, maxt].
func (s *shard) histOutsideOnDisk(ms *memSeries, mint, maxt int64, minDay, maxDay int32) (bool, error) {
	for day := minDay; day <= maxDay && day >= minDay; day++ {
		chunks, _, err := s.readHistChunks(day, ms, math.MinInt64, math.MaxInt64)
		if err != nil {
			return false, err
		}
		for _, c := range chunks {
			if len(c) > 0 && (c[0].T < mint || c[len(c)-1].T > maxt) {
				return true, nil
			}
		}
		if day == math.MaxInt32 {
			break
		}
	}
	return false, nil
}

// loadHistograms finds the series with histogram chunks on disk and gives
// them a lane that knows it, at start-up. It seeks from one series-day to
// the next, so it reads one key per series and day, not every chunk.
func (s *shard) loadHistograms() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixHistChunk}, UpperBound: []byte{prefixHistChunk + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for valid := it.First(); valid; {
		k := it.Key()
		if len(k) != chunkKeyLen {
			return fmt.Errorf("%w: histogram chunk key %x", ErrCorrupt, k)
		}
		day, tid, ref := getDay(k[1:]), binary.BigEndian.Uint32(k[5:]), binary.BigEndian.Uint64(k[9:])
		if ti := s.tenantByID[tid]; ti != nil {
			if ms := ti.get(ref); ms != nil {
				if ms.mu.hist == nil {
					ms.mu.hist = newHistLane()
				}
				ms.mu.hist.diskMaxT = max(ms.mu.hist.diskMaxT, dayEnd(day))
			}
		}
		valid = it.SeekGE(prefixEnd(k[:chunkKeyLen-8]))
	}
	return it.Error()
}
