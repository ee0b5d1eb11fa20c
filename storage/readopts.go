package storage

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// ErrUnavailable reports a read that could not reach all the data it
// must cover (in a cluster: a partition with no healthy owner), or a
// read-your-writes read whose data did not arrive in time. The same read
// may succeed later; the API answers 503.
var ErrUnavailable = errors.New("storage: data unavailable")

// ReadOptions are a request's wishes for a read that spans nodes
// (docs/cluster.md). A single node's storage ignores them. The caller
// puts them into the context it hands to Reader.Querier with
// WithReadOptions; a Reader that gives a partial answer adds warnings to
// them. ReadOptions is safe for concurrent use.
type ReadOptions struct {
	// Strong asks that the read reflect every write acknowledged before it
	// began (read-your-writes, Mimir's X-Read-Consistency: strong).
	Strong bool
	// Partial accepts an answer without the data that cannot be reached;
	// the warnings then name what is missing. Without it such a read fails
	// with ErrUnavailable.
	Partial bool

	mu       sync.Mutex
	warnings []string
}

// Warn adds a warning for the answer, once.
func (o *ReadOptions) Warn(msg string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !slices.Contains(o.warnings, msg) {
		o.warnings = append(o.warnings, msg)
	}
}

// Warnings returns the warnings added so far; the slice is the caller's.
func (o *ReadOptions) Warnings() []string {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.warnings)
}

type readOptionsKey struct{}

// WithReadOptions returns ctx carrying o.
func WithReadOptions(ctx context.Context, o *ReadOptions) context.Context {
	return context.WithValue(ctx, readOptionsKey{}, o)
}

// ReadOptionsFrom returns the ReadOptions ctx carries, or nil.
func ReadOptionsFrom(ctx context.Context) *ReadOptions {
	o, _ := ctx.Value(readOptionsKey{}).(*ReadOptions)
	return o
}
