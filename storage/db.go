package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/dgraph-io/ristretto/v2"
	"github.com/prometheus/prometheus/model/labels"
	"golang.org/x/sync/errgroup"

	"github.com/emsdb/tsdb/storage/internal/durable"
	"github.com/emsdb/tsdb/storage/internal/invariants"
)

// DB is the time-series store: series spread by hash over independent
// shards. It implements Writer and Reader and is safe for concurrent use.
type DB struct {
	dir    string
	opts   Options
	shards []*shard
	cache  *regexCache
	// matches caches the series of selectors (see querier.match).
	matches *ristretto.Cache[string, cachedMatch]
	blocks  *pebble.Cache // decompressed blocks, shared by the shards
	keys    *keyCache
	// openedAt and warmed tell Warming whether the block cache warm-up
	// is still running.
	openedAt time.Time
	warmed   atomic.Bool
	// keyLookups holds *keyLookup scratch for Write.
	keyLookups sync.Pool
	stats      dbStats
	// meta and exemplars keep metric metadata and exemplars (in shard 0).
	meta      *metadataStore
	exemplars *exemplarStore
	// health is whether the disk takes writes; rawFS is Options.FS as
	// given, which the probes use (opts.FS is wrapped by guardFS).
	health *health
	rawFS  vfs.FS
	closed atomic.Bool
	// adminMu serialises deletes, snapshots and Close.
	adminMu sync.Mutex
	// queriers not yet closed, with where they were opened; tracked only
	// under the invariants tag (see Check).
	queriers invariants.Leaks
	quit     chan struct{}
	wg       sync.WaitGroup
}

var (
	_ Writer = (*DB)(nil)
	_ Reader = (*DB)(nil)
)

// metaFile records the layout a data folder was created with.
const metaFile = "tsdb.json"

type dirMeta struct {
	Format int `json:"format"`
	Shards int `json:"shards"`
}

// Open opens or creates the DB in dir. A nil opts means DefaultOptions.
// On a disk that does not take writes it fails with a *NotWritableError
// (a full disk: "storage: no space left on device: free space in DIR").
func Open(dir string, opts *Options) (*DB, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	db, err := open(dir, o)
	if err != nil && isNoSpace(err) {
		return nil, fmt.Errorf("%w (%v)", &NotWritableError{Dir: dir, Since: o.Now(), Cause: err}, err)
	}
	return db, err
}

