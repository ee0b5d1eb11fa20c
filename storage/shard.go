package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable/block"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage/internal/durable"
	"github.com/emsdb/tsdb/storage/wal"
)

// shard is one independent slice of the DB: its own Pebble instance, WAL,
// in-memory series and index. Series are assigned to shards by hash, so
// shards never share a series and write in parallel.
type shard struct {
	id    int
	dir   string
	opts  *Options
	log   *slog.Logger
	db    *pebble.DB
	wal   *wal.WAL
	cache *regexCache
	stats *dbStats
	// h is the DB's disk health; release lets go of Pebble's flushes and
	// compactions waiting for the disk (see guardFS) when the shard closes.
	h       *health
	release chan struct{}
	bgErrs  rateLog

	// appendMu orders WAL appends with their application to memory, so
	// that memory always reflects the log's order (which replay repeats).
	appendMu   sync.Mutex
	nextRef    uint64     // guarded by appendMu
	nextTenant uint32     // guarded by appendMu
	rec        []byte     // scratch, guarded by appendMu
	usage      shardUsage // guarded by appendMu
	// The log's sample encoding (walcodec.go), guarded by appendMu: walSeg
	// is the segment the last write went to, walGen changes with it (and
	// when an append fails), so that a series' walPred of another
	// segment, or of a record never logged, is not a base; the rest is
	// scratch.
	walSeg int
	walGen uint64
	// walBytes and walSamples are what writes logged since the shard
	// opened, and walSizeAt the walSamples at which the log's segment
	// size is next set (sizeSegmentsLocked); walSpan is the bytes a head
	// chunk's worth of samples for every series takes in the log (0: not
	// known yet), and segStarts the walBytes at which the segments
	// writes went to began; guarded by appendMu.
	walBytes, walSamples, walSizeAt, walSpan int64
	segStarts                                []segStart
	blk                                      []blockSeries
	tsBuf, vsBuf                             []byte
	zrec                                     []byte

	idxMu      sync.RWMutex
	tenants    map[string]*tenantIndex // guarded by idxMu
	refs       refTable                // the tenants' series by ref; guarded by idxMu
	tenantByID map[uint32]*tenantIndex // guarded by idxMu

	// sealMu serialises writers of chunks: the sealer, deletes, retention.
	sealMu  sync.Mutex
	sealBuf []byte // a chunk being encoded (writeSamples), guarded by sealMu
	// chunkGen counts commits that change chunks on disk (seal, delete,
	// retention): a querier's Pebble iterator older than the latest one
	// may miss a chunk that memory no longer holds, and is replaced.
	chunkGen atomic.Uint64
	sealCh   chan *memSeries

	// tiers is the state of the downsampling tiers (tier_build.go).
	tiers tierState

	// maintainMu serialises maintain: the background loop, DB.Flush and
	// Close may all call it at once.
	maintainMu sync.Mutex
	// truncatedTo is the segment the WAL was last truncated to; guarded by
	// maintainMu.
	truncatedTo int
	// segSeen is the log's current segment as maintain last saw it, and
	// segSince when it first did (Options.Now, ms); guarded by maintainMu.
	segSeen  int
	segSince int64
	// maintainKick asks maintainLoop for a run now: the log has started a
	// new segment, and the ones before may be done with.
	maintainKick chan struct{}

	quit chan struct{}
	wg   sync.WaitGroup
}

// writeItem is one series of a batch routed to a shard: 40 bytes, for a
// write copies, routes and clears one per series (issue 18: at 144 bytes
// that was a tenth of an ingest's CPU). What only a series the key cache
// did not resolve needs, or one with histograms, is in x.
type writeItem struct {
	samples []Sample
	// ms is the series: set by the key cache, or by shard.write.
	ms *memSeries
	x  *itemExtra // nil for a series the key cache resolved, without histograms
}

// itemExtra is the rest of a writeItem, for the items that need it.
type itemExtra struct {
	lset labels.Labels
	enc  []byte // canonical labels encoding; nil when resolved by key
	// hash is seriesHash of the labels, which picks the shard; not known
	// (hashed false) for an item the key cache resolved, whose series
	// knows its shard.
	hash   uint64
	hashed bool
	hists  []HSample
	key    keyID
	keyed  bool
}

