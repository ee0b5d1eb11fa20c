package api

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
)

// Admin is what the admin endpoints need from storage.
type Admin interface {
	DeleteSeries(ctx context.Context, tenant string, mint, maxt int64, ms ...*labels.Matcher) (int, error)
	Snapshot(dir string) error
}

// Options configures an API. A zero field means its default.
type Options struct {
	// EnableAdmin turns on /api/v1/admin/*, off by default as in
	// Prometheus (--web.enable-admin-api).
	EnableAdmin bool
	// SnapshotDir is where snapshots are created.
	SnapshotDir string
	Logger      *slog.Logger
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
	// QueryTimeout caps one query; a request's timeout parameter may only
	// shorten it. Default 2m.
	QueryTimeout time.Duration
	// MaxConcurrentQueries bounds queries running at once; others wait
	// for a slot until their timeout. 0 means no bound.
	MaxConcurrentQueries int
	// TenantQueryLimit, when set, bounds each tenant's concurrent queries
	// (0: no bound); a query over it is refused with 429.
	TenantQueryLimit func(tenant string) int
	// Version is tsdb's version, reported by buildinfo.
	Version string
	// Cache keeps range-query results between dashboard refreshes; nil
	// turns it off. nocache=1 bypasses it per request.
	Cache *query.ResultCache
}

// API holds the handlers.
type API struct {
	r      storage.Reader
	admin  Admin
	engine Engine
	opts   Options
	slots  chan struct{}

	runMu   sync.Mutex
	running map[string]int // queries running per tenant
}

// New returns an API reading from r and querying with engine; admin may
// be nil when the admin endpoints are off.
func New(r storage.Reader, engine Engine, admin Admin, opts *Options) *API {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 2 * time.Minute
	}
	a := &API{r: r, engine: engine, admin: admin, opts: o, running: map[string]int{}}
	if o.MaxConcurrentQueries > 0 {
		a.slots = make(chan struct{}, o.MaxConcurrentQueries)
	}
	return a
}