func open(dir string, o Options) (db *DB, err error) {
	h := newHealth(dir, o.Logger, o.Now)
	rawFS := o.FS
	guard := &guardFS{FS: rawFS, h: h}
	o.FS = guard
	if err := durable.MkdirAll(o.FS, dir); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	// Find a full disk before Pebble does: it takes a MANIFEST it cannot
	// write for a fatal error.
	if err := probe(rawFS, dir); err != nil {
		return nil, fmt.Errorf("write to data dir: %w", err)
	}
	meta, err := readOrCreateMeta(o.FS, dir, o.Shards)
	if err != nil {
		return nil, err
	}
	if meta.Shards != o.Shards {
		o.Logger.Warn("data folder keeps its shard count", "dir", dir, "shards", meta.Shards, "requested", o.Shards)
		o.Shards = meta.Shards
	}
	cache, err := ristretto.NewCache(&ristretto.Config[string, cachedValues]{
		NumCounters: max(1000, o.CacheSize/100),
		MaxCost:     o.CacheSize,
		BufferItems: 64,
	})
	if err != nil {
		return nil, fmt.Errorf("create cache: %w", err)
	}
	matches, err := ristretto.NewCache(&ristretto.Config[string, cachedMatch]{
		NumCounters: max(1000, o.CacheSize/1000),
		MaxCost:     o.CacheSize,
		BufferItems: 64,
	})
	if err != nil {
		cache.Close()
		return nil, fmt.Errorf("create cache: %w", err)
	}
	defer func() {
		if db == nil {
			matches.Close()
		}
	}()
	db = &DB{dir: dir, opts: o, cache: cache, matches: matches, keys: newKeyCache(o.KeyCacheEntries), keyLookups: sync.Pool{New: func() any { return new(keyLookup) }}, health: h, rawFS: rawFS, quit: make(chan struct{})}
	db.blocks = pebble.NewCache(o.BlockCacheSize)
	for i := 0; i < o.Shards; i++ {
		sh, err := openShard(i, o.FS.PathJoin(dir, fmt.Sprintf("shard-%03d", i)), &db.opts, guard, cache, db.blocks, &db.stats)
		if err != nil {
			for _, s := range db.shards {
				s.close()
			}
			cache.Close()
			db.blocks.Unref()
			return nil, fmt.Errorf("open shard %d: %w", i, err)
		}
		db.shards = append(db.shards, sh)
	}
	if err := db.openExtras(); err != nil {
		for _, s := range db.shards {
			s.close()
		}
		cache.Close()
		db.blocks.Unref()
		return nil, err
	}
	db.keys.live.Store(int64(db.numSeries()))
	if err := db.resumeDelete(); err != nil {
		for _, s := range db.shards {
			s.close()
		}
		cache.Close()
		db.blocks.Unref()
		return nil, fmt.Errorf("complete interrupted delete: %w", err)
	}
	db.wg.Add(1)
	go db.healthLoop()
	db.openedAt = time.Now()
	db.warmed.Store(o.WarmBytes <= 0)
	if o.WarmBytes > 0 {
		db.wg.Add(1)
		go db.warm(o.WarmBytes)
	}
	if len(o.Tiers) > 0 {
		db.wg.Add(1)
		go db.tierLoop()
	}
	if o.hasRetention() {
		if err := db.applyRetention(context.Background()); err != nil {
			o.Logger.Error("apply retention", "err", err)
		}
		db.wg.Add(1)
		go db.retentionLoop()
	}
	return db, nil
}

func readOrCreateMeta(fs vfs.FS, dir string, shards int) (dirMeta, error) {
	p := fs.PathJoin(dir, metaFile)
	b, err := durable.ReadFile(fs, p)
	if errors.Is(err, os.ErrNotExist) {
		m := dirMeta{Format: 1, Shards: shards}
		b, _ = json.Marshal(m)
		if err := durable.WriteFile(fs, p, b); err != nil {
			return m, fmt.Errorf("write %s: %w", metaFile, err)
		}
		return m, nil
	}
	if err != nil {
		return dirMeta{}, fmt.Errorf("read %s: %w", metaFile, err)
	}
	var m dirMeta
	if err := json.Unmarshal(b, &m); err != nil || m.Shards <= 0 {
		return m, fmt.Errorf("%w: %s: %q", ErrCorrupt, p, b)
	}
	if m.Format != 1 {
		return m, fmt.Errorf("storage: %s: format %d is not supported by this version", p, m.Format)
	}
	return m, nil
}

// seriesHash is the stable hash of a tenant's label set: it picks the
// series' shard, so it must never change between versions.
func seriesHash(tenant string, lset labels.Labels, buf []byte) (uint64, []byte) {
	buf = append(buf[:0], tenant...)
	buf = append(buf, 0xff)
	buf = appendLabels(buf, lset)
	return xxhash.Sum64(buf), buf
}