// extra returns the item's itemExtra, allocating one for an item the key
// cache resolved (its series deleted since, or a count of missing series).
func (it *writeItem) extra() *itemExtra {
	if it.x == nil {
		it.x = &itemExtra{}
	}
	return it.x
}

// hists are the item's histogram samples.
func (it *writeItem) hists() []HSample {
	if it.x == nil {
		return nil
	}
	return it.x.hists
}

// shardOf is the number of the shard of n that takes the item.
func (it *writeItem) shardOf(n int) int {
	if it.x == nil || !it.x.hashed {
		return it.ms.state.shard()
	}
	return int(it.x.hash % uint64(n))
}

// labelsHash is seriesHash of the item's labels, computed for an item the
// key cache resolved whose series is gone (deleted since).
func (it *writeItem) labelsHash(tenant string) uint64 {
	x := it.extra()
	if !x.hashed {
		x.hash, _ = seriesHash(tenant, it.labels(), nil)
		x.hashed = true
	}
	return x.hash
}

// labels returns the item's label set. An item resolved by the key cache
// has none of its own (its series has them, and reading them would be one
// more memory miss per sample on the write path).
func (it *writeItem) labels() labels.Labels {
	if (it.x == nil || it.x.lset.IsEmpty()) && it.ms != nil {
		return it.ms.lset
	}
	if it.x == nil {
		return labels.EmptyLabels()
	}
	return it.x.lset
}

func openShard(id int, dir string, opts *Options, guard *guardFS, cache *regexCache, blocks *pebble.Cache, stats *dbStats) (*shard, error) {
	s := &shard{
		id:           id,
		dir:          dir,
		opts:         opts,
		log:          opts.Logger.With("shard", id),
		cache:        cache,
		stats:        stats,
		nextRef:      1,
		refs:         refTable{shard: uint16(id)},
		nextTenant:   1,
		walGen:       1,
		tenants:      map[string]*tenantIndex{},
		tenantByID:   map[uint32]*tenantIndex{},
		sealCh:       make(chan *memSeries, 1<<14),
		quit:         make(chan struct{}),
		maintainKick: make(chan struct{}, 1),
		h:            guard.h,
		release:      make(chan struct{}),
	}
	fs := opts.FS
	// Pebble syncs the entries of its own folder, not the folder itself.
	if err := durable.MkdirAll(fs, fs.PathJoin(dir, "pebble")); err != nil {
		return nil, fmt.Errorf("create shard dir: %w", err)
	}
	po := pebbleOptions(opts, s.log, blocks)
	po.FS = &guardFS{FS: guard.FS, h: s.h, hold: s.release}
	po.EventListener = s.pebbleEvents()
	lg := &pebbleLogger{log: s.log, dir: dir, fatal: make(chan error, 1)}
	po.Logger = lg
	db, err := openPebble(fs.PathJoin(dir, "pebble"), po, lg)
	if err != nil {
		return nil, fmt.Errorf("open pebble: %w", err)
	}
	s.db = db
	if err := s.load(); err != nil {
		s.closePebble()
		return nil, fmt.Errorf("load index: %w", err)
	}
	w, err := wal.Open(fs.PathJoin(dir, "wal"), &wal.Options{SegmentSize: opts.WALSegmentSize, NoSync: opts.NoSync, Logger: s.log, FS: fs})
	if err != nil {
		s.closePebble()
		return nil, fmt.Errorf("open wal: %w", err)
	}
	s.wal = w
	start := time.Now()
	n, err := s.replay()
	if err != nil {
		w.Close()
		s.closePebble()
		return nil, fmt.Errorf("replay wal: %w", err)
	}
	s.log.Info("shard opened", "series", s.numSeries(), "wal_records", n, "replay", time.Since(start))
	s.wg.Add(2)
	go s.sealLoop()
	go s.maintainLoop()
	return s, nil
}

// pebbleOptions tunes Pebble for write-once chunks: zstd everywhere, and
// no Pebble WAL. Our WAL is the only log: everything Pebble holds in
// memtables (index keys, sealed chunks, deletes) is also in a segment of our
// WAL that is truncated only after Pebble has flushed it to tables, so a
// crash loses nothing a replay cannot rebuild, and chunks are written once.
func pebbleOptions(opts *Options, log *slog.Logger, blocks *pebble.Cache) *pebble.Options {
	po := &pebble.Options{
		FS:                          opts.FS,
		Cache:                       blocks,
		Logger:                      &pebbleLogger{log: log},
		DisableWAL:                  true,
		MemTableSize:                32 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
	}
	// zstd on every level: sealed chunks are written once, so a table is
	// compressed about twice (flush, one compaction) and the CPU is small
	// beside what it saves; larger blocks give zstd more context.
	po.ApplyCompressionSettings(func() pebble.DBCompressionSettings {
		return pebble.UniformDBCompressionSettings(block.ZstdCompression)
	})
	for i := range po.Levels {
		po.Levels[i].BlockSize = 32 << 10
	}
	po.EnsureDefaults()
	return po
}

