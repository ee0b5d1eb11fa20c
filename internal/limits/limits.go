// Package limits holds the per-tenant limits — active series, ingestion
// rate, labels per series, label name and value lengths, concurrent
// queries — and enforces those of the write path by wrapping the
// storage.Writer every ingest protocol writes through.
package limits

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage"
)

// Limits are one tenant's limits; zero means no limit.
type Limits struct {
	MaxSeries           int     `yaml:"max_series"`
	IngestRate          float64 `yaml:"ingest_rate"`  // samples per second
	IngestBurst         int     `yaml:"ingest_burst"` // samples; default one second's worth, at least 10000
	MaxLabelsPerSeries  int     `yaml:"max_labels_per_series"`
	MaxLabelNameLength  int     `yaml:"max_label_name_length"`
	MaxLabelValueLength int     `yaml:"max_label_value_length"`
	MaxQueryConcurrency int     `yaml:"max_query_concurrency"`
	// Retention overrides --retention for the tenant's raw samples, and
	// RetentionTiers the retention of each downsampling tier, by its
	// resolution (--retention.tiers): {5m: 90d, 1h: 2y}. -1 keeps forever.
	Retention      model.Duration            `yaml:"retention"`
	RetentionTiers map[string]model.Duration `yaml:"retention_tiers"`
}

// RetentionPolicy is the tenant's retention overrides as storage takes
// them; a tier key that is not a duration is ignored (Validate reports
// it).
func (l Limits) RetentionPolicy() storage.RetentionPolicy {
	p := storage.RetentionPolicy{Raw: time.Duration(l.Retention)}
	for k, v := range l.RetentionTiers {
		if res, err := model.ParseDuration(k); err == nil {
			if p.Tiers == nil {
				p.Tiers = map[time.Duration]time.Duration{}
			}
			p.Tiers[time.Duration(res)] = time.Duration(v)
		}
	}
	return p
}

// Config is the limits: section: defaults for every tenant and overrides
// per tenant (the non-zero fields of an override replace the default's).
type Config struct {
	Default Limits            `yaml:"default"`
	Tenants map[string]Limits `yaml:"tenants"`
}

// Validate checks the limits.
func (c *Config) Validate() error {
	check := func(who string, l Limits) error {
		if l.MaxSeries < 0 || l.IngestRate < 0 || l.IngestBurst < 0 || l.MaxLabelsPerSeries < 0 ||
			l.MaxLabelNameLength < 0 || l.MaxLabelValueLength < 0 || l.MaxQueryConcurrency < 0 {
			return fmt.Errorf("limits %s: negative limit", who)
		}
		for k := range l.RetentionTiers {
			if _, err := model.ParseDuration(k); err != nil {
				return fmt.Errorf("limits %s: retention_tiers: %q is not a tier resolution: %v", who, k, err)
			}
		}
		return nil
	}
	if err := check("default", c.Default); err != nil {
		return err
	}
	for t, l := range c.Tenants {
		if err := check("tenant "+t, l); err != nil {
			return err
		}
	}
	return nil
}

// For returns a tenant's limits.
func (c *Config) For(tenant string) Limits {
	l := c.Default
	o, ok := c.Tenants[tenant]
	if !ok {
		return l
	}
	pick := func(d *int, v int) {
		if v != 0 {
			*d = v
		}
	}
	pick(&l.MaxSeries, o.MaxSeries)
	pick(&l.IngestBurst, o.IngestBurst)
	pick(&l.MaxLabelsPerSeries, o.MaxLabelsPerSeries)
	pick(&l.MaxLabelNameLength, o.MaxLabelNameLength)
	pick(&l.MaxLabelValueLength, o.MaxLabelValueLength)
	pick(&l.MaxQueryConcurrency, o.MaxQueryConcurrency)
	if o.IngestRate != 0 {
		l.IngestRate = o.IngestRate
	}
	if o.Retention != 0 {
		l.Retention = o.Retention
	}
	if len(o.RetentionTiers) > 0 {
		merged := make(map[string]model.Duration, len(l.RetentionTiers)+len(o.RetentionTiers))
		for k, v := range l.RetentionTiers {
			merged[k] = v
		}
		for k, v := range o.RetentionTiers {
			merged[k] = v
		}
		l.RetentionTiers = merged
	}
	return l
}