// Write implements Writer.
func (db *DB) Write(ctx context.Context, tenant string, b *Batch) error {
	if db.closed.Load() {
		return ErrClosed
	}
	// NB: while the disk does not take writes, refuse at once: the write
	// could not be made durable, and the client will retry.
	if err := db.health.err(); err != nil {
		return err
	}
	if tenant == "" || len(tenant) > 256 || !utf8.ValidString(tenant) {
		return fmt.Errorf("%w: tenant %q must be 1 to 256 bytes of UTF-8", ErrInvalidSeries, tenant)
	}
	// Resolve and validate the whole batch before writing any of it.
	cutoff := db.rawCutoff(tenant)
	created := db.stats.seriesCreated.Load()
	// The keyed series are looked up all at once (see getMany); the
	// lookup's and the shards' slices are reused from write to write.
	kl := db.keyLookups.Get().(*keyLookup)
	if len(b.Series) <= maxPooledLookup {
		defer db.keyLookups.Put(kl)
	}
	if len(kl.perShard) != len(db.shards) {
		kl.perShard = make([][]writeItem, len(db.shards))
	}
	perShard := kl.perShard
	defer func() {
		for i := range perShard { // they hold the caller's samples
			clear(perShard[i])
			perShard[i] = perShard[i][:0]
		}
		kl.clearExtras()
	}()
	var buf []byte
	dropped, written, histsWritten := 0, 0, 0
	ids := kl.ids[:0]
	th := db.keys.tenantHash(tenant)
	for i := range b.Series {
		if k := b.Series[i].Key; k != nil {
			ids = append(ids, db.keys.idIn(th, k))
		}
	}
	kl.ids = ids
	db.keys.getMany(ids, kl)
	keyed := 0
	for i := range b.Series {
		bs := &b.Series[i]
		it := writeItem{samples: bs.Samples}
		var (
			e     keyEntry
			hit   bool
			key   keyID
			hasID bool
		)
		if bs.Key != nil {
			key, hasID = ids[keyed], true
			e, hit = kl.ents[keyed], kl.hit[keyed]
			keyed++
		}
		if hit {
			// lset: see writeItem.labels; hash: itemExtra.hashed. NB: no
			// key either: the key cache has this one (should a delete
			// take its series before the shard writes, the shard makes it
			// again and the next write by the key finds it the slow way).
			it.ms = e.ms
			if len(bs.Histograms) > 0 {
				it.x = kl.extra()
				it.x.hists = bs.Histograms
			}
		} else {
			lset, err := b.LabelsOf(i)
			if err != nil {
				return invalidSeries("series %d: %v", i, err)
			}
			if err := db.validateLabels(i, lset); err != nil {
				return err
			}
			x := kl.extra()
			x.hists, x.key, x.keyed = bs.Histograms, key, hasID
			x.lset = lset.WithoutEmpty()
			x.hash, buf = seriesHash(tenant, x.lset, buf)
			x.hashed = true
			x.enc = append([]byte(nil), buf[len(tenant)+1:]...)
			it.x = x
		}
		for _, s := range bs.Samples {
			if s.T < minStorableT || s.T > maxStorableT {
				return fmt.Errorf("%w: timestamp %d of series %s is out of the storable range", ErrInvalidSample, s.T, it.labels())
			}
		}
		if len(bs.Histograms) > 0 {
			if err := validateHistograms(it.labels(), bs.Histograms); err != nil {
				return err
			}
		}
		if cutoff > math.MinInt64 {
			kept := make([]Sample, 0, len(it.samples))
			for _, s := range it.samples {
				if s.T >= cutoff {
					kept = append(kept, s)
				}
			}
			dropped += len(it.samples) - len(kept)
			it.samples = kept
			if hs := it.hists(); len(hs) > 0 {
				keptH := make([]HSample, 0, len(hs))
				for _, h := range hs {
					if h.T >= cutoff {
						keptH = append(keptH, h)
					}
				}
				dropped += len(hs) - len(keptH)
				it.x.hists = keptH
			}
		}
		nh := len(it.hists())
		if len(it.samples) == 0 && nh == 0 {
			continue
		}
		written += len(it.samples) + nh
		histsWritten += nh
		sh := it.shardOf(len(db.shards))
		perShard[sh] = append(perShard[sh], it)
	}
	db.stats.samplesDropped.Add(int64(dropped))
	if db.opts.MaxSeries > 0 {
		// Checked before writing anything so that a batch over the limit
		// changes nothing. Concurrent writers may overshoot slightly.
		missing := 0
		for i, items := range perShard {
			if len(items) > 0 {
				missing += db.shards[i].countMissing(tenant, items)
			}
		}
		if have := db.numSeries(); missing > 0 && have+missing > db.opts.MaxSeries {
			return fmt.Errorf("%w: the write adds %d series to %d, over the limit of %d", ErrTooManySeries, missing, have, db.opts.MaxSeries)
		}
	}
	if db.opts.TenantMaxSeries != nil {
		if limit := db.opts.TenantMaxSeries(tenant); limit > 0 {
			missing, have := 0, 0
			for i, items := range perShard {
				if len(items) > 0 {
					missing += db.shards[i].countMissing(tenant, items)
				}
			}
			for _, sh := range db.shards {
				have += sh.tenantSeries(tenant)
			}
			if missing > 0 && have+missing > limit {
				return fmt.Errorf("%w: tenant %s: the write adds %d series to %d, over its limit of %d (max_series)", ErrTooManySeries, tenant, missing, have, limit)
			}
		}
	}
	n := 0
	var only int
	for i, items := range perShard {
		if len(items) > 0 {
			n++
			only = i
		}
	}
	var err error
	switch n {
	case 0:
		return db.afterWrite(ctx, tenant, b, WriteStats{DroppedOld: dropped})
	case 1:
		err = db.shards[only].write(ctx, tenant, perShard[only])
	default:
		g, gctx := errgroup.WithContext(ctx)
		for i, items := range perShard {
			if len(items) > 0 {
				g.Go(func() error { return db.shards[i].write(gctx, tenant, items) })
			}
		}
		err = g.Wait()
	}
	if err != nil {
		if herr := db.health.err(); herr != nil {
			return herr // the disk stopped taking writes: say so plainly
		}
		return err
	}
	db.stats.samplesWritten.Add(int64(written))
	if db.stats.seriesCreated.Load() != created {
		db.keys.live.Store(int64(db.numSeries()))
	}
	// Remember the series of keys seen for the first time (or whose series
	// was deleted and has been created again).
	for _, items := range perShard {
		for i := range items {
			if it := &items[i]; it.x != nil && it.x.keyed && it.ms != nil && it.x.enc != nil {
				db.keys.put(it.x.key, keyEntry{ms: it.ms})
			}
		}
	}
	return db.afterWrite(ctx, tenant, b, WriteStats{Samples: written - histsWritten, Histograms: histsWritten, DroppedOld: dropped})
}