// pebbleLogger sends Pebble's logs to the shard's logger.
type pebbleLogger struct {
	log *slog.Logger
	dir string
	// opening is set while Open waits for Pebble; fatal then carries a
	// fatal error to it (see openPebble).
	opening atomic.Bool
	fatal   chan error
}

func (l *pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}
func (l *pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is called by Pebble when it must not go on, such as after a
// MANIFEST write it cannot tell the fate of. It panics; while Open waits
// for Pebble it hands the error to Open and parks the calling goroutine
// instead, so that a disk found full at start-up is an error, not a crash.
func (l *pebbleLogger) Fatalf(format string, args ...any) {
	err := &pebbleFatal{msg: fmt.Sprintf(format, args...)}
	for _, a := range args {
		if e, ok := a.(error); ok {
			err.cause = e
			break
		}
	}
	l.log.Error(err.msg, "component", "pebble")
	if l.opening.Load() && l.fatal != nil {
		select {
		case l.fatal <- err:
		default:
		}
		// NB: this goroutine may hold Pebble's locks: that instance is
		// abandoned, and its folder stays locked until the process exits.
		select {}
	}
	if isNoSpace(err) {
		panic(fmt.Sprintf("%v: no space left on device: free space in %s; acknowledged writes are in the write-ahead log and replay at the next start", err, l.dir))
	}
	panic(err.Error())
}

// pebbleFatal is a fatal error Pebble reported through its logger.
type pebbleFatal struct {
	msg   string
	cause error
}

func (e *pebbleFatal) Error() string { return "pebble: " + e.msg }
func (e *pebbleFatal) Unwrap() error { return e.cause }

// openPebble opens Pebble, turning a fatal error it reports while opening
// into an error: Pebble reports it through Logger.Fatalf, in the opening
// goroutine or in a flush that Open waits for.
func openPebble(dir string, po *pebble.Options, lg *pebbleLogger) (*pebble.DB, error) {
	type result struct {
		db  *pebble.DB
		err error
	}
	res := make(chan result, 1)
	lg.opening.Store(true)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				lg.opening.Store(false)
				res <- result{err: fmt.Errorf("pebble panicked: %v", r)}
			}
		}()
		db, err := pebble.Open(dir, po)
		lg.opening.Store(false) // from now on a fatal error panics
		res <- result{db, err}
	}()
	select {
	case r := <-res:
		return r.db, r.err
	case err := <-lg.fatal:
		return nil, err
	}
}

// pebbleEvents reports Pebble's background failures to the DB's health
// and logs write stalls once each way.
func (s *shard) pebbleEvents() *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			// NB: a file Pebble made that is gone (the data folder
			// deleted or unmounted under the server) fails every flush
			// from then on: as a disk that takes no writes, so that a
			// close does not wait for a flush that cannot end.
			if isDiskWriteError(err) || errors.Is(err, fs.ErrNotExist) {
				s.h.fail(fmt.Errorf("pebble of shard %d: %w", s.id, err))
				return
			}
			s.bgErrs.log(s.log, "pebble background error", err)
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			s.log.Warn("pebble stalls writes", "reason", info.Reason)
		},
		WriteStallEnd: func() { s.log.Info("pebble takes writes again") },
	}
}

// rateLog logs an error at most once a minute, with the number of errors
// left unlogged since the last line.
type rateLog struct {
	mu     sync.Mutex
	last   time.Time
	missed int
}

func (r *rateLog) log(log *slog.Logger, msg string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.last) >= time.Minute {
		log.Error(msg, "err", err, "unlogged_since_last", r.missed)
		r.last, r.missed = now, 0
		return
	}
	r.missed++
}

