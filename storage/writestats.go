package storage

import "context"

// WriteStats is what a Write stored: float samples, histogram samples and
// exemplars accepted (an exemplar identical to the newest of its series
// counts, as in Prometheus). Samples dropped by retention, exemplars
// dropped as invalid or out of order, and series a wrapper dropped do
// not count. Remote write 2.0 answers with these figures.
type WriteStats struct {
	Samples    int
	Histograms int
	Exemplars  int
	// DroppedOld counts the samples (floats and histograms) dropped
	// because they are older than their tenant's raw retention: the write
	// succeeds without them, and the answer says how many.
	DroppedOld int
}

type writeStatsKey struct{}

// WithWriteStats returns a context that has Writes made with it add what
// they stored to st, through any wrappers (relabelling, limits). st is
// not safe for concurrent Writes.
func WithWriteStats(ctx context.Context, st *WriteStats) context.Context {
	return context.WithValue(ctx, writeStatsKey{}, st)
}

// writeStatsOf returns the WriteStats of ctx, or nil.
func writeStatsOf(ctx context.Context) *WriteStats {
	st, _ := ctx.Value(writeStatsKey{}).(*WriteStats)
	return st
}