// validateLabels checks the label set of series i of a batch.
func (db *DB) validateLabels(i int, lset labels.Labels) error {
	o := &db.opts
	if lset.IsEmpty() {
		return invalidSeries("series %d has no labels", i)
	}
	if n := lset.Len(); n > o.MaxLabelsPerSeries {
		return invalidSeries("series %s has %d labels, more than the limit of %d", lset, n, o.MaxLabelsPerSeries)
	}
	var err error
	prev := ""
	first := true
	nonEmpty := 0
	lset.Range(func(l labels.Label) {
		switch {
		case err != nil:
		case l.Name == "":
			err = invalidSeries("series %s has a label with an empty name", lset)
		case !first && l.Name <= prev:
			if l.Name == prev {
				err = invalidSeries("series %s has label %q twice", lset, l.Name)
			} else {
				err = invalidSeries("series %s has labels out of order", lset)
			}
		case len(l.Name) > o.MaxLabelNameLen:
			err = invalidSeries("label name %.40q... is %d bytes, more than the limit of %d", l.Name, len(l.Name), o.MaxLabelNameLen)
		case len(l.Value) > o.MaxLabelValueLen:
			err = invalidSeries("value of label %q is %d bytes, more than the limit of %d", l.Name, len(l.Value), o.MaxLabelValueLen)
		case !utf8.ValidString(l.Name) || !utf8.ValidString(l.Value):
			err = invalidSeries("label %q has invalid UTF-8", l.Name)
		}
		if l.Value != "" {
			nonEmpty++
		}
		prev, first = l.Name, false
	})
	if err != nil {
		return err
	}
	if nonEmpty == 0 {
		return invalidSeries("series %s has only empty label values", lset)
	}
	return nil
}