// flushPebble flushes Pebble's memtables to tables and waits for it. It
// gives up when the disk stops taking writes (Pebble keeps the flush for
// later; our WAL still holds what the memtables hold).
func (s *shard) flushPebble() error {
	if err := s.h.err(); err != nil {
		return err
	}
	done, err := s.db.AsyncFlush()
	if err != nil {
		return err
	}
	for {
		changed, herr := s.h.watch()
		if herr != nil {
			return herr
		}
		select {
		case <-done:
			return nil
		case <-changed:
		}
	}
}

// closePebble closes Pebble, first letting go of the flushes and
// compactions that wait for the disk.
func (s *shard) closePebble() error {
	close(s.release)
	return s.db.Close()
}

// load rebuilds the in-memory index from Pebble.
func (s *shard) load() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixMeta}, UpperBound: []byte{prefixChunk}})
	if err != nil {
		return err
	}
	defer it.Close()
	sb := labels.NewScratchBuilder(16)
	var hbuf []byte
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		switch k[0] {
		case prefixMeta:
			if string(k[1:]) == "nextRef" && len(v) == 8 {
				s.nextRef = max(s.nextRef, binary.BigEndian.Uint64(v))
			}
		case prefixTenant:
			if len(v) != 4 {
				return fmt.Errorf("%w: tenant key %q", ErrCorrupt, k)
			}
			id := binary.BigEndian.Uint32(v)
			ti := newTenantIndex(id, string(k[1:]), &s.refs)
			s.tenants[ti.name] = ti
			s.tenantByID[id] = ti
			s.nextTenant = max(s.nextTenant, id+1)
		case prefixSeries:
			if len(k) != seriesKeyLen {
				return fmt.Errorf("%w: series key %x", ErrCorrupt, k)
			}
			tid, ref := binary.BigEndian.Uint32(k[1:]), binary.BigEndian.Uint64(k[5:])
			ti := s.tenantByID[tid]
			if ti == nil {
				return fmt.Errorf("%w: series %d of unknown tenant %d", ErrCorrupt, ref, tid)
			}
			lset, err := decodeLabels(v, &sb)
			if err != nil {
				return fmt.Errorf("series %d: %w", ref, err)
			}
			var h uint64
			h, hbuf = seriesHash(ti.name, lset, hbuf)
			ti.add(h, newMemSeries(ref, tid, lset))
			s.nextRef = max(s.nextRef, ref+1)
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	for _, ti := range s.tenants {
		ti.settle()
	}
	// Series-day keys tell which days each series has data in.
	dit, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixSeriesDay}, UpperBound: []byte{prefixSeriesDay + 1}})
	if err != nil {
		return err
	}
	defer dit.Close()
	for valid := dit.First(); valid; valid = dit.Next() {
		k := dit.Key()
		if len(k) != seriesDayKeyLen {
			return fmt.Errorf("%w: series-day key %x", ErrCorrupt, k)
		}
		day, tid, ref := getDay(k[1:]), binary.BigEndian.Uint32(k[5:]), binary.BigEndian.Uint64(k[9:])
		ti := s.tenantByID[tid]
		if ti == nil {
			continue
		}
		ms := ti.get(ref)
		if ms == nil {
			continue
		}
		ms.mu.minDay = min(ms.mu.minDay, day)
		ms.mu.maxDay = max(ms.mu.maxDay, day)
		ms.mu.diskMaxT = max(ms.mu.diskMaxT, dayEnd(day))
		ms.minT.Store(min(ms.minT.Load(), dayStart(day)))
		ms.maxT.Store(max(ms.maxT.Load(), dayEnd(day)))
	}
	if err := dit.Error(); err != nil {
		return err
	}
	if err := s.loadTiers(); err != nil {
		return fmt.Errorf("load tiers: %w", err)
	}
	return s.loadHistograms()
}

