// Package limitstest measures memory for tests of the ingest limits:
// how much heap a piece of work takes at its peak, so that a test can
// check it against what the work reserved from a limits.InFlight budget.
//
//	peak := limitstest.PeakHeap(func() { h.Serve(ctx) })
package limitstest

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// PeakHeap runs f and returns the most heap it saw in use above what was
// in use before f (sampled every millisecond, so a shorter peak may be
// missed). The collector runs at GOGC=5 meanwhile, so that the figure is
// close to live memory rather than garbage awaiting collection; the caller
// must not run other work at the same time.
func PeakHeap(f func()) uint64 {
	old := debug.SetGCPercent(5)
	defer debug.SetGCPercent(old)
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	base := s[0].Value.Uint64()
	var (
		peak uint64
		wg   sync.WaitGroup
	)
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(done)
	wg.Wait()
	if peak < base {
		return 0
	}
	return peak - base
}
