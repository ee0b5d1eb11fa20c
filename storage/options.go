package storage

import (
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configures a DB. A zero field means its default; see
// DefaultOptions.
type Options struct {
	// Shards is the number of independent shards series are spread over
	// by hash. Default: the number of CPU cores. A data folder keeps the
	// shard count it was created with; a different value here is ignored
	// with a warning.
	Shards int
	// Retention is how long raw samples are kept, measured back from the
	// wall clock. Zero keeps everything forever.
	Retention time.Duration
	// Tiers are the downsampling tiers, finest first (see tier.go and
	// docs/retention.md): buckets built in the background from days no
	// longer written, kept for each tier's own retention, from which
	// queries over long ranges are answered. None by default.
	Tiers []Tier
	// TenantRetention, when set, overrides Retention and the tiers'
	// retentions for a tenant (zero fields keep the defaults).
	TenantRetention func(tenant string) RetentionPolicy
	// MaxBytes, when positive, bounds the disk the DB takes: while it is
	// larger, the oldest day (raw samples and tier buckets of every
	// tenant) is dropped, one whole day at a time. Zero: no bound.
	MaxBytes int64
	// MaxSeries caps the number of series held by the DB; a write that
	// would create more fails with ErrTooManySeries. Zero means no limit.
	MaxSeries int
	// TenantMaxSeries, when set, caps each tenant's series: a write that
	// would create more fails with ErrTooManySeries and stores nothing.
	// Zero for a tenant means no limit.
	TenantMaxSeries func(tenant string) int
	// MaxLabelsPerSeries, MaxLabelNameLen and MaxLabelValueLen bound each
	// series; a write breaking them fails with ErrInvalidSeries.
	MaxLabelsPerSeries int // default 64
	MaxLabelNameLen    int // default 256 bytes
	MaxLabelValueLen   int // default 4096 bytes
	// HeadChunkSamples is the number of samples after which a series'
	// in-memory chunk is sealed to disk. Default 240.
	HeadChunkSamples int
	// MaxHeadAge is how long unsealed samples may stay in memory (and the
	// write-ahead log) before they are sealed anyway. Default 2h.
	MaxHeadAge time.Duration
	// WALSegmentSize is the size at which a shard's log starts a new
	// segment file. Default 64 MiB.
	WALSegmentSize int64
	// NoSync skips fsync: for tests and benchmarks only. It breaks the
	// durability promise.
	NoSync bool
	// CacheSize is the byte budget of the index caches. Default 64 MiB.
	CacheSize int64
	// BlockCacheSize is the byte budget of Pebble's cache of decompressed
	// blocks, shared by all shards. Default 256 MiB.
	BlockCacheSize int64
	// KeyCacheEntries bounds the cache that maps writers' own encodings of
	// label sets (SeriesSamples.Key: remote write's wire bytes) to series;
	// beyond it, the keys unused the longest are dropped. It takes up to
	// about 90 bytes per entry. Default 1,048,576 (at most about 90 MiB;
	// 6 M encodings of one series held 320 MiB before it was bounded).
	KeyCacheEntries int
	// WarmBytes, when positive, has the DB read up to this many bytes of
	// the newest chunks in the background after opening, so that the block
	// cache holds them and the first dashboards after a restart are as fast
	// as later ones. Default 0: off.
	WarmBytes int64
	// WriteRetryMax is the longest wait between checks of a disk that
	// stopped taking writes (full, or failing): the DB refuses writes,
	// probes the disk after 100ms, then doubles the wait up to this, and
	// takes writes again as soon as a probe succeeds. Default 10s.
	WriteRetryMax time.Duration
	// MaxExemplars is the number of exemplars kept per tenant, in a ring
	// whose newest exemplar replaces the oldest (Prometheus'
	// --storage.exemplars.exemplars-limit). Default 100,000; negative:
	// exemplars are not kept.
	MaxExemplars int
	// MaxMetadataFamilies bounds the metric families whose metadata is
	// kept per tenant; metadata of new families beyond it is dropped and
	// counted. Default 100,000.
	MaxMetadataFamilies int
	// Logger receives the DB's structured logs. Default: discard.
	Logger *slog.Logger
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
	// FS holds every file of the DB: Pebble's, the write-ahead logs, the
	// folder metadata and snapshots. Default vfs.Default, the operating
	// system's. Crash tests pass vfs.NewCrashableMem() and reopen its
	// CrashClone, which keeps only what was fsynced.
	FS vfs.FS
}

// DefaultOptions returns the options a zero Options stands for.
func DefaultOptions() *Options {
	o := &Options{}
	o.EnsureDefaults()
	return o
}

// EnsureDefaults fills every zero field with its default.
func (o *Options) EnsureDefaults() {
	if o.Shards <= 0 {
		o.Shards = runtime.NumCPU()
	}
	if o.MaxLabelsPerSeries <= 0 {
		o.MaxLabelsPerSeries = 64
	}
	if o.MaxLabelNameLen <= 0 {
		o.MaxLabelNameLen = 256
	}
	if o.MaxLabelValueLen <= 0 {
		o.MaxLabelValueLen = 4096
	}
	if o.HeadChunkSamples <= 0 {
		o.HeadChunkSamples = 240
	}
	// A head chunk counts its samples in an int32; a chunk this long would
	// be sealed as several anyway (maxDiskChunkSamples).
	o.HeadChunkSamples = min(o.HeadChunkSamples, 1<<20)
	if o.MaxHeadAge <= 0 {
		o.MaxHeadAge = 2 * time.Hour
	}
	if o.WALSegmentSize <= 0 {
		o.WALSegmentSize = 64 << 20
	}
	if o.BlockCacheSize <= 0 {
		o.BlockCacheSize = 256 << 20
	}
	if o.KeyCacheEntries <= 0 {
		o.KeyCacheEntries = 1 << 20
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 64 << 20
	}
	if o.WriteRetryMax <= 0 {
		o.WriteRetryMax = 10 * time.Second
	}
	if o.MaxExemplars == 0 {
		o.MaxExemplars = 100_000
	}
	if o.MaxMetadataFamilies <= 0 {
		o.MaxMetadataFamilies = 100_000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
}

// Validate reports options that cannot work.
func (o *Options) Validate() error {
	switch {
	case o.Shards > 1024:
		return fmt.Errorf("storage: shards %d: at most 1024", o.Shards)
	case o.Retention < 0:
		return fmt.Errorf("storage: negative retention %s", o.Retention)
	case o.Retention > 0 && o.Retention < 24*time.Hour:
		return fmt.Errorf("storage: retention %s: at least 24h (data is dropped by whole days)", o.Retention)
	case o.MaxBytes < 0:
		return fmt.Errorf("storage: negative size bound %d", o.MaxBytes)
	case o.HeadChunkSamples > 1<<15:
		return fmt.Errorf("storage: head chunk of %d samples: at most %d", o.HeadChunkSamples, 1<<15)
	case o.MaxSeries < 0:
		return fmt.Errorf("storage: negative series limit %d", o.MaxSeries)
	}
	return validateTiers(o.Tiers)
}