// replay re-applies the WAL on top of what load found.
func (s *shard) replay() (int, error) {
	byRef := map[uint64]*memSeries{}
	for _, ti := range s.tenants {
		ti.each(func(ms *memSeries) { byRef[ms.ref] = ms })
	}
	sb := labels.NewScratchBuilder(16)
	var hbuf []byte
	pb := s.db.NewBatch()
	defer func() { pb.Close() }()
	if err := s.loadUsageMark(); err != nil {
		return 0, err
	}
	// Series deleted whole leave the index at the end, in one pass.
	var gone []*memSeries
	now := s.opts.Now().UnixMilli()
	dec := newRecDecoder()
	decSeg := 0
	records := 0
	var at wal.Pos // the end of the record being replayed
	v := &recordVisitor{
		tenant: func(id uint32, name string) error {
			if _, ok := s.tenantByID[id]; !ok {
				s.addTenantLocked(pb, id, name)
			}
			return nil
		},
		series: func(ref uint64, tid uint32, enc []byte) error {
			s.nextRef = max(s.nextRef, ref+1)
			if byRef[ref] != nil {
				return nil
			}
			ti := s.tenantByID[tid]
			if ti == nil {
				return fmt.Errorf("%w: wal series %d of unknown tenant %d", ErrCorrupt, ref, tid)
			}
			lset, err := decodeLabels(enc, &sb)
			if err != nil {
				return err
			}
			var h uint64
			h, hbuf = seriesHash(ti.name, lset, hbuf)
			if old := ti.lookup(h, lset); old != nil && !old.state.gone() {
				return nil
			}
			ms := newMemSeries(ref, tid, lset)
			ti.add(h, ms)
			byRef[ref] = ms
			_ = pb.Set(seriesKey(tid, ref), enc, nil)
			return nil
		},
		samples: func(ref uint64, samples []Sample) error {
			ms := byRef[ref]
			if ms == nil {
				return nil // deleted later, or never durable
			}
			ms.mu.Lock()
			s.markWritten(samples)
			for _, smp := range samples {
				// Segment 0: replayed samples pin the whole log until
				// they are sealed.
				r := ms.appendLocked(smp.T, smp.V, 0, now, s.opts.HeadChunkSamples, s.maxOOO())
				if r.newDay {
					_ = pb.Set(seriesDayKey(nil, r.day, ms.tenant, ms.ref), nil, nil)
				}
			}
			ms.mu.Unlock()
			return nil
		},
		histograms: func(ref uint64, ts []int64, hs []*histogram.FloatHistogram) error {
			ms := byRef[ref]
			if ms == nil {
				return nil
			}
			ms.mu.Lock()
			for i, h := range hs {
				r := ms.appendHistLocked(ts[i], h, 0, now, s.opts.HeadChunkSamples, s.maxOOO())
				if r.newDay {
					_ = pb.Set(seriesDayKey(nil, r.day, ms.tenant, ms.ref), nil, nil)
				}
			}
			ms.mu.Unlock()
			return nil
		},
		usage: func(tid uint32, day int32, ds []UsageDelta) error {
			if posAfter(at, s.usage.mark) { // else Pebble has it already
				s.applyUsageLocked(pb, tid, day, ds, at)
			}
			return nil
		},
		delete: func(ref uint64, mint, maxt int64) error {
			ms := byRef[ref]
			if ms == nil {
				return nil
			}
			// The keys replayed so far go first: a series key set after
			// the deletion of the series would bring it back.
			if !pb.Empty() {
				if err := pb.Commit(pebble.NoSync); err != nil {
					return err
				}
				pb.Close()
				pb = s.db.NewBatch()
			}
			if err := s.deleteSamples(ms, mint, maxt); err != nil {
				return err
			}
			if mint == math.MinInt64 && maxt == math.MaxInt64 {
				delete(byRef, ref)
				gone = append(gone, ms)
			}
			return nil
		},
	}
	err := s.wal.ReplayAt(func(rec []byte, end wal.Pos) error {
		records++
		at = end
		if end.Segment != decSeg {
			// Samples are predicted within a segment only.
			dec.reset()
			decSeg = end.Segment
		}
		err := decodeRecord(rec, v, dec)
		if errors.Is(err, ErrCorrupt) {
			// NB: a record that passes its checksum and does not decode
			// was written by a newer binary, or by a bug. The samples it
			// held are unknown, so no later sample of the segment may be
			// predicted from what the decoder holds: forgetting it makes
			// every later record that needs a base fail as corrupt and be
			// skipped too (said in the log), never decode to wrong values.
			s.log.Warn("skipping undecodable wal record; later records of its segment that are predicted from earlier samples are skipped too", "segment", end.Segment, "err", err)
			dec.reset()
			return nil
		}
		return err
	})
	if err != nil {
		return records, err
	}
	// Later records go to a new segment: the mark moves to its start, so
	// that they count even if the log's numbering started again.
	s.usage.mark = wal.Pos{Segment: s.wal.Segment()}
	_ = pb.Set(usageMarkKey(), encodePos(s.usage.mark), nil)
	// Samples older than MaxHeadAge in wall-clock terms are unknown here;
	// replayed heads are sealed by the regular age check.
	if err := pb.Commit(pebble.NoSync); err != nil {
		return records, err
	}
	s.unpublish(gone)
	return records, nil
}