// sweepKeys forgets the cached keys of deleted series and tells the cache
// how many series are left.
func (db *DB) sweepKeys() {
	db.keys.sweep()
	db.keys.live.Store(int64(db.numSeries()))
}

func (db *DB) numSeries() int {
	n := 0
	for _, sh := range db.shards {
		n += sh.numSeries()
	}
	return n
}

// TenantSeries is the number of series tenant holds.
func (db *DB) TenantSeries(tenant string) int {
	n := 0
	for _, sh := range db.shards {
		n += sh.tenantSeries(tenant)
	}
	return n
}

// Flush seals every in-memory sample to Pebble and truncates the logs, so
// that a restart has nothing to replay. Writes may continue meanwhile.
func (db *DB) Flush() error {
	if db.closed.Load() {
		return ErrClosed
	}
	var errs []error
	for _, sh := range db.shards {
		if err := sh.maintain(true); err != nil {
			errs = append(errs, fmt.Errorf("flush shard %d: %w", sh.id, err))
		}
	}
	return errors.Join(errs...)
}

// Close flushes and closes the DB. Writes and queries in flight must have
// finished.
func (db *DB) Close() error {
	db.adminMu.Lock()
	defer db.adminMu.Unlock()
	if db.closed.Swap(true) {
		return nil
	}
	close(db.quit)
	db.wg.Wait()
	var errs []error
	for _, sh := range db.shards {
		if err := sh.close(); err != nil {
			errs = append(errs, fmt.Errorf("close shard %d: %w", sh.id, err))
		}
	}
	db.cache.Close()
	db.matches.Close()
	db.blocks.Unref()
	return errors.Join(errs...)
}

// warm reads the newest chunks of every shard, newest first, up to budget
// bytes in all, so that Pebble's block cache holds them when the first
// queries come after a restart. It stops early when the DB closes.
//
// Pebble rewrites tables in the first moments after opening (the tables a
// stop flushed into L0, with the keys written while opening, go down a
// level): blocks read from a table rewritten afterwards are of no use, so
// the chunks are read again once the tables have settled (at most three
// times; the first query after a restart of a 20k-series folder took
// 20–30 ms instead of 5 without this). Warming holds readiness back
// meanwhile.
func (db *DB) warm(budget int64) {
	defer db.wg.Done()
	start := time.Now()
	// changes counts the flushes and compactions done and running.
	changes := func() (n int64, busy bool) {
		for _, sh := range db.shards {
			m := sh.db.Metrics()
			n += m.Flush.Count + m.Compact.Count
			busy = busy || m.Compact.NumInProgress > 0
		}
		return n, busy
	}
	sleep := func(d time.Duration) bool {
		select {
		case <-db.quit:
			return false
		case <-time.After(d):
			return true
		}
	}
	var total int64
	rounds := 0
	for rounds < 3 {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			if _, busy := changes(); !busy {
				break
			}
			if !sleep(10 * time.Millisecond) {
				return
			}
		}
		before, _ := changes()
		var ok bool
		if total, ok = db.warmOnce(budget); !ok {
			return
		}
		rounds++
		if total == 0 {
			break // nothing on disk yet
		}
		settled := true
		for range 6 { // time for Pebble's first compactions to start
			if n, busy := changes(); n != before || busy {
				settled = false
				break
			}
			if !sleep(50 * time.Millisecond) {
				return
			}
		}
		if settled {
			break
		}
	}
	db.warmed.Store(true)
	db.opts.Logger.Info("block cache warmed with the newest chunks", "bytes", total, "rounds", rounds, "took", time.Since(start))
}

