package metering

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/emsdb/tsdb/storage"
)

// Counter names, as storage keeps them. A name with a suffix after a dot
// (samples_ingested.remote_write, bytes_stored.raw) is one part of a
// family.
const (
	SamplesIngested   = storage.UsageSamplesIngested // "." protocol; counted by storage
	Queries           = "queries"                    // query and query_range requests answered
	SamplesScanned    = "samples_scanned"            // samples the query engine read (API, rules, KPIs)
	RuleEvaluations   = "rule_evaluations"           // rules evaluated
	AlertsSent        = "alerts_sent"                // alerts handed to the Alertmanager notifier
	NotificationsSent = "notifications_sent"         // incident events an ITSM receiver took
	ActiveSeries      = "active_series"              // the day's largest sample (a maximum)
	SeriesSeconds     = "series_seconds"             // active series integrated over time
	BytesStored       = "bytes_stored"               // "." tier; the day's largest sample (a maximum)
)

// TierRaw is the storage tier of raw samples; downsampling tiers are
// named by their resolution (storage.TierName).
const TierRaw = "raw"

// Store is where usage is kept: *storage.DB.
type Store interface {
	RecordUsage(ctx context.Context, tenant string, t time.Time, ds []storage.UsageDelta) error
	Usage(from, to time.Time, tenant string) ([]storage.UsageRow, error)
}

// Limits are the limits of a tenant that the report compares usage with;
// zero means none.
type Limits struct {
	MaxSeries  int
	IngestRate float64 // samples per second
}

// Options configures a Meter. Store is required; a zero field otherwise
// means its default, and a nil function turns its figure off.
type Options struct {
	Store Store
	// ActiveSeries returns each tenant's active series now, sampled every
	// SampleInterval into active_series and series_seconds.
	ActiveSeries func() map[string]int
	// StoredBytes returns each tenant's bytes on disk in the raw tier,
	// sampled every BytesInterval.
	StoredBytes func() (map[string]map[string]int64, error)
	// Limits and IngestRate (samples/s now) feed the report's limits.
	Limits     func(tenant string) Limits
	IngestRate func(tenant string) float64
	// FlushInterval is how often counts are recorded into Store: what a
	// crash may lose. Default 10s.
	FlushInterval time.Duration
	// SampleInterval is how often active series are sampled. Default 1m.
	SampleInterval time.Duration
	// BytesInterval is how often bytes stored are estimated. Default 15m.
	BytesInterval time.Duration
	Logger        *slog.Logger
	Now           func() time.Time
}

// Meter counts usage per tenant and day and records it into a Store. It
// is safe for concurrent use.
type Meter struct {
	opts Options

	mu struct {
		sync.Mutex
		pending map[pendingKey][]storage.UsageDelta
		// lastSample is when active series were last sampled.
		lastSample time.Time
	}
}

type pendingKey struct {
	tenant string
	day    time.Time // midnight UTC
}

// New returns a Meter; call Run to record what it counts.
func New(opts Options) *Meter {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 10 * time.Second
	}
	if opts.SampleInterval <= 0 {
		opts.SampleInterval = time.Minute
	}
	if opts.BytesInterval <= 0 {
		opts.BytesInterval = 15 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Meter{opts: opts}
	m.mu.pending = map[pendingKey][]storage.UsageDelta{}
	return m
}