func (s *shard) maxOOO() int { return 4 * s.opts.HeadChunkSamples }

func (s *shard) addTenantLocked(pb *pebble.Batch, id uint32, name string) *tenantIndex {
	ti := newTenantIndex(id, name, &s.refs)
	s.idxMu.Lock()
	s.tenants[name] = ti
	s.tenantByID[id] = ti
	s.idxMu.Unlock()
	s.nextTenant = max(s.nextTenant, id+1)
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], id)
	_ = pb.Set(tenantKey(name), v[:], nil)
	return ti
}

func (s *shard) tenant(name string) *tenantIndex {
	s.idxMu.RLock()
	defer s.idxMu.RUnlock()
	return s.tenants[name]
}

// countMissing returns how many items name series the shard lacks.
func (s *shard) countMissing(tenant string, items []writeItem) int {
	s.idxMu.RLock()
	defer s.idxMu.RUnlock()
	ti := s.tenants[tenant]
	// NB: a batch may name a series many times (remote write sends one
	// entry per sample): the limit counts distinct series, so an item
	// repeating one counted before is not counted again.
	var seen map[uint64][]labels.Labels
	n := 0
	for i := range items {
		it := &items[i]
		if ms := it.ms; ms != nil && !ms.state.gone() {
			continue
		}
		lset, h := it.labels(), it.labelsHash(tenant)
		if ti != nil && ti.lookup(h, lset) != nil {
			continue
		}
		if seen == nil {
			seen = map[uint64][]labels.Labels{}
		}
		if slices.ContainsFunc(seen[h], func(l labels.Labels) bool { return labels.Equal(l, lset) }) {
			continue
		}
		seen[h] = append(seen[h], lset)
		n++
	}
	return n
}