// maxWarmWait bounds how long Warming holds readiness back.
const maxWarmWait = 3 * time.Second

// Warming returns an error while the block cache is being warmed after a
// restart (Options.WarmBytes), for at most maxWarmWait after opening: a
// server is ready for its first dashboards once their newest chunks are
// in the cache (cold first queries took 4–6 times as long before).
func (db *DB) Warming() error {
	if db.warmed.Load() || time.Since(db.openedAt) > maxWarmWait {
		return nil
	}
	return errors.New("warming the block cache with the newest chunks")
}

// warmOnce is one pass of warm; false when the DB closed meanwhile.
func (db *DB) warmOnce(budget int64) (int64, bool) {
	per := budget / int64(len(db.shards))
	var total int64
	for _, sh := range db.shards {
		it, err := sh.db.NewIter(allChunks)
		if err != nil {
			continue
		}
		var n int64
		keys := 0
		for valid := it.Last(); valid && n < per; valid = it.Prev() {
			n += int64(len(it.Value())) // reading the value loads its block
			if keys++; keys%1024 == 0 {
				select {
				case <-db.quit:
					_ = it.Close()
					return total, false
				default:
				}
			}
		}
		_ = it.Close()
		total += n
	}
	return total, true
}

// Dir returns the DB's data folder.
func (db *DB) Dir() string { return db.dir }

// dbStats are the DB's counters.
type dbStats struct {
	samplesWritten atomic.Int64
	samplesDropped atomic.Int64
	seriesCreated  atomic.Int64
	chunksSealed   atomic.Int64
	samplesSealed  atomic.Int64
	bytesSealed    atomic.Int64
	// daysDroppedBySize counts days dropped to keep under MaxBytes.
	daysDroppedBySize atomic.Int64
}

// Stats is a point-in-time view of the DB for monitoring.
type Stats struct {
	SamplesWritten      int64 // samples accepted since start
	SamplesDropped      int64 // samples dropped as older than retention
	DaysDroppedBySize   int64 // oldest days dropped to keep under Options.MaxBytes
	SeriesCreated       int64 // series created since start
	Series              int   // series held now
	ChunksSealed        int64 // chunks written to disk since start
	SamplesSealed       int64 // samples in those chunks
	BytesSealed         int64 // encoded bytes of those chunks, before block compression
	DiskBytes           int64 // Pebble files plus WAL
	WALBytes            int64
	PebbleCompactions   int64
	PebbleL0Files       int64
	PebbleMemtableBytes int64
	// Writable is false while the disk does not take writes (see
	// DB.Writable).
	Writable bool
	// Exemplars and metadata (see Options.MaxExemplars and
	// MaxMetadataFamilies).
	ExemplarsOutOfOrder int64 // dropped as older than their series' newest
	ExemplarsInvalid    int64 // dropped: labels too long or not UTF-8
	MetadataDropped     int64 // dropped: invalid, or a family over the limit
}

// Stats returns current figures.
func (db *DB) Stats() Stats {
	st := Stats{
		SamplesWritten:    db.stats.samplesWritten.Load(),
		SamplesDropped:    db.stats.samplesDropped.Load(),
		DaysDroppedBySize: db.stats.daysDroppedBySize.Load(),
		SeriesCreated:     db.stats.seriesCreated.Load(),
		ChunksSealed:      db.stats.chunksSealed.Load(),
		SamplesSealed:     db.stats.samplesSealed.Load(),
		BytesSealed:       db.stats.bytesSealed.Load(),
		Writable:          db.Writable() == nil,
	}
	db.extrasStatsInto(&st)
	if db.closed.Load() {
		return st
	}
	for _, sh := range db.shards {
		sh.statsInto(&st)
	}
	return st
}
