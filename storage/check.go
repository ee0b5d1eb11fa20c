package storage

import (
	"errors"
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage/chunkenc"
)

// Check verifies the DB's internal consistency, as bbolt's Tx.Check does,
// and returns every problem found; tests call it when they end (see
// storagetest). It checks that each shard's in-memory index agrees with
// itself: postings sorted, without duplicates and naming live series, and
// every series listed under each of its labels and its hash, and each
// series' native histogram buffer sorted and its frozen chunks readable. Under the
// invariants build tag it also reports queriers never closed, with the
// stack that opened them. It reads while writes continue and may be slow
// on a large DB; it changes nothing.
func (db *DB) Check() error {
	var errs []error
	if err := db.queriers.Check(); err != nil {
		errs = append(errs, fmt.Errorf("queriers: %w", err))
	}
	if !db.closed.Load() {
		for _, sh := range db.shards {
			if err := sh.checkIndex(); err != nil {
				errs = append(errs, fmt.Errorf("shard %d: %w", sh.id, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (s *shard) checkIndex() error {
	s.idxMu.RLock()
	defer s.idxMu.RUnlock()
	var errs []error
	bad := func(format string, args ...any) bool {
		if len(errs) < 10 {
			errs = append(errs, fmt.Errorf(format, args...))
		}
		return false
	}
	sortedRefs := func(what string, list []uint64, ti *tenantIndex) {
		for i, ref := range list {
			if i > 0 && list[i-1] >= ref {
				bad("tenant %s: %s: ref %d after %d", ti.name, what, ref, list[i-1])
			}
			if ti.get(ref) == nil {
				bad("tenant %s: %s: ref %d names no series", ti.name, what, ref)
			}
		}
	}
	for name, ti := range s.tenants {
		if ti.name != name || s.tenantByID[ti.id] != ti {
			bad("tenant %q is listed as %q / id %d", ti.name, name, ti.id)
		}
		sortedRefs("all series", ti.all, ti)
		if len(ti.all) != ti.n {
			bad("tenant %s: %d series, %d in the list of all", ti.name, ti.n, len(ti.all))
		}
		for lname, vals := range ti.postings {
			if len(vals) == 0 {
				bad("tenant %s: label %q has no values", ti.name, lname)
			}
			for v, h := range vals {
				var one [1]uint64
				list := ti.refsOf(h, &one)
				if i, ok := h.list(); ok && len(list) < 2 {
					bad("tenant %s: %s=%q has a list %d of %d series", ti.name, lname, v, i, len(list))
				}
				if len(list) == 0 {
					bad("tenant %s: %s=%q has no series", ti.name, lname, v)
				}
				sortedRefs(fmt.Sprintf("postings %s=%q", lname, v), list, ti)
			}
		}
		hashed := len(ti.byHash)
		for h, l := range ti.collide {
			hashed += len(l)
			if ti.byHash[h] == nil {
				bad("tenant %s: hash %x has colliding series but no first", ti.name, h)
			}
		}
		if hashed != ti.n {
			bad("tenant %s: %d series, %d by hash", ti.name, ti.n, hashed)
		}
		var buf []byte
		inTable := 0
		s.refs.each(func(ref uint64, ms *memSeries) {
			if ms.tenant != ti.id {
				return
			}
			inTable++
			if ms.ref != ref || ms.tenant != ti.id || ms.state.gone() || ms.state.shard() != s.id {
				bad("tenant %s: series %d is ref %d of tenant %d in shard %d, gone %v", ti.name, ref, ms.ref, ms.tenant, ms.state.shard(), ms.state.gone())
			}
			var h uint64
			h, buf = seriesHash(ti.name, ms.lset, buf)
			if !ti.hashed(h, ms) {
				bad("tenant %s: series %d is not under its hash", ti.name, ref)
			}
			if err := ms.checkHistograms(); err != nil {
				bad("tenant %s: series %d: %v", ti.name, ref, err)
			}
			ms.lset.Range(func(l labels.Label) {
				if _, ok := slices.BinarySearch(ti.refsFor(l.Name, l.Value), ref); !ok {
					bad("tenant %s: series %d is not in the postings of %s=%q", ti.name, ref, l.Name, l.Value)
				}
			})
		})
		if inTable != ti.n {
			bad("tenant %s: %d series, %d in the table by ref", ti.name, ti.n, inTable)
		}
	}
	s.refs.each(func(ref uint64, ms *memSeries) {
		if s.tenantByID[ms.tenant] == nil {
			bad("series %d of tenant %d: no such tenant", ref, ms.tenant)
		}
	})
	return errors.Join(errs...)
}

// checkHistograms checks a series' histogram lane: its buffer sorted with
// unique timestamps inside the series' bounds, and each frozen chunk
// decoding to the count and bounds recorded for it.
func (s *memSeries) checkHistograms() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.mu.hist
	if l == nil {
		return nil
	}
	for i, h := range l.buf {
		if i > 0 && l.buf[i-1].T >= h.T {
			return fmt.Errorf("histogram buffer unsorted at %d", h.T)
		}
		if h.H == nil {
			return fmt.Errorf("histogram buffer holds no histogram at %d", h.T)
		}
	}
	if n := len(l.buf); n > 0 && (l.buf[0].T < s.minT.Load() || l.buf[n-1].T > s.maxT.Load()) {
		return fmt.Errorf("histogram buffer [%d, %d] outside the series' bounds [%d, %d]", l.buf[0].T, l.buf[n-1].T, s.minT.Load(), s.maxT.Load())
	}
	for _, f := range l.frozen {
		if f.n == 0 {
			continue
		}
		n, first, last, err := chunkenc.HistogramBounds(f.chunk)
		if err != nil || n != f.n || first != f.minT || last != f.maxT {
			return fmt.Errorf("frozen histogram chunk of %d samples [%d, %d] reads as %d [%d, %d]: %v", f.n, f.minT, f.maxT, n, first, last, err)
		}
	}
	return nil
}