// write logs and applies items, returning once they are durable.
func (s *shard) write(ctx context.Context, tenant string, items []writeItem) error {
	pb := s.db.NewBatch()
	defer pb.Close()
	series := make([]*memSeries, len(items))
	var toSeal []*memSeries

	now := s.opts.Now().UnixMilli()
	s.appendMu.Lock()
	rec := s.rec[:0]
	ti := s.tenant(tenant)
	if ti == nil {
		ti = s.addTenantLocked(pb, s.nextTenant, tenant)
		rec = appendTenantEntry(rec, ti.id, tenant)
	}
	missing := false
	s.idxMu.RLock()
	for i := range items {
		// Deletes hold appendMu: a series not gone now stays for this write.
		if ms := items[i].ms; ms != nil && !ms.state.gone() {
			series[i] = ms
			continue
		}
		lset := items[i].labels()
		items[i].extra().lset = lset
		series[i] = ti.lookup(items[i].labelsHash(tenant), lset)
		missing = missing || series[i] == nil
	}
	s.idxMu.RUnlock()
	if missing {
		s.idxMu.Lock()
		for i := range items {
			if series[i] != nil {
				continue
			}
			// x: set by the loop above.
			x := items[i].x
			if ms := ti.lookup(items[i].labelsHash(tenant), x.lset); ms != nil { // repeated in the batch
				series[i] = ms
				continue
			}
			if x.enc == nil { // its cached series was deleted meanwhile
				x.enc = appendLabels(nil, x.lset)
			}
			ms := newMemSeries(s.nextRef, ti.id, x.lset)
			s.nextRef++
			ti.add(items[i].labelsHash(tenant), ms)
			series[i] = ms
			rec = appendSeriesEntry(rec, ms.ref, ti.id, x.enc)
			_ = pb.Set(seriesKey(ti.id, ms.ref), x.enc, nil)
			s.stats.seriesCreated.Add(1)
		}
		s.idxMu.Unlock()
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], s.nextRef)
		_ = pb.Set(metaKey("nextRef"), v[:], nil)
	}
	// Every float sample is predicted from its series' previous one in the
	// segment the record lands in (walcodec.go).
	if seg := s.wal.Next(); seg != s.walSeg {
		if s.walSeg != 0 {
			select {
			case s.maintainKick <- struct{}{}:
			default:
			}
		}
		s.walSeg = seg
		s.walGen++
		s.segStarts = append(s.segStarts, segStart{seg: seg, at: s.walBytes})
	}
	stored := 0
	blk := s.blk[:0]
	for i := range items {
		items[i].ms = series[i]
		if len(items[i].samples) > 0 {
			blk = append(blk, blockSeries{ref: series[i].ref, samples: items[i].samples, pred: &series[i].walPred})
		}
		stored += len(items[i].samples) + len(items[i].hists())
	}
	if len(blk) > 0 {
		rec, s.tsBuf, s.vsBuf = appendBlockEntry(rec, blk, s.walGen, s.tsBuf, s.vsBuf)
	}
	clear(blk) // the samples are the caller's
	s.blk = blk[:0]
	for i := range items {
		if hs := items[i].hists(); len(hs) > 0 {
			rec = appendHistogramsEntry(rec, series[i].ref, hs)
		}
	}
	// The usage counter changes in the record that stores the samples:
	// see usage.go.
	day := dayOf(now)
	usage := [1]UsageDelta{{Name: s.ingestUsageNameLocked(ctx), Kind: UsageSum, Value: uint64(stored)}}
	rec = appendUsageEntry(rec, ti.id, day, usage[:])
	s.rec = rec
	var compressed bool
	if s.zrec, compressed = compressRecord(s.zrec, rec); compressed {
		rec = s.zrec
	}
	pos, err := s.wal.Append(rec)
	if err != nil {
		// The bases this record set were never logged.
		s.walGen++
		s.appendMu.Unlock()
		err = fmt.Errorf("append to wal of shard %d: %w", s.id, err)
		s.walFailed(err)
		return err
	}
	s.applyUsageLocked(pb, ti.id, day, usage[:], pos)
	s.walBytes += int64(len(rec))
	s.walSamples += int64(stored)
	if s.walSamples >= s.walSizeAt {
		s.sizeSegmentsLocked()
	}
	var dayKey []byte
	for i := range items {
		ms := series[i]
		ms.mu.Lock()
		s.markWritten(items[i].samples)
		for _, smp := range items[i].samples {
			r := ms.appendLocked(smp.T, smp.V, pos.Segment, now, s.opts.HeadChunkSamples, s.maxOOO())
			if r.newDay {
				dayKey = seriesDayKey(dayKey[:0], r.day, ms.tenant, ms.ref)
				_ = pb.Set(dayKey, nil, nil)
			}
			if r.seal && !ms.mu.queued {
				ms.mu.queued = true
				toSeal = append(toSeal, ms)
			}
		}
		for _, hs := range items[i].hists() {
			r := ms.appendHistLocked(hs.T, hs.H.Copy(), pos.Segment, now, s.opts.HeadChunkSamples, s.maxOOO())
			if r.newDay {
				dayKey = seriesDayKey(dayKey[:0], r.day, ms.tenant, ms.ref)
				_ = pb.Set(dayKey, nil, nil)
			}
			if r.seal && !ms.mu.queued {
				ms.mu.queued = true
				toSeal = append(toSeal, ms)
			}
		}
		ms.mu.Unlock()
	}
	perr := pb.Commit(pebble.NoSync)
	s.usageCommittedLocked(ti.id, day, usage[:], perr == nil)
	s.appendMu.Unlock()
	if perr != nil {
		// The WAL holds everything; replay will redo these keys.
		s.log.Error("write index keys and usage counters", "err", perr)
	}
	for _, ms := range toSeal {
		s.queueSeal(ms)
	}
	if err := s.wal.Wait(ctx, pos); err != nil {
		err = fmt.Errorf("sync wal of shard %d: %w", s.id, err)
		s.walFailed(err)
		return err
	}
	return nil
}