// RateLimitError is a write refused by the ingestion rate limit.
type RateLimitError struct {
	Tenant string
	Rate   float64
	Wait   time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("tenant %s is over its ingestion rate of %.0f samples/s (ingest_rate); retry in %s", e.Tenant, e.Rate, e.Wait.Round(time.Millisecond))
}

// Unwrap makes errors.Is(err, storage.ErrRateLimited) true.
func (e *RateLimitError) Unwrap() error { return storage.ErrRateLimited }

// RetryAfter is when the same write fits under the rate.
func (e *RateLimitError) RetryAfter() time.Duration { return e.Wait }

// Limiter enforces the write-path limits.
type Limiter struct {
	cfg atomic.Pointer[Config]
	now func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a limiter for cfg; now may be nil (time.Now).
func New(cfg *Config, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{now: now, buckets: map[string]*bucket{}}
	l.SetConfig(cfg)
	return l
}

// Config returns the limits the limiter enforces.
func (l *Limiter) Config() *Config { return l.cfg.Load() }

// SetConfig replaces the limits (config reload); nil means none. Token
// buckets carry over: a tenant's burst is not refilled by a reload.
func (l *Limiter) SetConfig(cfg *Config) {
	if cfg == nil {
		cfg = &Config{}
	}
	l.cfg.Store(cfg)
}

// take removes n samples from tenant's bucket, or says how long to wait.
func (l *Limiter) take(tenant string, lim Limits, n int) error {
	if lim.IngestRate <= 0 || n == 0 {
		return nil
	}
	burst := float64(lim.IngestBurst)
	if burst == 0 {
		burst = max(lim.IngestRate, 10000)
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[tenant]
	if b == nil {
		b = &bucket{tokens: burst, last: now}
		l.buckets[tenant] = b
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*lim.IngestRate)
	b.last = now
	need := float64(n)
	if need > burst {
		return fmt.Errorf("%w: a write of %d samples is larger than tenant %s's burst of %.0f (ingest_burst); send smaller batches",
			storage.ErrInvalidSample, n, tenant, burst)
	}
	if b.tokens < need {
		wait := time.Duration((need - b.tokens) / lim.IngestRate * float64(time.Second))
		return &RateLimitError{Tenant: tenant, Rate: lim.IngestRate, Wait: max(wait, time.Millisecond)}
	}
	b.tokens -= need
	return nil
}

// checkLabels applies the label limits to one series.
func checkLabels(lim Limits, ls labels.Labels) error {
	if lim.MaxLabelsPerSeries > 0 && ls.Len() > lim.MaxLabelsPerSeries {
		return fmt.Errorf("%w: %s has %d labels, over the limit of %d (max_labels_per_series)", storage.ErrInvalidSeries, ls.Get(model.MetricNameLabel), ls.Len(), lim.MaxLabelsPerSeries)
	}
	var err error
	ls.Range(func(lb labels.Label) {
		if err != nil {
			return
		}
		if lim.MaxLabelNameLength > 0 && utf8.RuneCountInString(lb.Name) > lim.MaxLabelNameLength {
			err = fmt.Errorf("%w: label name %.40q… is longer than %d characters (max_label_name_length)", storage.ErrInvalidSeries, lb.Name, lim.MaxLabelNameLength)
		} else if lim.MaxLabelValueLength > 0 && utf8.RuneCountInString(lb.Value) > lim.MaxLabelValueLength {
			err = fmt.Errorf("%w: the value of label %s is longer than %d characters (max_label_value_length)", storage.ErrInvalidSeries, lb.Name, lim.MaxLabelValueLength)
		}
	})
	return err
}

// Wrap returns a storage.Writer that checks a write against its tenant's
// label limits and ingestion rate before handing it to w; a refused write
// stores nothing.
func (l *Limiter) Wrap(w storage.Writer) storage.Writer { return &writer{l: l, w: w} }

type writer struct {
	l *Limiter
	w storage.Writer
}

func (x *writer) Write(ctx context.Context, tenant string, b *storage.Batch) error {
	lim := x.l.Config().For(tenant)
	if lim.MaxLabelsPerSeries > 0 || lim.MaxLabelNameLength > 0 || lim.MaxLabelValueLength > 0 {
		for i := range b.Series {
			ls, err := b.LabelsOf(i)
			if err != nil {
				return err
			}
			if err := checkLabels(lim, ls); err != nil {
				return err
			}
		}
	}
	if err := x.l.take(tenant, lim, b.Len()); err != nil {
		return err
	}
	return x.w.Write(ctx, tenant, b)
}
