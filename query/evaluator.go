package query

import "context"

// Evaluator is the query engine as every caller sees it: the HTTP API,
// the ruler and the KPI forecaster. Times are Unix milliseconds; a range
// query's steps are start, start+step, … up to end. Implementations are
// safe for concurrent use. Errors are *Error (bad_data, execution,
// timeout, canceled) or storage errors.
//
// *Engine implements it; Cached wraps one with the range-result cache.
// New capabilities come as optional interfaces, found by type assertion,
// not as methods every Evaluator must add.
type Evaluator interface {
	Instant(ctx context.Context, tenant, q string, ts int64) (*Result, error)
	Range(ctx context.Context, tenant, q string, start, end, step int64) (*Result, error)
}

var (
	_ Evaluator = (*Engine)(nil)
	_ Evaluator = (*Cached)(nil)
)