func dayOf(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

// Add adds n to tenant's counter name (a sum) of today.
func (m *Meter) Add(tenant, name string, n uint64) {
	if m == nil || n == 0 || tenant == "" {
		return
	}
	m.change(tenant, storage.UsageDelta{Name: name, Kind: storage.UsageSum, Value: n})
}

// raise raises tenant's counter name (a maximum) of today to v.
func (m *Meter) raise(tenant, name string, v uint64) {
	m.change(tenant, storage.UsageDelta{Name: name, Kind: storage.UsageMax, Value: v})
}

func (m *Meter) change(tenant string, d storage.UsageDelta) {
	k := pendingKey{tenant: tenant, day: dayOf(m.opts.Now())}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.pending[k] = merge(m.mu.pending[k], d)
}

// merge applies d to the deltas ds of one tenant and day.
func merge(ds []storage.UsageDelta, d storage.UsageDelta) []storage.UsageDelta {
	for i := range ds {
		if ds[i].Name == d.Name {
			if d.Kind == storage.UsageMax {
				ds[i].Value = max(ds[i].Value, d.Value)
			} else {
				ds[i].Value += d.Value
			}
			return ds
		}
	}
	return append(ds, d)
}

// Run samples and flushes until ctx is done, then flushes once more.
func (m *Meter) Run(ctx context.Context) {
	flush := time.NewTicker(m.opts.FlushInterval)
	defer flush.Stop()
	sample := time.NewTicker(m.opts.SampleInterval)
	defer sample.Stop()
	bytes := time.NewTicker(m.opts.BytesInterval)
	defer bytes.Stop()
	m.SampleSeries()
	m.SampleBytes()
	for {
		select {
		case <-ctx.Done():
			m.SampleSeries()
			if err := m.Flush(context.Background()); err != nil {
				m.opts.Logger.Error("usage not recorded at shutdown", "err", err)
			}
			return
		case <-flush.C:
			// NB: not ctx: a record cancelled after the log took it would
			// be dropped though recorded.
			if err := m.Flush(context.Background()); err != nil {
				m.opts.Logger.Error("usage not recorded", "err", err)
			}
		case <-sample.C:
			m.SampleSeries()
		case <-bytes.C:
			m.SampleBytes()
		}
	}
}

// SampleSeries samples each tenant's active series: the day's maximum,
// and the series-seconds since the last sample (at most two sample
// intervals, so that a stopped server does not bill its downtime).
func (m *Meter) SampleSeries() {
	if m.opts.ActiveSeries == nil {
		return
	}
	now := m.opts.Now()
	active := m.opts.ActiveSeries()
	m.mu.Lock()
	var elapsed time.Duration
	if !m.mu.lastSample.IsZero() {
		elapsed = min(now.Sub(m.mu.lastSample), 2*m.opts.SampleInterval)
	}
	m.mu.lastSample = now
	m.mu.Unlock()
	for tenant, n := range active {
		if n <= 0 {
			continue
		}
		m.raise(tenant, ActiveSeries, uint64(n))
		if secs := uint64(elapsed.Seconds() * float64(n)); secs > 0 {
			m.Add(tenant, SeriesSeconds, secs)
		}
	}
}

// SampleBytes estimates each tenant's bytes stored.
func (m *Meter) SampleBytes() {
	if m.opts.StoredBytes == nil {
		return
	}
	by, err := m.opts.StoredBytes()
	if err != nil {
		m.opts.Logger.Warn("bytes stored per tenant not estimated", "err", err)
		return
	}
	for tenant, tiers := range by {
		for tier, n := range tiers {
			if n > 0 {
				m.raise(tenant, BytesStored+"."+tier, uint64(n))
			}
		}
	}
}

// Flush records what was counted since the last Flush into the Store. A
// change the Store refused before logging it (a full disk, a closed DB)
// stays for the next Flush; one that failed otherwise is dropped and
// logged, as it may have been recorded (it must not count twice).
func (m *Meter) Flush(ctx context.Context) error {
	m.mu.Lock()
	pending := m.mu.pending
	m.mu.pending = map[pendingKey][]storage.UsageDelta{}
	m.mu.Unlock()
	keys := slices.SortedFunc(maps.Keys(pending), func(a, b pendingKey) int {
		if c := a.day.Compare(b.day); c != 0 {
			return c
		}
		if a.tenant < b.tenant {
			return -1
		}
		if a.tenant > b.tenant {
			return 1
		}
		return 0
	})
	var errs []error
	for _, k := range keys {
		ds := pending[k]
		err := m.opts.Store.RecordUsage(ctx, k.tenant, k.day, ds)
		if err == nil {
			continue
		}
		errs = append(errs, err)
		if errors.Is(err, storage.ErrNotWritable) || errors.Is(err, storage.ErrClosed) {
			m.mu.Lock()
			for _, d := range ds {
				m.mu.pending[k] = merge(m.mu.pending[k], d)
			}
			m.mu.Unlock()
			continue
		}
		m.opts.Logger.Error("usage dropped: recording it failed, and it may have been recorded", "tenant", k.tenant,
			"day", k.day.Format(time.DateOnly), "usage", ds, "err", err)
	}
	return errors.Join(errs...)
}

// pendingRows returns the changes not yet flushed, as rows of the days
// from through to of tenant ("" for all).
func (m *Meter) pendingRows(from, to time.Time, tenant string) []storage.UsageRow {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []storage.UsageRow
	for k, ds := range m.mu.pending {
		if (tenant != "" && k.tenant != tenant) || k.day.Before(dayOf(from)) || k.day.After(dayOf(to)) {
			continue
		}
		for _, d := range ds {
			out = append(out, storage.UsageRow{Day: k.day, Tenant: k.tenant, Name: d.Name, Kind: d.Kind, Value: d.Value})
		}
	}
	return out
}