// sizeSegmentsLocked sets the log's segment size to twice what it takes
// to log a head chunk's worth of samples for every series (the bytes a
// sample takes in the log so far, times the series, times
// HeadChunkSamples), at least minWALSegment and at most
// Options.WALSegmentSize. A new segment makes maintain run, and it
// deletes the segments before the one holding the oldest sample not yet
// sealed: when series fill their heads at a like pace, that one is the
// segment before the current one. So the log keeps about the last two to
// four heads' worth, however fast samples come: 64 MiB segments kept a
// backfill of ten hours of 10,000 series whole (1.08 bytes a sample in
// the log beside 0.6 in sealed chunks) until the log reached 64 MiB.
func (s *shard) sizeSegmentsLocked() {
	s.walSizeAt = s.walSamples + walSizeEvery
	if s.walSamples == 0 {
		return
	}
	live := 0
	s.idxMu.RLock()
	for _, ti := range s.tenants {
		live += ti.n
	}
	s.idxMu.RUnlock()
	s.walSpan = int64(float64(s.walBytes) / float64(s.walSamples) * float64(live) * float64(s.opts.HeadChunkSamples))
	s.wal.SetSegmentSize(max(2*s.walSpan, minWALSegment))
}

// segStart is where a segment began, in bytes logged since the shard
// opened.
type segStart struct {
	seg int
	at  int64
}

// leftBehindLocked is the first segment that heads may still hold: a
// head holding an older one has been left behind by four heads' worth of
// the other series' samples (a series written rarely, or no more, during
// a backfill or a catch-up that logs hours of samples in seconds) and
// is sealed before its time, so that the log can be truncated. At the
// pace samples come in real time MaxHeadAge seals a head long before
// that. 0 while the heads' size is not known.
func (s *shard) leftBehindLocked() int {
	if s.walSpan <= 0 {
		return 0
	}
	stale := 0
	for _, st := range s.segStarts {
		if s.walBytes-st.at <= 4*s.walSpan {
			break
		}
		stale = st.seg + 1
	}
	return stale
}

const (
	// walSizeEvery is how many samples the shard logs between settings of
	// the segment size.
	walSizeEvery = 1 << 16
	// minWALSegment is the smallest segment the size follows the heads
	// down to: each new segment costs maintain a pass over the series and
	// a flush of Pebble's memtables.
	minWALSegment = 4 << 20
)

// walFailed reports a failed log to the DB's health, which retries it.
func (s *shard) walFailed(err error) {
	if errors.Is(err, wal.ErrFailed) {
		s.h.fail(err)
	}
}

func (s *shard) queueSeal(ms *memSeries) {
	select {
	case s.sealCh <- ms:
	case <-s.quit:
	}
}

// tenantSeries is how many series of tenant the shard holds.
func (s *shard) tenantSeries(tenant string) int {
	s.idxMu.RLock()
	defer s.idxMu.RUnlock()
	if ti := s.tenants[tenant]; ti != nil {
		return ti.n
	}
	return 0
}

func (s *shard) numSeries() int {
	s.idxMu.RLock()
	defer s.idxMu.RUnlock()
	n := 0
	for _, ti := range s.tenants {
		n += ti.n
	}
	return n
}

// allSeries returns every series of the shard (all tenants).
func (s *shard) allSeries() []*memSeries {
	s.idxMu.RLock()
	defer s.idxMu.RUnlock()
	var out []*memSeries
	for _, ti := range s.tenants {
		ti.each(func(ms *memSeries) { out = append(out, ms) })
	}
	return out
}

func (s *shard) close() error {
	close(s.quit)
	s.wg.Wait()
	var errs []error
	// Seal everything so that the next start replays an empty log. On a
	// disk that does not take writes this gives up at once: the log keeps
	// everything for the next start.
	if err := s.maintain(true); err != nil {
		errs = append(errs, fmt.Errorf("flush head: %w", err))
	}
	// Memtables to block-compressed tables: Pebble's log holds them raw.
	if err := s.flushPebble(); err != nil && !errors.Is(err, ErrNotWritable) {
		errs = append(errs, fmt.Errorf("flush pebble: %w", err))
	}
	if err := s.wal.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close wal: %w", err))
	}
	if err := s.closePebble(); err != nil {
		errs = append(errs, fmt.Errorf("close pebble: %w", err))
	}
	return errors.Join(errs...)
}

// statsInto adds the shard's figures to st.
func (s *shard) statsInto(st *Stats) {
	m := s.db.Metrics()
	st.DiskBytes += int64(m.DiskSpaceUsage()) + s.wal.Size()
	st.WALBytes += s.wal.Size()
	st.PebbleCompactions += m.Compact.Count
	st.PebbleL0Files += m.Levels[0].TablesCount
	st.PebbleMemtableBytes += int64(m.MemTable.Size)
	st.Series += s.numSeries()
}
