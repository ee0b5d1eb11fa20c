package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// memoryGuard keeps tsdb within a memory budget: the Go runtime's soft
// limit makes the collector work harder as the heap nears the budget, and
// while live memory is over it writes and queries are refused with 503
// (Retry-After) instead of growing until the kernel kills the process.
type memoryGuard struct {
	budget int64
	over   atomic.Bool
	used   atomic.Int64
}

// newMemoryGuard starts watching; budget 0 turns it off (nil guard).
func newMemoryGuard(ctx context.Context, budget int64, log *slog.Logger) *memoryGuard {
	if budget <= 0 {
		return nil
	}
	debug.SetMemoryLimit(budget * 9 / 10)
	g := &memoryGuard{budget: budget}
	sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			used := int64(sample[0].Value.Uint64() - sample[1].Value.Uint64())
			g.used.Store(used)
			was := g.over.Load()
			now := used > budget || (was && used > budget*9/10) // hysteresis
			if now != was {
				g.over.Store(now)
				log.Warn("memory budget", "over", now, "used_mib", used>>20, "budget_mib", budget>>20)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return g
}

// shed reports whether requests that allocate should be refused now.
func (g *memoryGuard) shed() bool { return g != nil && g.over.Load() }
