package storage

import (
	"maps"
	"math"
	"slices"
)

// HeadStats sums up a tenant's series as Prometheus' /api/v1/status/tsdb
// reports them in headStats.
type HeadStats struct {
	Series int
	// Chunks counts the chunks held in memory: head chunks and frozen
	// chunks waiting to be sealed, of floats and of native histograms.
	Chunks int
	// MinT and MaxT bound the tenant's samples in milliseconds (exact for
	// samples written since the DB opened, whole days for older ones);
	// MinT > MaxT when the tenant has none.
	MinT, MaxT int64
}

// HeadStats returns the figures of tenant. It walks the tenant's series.
func (db *DB) HeadStats(tenant string) HeadStats {
	st := HeadStats{MinT: math.MaxInt64, MaxT: math.MinInt64}
	for _, sh := range db.shards {
		sh.idxMu.RLock()
		var list []*memSeries
		if ti := sh.tenants[tenant]; ti != nil {
			list = make([]*memSeries, 0, ti.n)
			ti.each(func(ms *memSeries) { list = append(list, ms) })
		}
		sh.idxMu.RUnlock()
		for _, ms := range list {
			if ms.state.gone() {
				continue
			}
			st.Series++
			st.MinT = min(st.MinT, ms.minT.Load())
			st.MaxT = max(st.MaxT, ms.maxT.Load())
			ms.mu.Lock()
			if ms.mu.head.NumSamples() > 0 || len(ms.oooLocked()) > 0 {
				st.Chunks++
			}
			st.Chunks += len(ms.frozenLocked())
			if l := ms.mu.hist; l != nil { // native histograms: their own chunks
				if len(l.buf) > 0 {
					st.Chunks++
				}
				st.Chunks += len(l.frozen)
			}
			ms.mu.Unlock()
		}
	}
	return st
}

// Tenants returns the sorted names of the tenants that hold series.
func (db *DB) Tenants() []string {
	seen := map[string]struct{}{}
	for _, sh := range db.shards {
		sh.idxMu.RLock()
		for name, ti := range sh.tenants {
			if ti.n > 0 {
				seen[name] = struct{}{}
			}
		}
		sh.idxMu.RUnlock()
	}
	return slices.Sorted(maps.Keys(seen))
}
